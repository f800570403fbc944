"""The kit's functions on a real database: verifiers, SLO compliance, refresh, drain, cache."""

import json
import threading
import uuid

import psycopg2
import pytest

import kit

pytestmark = pytest.mark.integration


@pytest.fixture
def kit_db(pg_db):
    kit.install(pg_db.url)
    return pg_db


def call(db, expression, params=None):
    return db.scalar("SELECT " + expression, params)


def checks_by_name(result):
    return {check["name"]: check for check in result["checks"]}


# --- verifiers -------------------------------------------------------------

def test_verifiers_pass_on_a_fresh_kit(kit_db):
    for function in ("verify_migration_success()", "verify_final_punchlist_migration()",
                     "verify_materialized_view_indexes()"):
        result = call(kit_db, function)
        assert result["ok"] is True, (function, [c for c in result["checks"] if not c["ok"]])
        assert result["checks"] and all(set(c) == {"name", "ok", "detail"} for c in result["checks"])


def test_dropped_unique_index_is_named(kit_db):
    kit_db.execute("DROP INDEX public.analytics_slo_daily_key")
    result = checks_by_name(call(kit_db, "verify_migration_success()"))
    assert result["matview_unique_indexes"] == {
        "name": "matview_unique_indexes", "ok": False, "detail": "no usable unique index: public.analytics_slo_daily"}
    per_view = checks_by_name(call(kit_db, "verify_materialized_view_indexes()"))
    assert per_view["public.analytics_slo_daily"]["ok"] is False
    assert per_view["public.analytics_slo_daily"]["detail"].startswith("no valid unique index")
    assert per_view["public.analytics_endpoint_hourly"]["ok"] is True


def test_disabled_rls_is_named(kit_db):
    kit_db.execute("ALTER TABLE public.audit_log DISABLE ROW LEVEL SECURITY")
    result = call(kit_db, "verify_final_punchlist_migration()")
    assert result["ok"] is False
    assert checks_by_name(result)["rls_enabled"]["detail"] == "RLS disabled on: public.audit_log"


def test_missing_function_is_named(kit_db):
    kit_db.execute("DROP FUNCTION public.clean_expired_cache()")
    check = checks_by_name(call(kit_db, "verify_migration_success()"))["functions_exist"]
    assert check == {"name": "functions_exist", "ok": False, "detail": "missing: public.clean_expired_cache()"}


def test_mutable_search_path_is_named(kit_db):
    kit_db.execute("CREATE FUNCTION public.loose() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$")
    check = checks_by_name(call(kit_db, "verify_final_punchlist_migration()"))["function_search_path"]
    assert check["ok"] is False and check["detail"] == "mutable search_path: public.loose()"


def test_policy_not_limited_to_admins_is_named(kit_db):
    kit_db.execute("CREATE POLICY leak ON public.query_cache FOR SELECT TO anon USING (true)")
    check = checks_by_name(call(kit_db, "verify_final_punchlist_migration()"))["admin_tables_admin_only"]
    assert check["ok"] is False and check["detail"].endswith("public.query_cache")


def test_unindexed_foreign_key_is_named(kit_db):
    kit_db.execute("CREATE TABLE public.parent (id int PRIMARY KEY); ALTER TABLE public.parent ENABLE ROW LEVEL SECURITY;"
                   "CREATE TABLE public.child (id int PRIMARY KEY, parent_id int REFERENCES public.parent);")
    check = checks_by_name(call(kit_db, "verify_final_punchlist_migration()"))["foreign_keys_indexed"]
    assert check["ok"] is False and check["detail"] == "unindexed: child_parent_id_fkey on public.child"
    kit_db.execute("CREATE INDEX ON public.child (parent_id)")
    assert checks_by_name(call(kit_db, "verify_final_punchlist_migration()"))["foreign_keys_indexed"]["ok"] is True


def test_maintenance_function_granted_to_api_is_named(kit_db):
    kit_db.execute("GRANT EXECUTE ON FUNCTION public.clean_expired_cache() TO authenticated")
    check = checks_by_name(call(kit_db, "verify_final_punchlist_migration()"))["maintenance_not_executable_by_api"]
    assert check["ok"] is False and check["detail"] == "executable: public.clean_expired_cache() by authenticated"


