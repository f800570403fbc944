"""examples/app, the demo app the playbooks deploy, run for real (uvicorn in a
subprocess) against a real PostgreSQL with the demo project's migrations:
health, auth, RLS, the admin rate limit, metrics rows, the search cache,
faults, releases and supervisord."""

import json
import os
import signal
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import jwt
import psycopg
import psycopg2
import pytest

import demo_app
from pgserver import run_sql
from demo_app import APP_DIR, app_process, clean_environment, free_port, wait_for

import mint_token  # noqa: E402 - examples/app, put on sys.path by demo_app
from demoapp.auth import Identity, Unauthorized, request_session, verify_token  # noqa: E402

pytestmark = pytest.mark.integration

SECRET = "itest-%s%s" % (uuid.uuid4().hex, uuid.uuid4().hex)  # random: a leak into a log is then unmistakable
VENV_BIN = Path(sys.executable).parent
HEALTH = "/api/health"
SEARCH = "/api/search"
ADMIN_PERFORMANCE = "/api/admin/performance"
ADMIN_AUDIT_LOG = "/api/admin/audit-log"
ADMIN_PATHS = (ADMIN_PERFORMANCE, ADMIN_AUDIT_LOG)
GENERATED_DOCUMENTS = 300
SEEDED_METRICS = 40
PUBLIC_TITLE = "Zebra crossing checklist for the release runbook"
PRIVATE_TITLE = "Quokka field notes"
AUDIT_MARKER = "itest-marker"


class Database:
    def __init__(self, url):
        self.url = url

    def execute(self, statement, params=None):
        return run_sql(self.url, statement, params)

    def scalar(self, statement, params=None):
        rows = self.execute(statement, params)
        return rows[0][0] if rows else None

    def metrics_count(self, release_id):
        return self.scalar("SELECT count(*) FROM public.performance_metrics WHERE release_id = %s", (release_id,))


