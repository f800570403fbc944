"""The demo API (Starlette): health, search, and two admin endpoints.

    uvicorn --factory demoapp.web:create_app --app-dir examples/app --port 3000

Every data query runs in a transaction as the caller (auth.request_session),
so RLS decides what comes back; the admin check here only spares the
database a query whose answer RLS would empty anyway.
"""

import asyncio
import logging
import os
import random
import time
from contextlib import asynccontextmanager
from dataclasses import replace

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

from demoapp import search
from demoapp.auth import ANONYMOUS, Unauthorized, authenticate, request_session
from demoapp.config import Settings
from demoapp.metrics import MetricsMiddleware, MetricsWriter
from demoapp.ratelimit import SlidingWindowLimiter
from demoapp.redact import Redactor

log = logging.getLogger("demoapp")

HEALTH = "/api/health"
SEARCH = "/api/search"
ADMIN_PERFORMANCE = "/api/admin/performance"
ADMIN_AUDIT_LOG = "/api/admin/audit-log"
ENDPOINTS = (HEALTH, SEARCH, ADMIN_PERFORMANCE, ADMIN_AUDIT_LOG)

PERFORMANCE_WINDOW_MINUTES = 60
AUDIT_DEFAULT_LIMIT = 50
AUDIT_MAX_LIMIT = 500

SERVER_VERSION = "SELECT pg_catalog.current_setting('server_version')"
RECENT_BUCKETS = (
    "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(b) ORDER BY b.bucket DESC), '[]'::jsonb)"
    " FROM (SELECT a.bucket, a.requests, a.errors, a.err_rate, a.p95_ms, a.p99_ms,"
    "              p.avg_ms, p.cache_hits, p.cache_hit_rate_percent"
    "       FROM public.api_metrics_5m a JOIN public.performance_analytics_5min p ON p.bucket = a.bucket"
    "       WHERE a.bucket > now() - pg_catalog.make_interval(mins => %s)"
    "       ORDER BY a.bucket DESC) AS b")
SLO_FUNCTION = ("public.check_slo_compliance(integer, double precision, double precision, double precision,"
                " double precision, integer)")
SLO_CALLABLE = ("SELECT CASE WHEN pg_catalog.to_regprocedure(%s::text) IS NULL THEN false"
                " ELSE pg_catalog.has_function_privilege(%s::text, 'EXECUTE') END")
SLO_COMPLIANCE = "SELECT public.check_slo_compliance()"
RECENT_AUDIT_ROWS = (
    "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(a) ORDER BY a.occurred_at DESC, a.id DESC), '[]'::jsonb)"
    " FROM (SELECT l.id, l.occurred_at, l.actor, l.action, l.object, l.detail"
    "       FROM public.audit_log l ORDER BY l.occurred_at DESC, l.id DESC LIMIT %s) AS a")


