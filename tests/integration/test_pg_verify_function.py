"""pg_verify_function against real functions of every result shape."""

import pytest

pytestmark = pytest.mark.integration

FUNCTIONS = r"""
CREATE SCHEMA kit;
CREATE TABLE public.probe_log (id serial PRIMARY KEY, note text);
CREATE FUNCTION public.verify_true() RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION public.verify_false() RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
CREATE FUNCTION public.verify_jsonb_ok() RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('ok', true, 'checks', jsonb_build_array(
    jsonb_build_object('name', 'tables_exist', 'ok', true, 'detail', '5 of 5'))) $$;
CREATE FUNCTION public.verify_jsonb_fail() RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('ok', false, 'checks', jsonb_build_array(
    jsonb_build_object('name', 'tables_exist', 'ok', true, 'detail', '5 of 5'),
    jsonb_build_object('name', 'rls_enabled', 'ok', false, 'detail', 'public.audit_log has RLS disabled'))) $$;
CREATE FUNCTION public.list_problems(n int) RETURNS TABLE(object text, problem text) LANGUAGE sql AS $$
  SELECT 'table_' || i, 'no policy' FROM generate_series(1, n) i $$;
CREATE FUNCTION public.check_rows() RETURNS TABLE(name text, ok boolean, detail text) LANGUAGE sql AS $$
  VALUES ('a', true, 'fine'), ('b', false, 'index invalid') $$;
CREATE FUNCTION public.assert_ready() RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE FUNCTION public.assert_broken() RETURNS void LANGUAGE plpgsql AS $$
  BEGIN RAISE EXCEPTION 'materialized view % has no unique index', 'mv_search' USING ERRCODE = 'P0001'; END $$;
CREATE FUNCTION public.count_pending() RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
CREATE FUNCTION public.drain_queue(batch int, max_seconds int DEFAULT 60) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('ok', true, 'batch', batch, 'max_seconds', max_seconds) $$;
CREATE FUNCTION public.write_probe(note text) RETURNS boolean LANGUAGE sql AS $$
  INSERT INTO public.probe_log(note) VALUES (note) RETURNING true $$;
CREATE FUNCTION kit.verify_in_schema() RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE PROCEDURE public.do_things() LANGUAGE sql AS $$ SELECT 1 $$;
"""


@pytest.fixture
def kit_db(pg_db):
    pg_db.execute(FUNCTIONS)
    return pg_db


def verify(ansible_module, db, function, _check=False, **options):
    return ansible_module("pg_verify_function", dict(options, function=function, db_url=db.url), check=_check)


def test_boolean_true_passes(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "verify_true")
    assert not run.failed and run.result["ok"] is True and run.result["changed"] is False
    assert run.result["shape"] == "boolean"
    assert run.result["query"] == 'SELECT "public"."verify_true"() AS result'
    assert run.result["query"] in run.result["queries"]


def test_boolean_false_fails(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "verify_false")
    assert run.failed
    assert run.result["msg"] == "public.verify_false() failed: returned false, expected true"


def test_jsonb_passing_checks(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "verify_jsonb_ok")
    assert not run.failed
    assert run.result["checks"] == [{"name": "tables_exist", "ok": True, "detail": "5 of 5"}]
    assert run.result["msg"] == "public.verify_jsonb_ok() passed: 1 checks ok"


def test_jsonb_failing_check_is_named(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "public.verify_jsonb_fail()")
    assert run.failed
    assert run.result["failed_checks"] == [{"name": "rls_enabled", "ok": False, "detail": "public.audit_log has RLS disabled"}]
    assert run.result["msg"] == ("public.verify_jsonb_fail() failed: 1 of 2 checks failed - "
                                 "failed checks: rls_enabled (public.audit_log has RLS disabled)")
    assert run.result["result"]["ok"] is False


def test_jsonb_subset_expectation(kit_db, ansible_module):
    holds = verify(ansible_module, kit_db, "verify_jsonb_fail", expect={"checks": [{"name": "tables_exist", "ok": True}]})
    assert not holds.failed, holds.result["msg"]
    broken = verify(ansible_module, kit_db, "verify_jsonb_fail", expect={"checks": [{"name": "rls_enabled", "ok": True}]})
    assert broken.failed
    assert "result does not contain expect ($.checks: no element contains" in broken.result["msg"]


