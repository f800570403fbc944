import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils import slo
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

T0 = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.timezone.utc)
WIDTH = 300


def at(index):
    return T0 + datetime.timedelta(seconds=WIDTH * index)


def buckets(values, metric="err_rate", samples=800):
    """One bucket per value (None: no bucket at all); samples may be a list."""
    counts = samples if isinstance(samples, list) else [samples] * len(values)
    return [slo.Bucket(at(i), at(i + 1), {metric: slo.Sample(v, n)}) for i, (v, n) in enumerate(zip(values, counts))
            if v is not None]


def rule(**overrides):
    raw = dict(metric="err_rate", op=">", threshold=1, action="rollback", **{"for": 2})
    raw.update(overrides)
    return slo.parse_rule(raw)


def decide(rules, values, samples=800, n_buckets=None, metric="err_rate", window_values=None):
    n_buckets = len(values) if n_buckets is None else n_buckets
    return slo.evaluate(rules, buckets(values, metric, samples), T0, at(n_buckets), WIDTH, window_values)


CASES = {  # name: (rule overrides, err_rate per bucket, expected decision)
    "all under": ({}, [0.2, 0.3, 0.1], "pass"),
    "one spike": ({}, [0.2, 3.0, 0.1], "pass"),
    "two in a row": ({}, [0.2, 3.0, 3.5], "rollback"),
    "two apart": ({}, [3.0, 0.2, 3.5], "pass"),
    "fired stays fired after recovery": ({}, [3.0, 3.5, 0.1, 0.1], "rollback"),
    "exactly at threshold is not above": ({}, [1.0, 1.0], "pass"),
    "inclusive op at threshold": ({"op": ">="}, [1.0, 1.0], "rollback"),
    "strict less": ({"op": "<", "threshold": 20}, [20.0, 20.0], "pass"),
    "inclusive less": ({"op": "<=", "threshold": 20}, [20.0, 19.0], "rollback"),
    "window shorter than for": ({}, [3.0], "hold"),
    "empty window": ({}, [], "hold"),
    "for 1": ({"for": 1}, [0.1, 3.0], "rollback"),
    "2 of 3 within": ({"for": None, "within": [2, 3]}, [3.0, 0.1, 3.0], "rollback"),
    "1 of 3 within": ({"for": None, "within": [2, 3]}, [3.0, 0.1, 0.1, 0.1], "pass"),
    "within on a short window fires on the whole window": ({"for": None, "within": [2, 5]}, [3.0, 3.0], "rollback"),
    "within on a short window holds": ({"for": None, "within": [2, 5]}, [3.0, 0.1], "hold"),
}


@pytest.mark.parametrize("overrides, values, expected", list(CASES.values()), ids=list(CASES))
def test_decision(overrides, values, expected):
    assert decide([rule(**overrides)], values).decision == expected


NO_DATA = {  # policy: (err_rate per bucket with None as a missing bucket, expected)
    ("hold", (3.0, None)): "hold",
    ("breach", (3.0, None)): "rollback",
    ("ignore", (3.0, None)): "pass",
    ("hold", (None, 0.1, 0.1)): "pass",          # the unknown bucket cannot make two in a row any more
    ("hold", (3.0, None, 3.0)): "hold",
    ("ignore", (3.0, None, 3.0)): "pass",        # a gap breaks "consecutive"
}


@pytest.mark.parametrize("policy, values", list(NO_DATA), ids=["%s %s" % key for key in NO_DATA])
def test_no_data_policy(policy, values):
    assert decide([rule(no_data=policy)], list(values)).decision == NO_DATA[(policy, values)]


def test_min_samples_boundary():
    assert decide([rule(min_samples=20)], [3.0, 3.0], samples=[20, 20]).decision == "rollback"
    assert decide([rule(min_samples=20)], [3.0, 3.0], samples=[20, 19]).decision == "hold"
    assert decide([rule(min_samples=20, no_data="ignore")], [3.0, 3.0], samples=[19, 20]).decision == "pass"


