# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of slogate.supabase.http_probe: run in the Ansible worker when that is the same as
running the module (see plugin_utils/in_controller.py), otherwise as a module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.slogate.supabase.plugins.plugin_utils.in_controller import WorkerAction


class ActionModule(WorkerAction):

    MODULE = "slogate.supabase.http_probe"
    TASK_CODE = "ansible_collections.slogate.supabase.plugins.modules.http_probe"
    NEEDS_PSYCOPG2 = False
