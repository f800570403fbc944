#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: app_release
short_description: Unpack an app release, write its release.env and switch the current symlink in one task
version_added: 0.1.0
description:
  - Replaces the deploy's release steps (create the release folder, archive the app on the controller, unarchive it,
    write a marker, template C(release.env), point C(current) at the release) with one task and one transfer.
  - Releases live in C(<root>/releases/<release>/); C(<root>/current) is a symlink to the live one, with the
    relative target C(releases/<release>), so the root folder may move.
  - >-
    The action plugin packs O(src) on the controller into one tar.gz archive (without O(exclude)), computes a
    content digest (sha256 over the sorted relative paths, the file bytes and the modes), sends the archive once to
    the host's temporary folder and runs the module there. Both temporary copies are removed, also when the task fails.
  - >-
    A release is unpacked only when C(<root>/releases/<release>/.slogate-unpacked) is absent: into a temporary folder
    next to it, with its C(release.env) and that marker (holding the digest), then renamed into place, so a run that is
    cut off never leaves half a release. Archive members that are absolute, contain C(..) or are links pointing
    outside the release are refused.
  - A release is never overwritten. When it exists with a different digest the task fails; give the new code a new
    release id. The same digest is nothing to do.
  - C(current) is switched atomically (a new symlink renamed over the old one), so readers see the old or the new
    release, never none. A C(current) that is not a symlink is refused.
options:
  root:
    description:
      - Folder holding C(releases/<release>/) and the C(current) symlink, on the host. Created when missing.
    type: path
    required: true
  release:
    description:
      - The release id, also the name of its folder under C(<root>/releases).
      - 1 to 64 letters, digits, C(.), C(_) or C(-), starting with a letter or digit.
    type: str
    required: true
  src:
    description:
      - Folder on the controller with the app code to release. A relative path is looked up like
        M(ansible.builtin.copy)'s, in the role's C(files/) first.
      - Files, folders and symlinks pointing inside it are packed; a fifo, socket or device, or a link pointing
        outside, fails the task before anything is sent.
      - May be left out when the release folder exists already, to switch only (for example a rollback).
    type: path
  exclude:
    description:
      - fnmatch patterns of what to leave out of O(src). A pattern is matched against each entry's name and its path
        relative to O(src); an excluded folder is left out with everything in it.
    type: list
    elements: str
    default: ['__pycache__', '*.pyc']
  env:
    description:
      - Settings written to C(<root>/releases/<release>/release.env) as C(KEY=VALUE) lines, after a first comment line
        C(# written by slogate.supabase.app_release) and C(RELEASE_ID=<release>), sorted by key ignoring case (as the
        C(dictsort) filter does). The values are written as given, without quotes.
      - Keys must be letters, digits and C(_), not starting with a digit, and not C(RELEASE_ID); values must be
        strings, numbers or booleans without a line break.
      - The file is rewritten only when its content differs. Left out, an existing C(release.env) is not touched.
    type: dict
  state:
    description:
      - V(current) unpacks the release when needed, writes its C(release.env) and points C(current) at it.
      - V(present) does the same without switching C(current).
    type: str
    choices: [current, present]
    default: current
  _archive:
    description:
      - Internal, set by the action plugin; do not set it. The path of the packed O(src) on the host.
    type: path
  _digest:
    description:
      - Internal, set by the action plugin; do not set it. The content digest of the packed O(src).
    type: str
attributes:
  action:
    description: Runs through an action plugin of the same name, which packs and sends O(src).
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The controller reads O(src) to compute its digest but sends nothing; the module only looks at the host and
        says whether it would unpack, write C(release.env) and switch. A release that exists with different content
        fails as the real run would.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - C(changed) is true when the release was unpacked, its C(release.env) written or C(current) switched. A rerun with
    the same O(src), O(env) and O(release) is not changed.
  - A release folder made by other means (without the C(.slogate-unpacked) marker) can be switched to without O(src);
    with O(src) the task fails rather than overwrite it. A marker written before this module recorded digests is
    accepted with a warning.