def test_window_metric_is_one_value_for_the_window():
    failures = slo.parse_rule(dict(metric="mv_refresh_failures", op=">", threshold=2, action="rollback"))
    assert decide([failures], [], window_values={"mv_refresh_failures": 3}).decision == "rollback"
    assert decide([failures], [], window_values={"mv_refresh_failures": 2}).decision == "pass"


def test_worst_action_wins_and_hold_only_when_worse():
    warn = rule(action="warn", **{"for": 1})
    rollback = rule(action="rollback", **{"for": 3})
    assert decide([warn, rollback], [3.0, 3.0]).decision == "hold"          # rollback may still fire
    assert decide([warn, rollback], [3.0, 3.0, 3.0]).decision == "rollback"
    critical = rule(action="critical", **{"for": 1})
    page_held = rule(action="page", **{"for": 5})
    assert decide([critical, page_held], [3.0]).decision == "critical"     # a held page is not worse


def test_message_names_values_buckets_and_samples():
    decision = decide([rule()], [0.2, 3.4, 3.1], samples=[800, 812, 790])
    assert decision.msg == "rollback: err_rate 3.4% and 3.1% > 1% for 2 consecutive buckets (12:05, 12:10; 812 and 790 requests)"


def test_message_for_ten_second_buckets_shows_seconds():
    start = T0 + datetime.timedelta(seconds=10)
    data = [slo.Bucket(start + datetime.timedelta(seconds=10 * i), start + datetime.timedelta(seconds=10 * (i + 1)),
                       {"p99_ms": slo.Sample(1500.0, 40)}) for i in range(2)]
    decision = slo.evaluate([rule(metric="p99_ms", threshold=1200)], data, T0, T0 + datetime.timedelta(seconds=30), 10)
    assert decision.msg == "rollback: p99_ms 1500 ms and 1500 ms > 1200 ms for 2 consecutive buckets (12:00:10, 12:00:20; 40 and 40 requests)"


def test_hold_message_names_the_thin_bucket():
    decision = decide([rule()], [3.0, 3.0], samples=[800, 5])
    assert decision.msg == "hold: rollback:err_rate cannot be decided yet: not enough data in 12:05 (5 requests)"


def test_pass_message():
    assert decide([rule()], [0.1, 0.1]).msg == "pass: 1 rules over 2 complete buckets, none fired"


def test_explicit_grid_judges_a_whole_run_as_one_bucket():
    run_end = T0 + datetime.timedelta(seconds=137)   # a load test's length, not on any grid
    run = slo.Bucket(T0, run_end, {"p95_ms": slo.Sample(640.0, 5000)})
    rules = [rule(metric="p95_ms", threshold=500, **{"for": 1})]
    decision = slo.evaluate(rules, [run], T0, run_end, 137, grid=[(T0, run_end)])
    assert decision.decision == "rollback" and decision.window[2] == 1
    assert decision.evaluations[0].fired_buckets[0].value == 640.0
    assert slo.evaluate(rules, [run], T0, run_end, 300).decision == "hold"   # on the 5-minute grid the run is no bucket


def test_window_grid_bounds():
    since = T0 + datetime.timedelta(seconds=1)   # the bucket containing the deploy does not count
    grid = slo.window_grid(since, at(3) + datetime.timedelta(seconds=299), WIDTH)
    assert grid == [(at(1), at(2)), (at(2), at(3))]   # the current, incomplete bucket neither
    assert slo.window_grid(T0, at(1), WIDTH) == [(at(0), at(1))]  # a bucket starting at the deploy counts


@pytest.mark.parametrize("raw, message", [
    (dict(metric="latency", op=">", threshold=1, action="warn"), "metric 'latency' is not known; valid metrics: p95_ms"),
    (dict(metric="p95_ms", op="=>", threshold=1, action="warn"), "op '=>' is not known; valid ops: >, >=, <, <="),
    (dict(metric="p95_ms", op=">", threshold="fast", action="warn"), "threshold 'fast' is not a number"),
    (dict(metric="p95_ms", op=">", threshold=1, action="panic"), "action 'panic' is not known"),
    (dict(metric="p95_ms", op=">", threshold=1, action="warn", within=[3, 2]), "M cannot exceed N"),
    (dict(metric="p95_ms", op=">", threshold=1, action="warn", within=[1, 2], **{"for": 2}), "sets both for and within"),
    (dict(metric="p95_ms", op=">", threshold=1, action="warn", **{"for": 0}), "for must be 1 or more"),
    (dict(metric="p95_ms", op=">", threshold=1, action="warn", colour="red"), "unknown keys colour"),
    (dict(metric="mv_refresh_failures", op=">", threshold=2, action="rollback", **{"for": 2}), "use for 1"),
])
def test_bad_rules_are_named(raw, message):
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("(", r"\(")):
        slo.parse_rule(raw)


