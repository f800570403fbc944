"""Fixtures for integration tests that need the real Supabase CLI.

The CLI comes from package.json/package-lock.json (`make cli`, run here when
node_modules/.bin/supabase is missing); the databases come from the top-level
conftest's `pg_db`.
"""

import pytest

from supabase_cli import SupabaseCli, ensure_cli


@pytest.fixture(scope="session")
def supabase_cli_bin():
    """Path of the pinned CLI, installed once per session (and per xdist worker, under a file lock)."""
    return ensure_cli()


@pytest.fixture
def supabase_cli(supabase_cli_bin, tmp_path):
    """A SupabaseCli on an empty project folder of its own (supabase/migrations/ exists, empty)."""
    cli = SupabaseCli(tmp_path / "project", binary=supabase_cli_bin)
    cli.migrations_dir.mkdir(parents=True)
    return cli
