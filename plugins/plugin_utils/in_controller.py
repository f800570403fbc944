# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a module's code inside the Ansible worker instead of as a module.

With a local connection, no become, no async and no task environment, and the
task's Python being the one that runs Ansible, a module would run on this very
machine, under this very interpreter, with this very environment. Running its
code here then gives the same result without building the AnsiballZ payload,
writing it to a temporary folder and starting a second Python that compiles
ansible.module_utils again: about half a second per task on a 2-core machine.
Any other case runs the module as usual.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import json
import os
import sys

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.parsing.convert_bool import boolean

# AnsibleModule's keyword arguments that ArgumentSpecValidator takes as well.
VALIDATION_RULES = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")

# A task or host variable; false makes every slogate.supabase module that can run in the worker run as a module.
SWITCH = "slogate_supabase_in_controller"


def same_python(path, python=None):
    """True when path names this Python: the same binary in the same folder (a virtualenv's python is a link to
    the base interpreter, so the binary alone does not say which site-packages it sees)."""
    python = python or sys.executable
    try:
        return (os.path.dirname(os.path.abspath(path)) == os.path.dirname(os.path.abspath(python))
                and os.path.samefile(path, python))
    except (OSError, TypeError, ValueError):
        return False


def reason_to_run_as_module(action, task_vars):
    """Why this task must run as a module; None when running its code in the worker gives the same result."""
    value = action._templar.template(task_vars.get(SWITCH, True))
    try:
        wanted = boolean(value, strict=True)
    except TypeError:
        raise AnsibleActionFail("%s must be true or false, got %r: set it to false to run the module as a module, "
                                "or leave it out" % (SWITCH, value))
    if not wanted:
        return "%s is false" % SWITCH
    transport = getattr(action._connection, "transport", None)
    if transport != "local":
        return "the connection is %s, not local" % transport
    if action._play_context.become:
        return "become is set"
    if action._task.async_val:
        return "the task is async"
    environment = {}
    action._compute_environment_string(raw_environment_out=environment)
    if environment:
        return "the task sets environment (%s)" % ", ".join(sorted(environment))
    interpreter = task_python(action, task_vars)
    if not interpreter or not same_python(interpreter):
        return "its Python (%s) is not the one running Ansible (%s)" % (interpreter or "to be discovered", sys.executable)
    return None


def task_python(action, task_vars):
    """The interpreter the module would run under, when it is known without running anything on the target."""
    if action._task.delegate_to:
        # As ActionBase picks the interpreter of a delegated task: from the delegated host's variables.
        task_vars = (task_vars.get("ansible_delegated_vars") or {}).get(action._task.delegate_to) or {}
    configured = C.config.get_config_value("INTERPRETER_PYTHON", variables=task_vars)
    interpreter = str(action._templar.template(configured) or "").strip()
    if interpreter in ("", "auto", "auto_legacy", "auto_silent", "auto_legacy_silent"):
        interpreter = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python") or ""
    return interpreter


class ModuleExit(BaseException):
    """exit_json or fail_json was called; result is what the module would have printed. A BaseException, as the
    module's SystemExit is, so that the module's own except clauses treat both alike."""

    def __init__(self, result):
        super(ModuleExit, self).__init__(result.get("msg", ""))
        self.result = result


