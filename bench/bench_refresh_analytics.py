"""refresh_analytics_views_concurrent() on a large performance_metrics table,
against the runbook's 5-minute budget and against plain REFRESH through psql.

One run on one throw-away server:
  1. bootstrap + kit, then --rows metric rows (default 10^7) spread over the
     last --days days (default 30) loaded with the demo's seed generator, ANALYZE;
  2. SELECT public.refresh_analytics_views_concurrent(): the first refresh
     after the load, then a second one with nothing changed (the function's
     own total and per-view times from mv_refresh_log, and the wall time);
  3. the same views with plain `REFRESH MATERIALIZED VIEW`, one psql call per
     view, as a user would run it by hand (this blocks readers meanwhile).
Ratios: concurrent refresh / 300 s budget, and concurrent / plain.
"""

import argparse
import json
import signal
import sys
import time

import psycopg2
from common import ROOT, psql_path, start_server, timed, write_result

sys.path.insert(0, str(ROOT / "examples" / "demo" / "seed"))

import generate  # noqa: E402  pylint: disable=wrong-import-position,import-error
import kit  # noqa: E402  pylint: disable=wrong-import-position,import-error

BUDGET_S = 300
VIEWS_SQL = """SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
WHERE c.relkind = 'm' AND c.relnamespace = 'public'::regnamespace AND c.relname LIKE 'analytics\\_%' ORDER BY c.oid"""


def sql(conn, statement, params=None):
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


def concurrent_refresh(conn, label):
    """One call of the kit's function: wall time, its own result, and each view's logged time."""
    last_log = sql(conn, "SELECT coalesce(max(id), 0) FROM public.mv_refresh_log")[0][0]
    print("  %s ..." % label, flush=True)
    start = time.perf_counter()
    result = sql(conn, "SELECT public.refresh_analytics_views_concurrent(%s)", (BUDGET_S,))[0][0]
    wall = time.perf_counter() - start
    if not result["ok"] and result["failed"]:
        raise SystemExit("%s failed: %s" % (label, json.dumps(result["views"])))
    views = {name: dict(seconds=round(ms / 1000.0, 3), rows=rows, concurrent=concurrent)
             for name, ms, rows, concurrent in sql(conn, """
                 SELECT view_name, duration_ms, rows, concurrent FROM public.mv_refresh_log
                 WHERE id > %s ORDER BY id""", (last_log,))}
    print("  %-44s %.3f s (function total %.3f s, within budget: %s)" % (
        label, wall, result["total_ms"] / 1000.0, result["within_budget"]), flush=True)
    for name, figures in views.items():
        print("    %-42s %.3f s, %d rows" % (name, figures["seconds"], figures["rows"]), flush=True)
    return dict(wall_s=round(wall, 3), function_total_s=round(result["total_ms"] / 1000.0, 3),
                within_budget=result["within_budget"], views=views)


def plain_refresh(url, views):
    """REFRESH MATERIALIZED VIEW, one psql call per view, timed from outside like a user's shell."""
    psql = [psql_path(), url, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    per_view = {}
    for view in views:
        per_view[view] = round(timed("psql REFRESH %s" % view, psql + ["-c", "REFRESH MATERIALIZED VIEW %s;" % view],
                                     1)[0], 3)
    return dict(wall_s=round(sum(per_view.values()), 3), views=per_view)


def _terminate(signum, frame):  # pylint: disable=unused-argument
    raise SystemExit(128 + signum)  # runs the finally below: the server is stopped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="metric rows to load (default 10_000_000)")
    parser.add_argument("--days", type=float, default=30.0, help="spread them over the last DAYS days (default 30)")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    if options.rows < 1 or options.days <= 0:
        parser.error("--rows must be 1 or more and --days positive")
    signal.signal(signal.SIGTERM, _terminate)

    server = start_server()
    conn = None
    try:
        url = server.url
        kit.install(url)
        conn = psycopg2.connect(url)
        conn.autocommit = True
        settings = dict(sql(conn, "SELECT name, pg_catalog.current_setting(name) FROM pg_catalog.pg_settings "
                                  "WHERE name IN ('server_version', 'shared_buffers', 'work_mem', 'maintenance_work_mem', "
                                  "'max_parallel_workers_per_gather')"))
        print("server: PostgreSQL %s, shared_buffers %s, work_mem %s" % (
            settings["server_version"], settings["shared_buffers"], settings["work_mem"]), flush=True)

        print("loading %s rows over the last %g days ..." % ("{:,}".format(options.rows), options.days), flush=True)
        start = time.perf_counter()
        loaded = generate.load_metrics(conn, options.rows, seed=options.seed, hours=options.days * 24, progress=sys.stdout)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        sql(conn, "ANALYZE public.performance_metrics")
        analyze_s = time.perf_counter() - start
        table_bytes = sql(conn, "SELECT pg_catalog.pg_total_relation_size('public.performance_metrics')")[0][0]
        print("  loaded %s rows in %.1f s (%s rows/s), ANALYZE %.1f s, table with indexes %.0f MB" % (
            "{:,}".format(loaded), load_s, "{:,.0f}".format(loaded / load_s), analyze_s, table_bytes / 2 ** 20), flush=True)

        views = [row[0] for row in sql(conn, VIEWS_SQL)]
        print("refreshing %s" % ", ".join(views), flush=True)
        first = concurrent_refresh(conn, "concurrent, first after the load")
        second = concurrent_refresh(conn, "concurrent, again with no change")
        plain = plain_refresh(url, views)

        result = dict(
            rows=loaded, days=options.days, server=settings, table_mb=round(table_bytes / 2 ** 20, 1),
            load=dict(seconds=round(load_s, 2), rows_per_s=round(loaded / load_s), analyze_s=round(analyze_s, 2)),
            budget_s=BUDGET_S,
            concurrent_first=first, concurrent_second=second, plain_psql=plain,
            ratio_first_over_budget=round(first["wall_s"] / BUDGET_S, 3),
            ratio_second_over_budget=round(second["wall_s"] / BUDGET_S, 3),
            ratio_first_over_plain=round(first["wall_s"] / plain["wall_s"], 2),
            ratio_second_over_plain=round(second["wall_s"] / plain["wall_s"], 2),
        )
        print()
        print("load              %s rows in %.1f s (%s rows/s)" % (
            "{:,}".format(loaded), load_s, "{:,.0f}".format(loaded / load_s)))
        print("concurrent #1     %.1f s = %.1f %% of the %d s budget   %.2fx plain" % (
            first["wall_s"], 100 * result["ratio_first_over_budget"], BUDGET_S, result["ratio_first_over_plain"]))
        print("concurrent #2     %.1f s = %.1f %% of the %d s budget   %.2fx plain" % (
            second["wall_s"], 100 * result["ratio_second_over_budget"], BUDGET_S, result["ratio_second_over_plain"]))
        print("plain via psql    %.1f s" % plain["wall_s"])
        write_result("refresh_analytics", result)
    finally:
        if conn is not None:
            conn.close()
        server.stop()


if __name__ == "__main__":
    main()
