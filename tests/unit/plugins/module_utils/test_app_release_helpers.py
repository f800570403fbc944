import io
import os
import re
import stat
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils import app_release
from ansible_collections.slogate.supabase.plugins.module_utils.app_release import (
    ENV_HEADER,
    Member,
    ReleaseError,
    apply_release,
    check_members,
    check_release_id,
    content_digest,
    extract,
    pack,
    parse_env,
    render_env,
    switch_current,
)
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

VALID_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
ENV_KEY = r"[A-Za-z_][A-Za-z0-9_]*"


# -- release ids ---------------------------------------------------------------------------

@pytest.mark.parametrize("release_id", ["r1", "2026.01.05-1", "A", "x" * 64, "v1_2-rc.3"])
def test_good_ids_pass(release_id):
    assert check_release_id(release_id) == release_id


@pytest.mark.parametrize("release_id", ["", ".hidden", "-r1", "_r1", "r/1", "../r1", "r 1", "r1\n", "x" * 65, None, 42])
def test_bad_ids_fail_in_one_line(release_id):
    with pytest.raises(ConfigurationError) as raised:
        check_release_id(release_id)
    assert "\n" not in str(raised.value) and "not a valid release id" in str(raised.value)


@given(st.from_regex(VALID_ID, fullmatch=True))
def test_every_id_of_the_pattern_passes(release_id):
    assert check_release_id(release_id) == release_id


@given(st.text(max_size=80).filter(lambda s: not re.fullmatch(VALID_ID, s)))
def test_every_other_string_fails_in_one_line(text):
    with pytest.raises(ConfigurationError) as raised:
        check_release_id(text)
    assert len(str(raised.value).splitlines()) == 1


# -- release.env ---------------------------------------------------------------------------

def test_env_file_is_the_old_template_with_a_header():
    assert render_env("r2", {"ZED": "1", "FAULT_ERROR_RATE": 0.05, "admin_open": True, "EMPTY": None}) == (
        ENV_HEADER + "\nRELEASE_ID=r2\nadmin_open=True\nEMPTY=\nFAULT_ERROR_RATE=0.05\nZED=1\n")


env_keys = st.from_regex(ENV_KEY, fullmatch=True).filter(lambda k: k != "RELEASE_ID")
env_values = st.text().filter(lambda v: not any(c in app_release.LINE_BREAKS for c in v))


@given(st.from_regex(VALID_ID, fullmatch=True), st.dictionaries(env_keys, env_values, max_size=8))
def test_env_round_trips(release_id, env):
    text = render_env(release_id, env)
    assert text.splitlines()[0] == ENV_HEADER
    assert parse_env(text) == dict({"RELEASE_ID": release_id}, **env)
    assert list(parse_env(text))[0] == "RELEASE_ID"


@given(st.dictionaries(env_keys, env_values, max_size=8))
def test_env_text_does_not_depend_on_the_order_given(env):
    assert render_env("r1", dict(reversed(list(env.items())))) == render_env("r1", env)


@pytest.mark.parametrize("env, named", [
    ({"1ABC": "x"}, "'1ABC'"),
    ({"BAD-KEY": "x"}, "'BAD-KEY'"),
    ({"A B": "x"}, "'A B'"),
    ({"NOTE": "two\nlines"}, "env key NOTE"),
    ({"NOTE": "carriage\rreturn"}, "env key NOTE"),
    ({"LIST": [1, 2]}, "env key LIST"),
    ({"RELEASE_ID": "other"}, "env key RELEASE_ID"),
])
def test_bad_env_fails_in_one_line_naming_the_key(env, named):
    with pytest.raises(ConfigurationError) as raised:
        render_env("r1", env)
    assert named in str(raised.value) and len(str(raised.value).splitlines()) == 1


def test_parse_env_names_the_bad_line():
    with pytest.raises(ConfigurationError, match="line 3"):
        parse_env("# c\nA=1\nnot a setting\n")


# -- digest ---------------------------------------------------------------------------------

ENTRIES = [("a.txt", "file", 0o644, b"hello"), ("pkg", "dir", 0o755, b""), ("pkg/m.py", "file", 0o755, b"x = 1\n"),
           ("link", "symlink", 0o777, "pkg/m.py")]


