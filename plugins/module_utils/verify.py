# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judging the result of a verification function: pure logic, no driver, no Ansible.

A verification function answers in one of five shapes:

- ``boolean``: true passes;
- ``json``: ``{"ok": bool, "checks": [{"name", "ok", "detail"}]}`` passes when ok is true;
- ``void``: passes unless it raises (raising is handled by the caller);
- ``rows``: a set of rows; rows with an ``ok`` column are checks, each must be true;
- ``scalar``: any other value, judged only against ``expect``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import json
from dataclasses import dataclass
from typing import Tuple

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

SHAPES = ("boolean", "json", "void", "rows", "scalar")

UNSET = object()


@dataclass(frozen=True)
class Check:
    """One named check inside a result, as the kit's verifiers report them."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    """Whether a result passes, and every reason it does not."""

    ok: bool
    shape: str
    checks: Tuple[Check, ...] = ()
    failed_checks: Tuple[Check, ...] = ()
    reasons: Tuple[str, ...] = ()


def shape_of(return_type, returns_set):
    """Map a function's declared return type to the shape it is judged by."""
    if returns_set or return_type == "record":
        return "rows"
    if return_type == "boolean":
        return "boolean"
    if return_type in ("json", "jsonb"):
        return "json"
    if return_type == "void":
        return "void"
    return "scalar"


def check_from_mapping(item, position):
    """A Check from one element of a ``checks`` array or one result row."""
    name = item.get("name", item.get("check", "check #%d" % (position + 1)))
    detail = item.get("detail", item.get("message", ""))
    return Check(str(name), item.get("ok") is True, "" if detail is None else str(detail))


def checks_in(shape, value):
    """The checks a result carries, as a tuple of Check (empty when it has none)."""
    if shape == "json" and isinstance(value, dict) and isinstance(value.get("checks"), list):
        return tuple(check_from_mapping(item if isinstance(item, dict) else {"name": str(item)}, i)
                     for i, item in enumerate(value["checks"]))
    if shape == "rows" and value and all(isinstance(row, dict) and "ok" in row for row in value):
        return tuple(check_from_mapping(row, i) for i, row in enumerate(value))
    return ()


def strict_equal(expected, actual):
    """Equality that does not take True for 1 or 0 for False."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def first_mismatch(expected, actual, path="$"):
    """Where ``actual`` fails to contain ``expected`` (jsonb ``@>`` semantics), or None.

    Objects: every expected key is present and contains its value. Arrays:
    every expected element is contained by some actual element. Scalars: equal.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return "%s: expected an object, got %s" % (path, _brief(actual))
        for key, value in expected.items():
            if key not in actual:
                return "%s.%s: missing" % (path, key)
            where = first_mismatch(value, actual[key], "%s.%s" % (path, key))
            if where:
                return where
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return "%s: expected an array, got %s" % (path, _brief(actual))
        for element in expected:
            if not any(first_mismatch(element, candidate) is None for candidate in actual):
                return "%s: no element contains %s" % (path, _brief(element))
        return None
    if not strict_equal(expected, actual):
        return "%s: expected %s, got %s" % (path, _brief(expected), _brief(actual))
    return None


def contains(expected, actual):
    return first_mismatch(expected, actual) is None


