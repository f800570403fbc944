"""supabase_migrate against real PostgreSQL, and against the real Supabase CLI on the same database."""

import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2

import pytest

import kit
from supabase_cli import SupabaseCli

pytestmark = pytest.mark.integration

ROOT = kit.ROOT
TRICKY = ROOT / "tests" / "integration" / "projects" / "tricky"
DEMO = ROOT / "examples" / "demo"
HISTORY = "SELECT version, name, statements FROM supabase_migrations.schema_migrations ORDER BY version"


@pytest.fixture
def tricky(tmp_path):
    project = tmp_path / "tricky"
    shutil.copytree(TRICKY, project)
    return project


def migrate(ansible_module, db, project, **options):
    check = options.pop("_check", False)
    diff = options.pop("_diff", False)
    return ansible_module("supabase_migrate", dict(options, project_dir=str(project), db_url=db.url), check=check, diff=diff)


def history(db):
    return db.execute(HISTORY)


def local_versions(project):
    return sorted(p.name.split("_", 1)[0] for p in (project / "supabase" / "migrations").glob("*.sql"))


def test_apply_then_nothing_pending(pg_db, ansible_module, tricky):
    run = migrate(ansible_module, pg_db, tricky)
    assert not run.failed, run.result["msg"]
    assert run.result["changed"] is True and run.result["history_created"] is True
    assert [m["version"] for m in run.result["applied"]] == local_versions(tricky)
    assert run.result["pending"] == [] and run.result["skipped_files"][0]["file"] == "README.md"
    assert [row[0] for row in history(pg_db)] == local_versions(tricky)
    assert pg_db.execute("SELECT email, note FROM public.accounts") == [("a@example.com", "tab\there; and 'quote'")]
    assert pg_db.scalar("SELECT public.add_one(1)") == 2
    assert pg_db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.accounts_created_at_idx'::regclass")
    assert pg_db.scalar("SELECT to_regclass('public.pulled_two') IS NOT NULL")  # RESET ALL undid the pulled header
    again = migrate(ansible_module, pg_db, tricky)
    assert not again.failed and again.result["changed"] is False and again.result["applied"] == []


def test_check_mode_changes_nothing_not_even_the_history_table(pg_db, ansible_module, tricky):
    run = migrate(ansible_module, pg_db, tricky, _check=True, _diff=True)
    assert not run.failed, run.result["msg"]
    assert run.result["changed"] is True and len(run.result["pending"]) == 8
    assert pg_db.scalar("SELECT to_regclass('supabase_migrations.schema_migrations')") is None
    assert pg_db.scalar("SELECT to_regclass('public.accounts')") is None
    assert "CREATE INDEX CONCURRENTLY accounts_created_at_idx" in run.stdout


def test_status_reports_without_changing(pg_db, ansible_module, tricky):
    run = migrate(ansible_module, pg_db, tricky, state="status")
    assert not run.failed and run.result["changed"] is False and len(run.result["pending"]) == 8


def test_target_applies_up_to_it(pg_db, ansible_module, tricky):
    run = migrate(ansible_module, pg_db, tricky, target="20260201000003")
    assert [m["version"] for m in run.result["applied"]] == ["20260201000001", "20260201000002", "20260201000003"]
    assert len(run.result["pending"]) == 0
    rest = migrate(ansible_module, pg_db, tricky)
    assert len(rest.result["applied"]) == 5


def test_broken_migration_names_file_and_line_and_leaves_nothing_partial(pg_db, ansible_module, tricky):
    (tricky / "supabase" / "migrations" / "20260201000009_broken.sql").write_text(
        "CREATE TABLE public.half_done (id int);\n\n-- the next one fails\nINSERT INTO public.no_such_table VALUES (1);\n")
    run = migrate(ansible_module, pg_db, tricky)
    assert run.failed
    assert run.result["msg"].startswith(
        'migration 20260201000009_broken.sql, statement 2 (line 3): relation "public.no_such_table" does not exist')
    assert pg_db.scalar("SELECT to_regclass('public.half_done')") is None
    assert [row[0] for row in history(pg_db)] == local_versions(tricky)[:-1]
    assert len(run.result["applied"]) == 8 and run.result["pending"] == [
        {"version": "20260201000009", "name": "broken", "file": "20260201000009_broken.sql", "down_script": False,
         "verify": None}]


