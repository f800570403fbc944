"""app_release through the real ansible CLI (action plugin and module): unpack, switch,
reruns, conflicts, check mode, switch-only and bad input. No database needed."""

import os

import pytest

HEADER = "# written by slogate.supabase.app_release"


@pytest.fixture
def site(tmp_path):
    """An app source folder (with a __pycache__), an empty app root, and a remote temp folder to watch."""
    src = tmp_path / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "__pycache__" / "web.cpython-311.pyc").write_bytes(b"\0compiled")
    (src / "pkg" / "web.py").write_text("RELEASE = 'web'\n")
    (src / "launch.py").write_text("import pkg.web\n")
    remote_tmp = tmp_path / "remote-tmp"
    remote_tmp.mkdir()
    return src, tmp_path / "app", remote_tmp


def release(ansible_module, site, release_id, check=False, **options):
    src, root, remote_tmp = site
    args = dict(root=str(root), release=release_id, src=str(src))
    args.update(options)
    args = {key: value for key, value in args.items() if value is not None}
    run = ansible_module("app_release", args, check=check, env=dict(ANSIBLE_REMOTE_TMP=str(remote_tmp)))
    assert os.listdir(remote_tmp) == [], "the remote temp folder was left behind"
    return run


def tree(folder):
    """Every path under folder (links not followed) with its content, for before/after comparisons."""
    found = {}
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(parent, name)
            if os.path.islink(path):
                found[path] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    found[path] = handle.read()
            else:
                found[path] = "dir"
    return found


def test_first_switch_unpacks_then_reruns_unchanged_then_a_new_release_switches(ansible_module, site):
    src, root, unused = site
    first = release(ansible_module, site, "r1", env={"LOG_LEVEL": "info", "FAULT_ERROR_RATE": 0})
    assert not first.failed, first.result["msg"]
    result = first.result
    assert result["changed"] and result["unpacked"] and result["env_changed"] and result["switched"]
    assert result["previous"] == "" and result["current"] == "r1" and result["release"] == "r1"
    assert result["path"] == str(root / "releases" / "r1") and result["files"] == 2 and len(result["digest"]) == 64
    assert "owner" not in result and "mode" not in result
    assert os.readlink(root / "current") == "releases/r1"
    r1 = root / "releases" / "r1"
    assert (r1 / "release.env").read_text() == HEADER + "\nRELEASE_ID=r1\nFAULT_ERROR_RATE=0\nLOG_LEVEL=info\n"
    assert (r1 / ".slogate-unpacked").read_text() == result["digest"] + "\n"
    assert sorted(os.listdir(r1 / "pkg")) == ["web.py"]                # __pycache__ left out

    again = release(ansible_module, site, "r1", env={"LOG_LEVEL": "info", "FAULT_ERROR_RATE": 0})
    assert not again.failed and not again.result["changed"], again.result
    assert again.result["previous"] == "r1" and again.result["digest"] == result["digest"]

    (src / "launch.py").write_text("import pkg.web  # r2\n")
    second = release(ansible_module, site, "r2", env={})
    assert not second.failed and second.result["changed"] and second.result["switched"]
    assert second.result["previous"] == "r1" and second.result["current"] == "r2"
    assert second.result["digest"] != result["digest"]
    assert os.readlink(root / "current") == "releases/r2"
    assert sorted(os.listdir(root / "releases")) == ["r1", "r2"]


def test_same_id_with_other_content_fails_in_one_line_and_keeps_the_release(ansible_module, site):
    src, root, unused = site
    assert not release(ansible_module, site, "r1").failed
    before = tree(root)
    (src / "pkg" / "web.py").write_text("RELEASE = 'changed'\n")
    clash = release(ansible_module, site, "r1")
    assert clash.failed
    assert clash.result["msg"] == ("release r1 already exists in %s/releases with different content; "
                                   "give the new code a new release id" % root)
    assert tree(root) == before


def test_check_mode_writes_nothing_and_says_what_it_would_do(ansible_module, site):
    src, root, unused = site
    planned = release(ansible_module, site, "r1", check=True, env={"A": "1"})
    assert not planned.failed and planned.result["changed"]
    assert planned.result["unpacked"] and planned.result["switched"] and planned.result["env_changed"]
    assert planned.result["msg"].startswith("would unpack release r1")
    assert not root.exists()

    assert not release(ansible_module, site, "r1", env={"A": "1"}).failed
    before = tree(root)
    launch = (src / "launch.py").read_text()
    (src / "launch.py").write_text("new code\n")
    new = release(ansible_module, site, "r2", check=True, env={"A": "2"})
    assert new.result["changed"] and new.result["previous"] == "r1" and new.result["current"] == "r2"
    clash = release(ansible_module, site, "r1", check=True)
    assert clash.failed and "already exists" in clash.result["msg"]     # as the real run would
    (src / "launch.py").write_text(launch)
    same = release(ansible_module, site, "r1", check=True, env={"A": "2"})
    assert same.result["env_changed"] and not same.result["unpacked"] and not same.result["switched"]
    assert tree(root) == before


def test_switch_only_to_an_existing_release_and_back(ansible_module, site):
    src, root, unused = site
    assert not release(ansible_module, site, "r1").failed
    (src / "launch.py").write_text("r2\n")
    assert not release(ansible_module, site, "r2").failed
    back = release(ansible_module, site, "r1", src=None)
    assert not back.failed and back.result["changed"] and back.result["switched"]
    assert back.result["previous"] == "r2" and back.result["files"] == 0 and not back.result["unpacked"]
    assert os.readlink(root / "current") == "releases/r1"
    assert not release(ansible_module, site, "r1", src=None).result["changed"]


def test_switch_only_to_a_missing_release_names_the_folder(ansible_module, site):
    root = site[1]
    missing = release(ansible_module, site, "r7", src=None)
    assert missing.failed
    assert missing.result["msg"] == ("release folder %s/releases/r7 does not exist (releases there: none); "
                                     "give src to unpack it" % root)


@pytest.mark.parametrize("options, message", [
    (dict(release_id="../r1"), "release '../r1' is not a valid release id"),
    (dict(release_id="r1", env={"BAD-KEY": "x"}), "env key 'BAD-KEY' is not a valid variable name"),
    (dict(release_id="r1", env={"NOTE": "two\nlines"}), "env key NOTE: the value contains a line break"),
], ids=["bad id", "bad env key", "line break in a value"])
def test_bad_input_fails_in_one_line_before_anything_is_written(ansible_module, site, options, message):
    root = site[1]
    run = release(ansible_module, site, **options)
    assert run.failed and message in run.result["msg"] and len(run.result["msg"].splitlines()) == 1
    assert not root.exists()


def test_a_current_that_is_a_real_folder_is_refused(ansible_module, site):
    root = site[1]
    (root / "current").mkdir(parents=True)
    run = release(ansible_module, site, "r1")
    assert run.failed and run.result["msg"] == "%s/current exists and is not a symlink; move it away first" % root
    assert sorted(os.listdir(root)) == ["current"]


def test_present_unpacks_without_switching(ansible_module, site):
    root = site[1]
    run = release(ansible_module, site, "r1", state="present")
    assert not run.failed and run.result["unpacked"] and not run.result["switched"] and run.result["current"] == ""
    assert not os.path.lexists(root / "current")


def test_a_missing_src_folder_fails_in_one_line(ansible_module, site, tmp_path):
    run = release(ansible_module, site, "r1", src=str(tmp_path / "nowhere"))
    assert run.failed and run.result["msg"] == ("src %s is not a folder on the controller; give the folder with "
                                                "the app code" % (tmp_path / "nowhere"))
