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
  - slogate.supabase.in_worker
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.slogate.supabase.plugins.module_utils.errors import SlogateError
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import jsonable, module_connect, pg_argument_spec
from ansible_collections.slogate.supabase.plugins.module_utils.verify import judge, summarize
from ansible_collections.slogate.supabase.plugins.module_utils.verify_call import (
    LOOKUP,
    WROTE,
    build_call,
    call_function,
    find_function,
    normalize_args,
    normalize_expect,
    split_name,
)


def module_kwargs():
    """AnsibleModule's arguments, for the module and for its run in the Ansible worker (the action plugin)."""
    return dict(argument_spec=pg_argument_spec(
        function=dict(type="str", required=True),
        schema=dict(type="str", default="public"),
        args=dict(type="raw", default=[]),
        expect=dict(type="raw"),
        expect_rows=dict(type="int"),
        read_only=dict(type="bool", default=False),
        when_missing=dict(type="str", choices=["fail", "skip"], default="fail"),
    ), supports_check_mode=True)


def run_task(module):
    """The whole task on an AnsibleModule or the worker's stand-in; ends with exit_json or fail_json."""
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


def main():
    run_task(AnsibleModule(**module_kwargs()))


if __name__ == "__main__":
    main()