# --- check_slo_compliance ---------------------------------------------------

def insert_window_metrics(db, rows):
    """rows: (status, duration_ms, cache_hit) placed 2 minutes before the current bucket starts."""
    db.execute("""
        INSERT INTO public.performance_metrics (created_at, endpoint, status, duration_ms, cache_hit)
        SELECT date_bin('5 minutes', now(), TIMESTAMPTZ '1970-01-01 00:00:00+00') - interval '2 minutes',
               '/api/search', r.status, r.duration_ms, r.cache_hit
        FROM json_to_recordset(%s) AS r(status int, duration_ms float8, cache_hit bool)""",
               (json.dumps([dict(status=s, duration_ms=d, cache_hit=c) for s, d, c in rows]),))


def percentile_cont(values, fraction):
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_slo_all_within_thresholds(kit_db):
    insert_window_metrics(kit_db, [(200, 100.0 + i, i % 2 == 0) for i in range(100)])
    result = call(kit_db, "check_slo_compliance()")
    assert result["ok"] is True and result["status"] == "pass" and result["requests"] == 100
    checks = checks_by_name(result)
    assert checks["p95_ms"]["value"] == pytest.approx(percentile_cont([100.0 + i for i in range(100)], 0.95))
    assert checks["cache_hit_rate"]["value"] == pytest.approx(50.0)
    assert all(c["status"] == "pass" and c["samples"] == 100 for c in checks.values())


@pytest.mark.parametrize("rows, metric, value", [
    ([(200, 100.0, True)] * 90 + [(200, 900.0, True)] * 10, "p95_ms", 900.0),
    ([(200, 100.0, True)] * 98 + [(200, 1500.0, True)] * 2, "p99_ms", percentile_cont([100.0] * 98 + [1500.0] * 2, 0.99)),
    ([(200, 100.0, True)] * 98 + [(500, 100.0, True)] * 2, "err_rate", 2.0),
    ([(200, 100.0, True)] * 98 + [(0, 100.0, True), (None, 100.0, True)], "err_rate", 2.0),
    ([(200, 100.0, True)] * 10 + [(200, 100.0, False)] * 90, "cache_hit_rate", 10.0),
], ids=["p95 over 500", "p99 over 1000", "5xx over 1 %", "no response counts as error", "cache hit under 30 %"])
def test_slo_breach_is_flagged_with_its_number(kit_db, rows, metric, value):
    insert_window_metrics(kit_db, rows)
    result = call(kit_db, "check_slo_compliance()")
    assert result["ok"] is False and result["status"] == "breach"
    checks = checks_by_name(result)
    assert checks[metric]["status"] == "breach" and checks[metric]["ok"] is False
    assert checks[metric]["value"] == pytest.approx(value)
    assert [name for name, c in checks.items() if c["status"] == "breach"] == [metric]
    assert "breaks" in checks[metric]["detail"] and "over 100 requests" in checks[metric]["detail"]


def test_slo_client_errors_are_not_errors(kit_db):
    insert_window_metrics(kit_db, [(200, 100.0, True)] * 80 + [(401, 50.0, False), (403, 50.0, True), (429, 10.0, True)] * 5
                          + [(200, 100.0, True)] * 5)
    checks = checks_by_name(call(kit_db, "check_slo_compliance()"))
    assert checks["err_rate"]["value"] == 0 and checks["err_rate"]["status"] == "pass"


def test_slo_exactly_at_threshold_breaks_a_strict_rule(kit_db):
    insert_window_metrics(kit_db, [(200, 100.0, True)] * 99 + [(500, 100.0, True)])
    check = checks_by_name(call(kit_db, "check_slo_compliance()"))["err_rate"]
    assert check["value"] == pytest.approx(1.0) and check["status"] == "breach"  # err_rate < 1 is the success criterion


def test_slo_empty_window_is_no_data_not_a_pass(kit_db):
    result = call(kit_db, "check_slo_compliance()")
    assert result["ok"] is None and result["status"] == "no_data" and result["requests"] == 0
    assert all(c["status"] == "no_data" and c["ok"] is None for c in result["checks"])
    assert result["checks"][0]["detail"] == "no data: 0 requests in the window, 20 needed"


