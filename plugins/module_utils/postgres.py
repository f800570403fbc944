# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one connection helper of slogate.supabase.

Every module builds its argument spec with ``pg_argument_spec()``, connects
with ``connect()`` and shapes its result with ``jsonable()``. The driver is
imported here only, guarded, so a missing psycopg2 is one clear failure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import decimal
import os
import sys
import traceback
import uuid
from urllib.parse import quote

from ansible_collections.slogate.supabase.plugins.module_utils.conninfo import (
    describe_connect_error,
    describe_malformed_url,
    describe_target,
    resolve_db_url,
    validate_duration,
)
from ansible_collections.slogate.supabase.plugins.module_utils.errors import (
    MIN_LITERAL_SECRET_LENGTH,
    ConfigurationError,
    ConnectionFailure,
    QueryFailure,
    mask_secrets,
    one_line,
)

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
    import psycopg2.extensions
    import psycopg2.extras
    import psycopg2.sql
    HAS_PSYCOPG2 = True
    sql = psycopg2.sql  # the modules compose SQL with this, never with string formatting
except ImportError:
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()
    HAS_PSYCOPG2 = False
    psycopg2 = None
    sql = None


def pg_argument_spec(**extra):
    """The connection options every module takes, plus the module's own."""
    spec = dict(
        db_url=dict(type="str", no_log=True, aliases=["login_url"]),
        connect_timeout=dict(type="int", default=10),
        application_name=dict(type="str", default="slogate.supabase"),
        statement_timeout=dict(type="str"),
        lock_timeout=dict(type="str"),
    )
    spec.update(extra)
    return spec


def require_driver(module):
    """Fail the module in one line when psycopg2 cannot be imported."""
    if not HAS_PSYCOPG2:
        module.fail_json(
            msg="psycopg2 is missing from %s, the Python that runs the module: point ansible_python_interpreter "
                "at a Python that has it, or install it there with pip install psycopg2-binary" % sys.executable,
            exception=PSYCOPG2_IMPORT_ERROR)


class Database(object):
    """A connection that records every statement it runs, with secrets masked."""

    def __init__(self, connection, target, secrets):
        self.connection = connection
        self.target = target
        self.secrets = tuple(secrets)
        self.queries = []

    def execute(self, query, params=None, record=True):
        """Run one statement; return the cursor. Raises QueryFailure."""
        cursor = self.connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
        try:
            cursor.execute(query, params)
        except psycopg2.Error as exc:
            if record and cursor.query:
                self._record(cursor.query)
            raise QueryFailure(self.describe_error(exc), sqlstate=exc.pgcode)
        if record:
            self._record(cursor.query)
        return cursor

    def fetch_all(self, query, params=None, record=True):
        cursor = self.execute(query, params, record=record)
        if cursor.description is None:
            return []
        return [dict(row) for row in cursor.fetchall()]

    def fetch_one(self, query, params=None, record=True):
        rows = self.fetch_all(query, params, record=record)
        return rows[0] if rows else None

    def describe_error(self, exc):
        """One line for a failed statement: the server's message, detail and hint."""
        diag = getattr(exc, "diag", None)
        parts = [one_line(getattr(diag, "message_primary", None) or str(exc))]
        for label, value in (("detail", getattr(diag, "message_detail", None)),
                             ("hint", getattr(diag, "message_hint", None))):
            if value:
                parts.append("%s: %s" % (label, one_line(value)))
        if getattr(exc, "pgcode", None):
            parts.append("SQLSTATE %s" % exc.pgcode)
        return mask_secrets("; ".join(parts), self.secrets)

    def _record(self, query):
        text = query.decode("utf-8", "replace") if isinstance(query, bytes) else str(query)
        self.queries.append(mask_secrets(text.strip(), self.secrets))

    def in_transaction(self):
        status = self.connection.get_transaction_status()
        return status != psycopg2.extensions.TRANSACTION_STATUS_IDLE

    def commit(self):
        self.connection.commit()

    def rollback(self):
        self.connection.rollback()

    def close(self):
        if not self.connection.closed:
            self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.connection.closed:
            self.connection.rollback()
        self.close()
        return False


def connection_secrets(url):
    """Every form in which the URL's password could show up in a message."""
    secrets = [url]
    try:
        params = psycopg2.extensions.parse_dsn(url)
    except psycopg2.Error:
        return secrets
    if params.get("password"):
        secrets.append(params["password"])
        secrets.append(quote(params["password"], safe=""))
    return secrets


def connect(params, environ=None):
    """Open a Database from module params; raise ConnectionFailure or ConfigurationError."""
    url, origin = resolve_db_url(params.get("db_url"), os.environ if environ is None else environ)
    statement_timeout = validate_duration("statement_timeout", params.get("statement_timeout"))
    lock_timeout = validate_duration("lock_timeout", params.get("lock_timeout"))
    secrets = connection_secrets(url)
    try:
        dsn_params = psycopg2.extensions.parse_dsn(url)
    except psycopg2.Error as exc:
        raise ConnectionFailure(describe_malformed_url(origin, str(exc)))
    target = describe_target(dsn_params)
    try:
        connection = psycopg2.connect(
            url,
            connect_timeout=params.get("connect_timeout") or 10,
            application_name=params.get("application_name") or "slogate.supabase",
        )
    except psycopg2.Error as exc:
        raise ConnectionFailure(describe_connect_error(str(exc), target, origin, secrets))
    database = Database(connection, target, secrets)
    # Session settings are made outside any transaction so that a rolled-back
    # transaction (check mode, read_only) cannot undo them.
    connection.autocommit = True
    for name, value in (("statement_timeout", statement_timeout), ("lock_timeout", lock_timeout)):
        if value is not None:
            database.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value), record=False)
    connection.autocommit = False
    return database


def module_connect(module):
    """connect() for a module: the driver checked, every secret added to no_log_values."""
    require_driver(module)
    try:
        url = resolve_db_url(module.params.get("db_url"), os.environ)[0]
    except ConfigurationError:
        url = None  # connect() raises the same error with its full message
    if url:
        module.no_log_values.update(s for s in connection_secrets(url) if len(s) >= MIN_LITERAL_SECRET_LENGTH)
    return connect(module.params)


def jsonable(value):
    """Convert driver values (Decimal, datetime, UUID, bytes...) to JSON-safe ones."""
    if isinstance(value, dict):
        return dict((str(k), jsonable(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (int, float, str)):
        return value
    return str(value)