def test_a_statement_ending_in_a_line_comment_runs_in_the_one_round_trip_file(pg_db, ansible_module, tricky):
    (tricky / "supabase" / "migrations" / "20260201000009_commented.sql").write_text(
        "CREATE TABLE public.commented (id int); -- why; it matters\nINSERT INTO public.commented VALUES (1) -- the last line, no newline")
    run = migrate(ansible_module, pg_db, tricky)
    assert not run.failed, run.result["msg"]
    assert pg_db.scalar("SELECT count(*) FROM public.commented") == 1
    assert history(pg_db)[-1][0] == "20260201000009"


def test_drift_is_reported_and_not_rerun(pg_db, ansible_module, tricky):
    migrate(ansible_module, pg_db, tricky)
    path = tricky / "supabase" / "migrations" / "20260201000001_accounts.sql"
    path.write_text(path.read_text().replace("email text NOT NULL UNIQUE", "email text NOT NULL"))
    run = migrate(ansible_module, pg_db, tricky)
    assert not run.failed and run.result["changed"] is False
    assert run.result["drift"] == [{"version": "20260201000001", "name": "accounts",
                                    "detail": "statement 1 differs from the applied one"}]
    assert "changed after it was applied" in run.stdout + run.stderr


def test_missing_local_blocks_latest(pg_db, ansible_module, tricky):
    migrate(ansible_module, pg_db, tricky)
    (tricky / "supabase" / "migrations" / "20260201000008_after_header.sql").unlink()
    run = migrate(ansible_module, pg_db, tricky)
    assert run.failed and run.result["msg"].startswith("applied but missing locally: 20260201000008_after_header")
    assert not migrate(ansible_module, pg_db, tricky, allow_missing_local=True).failed


def test_rolled_back_to_a_target_and_up_again(pg_db, ansible_module, tricky):
    migrate(ansible_module, pg_db, tricky, target="20260201000001")
    before = pg_db.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
    migrate(ansible_module, pg_db, tricky)
    pg_db.execute("INSERT INTO public.accounts (email) VALUES ('kept@example.com')")
    down = migrate(ansible_module, pg_db, tricky, state="rolled_back", target="20260201000001")
    assert not down.failed, down.result["msg"]
    assert [r["version"] for r in down.result["reverted"]] == local_versions(tricky)[:0:-1]
    assert [row[0] for row in history(pg_db)] == ["20260201000001"]
    assert pg_db.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace") == before
    assert pg_db.scalar("SELECT count(*) FROM public.accounts") == 2  # no data lost from the table that stays
    again = migrate(ansible_module, pg_db, tricky, state="rolled_back", target="20260201000001")
    assert not again.failed and again.result["changed"] is False
    up = migrate(ansible_module, pg_db, tricky)
    assert len(up.result["applied"]) == 7


def test_rolled_back_refuses_without_a_down_script(pg_db, ansible_module, tricky):
    migrate(ansible_module, pg_db, tricky)
    (tricky / "supabase" / "rollbacks" / "20260201000004_explicit_transaction.sql").unlink()
    run = migrate(ansible_module, pg_db, tricky, state="rolled_back", target="0")
    assert run.failed and run.result["msg"].startswith(
        "no down script in supabase/rollbacks for 20260201000004_explicit_transaction")
    assert run.result["irreversible"] == [{"version": "20260201000004", "name": "explicit_transaction"}]
    assert len(history(pg_db)) == 8  # nothing was touched
    forced = migrate(ansible_module, pg_db, tricky, state="rolled_back", target="0", allow_irreversible=True)
    assert not forced.failed, forced.result["msg"]
    assert forced.result["forgotten"] == [{"version": "20260201000004", "name": "explicit_transaction"}]
    assert history(pg_db) == [] and pg_db.scalar("SELECT to_regclass('public.audit') IS NOT NULL")


VERIFIERS = """
CREATE FUNCTION public.verify_accounts() RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('ok', to_regclass('public.accounts') IS NOT NULL, 'checks', jsonb_build_array(
    jsonb_build_object('name', 'accounts exists', 'ok', to_regclass('public.accounts') IS NOT NULL, 'detail', '')))
$$;
CREATE FUNCTION public.verify_add_one_is_three() RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  RETURN jsonb_build_object('ok', public.add_one(1) = 3, 'checks', jsonb_build_array(
    jsonb_build_object('name', 'add_one(1) is 3', 'ok', public.add_one(1) = 3, 'detail', 'got ' || public.add_one(1))));
END $$;
"""


