import datetime
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils import prometheus, slo
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WIDTH = 300


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def unix(moment):
    return (moment - slo.EPOCH).total_seconds()


def matrix(points, labels=None):
    """A query_range answer with one series: {time: value} (values as Prometheus writes them)."""
    values = [[t, v if isinstance(v, str) else repr(float(v))] for t, v in sorted(points.items())]
    return {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": labels or {}, "values": values}]}}


def empty():
    return {"status": "success", "data": {"resultType": "matrix", "result": []}}


def ends(count, width=WIDTH):
    """The grid times T of `count` buckets from T0."""
    return [unix(T0) + width * (i + 1) for i in range(count)]


def by_metric(bucket):
    return {name: (sample.value, sample.samples) for name, sample in bucket.metrics.items()}


# -- queries -------------------------------------------------------------------------------------

def test_default_queries_without_selector():
    queries = prometheus.render_queries(WIDTH)
    assert queries["requests"] == "sum(increase(http_requests_total{}[300s]))"
    assert queries["errors"] == 'sum(increase(http_requests_total{status=~"5..|0",}[300s]))'
    assert queries["p95_ms"] == ("1000 * histogram_quantile(0.95, sum by (le) "
                                 "(increase(http_request_duration_seconds_bucket{}[300s])))")
    assert queries["p99_ms"].startswith("1000 * histogram_quantile(0.99, ")
    assert queries["cache_hits"] == "sum(increase(cache_hits_total{}[300s]))"


@pytest.mark.parametrize("selector", ['job="api",env="prod"', '{job="api",env="prod"}', ' {job="api",env="prod",} '])
def test_selector_goes_inside_every_selector(selector):
    queries = prometheus.render_queries(10, selector=selector)
    assert queries["requests"] == 'sum(increase(http_requests_total{job="api",env="prod"}[10s]))'
    assert queries["errors"] == 'sum(increase(http_requests_total{status=~"5..|0",job="api",env="prod"}[10s]))'
    assert all("{labels}" not in q and "{window}" not in q for q in queries.values())


def test_overrides_replace_and_drop_queries():
    queries = prometheus.render_queries(60, {"errors": 'sum(increase(rpc_total{code="error"}[{window}]))',
                                             "cache_hits": None, "p99_ms": ""})
    assert queries["errors"] == 'sum(increase(rpc_total{code="error"}[60s]))'
    assert set(queries) == {"requests", "errors", "p95_ms"}


@pytest.mark.parametrize("overrides, selector, message", [
    ({"latency": "x"}, None, "prometheus queries has unknown names latency; valid names: requests, errors, p95_ms"),
    ({"requests": None}, None, "prometheus query requests cannot be empty"),
    ({"errors": 5}, None, "prometheus query errors must be PromQL text, not 5"),
    ({"errors": "sum(rate(x[5m]))"}, 'job="api"', r"prometheus query errors has no \{labels\} placeholder"),
    (["requests"], None, "prometheus queries must be a mapping"),
    (None, 'job="a"}, x{', "prometheus selector .* must be label matchers"),
    (None, {"job": "a"}, "prometheus selector must be label matchers text"),
])
def test_bad_queries(overrides, selector, message):
    with pytest.raises(ConfigurationError, match=message):
        prometheus.render_queries(WIDTH, overrides, selector)


@pytest.mark.parametrize("width, duration", [(300, "300s"), (10, "10s"), (0.5, "500ms"), (1.25, "1250ms"), (60.0, "60s")])
def test_promql_duration(width, duration):
    assert prometheus.promql_duration(width) == duration


@pytest.mark.parametrize("width", [0, -5, 0.0001, True, "300", float("inf")])
def test_bad_width(width):
    with pytest.raises(ConfigurationError, match="bucket width"):
        prometheus.promql_duration(width)


# -- the range ------------------------------------------------------------------------------------

@pytest.mark.parametrize("since, as_of, start, end", [
    (0, 900, 300, 900),          # since on the grid: its bucket counts, and ends at since + w
    (1, 900, 600, 900),          # the bucket that contains since does not count
    (0, 899, 300, 600),          # the incomplete bucket does not count
    (-1, 600, 300, 600),
    (0, 300, 300, 300),          # one bucket: one point
])
def test_range_is_the_window_grid(since, as_of, start, end):
    params = prometheus.range_query_params("up", at(since), at(as_of), WIDTH)
    assert params == {"query": "up", "start": "%d" % unix(at(start)), "end": "%d" % unix(at(end)), "step": "300s"}


@pytest.mark.parametrize("since, as_of", [(0, 299), (1, 599), (600, 600), (900, 600)])
def test_no_complete_bucket_means_no_query(since, as_of):
    assert prometheus.range_query_params("up", at(since), at(as_of), WIDTH) is None


def test_range_of_sub_second_widths_keeps_milliseconds():
    params = prometheus.range_query_params("up", at(0.7), at(3.2), 0.5)
    assert params == {"query": "up", "start": "%d.5" % (unix(T0) + 1), "end": "%d" % (unix(T0) + 3), "step": "500ms"}


def test_too_many_points():
    with pytest.raises(ConfigurationError, match="holds 11001 buckets of 10s; Prometheus returns at most 11000 points"):
        prometheus.range_query_params("up", at(0), at(110010), 10)


def test_naive_times_are_refused():
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        prometheus.range_query_params("up", T0, datetime.datetime(2026, 11, 26, 13, 0), WIDTH)


def test_query_url():
    params = prometheus.range_query_params("sum(x{a=\"b\"})", at(0), at(600), WIDTH)
    url = prometheus.query_url("http://prom:9090/", params)
    assert url.startswith("http://prom:9090/api/v1/query_range?query=sum%28x%7Ba%3D%22b%22%7D%29&start=")
    assert prometheus.api_base("https://p.example/prometheus/api/v1/query_range") == "https://p.example/prometheus"


@pytest.mark.parametrize("url", ["prom:9090", "", None, "ftp://x", "http://"])
def test_bad_url(url):
    with pytest.raises(ConfigurationError, match="prometheus_url .* must be the server's http:// or https:// URL"):
        prometheus.api_base(url)


# -- answers to buckets ----------------------------------------------------------------------------

def test_buckets_are_the_points_shifted_back_one_width():
    t1, t2 = ends(2)
    buckets = prometheus.buckets_from_responses({"requests": matrix({t1: 100, t2: 200})}, WIDTH)
    assert [(b.start, b.end) for b in buckets] == [(at(0), at(300)), (at(300), at(600))]
    assert [by_metric(b) for b in buckets] == [{"requests": (100.0, 100)}, {"requests": (200.0, 200)}]


def test_empty_error_series_while_requests_exist_is_zero_errors():
    t1, t2 = ends(2)
    buckets = prometheus.buckets_from_responses({"requests": matrix({t1: 800, t2: 900}), "errors": empty()}, WIDTH)
    assert [b.metrics["err_rate"] for b in buckets] == [slo.Sample(0.0, 800), slo.Sample(0.0, 900)]


def test_missing_error_point_is_zero_errors_and_others_count():
    t1, t2 = ends(2)
    buckets = prometheus.buckets_from_responses({"requests": matrix({t1: 800, t2: 1000}), "errors": matrix({t2: 50}),
                                                 "cache_hits": matrix({t1: 200})}, WIDTH)
    assert [b.metrics["err_rate"] for b in buckets] == [slo.Sample(0.0, 800), slo.Sample(5.0, 1000)]
    assert [b.metrics["cache_hit_rate"] for b in buckets] == [slo.Sample(25.0, 800), slo.Sample(0.0, 1000)]


def test_a_query_not_asked_is_no_data_not_zero():
    (t1,) = ends(1)
    (bucket,) = prometheus.buckets_from_responses({"requests": matrix({t1: 800})}, WIDTH)
    assert set(bucket.metrics) == {"requests"}


def test_no_requests_is_no_data_for_rates_and_quantiles():
    t1, t2 = ends(2)
    responses = {"requests": matrix({t1: 0}), "errors": empty(), "cache_hits": empty(),
                 "p95_ms": matrix({t1: "NaN", t2: 120})}
    first, second = prometheus.buckets_from_responses(responses, WIDTH)
    assert by_metric(first) == {"requests": (0.0, 0), "err_rate": (None, 0), "cache_hit_rate": (None, 0),
                                "p95_ms": (None, 0)}
    # a point without a requests point: no samples, so no data for the rules
    assert by_metric(second) == {"requests": (None, 0), "err_rate": (None, 0), "cache_hit_rate": (None, 0),
                                 "p95_ms": (120.0, 0)}


def test_nan_quantile_is_no_data():
    (t1,) = ends(1)
    (bucket,) = prometheus.buckets_from_responses({"requests": matrix({t1: 500}), "p95_ms": matrix({t1: "NaN"}),
                                                   "p99_ms": matrix({t1: "1234.5"})}, WIDTH)
    assert bucket.metrics["p95_ms"] == slo.Sample(None, 500)
    assert bucket.metrics["p99_ms"] == slo.Sample(1234.5, 500)


def test_extrapolated_counts_round_to_whole_samples_and_clean_rates():
    (t1,) = ends(1)
    requests, errors = 220 * (60 / 55), 11 * (60 / 55)
    (bucket,) = prometheus.buckets_from_responses({"requests": matrix({t1: requests}), "errors": matrix({t1: errors})},
                                                  WIDTH)
    assert bucket.metrics["err_rate"] == slo.Sample(5.0, 240)
    assert slo.compare(bucket.metrics["err_rate"].value, ">", 5) is False


def test_rates_never_exceed_100():
    (t1,) = ends(1)
    (bucket,) = prometheus.buckets_from_responses({"requests": matrix({t1: 10}), "errors": matrix({t1: 10.4})}, WIDTH)
    assert bucket.metrics["err_rate"].value == 100.0


def test_an_instant_vector_is_one_bucket():
    (t1,) = ends(1)
    vector = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [t1, "42"]}]}}
    (bucket,) = prometheus.buckets_from_responses({"requests": vector}, WIDTH)
    assert (bucket.start, bucket.metrics["requests"]) == (at(0), slo.Sample(42.0, 42))