def _brief(value, limit=80):
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def judge(shape, value, expect=UNSET, expect_rows=None):
    """Decide whether a verification result passes.

    ``value`` is the returned value (a list of row mappings for ``rows``).
    ``expect`` replaces the shape's default rule when given; ``expect_rows``
    (rows only) adds an exact row count. Raises ConfigurationError when an
    expectation cannot apply to the shape.
    """
    if shape not in SHAPES:
        raise ConfigurationError("unknown result shape %r; expected one of %s" % (shape, ", ".join(SHAPES)))
    if expect_rows is not None and shape != "rows":
        raise ConfigurationError("expect_rows applies to set-returning functions; this one returns a single %s" % shape)
    if expect is not UNSET and shape == "void":
        raise ConfigurationError("expect does not apply to a void function: it passes unless it raises")
    if isinstance(expect, (dict, list)) and shape not in ("json", "rows"):
        raise ConfigurationError("expect as a mapping or list needs a json(b) or set-returning function; this one returns %s" % shape)

    checks = checks_in(shape, value)
    failed = tuple(check for check in checks if not check.ok)
    reasons = []

    if shape == "boolean":
        wanted = True if expect is UNSET else expect
        if value is None:
            reasons.append("returned NULL")
        elif not strict_equal(wanted, value):
            reasons.append("returned %s, expected %s" % (_brief(value), _brief(wanted)))
    elif shape == "json":
        reasons.extend(_judge_json(value, checks, failed, expect))
    elif shape == "rows":
        reasons.extend(_judge_rows(value, checks, failed, expect, expect_rows))
    elif shape == "scalar" and expect is not UNSET and not strict_equal(expect, value):
        reasons.append("returned %s, expected %s" % (_brief(value), _brief(expect)))

    if expect is not UNSET and not reasons:
        failed = ()  # the user's expectation replaced the default rule, and it held
    return Verdict(not reasons, shape, checks, failed, tuple(reasons))


def _judge_json(value, checks, failed, expect):
    has_ok = isinstance(value, dict) and "ok" in value
    if expect is UNSET or isinstance(expect, bool):
        wanted = True if expect is UNSET else expect
        if value is None:
            return ["returned NULL"]
        if has_ok:
            overall = value["ok"] is True
        elif checks:
            overall = not failed
        elif isinstance(value, bool):
            overall = value
        elif expect is UNSET:
            return []  # plain data, nothing to judge by
        else:
            return ["has no ok field or checks to compare with expect=%s" % _brief(expect)]
        if overall != wanted:
            if failed and wanted:
                return ["%d of %d checks failed" % (len(failed), len(checks))]
            return ["ok is %s, expected %s" % (_brief(overall), _brief(wanted))]
        return []
    where = first_mismatch(expect, value)
    return ["result does not contain expect (%s)" % where] if where else []


def _judge_rows(rows, checks, failed, expect, expect_rows):
    reasons = []
    if expect is UNSET:
        if failed:
            reasons.append("%d of %d checks failed" % (len(failed), len(checks)))
    elif isinstance(expect, bool):
        if not checks:
            raise ConfigurationError("expect: true/false needs rows with an ok column to judge")
        if (not failed) != expect:
            reasons.append("all checks ok is %s, expected %s" % (_brief(not failed), _brief(expect)))
    else:
        where = first_mismatch(expect if isinstance(expect, list) else [expect], list(rows))
        if where:
            reasons.append("rows do not contain expect (%s)" % where)
    if expect_rows is not None and len(rows) != expect_rows:
        reasons.append("returned %d rows, expected %d" % (len(rows), expect_rows))
    return reasons


def similar_names(wanted, candidates, limit=5):
    """Names close to ``wanted``: spelling neighbours first, then names containing it."""
    unique = sorted(set(candidates))
    close = difflib.get_close_matches(wanted, unique, n=limit, cutoff=0.6)
    bare = wanted.split(".")[-1].lower()
    containing = [name for name in unique if bare and bare in name.lower() and name not in close]
    return (close + containing)[:limit]


def summarize(label, verdict):
    """One line: which function, pass or fail, and every failed check by name and detail."""
    if verdict.ok:
        if verdict.checks:
            return "%s passed: %d checks ok" % (label, len(verdict.checks))
        return "%s passed" % label
    parts = ["%s failed: %s" % (label, "; ".join(verdict.reasons))]
    if verdict.failed_checks:
        parts.append("failed checks: " + "; ".join(
            "%s (%s)" % (check.name, check.detail) if check.detail else check.name
            for check in verdict.failed_checks))
    return " - ".join(parts)
