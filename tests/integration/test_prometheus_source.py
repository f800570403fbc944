"""The Prometheus source of the SLO gate against a real Prometheus (Debian's 2.42).

The server holds the known traffic of prometheus_server.default_scenario():
one-minute buckets of job "aligned" (scrapes on the grid: Prometheus's counts
are exact) and job "offset" (scrapes 2 s after the grid: Prometheus
extrapolates). The tests query it over HTTP exactly as slo_check does, with
range_query_params and DEFAULT_QUERIES, and check the buckets and the decision.
"""

import datetime
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ansible_collections.slogate.supabase.plugins.module_utils import prometheus as source
from ansible_collections.slogate.supabase.plugins.module_utils import slo
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError
from prometheus_server import PrometheusServer, default_scenario

WIDTH = 60
ERROR_BUCKETS = (20, 21)
QUIET_BUCKET = 25


@pytest.fixture(scope="session", name="prometheus")
def prometheus_fixture():
    """A private Prometheus loaded with the default scenario (its .scenario), stopped at the end of the session."""
    basedir = Path(tempfile.mkdtemp(prefix="slogate-prom-"))
    server = PrometheusServer(basedir)
    try:
        server.load_scenario(default_scenario()).start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(basedir, ignore_errors=True)


def moment(scenario, bucket, seconds=0):
    """The start of a scenario bucket (plus seconds), as an aware datetime."""
    return datetime.datetime.fromtimestamp(scenario.bucket_start(bucket) + seconds, datetime.timezone.utc)


def ask(url, params):
    """GET a range query; the parsed answer, also for Prometheus's 4xx error answers."""
    try:
        with urllib.request.urlopen(source.query_url(url, params), timeout=10) as answer:
            body = answer.read()
    except urllib.error.HTTPError as failure:
        body = failure.read()
    return source.parse_response(params["query"], body)


def fetch(server, since, as_of, selector=None, overrides=None):
    """{query name: answer} of every query over the window, as slo_check asks them."""
    answers = {}
    for name, query in source.render_queries(WIDTH, overrides, selector).items():
        params = source.range_query_params(query, since, as_of, WIDTH)
        answers[name] = ask(server.url, params)
    return answers


def index_of(scenario, bucket):
    return int((bucket.start - moment(scenario, 0)).total_seconds()) // WIDTH


def test_aligned_scrapes_give_the_exact_traffic_of_every_bucket(prometheus):
    server, scenario = prometheus, prometheus.scenario
    answers = fetch(server, moment(scenario, 1), moment(scenario, 30), selector='job="aligned"')
    buckets = source.buckets_from_responses(answers, WIDTH)
    assert [index_of(scenario, b) for b in buckets] == list(range(1, 30))
    for bucket in buckets:
        index = index_of(scenario, bucket)
        expected = scenario.expected("aligned", index)
        got = {name: sample.value for name, sample in bucket.metrics.items()}
        assert {name: sample.samples for name, sample in bucket.metrics.items()} == dict.fromkeys(got, expected["requests"])
        assert got["requests"] == expected["requests"]
        assert got["err_rate"] == expected["err_rate"]
        assert got["cache_hit_rate"] == expected["cache_hit_rate"]
        for metric in ("p95_ms", "p99_ms"):
            assert got[metric] == (None if expected[metric] is None else pytest.approx(expected[metric], abs=1e-5))
    quiet = buckets[QUIET_BUCKET - 1]
    assert {name: sample.value for name, sample in quiet.metrics.items()} == {
        "requests": 0.0, "err_rate": None, "cache_hit_rate": None, "p95_ms": None, "p99_ms": None}
    assert [b.metrics["err_rate"].value for b in buckets if index_of(scenario, b) in ERROR_BUCKETS] == [5.0, 5.0]


def test_an_empty_error_series_is_zero_errors_not_no_data(prometheus):
    server, scenario = prometheus, prometheus.scenario
    answers = fetch(server, moment(scenario, 2), moment(scenario, 18), selector='job="aligned"')
    assert answers["errors"]["data"]["result"] == []      # no 5xx series exists before bucket 20
    buckets = source.buckets_from_responses(answers, WIDTH)
    assert len(buckets) == 16
    assert all(b.metrics["err_rate"] == slo.Sample(0.0, b.metrics["requests"].samples) for b in buckets)
    assert all(b.metrics["requests"].samples >= 600 for b in buckets)


def test_a_healthy_window_passes(prometheus):
    server, scenario = prometheus, prometheus.scenario
    since, as_of = moment(scenario, 2), moment(scenario, 18, 30)   # as_of inside bucket 18: it does not count
    buckets = source.buckets_from_responses(fetch(server, since, as_of, selector='job="aligned"'), WIDTH)
    decision = slo.evaluate(slo.preset("runbook"), buckets, since, as_of, WIDTH)
    assert (decision.decision, decision.window[2]) == ("pass", 16), decision.msg


def test_two_buckets_of_5_percent_errors_roll_back(prometheus):
    server, scenario = prometheus, prometheus.scenario
    since, as_of = moment(scenario, 18), moment(scenario, 30)
    buckets = source.buckets_from_responses(fetch(server, since, as_of, selector='job="aligned"'), WIDTH)
    decision = slo.evaluate(slo.preset("runbook"), buckets, since, as_of, WIDTH)
    assert decision.decision == "rollback", decision.msg
    fired = {e.rule.id: e for e in decision.fired}
    assert sorted(fired) == ["page:err_rate", "rollback:err_rate", "warn:p95_ms"]   # 5 % is not > 5 %: no critical
    hits = fired["rollback:err_rate"].fired_buckets
    assert [(v.start, v.value, v.samples) for v in hits] == [(moment(scenario, 20), 5.0, 1000), (moment(scenario, 21), 5.0, 1020)]
    assert decision.msg.startswith("rollback: err_rate 5% and 5% > 1% for 2 consecutive buckets")


