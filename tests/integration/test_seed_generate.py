"""examples/demo/seed/generate.py on a real database: counts, the error contract
(status >= 500 or no response is an error, 4xx never), determinism, and
one-line CLI errors without a traceback or the password."""

import importlib.util
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2
import pytest

import kit

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "examples" / "demo" / "seed" / "generate.py"
DOCUMENTS_MIGRATION = ROOT / "examples" / "demo" / "supabase" / "migrations" / "20260105090000_documents.sql"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
ERROR = "(status >= 500 OR status = 0 OR status IS NULL)"


@pytest.fixture(scope="module")
def generate():
    spec = importlib.util.spec_from_file_location("seed_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo_db(pg_db):
    kit.install(pg_db.url)
    kit.apply_file(pg_db.url, DOCUMENTS_MIGRATION)
    return pg_db


@pytest.fixture
def conn(demo_db):
    connection = psycopg2.connect(demo_db.url)
    yield connection
    connection.close()


def run_cli(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if k not in ("SUPABASE_DB_URL", "DATABASE_URL")}
    environ.update(env or {})
    return subprocess.run([sys.executable, str(GENERATOR)] + list(args), capture_output=True, text=True, env=environ,
                          timeout=120, check=False)


def assert_one_line_error(proc, *secrets):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for secret in secrets:
        assert secret not in proc.stderr + proc.stdout, "password leaked"
    assert lines[0].startswith("generate.py: error: ")
    return lines[0]


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- loading -----------------------------------------------------------------

def test_documents_are_loaded_as_described(generate, conn, demo_db):
    assert generate.load_documents(conn, 3000, seed=1, batch=700, now=NOW) == 3000
    assert demo_db.scalar("SELECT count(*) FROM public.documents") == 3000
    (owners, public_share, min_tags, max_tags, unknown_tags, first, last, edited_before, empty) = demo_db.execute("""
        SELECT count(DISTINCT owner_id), avg(is_public::int), min(cardinality(tags)), max(cardinality(tags)),
               count(*) FILTER (WHERE NOT tags <@ %s::text[]), min(created_at), max(created_at),
               count(*) FILTER (WHERE updated_at < created_at),
               count(*) FILTER (WHERE length(title) < 10 OR length(body) < 40)
        FROM public.documents""", (list(generate.TAGS),))[0]
    assert 900 <= owners <= 1000
    assert 0.87 <= float(public_share) <= 0.93
    assert (min_tags, max_tags, unknown_tags) == (1, 4, 0)
    assert NOW - timedelta(days=366) <= first < last <= NOW
    assert last - first > timedelta(days=360)
    assert edited_before == 0 and empty == 0
    # Paragraphs are real line breaks, not a backslash and an n.
    assert demo_db.scalar("SELECT count(*) FROM public.documents WHERE body LIKE %s", ("%\n\n%",)) > 0
    assert demo_db.scalar("SELECT count(*) FROM public.documents WHERE body LIKE %s", ("%\\\\n%",)) == 0


def test_metrics_fill_the_window_with_a_search_heavy_mix(generate, conn, demo_db):
    start, end = NOW - timedelta(hours=6), NOW
    assert generate.load_metrics(conn, 4000, seed=2, batch=333, start=start, end=end, release_id="r42") == 4000
    first, last, methods, releases, top = demo_db.execute("""
        SELECT min(created_at), max(created_at), array_agg(DISTINCT method), array_agg(DISTINCT release_id),
               mode() WITHIN GROUP (ORDER BY endpoint)
        FROM public.performance_metrics""")[0]
    assert start <= first < start + timedelta(minutes=5) and end - timedelta(minutes=5) < last < end
    assert (methods, releases, top) == (["GET"], ["r42"], "/api/search")
    endpoints = {row[0] for row in demo_db.execute("SELECT DISTINCT endpoint FROM public.performance_metrics")}
    assert {"/api/search", "/api/health", "/api/admin/performance", "/api/admin/audit-log"} <= endpoints
    # The kit's SLO view sees every 5-minute bucket of the window.
    assert demo_db.scalar("SELECT count(*) FROM public.api_metrics_5m") == 72


@pytest.mark.parametrize("error_rate", [0, 2, 10])
def test_error_share_matches_error_rate(generate, conn, demo_db, error_rate):
    n = 6000
    generate.load_metrics(conn, n, seed=error_rate, error_rate=error_rate, hours=2, now=NOW)
    errors, client, fives = demo_db.execute("""
        SELECT count(*) FILTER (WHERE %s), count(*) FILTER (WHERE status BETWEEN 400 AND 499),
               count(*) FILTER (WHERE status = 500)
        FROM public.performance_metrics""" % ERROR)[0]
    share = 100.0 * errors / n
    sigma = 100.0 * (error_rate / 100.0 * (1 - error_rate / 100.0) / n) ** 0.5
    assert abs(share - error_rate) <= max(4 * sigma, 0.05), (share, error_rate)
    assert errors == fives  # the errors are the 500s
    # 4xx happen, and the kit's view does not count them as errors.
    assert client > 0.004 * n
    view_errors, view_requests = demo_db.execute("SELECT sum(errors), sum(requests) FROM public.api_metrics_5m")[0]
    assert (view_errors, view_requests) == (errors, n)


def test_latency_median_and_cache_hit_rate(generate, conn, demo_db):
    n = 8000
    generate.load_metrics(conn, n, seed=3, latency_ms=250, cache_hit_rate=40, hours=1, now=NOW)
    median, p95, hit_rate, probe_hits = demo_db.execute("""
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms),
               100.0 * count(*) FILTER (WHERE cache_hit) / count(*),
               count(*) FILTER (WHERE cache_hit AND (endpoint = '/api/health' OR status <> 200))
        FROM public.performance_metrics""")[0]
    assert 235 <= median <= 265
    assert 2.2 * median <= p95 <= 3.2 * median
    assert abs(float(hit_rate) - 40) <= 2.5
    assert probe_hits == 0


def test_same_seed_same_rows(generate, conn, demo_db):
    documents = "SELECT title, body, tags, owner_id, is_public, created_at, updated_at FROM public.documents ORDER BY id"
    metrics = ("SELECT created_at, endpoint, method, status, duration_ms, cache_hit, user_role, release_id "
               "FROM public.performance_metrics ORDER BY id")

    def load(seed):
        demo_db.execute("TRUNCATE public.documents, public.performance_metrics RESTART IDENTITY")
        generate.load_documents(conn, 500, seed=seed, batch=128, now=NOW)
        generate.load_metrics(conn, 2000, seed=seed, batch=300, hours=3, now=NOW)
        return demo_db.execute(documents), demo_db.execute(metrics)

    first, again, other = load(11), load(11), load(12)
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]
    # The batch size does not change the rows either.
    demo_db.execute("TRUNCATE public.documents, public.performance_metrics RESTART IDENTITY")
    generate.load_documents(conn, 500, seed=11, batch=500, now=NOW)
    generate.load_metrics(conn, 2000, seed=11, batch=7, hours=3, now=NOW)
    assert (demo_db.execute(documents), demo_db.execute(metrics)) == first