def test_no_points_no_buckets():
    assert prometheus.buckets_from_responses({"requests": empty(), "errors": empty()}, WIDTH) == []


def test_more_than_one_series_is_an_error_that_says_sum():
    (t1,) = ends(1)
    answer = matrix({t1: 1}, {"status": "200"})
    answer["data"]["result"].append(matrix({t1: 2}, {"status": "500"})["data"]["result"][0])
    with pytest.raises(ConfigurationError) as caught:
        prometheus.buckets_from_responses({"requests": matrix({t1: 3}), "errors": answer}, WIDTH)
    assert str(caught.value) == ('the errors query returned 2 series ({status="200"}, {status="500"}), not one: '
                                 'aggregate them with sum(...) (or sum by (le) inside histogram_quantile)')


def test_prometheus_error_answer_is_one_line():
    answer = {"status": "error", "errorType": "bad_data", "error": "1:34: parse error:\nunexpected \",\" in label matching"}
    with pytest.raises(ConfigurationError) as caught:
        prometheus.buckets_from_responses({"requests": answer}, WIDTH)
    assert str(caught.value) == ('Prometheus rejected the requests query (bad_data): 1:34: parse error: '
                                 'unexpected "," in label matching; fix that query')


@pytest.mark.parametrize("answer, message", [
    ("<html>", "the answer to the requests query is not a Prometheus API object"),
    ({"status": "success"}, "the answer to the requests query has status 'success' and no data"),
    ({"data": {}}, "has status None and no data"),
    ({"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}},
     r"the requests query returned a scalar, not one series over time: make it return an instant vector, e.g. sum\(...\)"),
    ({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}}]}},
     "the requests query's series has no values"),
    ({"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1, 2, 3]]}]}},
     r"the requests query's series holds \[1, 2, 3\], not a \[time, \"value\"\] pair"),
])
def test_malformed_answers(answer, message):
    with pytest.raises(ConfigurationError, match=message):
        prometheus.buckets_from_responses({"requests": answer}, WIDTH)


