"""slo_check's cost does not grow with the table: the runbook rule set over the
last hour of a performance_metrics table of 10^5 rows and of 10^7 rows.

Both tables hold the same last hour of traffic (20,000 requests); the rest is
older history. Measured: the evaluation as slo_check runs it (the windowed
date_bin query through the created_at index, plus the rule engine), median of
repeated runs, and the whole `ansible` task once per table. The alternative a
user has, the runbook's `SELECT AVG(err_rate) FROM api_metrics_5m WHERE bucket
> now() - interval '1 hour'` through psql, is timed on the same tables.
"""

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
import uuid

import psycopg2
import psycopg2.extras
from common import ROOT, VENV_BIN, ansible_env, psql_path, start_server, write_result

sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "examples" / "demo" / "seed"))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))

import generate  # noqa: E402  pylint: disable=wrong-import-position
import kit  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.slogate.supabase.plugins.module_utils import slo  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.slogate.supabase.plugins.modules.slo_check import BUCKETS  # noqa: E402

RECENT = 20000
RUNS = 15


def build(server, total):
    name = "bench_slo_%s" % uuid.uuid4().hex[:8]
    admin = psycopg2.connect(server.url)
    admin.autocommit = True
    admin.cursor().execute('CREATE DATABASE "%s"' % name)
    admin.close()
    url = server.url_for(name)
    kit.install(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    conn = psycopg2.connect(url)
    print("  loading %d rows (%d in the last hour)" % (total, RECENT), flush=True)
    generate.load_metrics(conn, total - RECENT, seed=1, start=now - datetime.timedelta(days=60),
                          end=now - datetime.timedelta(hours=2), progress=None)
    generate.load_metrics(conn, RECENT, seed=2, start=now - datetime.timedelta(hours=1), end=now, progress=None)
    conn.autocommit = True
    conn.cursor().execute("ANALYZE public.performance_metrics")
    conn.close()
    return url


def evaluate_once(url, rules):
    started = time.perf_counter()
    conn = psycopg2.connect(url)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT now()")
            as_of = cur.fetchone()["now"]
            since = as_of - datetime.timedelta(hours=1)
            grid = slo.window_grid(since, as_of, 300)
            cur.execute(BUCKETS.replace("{table}", "public.performance_metrics"),
                        dict(width=300, start=grid[0][0], end=grid[-1][1]))
            buckets = slo.buckets_from_rows(cur.fetchall(), 300)
        decision = slo.evaluate(rules, buckets, since, as_of, 300, {"mv_refresh_failures": 0})
    finally:
        conn.close()
    return time.perf_counter() - started, decision


def timed(command, env=None):
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit("%s failed: %s" % (command[0], (proc.stderr or proc.stdout)[-1500:]))
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,10000000")
    options = parser.parse_args()
    sizes = [int(n) for n in options.sizes.split(",")]
    rules = slo.preset("runbook")
    server = start_server()
    result = {"recent_rows": RECENT, "sizes": {}}
    try:
        for size in sizes:
            url = build(server, size)
            engine = sorted(evaluate_once(url, rules)[0] for dummy in range(RUNS))
            psql = sorted(timed([psql_path(), url, "-X", "-q", "-c",
                                 "SELECT AVG(err_rate) FROM public.api_metrics_5m WHERE bucket > now() - interval '1 hour'"])
                          for dummy in range(RUNS))
            task = timed([str(VENV_BIN / "ansible"), "localhost", "-m", "slogate.supabase.slo_check", "-a",
                          json.dumps({"db_url": url, "lookback_minutes": 60, "fail_on": "never"}),
                          "-e", "ansible_python_interpreter=%s" % sys.executable], ansible_env())
            result["sizes"][str(size)] = dict(engine_median_ms=round(statistics.median(engine) * 1000, 2),
                                              psql_view_median_ms=round(statistics.median(psql) * 1000, 2),
                                              module_task_s=round(task, 3))
            print("  %9d rows: slo_check evaluation %.1f ms (median of %d), runbook psql query %.1f ms, whole task %.2f s"
                  % (size, statistics.median(engine) * 1000, RUNS, statistics.median(psql) * 1000, task), flush=True)
    finally:
        server.stop()
    small, large = (result["sizes"][str(s)] for s in sizes[:2])
    result["ratio_large_over_small"] = round(large["engine_median_ms"] / small["engine_median_ms"], 2)
    result["psql_ratio_large_over_small"] = round(large["psql_view_median_ms"] / small["psql_view_median_ms"], 2)
    print("\nslo_check evaluation, %d rows / %d rows: %.2fx (target <= 1.5)" % (sizes[1], sizes[0], result["ratio_large_over_small"]))
    print("runbook's psql query on the view, same ratio: %.2fx" % result["psql_ratio_large_over_small"])
    write_result("slo", result)


if __name__ == "__main__":
    main()