def test_digest_ignores_the_order_of_the_entries():
    assert content_digest(ENTRIES) == content_digest(list(reversed(ENTRIES)))


@pytest.mark.parametrize("index, changed", [
    (0, ("a.txt", "file", 0o644, b"hello!")),
    (0, ("a.txt", "file", 0o600, b"hello")),
    (0, ("b.txt", "file", 0o644, b"hello")),
    (3, ("link", "symlink", 0o777, "a.txt")),
    (1, ("pkg", "dir", 0o700, b"")),
])
def test_digest_sees_content_modes_names_and_link_targets(index, changed):
    other = list(ENTRIES)
    other[index] = changed
    assert content_digest(other) != content_digest(ENTRIES)


def test_digest_frames_entries_so_bytes_cannot_move_between_files():
    assert content_digest([("a", "file", 0o644, b"xy"), ("b", "file", 0o644, b"")]) != \
        content_digest([("a", "file", 0o644, b"x"), ("b", "file", 0o644, b"y")])


# -- archive members -------------------------------------------------------------------------

GOOD = [Member("pkg", "dir", ""), Member("pkg/m.py", "file", ""), Member("pkg/up", "symlink", "../a.txt"),
        Member("a.txt", "file", ""), Member("here", "symlink", "pkg/../a.txt"), Member("pkg/self", "symlink", "..")]

REFUSED = {
    "absolute": ([Member("/etc/cron.d/x", "file", "")], "absolute path"),
    "dot dot": ([Member("pkg/../../x", "file", "")], "contains '..'"),
    "dot dot first": ([Member("../x", "file", "")], "contains '..'"),
    "absolute link": ([Member("l", "symlink", "/etc/passwd")], "points outside"),
    "link up and out": ([Member("pkg", "dir", ""), Member("pkg/l", "symlink", "../../x")], "points outside"),
    "link chain out": ([Member("d", "dir", ""), Member("d/b", "symlink", ".."), Member("x", "symlink", "d/b/..")],
                       "points outside"),
    "link loop": ([Member("a", "symlink", "b"), Member("b", "symlink", "a")], "points outside"),
    "write through a link": ([Member("l", "symlink", "pkg"), Member("l/f", "file", "")], "inside the link l"),
    "twice": ([Member("a", "file", ""), Member("./a", "file", "")], "appears twice"),
    "hard link": ([Member("a", "file", ""), Member("b", "hard link", "a")], "only files, folders and symlinks"),
    "device": ([Member("null", "device", "")], "only files, folders and symlinks"),
}


def test_safe_members_pass():
    check_members(GOOD)


@pytest.mark.parametrize("members, message", list(REFUSED.values()), ids=list(REFUSED))
def test_unsafe_members_are_refused_in_one_line(members, message):
    with pytest.raises(ReleaseError) as raised:
        check_members(members)
    assert message in str(raised.value) and len(str(raised.value).splitlines()) == 1