def test_offset_scrapes_stay_within_the_extrapolation_tolerance(prometheus):
    """Scrapes 2 s after the grid: Prometheus extrapolates 5 s of every bucket from 55 s of samples.

    Steady traffic comes out exact; where the error rate steps, at most one
    scrape interval's errors (1 of 20 requests) may land in the neighbouring
    bucket (the documented bound, scrape_interval / width of the traffic).
    """
    server, scenario = prometheus, prometheus.scenario
    since, as_of = moment(scenario, 1), moment(scenario, 30)
    buckets = source.buckets_from_responses(fetch(server, since, as_of, selector='job="offset"'), WIDTH)
    assert len(buckets) == 29
    one_interval = 100.0 * 1 / 240
    for bucket in buckets:
        expected = scenario.expected("offset", index_of(scenario, bucket))
        assert bucket.metrics["requests"].value == pytest.approx(240, abs=1e-6)
        assert abs(bucket.metrics["err_rate"].value - expected["err_rate"]) <= one_interval + 1e-9
        assert bucket.metrics["cache_hit_rate"].value == pytest.approx(50.0, abs=1e-6)
        assert bucket.metrics["p95_ms"].value == pytest.approx(97.5, abs=1e-5)   # 50 + 50 * 0.95 inside (50, 100] ms
    decision = slo.evaluate(slo.preset("runbook"), buckets, moment(scenario, 18), as_of, WIDTH)
    assert decision.decision == "rollback" and "rollback:err_rate" in [e.rule.id for e in decision.fired], decision.msg


def test_without_a_selector_the_jobs_add_up(prometheus):
    server, scenario = prometheus, prometheus.scenario
    since, as_of = moment(scenario, 1), moment(scenario, 30)
    buckets = source.buckets_from_responses(fetch(server, since, as_of), WIDTH)
    for bucket in buckets:
        index = index_of(scenario, bucket)
        both = scenario.expected("aligned", index)["requests"] + scenario.expected("offset", index)["requests"]
        assert bucket.metrics["requests"].value == pytest.approx(both, abs=1e-6)


def test_more_than_one_series_is_a_clear_error(prometheus):
    server, scenario = prometheus, prometheus.scenario
    answers = fetch(server, moment(scenario, 1), moment(scenario, 5),
                    overrides={"errors": "sum by (job) (increase(http_requests_total{{labels}}[{window}]))"})
    with pytest.raises(ConfigurationError, match=r"the errors query returned 2 series \(\{job=\"aligned\"\}, "
                                                 r"\{job=\"offset\"\}\), not one: aggregate them with sum"):
        source.buckets_from_responses(answers, WIDTH)


def test_a_bad_query_is_prometheus_s_one_line_error(prometheus):
    server, scenario = prometheus, prometheus.scenario
    answers = fetch(server, moment(scenario, 1), moment(scenario, 5), overrides={"p95_ms": "histogram_quantile(0.95, "})
    with pytest.raises(ConfigurationError) as caught:
        source.buckets_from_responses(answers, WIDTH)
    message = str(caught.value)
    assert message.startswith("Prometheus rejected the p95_ms query (bad_data): ") and message.endswith("; fix that query")
    assert "\n" not in message


def test_the_reported_url_runs_by_hand(prometheus):
    server, scenario = prometheus, prometheus.scenario
    query = source.render_queries(WIDTH, selector='job="aligned"')["requests"]
    params = source.range_query_params(query, moment(scenario, 3), moment(scenario, 4), WIDTH)
    with urllib.request.urlopen(source.query_url(server.url + "/", params), timeout=10) as answer:
        body = json.load(answer)
    assert body["data"]["result"][0]["values"] == [[scenario.bucket_start(4), "%d" % scenario.expected("aligned", 3)["requests"]]]


# -- the slo_check module with source=prometheus ------------------------------------------------

def run_slo_check(ansible_module, server, since, as_of, **options):
    args = dict(source="prometheus", prometheus_url=server.url, prometheus_selector='job="aligned"',
                since=since.isoformat(), as_of=as_of.isoformat(), bucket_seconds=WIDTH, fail_on="never")
    args.update(options)
    return ansible_module("slo_check", args)


def test_module_decides_rollback_from_prometheus_without_a_database(prometheus, ansible_module):
    scenario = prometheus.scenario
    run = run_slo_check(ansible_module, prometheus, moment(scenario, 18), moment(scenario, 23),
                        prometheus_bearer_token="s3cr3t-prom-token")
    assert not run.failed, run.result["msg"]
    assert run.result["decision"] == "rollback"
    fired = {rule["id"] for rule in run.result["fired"]}
    assert "rollback:err_rate" in fired
    assert run.result["window"]["buckets"] == 5
    assert all(q.startswith(prometheus.url + "/api/v1/query_range?") for q in run.result["queries"])
    assert "s3cr3t-prom-token" not in run.output


def test_module_passes_a_healthy_prometheus_window(prometheus, ansible_module):
    scenario = prometheus.scenario
    run = run_slo_check(ansible_module, prometheus, moment(scenario, 2), moment(scenario, 12))
    assert run.result["decision"] == "pass" and run.result["msg"].startswith("pass:")


def test_module_names_an_unreachable_prometheus(ansible_module):
    run = ansible_module("slo_check", dict(source="prometheus", prometheus_url="http://127.0.0.1:9", lookback_minutes=30,
                                           bucket_seconds=60))
    assert run.failed and run.result["msg"].startswith("Prometheus at http://127.0.0.1:9 is not reachable")
