# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning the install of a migration pack into a Supabase project: pure logic.

A pack file is recognised by its content, not its name: a project that already
holds a file with the same content has that part of the pack, whatever the
file is called. Missing files get versions newer than the project's newest
migration, so `supabase db push` accepts them without --include-all, and no
existing file is ever renamed or overwritten.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re
from dataclasses import dataclass
from typing import Optional

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

# The Supabase CLI's rule for a migration file name.
MIGRATION_NAME = re.compile(r"^([0-9]+)_(.*)\.sql$")
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"


@dataclass(frozen=True)
class PackFile:
    """One migration of the pack with its down script."""

    name: str
    content: str
    rollback: Optional[str] = None


@dataclass(frozen=True)
class PlannedFile:
    """What happens to one pack file: ``add`` it under ``target``, or it is ``present`` as ``target``."""

    source: str
    target: str
    action: str
    add_rollback: bool
    content: str
    rollback: Optional[str]


def split_name(name):
    """(version, description) of a CLI-valid migration file name, or None."""
    match = MIGRATION_NAME.match(name)
    return (match.group(1), match.group(2)) if match else None


def next_version(version):
    """The version right after ``version``: one second later for a 14-digit timestamp, else plus one."""
    if len(version) == 14:
        try:
            moment = datetime.datetime.strptime(version, TIMESTAMP_FORMAT)
            return (moment + datetime.timedelta(seconds=1)).strftime(TIMESTAMP_FORMAT)
        except ValueError:
            pass  # 14 digits that are not a date: count like any other number
    return str(int(version) + 1).zfill(len(version))


def newest_version(names):
    """The newest version among CLI-valid names, by the CLI's text order; None when there is none."""
    versions = [parsed[0] for parsed in (split_name(name) for name in names) if parsed]
    return max(versions) if versions else None


def validate_pack(pack):
    for item in pack:
        if not split_name(item.name):
            raise ConfigurationError(
                "pack file %s is not a CLI-valid migration name (<digits>_<name>.sql)" % item.name)
    names = [item.name for item in pack]
    if len(set(names)) != len(names):
        raise ConfigurationError("pack lists a file twice: %s" % ", ".join(sorted({n for n in names if names.count(n) > 1})))


def plan_install(pack, migrations, rollbacks):
    """Plan the install of ``pack`` (PackFile list, in order).

    ``migrations`` and ``rollbacks`` map the project's existing file names to
    their content. Returns a tuple of PlannedFile in pack order.
    """
    validate_pack(pack)
    by_content = {}
    for name in sorted(migrations):
        by_content.setdefault(migrations[name], name)
    taken = set(migrations)
    newest = newest_version(migrations)
    planned = []
    for item in pack:
        present = by_content.get(item.content)
        if present:
            needs_rollback = item.rollback is not None and present not in rollbacks
            planned.append(PlannedFile(item.name, present, "present", needs_rollback, item.content, item.rollback))
            continue
        version, description = split_name(item.name)
        if newest is not None and version <= newest:
            version = next_version(newest)
        target = "%s_%s.sql" % (version, description)
        while target in taken or target in rollbacks:
            version = next_version(version)
            target = "%s_%s.sql" % (version, description)
        taken.add(target)
        newest = version if newest is None or version > newest else newest
        planned.append(PlannedFile(item.name, target, "add", item.rollback is not None, item.content, item.rollback))
    return tuple(planned)


def summarize(planned):
    """One line for the task's msg."""
    added = [p.target for p in planned if p.action == "add"]
    present = [p.target for p in planned if p.action == "present"]
    rollbacks = [p.target for p in planned if p.action == "present" and p.add_rollback]
    parts = []
    if added:
        parts.append("added %s" % ", ".join(added))
    if rollbacks:
        parts.append("added the down scripts of %s" % ", ".join(rollbacks))
    if present:
        parts.append("%d already present" % len(present))
    return "; ".join(parts) if parts else "empty pack"


def changed(planned):
    return any(p.action == "add" or p.add_rollback for p in planned)


def pack_from_params(files):
    """PackFile list from the module's ``files`` option (dicts with name, content, rollback)."""
    pack = []
    for position, item in enumerate(files):
        if not isinstance(item, dict) or not item.get("name") or item.get("content") is None:
            raise ConfigurationError("files[%d] needs a name and a content" % position)
        pack.append(PackFile(str(item["name"]), str(item["content"]),
                             None if item.get("rollback") is None else str(item["rollback"])))
    return pack
