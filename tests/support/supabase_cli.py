"""Drive the real Supabase CLI (npm package `supabase`, pinned in package.json)
against a plain PostgreSQL database URL, as ../shared/notes/supabase-cli.md
describes: no Docker, no login, no prompt.

    cli = SupabaseCli(project_dir)           # project_dir holds supabase/migrations/
    rc, out, err = cli.push(db_url)          # supabase db push --remote=<url> --yes
    listing = cli.migration_list(db_url)     # parsed JSON of supabase migration list

The binary comes from the project's own files: `ensure_cli()` runs
`make -C <repo root> cli` (npm ci from package-lock.json) once when it is
missing. The password of a database URL never appears in an error raised here.
"""

import fcntl
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections import namedtuple
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent.parent
CLI_PATH = ROOT / "node_modules" / ".bin" / "supabase"
DEFAULT_TIMEOUT = 120
MAKE_TIMEOUT = 600
MASK = "********"

_ENSURE_LOCK = threading.Lock()


class SupabaseCliError(Exception):
    """The CLI could not be installed, did not finish in time, or printed something unexpected."""


class CliResult(namedtuple("CliResult", ["returncode", "stdout", "stderr"])):
    """What one CLI run gave: unpacks as (returncode, stdout, stderr)."""

    __slots__ = ()

    def json(self):
        """stdout parsed as JSON (with --output-format json the CLI prints one document there)."""
        return json.loads(self.stdout)


def mask_url(url):
    """The URL with its password replaced by ********."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc
    userinfo, hostport = netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc="%s:%s@%s" % (user, MASK, hostport)))


def mask(text, *urls):
    """text with every given URL's password (as written in the URL and decoded) masked."""
    for url in urls:
        parts = urlsplit(url)
        if parts.password is None:
            continue
        for secret in sorted({parts.password, unquote(parts.password)} - {""}, key=len, reverse=True):
            text = text.replace(secret, MASK)
    return text


def with_sslmode_disable(url):
    """Add sslmode=disable unless the URL sets an sslmode (the CLI otherwise tries TLS first and warns)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "sslmode" for key, _value in query):
        return url
    query.append(("sslmode", "disable"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _lock_path():
    tag = re.sub(r"[^A-Za-z0-9]+", "_", str(ROOT)).strip("_")[-80:]
    return Path(tempfile.gettempdir()) / ("slogate-supabase-cli-%s.lock" % tag)


def ensure_cli():
    """Path of the CLI, installed with `make -C ROOT cli` when missing (once, also across xdist workers)."""
    if CLI_PATH.exists():
        return CLI_PATH
    with _ENSURE_LOCK:
        with open(_lock_path(), "w", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be running npm ci right now
            try:
                if not CLI_PATH.exists():
                    try:
                        proc = subprocess.run(["make", "-C", str(ROOT), "cli"], stdin=subprocess.DEVNULL, capture_output=True,
                                              text=True, timeout=MAKE_TIMEOUT, check=False)
                    except (OSError, subprocess.TimeoutExpired) as exc:
                        raise SupabaseCliError("make cli failed: %s" % exc) from None
                    if proc.returncode != 0 or not CLI_PATH.exists():
                        tail = (proc.stdout + proc.stderr).strip()[-3000:]
                        raise SupabaseCliError("make cli (npm ci of package-lock.json) did not install %s (exit %d):\n%s"
                                               % (CLI_PATH, proc.returncode, tail))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return CLI_PATH


class SupabaseCli:
    """The CLI run on one project folder (the folder that holds supabase/migrations/)."""

    def __init__(self, workdir, binary=None, timeout=DEFAULT_TIMEOUT, env=None):
        self.workdir = Path(workdir)
        self.binary = Path(binary) if binary else ensure_cli()
        self.timeout = timeout
        self.extra_env = dict(env or {})

    @property
    def migrations_dir(self):
        return self.workdir / "supabase" / "migrations"

    def write_migration(self, filename, sql):
        """Write supabase/migrations/<filename> and return its path."""
        self.migrations_dir.mkdir(parents=True, exist_ok=True)
        path = self.migrations_dir / filename
        path.write_text(sql, encoding="utf-8")
        return path

    def environment(self):
        env = dict(os.environ)
        for name in ("SUPABASE_DB_URL", "DATABASE_URL", "SUPABASE_ACCESS_TOKEN", "SUPABASE_DB_PASSWORD", "PGPASSWORD"):
            env.pop(name, None)
        env.update(SUPABASE_TELEMETRY_DISABLED="1", DO_NOT_TRACK="1", NO_COLOR="1")
        env.update(self.extra_env)
        return env

    def run(self, args, db_url=None, yes=True):
        """Run `supabase ARGS --workdir WORKDIR --agent no [--yes]`: no stdin, bounded by the timeout.

        db_url: the URL in ARGS, masked in any error raised here. --agent no: the
        CLI would otherwise guess from the environment whether an AI agent runs
        it and switch its default output to JSON. yes=False only to see the
        CLI refuse (without --yes and without a TTY it changes nothing).
        """
        cmd = [str(self.binary)] + list(args) + ["--workdir", str(self.workdir), "--agent", "no"]
        if yes:
            cmd.append("--yes")
        secrets = [db_url] if db_url else []
        # Its own session: the npm shim (node) spawns the Go binary, and a timeout must end both.
        with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=self.environment(), cwd=str(self.workdir), start_new_session=True) as proc:
            try:
                stdout, stderr = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                stdout, stderr = proc.communicate()
                raise SupabaseCliError(mask("supabase did not finish within %ss: %s\n%s%s" % (
                    self.timeout, " ".join(cmd), stdout, stderr), *secrets)) from None
        return CliResult(proc.returncode, stdout, stderr)

    def push(self, db_url, dry_run=False, include_all=False, output_format=None):
        """`supabase db push --remote=<url>`: CliResult(returncode, stdout, stderr)."""
        args = ["db", "push", "--remote=%s" % with_sslmode_disable(db_url)]
        if dry_run:
            args.append("--dry-run")
        if include_all:
            args.append("--include-all")
        if output_format:
            args += ["--output-format", output_format]
        return self.run(args, db_url=db_url)

    def migration_list(self, db_url):
        """`supabase migration list --remote=<url> --output-format json`, parsed.

        {"migrations": [{"local": version or "", "remote": version or "", "time": ...}, ...],
        "message": ..., "target": ...}; the CLI exits 0 even when local and remote disagree.
        """
        result = self.run(["migration", "list", "--remote=%s" % with_sslmode_disable(db_url), "--output-format", "json"],
                          db_url=db_url)
        try:
            data = result.json()
        except ValueError:
            data = None
        if result.returncode != 0 or not isinstance(data, dict) or "migrations" not in data:
            raise SupabaseCliError(mask("supabase migration list on %s failed (exit %d):\n%s%s" % (
                mask_url(db_url), result.returncode, result.stdout, result.stderr), db_url))
        return data
