"""The kit and the demo project raise no ERROR and no WARN from the database
linter rules (our implementation of Supabase's, tests/support/db_lint.py)."""

import pytest

import db_lint
import kit

pytestmark = pytest.mark.integration

DEMO_MIGRATIONS = sorted((kit.ROOT / "examples" / "demo" / "supabase" / "migrations").glob("*.sql"))


def test_kit_is_lint_clean(pg_db):
    kit.install(pg_db.url)
    assert db_lint.blocking(db_lint.lint(pg_db.url)) == []


def test_demo_project_is_lint_clean(pg_db):
    kit.apply_file(pg_db.url, kit.BOOTSTRAP)
    for migration in DEMO_MIGRATIONS:
        kit.apply_file(pg_db.url, migration)
    findings = db_lint.lint(pg_db.url)
    assert db_lint.blocking(findings) == []
    assert {f.name for f in findings} <= {"no_primary_key", "unindexed_foreign_keys", "rls_enabled_no_policy"}


def test_linter_sees_a_kit_regression(pg_db):
    kit.install(pg_db.url)
    pg_db.execute("ALTER TABLE public.audit_log DISABLE ROW LEVEL SECURITY")
    assert [(f.name, f.object) for f in db_lint.blocking(db_lint.lint(pg_db.url))] == [
        ("policy_exists_rls_disabled", "public.audit_log"), ("rls_disabled_in_public", "public.audit_log")]