def test_a_failed_load_keeps_nothing(generate, conn, demo_db):
    demo_db.execute("ALTER TABLE public.performance_metrics ADD CONSTRAINT no_search CHECK (endpoint <> '/api/search')")
    with pytest.raises(generate.SeedError) as failure:
        generate.load_metrics(conn, 5000, seed=1, batch=100, now=NOW)
    assert str(failure.value).startswith("loading public.performance_metrics failed, nothing was kept: ")
    assert "no_search" in str(failure.value) and "\n" not in str(failure.value)
    assert demo_db.scalar("SELECT count(*) FROM public.performance_metrics") == 0
    assert generate.load_documents(conn, 10, seed=1, now=NOW) == 10  # the connection is usable again


def test_an_autocommit_connection_still_loads_in_one_transaction(generate, demo_db):
    connection = psycopg2.connect(demo_db.url)
    connection.autocommit = True
    try:
        demo_db.execute("ALTER TABLE public.documents ADD CONSTRAINT no_edits CHECK (updated_at = created_at)")
        with pytest.raises(generate.SeedError):
            generate.load_documents(connection, 2000, seed=1, batch=100, now=NOW)
        assert demo_db.scalar("SELECT count(*) FROM public.documents") == 0
        assert connection.autocommit is True
        assert generate.load_metrics(connection, 100, seed=1, now=NOW) == 100
    finally:
        connection.close()


