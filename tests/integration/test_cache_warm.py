"""cache_warm through the real ansible CLI against the kit in a fresh database:
drain, warm, refresh, clean/empty, check mode, hit rates and URL warming."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import psycopg2
import pytest

import kit
from local_http import LocalHTTPServer

pytestmark = pytest.mark.integration

TOKEN = "slogate-test-bearer-7f3a9c21e5"

# Steps off unless a test turns them on, so each test sees only its own step.
NOTHING = dict(drain=False, warm_top=0, refresh_views=False)


@pytest.fixture
def kit_db(pg_db):
    kit.install(pg_db.url)
    return pg_db


def warm(ansible_module, db, defaults=None, check=False, verbosity=0, **options):
    """Run cache_warm on db with defaults (such as NOTHING) overridden by options."""
    args = dict(defaults or {})
    args.update(options, db_url=db.url)
    return ansible_module("cache_warm", args, check=check, verbosity=verbosity)


def count(db, table, where="true"):
    return db.scalar("SELECT count(*) FROM public.%s WHERE %s" % (table, where))


def fill_queue(db, n):
    """n cache entries named by n queue rows, plus one entry nobody invalidates."""
    db.execute("""
        INSERT INTO public.query_cache (key, query_name, value, expires_at)
        SELECT 'search:' || i, 'search', '{}', now() + interval '1 hour' FROM generate_series(1, %s) i;
        INSERT INTO public.query_cache (key, query_name, value, expires_at) VALUES ('other:1', 'other', '{}', now() + interval '1 hour');
        INSERT INTO public.cache_invalidation_queue (cache_key, reason)
        SELECT 'search:' || i, 'test' FROM generate_series(1, %s) i;""", (n, n))


def register_warmer(db, keys=5, broken_key=None):
    """A warmer for query 'search' and request statistics for search:1..keys (search:k asked k times)."""
    db.execute("""
        CREATE FUNCTION public.test_warmer(params jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = '' AS $$
          BEGIN
            IF params ->> 'q' = 'broken' THEN RAISE EXCEPTION 'search backend unavailable for %%', params ->> 'q'; END IF;
            RETURN pg_catalog.jsonb_build_object('answer', params ->> 'q');
          END $$;
        INSERT INTO public.cache_warmers (query_name, function_name, ttl) VALUES ('search', 'public.test_warmer', '10 minutes');
        INSERT INTO public.query_cache_stats (key, query_name, params, requests)
        SELECT 'search:' || i, 'search', jsonb_build_object('q', 'term' || i), i FROM generate_series(1, %s) i;
        INSERT INTO public.query_cache_stats (key, query_name, params, requests) VALUES ('nowarmer:1', 'unregistered', '{}', 99);""",
               (keys,))
    if broken_key:
        db.execute("INSERT INTO public.query_cache_stats (key, query_name, params, requests) "
                   "VALUES (%s, 'search', '{\"q\": \"broken\"}', 1000)", (broken_key,))


def add_fragile_view(db):
    """A materialized view whose refresh fails while public.refresh_switch has a row."""
    db.execute("""
        CREATE TABLE public.refresh_switch (broken boolean PRIMARY KEY);
        ALTER TABLE public.refresh_switch ENABLE ROW LEVEL SECURITY;
        CREATE FUNCTION public.maybe_fail() RETURNS int LANGUAGE plpgsql STABLE SET search_path = '' AS $$
          BEGIN
            IF EXISTS (SELECT 1 FROM public.refresh_switch) THEN RAISE EXCEPTION 'source table is locked for repair'; END IF;
            RETURN 1;
          END $$;
        CREATE MATERIALIZED VIEW public.mv_fragile AS SELECT public.maybe_fail() AS v;
        CREATE UNIQUE INDEX ON public.mv_fragile (v);
        INSERT INTO public.refresh_switch VALUES (true);""")


def insert_metrics(db, hits, misses, age="2 minutes"):
    db.execute("""
        INSERT INTO public.performance_metrics (created_at, endpoint, status, duration_ms, cache_hit)
        SELECT now() - %s::interval, '/api/search', 200, 50, i <= %s FROM generate_series(1, %s) i""",
               (age, hits, hits + misses))


# --- drain --------------------------------------------------------------------------


def test_drain_invalidates_the_named_entries_and_a_rerun_has_nothing_to_drain(kit_db, ansible_module):
    fill_queue(kit_db, 250)
    kit_db.execute("INSERT INTO public.query_cache (key, query_name, value, expires_at) "
                   "SELECT 'user:' || i, 'user', '{}', now() + interval '1 hour' FROM generate_series(1, 4) i;"
                   "INSERT INTO public.cache_invalidation_queue (key_prefix, reason) VALUES ('user:', 'prefix')")
    run = warm(ansible_module, kit_db, NOTHING, drain=True, drain_batch=100)
    assert not run.failed, run.result["msg"]
    assert run.result["changed"] is True and run.result["steps"] == ["drain"]
    drain = run.result["drain"]
    assert {k: drain[k] for k in ("processed", "invalidated", "rounds", "remaining", "stopped")} == {
        "processed": 251, "invalidated": 254, "rounds": 3, "remaining": 0, "stopped": "empty"}
    assert drain["duration_ms"] >= drain["elapsed_ms"] >= 0
    assert count(kit_db, "query_cache") == 1  # other:1 was never queued
    assert count(kit_db, "cache_invalidation_queue", "processed_at IS NULL") == 0
    assert "SELECT public.drain_cache_invalidation_queue(batch => 100, max_seconds => 60) AS result" in run.result["queries"]
    assert run.result["msg"].startswith("drained 251 queue rows (254 cache entries, 0 left)")

    rerun = warm(ansible_module, kit_db, NOTHING, drain=True)
    assert not rerun.failed and rerun.result["changed"] is False
    assert rerun.result["drain"]["processed"] == 0 and rerun.result["drain"]["rounds"] == 0


# --- warm ---------------------------------------------------------------------------


def test_warm_recomputes_the_top_keys_with_their_warmer(kit_db, ansible_module):
    register_warmer(kit_db, keys=5)
    run = warm(ansible_module, kit_db, NOTHING, warm_top=3)
    assert not run.failed, run.result["msg"]
    assert run.result["changed"] is True
    assert {k: run.result["warm"][k] for k in ("requested", "warmed", "failed", "keys", "failures")} == {
        "requested": 3, "warmed": 3, "failed": 0, "keys": ["search:5", "search:4", "search:3"], "failures": []}
    cached = dict(kit_db.execute("SELECT key, value FROM public.query_cache"))
    assert cached == {"search:5": {"answer": "term5"}, "search:4": {"answer": "term4"}, "search:3": {"answer": "term3"}}
    assert "SELECT public.warm_cache_top_queries(n => 3) AS result" in run.result["queries"]


def test_warm_failure_names_the_key_and_why(kit_db, ansible_module):
    register_warmer(kit_db, keys=2, broken_key="search:broken")
    run = warm(ansible_module, kit_db, NOTHING, warm_top=5)
    assert run.failed
    assert run.result["warm"]["warmed"] == 2 and run.result["warm"]["failed"] == 1
    assert run.result["partial_failures"] == [
        "warm key search:broken: search backend unavailable for broken (SQLSTATE P0001)"]
    assert run.result["msg"] == (
        "cache warm-up partly failed: warmed 2 keys (1 failed); cache hit rate n/a before, n/a after; "
        "1 failed: warm key search:broken: search backend unavailable for broken (SQLSTATE P0001)")
    assert count(kit_db, "query_cache") == 2  # the good keys were stored all the same

    tolerant = warm(ansible_module, kit_db, NOTHING, warm_top=5, fail_on_partial=False)
    assert not tolerant.failed and tolerant.result["changed"] is True
    assert tolerant.result["partial_failures"] == run.result["partial_failures"]
    assert "[WARNING]: warm key search:broken: search backend unavailable" in tolerant.stderr


# --- refresh --------------------------------------------------------------------------


def test_refresh_logs_every_view(kit_db, ansible_module):
    run = warm(ansible_module, kit_db, NOTHING, refresh_views=True, refresh_pause_seconds=0.1)
    assert not run.failed, run.result["msg"]
    refresh = run.result["refresh"]
    assert [(v["view"], v["status"], v["concurrent"], v["error"]) for v in refresh["views"]] == [
        ("public.analytics_endpoint_hourly", "succeeded", True, None),
        ("public.analytics_slo_daily", "succeeded", True, None)]
    assert refresh["refreshed"] == 2 and refresh["failed"] == 0 and refresh["total_ms"] >= 100
    assert all(v["duration_ms"] >= 0 for v in refresh["views"])
    log = kit_db.execute("SELECT view_name, status FROM public.mv_refresh_log ORDER BY id")
    assert log == [("public.analytics_endpoint_hourly", "succeeded"), ("public.analytics_slo_daily", "succeeded")]
    assert run.result["changed"] is True
    assert ("SELECT public.refresh_materialized_views_staggered(pause_seconds => 0.1, view_schema => 'public') AS result"
            in run.result["queries"])


def test_failing_view_is_named_and_fail_on_partial_false_lets_the_task_pass(kit_db, ansible_module):
    add_fragile_view(kit_db)
    options = dict(refresh_views=True, refresh_pause_seconds=0)
    run = warm(ansible_module, kit_db, NOTHING, **options)
    assert run.failed
    assert run.result["partial_failures"] == ["view public.mv_fragile: source table is locked for repair (SQLSTATE P0001)"]
    assert "view public.mv_fragile: source table is locked for repair" in run.result["msg"]
    assert run.result["refresh"]["refreshed"] == 2 and run.result["refresh"]["failed"] == 1
    fragile = [v for v in run.result["refresh"]["views"] if v["view"] == "public.mv_fragile"]
    assert fragile[0]["status"] == "failed" and fragile[0]["error"].startswith("source table is locked for repair")
    assert kit_db.scalar("SELECT status FROM public.mv_refresh_log WHERE view_name = 'public.mv_fragile'") == "failed"

    tolerant = warm(ansible_module, kit_db, NOTHING, fail_on_partial=False, **options)
    assert not tolerant.failed and tolerant.result["changed"] is True
    assert tolerant.result["partial_failures"] == run.result["partial_failures"]
    assert count(kit_db, "mv_refresh_log", "status = 'failed'") == 2


def test_missing_refresh_schema_is_named(kit_db, ansible_module):
    run = warm(ansible_module, kit_db, NOTHING, refresh_views=True, refresh_schema="reporting")
    assert run.failed and run.result["msg"] == "refresh_schema reporting does not exist in the database"
    assert count(kit_db, "audit_log") == 0


# --- clean and empty (the rollback's cache invalidation) ---------------------------------


def test_clean_then_empty_then_drain_in_the_runbook_order(kit_db, ansible_module):
    fill_queue(kit_db, 3)
    kit_db.execute("INSERT INTO public.query_cache (key, query_name, value, expires_at) "
                   "SELECT 'old:' || i, 'search', '{}', now() - interval '1 minute' FROM generate_series(1, 2) i")
    run = warm(ansible_module, kit_db, NOTHING, drain=True, clean_expired=True, empty_cache=True)
    assert not run.failed, run.result["msg"]
    assert run.result["steps"] == ["clean_expired", "empty_cache", "drain"]
    assert run.result["clean_expired"]["removed"] == 2
    assert run.result["empty_cache"]["removed"] == 4  # search:1..3 and other:1
    assert run.result["drain"]["processed"] == 3 and run.result["drain"]["invalidated"] == 0
    assert count(kit_db, "query_cache") == 0
    audit = kit_db.execute("SELECT action, detail FROM public.audit_log ORDER BY id")
    assert audit == [("clean_expired_cache", {"removed": 2}), ("empty_query_cache", {"removed": 4})]
    assert "SELECT public.clean_expired_cache() AS removed" in run.result["queries"]


# --- check mode ---------------------------------------------------------------------------


def snapshot(db):
    return {table: count(db, table) for table in ("query_cache", "cache_invalidation_queue", "mv_refresh_log", "audit_log")} | {
        "pending": count(db, "cache_invalidation_queue", "processed_at IS NULL")}


def test_check_mode_reports_the_pending_work_and_changes_nothing(kit_db, ansible_module):
    fill_queue(kit_db, 30)
    register_warmer(kit_db, keys=4)
    kit_db.execute("INSERT INTO public.cache_warmers (query_name, function_name) VALUES ('gone', 'public.no_such_warmer');"
                   "INSERT INTO public.query_cache_stats (key, query_name, requests) VALUES ('gone:1', 'gone', 3);"
                   "INSERT INTO public.query_cache (key, query_name, value, expires_at) "
                   "SELECT 'old:' || i, 'search', '{}', now() - interval '1 minute' FROM generate_series(1, 2) i")
    before = snapshot(kit_db)
    run = warm(ansible_module, kit_db, check=True, clean_expired=True, warm_top=3, drain_batch=7,
               warm_urls=["http://127.0.0.1:9/never-requested"])
    assert not run.failed, run.result["msg"]
    assert snapshot(kit_db) == before
    assert run.result["changed"] is True
    assert run.result["steps"] == ["clean_expired", "drain", "warm", "refresh", "urls"]
    assert run.result["clean_expired"] == {"would_remove": 2}
    assert run.result["drain"] == {"pending": 30, "would_invalidate": 30, "rounds_needed": 5}
    warm_plan = run.result["warm"]
    assert [(c["key"], c["warmer_exists"]) for c in warm_plan["candidates"]] == [
        ("search:4", True), ("gone:1", False), ("search:3", True)]
    assert warm_plan["would_warm"] == 2
    assert warm_plan["would_fail"] == [{"key": "gone:1", "error": "warmer public.no_such_warmer(jsonb) does not exist"}]
    assert [v["view"] for v in run.result["refresh"]["views"]] == ["public.analytics_endpoint_hourly", "public.analytics_slo_daily"]
    assert run.result["refresh"]["would_refresh"] == 2
    assert run.result["urls"] == {"would_request": ["http://127.0.0.1:9/never-requested"], "concurrency": 4}
    assert run.result["queries"][0] == "SET TRANSACTION READ ONLY"
    assert not [q for q in run.result["queries"] if q.startswith(("SELECT public.", "WITH removed"))]  # no kit call, no delete
    assert run.result["msg"].startswith("would clean 2 expired cache entries, drain 30 queue rows (30 cache entries), "
                                        "warm 2 keys, refresh 2 views, request 1 URLs")


def test_check_mode_with_nothing_pending_is_not_changed(kit_db, ansible_module):
    run = warm(ansible_module, kit_db, NOTHING, check=True, drain=True)
    assert not run.failed and run.result["changed"] is False
    assert run.result["drain"] == {"pending": 0, "would_invalidate": 0, "rounds_needed": 0}


# --- hit rate --------------------------------------------------------------------------------


def test_hit_rate_is_null_without_rows_and_a_percentage_with_them(kit_db, ansible_module):
    empty = warm(ansible_module, kit_db, NOTHING)
    assert empty.result["cache_hit_rate_before"] is None and empty.result["cache_hit_rate_after"] is None
    assert empty.result["changed"] is False and empty.result["msg"].startswith("nothing to do")

    insert_metrics(kit_db, hits=12, misses=18)                 # 40 % in the window
    insert_metrics(kit_db, hits=50, misses=0, age="1 hour")    # outside a 15-minute window
    run = warm(ansible_module, kit_db, NOTHING)
    assert run.result["cache_hit_rate_before"] == 40.0 and run.result["cache_hit_rate_after"] == 40.0
    assert run.result["hit_rate"]["before"] == {"requests": 30, "hits": 12, "percent": 40.0}
    wide = warm(ansible_module, kit_db, NOTHING, hit_rate_window_minutes=90)
    assert wide.result["hit_rate"]["before"] == {"requests": 80, "hits": 62, "percent": 77.5}


def test_hit_rate_query_uses_the_created_at_index(kit_db, ansible_module):
    insert_metrics(kit_db, hits=0, misses=20000, age="3 days")
    insert_metrics(kit_db, hits=5, misses=5)
    kit_db.execute("ANALYZE public.performance_metrics")
    run = warm(ansible_module, kit_db, NOTHING)
    query = next(q for q in run.result["queries"] if "FROM public.performance_metrics" in q)
    plan = "\n".join(row[0] for row in kit_db.execute("EXPLAIN " + query))
    assert "performance_metrics_created_at_idx" in plan, plan


# --- URL warming -------------------------------------------------------------------------------


class App(LocalHTTPServer):
    """A small HTTP app on 127.0.0.1: counts requests, the most in flight at once and the headers it got."""

    def __init__(self, delay=0.0, on_request=None):
        self.delay, self.on_request = delay, on_request
        self.lock = threading.Lock()
        self.paths, self.authorizations = [], []
        self.in_flight = self.max_in_flight = 0
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                with app.lock:
                    app.paths.append(self.path)
                    app.authorizations.append(self.headers.get("Authorization"))
                    app.in_flight += 1
                    app.max_in_flight = max(app.max_in_flight, app.in_flight)
                # In flight until the answer goes out: a client that has its answer may send its next request
                # before this thread would get past writing it, which would count one request too many.
                try:
                    time.sleep(app.delay if not self.path.startswith("/slow") else 3)
                    if app.on_request:
                        app.on_request(self.path)
                    code = 404 if self.path.startswith("/missing") else 500 if self.path.startswith("/boom") else 200
                finally:
                    with app.lock:
                        app.in_flight -= 1
                body = b'{"warmed": true}'
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def url(self, path):
        return self.base_url + path


def test_urls_are_requested_with_bounded_concurrency_and_the_token_never_shows(kit_db, ansible_module):
    insert_metrics(kit_db, hits=12, misses=18)  # 40 % before

    def app_logs_a_cache_hit(path):  # what the real app does for each request it serves from its cache
        conn = psycopg2.connect(kit_db.url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("INSERT INTO public.performance_metrics (endpoint, status, duration_ms, cache_hit) "
                            "VALUES (%s, 200, 5, true)", (path,))
        finally:
            conn.close()

    with App(delay=0.3, on_request=app_logs_a_cache_hit) as app:
        urls = [app.url("/api/search?q=%d" % i) for i in range(10)]
        started = time.monotonic()
        run = warm(ansible_module, kit_db, NOTHING, verbosity=3, warm_urls=urls, warm_url_concurrency=3,
                   warm_url_headers={"Authorization": "Bearer " + TOKEN})
        elapsed = time.monotonic() - started
    assert not run.failed, run.result["msg"]
    assert sorted(app.paths) == sorted("/api/search?q=%d" % i for i in range(10))
    assert app.max_in_flight == 3
    assert elapsed >= 4 * 0.3  # ceil(10 / 3) waves of 0.3 s
    assert app.authorizations == ["Bearer " + TOKEN] * 10
    assert TOKEN not in run.output
    urls_result = run.result["urls"]
    assert urls_result["requested"] == 10 and urls_result["succeeded"] == 10 and urls_result["failed"] == 0
    assert [r["url"] for r in urls_result["results"]] == urls
    assert all(r["status"] == 200 and r["ok"] and r["error"] is None and r["bytes"] == 16 and r["duration_ms"] >= 300
               for r in urls_result["results"])
    assert set(urls_result["results"][0]) == {"url", "status", "ok", "duration_ms", "bytes", "error"}
    assert run.result["changed"] is False  # the database was not touched; the app's cache is the app's
    assert run.result["cache_hit_rate_before"] == 40.0
    assert run.result["hit_rate"]["after"] == {"requests": 40, "hits": 22, "percent": 55.0}


def test_url_errors_are_reported_as_text(kit_db, ansible_module):
    with App() as app:
        closed = App()  # a port that was bound and released: nothing listens there
        closed_url = closed.url("/gone")
        closed.server.server_close()
        urls = [app.url("/ok"), app.url("/missing"), app.url("/boom"), app.url("/slow"), closed_url,
                app.url("/ok").replace("http://", "http://user:hunter2secret@")]
        options = dict(warm_urls=urls, warm_url_timeout=1, warm_url_headers={"Authorization": "Bearer " + TOKEN})
        run = warm(ansible_module, kit_db, NOTHING, verbosity=3, **options)
        tolerant = warm(ansible_module, kit_db, NOTHING, fail_on_partial=False, **options)
    results = {r["url"]: r for r in run.result["urls"]["results"]}
    assert results[urls[0]]["status"] == 200 and results[urls[0]]["ok"]
    assert results[urls[1]]["status"] == 404 and results[urls[1]]["error"] == "HTTP 404 Not Found"
    assert results[urls[2]]["status"] == 500 and results[urls[2]]["error"] == "HTTP 500 Internal Server Error"
    assert results[urls[3]]["status"] is None and results[urls[3]]["error"] == "timed out after 1 s"
    assert results[closed_url]["status"] is None and "refused" in results[closed_url]["error"].lower()
    masked = app.url("/ok").replace("http://", "http://user:********@")
    assert results[masked]["ok"]
    assert run.failed and run.result["msg"].startswith("cache warm-up partly failed: requested 2 of 6 URLs")
    assert run.result["partial_failures"] == [
        "URL %s: HTTP 404 Not Found" % urls[1], "URL %s: HTTP 500 Internal Server Error" % urls[2],
        "URL %s: timed out after 1 s" % urls[3], "URL %s: %s" % (closed_url, results[closed_url]["error"])]
    assert "hunter2secret" not in run.output and TOKEN not in run.output
    assert not tolerant.failed and tolerant.stderr.count("[WARNING]: URL ") == 4


def test_bad_url_and_bad_concurrency_are_one_line_errors(kit_db, ansible_module):
    bad_url = warm(ansible_module, kit_db, NOTHING, warm_urls=["ftp://example.com/x"])
    assert bad_url.failed and bad_url.result["msg"] == "warm_urls[0] ftp://example.com/x is not an http:// or https:// URL with a host"
    too_many = warm(ansible_module, kit_db, NOTHING, warm_urls=["http://127.0.0.1:9/"], warm_url_concurrency=100)
    assert too_many.failed and too_many.result["msg"] == "warm_url_concurrency must be between 1 and 32, got 100"


# --- errors ------------------------------------------------------------------------------------


def test_missing_kit_is_a_clear_error(pg_db, ansible_module):
    run = warm(ansible_module, pg_db)
    assert run.failed
    msg = run.result["msg"]
    assert "\n" not in msg and "Traceback" not in run.output
    assert msg.startswith("kit objects missing from the database: function public.drain_cache_invalidation_queue(integer, integer), ")
    assert msg.endswith("; install the kit (role slogate.supabase.kit) first")
    assert run.result["steps"] == []


def test_one_missing_kit_function_is_named(kit_db, ansible_module):
    kit_db.execute("DROP FUNCTION public.warm_cache_top_queries(integer)")
    fill_queue(kit_db, 3)
    run = warm(ansible_module, kit_db)
    assert run.failed and run.result["msg"] == (
        "kit function public.warm_cache_top_queries(integer) is missing from the database; "
        "install the kit (role slogate.supabase.kit) first")
    assert count(kit_db, "cache_invalidation_queue", "processed_at IS NULL") == 3  # nothing ran


def test_a_step_the_server_refuses_fails_with_its_name_and_keeps_the_earlier_steps(kit_db, ansible_module):
    fill_queue(kit_db, 3)
    kit_db.execute("""
        CREATE OR REPLACE FUNCTION public.warm_cache_top_queries(n integer DEFAULT 20) RETURNS jsonb
          LANGUAGE plpgsql SET search_path = '' AS $$ BEGIN RAISE EXCEPTION 'warm-up disabled during maintenance'; END $$""")
    run = warm(ansible_module, kit_db, refresh_views=False)
    assert run.failed
    assert run.result["msg"] == ("warm (public.warm_cache_top_queries) failed: "
                                 "warm-up disabled during maintenance; SQLSTATE P0001")
    assert run.result["steps"] == ["drain"] and run.result["drain"]["processed"] == 3
    assert run.result["changed"] is True
    assert count(kit_db, "cache_invalidation_queue", "processed_at IS NULL") == 0  # the drain was committed


def test_password_never_in_output(kit_db, ansible_module):
    password = kit_db.server.password
    run = warm(ansible_module, kit_db, NOTHING, verbosity=3)
    assert not run.failed
    if len(password) >= 4:
        assert password not in run.output
    assert json.dumps(run.result["queries"]).count("performance_metrics") >= 2
