#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: supabase_migration_pack
short_description: Add a pack of migrations and their down scripts to a Supabase project
version_added: 0.1.0
description:
  - Writes each migration of a pack into C(<project_dir>/supabase/migrations) and its down script into
    C(<project_dir>/supabase/rollbacks), under the same file name.
  - A pack file is recognised by its content, not its name. When the project already holds a migration
    with the same content, that part of the pack is present and nothing is written for it, so a second
    run changes nothing.
  - Missing files get versions newer than the project's newest migration, so C(supabase db push)
    accepts them without C(--include-all). The pack's own version is kept when it is already newer.
  - No existing file is ever renamed or overwritten.
  - The role M(slogate.supabase.kit) uses this module to install the kit.
options:
  project_dir:
    description:
      - Folder of the Supabase project, the one holding C(supabase/).
    type: path
    required: true
  files:
    description:
      - The pack, in order. Each item has C(name) (a CLI-valid file name C(<digits>_<name>.sql)),
        C(content) (the migration's SQL) and optionally C(rollback) (the down script's SQL).
    type: list
    elements: dict
    required: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - Shows every file that would be added.
author:
  - slogate.supabase developers (@slogate)
"""

EXAMPLES = r"""
- name: Add the kit's migrations to the project
  slogate.supabase.supabase_migration_pack:
    project_dir: /srv/app
    files:
      - name: 20260101000100_slogate_kit_tables.sql
        content: "{{ lookup('ansible.builtin.file', 'pack/migrations/20260101000100_slogate_kit_tables.sql', rstrip=false) }}"
        rollback: "{{ lookup('ansible.builtin.file', 'pack/rollbacks/20260101000100_slogate_kit_tables.sql', rstrip=false) }}"
"""

RETURN = r"""
added:
  description: Migration files written, with their new names.
  returned: always
  type: list
  elements: str
  sample: ["20260301120001_slogate_kit_tables.sql"]
present:
  description: Pack files already in the project, by the name they have there.
  returned: always
  type: list
  elements: str
rollbacks_added:
  description: Down scripts written, including those added beside a migration that was already present.
  returned: always
  type: list
  elements: str
files:
  description: One entry per pack file.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: Name of the file in the pack.
      type: str
    target:
      description: Name of the file in the project.
      type: str
    action:
      description: C(add) or C(present).
      type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.slogate.supabase.plugins.module_utils.errors import SlogateError
from ansible_collections.slogate.supabase.plugins.module_utils.pack import (
    changed,
    pack_from_params,
    plan_install,
    summarize,
)


def read_sql_files(folder):
    """Name -> content of the .sql files directly in folder (none when it does not exist)."""
    if not os.path.isdir(folder):
        return {}
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".sql") and os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                found[name] = handle.read()
    return found


def write_new_file(module, folder, name, content):
    """Write a file that must not exist yet; refuse rather than overwrite."""
    path = os.path.join(folder, name)
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        module.fail_json(msg="%s appeared while the pack was being installed; not overwriting it" % path)
    except OSError as exc:
        module.fail_json(msg="cannot write %s: %s" % (path, exc.strerror))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    return path


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", required=True),
            files=dict(type="list", elements="dict", required=True),
        ),
        supports_check_mode=True,
    )
    project_dir = module.params["project_dir"]
    migrations_dir = os.path.join(project_dir, "supabase", "migrations")
    rollbacks_dir = os.path.join(project_dir, "supabase", "rollbacks")
    if not os.path.isdir(project_dir):
        module.fail_json(msg="project_dir %s does not exist: point it at the folder that holds supabase/" % project_dir)
    try:
        planned = plan_install(pack_from_params(module.params["files"]),
                               read_sql_files(migrations_dir), read_sql_files(rollbacks_dir))
    except SlogateError as exc:
        module.fail_json(msg=str(exc))

    diff = []
    for item in planned:
        if item.action == "add":
            diff.append(dict(before="", after=item.content, before_header="/dev/null",
                             after_header=os.path.join(migrations_dir, item.target)))
        if item.add_rollback:
            diff.append(dict(before="", after=item.rollback, before_header="/dev/null",
                             after_header=os.path.join(rollbacks_dir, item.target)))
    if not module.check_mode:
        for item in planned:
            if item.action == "add":
                write_new_file(module, migrations_dir, item.target, item.content)
            if item.add_rollback:
                write_new_file(module, rollbacks_dir, item.target, item.rollback)

    result = dict(
        changed=changed(planned),
        msg=summarize(planned),
        added=[p.target for p in planned if p.action == "add"],
        present=[p.target for p in planned if p.action == "present"],
        rollbacks_added=[p.target for p in planned if p.add_rollback],
        files=[dict(source=p.source, target=p.target, action=p.action) for p in planned],
    )
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
