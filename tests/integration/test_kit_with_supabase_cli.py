"""The demo project (documents + kit + the two runbook migrations) pushed by the
real Supabase CLI onto plain PostgreSQL after the bootstrap, then verified."""

import shutil

import pytest

import kit
from supabase_cli import SupabaseCli

pytestmark = pytest.mark.integration

DEMO = kit.ROOT / "examples" / "demo"


def test_supabase_cli_pushes_the_demo_project(pg_db, supabase_cli_bin, tmp_path):
    project = tmp_path / "demo"
    shutil.copytree(DEMO / "supabase", project / "supabase")
    kit.apply_file(pg_db.url, kit.BOOTSTRAP)
    cli = SupabaseCli(project, binary=supabase_cli_bin)
    pushed = cli.push(pg_db.url)
    assert pushed.returncode == 0, pushed.stderr
    local = sorted(p.name.split("_", 1)[0] for p in (project / "supabase" / "migrations").glob("*.sql"))
    applied = [row[0] for row in pg_db.execute("SELECT version FROM supabase_migrations.schema_migrations ORDER BY 1")]
    assert applied == local
    for function in ("verify_migration_success()", "verify_final_punchlist_migration()",
                     "verify_materialized_view_indexes()"):
        result = pg_db.scalar("SELECT public." + function)
        assert result["ok"] is True, (function, [c for c in result["checks"] if not c["ok"]])
    again = cli.push(pg_db.url)
    assert again.returncode == 0 and "Applying migration" not in again.stderr


def test_demo_search_cache_cycle(pg_db):
    """A write by a user queues a cache invalidation and is audited; warm-up and drain act on the search cache."""
    kit.apply_file(pg_db.url, kit.BOOTSTRAP)
    for migration in sorted((DEMO / "supabase" / "migrations").glob("*.sql")):
        kit.apply_file(pg_db.url, migration)
    owner = "6f1c2b9e-0000-4000-8000-000000000001"
    pg_db.execute("""
        BEGIN;
        SET LOCAL ROLE authenticated;
        SELECT set_config('request.jwt.claims', '{"role": "authenticated", "sub": "%s"}', true);
        INSERT INTO public.documents (title, body, tags, owner_id, is_public)
        VALUES ('Tuning Postgres', 'indexes and vacuum', '{postgres}', '%s', true),
               ('Private notes', 'postgres secrets', '{notes}', '%s', false);
        COMMIT;""" % (owner, owner, owner))
    assert pg_db.execute("SELECT key_prefix, reason FROM public.cache_invalidation_queue") == [
        ("search:", "INSERT on public.documents")]
    assert pg_db.execute("SELECT actor, action, detail ->> 'sub' FROM public.audit_log") == [("authenticated", "insert", owner)]
    anon_titles = pg_db.execute("""
        BEGIN; SET LOCAL ROLE anon;
        SELECT title FROM public.search_documents('postgres');""")
    assert anon_titles == [("Tuning Postgres",)]  # RLS hides the private document from anonymous search

    pg_db.execute("SELECT slogate.cache_get('search:postgres', 'search', '{\"q\": \"postgres\"}')")
    warm = pg_db.scalar("SELECT public.warm_cache_top_queries(5)")
    assert warm["ok"] is True and warm["keys"] == ["search:postgres"]
    cached = pg_db.scalar("SELECT value FROM public.query_cache WHERE key = 'search:postgres'")
    assert [row["title"] for row in cached] == ["Tuning Postgres"]  # shared by all users: public documents only
    drained = pg_db.scalar("SELECT public.drain_cache_invalidation_queue(100, 10)")
    assert drained["processed"] == 1 and drained["invalidated"] == 1
    assert pg_db.scalar("SELECT count(*) FROM public.query_cache") == 0
