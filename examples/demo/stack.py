"""The demo's moving parts on one machine: an embedded PostgreSQL, the demo
project staged release by release, the demo app under supervisord, tokens,
background traffic, and the SLO-gated deploy playbook run against them.

`make demo` drives it through run_demo.py; the playbook integration tests use
the same class, so what the demo shows is what the tests check.

Everything lives under one folder (DemoStack.root): the database cluster, the
project, the app's releases, the deploy state, backups and reports. Secrets
(the database password, the JWT secret, the tokens) are written only to files
of mode 0600 there and handed to Ansible as an extra-vars file.
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
APP_SRC = ROOT / "examples" / "app"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(DEMO / "seed"))

from pgserver import PgServer  # noqa: E402

# The demo's releases: which migrations each one ships (up to a version) and its app settings.
STAGES = {
    "initial": "20260105090004",      # documents and the slogate kit
    "good": "20260110120100",         # runbook steps 1 and 2: search optimization and the punch list
    "bad": "20260120090000",          # search suggestions, shipped with a release that fails 10 % of searches
}
# 10 %, not 5: with ~55 requests a 3-second bucket, 5 % leaves one bucket in 16 without an error, which
# let a test's 3-bucket watch miss two consecutive breaches about once in 16 runs (0.9**55: one bucket in 330).
BAD_RELEASE_ENV = {"FAULT_ERROR_RATE": "0.1"}


@contextlib.contextmanager
def brought_up(prefix, stack_class=None, bucket_seconds=3, **bring_up_args):
    """A stack in a new temp folder, brought up with DemoStack.bring_up, stopped and removed afterwards."""
    # Not pytest's tmp_path: its parents are private to root, and the database server runs as its own user.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    stack = (stack_class or DemoStack)(root, log=lambda *args: None, bucket_seconds=bucket_seconds)
    try:
        stack.start_database()
        stack.bring_up(**bring_up_args)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def stop_process_group(pid, timeout=15):
    """SIGINT to a process group we started in an earlier process, SIGKILL if it outlives the timeout."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_private(path, text):
    """Write a file only its owner can read, from the first byte."""
    path = Path(path)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


