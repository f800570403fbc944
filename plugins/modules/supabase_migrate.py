#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: supabase_migrate
short_description: Apply, report or undo a Supabase project's migrations, interchangeably with supabase db push
version_added: 0.1.0
description:
  - Applies the files of C(<project_dir>/supabase/migrations) as C(supabase db push) does, and records them in
    the same history table, C(supabase_migrations.schema_migrations(version, statements, name)), with the same
    statements, so the Supabase CLI and this module can take turns on one database.
  - Same file rule (C(<digits>_<name>.sql) directly in the folder; other files are skipped with a warning), same
    order (file names as text), same splitting into statements, same transactions (one per file; a statement
    that cannot run in a transaction, such as C(CREATE INDEX CONCURRENTLY), runs on its own; a file with its own
    C(BEGIN)/C(COMMIT) is sent statement by statement), C(RESET ALL) between files.
  - Safer than the CLI. An advisory lock makes a second run wait for the first, then find nothing pending.
    O(lock_timeout) keeps a migration from hanging behind a long query. A failing file fails the task with the
    file name, the statement's line and the server's message; its changes are rolled back and not recorded,
    earlier files stay. An applied file whose content changed is reported as RV(drift) and never re-run.
    A version in the history but missing locally blocks O(state=latest) unless O(allow_missing_local).
  - O(state=rolled_back) runs the down scripts C(<project_dir>/supabase/rollbacks/<version>_<name>.sql),
    newest first, for every applied version newer than O(target), removing each from the history. It never calls
    C(supabase migration down), which resets the schemas and loses data. It refuses, before touching anything,
    when a version has no down script, unless O(allow_irreversible).
  - O(verify) names a verifier function per migration, called right after that migration is applied (the runbook's
    steps 1 and 2). The first verifier that fails stops the run; its migration stays applied, later ones stay pending.
extends_documentation_fragment:
  - slogate.supabase.postgres
