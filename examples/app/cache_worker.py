"""The cache worker: drains public.cache_invalidation_queue in rounds.

    DATABASE_URL=... python cache_worker.py

Each round calls public.drain_cache_invalidation_queue(batch, max_seconds)
as the worker's database user (DATABASE_URL, or CACHE_WORKER_DATABASE_URL
when set; that user needs EXECUTE on the function, which the kit grants to
service_role: set CACHE_WORKER_ROLE=service_role when the login role only
may SET ROLE to it), logs what it did, and sleeps. SIGTERM or SIGINT stop it
after the current round (a round lasts at most max_seconds).

Settings: CACHE_WORKER_BATCH (100), CACHE_WORKER_MAX_SECONDS (5),
CACHE_WORKER_INTERVAL_SECONDS (2), CACHE_WORKER_ROLE (none).
"""

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass

import psycopg
from psycopg import sql

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from demoapp.config import ConfigError  # noqa: E402
from demoapp.redact import Redactor  # noqa: E402

log = logging.getLogger("cache_worker")

DRAIN = "SELECT public.drain_cache_invalidation_queue(%s, %s)"
ROLE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
MAX_RECONNECT_SECONDS = 30.0


@dataclass(frozen=True)
class WorkerSettings:
    database_url: str
    batch: int = 100
    max_seconds: int = 5
    interval_seconds: float = 2.0
    role: str = ""

    def __repr__(self):
        return "WorkerSettings(batch=%d, max_seconds=%d, interval_seconds=%s, role=%r)" % (
            self.batch, self.max_seconds, self.interval_seconds, self.role)

    @classmethod
    def from_env(cls, env):
        url = (env.get("CACHE_WORKER_DATABASE_URL") or env.get("DATABASE_URL") or "").strip()
        if not url:
            raise ConfigError("DATABASE_URL (or CACHE_WORKER_DATABASE_URL) is not set")
        role = env.get("CACHE_WORKER_ROLE", "").strip()
        if role and not set(role) <= ROLE_NAME_CHARS:
            raise ConfigError("CACHE_WORKER_ROLE must be a plain role name (a-z, 0-9, _), got %r" % role)
        return cls(database_url=url, role=role,
                   batch=_positive(env, "CACHE_WORKER_BATCH", 100, int),
                   max_seconds=_positive(env, "CACHE_WORKER_MAX_SECONDS", 5, int),
                   interval_seconds=_positive(env, "CACHE_WORKER_INTERVAL_SECONDS", 2.0, float))


def _positive(env, name, default, kind):
    text = env.get(name, "").strip()
    try:
        value = kind(text) if text else default
    except ValueError:
        raise ConfigError("%s must be a number, got %r" % (name, text)) from None
    if value <= 0:
        raise ConfigError("%s must be more than 0, got %r" % (name, text))
    return value


class CacheWorker:
    def __init__(self, settings, stop_event=None):
        self.settings = settings
        self.stop = stop_event or threading.Event()
        self.redact = Redactor([settings.database_url])
        self.conn = None
        self.rounds = 0
        self.processed = 0

    def connect(self):
        conn = psycopg.connect(self.settings.database_url, autocommit=True, application_name="slogate-cache-worker",
                               connect_timeout=5)
        if self.settings.role:
            # Session-wide on purpose: the worker's connection does nothing else.
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.settings.role)))
        return conn

    def drain_once(self):
        """One call of the drain function; its jsonb result as a dict."""
        if self.conn is None:
            self.conn = self.connect()
        cur = self.conn.execute(DRAIN, (self.settings.batch, self.settings.max_seconds))
        return cur.fetchone()[0]

    def run(self):
        log.info("cache worker started: %r", self.settings)
        failures = 0
        while not self.stop.is_set():
            try:
                result = self.drain_once()
            except psycopg.Error as exc:
                failures += 1
                self.close()
                wait = min(MAX_RECONNECT_SECONDS, self.settings.interval_seconds * 2 ** failures)
                log.warning("drain failed (retry in %.1f s): %s", wait, self.redact(exc))
                self.stop.wait(wait)
                continue
            failures = 0
            self.rounds += 1
            self.processed += result.get("processed", 0)
            if result.get("processed") or result.get("remaining"):
                log.info("drained: processed=%s invalidated=%s remaining=%s stopped=%s elapsed_ms=%.1f",
                         result.get("processed"), result.get("invalidated"), result.get("remaining"),
                         result.get("stopped"), result.get("elapsed_ms") or 0.0)
            if not result.get("remaining"):
                self.stop.wait(self.settings.interval_seconds)  # a backlog is drained again at once
        self.close()
        log.info("cache worker stopped after %d rounds, %d queue rows processed", self.rounds, self.processed)

    def close(self):
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


def main():
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = WorkerSettings.from_env(os.environ)
    except ConfigError as exc:
        sys.stderr.write("cache_worker.py: error: %s\n" % exc)
        return 2
    worker = CacheWorker(settings)

    def request_stop(signum, frame):
        log.info("signal %d: stopping after this round", signum)
        worker.stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