def _as_superuser(server, statement):
    conn = psycopg2.connect(server.admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def seed_rows(db):
    """Two documents the tests search for, an audit row, and recent metrics for the admin view."""
    db.execute("INSERT INTO public.documents (title, body, owner_id, is_public) VALUES"
               " (%s, 'Look both ways: zebra crossings, then the migration.', %s, true),"
               " (%s, 'Private quokka sightings near the zebra crossing.', %s, false)",
               (PUBLIC_TITLE, mint_token.REGULAR_SUB, PRIVATE_TITLE, mint_token.REGULAR_SUB))
    db.execute("INSERT INTO public.audit_log (action, object) VALUES (%s, 'itest')", (AUDIT_MARKER,))
    db.execute("INSERT INTO public.performance_metrics (created_at, endpoint, status, duration_ms, release_id)"
               " SELECT now() - interval '1 minute', '/api/search', 200, 10 + i, 'seed'"
               " FROM generate_series(1, %s) AS i", (SEEDED_METRICS,))


@pytest.fixture(scope="module")
def demo_db(pg_server):
    """One database for the module: bootstrap, every demo migration, generated documents."""
    name = "slogate_demo_%s" % uuid.uuid4().hex[:12]
    _as_superuser(pg_server, 'CREATE DATABASE "%s"' % name)
    try:
        db = Database(pg_server.url_for(name))
        demo_app.install_demo_schema(db.url)
        demo_app.load_generated_documents(db.url, GENERATED_DOCUMENTS)
        seed_rows(db)
        yield db
    finally:
        _as_superuser(pg_server, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


@pytest.fixture(scope="module")
def app(demo_db, tmp_path_factory):
    """The app most tests share (release itest-shared), stopped after the module."""
    process = app_process(tmp_path_factory.mktemp("shared-app") / "app.log", demo_db.url, SECRET,
                          release_id="itest-shared")
    with process.start():
        yield process
    assert SECRET not in process.log()


@pytest.fixture(scope="module")
def tokens():
    return mint_token.demo_tokens(SECRET)


def bearer(token):
    return {"Authorization": "Bearer %s" % token}


def get(app, path, token=None, **params):
    with app.client() as client:
        return client.get(path, params=params, headers=bearer(token) if token else {})


def result_ids(response):
    return [row["id"] for row in response.json()["results"]]


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


# --- health ------------------------------------------------------------------

def test_health_reports_server_version_and_release(app, demo_db):
    response = get(app, HEALTH)
    assert response.status_code == 200
    version = demo_db.scalar("SHOW server_version")
    assert response.json() == {"status": "ok", "version": version, "release": "itest-shared"}


def test_health_is_503_without_a_database_and_leaks_nothing(tmp_path):
    password = unique("pw")
    url = "postgresql://postgres:%s@127.0.0.1:%d/nowhere" % (password, free_port())
    process = app_process(tmp_path / "app.log", url, SECRET, env={"HEALTH_DB_TIMEOUT_SECONDS": "0.3"})
    with process.start(expect_status=503):
        response = get(process, HEALTH)
    assert response.status_code == 503
    assert response.content == b'{"status":"unavailable"}'
    assert "health: database unavailable" in process.log()
    assert password not in process.log() and SECRET not in process.log()


def test_bad_settings_stop_the_launcher_with_one_line(tmp_path):
    env = clean_environment({"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/x", "JWT_SECRET": "too-short"})
    proc = subprocess.run([sys.executable, str(APP_DIR / "launch.py"), "app"], env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 2
    assert proc.stderr == "launch.py: error: JWT_SECRET must be set, at least 32 characters\n"


# --- admin endpoints, auth, rate limit ----------------------------------------

def test_admin_gets_slo_figures(app, tokens):
    response = get(app, ADMIN_PERFORMANCE, tokens["admin"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["release"] == "itest-shared"
    seeded = [b for b in body["buckets"] if b["requests"] >= SEEDED_METRICS]
    assert seeded, body["buckets"]
    assert set(seeded[0]) >= {"bucket", "requests", "errors", "err_rate", "p95_ms", "p99_ms", "cache_hit_rate_percent"}
    assert body["slo"]["status"] in ("pass", "breach", "no_data")
    assert [check["name"] for check in body["slo"]["checks"]] == ["p95_ms", "p99_ms", "err_rate", "cache_hit_rate"]


def test_admin_reads_recent_audit_rows_with_a_bounded_limit(app, tokens, demo_db):
    everything = get(app, ADMIN_AUDIT_LOG, tokens["admin"], limit=500)
    assert everything.status_code == 200
    assert AUDIT_MARKER in [row["action"] for row in everything.json()["rows"]]
    assert everything.json()["count"] == demo_db.scalar("SELECT count(*) FROM public.audit_log")
    assert get(app, ADMIN_AUDIT_LOG, tokens["admin"], limit=1).json()["count"] == 1
    for bad in ("0", "501", "ten"):
        assert get(app, ADMIN_AUDIT_LOG, tokens["admin"], limit=bad).status_code == 400


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_non_admin_gets_a_generic_403(app, tokens, path):
    response = get(app, path, tokens["regular"])
    assert response.status_code == 403
    assert response.content == b'{"error":"forbidden"}'


def test_a_release_with_the_admin_check_open_serves_a_regular_user(demo_db, tokens, tmp_path):
    """The fault behind the smoke test's "403 leak" check: the same request that gets 403 above gets 200."""
    process = app_process(tmp_path / "app.log", demo_db.url, SECRET, release_id="itest-open", env={"FAULT_ADMIN_OPEN": "true"})
    with process.start():
        performance = get(process, ADMIN_PERFORMANCE, tokens["regular"])
        assert performance.status_code == 200 and performance.json()["buckets"]
        audit = get(process, ADMIN_AUDIT_LOG, tokens["regular"])
        assert audit.status_code == 200 and AUDIT_MARKER in [row["action"] for row in audit.json()["rows"]]
        assert get(process, ADMIN_PATHS[0]).status_code == 401


def _claims(**changes):
    claims = mint_token.claims("admin", time.time())
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


BAD_AUTHORIZATION = {
    "no header": lambda: None,
    "not bearer": lambda: "Basic YWRtaW46YWRtaW4=",
    "empty bearer": lambda: "Bearer",
    "not a jwt": lambda: "Bearer not-a-jwt",
    "other secret": lambda: "Bearer " + mint_token.mint("another-secret-of-at-least-32-chars!", "admin"),
    "expired": lambda: "Bearer " + mint_token.mint(SECRET, "expired"),
    "no exp": lambda: "Bearer " + jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
    "role postgres": lambda: "Bearer " + jwt.encode(_claims(role="postgres"), SECRET, algorithm="HS256"),
    "sub not a uuid": lambda: "Bearer " + jwt.encode(_claims(sub="1 OR 1=1"), SECRET, algorithm="HS256"),
    "alg none": lambda: "Bearer " + jwt.encode(_claims(), None, algorithm="none"),
}


@pytest.mark.parametrize("case", list(BAD_AUTHORIZATION))
def test_missing_bad_or_expired_token_gets_401(app, case):
    authorization = BAD_AUTHORIZATION[case]()
    headers = {"Authorization": authorization} if authorization is not None else {}
    with app.client() as client:
        admin = client.get(ADMIN_PERFORMANCE, headers=headers)
        searched = client.get(SEARCH, params={"q": "zebra"}, headers=headers)
    assert admin.status_code == 401 and admin.content == b'{"error":"unauthorized"}'
    # Search without a token is anonymous; with a bad one it is refused like everything else.
    assert searched.status_code == (200 if authorization is None else 401)


def test_admin_rate_limit_is_30_per_minute_per_token(app):
    token = mint_token.mint(SECRET, "admin", sub=str(uuid.uuid4()))
    with app.client(headers=bearer(token)) as client:
        responses = [client.get(ADMIN_PERFORMANCE) for unused in range(35)]
    assert [r.status_code for r in responses] == [200] * 30 + [429] * 5
    for refused in responses[30:]:
        assert refused.json() == {"error": "rate limited"}
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    another_admin = mint_token.mint(SECRET, "admin", sub=str(uuid.uuid4()))
    assert get(app, ADMIN_PERFORMANCE, another_admin).status_code == 200


# --- RLS, through the app's own session set-up ---------------------------------

def test_rls_not_the_app_check_keeps_admin_rows_from_other_users(demo_db):
    regular = verify_token(mint_token.mint(SECRET, "regular"), SECRET)
    admin = verify_token(mint_token.mint(SECRET, "admin"), SECRET)
    audit_rows = demo_db.scalar("SELECT count(*) FROM public.audit_log")
    assert audit_rows > 0
    with psycopg.connect(demo_db.url, autocommit=True) as conn:
        def count_audit_rows_as(identity):
            with conn.transaction():
                conn.execute(*request_session(identity))
                return conn.execute("SELECT count(*) FROM public.audit_log").fetchone()[0]

        def count_metrics_rows_as(identity):
            with conn.transaction():
                conn.execute(*request_session(identity))
                return conn.execute("SELECT count(*) FROM public.performance_metrics").fetchone()[0]

        assert count_audit_rows_as(regular) == 0
        assert count_metrics_rows_as(regular) == 0
        assert count_audit_rows_as(admin) == audit_rows
        assert count_metrics_rows_as(admin) >= SEEDED_METRICS
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(*request_session(regular))
            conn.execute("SELECT public.check_slo_compliance()")
        # The role and claims last one transaction: the connection is itself again afterwards.
        assert conn.execute("SELECT current_user = session_user, auth.jwt() IS NULL").fetchone() == (True, True)
    with pytest.raises(ValueError):
        request_session(Identity(role="postgres"))


# --- search: cache, private documents, fallback --------------------------------

def test_second_identical_search_is_a_cache_hit(demo_db, tmp_path):
    release = unique("cache")
    with app_process(tmp_path / "app.log", demo_db.url, SECRET, release_id=release).start() as app:
        with app.client() as client:
            first = client.get(SEARCH, params={"q": "Zebra  Crossing"})
            second = client.get(SEARCH, params={"q": "zebra crossing"})
    assert first.json()["cached"] is False and second.json()["cached"] is True
    assert first.json()["count"] > 0 and second.json()["results"] == first.json()["results"]
    rows = demo_db.execute("SELECT cache_hit FROM public.performance_metrics WHERE release_id = %s"
                           " AND endpoint = '/api/search' ORDER BY id", (release,))
    assert rows == [(False,), (True,)]
    # What the app cached is exactly what the demo's warmer recomputes for that key.
    cached, hits = demo_db.execute("SELECT value, hits FROM public.query_cache WHERE key = 'search:zebra crossing:20'")[0]
    assert hits == 1
    assert cached == demo_db.scalar("SELECT public.search_documents_warm(%s::jsonb)",
                                    (json.dumps({"q": "zebra crossing", "limit": 20}),))


def test_private_documents_reach_their_owner_only_and_never_the_shared_cache(app, tokens, demo_db):
    private_id = demo_db.scalar("SELECT id FROM public.documents WHERE title = %s", (PRIVATE_TITLE,))
    stranger = mint_token.mint(SECRET, "regular", sub=str(uuid.uuid4()))
    anonymous = get(app, SEARCH, q="quokka")
    owner = get(app, SEARCH, tokens["regular"], q="quokka")
    owner_public_only = get(app, SEARCH, tokens["regular"], q="quokka", scope="public")
    assert result_ids(anonymous) == [] and result_ids(owner_public_only) == []
    assert result_ids(get(app, SEARCH, stranger, q="quokka")) == []
    assert result_ids(owner) == [private_id]
    # The public part of the owner's answer came from the shared cache, the private part never goes there.
    assert owner.json()["scope"] == "all" and owner.json()["cached"] is True and owner.headers["X-Cache"] == "hit"
    assert demo_db.scalar("SELECT count(*) FROM public.query_cache WHERE value @> %s::jsonb",
                          (json.dumps([{"id": private_id}]),)) == 0
    assert demo_db.scalar("SELECT value FROM public.query_cache WHERE key = 'search:quokka:20'") == []


def test_a_signed_in_search_merges_own_private_documents_by_rank(app, tokens, demo_db):
    private_id = demo_db.scalar("SELECT id FROM public.documents WHERE title = %s", (PRIVATE_TITLE,))
    public = get(app, SEARCH, q="zebra crossings").json()["results"]
    merged = get(app, SEARCH, tokens["regular"], q="zebra crossings").json()["results"]
    assert [row for row in merged if row["id"] != private_id] == public and len(merged) == len(public) + 1
    assert merged == sorted(merged, key=lambda row: (-row["rank"], row["id"]))
    as_owner = demo_db.scalar("SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)) FROM public.search_documents("
                              "'zebra crossings', 20, false) AS r WHERE r.id IN (SELECT id FROM public.documents"
                              " WHERE is_public OR owner_id = %s)", (mint_token.REGULAR_SUB,))
    assert merged == as_owner  # the same as one uncached search with the owner's rights


def test_search_works_before_the_search_migration_and_uses_it_once_applied(pg_db, tokens, tmp_path):
    demo_app.install_demo_schema(pg_db.url, before=demo_app.SEARCH_MIGRATION)
    pg_db.execute("INSERT INTO public.documents (title, body, owner_id, is_public, created_at) VALUES"
                  " (%s, 'zebra crossings ahead', %s, true, now() - interval '1 day'),"
                  " (%s, 'my zebra crossing notes', %s, false, now())",
                  (PUBLIC_TITLE, mint_token.REGULAR_SUB, PRIVATE_TITLE, mint_token.REGULAR_SUB))
    with app_process(tmp_path / "app.log", pg_db.url, SECRET).start() as app:
        before = get(app, SEARCH, q="zebra crossing")
        before_owner = get(app, SEARCH, tokens["regular"], q="zebra crossing")
        demo_app.apply_migration(pg_db.url, demo_app.SEARCH_MIGRATION)
        after = get(app, SEARCH, q="zebra crossings")  # another key: not answered from the cache
        after_owner = get(app, SEARCH, tokens["regular"], q="zebra crossings")
    assert [(r["title"], r["rank"]) for r in before.json()["results"]] == [(PUBLIC_TITLE, None)]
    assert [r["title"] for r in before_owner.json()["results"]] == [PRIVATE_TITLE, PUBLIC_TITLE]  # newest first
    [found] = after.json()["results"]
    assert found["title"] == PUBLIC_TITLE and found["rank"] > 0
    assert {r["title"] for r in after_owner.json()["results"]} == {PUBLIC_TITLE, PRIVATE_TITLE}
    assert all(r["rank"] > 0 for r in after_owner.json()["results"])


# --- metrics rows ---------------------------------------------------------------

def test_every_request_writes_one_metrics_row(demo_db, tokens, tmp_path):
    release = unique("metrics")
    expected = Counter()
    process = app_process(tmp_path / "app.log", demo_db.url, SECRET, release_id=release)
    with process.start(), process.client() as client:
        expected[(HEALTH, 200, "anon")] += process.responses  # the start-up probes
        calls = [((HEALTH, {}, None), 200, "anon"), ((HEALTH, {}, None), 200, "anon"),
                 ((SEARCH, {"q": "zebra"}, None), 200, "anon"),
                 ((SEARCH, {"q": "zebra"}, tokens["regular"]), 200, "authenticated"),
                 ((SEARCH, {}, None), 400, "anon"),
                 ((ADMIN_PERFORMANCE, {}, tokens["admin"]), 200, "admin"),
                 ((ADMIN_PERFORMANCE, {}, tokens["regular"]), 403, "authenticated"),
                 ((ADMIN_PERFORMANCE, {}, None), 401, "anon"),
                 ((ADMIN_PERFORMANCE, {}, "not-a-jwt"), 401, None),
                 (("/no/such/page", {}, None), 404, None)]
        for (path, params, token), status, role in calls:
            assert client.get(path, params=params, headers=bearer(token) if token else {}).status_code == status
            expected[(path if path != "/no/such/page" else "other", status, role)] += 1
        # An unhandled exception (the table is gone) is a 500 with a generic body, and still a row.
        demo_db.execute("ALTER TABLE public.audit_log RENAME TO audit_log_hidden")
        try:
            failed = client.get(ADMIN_AUDIT_LOG, headers=bearer(tokens["admin"]))
        finally:
            demo_db.execute("ALTER TABLE public.audit_log_hidden RENAME TO audit_log")
        assert failed.status_code == 500 and failed.json() == {"error": "internal error"}
        expected[(ADMIN_AUDIT_LOG, 500, "admin")] += 1
        # Written in the background while the app runs, not only at shutdown.
        wait_for(lambda: demo_db.metrics_count(release) >= sum(expected.values()), what="metrics rows")
    rows = demo_db.execute("SELECT endpoint, status, user_role, duration_ms > 0 FROM public.performance_metrics"
                           " WHERE release_id = %s", (release,))
    assert Counter(row[:3] for row in rows) == expected
    assert all(row[3] for row in rows)
    assert "unhandled UndefinedTable on GET /api/admin/audit-log" in process.log()


def test_metrics_rows_are_flushed_at_shutdown(demo_db, tmp_path):
    release = unique("shutdown")
    process = app_process(tmp_path / "app.log", demo_db.url, SECRET, release_id=release,
                          env={"METRICS_FLUSH_MS": "600000", "METRICS_BATCH_ROWS": "100000"})
    with process.start(), process.client() as client:
        for unused in range(5):
            assert client.get(HEALTH).status_code == 200
        time.sleep(0.3)
        assert demo_db.metrics_count(release) == 0  # nothing flushed yet: the interval is ten minutes
    # uvicorn ends by re-raising the SIGTERM it handled: how process managers expect a clean stop to look.
    assert process.process.returncode in (0, -signal.SIGTERM)
    assert demo_db.metrics_count(release) == process.responses + 5


# --- releases and faults ----------------------------------------------------------

def run_tool(script, *args, env=None):
    return subprocess.run([sys.executable, str(APP_DIR / script)] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=60, check=False, env=env or clean_environment())


def test_release_build_switch_and_current(tmp_path):
    root = tmp_path / "root"
    assert run_tool("release.py", "build", "--root", root, "--id", "r1").stdout == "built r1\n"
    assert run_tool("release.py", "build", "--root", root, "--id", "r1").stdout == "unchanged r1\n"
    changed = run_tool("release.py", "build", "--root", root, "--id", "r1", "--fault-error-rate", "0.5")
    assert changed.returncode == 2 and "release r1 already exists" in changed.stderr
    built = run_tool("release.py", "build", "--root", root, "--id", "r2", "--fault-latency-ms", "800")
    assert built.returncode == 0
    assert (root / "releases" / "r2" / "release.env").read_text() == (
        "RELEASE_ID=r2\nFAULT_ERROR_RATE=0.0\nFAULT_LATENCY_MS=800\nFAULT_CACHE_BYPASS=false\nFAULT_ADMIN_OPEN=false\n")
    assert sorted(p.name for p in (root / "releases" / "r2").iterdir()) == [
        "cache_worker.py", "demoapp", "launch.py", "release.env"]
    no_current = run_tool("release.py", "current", "--root", root)
    assert no_current.returncode == 2 and no_current.stderr.count("\n") == 1
    assert run_tool("release.py", "switch", "--root", root, "--id", "r1").stdout == "\n"
    assert run_tool("release.py", "switch", "--root", root, "--id", "r2").stdout == "r1\n"
    assert run_tool("release.py", "current", "--root", root).stdout == "r2\n"
    assert os.readlink(root / "current") == os.path.join("releases", "r2")
    for bad_id, message in (("r9", "unknown release 'r9'"), ("../etc", "bad release id")):
        refused = run_tool("release.py", "switch", "--root", root, "--id", bad_id)
        assert refused.returncode == 2 and message in refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert os.readlink(root / "current") == os.path.join("releases", "r2")
    bad_rate = run_tool("release.py", "build", "--root", root, "--id", "r3", "--fault-error-rate", "2")
    assert bad_rate.returncode == 2 and bad_rate.stderr == "release.py: error: --fault-error-rate must be in 0.0..1.0, got '2'\n"


def test_release_with_five_percent_errors_fails_about_five_percent_of_searches(demo_db, tmp_path):
    root, release = tmp_path / "root", unique("bad")
    assert run_tool("release.py", "build", "--root", root, "--id", release, "--fault-error-rate", "0.05").returncode == 0
    assert run_tool("release.py", "switch", "--root", root, "--id", release).returncode == 0
    process = app_process(tmp_path / "app.log", demo_db.url, SECRET, launcher=root / "current" / "launch.py")
    with process.start(), process.client() as client:
        assert client.get(HEALTH).json()["release"] == release  # from the release's release.env
        searches = [client.get(SEARCH, params={"q": "runbook"}).status_code for unused in range(600)]
        healths = [client.get(HEALTH).status_code for unused in range(50)]
    errors = searches.count(500)
    assert set(searches) == {200, 500}
    assert 12 <= errors <= 50  # 5 % of 600 is 30; the band is more than 3 standard deviations wide
    assert healths == [200] * 50  # only search is damaged
    assert demo_db.execute("SELECT count(*) FILTER (WHERE status >= 500), count(*) FROM public.performance_metrics"
                           " WHERE release_id = %s AND endpoint = '/api/search'", (release,)) == [(errors, 600)]


# --- supervisord --------------------------------------------------------------------

def supervisorctl(conf, *args):
    return subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(conf)] + list(args), capture_output=True,
                          text=True, timeout=60, check=False)


def program_states(conf):
    lines = supervisorctl(conf, "status").stdout.splitlines()
    return dict(line.split()[:2] for line in lines if len(line.split()) >= 2)


def health_of(port):
    try:
        response = httpx.get("http://127.0.0.1:%d%s" % (port, HEALTH), timeout=2.0)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


def shut_down_supervisord(root, conf):
    """Stop the supervisord this test started (and its programs), by its pid, whatever state the test left."""
    pidfile = root / "run" / "supervisord.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip())
    supervisorctl(conf, "shutdown")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def test_supervisord_runs_the_app_and_the_cache_worker_from_current(demo_db, pg_server):
    root = Path(tempfile.mkdtemp(prefix="slogate-sv-"))  # short: a unix socket path has at most 107 bytes
    conf = root / "supervisord.conf"
    release, port = unique("sv"), free_port()
    try:
        assert run_tool("release.py", "build", "--root", root, "--id", release).returncode == 0
        assert run_tool("release.py", "switch", "--root", root, "--id", release).returncode == 0
        secrets = root / "secrets.env"
        written = run_tool("supervisor.py", "secrets", "--file", secrets,
                           env=clean_environment({"DATABASE_URL": demo_db.url, "JWT_SECRET": SECRET}))
        assert written.returncode == 0, written.stderr
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        assert run_tool("supervisor.py", "write", "--root", root, "--secrets", secrets, "--port", port).returncode == 0
        # supervisord's environment holds no secret: the programs read them from the file.
        subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(conf)], check=True, timeout=30,
                       env=clean_environment({"CACHE_WORKER_INTERVAL_SECONDS": "0.2"}))
        both = {"slogate-app", "slogate-cache-worker"}
        wait_for(lambda: program_states(conf) == dict.fromkeys(both, "RUNNING"), timeout=20, what="both RUNNING")
        assert wait_for(lambda: health_of(port), timeout=15, what="health")["release"] == release

        demo_db.execute("INSERT INTO public.query_cache (key, query_name, value, expires_at)"
                        " VALUES ('search:sv:1', 'search', '[]', now() + interval '1 hour')")
        demo_db.execute("INSERT INTO public.cache_invalidation_queue (cache_key, reason) VALUES ('search:sv:1', 'itest')")
        wait_for(lambda: demo_db.scalar("SELECT count(*) FROM public.query_cache WHERE key = 'search:sv:1'") == 0,
                 timeout=10, what="the cache worker to drop the entry")

        stopped = supervisorctl(conf, "stop", "all")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert program_states(conf) == dict.fromkeys(both, "STOPPED")
        assert health_of(port) is None
        logs = "".join(path.read_text(errors="replace") for path in (root / "logs").iterdir())
        assert "drained: processed=" in logs and "cache worker stopped after" in logs
        assert "metrics rows written" in logs  # the app shut down cleanly on SIGTERM
        assert SECRET not in logs
        assert not pg_server.password or pg_server.password not in logs
    finally:
        shut_down_supervisord(root, conf)
        shutil.rmtree(root, ignore_errors=True)


def test_mint_token_prints_the_runbook_variables(tokens):
    proc = run_tool("mint_token.py", env=clean_environment({"JWT_SECRET": SECRET}))
    assert proc.returncode == 0
    printed = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert set(printed) == {"ADMIN_TOKEN", "REGULAR_USER_TOKEN", "EXPIRED_TOKEN"}
    assert verify_token(printed["ADMIN_TOKEN"], SECRET).is_admin
    assert not verify_token(printed["REGULAR_USER_TOKEN"], SECRET).is_admin
    with pytest.raises(Unauthorized, match="ExpiredSignatureError"):
        verify_token(printed["EXPIRED_TOKEN"], SECRET)
