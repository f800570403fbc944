# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  db_url:
    description:
      - libpq connection URI of the database, for example
        C(postgresql://postgres:PASSWORD@db.PROJECT.supabase.co:5432/postgres),
        or a libpq C(key=value) connection string.
      - When not set, the C(SUPABASE_DB_URL) environment variable is used, then C(DATABASE_URL).
      - Never logged and masked in every message, even at C(-vvv).
    type: str
    aliases: [login_url]
  connect_timeout:
    description:
      - Seconds to wait for the connection before failing with a message that names the host and port.
    type: int
    default: 10
  application_name:
    description:
      - Name the session shows in C(pg_stat_activity), so a DBA can tell this run's sessions apart.
    type: str
    default: slogate.supabase
  statement_timeout:
    description:
      - Longest time one statement may run, as PostgreSQL's C(statement_timeout)
        (a number means milliseconds; units C(ms), C(s), C(min), C(h), C(d) allowed, for example C(30s)).
      - Not set means the server's setting.
    type: str
  lock_timeout:
    description:
      - Longest time a statement waits for a lock, as PostgreSQL's C(lock_timeout), so a run never
        hangs behind a long transaction. Same format as O(statement_timeout).
      - Not set means the server's setting.
    type: str
requirements:
  - psycopg2 (C(pip install psycopg2-binary)) on the host that runs the module
notes:
  - The connection settings are applied to the session before any statement, outside any transaction.
"""
