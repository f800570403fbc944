# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
attributes:
  action:
    description: Runs through an action plugin of the same name, which runs the module's code in the Ansible worker when
      that gives the same result as running the module.
    support: full
    details:
      - That is when the connection is C(local), without C(become), C(async) or a task C(environment), and the task's
        Python (C(ansible_python_interpreter)) is the one running Ansible (with psycopg2, for a module that reaches
        the database). Then no module payload is built, written and started in a second Python, which saves about
        half a second per task.
      - In every other case, or with the variable C(slogate_supabase_in_controller=false), it runs as a module.
      - The arguments are checked, secrets masked and the result shaped the same way both ways; C(-vvv) says which
        way a task ran.
"""
