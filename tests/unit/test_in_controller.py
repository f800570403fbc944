"""The worker stand-in for AnsibleModule: same checks, same masking, same result types as the module."""

import os
import sys

import pytest

from ansible_collections.slogate.supabase.plugins.plugin_utils.in_controller import (
    ModuleExit,
    WorkerModule,
    run_in_worker,
    same_python,
)

SPEC = dict(
    db_url=dict(type="str", no_log=True, aliases=["login_url"]),
    project_dir=dict(type="path", required=True),
    state=dict(type="str", choices=["latest", "status"], default="latest"),
    lock_wait=dict(type="int", default=300),
    since=dict(type="str"),
    lookback_minutes=dict(type="int"),
)
KWARGS = dict(argument_spec=SPEC, mutually_exclusive=[("since", "lookback_minutes")], supports_check_mode=True)
NAME = "slogate.supabase.example"
URL = "postgresql://app:S3cretPassw0rd@db:5432/app"


def module(args, check_mode=False, diff=False):
    return WorkerModule(NAME, KWARGS, args, check_mode, diff)


def outcome(args, task):
    return run_in_worker(NAME, KWARGS, task, args, False, False)


def test_the_interpreter_running_ansible_is_the_same_python():
    assert same_python(sys.executable)


def test_a_link_to_it_in_the_same_folder_is_the_same_python(tmp_path):
    folder = tmp_path / "venv" / "bin"
    folder.mkdir(parents=True)
    (folder / "python").symlink_to(sys.executable)
    (folder / "python3").symlink_to(sys.executable)
    assert same_python(str(folder / "python3"), python=str(folder / "python"))


def test_the_same_binary_in_another_folder_is_not(tmp_path):
    (tmp_path / "python3").symlink_to(sys.executable)
    assert not same_python(str(tmp_path / "python3"))


@pytest.mark.parametrize("path", ["/no/such/python3", "", None])
def test_a_missing_interpreter_is_not(path):
    assert not same_python(path)


def test_no_log_values_take_aliases_and_skip_empty_ones():
    assert module(dict(project_dir="/srv", login_url=URL)).no_log_values == {URL}
    assert module(dict(db_url="", project_dir="/srv")).no_log_values == set()


def test_a_no_log_mapping_gives_every_value_in_it():
    spec = dict(headers=dict(type="dict", no_log=True), tokens=dict(type="list", no_log=True))
    params = dict(headers={"Authorization": "Bearer abc123", "X-Count": 7, "Off": None},
                  tokens=["tok-1", ["tok-2"], True])
    checked = WorkerModule(NAME, dict(argument_spec=spec), params, False, False)
    assert {"Bearer abc123", "7", "tok-1", "tok-2"} <= checked.no_log_values


def test_a_refused_argument_list_is_masked_too():
    with pytest.raises(ModuleExit) as stopped:
        module(dict(project_dir="/srv", db_url=URL, nope=1))
    assert stopped.value.result["failed"] is True and URL not in repr(stopped.value.result)


def test_arguments_that_cannot_be_read_fail_in_one_line():
    def secrets_in(params):
        raise KeyError(URL)

    result = run_in_worker(NAME, KWARGS, lambda m: None, dict(project_dir="/srv", db_url=URL), False, False, secrets_in)
    assert result == dict(failed=True, msg="%s stopped on an unexpected KeyError reading its arguments" % NAME)


def test_a_no_log_mapping_never_reaches_the_result():
    spec = dict(headers=dict(type="dict", no_log=True))

    def task(m):
        m.exit_json(sent="sent Bearer abc123456")

    result = run_in_worker(NAME, dict(argument_spec=spec), task, dict(headers={"Authorization": "Bearer abc123456"}),
                           False, False)
    assert "abc123456" not in repr(result)


def test_defaults_and_types_are_applied_as_the_module_would():
    checked = module(dict(project_dir="~/app", lock_wait="12"))
    assert checked.params["state"] == "latest" and checked.params["lock_wait"] == 12
    assert checked.params["project_dir"] == os.path.expanduser("~/app")


@pytest.mark.parametrize("args, msg", [
    (dict(project_dir="/srv", nope=1), "Unsupported parameters for (%s) module: nope. Supported parameters include:" % NAME),
    (dict(project_dir="/srv", state="sideways"), "value of state must be one of: latest, status, got: sideways"),
    (dict(), "missing required arguments: project_dir"),
    (dict(project_dir="/srv", since="2026-11-27T10:00:00Z", lookback_minutes=5),
     "parameters are mutually exclusive: since|lookback_minutes"),
])
def test_bad_arguments_fail_with_the_module_message(args, msg):
    with pytest.raises(ModuleExit) as stopped:
        module(args)
    assert stopped.value.result["failed"] is True and stopped.value.result["msg"].startswith(msg)


def test_a_result_is_masked_and_keeps_its_booleans():
    def task(m):
        m.warn("connecting with %s" % URL)
        m.exit_json(changed=False, url=URL, applied=(1, 2), nothing=None)

    result = outcome(dict(project_dir="/srv", db_url=URL), task)
    assert result["changed"] is False and result["nothing"] is None
    assert result["applied"] == [1, 2]  # JSON types, as a module's result arrives
    assert URL not in repr(result)
    assert result["invocation"]["module_args"]["db_url"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert result["warnings"] == ["connecting with ********"]


def test_a_secret_added_while_running_is_masked_too():
    def task(m):
        m.no_log_values.add("S3cretPassw0rd")
        m.fail_json(msg="password S3cretPassw0rd refused", exception="Traceback ...")

    result = outcome(dict(project_dir="/srv"), task)
    assert result["failed"] is True and "S3cretPassw0rd" not in repr(result)
    assert "exception" not in result


def test_an_unexpected_error_is_one_line_without_secrets():
    def task(m):
        raise KeyError(URL)

    result = outcome(dict(project_dir="/srv", db_url=URL), task)
    assert result == dict(failed=True, msg="%s stopped on an unexpected KeyError: '********'" % NAME)


def test_a_task_that_returns_without_exiting_fails():
    assert outcome(dict(project_dir="/srv"), lambda m: None) == dict(failed=True, msg="%s ended without a result" % NAME)


def test_check_and_diff_reach_the_task():
    checked = module(dict(project_dir="/srv"), check_mode=True, diff=True)
    assert checked.check_mode is True and checked._diff is True


def test_get_bin_path_finds_or_fails():
    found = module(dict(project_dir="/srv"))
    assert found.get_bin_path("sh") is not None
    assert found.get_bin_path("no-such-binary-here") is None
    with pytest.raises(ModuleExit) as stopped:
        found.get_bin_path("no-such-binary-here", required=True)
    assert "no-such-binary-here" in stopped.value.result["msg"]


def test_arguments_arrive_as_plain_json_types():
    class TaggedStr(str):
        pass

    checked = module(dict(project_dir=TaggedStr("/srv"), db_url=TaggedStr(URL)))
    assert not isinstance(checked.params["db_url"], TaggedStr) and checked.params["db_url"] == URL


def test_check_mode_without_support_skips_as_the_module_does():
    with pytest.raises(ModuleExit) as stopped:
        WorkerModule(NAME, dict(argument_spec=SPEC), dict(project_dir="/srv"), True, False)
    assert stopped.value.result["skipped"] is True
    assert stopped.value.result["msg"] == "remote module (%s) does not support check mode" % NAME