class WorkerModule(object):
    """The part of AnsibleModule that slogate.supabase's modules use, for a run inside the worker.

    Arguments are checked by the same ArgumentSpecValidator AnsibleModule uses, and the result goes through the
    same no_log scrubbing and a JSON round trip, so it is what the module would have returned.
    """

    def __init__(self, name, module_kwargs, args, check_mode, diff, secrets_in=None):
        self._name = name
        self.check_mode = bool(check_mode)
        self._diff = bool(diff)
        self._warnings = []
        self.params = plain(args)
        self.no_log_values = set()
        # As SecretMaskingModule: also when the arguments are refused, and in the message of an unexpected error.
        self._secrets_in = secrets_in or (lambda params: ())
        self.no_log_values.update(self._secrets_in(self.params))
        argument_spec = module_kwargs["argument_spec"]
        rules = dict((key, module_kwargs[key]) for key in VALIDATION_RULES if module_kwargs.get(key))
        validation = ArgumentSpecValidator(argument_spec, **rules).validate(self.params)
        self.params.update(validation.validated_parameters)
        # The values AnsibleModule masks (no_log options, their aliases, sub-options and env fallbacks), collected by
        # the validator before it checks anything, so a refused argument list is masked too.
        self.no_log_values.update(validation._no_log_values)
        if validation.error_messages:
            msg = validation.errors.msg
            if isinstance(validation.errors[0], UnsupportedError):
                msg = "Unsupported parameters for (%s) module: %s" % (name, msg)
            self.fail_json(msg=msg)
        if self.check_mode and not module_kwargs.get("supports_check_mode"):
            self.exit_json(skipped=True, msg="remote module (%s) does not support check mode" % name)

    def warn(self, warning):
        self._warnings.append(str(warning))

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        try:
            return get_bin_path(arg, opt_dirs=opt_dirs)
        except ValueError as exc:
            if required:
                self.fail_json(msg=str(exc))
        return None

    def exit_json(self, **result):
        raise ModuleExit(self._formatted(result))

    def fail_json(self, msg, **result):
        result.pop("exception", None)  # a traceback only where AnsibleModule would show one: never by default
        result.update(failed=True, msg=str(msg))
        raise ModuleExit(self._formatted(result))

    def _formatted(self, result):
        self.no_log_values.update(self._secrets_in(self.params))
        result.setdefault("invocation", {"module_args": self.params})
        if self._warnings:
            result["warnings"] = list(self._warnings)
        preserved = dict((key, value) for key, value in result.items() if value is None or isinstance(value, bool))
        result = remove_values(result, self.no_log_values)
        result.update(preserved)
        # A module's result reaches the controller as JSON: the same types here.
        return json.loads(json.dumps(result))


def plain(args):
    """The arguments as a module receives them: through JSON, so templated values arrive as plain str, list, dict."""
    try:
        return json.loads(json.dumps(dict(args)))
    except (TypeError, ValueError):
        return dict(args)


def run_in_worker(name, module_kwargs, run_task, args, check_mode, diff, secrets_in=None):
    """Run run_task(module) here; return its result. An unexpected error fails the task in one line."""
    module = None
    try:
        module = WorkerModule(name, module_kwargs, args, check_mode, diff, secrets_in)
        run_task(module)
    except ModuleExit as done:
        return done.result
    except Exception as exc:  # pylint: disable=broad-exception-caught
        if module is None:  # its arguments were not even read: nothing says which of them are secrets
            return dict(failed=True, msg="%s stopped on an unexpected %s reading its arguments" % (name, type(exc).__name__))
        msg = "%s stopped on an unexpected %s: %s" % (name, type(exc).__name__, exc)
        return dict(failed=True, msg=remove_values(msg, module.no_log_values))
    return dict(failed=True, msg="%s ended without a result" % name)


class WorkerAction(ActionBase):
    """The action plugin of a module that can run in the worker. TASK_CODE names the Python module that holds its
    module_kwargs() (AnsibleModule's keyword arguments), run_task(module) and, if it has secrets to find in its raw
    arguments, secrets_in(params); NEEDS_PSYCOPG2 says whether that code needs the driver here."""

    MODULE = None
    TASK_CODE = None
    NEEDS_PSYCOPG2 = True
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(WorkerAction, self).run(tmp, task_vars)
        del tmp
        code, reason = None, reason_to_run_as_module(self, task_vars)
        if reason is None:
            code, reason = self._worker_code()
        if code is not None:
            Display().vvv("%s runs in the Ansible worker (local connection, same Python), code from %s"
                          % (self.MODULE, code.__file__), host=self._play_context.remote_addr)
            result.update(run_in_worker(self.MODULE, code.module_kwargs(), code.run_task, self._task.args,
                                        self._task.check_mode, self._task.diff, getattr(code, "secrets_in", None)))
            return result
        Display().vvv("%s runs as a module: %s" % (self.MODULE, reason), host=self._play_context.remote_addr)
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _worker_code(self):
        """(the task's code, None) when it can run here, else (None, why not)."""
        try:
            code = importlib.import_module(self.TASK_CODE)
            if self.NEEDS_PSYCOPG2:
                from ansible_collections.slogate.supabase.plugins.module_utils.postgres import HAS_PSYCOPG2
                if not HAS_PSYCOPG2:
                    return None, "psycopg2 is missing from the Python running Ansible"
        except ImportError as exc:
            return None, "its code cannot be imported here (%s)" % exc
        return code, None