seealso:
  - module: ansible.builtin.unarchive
  - module: ansible.builtin.file
author:
  - slogate.supabase developers (@slogate)
"""

EXAMPLES = r"""
- name: Switch the app to release r42
  slogate.supabase.app_release:
    root: /srv/app
    release: r42
    src: "{{ playbook_dir }}/../app"
    exclude: ['__pycache__', '*.pyc', 'tests']
    env:
      FAULT_ERROR_RATE: "0"
      LOG_LEVEL: info
  register: deploy_switch

- name: Restart the app when the release or its settings changed
  ansible.builtin.command:
    argv: [supervisorctl, -c, /srv/app/supervisord.conf, restart, slogate-app]
  changed_when: true
  when: deploy_switch is changed

- name: Roll back to the release that was live before (switch only, its folder exists)
  slogate.supabase.app_release:
    root: /srv/app
    release: "{{ deploy_switch.previous }}"

- name: Unpack the next release without making it live yet
  slogate.supabase.app_release:
    root: /srv/app
    release: r43
    src: "{{ playbook_dir }}/../app"
    state: present
"""

RETURN = r"""
msg:
  description: One line saying what was done (or would be done in check mode).
  returned: always
  type: str
  sample: "unpacked release r42 into /srv/app/releases/r42, wrote its release.env, switched current from r41 to r42"
release:
  description: The release id, O(release).
  returned: success
  type: str
  sample: r42
previous:
  description: The release id C(current) pointed at before the task; empty when there was no C(current) symlink.
  returned: success
  type: str
  sample: r41
current:
  description: The release id C(current) points at after the task (in check mode, would point at).
  returned: success
  type: str
  sample: r42
path:
  description: The release folder on the host.
  returned: success
  type: str
  sample: /srv/app/releases/r42
unpacked:
  description: Whether the release was unpacked by this run (in check mode, would be).
  returned: success
  type: bool
  sample: true
env_changed:
  description: Whether C(release.env) was written by this run (in check mode, would be).
  returned: success
  type: bool
  sample: true
switched:
  description: Whether C(current) was repointed by this run (in check mode, would be).
  returned: success
  type: bool
  sample: true
digest:
  description: >-
    The content digest (sha256, hex) of O(src); without O(src), the one recorded in the release's marker
    (empty when the release has none).
  returned: success
  type: str
  sample: 3f7c1d0e9a5b4c2d8e6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f
files:
  description: Files packed from O(src) (folders and links not counted); 0 without O(src).
  returned: success
  type: int
  sample: 17
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.slogate.supabase.plugins.module_utils import app_release
from ansible_collections.slogate.supabase.plugins.module_utils.errors import SlogateError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            release=dict(type="str", required=True),
            src=dict(type="path"),
            exclude=dict(type="list", elements="str", default=list(app_release.DEFAULT_EXCLUDE)),
            env=dict(type="dict"),
            state=dict(type="str", default="current", choices=["current", "present"]),
            _archive=dict(type="path"),
            _digest=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["src"] and not params["_digest"]:
        module.fail_json(msg="src %s was not packed: app_release runs through its action plugin, which reads src on "
                             "the controller; call it as slogate.supabase.app_release" % params["src"])
    try:
        result, warnings = app_release.apply_release(
            params["root"], params["release"], state=params["state"], env=params["env"],
            archive=params["_archive"], digest=params["_digest"], check_mode=module.check_mode)
    except SlogateError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="release %s: %s: %s" % (params["release"], exc.filename or "file", exc.strerror or exc))
    for warning in warnings:
        module.warn(warning)
    # exit_json would add the owner, mode and a state=directory of any `path` key;
    # the action plugin names it path again.
    result["release_path"] = result.pop("path")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