class ApiError(Exception):
    """An answer other than 200 with a fixed, generic body."""

    def __init__(self, status, error, headers=None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or {}


def bounded_int(text, default, low, high, name):
    text = (text or "").strip()
    try:
        value = int(text) if text else default
    except ValueError:
        raise ApiError(400, "%s must be a whole number" % name) from None
    if not low <= value <= high:
        raise ApiError(400, "%s must be %d..%d" % (name, low, high))
    return value


async def fetch_value(conn, statement, params=None):
    cur = await conn.execute(statement, params)
    return (await cur.fetchone())[0]


class DemoApp:
    """The app's parts (settings, pool, limiter, metrics) and its endpoints."""

    def __init__(self, settings, clock=time.monotonic, rng=None):
        self.settings = settings
        self.redact = Redactor([settings.database_url], [settings.jwt_secret])
        self.rng = rng or random.Random()
        self.pool = AsyncConnectionPool(
            settings.database_url, open=False, name="demoapp", min_size=settings.pool_min_size,
            max_size=settings.pool_max_size, timeout=settings.pool_timeout_seconds,
            kwargs={"autocommit": True, "application_name": "slogate-demo-app"})
        self.limiter = SlidingWindowLimiter(settings.admin_rate_limit, settings.admin_rate_window_seconds, clock)
        self.metrics = MetricsWriter(settings.database_url, settings.release_id, self.redact,
                                     flush_seconds=settings.metrics_flush_ms / 1000.0,
                                     batch_rows=settings.metrics_batch_rows, max_buffer=settings.metrics_max_buffer)

    @asynccontextmanager
    async def lifespan(self, app):
        # wait=False: the app comes up even while the database is down, and says so on /api/health.
        await self.pool.open(wait=False)
        self.metrics.start()
        log.info("release %s serving (faults: %s)", self.settings.release_id, self.settings.faults)
        try:
            yield
        finally:
            await self.metrics.stop()
            await self.pool.close()
            log.info("release %s stopped; %d metrics rows written", self.settings.release_id, self.metrics.written)

    def starlette(self):
        routes = [Route(HEALTH, self.get_health, methods=["GET"]),
                  Route(SEARCH, self.get_search, methods=["GET"]),
                  Route(ADMIN_PERFORMANCE, self.get_admin_performance, methods=["GET"]),
                  Route(ADMIN_AUDIT_LOG, self.get_admin_audit_log, methods=["GET"])]
        handlers = {ApiError: self.api_error, Unauthorized: self.unauthorized,
                    search.BadSearch: self.bad_search, psycopg.OperationalError: self.unavailable}
        middleware = [Middleware(MetricsMiddleware, writer=self.metrics, endpoints=ENDPOINTS, redact=self.redact)]
        return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=self.lifespan)

    # --- error answers --------------------------------------------------------

    async def api_error(self, request, exc):
        return JSONResponse({"error": exc.error}, status_code=exc.status, headers=exc.headers)

    async def unauthorized(self, request, exc):
        log.debug("401 on %s: %s", request.url.path, exc)
        return JSONResponse({"error": "unauthorized"}, status_code=401)

    async def bad_search(self, request, exc):
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def unavailable(self, request, exc):
        log.warning("database unavailable on %s: %s", request.url.path, self.redact(exc))
        return JSONResponse({"error": "unavailable"}, status_code=503)

    # --- who is asking --------------------------------------------------------

    def identify(self, request):
        identity = authenticate(request.headers.get("authorization"), self.settings.jwt_secret)
        request.state.user_role = identity.label
        return identity

    def admin(self, request):
        """The caller, if an admin within the rate limit; else 401, 429 or 403."""
        identity = self.identify(request)
        if identity is ANONYMOUS:
            raise Unauthorized("no token on an admin endpoint")
        wait = self.limiter.check(identity.token_key)
        if wait:
            raise ApiError(429, "rate limited", {"Retry-After": str(wait)})
        if not identity.is_admin:
            if self.settings.faults.admin_open:
                # The bug this fault plays: an admin endpoint that talks to the database with the service key.
                return replace(identity, role="service_role", claims=dict(identity.claims, role="service_role"))
            raise ApiError(403, "forbidden")
        return identity

    # --- endpoints ------------------------------------------------------------

    async def get_health(self, request):
        request.state.user_role = "anon"
        try:
            async with self.pool.connection(timeout=self.settings.health_timeout_seconds) as conn:
                version = await fetch_value(conn, SERVER_VERSION)
        except psycopg.Error as exc:
            log.warning("health: database unavailable: %s", self.redact(exc))
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "version": version, "release": self.settings.release_id})

    async def get_admin_performance(self, request):
        identity = self.admin(request)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(*request_session(identity))
            buckets = await fetch_value(conn, RECENT_BUCKETS, (PERFORMANCE_WINDOW_MINUTES,))
            slo = None
            if await fetch_value(conn, SLO_CALLABLE, (SLO_FUNCTION, SLO_FUNCTION)):
                slo = await fetch_value(conn, SLO_COMPLIANCE)
        return JSONResponse({"release": self.settings.release_id, "window_minutes": PERFORMANCE_WINDOW_MINUTES,
                             "buckets": buckets, "slo": slo})

    async def get_admin_audit_log(self, request):
        identity = self.admin(request)
        limit = bounded_int(request.query_params.get("limit"), AUDIT_DEFAULT_LIMIT, 1, AUDIT_MAX_LIMIT, "limit")
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(*request_session(identity))
            rows = await fetch_value(conn, RECENT_AUDIT_ROWS, (limit,))
        return JSONResponse({"count": len(rows), "rows": rows})

    async def get_search(self, request):
        identity = self.identify(request)
        q, limit, scope = search.parse_params(request.query_params, identity.role)
        faults = self.settings.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000.0)
        if faults.error_rate and self.rng.random() < faults.error_rate:
            return JSONResponse({"error": "internal error"}, status_code=500)
        async with self.pool.connection() as conn:
            results, cached = await self.public_part(conn, identity, q, limit, use_cache=not faults.cache_bypass)
            if scope == "all" and identity.sub:
                results = await self.with_own_private(conn, identity, q, limit, results)
        request.state.cache_hit = cached
        return JSONResponse({"q": q, "limit": limit, "scope": scope, "cached": cached, "count": len(results),
                             "results": results}, headers={"X-Cache": "hit" if cached else "miss"})

    # --- search steps, each its own transaction -------------------------------

    async def public_part(self, conn, identity, q, limit, use_cache):
        """(public results, whether they came from the cache)."""
        key, params = search.cache_entry(q, limit)
        if use_cache:
            cached = await self.cache_get(conn, key, params)
            if cached is not None:
                return cached, True
        async with conn.transaction():
            await conn.execute(*request_session(identity))
            ranked = await self.search_function_exists(conn)
            results = await fetch_value(conn, *search.public_query(ranked, q, limit))
        if use_cache:
            await self.cache_put(conn, key, params, results)
        return results, False

    async def with_own_private(self, conn, identity, q, limit, public):
        """`public` plus the caller's private matches, as the caller (RLS agrees: they own them)."""
        async with conn.transaction():
            await conn.execute(*request_session(identity))
            ranked = await self.search_function_exists(conn)
            return await fetch_value(conn, *search.merge_query(ranked, q, limit, public))

    async def search_function_exists(self, conn):
        # Asked every time, so applying or rolling back the search migration needs no restart.
        return await fetch_value(conn, search.SEARCH_FUNCTION_EXISTS, (search.SEARCH_FUNCTION,))

    async def cache_get(self, conn, key, params):
        async with conn.transaction():
            await conn.execute(search.AS_SERVICE_ROLE)
            return await fetch_value(conn, search.CACHE_GET, (key, Jsonb(params)))

    async def cache_put(self, conn, key, params, results):
        async with conn.transaction():
            await conn.execute(search.AS_SERVICE_ROLE)
            await conn.execute(search.CACHE_PUT, (key, Jsonb(params), Jsonb(results), self.settings.cache_ttl_seconds))


def configure_logging():
    if not logging.getLogger().handlers:
        logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def create_app(settings=None):
    """The ASGI app (a uvicorn --factory); settings default to the environment."""
    configure_logging()
    settings = settings or Settings.from_env(os.environ)
    return DemoApp(settings).starlette()
