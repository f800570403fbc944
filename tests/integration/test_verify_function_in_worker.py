"""pg_verify_function run in the Ansible worker returns what the module returns."""

import pytest

from pgserver import run_sql
from worker_parity import drop_pair, filled_pair, run_both

pytestmark = pytest.mark.integration

FUNCTIONS = """
CREATE TABLE public.audit (n int);
CREATE FUNCTION public.all_good() RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION public.two_checks() RETURNS jsonb LANGUAGE sql AS $$
  SELECT '{"ok": false, "checks": [{"name": "rls_enabled", "ok": true}, {"name": "indexes", "ok": false, "detail": "2 missing"}]}'::jsonb $$;
CREATE FUNCTION public.raises() RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'queue not drained'; END $$;
CREATE FUNCTION public.writes(n int) RETURNS int LANGUAGE sql AS $$ INSERT INTO public.audit VALUES (n) RETURNING n $$;
CREATE FUNCTION public.problems() RETURNS TABLE (name text, ok boolean) LANGUAGE sql AS $$ VALUES ('a', true), ('b', false) $$;
"""


@pytest.fixture
def databases(pg_server):
    pair = filled_pair(pg_server, lambda url: run_sql(url, FUNCTIONS))
    yield pair
    drop_pair(pg_server, pair)


def both(ansible_module, databases, args, **options):
    return run_both(ansible_module, "pg_verify_function", lambda path: dict(args, db_url=databases[path][1]),
                    lambda path: {databases[path][0]: "<database>"}, **options)[True]


@pytest.mark.parametrize("args, failed", [
    (dict(function="all_good"), False),
    (dict(function="public.two_checks"), True),
    (dict(function="two_checks", expect={"checks": [{"name": "rls_enabled", "ok": True}]}), False),
    (dict(function="raises"), True),
    (dict(function="writes", args=[7]), False),
    (dict(function="writes", args={"n": 8}, read_only=True), True),
    (dict(function="problems"), True),
    (dict(function="problems", expect_rows=2), True),
    (dict(function="no_such_function"), True),
    (dict(function="no_such_function", when_missing="skip"), False),
    (dict(function="all_good", when_missing="sometimes"), True),
    (dict(function="all_good", unknown=1), True),
    (dict(function="writes", args="not a list"), True),
], ids=["passes", "failed checks", "expect subset", "raises", "writes", "read only", "check rows", "expect_rows",
        "missing", "missing skipped", "bad choice", "unknown option", "bad args"])
def test_same_result_both_ways(ansible_module, databases, args, failed):
    assert both(ansible_module, databases, args).failed is failed


def test_writes_commit_both_ways_and_check_mode_rolls_back(ansible_module, databases):
    both(ansible_module, databases, dict(function="writes", args=[1]))
    both(ansible_module, databases, dict(function="writes", args=[2]), check=True)
    for _name, url in databases.values():
        assert run_sql(url, "SELECT n FROM public.audit") == [(1,)]


def test_a_wrong_password_is_masked_both_ways(ansible_module, pg_server, databases):
    wrong = {path: (name, url.replace(":%s@" % pg_server.password, ":NopeNope42@")) for path, (name, url) in databases.items()}
    run = both(ansible_module, wrong, dict(function="all_good"))
    assert run.failed and "authentication failed" in run.result["msg"] and "NopeNope42" not in run.output
