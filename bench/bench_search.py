"""Search before and after the runbook's performance_optimization_enhanced
migration on 10^6 documents, then the demo app under 50 Locust users.

Part A (database, one embedded PostgreSQL 18, one run): the demo project's
"initial" migrations (documents and the slogate kit) applied with psycopg2 in
order after the bootstrap, N documents loaded (generate.load_documents), then
the same 20 search terms (the locustfile's SEARCH_TERMS) run --repeat times
each, in the order of the terms, first with the query the app runs while
public.search_documents does not exist (the ILIKE fallback of
examples/app/demoapp/search.py), then, after
20260110120000_performance_optimization_enhanced.sql and VACUUM ANALYZE, with
the query it runs after it (public.search_documents(q, limit, true) under
jsonb_agg). Each query runs as the app runs it: in a transaction, as role
authenticated with a user's JWT claims set (RLS applies); the time is the
statement's round trip from Python (execute + fetch), after one untimed pass.

Part B (app under load): the demo app (release r1, uvicorn, one worker) on
that database, its search cache warmed with the 20 terms, then Locust
headless, 50 users, --seconds long, with the per-request log. Reported:
Locust's view (RPS, P50/P95/P99, error rate, from the request log; Locust's
own stats row beside it), the app's own duration_ms rows in
public.performance_metrics for the same window, and the database's execution
time of the app's statements from pg_stat_statements (reset at the start of
the window), so the latency splits into client, app and database.

    .venv/bin/python bench/bench_search.py [--documents 1000000] [--repeat 5] [--seconds 60] [--users 50]
"""

import argparse
import ast
import csv
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psycopg2
from common import ROOT, VENV_BIN, run_main, write_result

sys.path.insert(0, str(ROOT / "examples" / "demo"))
sys.path.insert(0, str(ROOT / "examples" / "demo" / "seed"))
sys.path.insert(0, str(ROOT / "examples" / "app"))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))

import generate  # noqa: E402  pylint: disable=wrong-import-position
from demoapp import search  # noqa: E402  pylint: disable=wrong-import-position
from demoapp.auth import Identity, request_session  # noqa: E402  pylint: disable=wrong-import-position
from stack import DemoStack, write_private  # noqa: E402  pylint: disable=wrong-import-position
from pgserver import SERVER_USER  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

from ansible_collections.slogate.supabase.plugins.module_utils.load_reports import percentile_cont  # noqa: E402

MIGRATIONS = ROOT / "examples" / "demo" / "supabase" / "migrations"
INITIAL_CUTOFF = "20260105090004"
SEARCH_MIGRATION = "20260110120000_performance_optimization_enhanced.sql"
LOCUSTFILE = ROOT / "tests" / "load" / "locustfile.py"
LIMIT = search.DEFAULT_LIMIT


