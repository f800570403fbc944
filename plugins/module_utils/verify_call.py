# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calling a verification function on a connection: find the one overload a call reaches, build the call,
run it (read-only when asked) and judge the answer with verify.judge. Shared by pg_verify_function and
supabase_migrate's per-migration verifiers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError, QueryFailure
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import jsonable, psycopg2, sql
from ansible_collections.slogate.supabase.plugins.module_utils.verify import UNSET, judge, shape_of, similar_names, summarize

LOOKUP = """
SELECT pg_catalog.format('%%I.%%I(%%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes)) AS signature,
       pg_catalog.format_type(p.prorettype, NULL) AS return_type,
       p.proretset AS returns_set, t.typtype = 'c' AS returns_composite,
       p.prokind AS kind, p.pronargs AS nargs, p.pronargdefaults AS ndefaults
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
WHERE n.nspname = %s AND p.proname = %s
ORDER BY 1
"""

ALL_FUNCTIONS = """
SELECT DISTINCT n.nspname || '.' || p.proname AS name
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
"""

WROTE = "SELECT pg_catalog.txid_current_if_assigned() IS NOT NULL AS wrote"

READ_ONLY_VIOLATION = "25006"
UNDEFINED_FUNCTION = "42883"


def split_name(function, schema):
    name = function.strip()
    if name.endswith("()"):
        name = name[:-2]
    if "." in name:
        schema, name = name.split(".", 1)
    if not name or not schema:
        raise ConfigurationError("function=%r is not a function name; use name or schema.name" % function)
    return schema, name


def normalize_args(args):
    if args is None:
        return []
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            raise ConfigurationError("args must be a list (by position) or a mapping (by name), not the string %r" % args)
    if not isinstance(args, (list, dict)):
        raise ConfigurationError("args must be a list (by position) or a mapping (by name), not %s" % type(args).__name__)
    return args


def normalize_expect(expect):
    if expect is None:
        return UNSET
    if isinstance(expect, str):
        try:
            return json.loads(expect)
        except ValueError:
            return expect
    return expect


def find_function(db, schema, name, args):
    """The one overload the call will reach, as a catalog row; raise a clear error otherwise."""
    label = "%s.%s" % (schema, name)
    candidates = db.fetch_all(LOOKUP, (schema, name))
    if not candidates:
        similar = similar_names(label, [row["name"] for row in db.fetch_all(ALL_FUNCTIONS)])
        hint = "similarly named: %s" % ", ".join(similar) if similar else "no function has a similar name"
        raise ConfigurationError("function %s does not exist; %s" % (label, hint))
    functions = [row for row in candidates if row["kind"] == "f"]
    if not functions:
        raise ConfigurationError("%s is a %s, not a function; pg_verify_function calls functions" % (
            label, {"p": "procedure", "a": "aggregate", "w": "window function"}.get(candidates[0]["kind"], "routine")))
    given = len(args)
    fitting = [row for row in functions if row["nargs"] - row["ndefaults"] <= given <= row["nargs"]]
    if not fitting:
        raise ConfigurationError("function %s takes other arguments than the %d given: %s" % (
            label, given, ", ".join(row["signature"] for row in functions)))
    shapes = {shape_of(row["return_type"], row["returns_set"] or row["returns_composite"]) for row in fitting}
    if len(shapes) > 1:
        raise ConfigurationError("function %s is ambiguous for %d arguments (%s); drop the overload you do not mean" % (
            label, given, ", ".join(row["signature"] for row in fitting)))
    return fitting[0], shapes.pop()


def build_call(schema, name, args, shape):
    if isinstance(args, dict):
        arg_sql = sql.SQL(", ").join(
            sql.SQL("{} => {}").format(sql.Identifier(key), sql.Placeholder()) for key in args)
        values = list(args.values())
    else:
        arg_sql = sql.SQL(", ").join(sql.Placeholder() for dummy in args)
        values = list(args)
    values = [psycopg2.extras.Json(v) if isinstance(v, dict) else v for v in values]
    call = sql.SQL("{}.{}({})").format(sql.Identifier(schema), sql.Identifier(name), arg_sql)
    if shape == "rows":
        return sql.SQL("SELECT * FROM {}").format(call), values
    return sql.SQL("SELECT {} AS result").format(call), values


def call_function(db, query, values, shape, read_only):
    """Run the call; return (value, error) where error is a dict when it raised."""
    if read_only:
        db.execute("SET TRANSACTION READ ONLY")
    try:
        rows = db.fetch_all(query, values)
    except QueryFailure as exc:
        if exc.sqlstate == UNDEFINED_FUNCTION:
            raise ConfigurationError(str(exc))
        message = str(exc)
        if exc.sqlstate == READ_ONLY_VIOLATION and read_only:
            message = "it tried to write, which read_only forbids (%s); run it without read_only" % message
        return None, dict(sqlstate=exc.sqlstate, message=message)
    if shape == "rows":
        return rows, None
    return rows[0]["result"] if rows else None, None


def verify_read_only(db, function, schema="public", args=None):
    """Call a verifier in a read-only transaction that is rolled back; return a dict for a module result.

    Keys: function (its signature), shape, ok, result, checks, failed_checks, reasons, msg (one line),
    duration_ms, and error when it raised. A missing function or a call that cannot reach one overload raises ConfigurationError.
    """
    started = time.monotonic()
    schema, name = split_name(function, schema)
    args = normalize_args(args)
    if db.connection.autocommit:
        db.connection.autocommit = False
    elif db.in_transaction():
        db.commit()
    try:
        found, shape = find_function(db, schema, name, args)
        query, values = build_call(schema, name, args, shape)
        value, error = call_function(db, query, values, shape, read_only=True)
    finally:
        db.rollback()
    outcome = dict(function=found["signature"], shape=shape, duration_ms=round(1000.0 * (time.monotonic() - started), 1))
    if error:
        return dict(outcome, ok=False, result=None, checks=[], failed_checks=[], error=error,
                    reasons=["raised: %s" % error["message"]], msg="%s raised: %s" % (found["signature"], error["message"]))
    verdict = judge(shape, jsonable(value))
    return dict(outcome, ok=verdict.ok, result=jsonable(value), reasons=list(verdict.reasons),
                msg=summarize(found["signature"], verdict),
                checks=[dict(name=c.name, ok=c.ok, detail=c.detail) for c in verdict.checks],
                failed_checks=[dict(name=c.name, ok=c.ok, detail=c.detail) for c in verdict.failed_checks])
