#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_verify_function
short_description: Call a PostgreSQL verification function and fail with the checks that failed
version_added: 0.1.0
description:
  - Calls a function such as C(verify_migration_success) and decides from its result whether the
    database is in the expected state, replacing a C(psql -c) call and a person reading the output.
  - >-
    Understands the result shapes verification functions use. C(boolean) passes when true.
    C(json)/C(jsonb) of the form C({"ok": bool, "checks": [{"name", "ok", "detail"}]}) passes when
    C(ok) is true (or, without C(ok), when every check is ok) and otherwise names every failed check.
    A set-returning function's rows are checks when they have an C(ok) column.
    A C(void) function passes unless it raises. Any other return type passes unless O(expect) says otherwise.
  - A function that raises fails the task with the server's message and SQLSTATE.
  - A missing function fails with its name and the names of similarly named functions.
  - The call runs in one transaction, committed unless O(read_only) or check mode.
extends_documentation_fragment:
  - slogate.supabase.postgres
options:
  function:
    description:
      - Name of the function, optionally schema-qualified (C(public.verify_migration_success)); trailing empty parentheses are ignored.
    type: str
    required: true
  schema:
    description:
      - Schema of the function when O(function) is not schema-qualified.
    type: str
    default: public
  args:
    description:
      - Arguments of the call. A list passes them by position, a mapping by name (C(name => value)).
      - Values are sent as query parameters, never spliced into the SQL. A mapping value is sent as JSON.
    type: raw
    default: []
  expect:
    description:
      - Replaces the default pass rule for the result.
      - V(true) or V(false) compares a boolean result, the C(ok) field of a json result, or whether
        every check row is ok.
      - >-
        A mapping is a subset the json result must contain (PostgreSQL's C(@>) semantics), for example
        C({"checks": [{"name": "rls_enabled", "ok": true}]}); for a set-returning function, a mapping
        (or list of mappings) the rows must contain.
      - Any other value must equal a scalar result (C(0) for a function returning a count of problems).
    type: raw
  expect_rows:
    description:
      - Exact number of rows a set-returning function must return (C(0) for a function listing problems).
    type: int
  read_only:
    description:
      - Run the call in a read-only transaction that is always rolled back, so it leaves no trace.
      - A function that tries to write then fails the task, saying so.
    type: bool
    default: false
  when_missing:
    description:
      - What a missing function means. V(fail) fails the task naming similar functions; V(skip) returns
        RV(missing=true) and RV(ok=null), for a check that only applies once a migration has created the function.
    type: str
    choices: [fail, skip]
    default: fail
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The call runs in a transaction that is rolled back; C(changed) says whether it would have written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
author:
  - slogate.supabase developers (@slogate)
"""

EXAMPLES = r"""
- name: Verify the performance optimization migration (runbook step 1)
  slogate.supabase.pg_verify_function:
    db_url: "{{ slogate_db_url }}"
    function: verify_migration_success

- name: Drain the cache invalidation queue, 100 rows a round, for at most 60 seconds
  slogate.supabase.pg_verify_function:
    function: drain_cache_invalidation_queue
    args:
      batch: 100
      max_seconds: 60
  environment:
    SUPABASE_DB_URL: "{{ vault_db_url }}"

- name: Only the RLS check must pass, whatever else the verifier reports
  slogate.supabase.pg_verify_function:
    function: public.verify_final_punchlist_migration
    expect:
      checks:
        - name: rls_enabled
          ok: true
    read_only: true

- name: A function of your own that lists problems must return none
  slogate.supabase.pg_verify_function:
    function: find_tables_without_rls
    expect_rows: 0
"""

RETURN = r"""
ok:
  description: Whether the result passed; null when the function is missing and O(when_missing=skip).
  returned: always
  type: bool
  sample: false
missing:
  description: True when the function does not exist and O(when_missing=skip). (Not called C(skipped), which would
    make Ansible report the task as skipped.)
  returned: always
  type: bool
  sample: false
function:
  description: The function that was called, with its argument types.
  returned: when the function was found
  type: str
  sample: public.drain_cache_invalidation_queue(integer, integer)
shape:
  description: How the result was judged, one of C(boolean), C(json), C(void), C(rows), C(scalar).
  returned: when the function was found
  type: str
  sample: json
result:
  description: The raw result; for a set-returning function, the rows as a list of mappings.
  returned: when the call returned
  type: raw
  sample: {"ok": false, "checks": [{"name": "rls_enabled", "ok": false, "detail": "public.audit_log"}]}
row_count:
  description: Number of rows returned by a set-returning function.
  returned: when the function returns a set of rows
  type: int
  sample: 3
checks:
  description: Every check the result carried.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the check.
      type: str
    ok:
      description: Whether it passed.
      type: bool
    detail:
      description: What the function said about it.
      type: str
failed_checks:
  description: The checks that failed, same form as RV(checks).
  returned: always
  type: list
  elements: dict
reasons:
  description: Why the result did not pass, one line each.
  returned: always
  type: list
  elements: str
  sample: ["1 of 4 checks failed"]
error:
  description: The error the function raised.
  returned: when the function raised
  type: dict
  contains:
    sqlstate:
      description: PostgreSQL error code.
      type: str
      sample: P0001
    message:
      description: The server's message.
      type: str
query:
  description: The call as it was sent to the server.
  returned: when the function was found
  type: str
  sample: SELECT "public"."verify_migration_success"() AS result
queries:
  description: Every statement run, in order, including catalog look-ups.
  returned: always
  type: list
  elements: str
read_only:
  description: Whether the call ran read-only.
  returned: always
  type: bool
committed:
  description: Whether the call's transaction was committed (false in check mode and with O(read_only)).
  returned: always
  type: bool
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.slogate.supabase.plugins.module_utils.errors import (
    ConfigurationError,
    QueryFailure,
    SlogateError,
)
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import (
    jsonable,
    module_connect,
    pg_argument_spec,
    psycopg2,
    sql,
)
from ansible_collections.slogate.supabase.plugins.module_utils.verify import (
    UNSET,
    judge,
    shape_of,
    similar_names,
    summarize,
)

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


def main():
    module = AnsibleModule(
        argument_spec=pg_argument_spec(
            function=dict(type="str", required=True),
            schema=dict(type="str", default="public"),
            args=dict(type="raw", default=[]),
            expect=dict(type="raw"),
            expect_rows=dict(type="int"),
            read_only=dict(type="bool", default=False),
            when_missing=dict(type="str", choices=["fail", "skip"], default="fail"),
        ),
        supports_check_mode=True,
    )
    read_only = module.params["read_only"]
    keep = not (read_only or module.check_mode)
    result = dict(changed=False, ok=False, missing=False, checks=[], failed_checks=[], reasons=[], queries=[],
                  read_only=read_only, committed=False)
    db = None
    try:
        schema, name = split_name(module.params["function"], module.params["schema"])
        args = normalize_args(module.params["args"])
        expect = normalize_expect(module.params["expect"])
        db = module_connect(module)
        with db:
            if module.params["when_missing"] == "skip" and not db.fetch_all(LOOKUP, (schema, name)):
                result.update(ok=None, missing=True, queries=db.queries)
                module.exit_json(msg="%s.%s does not exist (yet): skipped" % (schema, name), **result)
            function, shape = find_function(db, schema, name, args)
            query, values = build_call(schema, name, args, shape)
            result.update(function=function["signature"], shape=shape)
            value, error = call_function(db, query, values, shape, read_only)
            result["query"] = db.queries[-1]
            if error:
                db.rollback()
                result.update(queries=db.queries, error=error, reasons=["raised: %s" % error["message"]])
                module.fail_json(msg="%s raised: %s" % (function["signature"], error["message"]), **result)
            wrote = db.fetch_one(WROTE)["wrote"]
            if keep:
                db.commit()
            else:
                db.rollback()
            verdict = judge(shape, jsonable(value), expect=expect, expect_rows=module.params["expect_rows"])
    except SlogateError as exc:
        result["queries"] = db.queries if db else []
        module.fail_json(msg=str(exc), **result)

    result.update(
        changed=bool(wrote) and not read_only,
        committed=keep,
        ok=verdict.ok,
        result=jsonable(value),
        checks=[dict(name=c.name, ok=c.ok, detail=c.detail) for c in verdict.checks],
        failed_checks=[dict(name=c.name, ok=c.ok, detail=c.detail) for c in verdict.failed_checks],
        reasons=list(verdict.reasons),
        queries=db.queries,
    )
    if shape == "rows":
        result["row_count"] = len(value)
    msg = summarize(function["signature"], verdict)
    if not verdict.ok:
        module.fail_json(msg=msg, **result)
    module.exit_json(msg=msg, **result)


if __name__ == "__main__":
    main()
