"""The demo app (examples/app) for integration tests: its database schema,
documents, and the app itself started for real in a subprocess."""

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg2

import kit

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples" / "app"
DEMO_MIGRATIONS = sorted((ROOT / "examples" / "demo" / "supabase" / "migrations").glob("*.sql"))
GENERATOR = ROOT / "examples" / "demo" / "seed" / "generate.py"
SEARCH_MIGRATION = "20260110120000"
# Variables of the developer's shell that must not reach an app under test.
FOREIGN_VARIABLES = ("DATABASE_URL", "SUPABASE_DB_URL", "JWT_SECRET", "RELEASE_ID", "PORT", "HOST",
                     "CACHE_WORKER_DATABASE_URL", "CACHE_WORKER_ROLE")

sys.path.insert(0, str(APP_DIR))


def install_demo_schema(url, before=None):
    """Bootstrap plus the demo project's migrations, one transaction per file,
    in version order; with `before`, only the versions below it."""
    kit.apply_file(url, kit.BOOTSTRAP)
    for path in DEMO_MIGRATIONS:
        if before is None or path.name.split("_", 1)[0] < before:
            kit.apply_file(url, path)


def apply_migration(url, version):
    kit.apply_file(url, next(p for p in DEMO_MIGRATIONS if p.name.startswith(version + "_")))


def load_generated_documents(url, count, seed=1):
    spec = importlib.util.spec_from_file_location("seed_generate", GENERATOR)
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    conn = psycopg2.connect(url)
    try:
        return generate.load_documents(conn, count, seed=seed)
    finally:
        conn.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environment(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES and not k.startswith("FAULT_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra or {})
    return env


class AppProcess:
    """One app started with `command`; stdout+stderr go to `log_path`.

    `responses` counts the requests answered while waiting for health: each
    of them wrote a metrics row too.
    """

    def __init__(self, command, env, log_path, port):
        self.command = [str(part) for part in command]
        self.env = env
        self.log_path = Path(log_path)
        self.port = port
        self.base_url = "http://127.0.0.1:%d" % port
        self.process = None
        self.responses = 0

    def start(self, expect_status=200, timeout=20.0):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=str(APP_DIR), start_new_session=True)
        try:
            self.wait_for_health(expect_status, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_for_health(self, expect_status, timeout):
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError("app exited with %s:\n%s" % (self.process.returncode, self.log()))
                try:
                    status = client.get("/api/health").status_code
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                self.responses += 1
                if status == expect_status:
                    return
                time.sleep(0.05)
        raise AssertionError("app not answering %d on /api/health within %.0f s:\n%s" % (expect_status, timeout, self.log()))

    def client(self, **kwargs):
        return httpx.Client(base_url=self.base_url, timeout=10.0, **kwargs)

    def stop(self, timeout=20.0):
        """SIGTERM, as a process manager would; SIGKILL if it does not end in time. Returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError("app ignored SIGTERM for %.0f s" % timeout) from None

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def app_process(log_path, database_url, jwt_secret, release_id="itest", launcher=APP_DIR / "launch.py", env=None):
    """An AppProcess running launch.py (from the source folder, or a release's) on a free port."""
    port = free_port()
    variables = dict(DATABASE_URL=database_url, JWT_SECRET=jwt_secret, RELEASE_ID=release_id, PORT=str(port),
                     HOST="127.0.0.1")
    variables.update(env or {})
    return AppProcess([sys.executable, launcher, "app"], clean_environment(variables), log_path, port)


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll `predicate` until it returns a true value (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, value))
        time.sleep(interval)
