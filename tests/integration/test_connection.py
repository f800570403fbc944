"""The connection helper against a real server: every failure is one line that
names the target and never shows the password, at -vvv too."""

import socket

import pytest

pytestmark = pytest.mark.integration

PROBE = dict(function="version", schema="pg_catalog")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_clean_line(run, *secrets):
    assert run.failed, run.result
    msg = run.result["msg"]
    assert "\n" not in msg and "Traceback" not in run.output
    for secret in secrets:
        assert secret not in run.output, "secret leaked in output"
        assert secret not in str(run.result)
    return msg


@pytest.mark.parametrize("verbosity", [0, 3])
def test_wrong_password(pg_db, ansible_module, verbosity):
    wrong = "Wr0ngPassw0rd-%d" % verbosity
    run = ansible_module("pg_verify_function", dict(PROBE, db_url=pg_db.server.url_for(pg_db.name, password=wrong)),
                         verbosity=verbosity)
    msg = assert_one_clean_line(run, wrong, pg_db.server.password)
    assert msg == "authentication failed for user postgres on postgres@%s:%d/%s: check the password in db_url" % (
        pg_db.server.host, pg_db.server.port, pg_db.name)


def test_unknown_database(pg_server, ansible_module):
    run = ansible_module("pg_verify_function", dict(PROBE, db_url=pg_server.url_for("no_such_db")), verbosity=3)
    msg = assert_one_clean_line(run, pg_server.password)
    assert msg.startswith("database no_such_db does not exist on postgres@")


def test_closed_port(ansible_module):
    port = closed_port()
    secret = "ClosedPortSecret1"
    run = ansible_module("pg_verify_function", dict(PROBE, db_url="postgresql://postgres:%s@127.0.0.1:%d/app" % (secret, port)),
                         verbosity=3)
    msg = assert_one_clean_line(run, secret)
    assert msg == ("cannot reach PostgreSQL at postgres@127.0.0.1:%d/app: connection refused; check the host and port "
                   "in db_url and that the server is running" % port)


@pytest.mark.parametrize("url", [
    "postgresql://postgres:MalformedSecret9@127.0.0.1:notaport/app",
    "postgresql://postgres:MalformedSecret9/app",
    "not a url MalformedSecret9",
], ids=["bad port", "no host separator", "garbage"])
def test_malformed_url(ansible_module, url):
    run = ansible_module("pg_verify_function", dict(PROBE, db_url=url), verbosity=3)
    msg = assert_one_clean_line(run, "MalformedSecret9")
    assert msg.startswith("db_url is not a valid PostgreSQL connection URL")


def test_malformed_url_from_environment_names_the_variable(ansible_module):
    run = ansible_module("pg_verify_function", PROBE, env={"DATABASE_URL": "postgresql://u:EnvSecret77@h:port/x"})
    msg = assert_one_clean_line(run, "EnvSecret77")
    assert msg.startswith("DATABASE_URL is not a valid PostgreSQL connection URL")


def test_no_url_anywhere(ansible_module):
    run = ansible_module("pg_verify_function", PROBE)
    assert run.failed
    assert run.result["msg"].startswith("no database URL: set the db_url option or the SUPABASE_DB_URL")


@pytest.mark.parametrize("variable", ["SUPABASE_DB_URL", "DATABASE_URL"])
def test_url_from_environment(pg_db, ansible_module, variable):
    run = ansible_module("pg_verify_function", PROBE, env={variable: pg_db.url}, verbosity=3)
    assert not run.failed, run.result["msg"]
    assert run.result["result"].startswith("PostgreSQL")
    assert pg_db.server.password not in run.output


def test_supabase_variable_wins_over_database_url(pg_db, ansible_module):
    run = ansible_module("pg_verify_function", PROBE,
                         env={"SUPABASE_DB_URL": pg_db.url, "DATABASE_URL": pg_db.server.url_for("no_such_db")})
    assert not run.failed, run.result["msg"]


def test_session_settings_applied(pg_db, ansible_module):
    run = ansible_module("pg_verify_function", dict(function="current_setting", schema="pg_catalog", args=["lock_timeout"],
                                                    expect="3s", lock_timeout="3s", db_url=pg_db.url))
    assert not run.failed, run.result["msg"]


def test_bad_timeout_is_named(pg_db, ansible_module):
    run = ansible_module("pg_verify_function", dict(PROBE, statement_timeout="ten seconds", db_url=pg_db.url))
    assert run.failed
    assert run.result["msg"].startswith("statement_timeout='ten seconds' is not a duration")


def test_statement_timeout_cancels_a_slow_call(pg_db, ansible_module):
    run = ansible_module("pg_verify_function", dict(function="pg_sleep", schema="pg_catalog", args=[5],
                                                    statement_timeout="200ms", db_url=pg_db.url))
    assert run.failed
    assert "canceling statement due to statement timeout" in run.result["msg"]


def test_missing_driver_is_one_line_saying_what_to_install(tmp_path, ansible_module):
    import subprocess
    import sys
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    run = ansible_module("pg_verify_function", dict(PROBE, db_url="postgresql://u:DriverSecret1@127.0.0.1:1/x"),
                         interpreter=str(bare / "bin" / "python"), verbosity=3)
    msg = assert_one_clean_line(run, "DriverSecret1")
    assert "psycopg2" in msg and msg.endswith("pip install psycopg2-binary")