def test_slo_min_samples_boundary(kit_db):
    insert_window_metrics(kit_db, [(200, 100.0, True)] * 19)
    assert call(kit_db, "check_slo_compliance()")["status"] == "no_data"
    insert_window_metrics(kit_db, [(200, 100.0, True)])
    assert call(kit_db, "check_slo_compliance()")["status"] == "pass"


def test_slo_ignores_the_current_bucket_and_old_rows(kit_db):
    kit_db.execute("""
        INSERT INTO public.performance_metrics (created_at, endpoint, status, duration_ms, cache_hit)
        SELECT ts, '/api/search', 500, 5000, false
        FROM unnest(ARRAY[date_bin('5 minutes', now(), TIMESTAMPTZ '1970-01-01 00:00:00+00'),
                          date_bin('5 minutes', now(), TIMESTAMPTZ '1970-01-01 00:00:00+00') - interval '15 minutes 1 second'])
             AS ts, generate_series(1, 50)""")
    assert call(kit_db, "check_slo_compliance()")["status"] == "no_data"


def test_slo_thresholds_are_parameters(kit_db):
    insert_window_metrics(kit_db, [(200, 100.0, True)] * 100)
    result = call(kit_db, "check_slo_compliance(15, p95_ms_max => 50)")
    assert checks_by_name(result)["p95_ms"]["status"] == "breach"


# --- refresh -----------------------------------------------------------------

def test_staggered_refresh_logs_each_view_and_keeps_going_after_a_failure(kit_db):
    kit_db.execute("""
        CREATE TABLE public.refresh_switch (broken boolean PRIMARY KEY);
        ALTER TABLE public.refresh_switch ENABLE ROW LEVEL SECURITY;
        CREATE FUNCTION public.maybe_fail() RETURNS int LANGUAGE plpgsql STABLE SET search_path = '' AS $$
          BEGIN
            IF EXISTS (SELECT 1 FROM public.refresh_switch) THEN RAISE EXCEPTION 'source table is locked for repair'; END IF;
            RETURN 1;
          END $$;
        CREATE MATERIALIZED VIEW public.mv_fragile AS SELECT public.maybe_fail() AS v;
        CREATE UNIQUE INDEX ON public.mv_fragile (v);
        CREATE MATERIALIZED VIEW public.mv_after AS SELECT 1 AS v;  -- no unique index: refreshed plainly
        INSERT INTO public.refresh_switch VALUES (true);""")
    result = call(kit_db, "refresh_materialized_views_staggered(0.2)")
    assert result["ok"] is False and result["failed"] == 1
    statuses = {v["view"]: (v["status"], v["concurrent"]) for v in result["views"]}
    assert statuses == {"public.analytics_endpoint_hourly": ("succeeded", True), "public.analytics_slo_daily": ("succeeded", True),
                        "public.mv_fragile": ("failed", True), "public.mv_after": ("succeeded", False)}
    assert result["total_ms"] >= 3 * 200  # three pauses between four views
    log = kit_db.execute("SELECT view_name, status, error, finished_at IS NOT NULL, duration_ms >= 0 "
                         "FROM public.mv_refresh_log ORDER BY id")
    assert [row[:2] for row in log] == [("public.analytics_endpoint_hourly", "succeeded"), ("public.analytics_slo_daily", "succeeded"),
                                        ("public.mv_fragile", "failed"), ("public.mv_after", "succeeded")]
    assert "source table is locked for repair" in log[2][2]
    assert all(row[3] and row[4] for row in log)


def test_analytics_refresh_is_concurrent_and_within_budget(kit_db):
    insert_window_metrics(kit_db, [(200, 100.0, True)] * 30)
    result = call(kit_db, "refresh_analytics_views_concurrent()")
    assert result["ok"] is True and result["within_budget"] is True and result["budget_ms"] == 300000
    assert {v["view"] for v in result["views"]} == {"public.analytics_endpoint_hourly", "public.analytics_slo_daily"}
    assert all(v["concurrent"] and v["status"] == "succeeded" for v in result["views"])
    assert kit_db.scalar("SELECT requests FROM public.analytics_slo_daily") == 30