def test_verifiers_run_right_after_their_migrations(pg_db, ansible_module, tricky):
    pg_db.execute(VERIFIERS)
    (tricky / "supabase" / "rollbacks" / "20260201000004_explicit_transaction.sql").unlink()
    verify = {"accounts": "public.verify_accounts", "20260201000003": "pg_catalog.pg_backend_pid", "no_such_one": "x"}
    status = migrate(ansible_module, pg_db, tricky, state="status", verify=verify)
    assert status.result["server_version"] == pg_db.scalar("SHOW server_version")
    assert status.result["server_time"][:4] == str(pg_db.scalar("SELECT extract(year FROM now())::int"))
    pending = {p["version"]: p for p in status.result["pending"]}
    assert pending["20260201000001"]["verify"] == "public.verify_accounts" and pending["20260201000002"]["verify"] is None
    assert [v for v, p in sorted(pending.items()) if not p["down_script"]] == ["20260201000004"]
    assert "verify names no_such_one, which is no migration of" in status.output
    run = migrate(ansible_module, pg_db, tricky, verify=verify)
    assert not run.failed, run.result["msg"]
    assert [(v["version"], v["function"], v["ok"]) for v in run.result["verifications"]] == [
        ("20260201000001", "public.verify_accounts()", True), ("20260201000003", "pg_catalog.pg_backend_pid()", True)]
    assert run.result["verifications"][0]["checks"] == [{"name": "accounts exists", "ok": True, "detail": ""}]


def test_a_failing_verifier_stops_after_its_migration(pg_db, ansible_module, tricky):
    pg_db.execute(VERIFIERS)
    run = migrate(ansible_module, pg_db, tricky, verify={"functions": "verify_add_one_is_three"})
    assert run.failed
    assert run.result["msg"] == (
        "20260201000002_functions was applied, then public.verify_add_one_is_three() failed: 1 of 1 checks failed - "
        "failed checks: add_one(1) is 3 (got 2); the later migrations were not run")
    assert [m["version"] for m in run.result["applied"]] == ["20260201000001", "20260201000002"]
    assert [row[0] for row in history(pg_db)] == ["20260201000001", "20260201000002"]
    assert len(run.result["pending"]) == 6 and run.result["verifications"][0]["ok"] is False
    raising = migrate(ansible_module, pg_db, tricky, verify={"20260201000003": "public.add_one"})
    assert raising.failed and raising.result["msg"].startswith(
        "20260201000003_concurrent_index was applied, then its verifier could not be called: function public.add_one "
        "takes other arguments than the 0 given")
    assert [row[0] for row in history(pg_db)][-1] == "20260201000003"


def test_two_runs_at_once_never_collide(pg_db, ansible_module, tricky):
    # a slow file keeps the first run inside the lock while the second one starts
    (tricky / "supabase" / "migrations" / "20260201000009_slow.sql").write_text("SELECT pg_sleep(3);\n")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda dummy: migrate(ansible_module, pg_db, tricky), range(2)))
    assert [run.failed for run in runs] == [False, False], [run.result.get("msg") for run in runs]
    assert [row[0] for row in history(pg_db)] == local_versions(tricky)
    # the second run waited for the lock, then found nothing pending
    assert sorted(len(run.result["applied"]) for run in runs) == [0, 9]


def test_lock_timeout_stops_a_migration_stuck_behind_a_lock(pg_db, ansible_module, tricky):
    migrate(ansible_module, pg_db, tricky, target="20260201000001")
    holder = psycopg2.connect(pg_db.url)
    try:
        holder.cursor().execute("LOCK TABLE public.accounts IN ACCESS EXCLUSIVE MODE")
        run = migrate(ansible_module, pg_db, tricky, lock_timeout="300ms")
    finally:
        holder.rollback()
        holder.close()
    assert run.failed
    assert run.result["msg"].startswith("migration 20260201000003_concurrent_index.sql, statement 1 (line 1): "
                                        "canceling statement due to lock timeout")


def test_wrong_password_is_one_line_without_it(pg_db, ansible_module, tricky):
    run = ansible_module("supabase_migrate", dict(project_dir=str(tricky), db_url=pg_db.server.url_for(pg_db.name, password="NopeNope42")),
                         verbosity=3)
    assert run.failed and "authentication failed" in run.result["msg"] and "NopeNope42" not in run.output


def test_missing_project_is_named(pg_db, ansible_module, tmp_path):
    run = migrate(ansible_module, pg_db, tmp_path / "nothing")
    assert run.failed and run.result["msg"] == "%s has no supabase/migrations folder: point project_dir at the folder that holds supabase/" % (
        tmp_path / "nothing")


# --- with the real Supabase CLI on the same database ----------------------------------

def half_project(project, tmp_path, count):
    half = tmp_path / "half"
    (half / "supabase" / "migrations").mkdir(parents=True)
    for path in sorted((project / "supabase" / "migrations").glob("2026*.sql"))[:count]:
        shutil.copy(path, half / "supabase" / "migrations" / path.name)
    return half