def test_point_off_the_grid_is_an_error():
    with pytest.raises(ConfigurationError, match="a Prometheus point at 2026-11-26T12:05:07[^ ]* is not on the 300s bucket grid"):
        prometheus.buckets_from_responses({"requests": matrix({unix(at(307)): 5})}, WIDTH)


def test_infinite_quantile_is_an_error():
    (t1,) = ends(1)
    with pytest.raises(ConfigurationError, match=r"the p99_ms query returned inf at .*: histogram_quantile needs the le"):
        prometheus.buckets_from_responses({"requests": matrix({t1: 5}), "p99_ms": matrix({t1: "+Inf"})}, WIDTH)


@pytest.mark.parametrize("responses, message", [
    ({"errors": {}}, "the requests query is required"),
    ({"requests": {}, "latency": {}}, "answers to unknown queries latency"),
])
def test_required_and_unknown_answers(responses, message):
    with pytest.raises(ConfigurationError, match=message):
        prometheus.buckets_from_responses(responses, WIDTH)


def test_parse_response():
    assert prometheus.parse_response("requests", b'{"status": "success"}') == {"status": "success"}
    with pytest.raises(ConfigurationError, match=r"Prometheus answered the errors query with something that is not JSON "
                                                 r"\('<html> <body>404</body>'\)"):
        prometheus.parse_response("errors", "<html>\n<body>404</body>")