def locustfile_terms():
    """The locustfile's SEARCH_TERMS, read from its source: importing it would start Locust's machinery."""
    for node in ast.parse(LOCUSTFILE.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SEARCH_TERMS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError("no SEARCH_TERMS in %s" % LOCUSTFILE)


SEARCH_TERMS = locustfile_terms()
# Statement text -> what it belongs to, for the database's share of the load (first match wins).
STATEMENT_KINDS = (
    ("COPY public.performance_metrics", "metrics writer (COPY, off the request path)"),
    ("drain_cache_invalidation_queue", "cache worker (off the request path)"),
    ("cache_get", "search: cache lookup"),
    ("cache_put", "search: cache store"),
    ("search_documents", "search: ranked query (cache miss)"),
    ("ILIKE", "search: fallback query (cache miss)"),
    ("jsonb_to_recordset", "search: merge of the caller's private documents"),
    ("to_regprocedure", "search/admin: function lookups"),
    ("request.jwt.claims", "session: SET ROLE and JWT claims"),
    ("SET LOCAL ROLE", "session: SET ROLE and JWT claims"),
    ("server_version", "health"),
    ("api_metrics_5m", "admin: performance buckets"),
    ("check_slo_compliance", "admin: SLO compliance"),
    ("audit_log", "admin: audit log"),
)
OFF_PATH = ("metrics writer", "cache worker")


def ms(seconds):
    return round(seconds * 1000.0, 3)


def pct(values, fraction):
    return round(percentile_cont(sorted(values), fraction), 3) if values else None


# --- part A ----------------------------------------------------------------------------------------


def apply_file(conn, path):
    with conn, conn.cursor() as cur:
        cur.execute(path.read_text())


def apply_initial(stack):
    conn = psycopg2.connect(stack.db_url)
    try:
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.name[:14] <= INITIAL_CUTOFF:
                apply_file(conn, path)
                print("  applied %s" % path.name, flush=True)
    finally:
        conn.close()


def vacuum_analyze(url):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        started = time.perf_counter()
        conn.cursor().execute("VACUUM (ANALYZE) public.documents")
        return time.perf_counter() - started
    finally:
        conn.close()


def run_searches(url, ranked, repeat, label, as_caller=True):
    """{term: [seconds, ...]} and the row count per term; one untimed pass first.

    as_caller: in the app's request session (role authenticated, a user's claims, RLS applies); else as the table owner."""
    identity = Identity(role="authenticated", claims={"role": "authenticated", "sub": str(uuid.uuid4())})
    conn = psycopg2.connect(url)
    times = {term: [] for term in SEARCH_TERMS}
    rows = {}
    try:
        for rnd in range(repeat + 1):
            started = time.perf_counter()
            for term in SEARCH_TERMS:
                statement, params = search.public_query(ranked, search.normalize(term), LIMIT)
                with conn, conn.cursor() as cur:
                    if as_caller:
                        cur.execute(*request_session(identity))
                    begun = time.perf_counter()
                    cur.execute(statement, params)
                    result = cur.fetchone()[0]
                    elapsed = time.perf_counter() - begun
                if rnd:
                    times[term].append(elapsed)
                rows[term] = len(result)
            print("  %-6s %s %d/%d: %d queries in %.2f s" % (
                label, "pass" if rnd else "warm-up", rnd, repeat, len(SEARCH_TERMS), time.perf_counter() - started), flush=True)
    finally:
        conn.close()
    return times, rows


# The body of public.search_documents(q, 20, true), for EXPLAIN: the function is not inlined (SET search_path), so
# explaining the call shows only a Function Scan.
SEARCH_BODY = ("SELECT d.id, d.title, d.tags, ts_rank(d.search_vector, query) AS rank, d.created_at"
               " FROM public.documents d, websearch_to_tsquery('english', %(q)s) AS query"
               " WHERE d.search_vector @@ query AND d.is_public ORDER BY rank DESC, d.id LIMIT 20")


def scan_nodes(plan):
    nodes = []
    if "Scan" in plan.get("Node Type", ""):
        nodes.append(plan["Node Type"] + (" on %s" % plan["Index Name"] if plan.get("Index Name") else ""))
    for child in plan.get("Plans", []):
        nodes.extend(scan_nodes(child))
    return nodes


def diagnose(url, term):
    """How the search body is planned for the app's caller and for the owner, and how many documents match each term."""
    identity = Identity(role="authenticated", claims={"role": "authenticated", "sub": str(uuid.uuid4())})
    conn = psycopg2.connect(url)
    try:
        plans = {}
        for who in ("caller", "owner"):
            with conn, conn.cursor() as cur:
                if who == "caller":
                    cur.execute(*request_session(identity))
                cur.execute("EXPLAIN (FORMAT JSON) " + SEARCH_BODY, {"q": term})
                plans[who] = scan_nodes(cur.fetchone()[0][0]["Plan"])
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM public.documents")
            total = cur.fetchone()[0]
            matches = {}
            for each in SEARCH_TERMS:
                cur.execute("SELECT count(*) FROM public.documents d WHERE d.is_public"
                            " AND d.search_vector @@ websearch_to_tsquery('english', %s)", (each,))
                matches[each] = round(100.0 * cur.fetchone()[0] / total, 1)
        return dict(term=term, plan_as_caller=plans["caller"], plan_as_owner=plans["owner"],
                    public_matches_percent_of_documents=matches)
    finally:
        conn.close()


def summarize(times):
    every = [t for values in times.values() for t in values]
    return dict(queries=len(every), p50_ms=ms(percentile_cont(sorted(every), 0.5)),
                p95_ms=ms(percentile_cont(sorted(every), 0.95)), mean_ms=ms(statistics.mean(every)),
                per_term={term: dict(p50_ms=ms(percentile_cont(sorted(v), 0.5)), p95_ms=ms(percentile_cont(sorted(v), 0.95)))
                          for term, v in times.items()})


def part_a(stack, documents, repeat):
    print("part A: database", flush=True)
    stack.start_database()
    apply_initial(stack)
    conn = psycopg2.connect(stack.db_url)
    try:
        started = time.perf_counter()
        print("  loading %d documents" % documents, flush=True)
        generate.load_documents(conn, documents, seed=1, progress=sys.stdout)
        load_s = time.perf_counter() - started
    finally:
        conn.close()
    print("  loaded %d documents in %.1f s; VACUUM ANALYZE %.1f s" % (documents, load_s, vacuum_analyze(stack.db_url)), flush=True)
    before, before_rows = run_searches(stack.db_url, False, repeat, "before")
    conn = psycopg2.connect(stack.db_url)
    try:
        started = time.perf_counter()
        apply_file(conn, MIGRATIONS / SEARCH_MIGRATION)
        migrate_s = time.perf_counter() - started
    finally:
        conn.close()
    analyze_s = vacuum_analyze(stack.db_url)
    print("  applied %s in %.1f s; VACUUM ANALYZE %.1f s" % (SEARCH_MIGRATION, migrate_s, analyze_s), flush=True)
    after, after_rows = run_searches(stack.db_url, True, repeat, "after")
    print("  diagnostics: one pass as the table owner (no RLS), plans, matches per term", flush=True)
    owner = run_searches(stack.db_url, True, 1, "owner", as_caller=False)[0]
    result = dict(documents=documents, repeat=repeat, terms=list(SEARCH_TERMS), limit=LIMIT, load_s=round(load_s, 1),
                  migration_s=round(migrate_s, 1), before=summarize(before), after=summarize(after),
                  rows_before=before_rows, rows_after=after_rows,
                  diagnostic=dict(after_as_owner_no_rls=summarize(owner), **diagnose(stack.db_url, SEARCH_TERMS[0])))
    result["speedup_p50"] = round(result["before"]["p50_ms"] / result["after"]["p50_ms"], 2)
    result["speedup_p95"] = round(result["before"]["p95_ms"] / result["after"]["p95_ms"], 2)
    per_term = [result["before"]["per_term"][t]["p50_ms"] / result["after"]["per_term"][t]["p50_ms"] for t in SEARCH_TERMS]
    result["speedup_p50_per_term"] = dict(min=round(min(per_term), 2), median=round(statistics.median(per_term), 2),
                                          max=round(max(per_term), 2))
    return result


# --- part B ----------------------------------------------------------------------------------------


def enable_pg_stat_statements(stack):
    """Preload pg_stat_statements and restart the server (it cannot be loaded later); False when that fails."""
    server = stack.server
    try:
        admin = psycopg2.connect(server.url)
        admin.autocommit = True
        admin.cursor().execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        admin.close()
        user = SERVER_USER if os.geteuid() == 0 else None
        subprocess.run([str(server.bindir / "pg_ctl"), "-D", str(server.datadir), "-l", str(server.logfile), "-w", "-t", "60",
                        "restart"], user=user, capture_output=True, text=True, check=True)
        stack.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True
    except (psycopg2.Error, subprocess.CalledProcessError) as exc:
        print("  pg_stat_statements unavailable (%s): the database share falls back to part A's timings"
              % str(exc).strip().splitlines()[0], flush=True)
        return False


def round_trip_ms(url, count=300):
    """Median time of `SELECT 1` from Python: the cost of one statement's round trip on loopback."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        samples = []
        for dummy in range(count):
            started = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchone()
            samples.append(time.perf_counter() - started)
        return ms(statistics.median(samples))
    finally:
        conn.close()


def warm_cache(stack):
    for term in SEARCH_TERMS:
        request = urllib.request.Request("%s/api/search?%s" % (stack.app_url, urllib.parse.urlencode({"q": term})),
                                         headers={"Authorization": "Bearer " + stack.tokens["user"]})
        with urllib.request.urlopen(request, timeout=60) as answer:
            answer.read()


def run_locust(stack, work, users, spawn_rate, seconds, think):
    secrets_file = write_private(work / "locust-secrets.json", json.dumps(
        {"SLOGATE_USER_TOKEN": stack.tokens["user"], "SLOGATE_ADMIN_TOKEN": stack.tokens["loadtest"]}))
    request_log = work / "requests.csv"
    env = dict(os.environ, SLOGATE_SECRETS_FILE=str(secrets_file), SLOGATE_REQUEST_LOG=str(request_log))
    if think is not None:
        env.update(SLOGATE_THINK_MIN=str(think[0]), SLOGATE_THINK_MAX=str(think[1]))
    command = [str(VENV_BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(spawn_rate),
               "-t", "%ds" % seconds, "--host", stack.app_url, "--csv", str(work / "locust"), "--only-summary",
               "--loglevel", "ERROR", "--stop-timeout", "10"]
    with open(work / "locust.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.time()
    next_report = 10
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            elapsed = time.time() - started
            if elapsed >= next_report:
                print("  locust: %3.0f s of %d" % (elapsed, seconds), flush=True)
                next_report += 10
            if elapsed > seconds + 120:
                raise RuntimeError("Locust did not stop within %d s" % (seconds + 120))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    ended = time.time()
    if proc.returncode not in (0, 1):   # 1: Locust saw failed requests, which we count ourselves
        raise RuntimeError("locust failed (exit %d): %s" % (proc.returncode, (work / "locust.log").read_text()[-2000:]))
    return started, ended, request_log


def request_stats(records):
    """RPS, percentiles and error rate of (end, status, duration_ms) records."""
    first = min(end - duration / 1000.0 for end, status, duration in records)
    last = max(end for end, status, duration in records)
    durations = [duration for end, status, duration in records]
    errors = sum(1 for end, status, duration in records if status == 0 or status >= 500)
    statuses = {}
    for end, status, duration in records:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return dict(requests=len(records), window_s=round(last - first, 2), rps=round(len(records) / (last - first), 1),
                p50_ms=pct(durations, 0.5), p95_ms=pct(durations, 0.95), p99_ms=pct(durations, 0.99),
                mean_ms=round(statistics.mean(durations), 3), errors=errors,
                error_rate_percent=round(100.0 * errors / len(records), 3), statuses=statuses)


def client_view(request_log, work, ramp_s):
    """The whole run, and the steady state: requests that started after the users' ramp-up (and the pool's growth)."""
    records = []
    with open(request_log, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["duration_ms"]:
                records.append((float(row["end_time"]), int(row["status"]), float(row["duration_ms"])))
    if not records:
        raise RuntimeError("Locust logged no requests; see %s" % (work / "locust.log"))
    view = request_stats(records)
    first = min(end - duration / 1000.0 for end, status, duration in records)
    steady = [r for r in records if r[0] - r[2] / 1000.0 >= first + ramp_s]
    view["first_request_at"] = first
    view["steady"] = dict(request_stats(steady), excluded_first_s=ramp_s) if steady else None
    stats = work / "locust_stats.csv"
    if stats.exists():
        with open(stats, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("Name") == "Aggregated":
                    view["locust_stats_row"] = {key: row.get(key) for key in ("Request Count", "Failure Count", "Requests/s",
                                                                              "50%", "95%", "99%")}
                elif row.get("Name", "").startswith("/api/search"):
                    view.setdefault("locust_search_rows", []).append({key: row.get(key) for key in (
                        "Name", "Request Count", "Failure Count", "50%", "95%", "99%")})
    return view


APP_VIEW = """
SELECT count(*) AS requests,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99_ms,
       avg(duration_ms) AS mean_ms,
       sum(duration_ms) AS total_ms,
       100.0 * avg(CASE WHEN cache_hit THEN 1 ELSE 0 END) AS cache_hit_percent
