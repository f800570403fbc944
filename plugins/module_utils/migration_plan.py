# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a migration run will do, decided from plain data: the project's files
and the database's history. Pure logic: no driver, no Ansible.

The rules are the Supabase CLI's (`supabase db push`), made explicit:
a version in the history but not on disk blocks the run; a local file older
than the newest applied version and not in the history is out of order and
blocks the run unless included on purpose; the pending files are applied in
version order. An applied file whose statements differ from the history is
drift, reported and never re-run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import dataclass
from typing import Optional, Tuple

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError


@dataclass(frozen=True)
class LocalMigration:
    """A migration file of the project, split the way the CLI splits it."""

    version: str
    name: str
    filename: str
    statements: Tuple[str, ...]


@dataclass(frozen=True)
class AppliedMigration:
    """A row of supabase_migrations.schema_migrations."""

    version: str
    name: Optional[str]
    statements: Optional[Tuple[str, ...]]


@dataclass(frozen=True)
class Plan:
    """Everything a run found; ``to_apply`` or ``to_revert`` is what it will do."""

    to_apply: Tuple[LocalMigration, ...] = ()
    to_revert: Tuple[AppliedMigration, ...] = ()
    drift: Tuple[Tuple[str, str, str], ...] = ()           # (version, name, what differs)
    missing_local: Tuple[AppliedMigration, ...] = ()
    out_of_order: Tuple[LocalMigration, ...] = ()
    irreversible: Tuple[AppliedMigration, ...] = ()
    blockers: Tuple[str, ...] = ()


def describe_drift(local, applied):
    """What differs between a local file and its history row, or None when they agree."""
    if applied.statements is None:
        return None  # history written by a tool that stores no statements: nothing to compare
    if tuple(applied.statements) == tuple(local.statements):
        return None
    stored, current = list(applied.statements), list(local.statements)
    for position, (old, new) in enumerate(zip(stored, current), start=1):
        if old != new:
            return "statement %d differs from the applied one" % position
    return "the file has %d statements, the applied one had %d" % (len(current), len(stored))


def _index(applied):
    by_version = {}
    for row in applied:
        by_version[row.version] = row
    return by_version


def plan_latest(local, applied, target=None, include_all=False, allow_missing_local=False):
    """Plan `state=latest`: apply every pending file, up to ``target`` when given."""
    history = _index(applied)
    local_versions = {m.version for m in local}
    if target is not None and target not in local_versions and target not in history:
        raise ConfigurationError("target %s is not the version of any migration file or applied migration" % target)
    drift = tuple((m.version, m.name, reason) for m in local if m.version in history
                  for reason in [describe_drift(m, history[m.version])] if reason)
    missing = tuple(row for version, row in sorted(history.items()) if version not in local_versions)
    newest_applied = max(history) if history else None
    unapplied = [m for m in local if m.version not in history and (target is None or m.version <= target)]
    out_of_order = tuple(m for m in unapplied if newest_applied is not None and m.version < newest_applied)
    blockers = []
    if missing and not allow_missing_local:
        blockers.append("applied but missing locally: %s (restore the files, or set allow_missing_local)" % ", ".join(
            "%s_%s" % (row.version, row.name or "?") for row in missing))
    if out_of_order and not include_all:
        blockers.append("older than the newest applied version %s and never applied: %s (set include_all to apply them)" % (
            newest_applied, ", ".join(m.filename for m in out_of_order)))
    return Plan(to_apply=tuple(unapplied), drift=drift, missing_local=missing, out_of_order=out_of_order,
                blockers=tuple(blockers))


def plan_rollback(local, applied, target, reversible_versions, allow_irreversible=False):
    """Plan `state=rolled_back`: undo every applied version newer than ``target``, newest first.

    ``reversible_versions`` are the versions that have a down script.
    """
    if target is None:
        raise ConfigurationError("state=rolled_back needs a target: the version to go back to (0 undoes every migration)")
    history = _index(applied)
    reversible = set(reversible_versions)
    to_revert = tuple(row for version, row in sorted(history.items(), reverse=True) if version > target)
    irreversible = tuple(row for row in to_revert if row.version not in reversible)
    blockers = []
    if irreversible and not allow_irreversible:
        blockers.append("no down script in supabase/rollbacks for %s: restore the backup instead, or set "
                        "allow_irreversible to forget them without undoing them" % ", ".join(
                            "%s_%s" % (row.version, row.name or "?") for row in irreversible))
    local_versions = {m.version for m in local}
    drift = tuple((m.version, m.name, reason) for m in local if m.version in history
                  for reason in [describe_drift(m, history[m.version])] if reason)
    missing = tuple(row for version, row in sorted(history.items()) if version not in local_versions)
    return Plan(to_revert=to_revert, irreversible=irreversible, drift=drift, missing_local=missing,
                blockers=tuple(blockers))