def test_analytics_refresh_over_budget_is_not_ok(kit_db):
    result = call(kit_db, "refresh_analytics_views_concurrent(0)")
    assert result["ok"] is False and result["within_budget"] is False


def test_staggered_refresh_rejects_a_negative_pause(kit_db):
    with pytest.raises(psycopg2.errors.InvalidParameterValue, match="pause_seconds must be 0 or more"):
        call(kit_db, "refresh_materialized_views_staggered(-1)")


# --- drain ------------------------------------------------------------------

def fill_queue(db, n):
    db.execute("""
        INSERT INTO public.query_cache (key, query_name, value, expires_at)
        SELECT 'search:' || i, 'search', '{}', now() + interval '1 hour' FROM generate_series(1, %s) i;
        INSERT INTO public.query_cache (key, query_name, value, expires_at) VALUES ('other:1', 'other', '{}', now() + interval '1 hour');
        INSERT INTO public.cache_invalidation_queue (cache_key, reason)
        SELECT 'search:' || i, 'test' FROM generate_series(1, %s) i;""", (n, n))


def test_drain_processes_in_batches_and_reports_counts(kit_db):
    fill_queue(kit_db, 250)
    result = call(kit_db, "drain_cache_invalidation_queue(100, 60)")
    assert {k: result[k] for k in ("ok", "processed", "invalidated", "rounds", "remaining", "stopped")} == {
        "ok": True, "processed": 250, "invalidated": 250, "rounds": 3, "remaining": 0, "stopped": "empty"}
    assert kit_db.scalar("SELECT count(*) FROM public.query_cache") == 1  # other:1 stays
    assert call(kit_db, "drain_cache_invalidation_queue(100, 60)")["processed"] == 0


def test_drain_prefix_entries(kit_db):
    fill_queue(kit_db, 0)
    kit_db.execute("INSERT INTO public.query_cache (key, query_name, value, expires_at) "
                   "SELECT 'search:' || i, 'search', '{}', now() + interval '1 hour' FROM generate_series(1, 5) i;"
                   "INSERT INTO public.cache_invalidation_queue (key_prefix) VALUES ('search:')")
    result = call(kit_db, "drain_cache_invalidation_queue(10, 60)")
    assert result["processed"] == 1 and result["invalidated"] == 5
    assert kit_db.scalar("SELECT array_agg(key) FROM public.query_cache") == ["other:1"]


def test_drain_stops_at_the_time_limit(kit_db):
    fill_queue(kit_db, 10)
    result = call(kit_db, "drain_cache_invalidation_queue(5, 0)")
    assert result["stopped"] == "time" and result["processed"] == 0 and result["remaining"] == 10


def test_drain_skips_rows_another_caller_holds(kit_db):
    fill_queue(kit_db, 20)
    holder = psycopg2.connect(kit_db.url)
    try:
        with holder.cursor() as cur:  # a transaction of its own, as a drain in progress would be
            cur.execute("SELECT id FROM public.cache_invalidation_queue ORDER BY id LIMIT 5 FOR UPDATE")
            result = call(kit_db, "drain_cache_invalidation_queue(3, 10)")
            assert result["processed"] == 15 and result["remaining"] == 5 and result["stopped"] == "empty"
        holder.rollback()
    finally:
        holder.close()
    assert call(kit_db, "drain_cache_invalidation_queue(3, 10)")["processed"] == 5