def test_set_returning_row_count(kit_db, ansible_module):
    none = verify(ansible_module, kit_db, "list_problems", args=[0], expect_rows=0)
    assert not none.failed and none.result["row_count"] == 0
    some = verify(ansible_module, kit_db, "list_problems", args=[2], expect_rows=0)
    assert some.failed
    assert some.result["msg"] == "public.list_problems(integer) failed: returned 2 rows, expected 0"
    assert some.result["result"] == [{"object": "table_1", "problem": "no policy"}, {"object": "table_2", "problem": "no policy"}]


def test_rows_with_ok_column_are_checks(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "check_rows")
    assert run.failed
    assert run.result["failed_checks"] == [{"name": "b", "ok": False, "detail": "index invalid"}]


def test_void_passes_unless_it_raises(kit_db, ansible_module):
    assert not verify(ansible_module, kit_db, "assert_ready").failed
    run = verify(ansible_module, kit_db, "assert_broken")
    assert run.failed
    assert run.result["msg"] == "public.assert_broken() raised: materialized view mv_search has no unique index; SQLSTATE P0001"
    assert run.result["error"] == {"sqlstate": "P0001", "message": "materialized view mv_search has no unique index; SQLSTATE P0001"}


def test_scalar_expectation(kit_db, ansible_module):
    assert not verify(ansible_module, kit_db, "count_pending", expect=0).failed
    run = verify(ansible_module, kit_db, "count_pending", expect=3)
    assert run.failed and run.result["msg"].endswith("returned 0, expected 3")


def test_named_arguments_and_defaults(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "drain_queue", args={"batch": 100})
    assert not run.failed, run.result["msg"]
    assert run.result["result"] == {"ok": True, "batch": 100, "max_seconds": 60}
    assert run.result["query"] == 'SELECT "public"."drain_queue"("batch" => 100) AS result'


def test_schema_option(kit_db, ansible_module):
    assert not verify(ansible_module, kit_db, "verify_in_schema", schema="kit").failed
    assert not verify(ansible_module, kit_db, "kit.verify_in_schema").failed


def test_missing_function_lists_similar_names(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "verify_jsonb_okk")
    assert run.failed
    assert run.result["msg"].startswith("function public.verify_jsonb_okk does not exist; similarly named: public.verify_jsonb_ok")
    nothing = verify(ansible_module, kit_db, "zzzzqqq")
    assert nothing.result["msg"] == "function public.zzzzqqq does not exist; no function has a similar name"


def test_missing_function_can_be_skipped(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "verify_not_created_yet", when_missing="skip")
    assert not run.failed and run.result["missing"] is True and run.result["ok"] is None
    assert run.result["msg"] == "public.verify_not_created_yet does not exist (yet): skipped"
    present = verify(ansible_module, kit_db, "verify_jsonb_ok", when_missing="skip")
    assert present.result["missing"] is False and present.result["ok"] is True


def test_wrong_argument_count_lists_signatures(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "list_problems", args=[1, 2, 3])
    assert run.failed
    assert run.result["msg"] == "function public.list_problems takes other arguments than the 3 given: public.list_problems(integer)"


def test_procedure_is_refused(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "do_things")
    assert run.result["msg"] == "public.do_things is a procedure, not a function; pg_verify_function calls functions"


def test_writing_function_commits_and_reports_changed(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "write_probe", args=["real"])
    assert not run.failed and run.result["changed"] is True and run.result["committed"] is True
    assert kit_db.scalar("SELECT count(*) FROM public.probe_log WHERE note = 'real'") == 1


def test_check_mode_reports_would_change_and_leaves_no_trace(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "write_probe", args=["check"], _check=True)
    assert not run.failed, run.result["msg"]
    assert run.result["changed"] is True and run.result["committed"] is False
    assert kit_db.scalar("SELECT count(*) FROM public.probe_log") == 0


def test_check_mode_of_a_reader_is_unchanged(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "verify_jsonb_ok", _check=True)
    assert not run.failed and run.result["changed"] is False


def test_read_only_leaves_no_trace(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "write_probe", args=["ro"], read_only=True)
    assert run.failed
    assert run.result["msg"].startswith("public.write_probe(text) raised: it tried to write, which read_only forbids")
    assert run.result["queries"][-2:] == ["SET TRANSACTION READ ONLY", run.result["query"]]
    assert kit_db.scalar("SELECT count(*) FROM public.probe_log") == 0
    reader = verify(ansible_module, kit_db, "verify_true", read_only=True)
    assert not reader.failed and reader.result["committed"] is False


def test_bad_args_type_is_named(kit_db, ansible_module):
    run = verify(ansible_module, kit_db, "verify_true", args=5)
    assert run.failed and run.result["msg"] == "args must be a list (by position) or a mapping (by name), not int"