options:
  project_dir:
    description:
      - Folder of the Supabase project, the one holding C(supabase/migrations).
    type: path
    required: true
  state:
    description:
      - V(latest) applies every pending migration, up to O(target) when given.
      - V(status) only reports.
      - V(rolled_back) undoes every applied migration newer than O(target) with its down script.
    type: str
    choices: [latest, status, rolled_back]
    default: latest
  target:
    description:
      - A migration version. With O(state=latest), the newest version to apply. With O(state=rolled_back), the
        version to go back to (required there; V(0) undoes every migration).
    type: str
  engine:
    description:
      - V(native) runs the files itself. V(cli) runs the real C(supabase db push) for O(state=latest), for users
        who want exactly its behaviour; planning, check mode, O(state=status) and O(state=rolled_back) are native.
    type: str
    choices: [native, cli]
    default: native
  cli_path:
    description:
      - The C(supabase) executable for O(engine=cli). Default, the one on C(PATH).
    type: path
  include_all:
    description:
      - Also apply files older than the newest applied version that were never applied (the CLI's C(--include-all)).
    type: bool
    default: false
  allow_missing_local:
    description:
      - Go on when the history holds versions that have no local file.
    type: bool
    default: false
  allow_irreversible:
    description:
      - With O(state=rolled_back), remove versions without a down script from the history without undoing them.
        Their changes stay in the database; RV(irreversible) lists them. Without it, the task fails first.
    type: bool
    default: false
  lock_wait:
    description:
      - Seconds to wait for another run's migration lock before failing.
    type: int
    default: 300
  verify:
    description:
      - Verifier functions by migration. A key is a migration's name or version; its value, the function to call
        (C(name) or C(schema.name), schema C(public) by default, no arguments) right after this run applied that
        migration, in a read-only transaction that is rolled back.
      - Judged as M(slogate.supabase.pg_verify_function) judges a result (C(true), a jsonb C(ok) with its C(checks),
        no exception). A verifier that fails or raises fails the task, naming it and its failed checks; the
        migrations applied before stay applied (and recorded) and the later ones are not run.
      - With O(engine=cli) the CLI applies every file in one go, so the verifiers run after the push, in order.
      - A key that names no local migration is reported with a warning.
    type: dict
    default: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Reads the history only; creates nothing, not even the history table.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - Shows the SQL of every file that would run.
notes:
  - Long runs report each file's duration in RV(applied) and RV(reverted).
  - A file that runs in one transaction commits without waiting for its WAL to reach the disk; the run then ends
    with one synchronous commit (of a temporary table dropped at once), so everything applied or reverted is
    durable, and confirmed by synchronous standbys, when the task returns. A server crash during the run loses at
    most the last files, each whole together with its history row, so history and schema always agree. Without
    the TEMPORARY privilege on the database every file waits for its own flush.
  - Every state also reads the server's version and clock (RV(server_version), RV(server_time)), so a play needs no
    separate probe for them.
author:
  - slogate.supabase developers (@slogate)
"""

EXAMPLES = r"""
- name: Apply pending migrations (runbook steps 1 and 2)
  slogate.supabase.supabase_migrate:
    project_dir: /srv/app
    lock_timeout: 5s
  environment:
    SUPABASE_DB_URL: "{{ vault_supabase_db_url }}"
  register: deploy_migrations

- name: What would run
  slogate.supabase.supabase_migrate:
    project_dir: /srv/app
    state: status

- name: Apply pending migrations, verifying the two runbook migrations right after each (runbook steps 1 and 2)
  slogate.supabase.supabase_migrate:
    project_dir: /srv/app
    verify:
      performance_optimization_enhanced: verify_migration_success
      final_punchlist_implementation: verify_final_punchlist_migration

- name: Go back to the release before this deploy
  slogate.supabase.supabase_migrate:
    project_dir: /srv/app
    state: rolled_back
    target: "{{ deploy_migrations.history_before[-1].version }}"
"""

RETURN = r"""
applied:
  description: Migrations applied by this run, in order.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: Version of the file.
      type: str
    name:
      description: Name part of the file name.
      type: str
    file:
      description: File name.
      type: str
    duration_ms:
      description: Wall time of the file, including its history row.
      type: float
    statements:
      description: Number of statements in the file.
      type: int
  sample: [{"version": "20260110120000", "name": "performance_optimization_enhanced", "duration_ms": 41.2}]
pending:
  description: Migrations not applied when the task ended (all of them in check mode and with O(state=status)).
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: Version of the file.
      type: str
    name:
      description: Name part of the file name.
      type: str
    file:
      description: File name.
      type: str
    down_script:
      description: Whether C(supabase/rollbacks) holds its down script (without one, undoing it means a restore).
      type: bool
    verify:
      description: The verifier O(verify) names for it, or null.
      type: str
  sample: [{"version": "20260110120100", "name": "final_punchlist_implementation", "down_script": true,
            "verify": "verify_final_punchlist_migration", "file": "20260110120100_final_punchlist_implementation.sql"}]
verifications:
  description: The O(verify) functions called by this run, in the order their migrations were applied.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: The migration it verified.
      type: str
    name:
      description: The migration's name.
      type: str
    function:
      description: The function called, with its argument types.
      type: str
    ok:
      description: Whether it passed.
      type: bool
    checks:
      description: The checks it reported (name, ok, detail), for a C({ok, checks}) answer.
      type: list
      elements: dict
    failed_checks:
      description: The checks that did not hold.
      type: list
      elements: dict
    reasons:
      description: Why it failed, one line each.
      type: list
      elements: str
    duration_ms:
      description: Time of the call.
      type: float
  sample: [{"version": "20260110120000", "name": "performance_optimization_enhanced", "ok": true,
            "function": "public.verify_migration_success()", "checks": [], "failed_checks": [], "reasons": [],
            "duration_ms": 12.5}]
server_version:
  description: The server's version (C(server_version)).
  returned: always
  type: str
  sample: "18.1"
server_time:
  description: The server's clock (C(clock_timestamp())) when the task connected, ISO 8601 with the session's offset.
  returned: always
  type: str
  sample: "2026-11-26T21:40:03.120512+00:00"
reverted:
  description: Migrations undone by their down scripts, newest first, with durations.
  returned: always
  type: list
  elements: dict
forgotten:
  description: Migrations without a down script removed from the history with O(allow_irreversible).
  returned: always
  type: list
  elements: dict
drift:
  description: Applied migrations whose local file no longer matches the statements in the history.
  returned: always
  type: list
  elements: dict
  sample: [{"version": "20260105090000", "name": "documents", "detail": "statement 2 differs from the applied one"}]
missing_local:
  description: Versions in the history without a local file.
  returned: always
  type: list
  elements: dict
skipped_files:
  description: Files of supabase/migrations that are not migrations by the CLI's rule, with the reason.
  returned: always
  type: list
  elements: dict
irreversible:
  description: Versions to undo that have no down script.
  returned: always
  type: list
  elements: dict
history_before:
  description: The history (version and name) before this run.
  returned: always
  type: list
  elements: dict
executed_statements:
  description: Number of statements sent to the server.
  returned: always
  type: int
history_created:
  description: Whether this run created the history table.
  returned: always
  type: bool
engine:
  description: The engine that applied the files.
  returned: always
  type: str
"""

import os
import subprocess
from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule

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


def main():
    module = AnsibleModule(
        argument_spec=pg_argument_spec(
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
        ),
        supports_check_mode=True,
    )
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


if __name__ == "__main__":
    main()
