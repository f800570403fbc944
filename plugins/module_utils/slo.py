# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SLO rule engine: buckets of samples in, a decision out, with the numbers
that explain it. Pure logic: no Ansible, no database, no clock (``as_of`` is
passed in).

Semantics (pinned in DESIGN.md, "The SLO gate"):

- Buckets are ``[start, start + width)`` on a grid aligned to the Unix epoch.
  The window is every grid bucket with ``start >= since`` and
  ``end <= as_of``; a bucket without data is still in the window.
- A bucket with fewer than ``min_samples`` requests is no data; no data is
  never skipped: it breaks "consecutive".
- ``for: N`` fires when any N consecutive window buckets all breach;
  ``within: [M, N]`` when any N consecutive buckets hold at least M breaches
  (the whole window when it is shorter). A fired rule stays fired.
- ``no_data``: ``ignore`` (does not breach), ``breach``, ``hold`` (unknown).
  A rule that has not fired is held when it would fire if its unknown buckets
  breached, or while the window is shorter than the rule needs.
- The decision is the worst fired action; ``hold`` instead when a held rule's
  action is worse than that.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

ACTIONS = ("pass", "warn", "page", "critical", "rollback")
RULE_ACTIONS = ACTIONS[1:]
OPS = (">", ">=", "<", "<=")
NO_DATA = ("ignore", "breach", "hold")
# Per-bucket metrics; rates are percentages (1 means 1 %).
BUCKET_METRICS = ("p95_ms", "p99_ms", "err_rate", "cache_hit_rate", "requests")
# One value for the whole window, never no data.
WINDOW_METRICS = ("mv_refresh_failures",)
METRICS = BUCKET_METRICS + WINDOW_METRICS
UNITS = {"p95_ms": " ms", "p99_ms": " ms", "err_rate": "%", "cache_hit_rate": "%", "requests": "", "mv_refresh_failures": ""}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
DEFAULT_MIN_SAMPLES = 20


@dataclass(frozen=True)
class Sample:
    """One metric in one bucket: its value (None when unknown) and how many requests it rests on."""

    value: Optional[float]
    samples: int


@dataclass(frozen=True)
class Bucket:
    """The metrics of one bucket ``[start, end)``."""

    start: datetime.datetime
    end: datetime.datetime
    metrics: Dict[str, Sample] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    metric: str
    op: str
    threshold: float
    action: str
    for_buckets: Optional[int] = 1
    within: Optional[Tuple[int, int]] = None
    no_data: str = "hold"
    min_samples: int = DEFAULT_MIN_SAMPLES

    @property
    def id(self):
        return "%s:%s" % (self.action, self.metric)

    @property
    def needs(self):
        """How many buckets the rule looks at together."""
        return self.within[1] if self.within else self.for_buckets


@dataclass(frozen=True)
class BucketVerdict:
    start: datetime.datetime
    end: datetime.datetime
    value: Optional[float]
    samples: int
    breached: Optional[bool]   # None: unknown (no data, held)