FROM public.performance_metrics
WHERE created_at >= to_timestamp(%(start)s) AND created_at <= to_timestamp(%(end)s) AND (%(endpoint)s IS NULL OR endpoint = %(endpoint)s)
"""


def app_view(url, start, end):
    conn = psycopg2.connect(url)
    try:
        views = {}
        with conn, conn.cursor() as cur:
            for name, endpoint in (("all", None), ("search", "/api/search")):
                cur.execute(APP_VIEW, dict(start=start, end=end, endpoint=endpoint))
                row = dict(zip([c[0] for c in cur.description], cur.fetchone()))
                views[name] = {k: (round(float(v), 3) if v is not None and k != "requests" else v) for k, v in row.items()}
        return views
    finally:
        conn.close()


def statement_kind(text):
    for marker, kind in STATEMENT_KINDS:
        if marker in text:
            return kind
    return "other"


def database_view(url):
    """The app's statements' server execution time since the reset, grouped by what they serve."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT query, calls, total_exec_time, mean_exec_time FROM pg_stat_statements"
                        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                        " AND query NOT LIKE '%pg_stat_statements%'")
            rows = cur.fetchall()
    finally:
        conn.close()
    kinds = {}
    top = []
    for query, calls, total, mean in rows:
        kind = statement_kind(query)
        entry = kinds.setdefault(kind, dict(calls=0, total_ms=0.0))
        entry["calls"] += calls
        entry["total_ms"] += total
        top.append(dict(kind=kind, calls=calls, total_ms=round(total, 2), mean_ms=round(mean, 4),
                        query=" ".join(query.split())[:160]))
    for entry in kinds.values():
        entry["total_ms"] = round(entry["total_ms"], 2)
    top.sort(key=lambda entry: -entry["total_ms"])
    return kinds, top[:12]


