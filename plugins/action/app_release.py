# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of slogate.supabase.app_release: pack src once, send it once, run the module on it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.slogate.supabase.plugins.module_utils import app_release
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError, SlogateError

MODULE = "slogate.supabase.app_release"
INTERNAL = ("_archive", "_digest")


class ActionModule(ActionBase):

    # The remote temp folder is made only when there is an archive to send: a
    # switch-only run (rollback) and check mode need none.
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        given = [name for name in INTERNAL if name in args]
        if given:
            return dict(result, failed=True, msg="%s: %s set by the task; these are set by the action plugin, leave "
                                                 "them out" % (MODULE, ", ".join(given)))
        local_archive = None
        try:
            packed = app_release.Packed("", 0)
            # Without root or release the module's own argument check says what is missing; nothing to pack for it.
            if self._precheck(args) and args.get("src"):
                src = self._source_folder(args["src"])
                if not self._task.check_mode:
                    handle, local_archive = tempfile.mkstemp(prefix="slogate-release-", suffix=".tar.gz",
                                                             dir=C.DEFAULT_LOCAL_TMP)
                    os.close(handle)
                packed = app_release.pack(src, self._exclude(args), local_archive)
                args["_digest"] = packed.digest
                if local_archive:
                    args["_archive"] = self._send(local_archive)
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            if "release_path" in result:
                result["path"] = result.pop("release_path")
            if not result.get("failed"):
                result["files"] = packed.files
        except SlogateError as exc:
            result.update(failed=True, msg=str(exc))
        except OSError as exc:
            result.update(failed=True, msg="src %s: %s: %s" % (args.get("src"), exc.filename or "file", exc.strerror or exc))
        finally:
            if local_archive and os.path.exists(local_archive):
                os.unlink(local_archive)
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    @staticmethod
    def _precheck(args):
        """Fail on a bad id or env before reading src, with the module's own messages; False when root or release is missing."""
        release = args.get("release")
        if not args.get("root") or release is None or isinstance(release, (bool, dict, list)):
            return False
        app_release.check_release_id(str(release))
        if isinstance(args.get("env"), dict):
            app_release.render_env(str(release), args["env"])
        return True

    @staticmethod
    def _exclude(args):
        exclude = args.get("exclude")
        if exclude is None:
            return app_release.DEFAULT_EXCLUDE
        if isinstance(exclude, str):
            exclude = [part.strip() for part in exclude.split(",") if part.strip()]
        if not isinstance(exclude, (list, tuple)) or not all(isinstance(p, str) for p in exclude):
            raise ConfigurationError("exclude must be a list of fnmatch patterns, not %r" % (exclude,))
        return tuple(exclude)

    def _source_folder(self, src):
        path = os.path.expanduser(str(src))
        if not os.path.isabs(path):
            try:
                path = self._find_needle("files", path)
            except AnsibleError:
                path = None     # not in the role's files/ nor next to the playbook: said below, in one line
        if not path or not os.path.isdir(path):
            raise ConfigurationError("src %s is not a folder on the controller; give the folder with the app code" % src)
        return path

    def _send(self, local_archive):
        """The archive's path in a new remote temp folder, readable by the become user too."""
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        remote = self._connection._shell.join_path(tmpdir, "release.tar.gz")
        self._transfer_file(local_archive, remote)
        self._fixup_perms2((tmpdir, remote), execute=False)
        return remote
