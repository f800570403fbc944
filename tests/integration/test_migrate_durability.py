"""supabase_migrate commits each file without waiting for its WAL flush, and makes the whole run durable before it
returns: a server crash right after the task must not lose any migration the task reported as applied."""

import tempfile
from pathlib import Path

import pytest

from ansible_collections.slogate.supabase.plugins.module_utils.migrate import Engine, MigrationFailure, load_project
from ansible_collections.slogate.supabase.plugins.module_utils.migration_plan import plan_latest
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import connect
from pgserver import PgServer, run_sql

pytestmark = pytest.mark.integration

COUNT = 12


@pytest.fixture
def durable_server():
    """A server of its own (it is crashed) with PostgreSQL's commit settings, whose WAL writer waits 10 s between
    flushes: a commit that did not wait for its flush stays in shared memory long enough for a crash to lose it."""
    server = PgServer(Path(tempfile.mkdtemp(prefix="slogate-pg-")) / "cluster", durable=True).start()
    try:
        run_sql(server.url, "ALTER SYSTEM SET wal_writer_delay = '10s'")
        run_sql(server.url, "ALTER SYSTEM SET wal_writer_flush_after = '16MB'")
        run_sql(server.url, "SELECT pg_catalog.pg_reload_conf()")
        yield server
    finally:
        server.stop()


def project_of(folder, count):
    migrations = folder / "supabase" / "migrations"
    migrations.mkdir(parents=True)
    for i in range(count):
        (migrations / ("%014d_step_%d.sql" % (20260101000000 + i, i))).write_text(
            "CREATE TABLE public.step_%d (id int PRIMARY KEY);\nINSERT INTO public.step_%d VALUES (%d);\n" % (i, i, i))
    return folder


@pytest.mark.parametrize("state", ["latest", "rolled_back"])
def test_a_crash_right_after_the_task_loses_nothing_it_reported(durable_server, ansible_module, tmp_path, state):
    project = project_of(tmp_path / "project", COUNT)
    url = durable_server.url
    if state == "rolled_back":
        rollbacks = project / "supabase" / "rollbacks"
        rollbacks.mkdir()
        for i in range(COUNT):
            (rollbacks / ("%014d_step_%d.sql" % (20260101000000 + i, i))).write_text("DROP TABLE public.step_%d;\n" % i)
        first = ansible_module("supabase_migrate", dict(project_dir=str(project), db_url=url))
        assert not first.failed, first.result["msg"]
        durable_server.crash_and_restart()
    run = ansible_module("supabase_migrate", dict(project_dir=str(project), db_url=url, state=state,
                                                  target="0" if state == "rolled_back" else None))
    assert not run.failed, run.result["msg"]
    done = run.result["reverted" if state == "rolled_back" else "applied"]
    assert len(done) == COUNT
    durable_server.crash_and_restart()
    versions = [row[0] for row in run_sql(url, "SELECT version FROM supabase_migrations.schema_migrations")]
    tables = run_sql(url, "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename LIKE 'step\\_%'")[0][0]
    if state == "latest":
        assert len(versions) == COUNT and tables == COUNT
    else:
        assert versions == [] and tables == 0


def test_without_the_temporary_privilege_every_file_waits_for_its_flush(durable_server, ansible_module, tmp_path):
    run_sql(durable_server.url, "CREATE DATABASE no_temp")
    admin = durable_server.url_for("no_temp")
    run_sql(admin, "CREATE ROLE migrator LOGIN PASSWORD 'migrator-pw'; REVOKE TEMPORARY ON DATABASE no_temp FROM PUBLIC; "
                   "GRANT CREATE ON DATABASE no_temp TO migrator; GRANT CREATE ON SCHEMA public TO migrator")
    url = durable_server.url_for("no_temp", user="migrator", password="migrator-pw")
    run = ansible_module("supabase_migrate", dict(project_dir=str(project_of(tmp_path / "project", COUNT)), db_url=url))
    assert not run.failed, run.result["msg"]
    durable_server.crash_and_restart()
    assert run_sql(admin, "SELECT count(*) FROM supabase_migrations.schema_migrations")[0][0] == COUNT


@pytest.mark.parametrize("failing", [False, True])
def test_a_flush_that_fails_is_raised_unless_the_run_already_fails(pg_db, tmp_path, failing):
    pg_db.execute("CREATE ROLE flush_%s LOGIN PASSWORD 'flush-pw'; REVOKE TEMPORARY ON DATABASE %s FROM PUBLIC; "
                  "GRANT CREATE ON DATABASE %s TO flush_%s; GRANT CREATE ON SCHEMA public TO flush_%s"
                  % ((pg_db.name,) * 5))
    pg_db.created_roles.append("flush_%s" % pg_db.name)
    project = load_project(str(project_of(tmp_path / "project", 1)))
    with connect({"db_url": pg_db.server.url_for(pg_db.name, user="flush_%s" % pg_db.name, password="flush-pw")}) as db:
        engine = Engine(db, defer_flush=True)  # as if the TEMPORARY privilege had been there when the run began
        engine.acquire_lock(10)
        engine.ensure_history()
        for migration in plan_latest(project.local, engine.read_history()).to_apply:
            engine.apply(migration, project.statements[migration.version], project.modes[migration.version])
        if failing:
            engine.end_run(failing=True)
        else:
            with pytest.raises(MigrationFailure, match="the files were committed, but waiting for their WAL flush "
                                                       "failed .*permission denied to create temporary tables"):
                engine.end_run()
        assert db.fetch_one("SELECT count(*) AS held FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
                            "AND pid = pg_catalog.pg_backend_pid()", record=False)["held"] == 0
    assert pg_db.scalar("SELECT count(*) FROM supabase_migrations.schema_migrations") == 1
