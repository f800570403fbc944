"""One public.performance_metrics row per request, written in the background.

The middleware times each request and hands the row to MetricsWriter, which
COPYs what has gathered every `flush` seconds (or sooner once `batch_rows`
are waiting) over a connection of its own, so a request never waits for its
metrics row. Rows wait in memory (at most `max_buffer`, oldest dropped first)
while the database is unreachable, and are flushed at shutdown.
"""

import asyncio
import logging
import time
from collections import deque
from datetime import datetime, timezone

import psycopg
from starlette.responses import JSONResponse

log = logging.getLogger("demoapp.metrics")
request_log = logging.getLogger("demoapp.requests")

COPY_METRICS = ("COPY public.performance_metrics (created_at, endpoint, method, status, duration_ms, cache_hit,"
                " user_role, release_id) FROM STDIN")
# performance_metrics is writable by service_role only (the API roles may at
# most read it, through RLS).
AS_SERVICE_ROLE = "SET LOCAL ROLE service_role"
MAX_RETRY_SECONDS = 30.0
OTHER_ENDPOINT = "other"  # unknown paths share one label: scanners must not grow the endpoint list


class MetricsWriter:
    def __init__(self, database_url, release_id, redact, flush_seconds=0.2, batch_rows=100, max_buffer=50000):
        self.database_url = database_url
        self.release_id = release_id
        self.redact = redact
        self.flush_seconds = flush_seconds
        self.batch_rows = batch_rows
        self.max_buffer = max_buffer
        self.dropped = 0
        self.written = 0
        self._rows = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = None
        self._conn = None
        self._failures = 0
        self._retry_at = 0.0

    def record(self, created_at, endpoint, method, status, duration_ms, cache_hit, user_role):
        if len(self._rows) >= self.max_buffer:
            self._rows.popleft()
            self.dropped += 1
        self._rows.append((created_at, endpoint, method, status, duration_ms, cache_hit, user_role, self.release_id))
        if len(self._rows) >= self.batch_rows:
            self._wake.set()

    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-writer")

    async def stop(self):
        """Write what is left (one last try) and close the connection."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._retry_at = 0.0
        await self.flush()
        if self._rows:
            log.warning("metrics: %d rows lost at shutdown (database unavailable)", len(self._rows))
        await self._close()

    async def _run(self):
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self):
        if not self._rows or time.monotonic() < self._retry_at:
            return
        batch = list(self._rows)
        self._rows.clear()
        try:
            await self._copy(batch)
        except psycopg.Error as exc:
            self._put_back(batch)
            await self._close()
            self._back_off(exc)
            return
        self.written += len(batch)
        if self._failures:
            log.info("metrics: database reachable again, %d rows written", len(batch))
        self._failures = 0

    async def _copy(self, batch):
        if self._conn is None:
            self._conn = await psycopg.AsyncConnection.connect(self.database_url, application_name="slogate-demo-metrics",
                                                               connect_timeout=5)
        async with self._conn.transaction():
            await self._conn.execute(AS_SERVICE_ROLE)
            async with self._conn.cursor().copy(COPY_METRICS) as copy:
                for row in batch:
                    await copy.write_row(row)

    def _put_back(self, batch):
        # Failed rows go before the ones recorded meanwhile; the oldest go first when full.
        rows = batch + list(self._rows)
        overflow = max(0, len(rows) - self.max_buffer)
        self.dropped += overflow
        self._rows = deque(rows[overflow:])

    def _back_off(self, exc):
        # Retry after 0.2 s, 0.4 s, ... up to 30 s, and say so once per outage, not every flush.
        self._failures += 1
        self._retry_at = time.monotonic() + min(MAX_RETRY_SECONDS, self.flush_seconds * 2 ** self._failures)
        if self._failures == 1:
            log.warning("metrics: cannot write, %d rows kept for a retry: %s", len(self._rows), self.redact(exc))

    async def _close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


class MetricsMiddleware:
    """ASGI middleware: times every HTTP request and records its row, also when
    the app raised (then the client gets a 500 and the row says 500).

    Endpoints tell it more through request.state: user_role and cache_hit.
    """

    def __init__(self, app, writer, endpoints, redact):
        self.app = app
        self.writer = writer
        self.endpoints = frozenset(endpoints)
        self.redact = redact

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        created_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        status = None

        async def send_and_note_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        except Exception as exc:  # the one place unhandled errors end: answered, logged, counted
            request_log.error("unhandled %s on %s %s: %s", type(exc).__name__, scope["method"], scope["path"], self.redact(exc))
            if status is None:
                await JSONResponse({"error": "internal error"}, status_code=500)(scope, receive, send)
            status = 500
        finally:
            state = scope.get("state") or {}
            endpoint = scope["path"] if scope["path"] in self.endpoints else OTHER_ENDPOINT
            self.writer.record(created_at, endpoint, scope["method"], status, 1000.0 * (time.perf_counter() - started),
                               bool(state.get("cache_hit", False)), state.get("user_role"))
