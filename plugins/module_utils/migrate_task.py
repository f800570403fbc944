# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the supabase_migrate task does, given a module object: the module runs it
in its own process, the action plugin in the worker when that is the same thing
(see plugin_utils/in_controller.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.slogate.supabase.plugins.module_utils.conninfo import resolve_db_url, validate_duration
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError, SlogateError, mask_secrets
from ansible_collections.slogate.supabase.plugins.module_utils.migrate import Engine, MigrationFailure, load_project, read_text
from ansible_collections.slogate.supabase.plugins.module_utils.migration_plan import plan_latest, plan_rollback
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import jsonable, module_connect, pg_argument_spec

SERVER = ("SELECT pg_catalog.current_setting('server_version') AS version, pg_catalog.clock_timestamp() AS now, "
          "pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMPORARY') AS may_create_temporary")


def brief(row):
    return dict(version=row.version, name=row.name)


class Run(object):
    """Collects what a run did, for the result (also when it fails half-way)."""

    def __init__(self, module, project):
        self.module = module
        self.project = project
        self.verify = module.params["verify"] or {}
        self.result = dict(changed=False, applied=[], pending=[], reverted=[], forgotten=[], drift=[], missing_local=[],
                           irreversible=[], history_before=[], executed_statements=0, history_created=False,
                           engine=module.params["engine"], verifications=[], server_version=None, server_time=None,
                           skipped_files=[dict(file=f, reason=r) for f, r in project.skipped])

    def describe(self, plan, history, applied_versions=()):
        self.result.update(
            history_before=[brief(row) for row in history],
            drift=[dict(version=v, name=n, detail=d) for v, n, d in plan.drift],
            missing_local=[brief(row) for row in plan.missing_local],
            irreversible=[brief(row) for row in plan.irreversible],
            pending=[dict(version=m.version, name=m.name, file=m.filename, verify=self.verifier_of(m),
                          down_script=os.path.exists(self.project.rollback_path(m.version, m.name)))
                     for m in plan.to_apply if m.version not in applied_versions],
        )

    def verifier_of(self, migration):
        return self.verify.get(migration.version) or self.verify.get(migration.name)

    def verify_applied(self, db, migration):
        """Call the migration's verifier, if it has one; fail the task when it does not pass."""
        function = self.verifier_of(migration)
        if not function:
            return
        # Imported here: most runs name no verifier, and importing it is a fifth of the module's own start-up.
        from ansible_collections.slogate.supabase.plugins.module_utils.verify_call import verify_read_only
        try:
            outcome = verify_read_only(db, function)
        except SlogateError as exc:
            raise MigrationFailure("%s_%s was applied, then its verifier could not be called: %s; the later migrations "
                                   "were not run" % (migration.version, migration.name, exc))
        self.result["verifications"].append(dict(outcome, version=migration.version, name=migration.name))
        if not outcome["ok"]:
            raise MigrationFailure("%s_%s was applied, then %s; the later migrations were not run" % (
                migration.version, migration.name, outcome["msg"]))

    def fail(self, msg):
        self.module.fail_json(msg=msg, **self.result)


def cli_push(module, project_dir, include_all):
    """Run the real `supabase db push`; the password goes through PGPASSWORD, never argv."""
    url = resolve_db_url(module.params.get("db_url"), os.environ)[0]
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigurationError("engine=cli needs db_url as a postgresql:// URL")
    env = dict(os.environ, SUPABASE_TELEMETRY_DISABLED="1", DO_NOT_TRACK="1")
    netloc = parts.netloc
    if parts.password is not None:
        env["PGPASSWORD"] = parts.password
        userinfo, hostport = netloc.rsplit("@", 1)
        netloc = "%s@%s" % (userinfo.split(":", 1)[0], hostport)
    command = [module.params.get("cli_path") or module.get_bin_path("supabase", required=True),
               "db", "push", "--db-url", urlunsplit(parts._replace(netloc=netloc)), "--yes", "--workdir", project_dir]
    if include_all:
        command.append("--include-all")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise MigrationFailure("supabase db push failed (exit %d): %s" % (
            proc.returncode, mask_secrets(tail, [parts.password or "", url])))


def module_kwargs():
    """supabase_migrate's AnsibleModule arguments, for the module and for its run in the Ansible worker."""
    return dict(supports_check_mode=True, argument_spec=pg_argument_spec(
        project_dir=dict(type="path", required=True),
        state=dict(type="str", choices=["latest", "status", "rolled_back"], default="latest"),
        target=dict(type="str"),
        engine=dict(type="str", choices=["native", "cli"], default="native"),
        cli_path=dict(type="path"),
        include_all=dict(type="bool", default=False),
        allow_missing_local=dict(type="bool", default=False),
        allow_irreversible=dict(type="bool", default=False),
        lock_wait=dict(type="int", default=300),
        verify=dict(type="dict", default={}),
    ))


def run_task(module):
    """The whole task on an AnsibleModule or the worker's stand-in; ends with exit_json or fail_json."""
    params = module.params
    state = params["state"]
    try:
        project = load_project(params["project_dir"])
    except SlogateError as exc:
        module.fail_json(msg=str(exc))
    run = Run(module, project)
    for name, reason in project.skipped:
        module.warn("skipped %s: %s" % (name, reason))
    known = {m.version for m in project.local} | {m.name for m in project.local}
    for key in sorted(set(run.verify) - known):
        module.warn("verify names %s, which is no migration of %s: nothing verifies it" % (key, params["project_dir"]))
    try:
        settings = [("lock_timeout", validate_duration("lock_timeout", params["lock_timeout"])),
                    ("statement_timeout", validate_duration("statement_timeout", params["statement_timeout"]))]
        with module_connect(module) as db:
            server = db.fetch_one(SERVER)
            run.result.update(server_version=server["version"], server_time=jsonable(server["now"]))
            engine = Engine(db, settings, defer_flush=server["may_create_temporary"])
            writing = state != "status" and not module.check_mode
            if writing:
                engine.acquire_lock(params["lock_wait"])
            failing = True  # also when execute() ends the module with fail_json
            try:
                execute(module, run, engine, project, writing)
                failing = False
            finally:
                run.result["executed_statements"] = engine.executed_statements
                if writing and not db.connection.closed:
                    engine.end_run(failing)
    except SlogateError as exc:
        run.fail(str(exc))
    for item in run.result["drift"]:
        module.warn("migration %(version)s_%(name)s changed after it was applied: %(detail)s" % item)
    module.exit_json(**run.result)


def plan_for(params, project, history):
    if params["state"] == "rolled_back":
        reversible = {row.version for row in history if os.path.exists(project.rollback_path(row.version, row.name))}
        return plan_rollback(project.local, history, params["target"], reversible, params["allow_irreversible"])
    return plan_latest(project.local, history, params["target"], params["include_all"], params["allow_missing_local"])


def execute(module, run, engine, project, writing):
    params = module.params
    history = engine.read_history()
    plan = plan_for(params, project, history)
    run.describe(plan, history)
    if module._diff:
        run.result["diff"] = diff_of(project, plan)
    if params["state"] == "status":
        return
    if plan.blockers:
        run.fail("; ".join(plan.blockers))
    if not writing:
        run.result["changed"] = bool(plan.to_apply or plan.to_revert)
        return
    if params["state"] == "rolled_back":
        revert(run, engine, project, plan)
    elif params["engine"] == "cli" and plan.to_apply:
        cli_push(module, params["project_dir"], params["include_all"])
        after = {row.version for row in engine.read_history()}
        run.result["applied"] = [dict(version=m.version, name=m.name, file=m.filename, statements=len(m.statements))
                                 for m in plan.to_apply if m.version in after]
        run.describe(plan, history, after)
        run.result["changed"] = bool(run.result["applied"])
        for migration in plan.to_apply:
            if migration.version in after:
                run.verify_applied(engine.db, migration)
    else:
        apply(run, engine, project, plan)


def apply(run, engine, project, plan):
    if plan.to_apply:
        run.result["history_created"] = engine.ensure_history()
    applied = set()
    try:
        for migration in plan.to_apply:
            try:
                duration = engine.apply(migration, project.statements[migration.version], project.modes[migration.version])
            except MigrationFailure:
                run.result["changed"] = bool(run.result["applied"] or run.result["history_created"])
                raise
            applied.add(migration.version)
            run.result["applied"].append(dict(version=migration.version, name=migration.name, file=migration.filename,
                                              duration_ms=duration, statements=len(migration.statements)))
            run.result["changed"] = True
            run.verify_applied(engine.db, migration)
    finally:
        run.result["pending"] = [p for p in run.result["pending"] if p["version"] not in applied]


def revert(run, engine, project, plan):
    irreversible = {row.version for row in plan.irreversible}
    for row in plan.to_revert:
        if row.version in irreversible:
            engine.forget(row)
            run.result["forgotten"].append(brief(row))
            run.result["changed"] = True
            continue
        path = project.rollback_path(row.version, row.name)
        try:
            text = read_text(path)
        except OSError as exc:
            raise MigrationFailure("cannot read down script %s: %s" % (path, exc.strerror))
        duration = engine.revert(row, os.path.basename(path), text)
        run.result["reverted"].append(dict(brief(row), file=os.path.basename(path), duration_ms=duration))
        run.result["changed"] = True


def diff_of(project, plan):
    entries = []
    for migration in plan.to_apply:
        entries.append(dict(before="", after=project.contents[migration.version], before_header="/dev/null",
                            after_header="supabase/migrations/%s" % migration.filename))
    for row in plan.to_revert:
        path = project.rollback_path(row.version, row.name)
        if os.path.exists(path):
            entries.append(dict(before="", after=read_text(path), before_header="/dev/null",
                                after_header="supabase/rollbacks/%s (down)" % os.path.basename(path)))
    return entries