def test_runbook_preset():
    rules = slo.preset("runbook")
    assert [r.id for r in rules] == ["warn:p95_ms", "page:p99_ms", "page:err_rate", "critical:p99_ms", "critical:err_rate",
                                     "rollback:err_rate", "rollback:p99_ms", "rollback:cache_hit_rate",
                                     "rollback:mv_refresh_failures"]
    with pytest.raises(ConfigurationError, match="preset 'nope' is not known; valid presets: runbook, success_criteria"):
        slo.preset("nope")


RATES = st.lists(st.one_of(st.none(), st.floats(0, 100)), max_size=8)
RULES = st.builds(lambda t, n, a, nd: rule(threshold=t, action=a, no_data=nd, **{"for": n}),
                  st.floats(0, 100), st.integers(1, 4), st.sampled_from(slo.RULE_ACTIONS), st.sampled_from(slo.NO_DATA))


@settings(max_examples=200)
@given(st.lists(RULES, min_size=1, max_size=4), RATES)
def test_decision_is_the_worst_fired_action_unless_held(rules, values):
    decision = decide(rules, values)
    fired = [slo.severity(e.rule.action) for e in decision.evaluations if e.status == "fired"]
    held = [slo.severity(e.rule.action) for e in decision.evaluations if e.status == "held"]
    worst = max(fired, default=0)
    assert decision.decision == ("hold" if max(held, default=0) > worst else slo.ACTIONS[worst])


@given(st.lists(RULES, min_size=1, max_size=4), RATES)
def test_engine_is_deterministic(rules, values):
    assert decide(rules, values) == decide(rules, values)


@settings(max_examples=200)
@given(st.lists(RULES, min_size=1, max_size=4), st.lists(st.floats(0, 100), max_size=6))
def test_adding_a_healthy_bucket_never_raises_the_decision(rules, values):
    before = decide(rules, values)
    after = decide(rules, values + [0.0])   # 0 % errors breaches no "> threshold >= 0" rule
    assert {e.rule.id for e in after.fired} == {e.rule.id for e in before.fired}   # nothing new fires, nothing unfires
    if before.decision != "hold":
        assert after.decision == before.decision


@given(st.lists(st.floats(0, 1e4), min_size=1, max_size=8))
def test_threshold_at_max_never_fires(values):
    strict = slo.parse_rule(dict(metric="p95_ms", op=">", threshold=max(values), action="rollback"))
    assert decide([strict], values, metric="p95_ms").decision == "pass"


def test_metric_rows_group_into_buckets():
    rows = [dict(bucket=at(1), metric="p95_ms", value=410, samples=90),
            dict(bucket=at(0).replace(tzinfo=None), metric="err_rate", value=None, samples=0),
            dict(bucket=at(1), metric="err_rate", value=0.5, samples=90)]
    result = slo.buckets_from_metric_rows(rows, WIDTH)
    assert [(b.start, b.end) for b in result] == [(at(0), at(1)), (at(1), at(2))]
    assert result[0].metrics == {"err_rate": slo.Sample(None, 0)}
    assert result[1].metrics == {"p95_ms": slo.Sample(410.0, 90), "err_rate": slo.Sample(0.5, 90)}


def test_metric_rows_need_a_count():
    with pytest.raises(ConfigurationError, match="query row 1: samples -1 must be a count of 0 or more"):
        slo.buckets_from_metric_rows([dict(bucket=at(0), metric="p95_ms", value=1, samples=-1)], WIDTH)