def reset_statements(url):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        conn.cursor().execute("SELECT pg_stat_statements_reset()")
    finally:
        conn.close()


def part_b(stack, work, load, part_a_result):
    users, spawn_rate, seconds, think = load
    ramp_s = round(users / float(spawn_rate) + 2, 1)
    print("\npart B: the demo app under %d Locust users (%d/s spawned) for %d s" % (users, spawn_rate, seconds), flush=True)
    statements = enable_pg_stat_statements(stack)
    stack.start_app("r1")
    warm_cache(stack)
    rtt = round_trip_ms(stack.db_url)
    if statements:
        reset_statements(stack.db_url)
    start, end, request_log = run_locust(stack, work, users, spawn_rate, seconds, think)
    kinds, top = database_view(stack.db_url) if statements else (None, None)   # before our own queries below
    time.sleep(1.5)   # the app flushes its metrics rows every 0.2 s
    client = client_view(request_log, work, ramp_s)
    app = app_view(stack.db_url, start, end)
    app["steady"] = app_view(stack.db_url, client.pop("first_request_at") + ramp_s, end)
    result = dict(users=users, spawn_rate=spawn_rate, seconds=seconds, think_s=list(think) if think else "locustfile default (1-3 s)",
                  client=client, app=app, round_trip_ms=rtt)
    if statements:
        on_path = {k: v for k, v in kinds.items() if not k.startswith(OFF_PATH)}
        on_path_ms = sum(v["total_ms"] for v in on_path.values())
        on_path_calls = sum(v["calls"] for v in on_path.values())
        requests = app["all"]["requests"] or 1
        result["database"] = dict(
            method="pg_stat_statements total_exec_time of the app's request-path statements (server execution only), "
                   "reset when the Locust run started; round trips estimated as calls x median SELECT 1 round trip",
            kinds=kinds, top=top, exec_ms_total=round(on_path_ms, 2), calls=on_path_calls,
            exec_ms_per_request=round(on_path_ms / requests, 4), calls_per_request=round(on_path_calls / requests, 2),
            with_round_trips_ms_per_request=round((on_path_ms + on_path_calls * rtt) / requests, 4))
    else:
        result["database"] = dict(method="pg_stat_statements unavailable: part A's after-migration search P50 (uncached)",
                                  exec_ms_per_request=part_a_result["after"]["p50_ms"] if part_a_result else None)
    app_mean = app["all"]["mean_ms"] or 0.0
    db_mean = result["database"].get("with_round_trips_ms_per_request", result["database"]["exec_ms_per_request"]) or 0.0
    result["shares_of_mean_latency_percent"] = dict(
        database=round(100.0 * db_mean / client["mean_ms"], 1),
        app_excluding_database=round(100.0 * (app_mean - db_mean) / client["mean_ms"], 1),
        outside_app=round(100.0 * (client["mean_ms"] - app_mean) / client["mean_ms"], 1))
    result["database_share_of_app_time_percent"] = round(100.0 * db_mean / app_mean, 1) if app_mean else None
    return result