@dataclass(frozen=True)
class Evaluation:
    rule: Rule
    status: str                # fired, held, clear
    buckets: Tuple[BucketVerdict, ...]
    fired_buckets: Tuple[BucketVerdict, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    decision: str
    evaluations: Tuple[Evaluation, ...]
    window: Tuple[datetime.datetime, datetime.datetime, int]   # since, as_of, number of buckets
    msg: str

    @property
    def fired(self):
        return tuple(e for e in self.evaluations if e.status == "fired")

    @property
    def held(self):
        return tuple(e for e in self.evaluations if e.status == "held")


def severity(action):
    return ACTIONS.index(action)


# -- rules ------------------------------------------------------------------------------

def parse_rule(raw, position=0):
    """A Rule from a mapping (module option or preset), validated; ConfigurationError names what is wrong."""
    where = "rules[%d]" % position
    if not isinstance(raw, dict):
        raise ConfigurationError("%s must be a mapping with metric, op, threshold and action" % where)
    unknown = sorted(set(raw) - {"metric", "op", "threshold", "action", "for", "within", "no_data", "min_samples"})
    if unknown:
        raise ConfigurationError("%s has unknown keys %s; valid: metric, op, threshold, action, for, within, no_data, "
                                 "min_samples" % (where, ", ".join(unknown)))
    metric = raw.get("metric")
    if metric not in METRICS:
        raise ConfigurationError("%s metric %r is not known; valid metrics: %s" % (where, metric, ", ".join(METRICS)))
    op = raw.get("op")
    if op not in OPS:
        raise ConfigurationError("%s op %r is not known; valid ops: %s" % (where, op, ", ".join(OPS)))
    action = raw.get("action")
    if action not in RULE_ACTIONS:
        raise ConfigurationError("%s action %r is not known; valid actions: %s" % (where, action, ", ".join(RULE_ACTIONS)))
    try:
        threshold = float(raw.get("threshold"))
    except (TypeError, ValueError):
        raise ConfigurationError("%s threshold %r is not a number" % (where, raw.get("threshold")))
    no_data = raw.get("no_data", "hold")
    if no_data not in NO_DATA:
        raise ConfigurationError("%s no_data %r is not known; valid: %s" % (where, no_data, ", ".join(NO_DATA)))
    min_samples = _positive_int(raw.get("min_samples", DEFAULT_MIN_SAMPLES), where + " min_samples", allow_zero=True)
    if raw.get("for") is not None and raw.get("within") is not None:
        raise ConfigurationError("%s sets both for and within; use one" % where)
    within = None
    for_buckets = None
    if raw.get("within") is not None:
        pair = raw["within"]
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigurationError("%s within must be [M, N]: M breaches among N consecutive buckets" % where)
        m, n = (_positive_int(v, where + " within", allow_zero=False) for v in pair)
        if m > n:
            raise ConfigurationError("%s within [%d, %d]: M cannot exceed N" % (where, m, n))
        within = (m, n)
    else:
        for_buckets = _positive_int(raw.get("for", 1), where + " for", allow_zero=False)
    if metric in WINDOW_METRICS and (within or for_buckets != 1):
        raise ConfigurationError("%s %s has one value for the whole window: use for 1" % (where, metric))
    return Rule(metric, op, threshold, action, for_buckets, within, no_data, min_samples)


def _positive_int(value, what, allow_zero):
    if isinstance(value, bool):
        raise ConfigurationError("%s must be a whole number, not %r" % (what, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigurationError("%s must be a whole number, not %r" % (what, value))
    if number != value and not (isinstance(value, str) and str(number) == value.strip()):
        raise ConfigurationError("%s must be a whole number, not %r" % (what, value))
    if number < 0 or (number == 0 and not allow_zero):
        raise ConfigurationError("%s must be %s, not %r" % (what, "0 or more" if allow_zero else "1 or more", value))
    return number


def parse_rules(raw_rules):
    if not isinstance(raw_rules, (list, tuple)) or not raw_rules:
        raise ConfigurationError("rules must be a non-empty list of rules")
    return tuple(parse_rule(raw, position) for position, raw in enumerate(raw_rules))


# The runbook's alert tiers and rollback triggers. "P99 > 1200 ms OR error rate > 2 %" is two rules.
RUNBOOK_RULES = (
    dict(metric="p95_ms", op=">", threshold=600, action="warn", **{"for": 2}),
    dict(metric="p99_ms", op=">", threshold=1200, action="page", **{"for": 2}),
    dict(metric="err_rate", op=">", threshold=2, action="page", **{"for": 2}),
    dict(metric="p99_ms", op=">", threshold=2000, action="critical", **{"for": 1}),
    dict(metric="err_rate", op=">", threshold=5, action="critical", **{"for": 1}),
    dict(metric="err_rate", op=">", threshold=1, action="rollback", **{"for": 2}),
    dict(metric="p99_ms", op=">", threshold=1200, action="rollback", **{"for": 2}),
    dict(metric="cache_hit_rate", op="<", threshold=20, action="rollback", **{"for": 2}),
    dict(metric="mv_refresh_failures", op=">", threshold=2, action="rollback", **{"for": 1}),
)
# The runbook's success criteria, as rules that fail a smoke or load test.
SUCCESS_RULES = (
    dict(metric="p95_ms", op=">=", threshold=500, action="critical", **{"for": 1}),
    dict(metric="p99_ms", op=">=", threshold=1000, action="critical", **{"for": 1}),
    dict(metric="err_rate", op=">=", threshold=1, action="critical", **{"for": 1}),
    dict(metric="cache_hit_rate", op="<", threshold=30, action="critical", **{"for": 1}),
)
PRESETS = {"runbook": RUNBOOK_RULES, "success_criteria": SUCCESS_RULES}


def preset(name):
    if name not in PRESETS:
        raise ConfigurationError("preset %r is not known; valid presets: %s" % (name, ", ".join(sorted(PRESETS))))
    return parse_rules(PRESETS[name])


# -- the window -----------------------------------------------------------------------------

def grid_start(moment, width):
    """The start of the grid bucket that contains ``moment``."""
    seconds = (moment - EPOCH).total_seconds()
    return EPOCH + datetime.timedelta(seconds=(seconds // width) * width)


def window_grid(since, as_of, width):
    """(start, end) of every grid bucket with start >= since and end <= as_of."""
    if width <= 0:
        raise ConfigurationError("bucket width must be positive, got %r seconds" % width)
    start = grid_start(since, width)
    if start < since:
        start += datetime.timedelta(seconds=width)
    step = datetime.timedelta(seconds=width)
    grid = []
    while start + step <= as_of:
        grid.append((start, start + step))
        start += step
    return grid


# -- evaluation ----------------------------------------------------------------------------------

def compare(value, op, threshold):
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    return value <= threshold


def bucket_verdicts(rule, grid, buckets_by_start):
    verdicts = []
    for start, end in grid:
        bucket = buckets_by_start.get(start)
        sample = bucket.metrics.get(rule.metric) if bucket else None
        value = sample.value if sample else None
        samples = sample.samples if sample else 0
        if value is None or samples < rule.min_samples:
            breached = {"ignore": False, "breach": True, "hold": None}[rule.no_data]
        else:
            breached = compare(value, rule.op, rule.threshold)
        verdicts.append(BucketVerdict(start, end, value, samples, breached))
    return tuple(verdicts)


def _runs(verdicts, length):
    """Every run of ``length`` consecutive verdicts (the whole list when it is shorter)."""
    if len(verdicts) <= length:
        return [verdicts] if verdicts else []
    return [verdicts[i:i + length] for i in range(len(verdicts) - length + 1)]


def evaluate_rule(rule, grid, buckets_by_start, window_values):
    if rule.metric in WINDOW_METRICS:
        value = window_values.get(rule.metric, 0)
        verdict = BucketVerdict(grid[0][0] if grid else None, grid[-1][1] if grid else None, value, 1,
                                compare(value, rule.op, rule.threshold))
        status = "fired" if verdict.breached else "clear"
        return Evaluation(rule, status, (verdict,), (verdict,) if verdict.breached else ())
    verdicts = bucket_verdicts(rule, grid, buckets_by_start)
    needed = rule.within[0] if rule.within else rule.for_buckets
    for run in _runs(verdicts, rule.needs):
        breaches = [v for v in run if v.breached is True]
        if len(breaches) >= needed and (rule.within or len(run) == rule.needs):
            return Evaluation(rule, "fired", verdicts, tuple(breaches[:needed] if rule.within else run))
    if len(verdicts) < rule.needs:
        return Evaluation(rule, "held", verdicts, reason="%d of the %d buckets it needs are complete" % (
            len(verdicts), rule.needs))
    for run in _runs(verdicts, rule.needs):
        possible = [v for v in run if v.breached is not False]
        if len(possible) >= needed and any(v.breached is None for v in run):
            thin = [v for v in run if v.breached is None]
            return Evaluation(rule, "held", verdicts, reason="not enough data in %s" % _bucket_list(thin))
    return Evaluation(rule, "clear", verdicts)


def evaluate(rules, buckets, since, as_of, width, window_values=None, grid=None):
    """Evaluate ``rules`` over the window [since, as_of]; return a Decision.

    ``grid`` replaces the epoch grid of ``width`` for a source whose buckets are
    its own, such as a load test's summary: one bucket for the whole run.
    """
    grid = window_grid(since, as_of, width) if grid is None else list(grid)
    by_start = {b.start: b for b in buckets}
    evaluations = tuple(evaluate_rule(rule, grid, by_start, window_values or {}) for rule in rules)
    fired = [e for e in evaluations if e.status == "fired"]
    held = [e for e in evaluations if e.status == "held"]
    worst_fired = max((severity(e.rule.action) for e in fired), default=0)
    worst_held = max((severity(e.rule.action) for e in held), default=0)
    decision = "hold" if worst_held > worst_fired else ACTIONS[worst_fired]
    result = Decision(decision, evaluations, (since, as_of, len(grid)), "")
    return Decision(decision, evaluations, (since, as_of, len(grid)), explain(result))


# -- explaining ------------------------------------------------------------------------------------

def format_value(metric, value):
    if value is None:
        return "no data"
    unit = UNITS.get(metric, "")
    if unit == " ms":
        return "%d ms" % round(value)
    if unit == "%":
        return "%s%%" % _trim(round(value, 2))
    return _trim(value)


def _trim(number):
    text = ("%.2f" % number).rstrip("0").rstrip(".")
    return text if text else "0"


def _and_list(items):
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return "%s and %s" % (", ".join(items[:-1]), items[-1])


def clock(verdict):
    """HH:MM for buckets of whole minutes, else HH:MM:SS (demo buckets of 10 s)."""
    whole_minutes = verdict.end is not None and (verdict.end - verdict.start).total_seconds() % 60 == 0
    return verdict.start.strftime("%H:%M" if whole_minutes else "%H:%M:%S")


def _bucket_list(verdicts):
    return "%s (%s requests)" % (", ".join(clock(v) for v in verdicts), _and_list(str(v.samples) for v in verdicts))


def describe(evaluation):
    """One line for a fired rule: values, threshold, buckets and samples."""
    rule = evaluation.rule
    hits = evaluation.fired_buckets
    if rule.metric in WINDOW_METRICS:
        value = format_value(rule.metric, hits[0].value)
        threshold = format_value(rule.metric, rule.threshold)
        return "%s: %s %s %s %s since the deploy" % (rule.action, rule.metric, value, rule.op, threshold)
    values = _and_list(format_value(rule.metric, v.value) for v in hits)
    span = ("for %d consecutive buckets" % rule.for_buckets if rule.for_buckets and rule.for_buckets > 1
            else "in %d of %d buckets" % rule.within if rule.within else "in a bucket")
    return "%s: %s %s %s %s %s (%s; %s requests)" % (
        rule.action, rule.metric, values, rule.op, format_value(rule.metric, rule.threshold), span,
        ", ".join(clock(v) for v in hits), _and_list(str(v.samples) for v in hits))


def explain(decision):
    fired = sorted(decision.fired, key=lambda e: -severity(e.rule.action))
    since, as_of, count = decision.window
    if decision.decision == "hold":
        worst = max(decision.held, key=lambda e: severity(e.rule.action))
        return "hold: %s cannot be decided yet: %s" % (worst.rule.id, worst.reason)
    if not fired:
        return "pass: %d rules over %d complete buckets, none fired" % (len(decision.evaluations), count)
    more = " (+%d more fired)" % (len(fired) - 1) if len(fired) > 1 else ""
    return describe(fired[0]) + more


# -- inputs ---------------------------------------------------------------------------------------

def parse_time(text, what):
    """An aware datetime from ISO 8601 text (a naive one is taken as UTC) or Unix seconds."""
    if isinstance(text, datetime.datetime):
        moment = text
    else:
        value = str(text).strip()
        try:
            moment = datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc)
        except ValueError:
            try:
                moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
            except ValueError:
                raise ConfigurationError("%s=%r is not a time: use ISO 8601 (2026-11-26T12:05:00Z) or Unix seconds" % (
                    what, value))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def buckets_from_rows(rows, width):
    """Buckets from rows of (bucket start, requests, err_rate, p95_ms, p99_ms, cache_hit_rate)."""
    result = []
    step = datetime.timedelta(seconds=width)
    for row in rows:
        start = row["bucket"] if row["bucket"].tzinfo else row["bucket"].replace(tzinfo=datetime.timezone.utc)
        requests = int(row["requests"])
        metrics = {"requests": Sample(float(requests), requests)}
        for metric in ("err_rate", "p95_ms", "p99_ms", "cache_hit_rate"):
            metrics[metric] = Sample(None if row[metric] is None else float(row[metric]), requests)
        result.append(Bucket(start, start + step, metrics))
    return result


def buckets_from_metric_rows(rows, width):
    """Buckets from long rows of (bucket start, metric, value, samples), as a user's own query returns them.

    Each row is one metric of one bucket; the bucket must be on the epoch grid of ``width``.
    """
    by_start = {}
    step = datetime.timedelta(seconds=width)
    for number, row in enumerate(rows, 1):
        missing = [column for column in ("bucket", "metric", "value", "samples") if column not in row]
        if missing:
            raise ConfigurationError("query row %d has no column %s; return bucket, metric, value, samples" % (
                number, ", ".join(missing)))
        start = row["bucket"]
        if not isinstance(start, datetime.datetime):
            raise ConfigurationError("query row %d: bucket %r is not a timestamp; return timestamptz" % (number, start))
        start = start if start.tzinfo else start.replace(tzinfo=datetime.timezone.utc)
        if grid_start(start, width) != start:
            raise ConfigurationError("query row %d: bucket %s is not on the %d-second grid; use date_bin(make_interval("
                                     "secs => %d), created_at, '1970-01-01 00:00+00')" % (number, start.isoformat(), width, width))
        metric = row["metric"]
        if metric not in BUCKET_METRICS:
            raise ConfigurationError("query row %d: metric %r is not known; valid metrics: %s" % (
                number, metric, ", ".join(BUCKET_METRICS)))
        samples = row["samples"]
        if samples is None or int(samples) < 0:
            raise ConfigurationError("query row %d: samples %r must be a count of 0 or more" % (number, samples))
        bucket = by_start.setdefault(start, Bucket(start, start + step, {}))
        bucket.metrics[metric] = Sample(None if row["value"] is None else float(row["value"]), int(samples))
    return [by_start[start] for start in sorted(by_start)]


def to_dict(decision, width):
    """The Decision as plain data for a module result."""
    def verdict(v):
        return dict(start=v.start.isoformat() if v.start else None, end=v.end.isoformat() if v.end else None,
                    value=v.value, samples=v.samples, breached=v.breached)

    def rule_dict(rule):
        return {"id": rule.id, "metric": rule.metric, "op": rule.op, "threshold": rule.threshold, "action": rule.action,
                "for": rule.for_buckets, "within": list(rule.within) if rule.within else None,
                "no_data": rule.no_data, "min_samples": rule.min_samples}

    since, as_of, count = decision.window
    evaluations = [dict(rule_dict(e.rule), status=e.status, reason=e.reason, buckets=[verdict(v) for v in e.buckets])
                   for e in decision.evaluations]
    fired = [dict(rule_dict(e.rule), message=describe(e), buckets=[verdict(v) for v in e.fired_buckets])
             for e in decision.fired]
    return dict(decision=decision.decision, msg=decision.msg, fired=fired, evaluations=evaluations,
                window=dict(since=since.isoformat(), as_of=as_of.isoformat(), bucket_seconds=width, buckets=count))