def test_drain_is_exactly_once_under_two_concurrent_callers(kit_db):
    n = 3000
    fill_queue(kit_db, n)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def drainer():
        conn = psycopg2.connect(kit_db.url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                barrier.wait()
                cur.execute("SELECT public.drain_cache_invalidation_queue(20, 60), pg_backend_pid()")
                results.append(cur.fetchone())
        except Exception as exc:  # pylint: disable=broad-except  # reported by the assertion below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=drainer) for dummy in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert sum(r[0]["processed"] for r in results) == n
    assert sum(r[0]["invalidated"] for r in results) == n
    by_pid = dict(kit_db.execute("SELECT processed_by, count(*) FROM public.cache_invalidation_queue GROUP BY 1"))
    assert sum(by_pid.values()) == n and set(by_pid) <= {r[1] for r in results}
    for result, pid in results:
        assert by_pid.get(pid, 0) == result["processed"]
    assert kit_db.scalar("SELECT count(*) FROM public.cache_invalidation_queue WHERE processed_at IS NULL") == 0


# --- cache --------------------------------------------------------------------

def test_clean_expired_cache_removes_only_expired_entries(kit_db):
    kit_db.execute("""
        INSERT INTO public.query_cache (key, query_name, value, expires_at)
        SELECT 'old:' || i, 'search', '{}', now() - interval '1 second' FROM generate_series(1, 3) i;
        INSERT INTO public.query_cache (key, query_name, value, expires_at)
        SELECT 'new:' || i, 'search', '{}', now() + interval '1 hour' FROM generate_series(1, 2) i;""")
    assert call(kit_db, "clean_expired_cache()") == 3
    assert sorted(r[0] for r in kit_db.execute("SELECT key FROM public.query_cache")) == ["new:1", "new:2"]
    assert kit_db.scalar("SELECT detail FROM public.audit_log WHERE action = 'clean_expired_cache'") == {"removed": 3}


def test_cache_get_and_put_count_requests_and_expire(kit_db):
    assert call(kit_db, "slogate.cache_get('search:a', 'search', '{\"q\": \"a\"}')") is None
    kit_db.execute("SELECT slogate.cache_put('search:a', 'search', '{\"q\": \"a\"}', '[1]', interval '1 hour')")
    assert call(kit_db, "slogate.cache_get('search:a', 'search', '{\"q\": \"a\"}')") == [1]
    assert kit_db.execute("SELECT requests FROM public.query_cache_stats WHERE key = 'search:a'") == [(2,)]
    assert kit_db.execute("SELECT hits FROM public.query_cache WHERE key = 'search:a'") == [(1,)]
    kit_db.execute("UPDATE public.query_cache SET expires_at = now() - interval '1 second'")
    assert call(kit_db, "slogate.cache_get('search:a', 'search', '{\"q\": \"a\"}')") is None


def test_warm_cache_top_queries_warms_the_most_requested(kit_db):
    kit_db.execute("""
        CREATE FUNCTION public.test_warmer(params jsonb) RETURNS jsonb LANGUAGE sql STABLE SET search_path = ''
          AS $$ SELECT pg_catalog.jsonb_build_object('answer', params ->> 'q') $$;
        INSERT INTO public.cache_warmers (query_name, function_name, ttl) VALUES ('search', 'public.test_warmer', '10 minutes');
        INSERT INTO public.query_cache_stats (key, query_name, params, requests)
        SELECT 'search:' || i, 'search', jsonb_build_object('q', 'term' || i), i FROM generate_series(1, 5) i;
        INSERT INTO public.query_cache_stats (key, query_name, params, requests) VALUES ('nowarmer:1', 'unregistered', '{}', 99);""")
    result = call(kit_db, "warm_cache_top_queries(3)")
    assert result["ok"] is True and result["warmed"] == 3 and result["keys"] == ["search:5", "search:4", "search:3"]
    cached = dict(kit_db.execute("SELECT key, value FROM public.query_cache"))
    assert cached == {"search:5": {"answer": "term5"}, "search:4": {"answer": "term4"}, "search:3": {"answer": "term3"}}
    ttl_ok = kit_db.scalar("SELECT bool_and(expires_at BETWEEN now() + interval '9 minutes' AND now() + interval '11 minutes') "
                           "FROM public.query_cache")
    assert ttl_ok is True


def test_warm_cache_reports_a_missing_warmer(kit_db):
    kit_db.execute("""
        INSERT INTO public.cache_warmers (query_name, function_name) VALUES ('search', 'public.gone');
        INSERT INTO public.query_cache_stats (key, query_name, requests) VALUES ('search:x', 'search', 1);""")
    result = call(kit_db, "warm_cache_top_queries(5)")
    assert result["ok"] is False and result["warmed"] == 0
    assert result["failed"] == [{"key": "search:x", "error": "warmer public.gone(jsonb) does not exist"}]


# --- RLS through real roles -----------------------------------------------------

def as_role(db, role, claims, statement):
    """Run one statement as an API role with the given JWT claims; return rows or raise."""
    conn = psycopg2.connect(db.url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL ROLE %s" % role)
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            cur.execute(statement)
            return cur.fetchall()
    finally:
        conn.rollback()
        conn.close()


USER = {"role": "authenticated", "sub": str(uuid.uuid4()), "app_metadata": {"admin": False}}
ADMIN = {"role": "authenticated", "sub": str(uuid.uuid4()), "app_metadata": {"admin": True}}
ADMIN_TABLES = ["performance_metrics", "query_cache", "query_cache_stats", "cache_warmers", "cache_invalidation_queue",
                "mv_refresh_log", "audit_log", "api_metrics_5m", "performance_analytics_5min"]


@pytest.fixture
def rls_db(kit_db):
    insert_window_metrics(kit_db, [(200, 100.0, True)] * 25)
    kit_db.execute("""
        INSERT INTO public.query_cache (key, query_name, value, expires_at) VALUES ('k', 'q', '{}', now() + interval '1 hour');
        INSERT INTO public.query_cache_stats (key, query_name) VALUES ('k', 'q');
        INSERT INTO public.cache_warmers (query_name, function_name) VALUES ('q', 'public.f');
        INSERT INTO public.cache_invalidation_queue (cache_key) VALUES ('k');
        INSERT INTO public.mv_refresh_log (view_name) VALUES ('v');
        INSERT INTO public.audit_log (action) VALUES ('a');""")
    return kit_db


@pytest.mark.parametrize("table", ADMIN_TABLES)
def test_admin_tables_hidden_from_a_regular_user(rls_db, table):
    assert as_role(rls_db, "authenticated", USER, "SELECT count(*) FROM public.%s" % table) == [(0,)]
    assert as_role(rls_db, "authenticated", ADMIN, "SELECT count(*) > 0 FROM public.%s" % table) == [(True,)]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        as_role(rls_db, "anon", {"role": "anon"}, "SELECT count(*) FROM public.%s" % table)


def test_api_roles_cannot_write_admin_tables(rls_db):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        as_role(rls_db, "authenticated", ADMIN, "INSERT INTO public.audit_log (action) VALUES ('forged') RETURNING id")


@pytest.mark.parametrize("function", ["check_slo_compliance()", "verify_migration_success()",
                                      "verify_final_punchlist_migration()", "verify_materialized_view_indexes()"])
def test_admin_functions_need_admin_claims(rls_db, function):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="forbidden"):
        as_role(rls_db, "authenticated", USER, "SELECT public." + function)
    (result,), = as_role(rls_db, "authenticated", ADMIN, "SELECT public." + function)
    assert "checks" in result
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        as_role(rls_db, "anon", {"role": "anon"}, "SELECT public." + function)


def test_admin_sees_real_slo_figures(rls_db):
    (result,), = as_role(rls_db, "authenticated", ADMIN, "SELECT public.check_slo_compliance()")
    assert result["requests"] == 25 and result["status"] == "pass"


@pytest.mark.parametrize("function", ["drain_cache_invalidation_queue(10, 1)", "warm_cache_top_queries(1)",
                                      "refresh_materialized_views_staggered(0)", "refresh_analytics_views_concurrent()",
                                      "clean_expired_cache()"])
def test_maintenance_functions_are_not_for_the_api(rls_db, function):
    for claims in (USER, ADMIN):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied for function"):
            as_role(rls_db, "authenticated", claims, "SELECT public." + function)
    assert as_role(rls_db, "service_role", {"role": "service_role"}, "SELECT public." + function)


def test_analytics_views_are_not_for_the_api(rls_db):
    for view in ("analytics_endpoint_hourly", "analytics_slo_daily"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            as_role(rls_db, "authenticated", ADMIN, "SELECT count(*) FROM public.%s" % view)
