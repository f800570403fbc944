"""The collection as users get it: `ansible-galaxy collection build`, installed
from the tarball into an empty collections folder, and used from there only.

A test run otherwise sees the repository through the .venv/collections
symlink, so a file missing from the tarball (a role's template, a playbook, a
module_util) would go unnoticed until someone installs the release. Here the
installed copy is the only slogate.supabase Ansible can find: every module and
role must be documented from it, every playbook must parse from it, and the
demo's SLO-gated deploy must run from it.
"""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import ansible
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_CORE = str(Path(ansible.__file__).resolve().parent) + "/"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "examples" / "demo"))

from stack import DemoStack, brought_up  # noqa: E402

pytestmark = pytest.mark.integration

GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
TARBALL_NAME = "%s-%s-%s.tar.gz" % (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])
# Well above today's size (about 0.45 MB): a dependency folder or a results file swept in would cross it.
MAX_TARBALL_BYTES = 2 * 1024 * 1024
# Development output that must never ship, whatever build_ignore says today.
DEV_PREFIXES = (".venv/", "node_modules/", ".cache/", ".git/", ".ansible/", ".pytest_cache/", ".hypothesis/",
                "tests/output/", "bench/results/", "build/")
MODULES = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__")
ROLES = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "tasks").is_dir())
PLAYBOOKS = sorted(path.stem for path in (ROOT / "playbooks").glob("*.yml"))