# --- the report --------------------------------------------------------------------------------------


def print_summary(result):
    a = result.get("part_a")
    if a:
        d = a["diagnostic"]
        print("\n== search SQL on %d documents, %d terms x %d runs each, same server, same run, as the app runs it "
              "(role authenticated, RLS)" % (a["documents"], len(a["terms"]), a["repeat"]))
        print("   before (ILIKE fallback):         P50 %9.2f ms   P95 %9.2f ms" % (a["before"]["p50_ms"], a["before"]["p95_ms"]))
        print("   after  (search_documents):       P50 %9.2f ms   P95 %9.2f ms" % (a["after"]["p50_ms"], a["after"]["p95_ms"]))
        print("   speed-up: P50 %.1fx, P95 %.1fx (the runbook promises 5-10x; the aim is > 10x); per term P50 %.1fx..%.1fx, "
              "median %.1fx" % (a["speedup_p50"], a["speedup_p95"], a["speedup_p50_per_term"]["min"],
                                a["speedup_p50_per_term"]["max"], a["speedup_p50_per_term"]["median"]))
        print("   diagnostic: after, as the table owner (no RLS), 1 pass: P50 %.2f ms, P95 %.2f ms" % (
            d["after_as_owner_no_rls"]["p50_ms"], d["after_as_owner_no_rls"]["p95_ms"]))
        print("   diagnostic: plan of the function's query for %r: as the app's caller %s; as the owner %s" % (
            d["term"], ", ".join(d["plan_as_caller"]), ", ".join(d["plan_as_owner"])))
        shares = sorted(d["public_matches_percent_of_documents"].values())
        print("   diagnostic: each term matches %.1f-%.1f %% of all documents (median %.1f %%): ranking reads that many rows" % (
            shares[0], shares[-1], statistics.median(shares)))
        print("   the migration itself on %d documents: %.1f s" % (a["documents"], a["migration_s"]))
    b = result.get("part_b")
    if b:
        c, app, db = b["client"], b["app"], b["database"]
        print("\n== demo app: %d Locust users (%d/s spawned), %d s, %s think time; one uvicorn worker; 2 cores shared "
              "with Locust and PostgreSQL" % (b["users"], b["spawn_rate"], b["seconds"], b["think_s"]))
        for label, view in (("whole run", c), ("steady state", c.get("steady"))):
            if view:
                print("   client, %-12s (Locust request log): %5d requests, %6.1f RPS, P50 %7.1f ms, P95 %7.1f ms, P99 %7.1f ms, "
                      "errors %.2f %%" % (label, view["requests"], view["rps"], view["p50_ms"], view["p95_ms"],
                                          view["p99_ms"], view["error_rate_percent"]))
        if c.get("steady"):
            print("     (steady state: requests started more than %.1f s after the first: the users' ramp-up and the pool's growth "
                  "excluded)" % c["steady"]["excluded_first_s"])
        if c.get("locust_stats_row"):
            row = c["locust_stats_row"]
            print("   Locust's own stats row, whole run: %s requests, %s failures, %.1f RPS, P50 %s ms, P95 %s ms, P99 %s ms" % (
                row["Request Count"], row["Failure Count"], float(row["Requests/s"]), row["50%"], row["95%"], row["99%"]))
        for label, view in (("whole run", app), ("steady state", app["steady"])):
            print("   app, %-12s (performance_metrics.duration_ms): %5d requests, P50 %6.2f ms, P95 %7.2f ms, P99 %7.2f ms, "
                  "mean %6.2f ms" % (label, view["all"]["requests"], view["all"]["p50_ms"], view["all"]["p95_ms"],
                                     view["all"]["p99_ms"], view["all"]["mean_ms"]))
        print("   app, searches only, whole run: %d requests, P50 %.2f ms, P95 %.2f ms, cache hits %.1f %%" % (
            app["search"]["requests"], app["search"]["p50_ms"], app["search"]["p95_ms"], app["search"]["cache_hit_percent"]))
        print("   database: %s" % db["method"])
        if "calls_per_request" in db:
            print("     %.2f statements per request, %.3f ms execution per request, %.3f ms with round trips (%.3f ms each)"
                  % (db["calls_per_request"], db["exec_ms_per_request"], db["with_round_trips_ms_per_request"], b["round_trip_ms"]))
            for kind, entry in sorted(db["kinds"].items(), key=lambda item: -item[1]["total_ms"]):
                print("     %-52s %8d calls %10.1f ms" % (kind, entry["calls"], entry["total_ms"]))
        shares = b["shares_of_mean_latency_percent"]
        print("   whole run, mean latency seen by the client %.2f ms = database %.1f %% + app (Python, database excluded) %.1f %% "
              "+ outside the app (HTTP, uvicorn queueing, Locust) %.1f %%" % (
                  c["mean_ms"], shares["database"], shares["app_excluding_database"], shares["outside_app"]))
        print("   database share of the app's own time: %.1f %%.  P50: client %.2f ms, app %.2f ms, uncached search SQL (part A) %s ms"
              % (b["database_share_of_app_time_percent"] or 0, c["p50_ms"], app["all"]["p50_ms"],
                 a["after"]["p50_ms"] if a else "-"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each search term, before and after")
    parser.add_argument("--seconds", type=int, default=60, help="Locust run time")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=int, default=10, help="users started per second (the locustfile's -r 10)")
    parser.add_argument("--think", help="MIN,MAX seconds between a user's requests (default: the locustfile's 1-3 s)")
    parser.add_argument("--skip-load", action="store_true", help="part A only")
    options = parser.parse_args()
    think = tuple(float(x) for x in options.think.split(",")) if options.think else None
    root = Path(tempfile.mkdtemp(prefix="slogate-bench-search-"))
    work = root / "work"
    work.mkdir()
    stack = DemoStack(root, log=lambda text: print("  " + text, flush=True))
    result = {"machine_cpus": os.cpu_count(), "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        result["part_a"] = part_a(stack, options.documents, options.repeat)
        if not options.skip_load:
            load = (options.users, options.spawn_rate, options.seconds, think)
            result["part_b"] = part_b(stack, work, load, result["part_a"])
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_summary(result)
    write_result("search", result)


if __name__ == "__main__":
    run_main(main, "bench_search.py")