class DemoStack:
    def __init__(self, root, log=print, bucket_seconds=10):
        self.root = Path(root)
        self.log = log
        self.bucket_seconds = bucket_seconds
        self.project = self.root / "project"
        self.app_root = self.root / "app"
        self.state_dir = self.root / "state"
        self.port = free_port()
        self.app_url = "http://127.0.0.1:%d" % self.port
        self.server = None
        self.db_url = None
        self.tokens = {}
        self.traffic = None
        self.traffic_pid = None       # a Locust started by an earlier process (the command line's `up`)
        self.supervisord_started = False

    # -- the database -------------------------------------------------------------------------

    def start_database(self):
        self.root.mkdir(parents=True, exist_ok=True)
        # Run as root, the server runs as its own user, who must reach its folder; secrets here are files of mode 0600.
        os.chmod(self.root, 0o755)
        self.server = PgServer(self.root / "pg")
        self.server.start()
        self.create_database(self.server.url)
        self.log("database: PostgreSQL on 127.0.0.1:%d, database demo (bootstrap applied)" % self.server.port)

    def use_server(self, admin_url):
        """A server started elsewhere (a container, PG_URL): database demo is created there."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.create_database(admin_url)
        self.log("database: demo on the given server (bootstrap applied)")

    def create_database(self, admin_url):
        admin = psycopg2.connect(admin_url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS demo WITH (FORCE)")
            cur.execute("CREATE DATABASE demo")
        admin.close()
        url = urlsplit(admin_url)
        self.db_url = urlunsplit(url._replace(path="/demo"))
        self.sql((ROOT / "roles" / "kit" / "files" / "bootstrap.sql").read_text())

    def sql(self, text, params=None):
        conn = psycopg2.connect(self.db_url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(text, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def seed_documents(self, count):
        import generate
        conn = psycopg2.connect(self.db_url)
        try:
            started = time.monotonic()
            generate.load_documents(conn, count, seed=1)
            self.log("seed: %d documents in %.1f s" % (count, time.monotonic() - started))
        finally:
            conn.close()

    # -- the project, release by release ---------------------------------------------------------

    def stage_project(self, stage):
        """Copy the demo project's migrations (and down scripts) up to the stage's version."""
        cutoff = STAGES[stage]
        for kind in ("migrations", "rollbacks"):
            target = self.project / "supabase" / kind
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted((DEMO / "supabase" / kind).glob("*.sql")):
                if path.name[:14] <= cutoff and not (target / path.name).exists():
                    shutil.copy2(path, target / path.name)
        return sorted(p.name for p in (self.project / "supabase" / "migrations").glob("*.sql"))

    def deploy_first_release(self):
        """The project's first release (documents table and the kit) through the deploy playbook, without an app."""
        self.stage_project("initial")
        code, output = self.run_playbook("deploy", self.extra_vars(
            "r0", slogate_smoke=False, slogate_loadtest=False, slogate_monitor=False, slogate_app_root=None,
            slogate_app_url=None), stream=False)
        if code:
            raise RuntimeError("the first release's deploy failed:\n%s" % output[-3000:])

    def bring_up(self, documents=500, traffic_users=2, ledger_rows=100):
        """What the playbook scenarios start from: the first release, documents, a ledger, release r1 serving,
        background users (none when traffic_users is 0)."""
        self.deploy_first_release()
        self.seed_documents(documents)
        if ledger_rows:
            self.fill_ledger(ledger_rows)
        self.start_app("r1")
        if traffic_users:
            self.start_traffic(users=traffic_users, think=(0.05, 0.15))

    # -- the app --------------------------------------------------------------------------------

    def python(self, *args, env=None):
        run = subprocess.run([sys.executable] + [str(a) for a in args], capture_output=True, text=True,
                             env=dict(os.environ, **(env or {})), check=False)
        if run.returncode:
            raise RuntimeError("%s failed: %s" % (Path(str(args[0])).name, run.stderr.strip()[-2000:]))
        return run.stdout

    def start_app(self, release_id="r1"):
        self.app_root.mkdir(parents=True, exist_ok=True)
        jwt_secret = secrets.token_urlsafe(48)
        write_private(self.root / "jwt_secret", jwt_secret)
        self.python(APP_SRC / "supervisor.py", "secrets", "--file", self.app_root / "secrets.env",
                    env=dict(DATABASE_URL=self.db_url, JWT_SECRET=jwt_secret))
        self.python(APP_SRC / "supervisor.py", "write", "--root", self.app_root, "--secrets", self.app_root / "secrets.env",
                    "--port", self.port)
        self.python(APP_SRC / "release.py", "build", "--root", self.app_root, "--id", release_id)
        self.python(APP_SRC / "release.py", "switch", "--root", self.app_root, "--id", release_id)
        subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(self.app_root / "supervisord.conf")], check=True)
        self.supervisord_started = True
        self.wait_for_release(release_id)
        self.mint_tokens(jwt_secret)
        self.log("app: release %s serving on %s under supervisord" % (release_id, self.app_url))

    def supervisorctl(self, *args):
        return [str(VENV_BIN / "supervisorctl"), "-c", str(self.app_root / "supervisord.conf")] + list(args)

    def health(self):
        try:
            with urllib.request.urlopen(self.app_url + "/api/health", timeout=2) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            return None

    def wait_for_release(self, release_id, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health and health.get("release") == release_id:
                return health
            time.sleep(0.3)
        raise RuntimeError("the app did not serve release %s within %d s" % (release_id, timeout))

    def mint_tokens(self, jwt_secret):
        secret_file = self.root / "jwt_secret"
        minted = json.loads(self.python(APP_SRC / "mint_token.py", "--secret-file", secret_file, "--json"))
        self.tokens = dict(admin=minted["admin"], user=minted["regular"], expired=minted["expired"])
        # One admin token per purpose: the rate limit counts per token.
        for purpose in ("rate_limit", "loadtest", "traffic"):
            token = json.loads(self.python(APP_SRC / "mint_token.py", "--secret-file", secret_file, "--json", "--kind", "admin",
                                           "--sub", str(uuid.uuid4())))["admin"]
            self.tokens[purpose] = token
        assert jwt_secret not in json.dumps(self.tokens)

    # -- traffic --------------------------------------------------------------------------------

    def start_traffic(self, users=3, think=(0.1, 0.3)):
        """Steady background users (Locust), so every SLO bucket has requests to judge."""
        out = self.root / "traffic"
        out.mkdir(exist_ok=True)
        env = dict(os.environ, SLOGATE_USER_TOKEN=self.tokens["user"], SLOGATE_ADMIN_TOKEN=self.tokens["traffic"],
                   SLOGATE_THINK_MIN=str(think[0]), SLOGATE_THINK_MAX=str(think[1]))
        self.traffic = subprocess.Popen(
            [str(VENV_BIN / "locust"), "-f", str(ROOT / "tests" / "load" / "locustfile.py"), "--headless", "-u", str(users),
             "-r", str(users), "--host", self.app_url, "--only-summary", "--loglevel", "ERROR"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(out / "locust.log", "w"), start_new_session=True)
        self.log("traffic: %d Locust users in the background" % users)

    def stop_traffic(self):
        if self.traffic and self.traffic.poll() is None:
            os.killpg(self.traffic.pid, signal.SIGINT)
            try:
                self.traffic.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.traffic.pid, signal.SIGKILL)
                self.traffic.wait()
        elif self.traffic_pid:
            stop_process_group(self.traffic_pid)
        self.traffic = None
        self.traffic_pid = None

    def fill_ledger(self, rows=100):
        """A table of the app's data written before any deploy under test: a rollback must not lose a row of it."""
        self.sql("CREATE TABLE public.ledger (id int PRIMARY KEY, note text); ALTER TABLE public.ledger ENABLE ROW LEVEL SECURITY;"
                 "CREATE POLICY ledger_read ON public.ledger FOR SELECT TO authenticated USING (true);"
                 "INSERT INTO public.ledger SELECT g, 'written before the deploy' FROM generate_series(1, %s) g", (rows,))

    # -- the playbooks --------------------------------------------------------------------------

    def extra_vars(self, release_id, release_env=None, **overrides):
        """The deploy's variables; written to a 0600 file because they hold the secrets."""
        values = dict(
            slogate_db_url=self.db_url,
            slogate_project_dir=str(self.project),
            slogate_state_dir=str(self.state_dir),
            slogate_app_root=str(self.app_root),
            slogate_app_src=str(APP_SRC),
            slogate_app_url=self.app_url,
            slogate_release_id=release_id,
            slogate_release_env=release_env or {},
            slogate_app_restart_command=self.supervisorctl("restart", "slogate-app"),
            slogate_worker_restart_command=self.supervisorctl("restart", "slogate-cache-worker"),
            slogate_admin_token=self.tokens.get("admin", ""),
            slogate_user_token=self.tokens.get("user", ""),
            slogate_rate_limit_token=self.tokens.get("rate_limit", ""),
            slogate_loadtest_admin_token=self.tokens.get("loadtest", ""),
            slogate_bucket_seconds=self.bucket_seconds,
            slogate_poll_interval=2,
            predeploy_baseline_minutes=10,
            loadtest_users=8,
            loadtest_spawn_rate=8,
            loadtest_seconds=15,
            loadtest_think_min=0.2,
            loadtest_think_max=0.5,
            loadtest_pgbench_seconds=5,
            loadtest_pgbench_clients=2,
            deploy_refresh_pause_seconds=0.2,
        )
        for name, value in overrides.items():
            if value is None:
                values.pop(name, None)   # None: leave the variable undefined
            else:
                values[name] = value
        return write_private(self.root / ("vars-%s.json" % release_id), json.dumps(values))

    def ansible_env(self):
        return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
                    ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="False",
                    ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                    ANSIBLE_PIPELINING="True",
                    PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")))

    def playbook_command(self, playbook, vars_file, *extra):
        return [str(VENV_BIN / "ansible-playbook"), "slogate.supabase.%s" % playbook, "-e", "@%s" % vars_file] + list(extra)

    def run_playbook(self, playbook, vars_file, *extra, stream=True):
        """Run a playbook of the collection; return (exit code, output)."""
        command = self.playbook_command(playbook, vars_file, *extra)
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.ansible_env(),
                                cwd=str(self.root))
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if stream:
                sys.stdout.write(line)
                sys.stdout.flush()
        return proc.wait(), "".join(lines)

    def deploy_state(self):
        path = self.state_dir / "deploy-state.json"
        return json.loads(path.read_text()) if path.exists() else None

    def reports(self):
        return sorted((self.state_dir / "reports").glob("*.md"))

    def applied_versions(self):
        rows = self.sql("SELECT version FROM supabase_migrations.schema_migrations ORDER BY version")
        return [row[0] for row in rows or []]

    # -- across processes (the command line below) ------------------------------------------------

    def save(self):
        """What a later process needs to drive this stack; 0600, it holds the database URL and the tokens."""
        state = dict(bucket_seconds=self.bucket_seconds, port=self.port, db_url=self.db_url, tokens=self.tokens,
                     traffic_pid=self.traffic.pid if self.traffic else self.traffic_pid,
                     supervisord_started=self.supervisord_started)
        self.root.mkdir(parents=True, exist_ok=True)
        write_private(self.root / "stack.json", json.dumps(state))

    @classmethod
    def load(cls, root, log=print):
        state = json.loads((Path(root) / "stack.json").read_text())
        stack = cls(root, log=log, bucket_seconds=state["bucket_seconds"])
        stack.port = state["port"]
        stack.app_url = "http://127.0.0.1:%d" % stack.port
        stack.db_url, stack.tokens = state["db_url"], state["tokens"]
        stack.traffic_pid, stack.supervisord_started = state["traffic_pid"], state["supervisord_started"]
        return stack

    # -- the end --------------------------------------------------------------------------------

    def stop(self):
        self.stop_traffic()
        if self.supervisord_started:
            subprocess.run(self.supervisorctl("shutdown"), capture_output=True, check=False)
            pid_file = self.app_root / "run" / "supervisord.pid"
            deadline = time.monotonic() + 20
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            self.supervisord_started = False
        if self.server:
            self.server.stop()
            self.server = None