def installed_env(collections):
    """Only the installed copy: no ANSIBLE_* setting of the caller, no collection found on sys.path."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False", PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")))
    return env


def run(args, env, cwd, timeout=300):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=str(cwd),
                          timeout=timeout, check=False)
    assert proc.returncode == 0, "%s failed (%d):\n%s\n%s" % (" ".join(map(str, args)), proc.returncode,
                                                              proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout


class Installed:
    def __init__(self, tarball, collections, work):
        self.tarball = tarball
        self.collections = collections
        self.path = collections / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
        self.work = work
        self.env = installed_env(collections)


@pytest.fixture(scope="module")
def installed():
    # Not tmp_path_factory: the demo's database server runs as its own user and must reach the installed roles' files.
    work = Path(tempfile.mkdtemp(prefix="slogate-package-"))
    os.chmod(work, 0o755)
    try:
        dist, collections = work / "dist", work / "collections"
        env = installed_env(collections)
        # cwd outside the repository, so no ansible.cfg or playbook-adjacent collections folder there takes part.
        run([VENV_BIN / "ansible-galaxy", "collection", "build", ROOT, "--output-path", dist], env, work)
        tarball = dist / TARBALL_NAME
        assert tarball.is_file(), sorted(os.listdir(dist))
        run([VENV_BIN / "ansible-galaxy", "collection", "install", tarball, "-p", collections, "--offline", "--no-deps",
             "--force"], env, work)
        yield Installed(tarball, collections, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_tarball_ships_the_collection_without_development_files(installed, capsys):
    with tarfile.open(installed.tarball) as archive:
        names = archive.getnames()
    size = installed.tarball.stat().st_size
    with capsys.disabled():
        print("\n%s: %d bytes (%.2f MiB), %d members" % (TARBALL_NAME, size, size / 1048576.0, len(names)))
    leaked = sorted(name for name in names
                    if (name + "/").startswith(DEV_PREFIXES) or "__pycache__" in name.split("/")
                    or name.endswith((".pyc", ".tar.gz")))
    assert not leaked, "development files in the tarball: %s" % leaked[:20]
    assert size < MAX_TARBALL_BYTES, "the tarball is %d bytes" % size
    wanted = {"MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "CHANGELOG.rst"}
    wanted |= {"plugins/modules/%s.py" % module for module in MODULES}
    wanted |= {"roles/%s/meta/argument_specs.yml" % role for role in ROLES}
    wanted |= {"playbooks/%s.yml" % playbook for playbook in PLAYBOOKS}
    wanted |= {"docs/index.md"} | {"docs/roles/%s.md" % role for role in ROLES}
    # The loadtest role's defaults point at these, relative to the role.
    wanted |= {"tests/load/%s" % path.name for path in (ROOT / "tests" / "load").iterdir() if path.is_file()}
    assert sorted(wanted - set(names)) == []
    manifest = json.loads((installed.path / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == GALAXY["version"]


def test_the_installed_copy_documents_every_module_and_role(installed):
    env, cwd = installed.env, installed.work
    listed = json.loads(run([VENV_BIN / "ansible-doc", "-l", "slogate.supabase", "--json"], env, cwd))
    assert sorted(listed) == ["slogate.supabase.%s" % module for module in MODULES]
    docs = json.loads(run([VENV_BIN / "ansible-doc", "--json"] + sorted(listed), env, cwd))
    for name, doc in docs.items():
        assert doc["doc"]["filename"].startswith(str(installed.path)), (name, doc["doc"]["filename"])
        assert doc["examples"].strip(), "%s has no EXAMPLES" % name

    roles = json.loads(run([VENV_BIN / "ansible-doc", "-t", "role", "-l", "slogate.supabase", "--json"], env, cwd))
    assert sorted(roles) == ["slogate.supabase.%s" % role for role in ROLES]
    deploy = run([VENV_BIN / "ansible-doc", "-t", "role", "slogate.supabase.deploy"], env, cwd)
    assert "deploy_release_id" in deploy or "ENTRY POINT: main" in deploy, deploy[:2000]


def test_every_playbook_passes_the_syntax_check_from_the_installed_copy(installed):
    names = ["slogate.supabase.%s" % playbook for playbook in PLAYBOOKS]
    output = run([VENV_BIN / "ansible-playbook", "--syntax-check"] + names, installed.env, installed.work)
    for playbook in PLAYBOOKS:
        assert "playbook: %s" % (installed.path / "playbooks" / ("%s.yml" % playbook)) in output, output


class InstalledDemo(DemoStack):
    """The demo stack, its playbooks run from an installed collection instead of the repository."""

    def __init__(self, root, collections, **kwargs):
        super().__init__(root, **kwargs)
        self.collections = collections

    def ansible_env(self):
        env = super().ansible_env()
        env.update(ANSIBLE_COLLECTIONS_PATH=str(self.collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False")
        return env


def failures(output):
    return "\n".join(line for line in output.splitlines() if line.startswith(("fatal:", "[ERROR]", "failed:")))[-4000:]


@pytest.mark.skipif(bool(os.environ.get("PG_URL")), reason="playbook scenarios run once, on embedded PostgreSQL 18")
def test_the_demo_deploys_from_the_installed_copy(installed):
    installed_demo = functools.partial(InstalledDemo, collections=installed.collections)
    with brought_up("slogate-package-demo-", installed_demo, documents=500, traffic_users=2, ledger_rows=0) as demo:
        demo.stage_project("good")
        code, output = demo.run_playbook("deploy", demo.extra_vars("r2", slogate_loadtest=False), "-vvv", stream=False)
        assert code == 0, failures(output)
        assert demo.health()["release"] == "r2"
        assert demo.deploy_state()["status"] == "deployed"
        assert json.loads(sorted((demo.state_dir / "reports").glob("*.json"))[-1].read_text())["outcome"] == "succeeded"

        # -vvv names the file of every task and of every module sent: all of them from the installed copy.
        task_paths = re.findall(r"^task path: (\S+?):\d+$", output, re.M)
        module_files = re.findall(r"^Using module file (\S+)$", output, re.M)
        worker_files = re.findall(r"supabase_migrate runs in the Ansible worker \(.*\), code from (\S+)$", output, re.M)
        ours = [path for path in task_paths + module_files + worker_files if not path.startswith(ANSIBLE_CORE)]
        assert any("/roles/deploy/tasks/" in path for path in task_paths), task_paths[:5]
        assert any(path.endswith("/plugins/module_utils/migrate_task.py") for path in worker_files), worker_files[:5]
        outside = sorted({path for path in ours if not path.startswith(str(installed.path) + "/")})
        assert outside == [], "files used from outside the installed copy: %s" % outside[:10]
