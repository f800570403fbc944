"""The real Supabase CLI (pinned in package.json) against a plain PostgreSQL
database: what ../shared/notes/supabase-cli.md says `supabase db push` does to
the history table, checked on the server the suite runs against (18 or 15)."""

import pytest

from supabase_cli import SupabaseCliError, with_sslmode_disable

pytestmark = pytest.mark.integration

MIGRATIONS = {
    "20240101000000_create_items.sql": (
        "-- the first table\n"
        "create table public.items (id bigint primary key, name text not null);\n"
        "insert into public.items (id, name) values (1, 'a; b');\n"
    ),
    "20240102000000_add_note.sql": "alter table public.items add column note text;\n",
}

# (version, name, statements) as the CLI stores them: split on ';' outside
# quotes, trimmed, without the trailing ';', leading comments kept.
EXPECTED_HISTORY = [
    ("20240101000000", "create_items", [
        "-- the first table\ncreate table public.items (id bigint primary key, name text not null)",
        "insert into public.items (id, name) values (1, 'a; b')",
    ]),
    ("20240102000000", "add_note", ["alter table public.items add column note text"]),
]

HISTORY_SQL = "SELECT version, name, statements FROM supabase_migrations.schema_migrations ORDER BY version"


def write_project(cli):
    for filename, sql in MIGRATIONS.items():
        cli.write_migration(filename, sql)


def history(db):
    return [tuple(row) for row in db.execute(HISTORY_SQL)]


def history_table_exists(db):
    return db.scalar("SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL")


def test_push_records_both_files(pg_db, supabase_cli):
    write_project(supabase_cli)
    rc, out, err = supabase_cli.push(pg_db.url)
    assert rc == 0, out + err
    for filename in MIGRATIONS:
        assert "Applying migration %s" % filename in err
    assert history(pg_db) == EXPECTED_HISTORY
    columns = pg_db.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'supabase_migrations' AND table_name = 'schema_migrations' "
                            "ORDER BY ordinal_position")
    assert [tuple(c) for c in columns] == [("version", "text"), ("statements", "ARRAY"), ("name", "text")]
    assert pg_db.execute("SELECT id, name, note FROM public.items") == [(1, "a; b", None)]


def test_second_push_changes_nothing(pg_db, supabase_cli):
    write_project(supabase_cli)
    assert supabase_cli.push(pg_db.url).returncode == 0
    before = history(pg_db)
    again = supabase_cli.push(pg_db.url, output_format="json")
    assert again.returncode == 0, again.stdout + again.stderr
    report = again.json()
    assert report["upToDate"] is True and report["migrations"] == [], report
    assert history(pg_db) == before == EXPECTED_HISTORY
    assert pg_db.scalar("SELECT count(*) FROM public.items") == 1


def test_dry_run_lists_files_and_changes_nothing(pg_db, supabase_cli):
    write_project(supabase_cli)
    dry = supabase_cli.push(pg_db.url, dry_run=True, output_format="json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    report = dry.json()
    assert report["dryRun"] is True and report["migrations"] == sorted(MIGRATIONS), report
    assert not history_table_exists(pg_db)
    assert pg_db.scalar("SELECT to_regclass('public.items')") is None


def test_migration_list_shows_both_applied(pg_db, supabase_cli):
    write_project(supabase_cli)
    versions = [name.split("_", 1)[0] for name in sorted(MIGRATIONS)]
    pending = supabase_cli.migration_list(pg_db.url)["migrations"]
    assert [(m["local"], m["remote"]) for m in pending] == [(v, "") for v in versions]
    assert supabase_cli.push(pg_db.url).returncode == 0
    applied = supabase_cli.migration_list(pg_db.url)["migrations"]
    assert [(m["local"], m["remote"]) for m in applied] == [(v, v) for v in versions]


def test_push_without_yes_changes_nothing(pg_db, supabase_cli):
    """The wrapper passes --yes; without it and without a TTY the CLI refuses and changes nothing."""
    write_project(supabase_cli)
    refused = supabase_cli.run(["db", "push", "--remote=%s" % with_sslmode_disable(pg_db.url)], db_url=pg_db.url, yes=False)
    assert refused.returncode != 0
    assert "--yes" in refused.stderr and "Nothing was changed" in refused.stderr, refused.stderr
    assert not history_table_exists(pg_db)


def test_errors_never_show_the_password(pg_db, supabase_cli):
    wrong = "Wr0ngPassw0rd-cli"
    url = pg_db.server.url_for(pg_db.name, password=wrong)
    rc, out, err = supabase_cli.push(url)
    assert rc != 0 and "password authentication failed" in out + err
    assert wrong not in out + err
    with pytest.raises(SupabaseCliError) as info:
        supabase_cli.migration_list(url)
    assert wrong not in str(info.value) and "********" in str(info.value)
    assert pg_db.server.password not in str(info.value)
