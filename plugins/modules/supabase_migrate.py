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
  - slogate.supabase.in_worker
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.slogate.supabase.plugins.module_utils.migrate_task import module_kwargs, run_task


def main():
    run_task(AnsibleModule(**module_kwargs()))


if __name__ == "__main__":
    main()