def assert_cli_sees_everything(cli, db, project):
    listed = cli.migration_list(db.url)["migrations"]
    assert [(m["local"], m["remote"]) for m in listed] == [(v, v) for v in local_versions(project)]
    dry = cli.push(db.url, dry_run=True, output_format="json")
    assert dry.returncode == 0, dry.stderr
    report = dry.json()
    assert report.get("dryRun") is True and not report.get("migrations"), report
    assert [row[0] for row in history(db)] == local_versions(project)


@pytest.fixture
def cli_only_history(pg_server, supabase_cli_bin, tricky):
    """The history rows of a database the CLI alone pushed the project to."""
    return cli_history(pg_server, supabase_cli_bin, tricky)


def cli_history(pg_server, supabase_cli_bin, project):
    name = "slogate_cli_%s" % uuid.uuid4().hex[:8]
    admin = psycopg2.connect(pg_server.admin_url)
    admin.autocommit = True
    admin.cursor().execute('CREATE DATABASE "%s"' % name)
    try:
        url = pg_server.url_for(name)
        pushed = SupabaseCli(project, binary=supabase_cli_bin).push(url)
        assert pushed.returncode == 0, pushed.stderr
        conn = psycopg2.connect(url)
        with conn.cursor() as cur:
            cur.execute(HISTORY)
            rows = cur.fetchall()
        conn.close()
        return rows
    finally:
        admin.cursor().execute('DROP DATABASE "%s" WITH (FORCE)' % name)
        admin.close()


def test_cli_first_then_module(pg_db, ansible_module, supabase_cli_bin, tricky, tmp_path, cli_only_history):
    half = half_project(tricky, tmp_path, 4)
    assert SupabaseCli(half, binary=supabase_cli_bin).push(pg_db.url).returncode == 0
    run = migrate(ansible_module, pg_db, tricky)
    assert not run.failed, run.result["msg"]
    assert [m["version"] for m in run.result["applied"]] == local_versions(tricky)[4:] and run.result["drift"] == []
    assert_cli_sees_everything(SupabaseCli(tricky, binary=supabase_cli_bin), pg_db, tricky)
    assert history(pg_db) == cli_only_history


def test_module_first_then_cli(pg_db, ansible_module, supabase_cli_bin, tricky, cli_only_history):
    run = migrate(ansible_module, pg_db, tricky, target="20260201000004")
    assert not run.failed, run.result["msg"]
    cli = SupabaseCli(tricky, binary=supabase_cli_bin)
    pushed = cli.push(pg_db.url)
    assert pushed.returncode == 0, pushed.stderr
    assert_cli_sees_everything(cli, pg_db, tricky)
    assert history(pg_db) == cli_only_history
    assert migrate(ansible_module, pg_db, tricky).result["changed"] is False


def test_demo_project_matches_a_cli_push(pg_db, ansible_module):
    kit.apply_file(pg_db.url, kit.BOOTSTRAP)
    run = migrate(ansible_module, pg_db, DEMO)
    assert not run.failed, run.result["msg"]
    assert pg_db.scalar("SELECT public.verify_migration_success()")["ok"] is True


def test_engine_cli_pushes_with_the_real_cli(pg_db, ansible_module, supabase_cli_bin, tricky, cli_only_history):
    run = ansible_module("supabase_migrate", dict(project_dir=str(tricky), db_url=pg_db.url + "?sslmode=disable",
                                                  engine="cli", cli_path=str(supabase_cli_bin)), verbosity=3)
    assert not run.failed, run.result["msg"]
    assert run.result["engine"] == "cli" and len(run.result["applied"]) == 8
    assert history(pg_db) == cli_only_history
    assert pg_db.server.password not in run.output


def test_crlf_bom_and_no_transaction_header_match_the_cli(pg_db, pg_server, ansible_module, supabase_cli_bin, tmp_path):
    project = tmp_path / "odd"
    migrations = project / "supabase" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "20260301000001_crlf.sql").write_bytes(
        b"\xef\xbb\xbf-- written on Windows\r\nCREATE TABLE public.crlf (id int);\r\nINSERT INTO public.crlf VALUES (1);\r\n")
    (migrations / "20260301000002_no_transaction.sql").write_text(
        "-- pg-delta: transaction=false\nCREATE TABLE public.loose (id int);\nCREATE INDEX CONCURRENTLY loose_id ON public.loose (id);\n")
    run = migrate(ansible_module, pg_db, project)
    assert not run.failed, run.result["msg"]
    assert history(pg_db) == cli_history(pg_server, supabase_cli_bin, project)
    assert "\r\n" in history(pg_db)[0][2][0]
