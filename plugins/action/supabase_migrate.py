# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of slogate.supabase.supabase_migrate: run it in the worker when that is the same as running it
as a module (see plugin_utils/in_controller.py), otherwise as a module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.slogate.supabase.plugins.plugin_utils.in_controller import reason_to_run_as_module, run_in_worker

MODULE = "slogate.supabase.supabase_migrate"

display = Display()


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        code, reason = None, reason_to_run_as_module(self, task_vars)
        if reason is None:
            code, reason = worker_code()
        if code is not None:
            display.vvv("%s runs in the Ansible worker (local connection, same Python), code from %s"
                        % (MODULE, code.__file__), host=self._play_context.remote_addr)
            result.update(run_in_worker(MODULE, code.argument_spec(), code.run_task, self._task.args,
                                        self._task.check_mode, self._task.diff))
            return result
        display.vvv("%s runs as a module: %s" % (MODULE, reason), host=self._play_context.remote_addr)
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result


def worker_code():
    """(migrate_task, None) when the module's code can run here, else (None, why not)."""
    try:
        from ansible_collections.slogate.supabase.plugins.module_utils import migrate_task
        from ansible_collections.slogate.supabase.plugins.module_utils.postgres import HAS_PSYCOPG2
    except ImportError as exc:
        return None, "its code cannot be imported here (%s)" % exc
    if not HAS_PSYCOPG2:
        return None, "psycopg2 is missing from the Python running Ansible"
    return migrate_task, None