def test_runbook_rolls_back_on_two_buckets_of_5_percent_errors():
    stamps = ends(6)
    requests = {t: 1000 for t in stamps}
    errors = {stamps[2]: 50, stamps[3]: 50}
    buckets = prometheus.buckets_from_responses({
        "requests": matrix(requests), "errors": matrix(errors), "cache_hits": matrix({t: 600 for t in stamps}),
        "p95_ms": matrix({t: 99 for t in stamps}), "p99_ms": matrix({t: 400 for t in stamps})}, WIDTH)
    decision = slo.evaluate(slo.preset("runbook"), buckets, at(0), at(1800), WIDTH)
    assert decision.decision == "rollback"
    assert "rollback:err_rate" in [e.rule.id for e in decision.fired]
    assert "critical:err_rate" not in [e.rule.id for e in decision.fired]   # 5 % is not > 5 %
    healthy = prometheus.buckets_from_responses({
        "requests": matrix(requests), "errors": empty(), "cache_hits": matrix({t: 600 for t in stamps}),
        "p95_ms": matrix({t: 99 for t in stamps}), "p99_ms": matrix({t: 400 for t in stamps})}, WIDTH)
    assert slo.evaluate(slo.preset("runbook"), healthy, at(0), at(1800), WIDTH).decision == "pass"


# -- properties ------------------------------------------------------------------------------------

WIDTHS = st.sampled_from([0.5, 1, 7, 10, 60, 300, 3600])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4_000_000_000_000), WIDTHS, st.integers(0, 40), st.floats(0, 1, exclude_max=True))
def test_every_bucket_is_one_width_on_the_epoch_grid_and_the_window_is_slo_s(since_ms, width, whole, part):
    since = slo.EPOCH + datetime.timedelta(milliseconds=since_ms)
    as_of = since + datetime.timedelta(milliseconds=round((whole + part) * width * 1000))
    grid = slo.window_grid(since, as_of, width)
    params = prometheus.range_query_params("sum(x)", since, as_of, width)
    if not grid:
        assert params is None
        return
    start, end, step = float(params["start"]), float(params["end"]), params["step"]
    assert step == prometheus.promql_duration(width)
    stamps = [start + i * width for i in range(int(round((end - start) / width)) + 1)]
    buckets = prometheus.buckets_from_responses({"requests": matrix({t: 100 for t in stamps}), "errors": empty()}, width)
    assert [(b.start, b.end) for b in buckets] == grid
    for bucket in buckets:
        assert (bucket.end - bucket.start).total_seconds() == width
        assert math.isclose(unix(bucket.start) / width, round(unix(bucket.start) / width), abs_tol=1e-9)
        assert bucket.start >= since and bucket.end <= as_of
        assert bucket.metrics["err_rate"] == slo.Sample(0.0, 100)


@given(st.lists(st.one_of(st.none(), st.integers(0, 10_000)), min_size=1, max_size=12),
       st.lists(st.one_of(st.none(), st.integers(0, 10_000)), min_size=12, max_size=12))
def test_err_rate_is_errors_over_requests_and_no_data_without_requests(requests, errors):
    stamps = ends(len(requests))
    req = {t: n for t, n in zip(stamps, requests) if n is not None}
    err = {t: min(e, n) for t, n, e in zip(stamps, requests, errors) if n is not None and e is not None}
    buckets = {b.end: b for b in prometheus.buckets_from_responses({"requests": matrix(req), "errors": matrix(err)}, WIDTH)}
    for stamp, n in zip(stamps, requests):
        end = slo.EPOCH + datetime.timedelta(seconds=stamp)
        if n is None:
            assert end not in buckets or buckets[end].metrics["err_rate"].value is None
            continue
        sample = buckets[end].metrics["err_rate"]
        assert sample.samples == n
        if n == 0:
            assert sample.value is None
        else:
            assert sample.value == round(100.0 * err.get(stamp, 0) / n, 6)