def make_tar(path, members):
    """A tar.gz with the given (name, kind, data or link target) members, written without any check."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_refuses_a_member_with_dot_dot_and_writes_nothing(tmp_path):
    archive = make_tar(tmp_path / "evil.tar.gz", [("ok.txt", "file", b"ok"), ("../escaped.txt", "file", b"gotcha")])
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ReleaseError, match=r"archive member \.\./escaped\.txt: contains '\.\.'"):
        extract(str(archive), str(target))
    assert not (tmp_path / "escaped.txt").exists() and os.listdir(target) == []


def test_extract_refuses_a_link_out_of_the_release(tmp_path):
    archive = make_tar(tmp_path / "evil.tar.gz", [("ok.txt", "file", b"ok"), ("etc", "symlink", "/etc")])
    with pytest.raises(ReleaseError, match="archive member etc: link to /etc points outside"):
        extract(str(archive), str(tmp_path))


# -- packing ---------------------------------------------------------------------------------

def app_tree(root):
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0compiled")
    (root / "pkg" / "m.py").write_text("x = 1\n")
    (root / "pkg" / "old.pyc").write_bytes(b"\0")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "README").write_text("hello")
    (root / "empty").mkdir()
    os.symlink("pkg/m.py", root / "main.py")
    return root


def tree_entries(root):
    entries = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                entries.append((rel, "symlink", 0, os.readlink(path)))
            elif stat.S_ISDIR(info.st_mode):
                entries.append((rel, "dir", stat.S_IMODE(info.st_mode), b""))
            else:
                with open(path, "rb") as handle:
                    entries.append((rel, "file", stat.S_IMODE(info.st_mode), handle.read()))
    return entries


def test_pack_leaves_out_pycache_and_unpacks_to_the_same_content(tmp_path):
    src = app_tree(tmp_path / "src")
    archive = tmp_path / "app.tar.gz"
    packed = pack(str(src), archive_path=str(archive))
    assert packed.files == 3
    assert pack(str(src)).digest == packed.digest        # check mode's digest, without an archive
    out = tmp_path / "out"
    out.mkdir()
    assert extract(str(archive), str(out)) == packed.digest
    assert sorted(os.listdir(out / "pkg")) == ["m.py"]
    assert os.readlink(out / "main.py") == "pkg/m.py" and (out / "main.py").read_text() == "x = 1\n"
    assert os.access(out / "run.sh", os.X_OK)
    assert content_digest(tree_entries(out)) == packed.digest


def test_pack_exclude_matches_names_and_relative_paths(tmp_path):
    src = app_tree(tmp_path / "src")
    everything = pack(str(src), exclude=[]).files
    assert everything == 5
    assert pack(str(src), exclude=["README", "pkg/*"]).files == 1


def test_pack_refuses_a_link_out_of_src_before_writing_an_archive(tmp_path):
    src = app_tree(tmp_path / "src")
    os.symlink("/etc/passwd", src / "passwd")
    with pytest.raises(ConfigurationError, match=r"src .*: archive member passwd: link to /etc/passwd points outside"):
        pack(str(src), archive_path=str(tmp_path / "never.tar.gz"))
    assert not (tmp_path / "never.tar.gz").exists()


def test_pack_refuses_a_fifo(tmp_path):
    src = app_tree(tmp_path / "src")
    os.mkfifo(src / "pipe")
    with pytest.raises(ConfigurationError, match="pipe is a fifo"):
        pack(str(src))


# -- apply_release ---------------------------------------------------------------------------

@pytest.fixture
def packed(tmp_path):
    src = app_tree(tmp_path / "src")
    archive = tmp_path / "app.tar.gz"
    return str(archive), pack(str(src), archive_path=str(archive)).digest


def test_first_run_unpacks_writes_env_and_switches(tmp_path, packed):
    archive, digest = packed
    root = tmp_path / "app"
    result, warnings = apply_release(str(root), "r1", env={"A": "1"}, archive=archive, digest=digest)
    assert (result["unpacked"], result["env_changed"], result["switched"], result["changed"]) == (True, True, True, True)
    assert result["previous"] == "" and result["current"] == "r1" and result["digest"] == digest and not warnings
    assert os.readlink(root / "current") == "releases/r1"
    assert (root / "releases" / "r1" / ".slogate-unpacked").read_text() == digest + "\n"
    assert (root / "releases" / "r1" / "release.env").read_text() == ENV_HEADER + "\nRELEASE_ID=r1\nA=1\n"
    assert sorted(os.listdir(root / "releases")) == ["r1"]          # no staging folder left

    again, unused = apply_release(str(root), "r1", env={"A": "1"}, archive=archive, digest=digest)
    assert not again["changed"] and again["previous"] == "r1" and again["msg"] == "release r1 is current, nothing to do"

    env_only, unused = apply_release(str(root), "r1", env={"A": "2"}, archive=archive, digest=digest)
    assert env_only["env_changed"] and not env_only["unpacked"] and not env_only["switched"]


def test_same_id_with_other_content_fails_and_keeps_the_release(tmp_path, packed):
    archive, digest = packed
    root = tmp_path / "app"
    apply_release(str(root), "r1", archive=archive, digest=digest)
    with pytest.raises(ReleaseError) as raised:
        apply_release(str(root), "r1", archive=archive, digest="0" * 64)
    assert str(raised.value) == ("release r1 already exists in %s/releases with different content; give the new code "
                                 "a new release id" % root)
    assert (root / "releases" / "r1" / ".slogate-unpacked").read_text() == digest + "\n"


def test_a_damaged_archive_leaves_no_release(tmp_path, packed):
    archive, digest = packed
    with open(archive, "r+b") as handle:
        handle.seek(40)
        handle.write(b"\xff" * 64)
    root = tmp_path / "app"
    with pytest.raises(ReleaseError):
        apply_release(str(root), "r1", archive=archive, digest=digest)
    assert os.listdir(root / "releases") == [] and not os.path.lexists(root / "current")


def test_check_mode_writes_nothing(tmp_path, packed):
    archive, digest = packed
    root = tmp_path / "app"
    result, unused = apply_release(str(root), "r1", env={}, digest=digest, check_mode=True)
    assert result["changed"] and result["unpacked"] and result["switched"] and result["msg"].startswith("would unpack")
    assert not root.exists()


def test_switch_only_and_present(tmp_path, packed):
    archive, digest = packed
    root = tmp_path / "app"
    apply_release(str(root), "r1", archive=archive, digest=digest)
    present, unused = apply_release(str(root), "r2", state="present", archive=archive, digest=digest)
    assert present["unpacked"] and not present["switched"] and present["current"] == "r1"
    switched, unused = apply_release(str(root), "r2")
    assert switched["switched"] and switched["previous"] == "r1" and switched["digest"] == digest
    assert not switched["unpacked"] and not switched["env_changed"]


def test_a_missing_release_without_src_names_the_folder(tmp_path):
    with pytest.raises(ReleaseError) as raised:
        apply_release(str(tmp_path), "r9")
    assert str(raised.value) == "release folder %s/releases/r9 does not exist (releases there: none); give src to unpack it" % tmp_path
    for number in range(12):
        (tmp_path / "releases" / ("r%02d" % number)).mkdir(parents=True)
    with pytest.raises(ReleaseError, match=r"\(releases there: r00, r01, .*, r09 and 2 more\)"):
        apply_release(str(tmp_path), "r99")


def test_current_as_a_real_folder_is_refused(tmp_path, packed):
    archive, digest = packed
    (tmp_path / "current").mkdir()
    with pytest.raises(ReleaseError, match="current exists and is not a symlink; move it away first"):
        apply_release(str(tmp_path), "r1", archive=archive, digest=digest)
    assert not (tmp_path / "releases").exists()


def test_an_absolute_link_to_the_release_is_not_switched_again(tmp_path, packed):
    archive, digest = packed
    apply_release(str(tmp_path), "r1", archive=archive, digest=digest, state="present")
    os.symlink(str(tmp_path / "releases" / "r1"), tmp_path / "current")
    result, unused = apply_release(str(tmp_path), "r1")
    assert not result["switched"] and result["previous"] == "r1"


def test_a_release_from_before_digests_is_accepted_with_a_warning(tmp_path, packed):
    archive, digest = packed
    (tmp_path / "releases" / "r1").mkdir(parents=True)
    (tmp_path / "releases" / "r1" / ".slogate-unpacked").write_text("r1\n")
    result, warnings = apply_release(str(tmp_path), "r1", archive=archive, digest=digest)
    assert not result["unpacked"] and result["switched"] and result["digest"] == ""
    assert warnings and "before app_release recorded content digests" in warnings[0]


def test_a_release_folder_without_marker_is_not_overwritten(tmp_path, packed):
    archive, digest = packed
    (tmp_path / "releases" / "r1").mkdir(parents=True)
    with pytest.raises(ReleaseError, match="without a .slogate-unpacked marker"):
        apply_release(str(tmp_path), "r1", archive=archive, digest=digest)
    switched, unused = apply_release(str(tmp_path), "r1")       # switching to it is fine
    assert switched["switched"]


def test_switch_replaces_the_link_with_a_relative_one(tmp_path):
    (tmp_path / "releases" / "a").mkdir(parents=True)
    (tmp_path / "releases" / "b").mkdir()
    switch_current(str(tmp_path), "a")
    switch_current(str(tmp_path), "b")
    assert os.readlink(tmp_path / "current") == "releases/b"
    assert sorted(os.listdir(tmp_path)) == ["current", "releases"]