# -- the command line: the stack on a server started elsewhere (Molecule's PostgreSQL container) -------------

def cli_up(args):
    admin_url = os.environ.get("SLOGATE_ADMIN_URL")
    if args.password_file:
        password = args.password_file.read_text().strip()
        admin_url = "postgresql://postgres:%s@%s:%d/postgres" % (quote(password, safe=""), args.host, args.port)
    if not admin_url and not args.embedded:
        raise SystemExit("stack.py up: give --embedded, or --port and --password-file, or set SLOGATE_ADMIN_URL")
    stack = DemoStack(args.root, log=lambda text: print(text, flush=True), bucket_seconds=args.bucket_seconds)
    stack.save()   # from here on, `down` finds what to stop even if a later step fails
    if args.embedded:
        stack.start_database()
    else:
        stack.use_server(admin_url)
    stack.deploy_first_release()
    stack.seed_documents(args.documents)
    stack.fill_ledger()
    stack.save()
    stack.start_app("r1")
    stack.save()
    stack.start_traffic(users=args.users, think=(0.05, 0.15))
    stack.save()
    print(json.dumps(dict(app_url=stack.app_url, release=(stack.health() or {}).get("release"))))


def cli_stage(args):
    stack = DemoStack.load(args.root, log=lambda text: print(text, file=sys.stderr))
    before = set(p.name for p in (stack.project / "supabase" / "migrations").glob("*.sql"))
    staged = stack.stage_project(args.stage)
    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit("stack.py stage: --set wants NAME=JSON, got %r" % item)
        overrides[name] = json.loads(value)
    vars_file = stack.extra_vars(args.release, BAD_RELEASE_ENV if args.bad else None, **overrides)
    print(json.dumps(dict(vars_file=str(vars_file), new_files=sorted(set(staged) - before))))