# --- the command line ----------------------------------------------------------

def test_cli_loads_both_tables(demo_db):
    proc = run_cli("--documents", "1500", "--metrics", "2_500", "--metrics-from", "2026-01-05T09:00:00Z",
                   "--metrics-to", "2026-01-05T10:00:00Z", "--error-rate", "5", "--seed", "4", "--now", NOW.isoformat(),
                   env={"SUPABASE_DB_URL": demo_db.url})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "documents 1,500 rows, performance_metrics 2,500 rows"
    assert "public.documents: 1,500 rows loaded in " in proc.stderr
    assert "public.performance_metrics: 2,500 rows loaded in " in proc.stderr
    assert demo_db.server.password not in proc.stdout + proc.stderr
    assert demo_db.scalar("SELECT count(*) FROM public.performance_metrics WHERE created_at >= '2026-01-05 09:00Z' "
                          "AND created_at < '2026-01-05 10:00Z'") == 2500


@pytest.mark.parametrize("args, expected", [
    (["--metrics", "-5"], "argument --metrics: must be a whole number of rows, 0 or more, got '-5'"),
    (["--documents", "ten"], "argument --documents: must be a whole number of rows, 0 or more, got 'ten'"),
    (["--metrics", "10", "--error-rate", "120"], "argument --error-rate: must be a percentage from 0 to 100, got '120'"),
    (["--metrics", "10", "--metrics-from", "yesterday"], "argument --metrics-from: 'yesterday' is not an ISO timestamp"),
    (["--metrics", "10", "--metrics-from", "2026-01-05T10:00Z", "--metrics-to", "2026-01-05T09:00Z"],
     "the metrics window is empty"),
    ([], "nothing to load: give --documents N and/or --metrics N"),
], ids=["negative count", "not a number", "error rate over 100", "bad timestamp", "empty window", "nothing"])
def test_cli_bad_options(demo_db, args, expected):
    proc = run_cli(*args, env={"SUPABASE_DB_URL": demo_db.url})
    line = assert_one_line_error(proc, demo_db.server.password)
    assert expected in line


@pytest.mark.parametrize("url, expected", [
    ("postgresql://postgres:BadUrlSecret9@127.0.0.1:notaport/app", "--db-url is not a valid PostgreSQL connection URL"),
    ("not a url BadUrlSecret9", "--db-url is not a valid PostgreSQL connection URL"),
    ("postgresql://postgres:BadUrlSecret9@127.0.0.1:%d/app" % closed_port(), "connection refused"),
], ids=["bad port", "garbage", "closed port"])
def test_cli_bad_url(url, expected):
    proc = run_cli("--db-url", url, "--metrics", "10")
    line = assert_one_line_error(proc, "BadUrlSecret9")
    assert expected in line


def test_cli_wrong_password(demo_db):
    url = demo_db.server.url_for(demo_db.name, password="WrongPassw0rd-7")
    proc = run_cli("--metrics", "10", env={"DATABASE_URL": url})
    line = assert_one_line_error(proc, "WrongPassw0rd-7", demo_db.server.password)
    assert "authentication failed for user postgres" in line and "check the password in DATABASE_URL" in line


def test_cli_no_url():
    line = assert_one_line_error(run_cli("--metrics", "10"))
    assert "no database URL: pass --db-url or set SUPABASE_DB_URL or DATABASE_URL" in line


def test_cli_missing_table(pg_db):
    kit.install(pg_db.url)  # the kit, but not the demo's documents migration
    proc = run_cli("--db-url", pg_db.url, "--documents", "10", "--metrics", "10")
    line = assert_one_line_error(proc, pg_db.server.password)
    assert ("table public.documents does not exist in database %s: apply the demo migrations first" % pg_db.name) in line
    assert pg_db.scalar("SELECT count(*) FROM public.performance_metrics") == 0  # checked before loading anything


def test_cli_missing_kit(pg_db):
    proc = run_cli("--db-url", pg_db.url, "--metrics", "10")
    line = assert_one_line_error(proc, pg_db.server.password)
    assert "table public.performance_metrics does not exist" in line and "install the slogate kit first" in line