def cli_down(args):
    if (Path(args.root) / "stack.json").exists():
        DemoStack.load(args.root, log=lambda text: None).stop()
    if (Path(args.root) / "pg").exists():   # an embedded server `up --embedded` started
        PgServer(Path(args.root) / "pg").stop()


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="stack.py", description="The demo stack against a PostgreSQL server started elsewhere.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="database demo with the kit on the given server, documents, a ledger table, "
                                        "the app on release r1 under supervisord, background traffic")
    up.add_argument("--embedded", action="store_true", help="start an embedded PostgreSQL under ROOT/pg (stopped by down)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=5432)
    up.add_argument("--password-file", type=Path, help="the superuser postgres's password (else $SLOGATE_ADMIN_URL)")
    up.add_argument("--bucket-seconds", type=int, default=3)
    up.add_argument("--documents", type=int, default=500)
    up.add_argument("--users", type=int, default=2)
    stage = commands.add_parser("stage", help="copy the project's migrations up to STAGE and write the deploy's variables "
                                              "for RELEASE; prints {vars_file, new_files}")
    stage.add_argument("stage", choices=sorted(STAGES))
    stage.add_argument("--release", required=True)
    stage.add_argument("--bad", action="store_true", help="the release fails 10 %% of searches")
    stage.add_argument("--set", action="append", default=[], metavar="NAME=JSON", help="a deploy variable (JSON value)")
    down = commands.add_parser("down", help="stop the traffic, the app and an embedded server (a server given to up is left running)")
    for command in (up, stage, down):
        command.add_argument("--root", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        dict(up=cli_up, stage=cli_stage, down=cli_down)[args.command](args)
    except (RuntimeError, OSError, psycopg2.Error) as exc:
        raise SystemExit("stack.py %s: %s" % (args.command, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)) from None


if __name__ == "__main__":
    main()
