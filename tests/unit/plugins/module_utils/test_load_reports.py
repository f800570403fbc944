import datetime
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils import load_reports, slo
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
T0_EPOCH = int((T0 - slo.EPOCH).total_seconds())


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def metric(bucket, name):
    return bucket.metrics[name].value


# -- percentile_cont ------------------------------------------------------------------------------

# Values PostgreSQL 18 returned for percentile_cont(f) WITHIN GROUP (ORDER BY v) over float8 vectors.
POSTGRES_PERCENTILES = [
    ([1, 2, 3, 4], {0: 1.0, 0.5: 2.5, 0.95: 3.8499999999999996, 0.99: 3.9699999999999998, 1: 4.0}),
    ([10], {0: 10.0, 0.5: 10.0, 0.95: 10.0, 1: 10.0}),
    ([1, 2], {0.5: 1.5, 0.95: 1.95, 0.99: 1.99}),
    (list(range(1, 11)), {0.5: 5.5, 0.95: 9.549999999999999, 0.99: 9.91}),
    ([0.1, 0.2, 0.7], {0.5: 0.2, 0.95: 0.6499999999999999, 0.99: 0.69}),
    ([5, 1, 1000, 3, 8, 13, 21], {0.5: 8.0, 0.95: 706.2999999999993, 0.99: 941.2599999999995, 1: 1000.0}),
]


@pytest.mark.parametrize("values, expected", POSTGRES_PERCENTILES)
def test_percentile_cont_equals_postgresql(values, expected):
    for fraction, value in expected.items():
        assert load_reports.percentile_cont(sorted(values), fraction) == value


def test_percentile_cont_of_nothing_is_none_and_fraction_is_checked():
    assert load_reports.percentile_cont([], 0.95) is None
    for bad in (-0.1, 1.5, "0.9", None, True):
        with pytest.raises(ConfigurationError, match="fraction"):
            load_reports.percentile_cont([1.0], bad)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=60), st.floats(0, 1), st.floats(0, 1))
def test_percentile_cont_is_within_min_max_and_monotone(values, f1, f2):
    ordered = sorted(values)
    low, high = sorted((f1, f2))
    a = load_reports.percentile_cont(ordered, low)
    b = load_reports.percentile_cont(ordered, high)
    assert ordered[0] <= a <= ordered[-1] and ordered[0] <= b <= ordered[-1]
    assert a <= b


# -- errors and the grid ----------------------------------------------------------------------------

@pytest.mark.parametrize("status, error", [(200, False), ("200", False), (301, False), (400, False), (403, False), (429, False),
                                           (499, False), (500, True), ("503", True), (0, True),
                                           ("0", True), (None, True), ("", True)])
def test_error_is_5xx_or_no_response_never_4xx(status, error):
    assert load_reports.is_error(status) is error


def test_buckets_are_on_the_epoch_grid_like_date_bin():
    records = [(at(299.999999), 200, 10, None), (at(300), 200, 20, None), (at(0), 200, 30, None)]
    buckets = load_reports.buckets_from_requests(records, 300)
    assert [(b.start, b.end) for b in buckets] == [(at(0), at(300)), (at(300), at(600))]
    assert [b.metrics["requests"].samples for b in buckets] == [2, 1]
    # date_bin('7 seconds', '2026-11-26 12:00:00+00', '1970-01-01') = 11:59:57; date_bin of 23:59:59 1969 = 23:59:53.
    seven = load_reports.buckets_from_requests([(at(0), 200, 1, None)], 7)
    assert seven[0].start == datetime.datetime(2026, 11, 26, 11, 59, 57, tzinfo=UTC)
    before = load_reports.buckets_from_requests([(datetime.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), 200, 1, None)], 7)
    assert before[0].start == datetime.datetime(1969, 12, 31, 23, 59, 53, tzinfo=UTC)


def test_bucket_metrics_follow_design():
    records = [(at(i), status, float(i), hit) for i, (status, hit) in enumerate(
        [(200, True), (200, False), (403, None), (429, None), (500, None), (0, None), (None, None), (200, True), (404, None), (502, None)])]
    bucket, = load_reports.buckets_from_requests(records, 300)
    assert bucket.metrics["requests"] == slo.Sample(10.0, 10)
    assert metric(bucket, "err_rate") == 40.0          # 500, 0, None, 502; 403/429/404 are not errors
    assert metric(bucket, "cache_hit_rate") == 20.0    # hits of all requests
    assert metric(bucket, "p95_ms") == load_reports.percentile_cont([float(i) for i in range(10)], 0.95)
    assert all(s.samples == 10 for s in bucket.metrics.values())


def test_no_cache_information_is_no_metric_and_naive_times_are_utc():
    bucket, = load_reports.buckets_from_requests([(datetime.datetime(2026, 11, 26, 12, 0, 1), 200, 5.0, None)], 10)
    assert "cache_hit_rate" not in bucket.metrics and bucket.start == T0


@pytest.mark.parametrize("width", [0, -5, None, "10", True, float("inf")])
def test_bad_width_is_one_line(width):
    with pytest.raises(ConfigurationError, match="bucket width") as raised:
        load_reports.buckets_from_requests([], width)
    assert "\n" not in str(raised.value)


RECORDS = st.lists(st.tuples(st.integers(0, 3600 * 1000), st.sampled_from([0, None, 200, 204, 304, 401, 403, 429, 500, 503]),
                             st.one_of(st.none(), st.floats(0, 5000)), st.sampled_from([True, False, None])), max_size=80)


@settings(max_examples=200)
@given(RECORDS, st.sampled_from([1, 10, 60, 300, 7, 0.5]))
def test_bucket_properties(raw, width):
    records = [(at(ms / 1000.0), status, duration, hit) for ms, status, duration, hit in raw]
    buckets = load_reports.buckets_from_requests(records, width)
    assert sum(b.metrics["requests"].samples for b in buckets) == len(records)
    assert sum(round(metric(b, "err_rate") * b.metrics["requests"].samples / 100) for b in buckets) == sum(
        1 for r in records if load_reports.is_error(r[1]))
    step = datetime.timedelta(seconds=width)
    for bucket in buckets:
        assert 0 <= metric(bucket, "err_rate") <= 100
        assert bucket.end - bucket.start == step and (bucket.start - slo.EPOCH) % step == datetime.timedelta(0)
        p95, p99 = metric(bucket, "p95_ms"), metric(bucket, "p99_ms")
        assert (p95 is None) == (p99 is None) and (p95 is None or p95 <= p99)
    assert [b.start for b in buckets] == sorted({b.start for b in buckets})
    assert load_reports.buckets_from_requests(list(reversed(records)), width) == buckets


# -- Locust -----------------------------------------------------------------------------------------

PERCENTILE_COLUMNS = "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
HISTORY_HEADER = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s," + PERCENTILE_COLUMNS + ",Total Request Count,"
                  "Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,"
                  "Total Max Response Time,Total Average Content Size")
STATS_HEADER = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
                "Max Response Time,Average Content Size,Requests/s,Failures/s," + PERCENTILE_COLUMNS)


def history_row(second, name, total, failed, p95="N/A", p99="N/A", method=""):
    percentiles = ["N/A"] * 11 if p95 == "N/A" else ["1", "1", "1", "1", "2", str(p95), "3", str(p99), "4", "4", "4"]
    return ",".join([str(T0_EPOCH + second), "5", method, name, "1.0", "0.0"] + percentiles + [
        str(total), str(failed), "2", "2.5", "1.0", "9.0", "15.0"])


def history(*rows):
    return "\n".join((HISTORY_HEADER,) + rows) + "\n"


def test_locust_history_counts_are_differences_of_the_aggregated_totals():
    text = history(history_row(0, "Aggregated", 0, 0), history_row(1, "Aggregated", 10, 1), history_row(9, "Aggregated", 30, 2),
                   history_row(10, "Aggregated", 35, 4), history_row(21, "Aggregated", 50, 4))
    report = load_reports.parse_locust(text, 10)
    assert (report.kind, report.format, report.width) == ("series", "locust-stats-history-csv", 10)
    assert [(b.start, b.metrics["requests"].samples, metric(b, "err_rate")) for b in report.buckets] == [
        (at(0), 30, 100.0 * 2 / 30), (at(10), 5, 40.0), (at(20), 15, 0.0)]
    # Without --csv-full-history the percentiles are cumulative: no data, and the notes say why.
    assert all(metric(b, "p95_ms") is None for b in report.buckets)
    assert any("--csv-full-history" in note for note in report.notes)
    assert "cache_hit_rate" not in report.buckets[0].metrics
    assert (report.start, report.end) == (at(1), at(21))


def test_locust_full_history_gives_rolling_percentiles_and_cache_hits():
    hit, miss = "/api/search?q= [X-Cache: hit]", "/api/search?q= [X-Cache: miss]"
    text = history(
        history_row(1, hit, 4, 0, 0, 0, "GET"), history_row(1, miss, 6, 0, 0, 0, "GET"),
        history_row(1, "Aggregated", 10, 0, 0, 0),        # 0: Locust's rolling window is not there yet
        history_row(5, hit, 8, 0, 30, 40, "GET"), history_row(5, miss, 6, 0, 20, 20, "GET"),
        history_row(5, "Aggregated", 14, 0, 30, 40),
        history_row(11, hit, 18, 0, 50, 60, "GET"), history_row(11, miss, 6, 0, 20, 20, "GET"),
        history_row(11, "Aggregated", 24, 0, 50, 70))
    report = load_reports.parse_locust(text, 10)
    first, second = report.buckets
    assert (metric(first, "p95_ms"), metric(first, "p99_ms")) == (30.0, 40.0)
    assert (metric(second, "p95_ms"), metric(second, "p99_ms")) == (50.0, 70.0)
    assert metric(first, "cache_hit_rate") == pytest.approx(100.0 * 8 / 14)
    assert metric(second, "cache_hit_rate") == 100.0


def test_locust_history_reset_counts_from_zero():
    text = history(history_row(1, "Aggregated", 50, 0), history_row(2, "Aggregated", 5, 0))
    assert load_reports.parse_locust(text, 10).buckets[0].metrics["requests"].samples == 55


def stats_csv(*rows):
    return "\n".join((STATS_HEADER,) + rows) + "\n"


def stats_row(name, count, failures, rps, p95, p99, method="GET"):
    return ",".join([method, name, str(count), str(failures), "2", "2.5", "1", "90", "15", str(rps), "0.5", "1", "1", "1", "1",
                     "2", str(p95), "3", str(p99), "4", "4", "4"])


def test_locust_stats_csv_is_one_run_bucket_ending_at_end():
    end = at(600)
    text = stats_csv(stats_row("/api/search?q= [X-Cache: hit]", 300, 0, 5.0, 40, 80),
                     stats_row("/api/search?q= [X-Cache: miss]", 200, 0, 3.0, 60, 90),
                     stats_row("/api/search?q=", 100, 30, 1.0, 20, 30), stats_row("Aggregated", 600, 30, 10.0, 50, 85, method=""))
    report = load_reports.parse_locust(text, 300, end=end)
    bucket, = report.buckets
    assert (report.kind, report.format, report.start, report.end) == ("run", "locust-stats-csv", at(540), end)
    assert (bucket.start, bucket.end, report.width) == (at(540), end, 60.0)
    assert bucket.metrics["requests"] == slo.Sample(600.0, 600)
    assert (metric(bucket, "err_rate"), metric(bucket, "p95_ms"), metric(bucket, "p99_ms")) == (5.0, 50.0, 85.0)
    assert metric(bucket, "cache_hit_rate") == 50.0
    with pytest.raises(ConfigurationError, match="no clock time.*end"):
        load_reports.parse_locust(text, 300)


def locust_entry(name, times, failures=0, start=0.5, last=20.25, none=0):
    return {"name": name, "method": "GET", "last_request_timestamp": T0_EPOCH + last, "start_time": T0_EPOCH + start,
            "num_requests": sum(times.values()) + none, "num_none_requests": none, "num_failures": failures,
            "total_response_time": 0, "max_response_time": max(times), "min_response_time": min(times), "total_content_length": 0,
            "response_times": {str(k): v for k, v in times.items()}, "num_reqs_per_sec": {str(T0_EPOCH + 1): sum(times.values())},
            "num_fail_per_sec": {}}


def test_locust_json_is_one_run_bucket_with_locusts_percentiles():
    entries = [locust_entry("/api/search?q= [X-Cache: hit]", {10: 50, 20: 30}),
               locust_entry("/api/search?q= [X-Cache: miss]", {100: 15}, start=0.25),
               locust_entry("/api/health", {5: 4, 300: 1}, failures=2, last=30.5)]
    report = load_reports.parse_locust(json.dumps(entries, indent=4), 10)
    bucket, = report.buckets
    assert (report.kind, report.format, bucket.start, bucket.end) == ("run", "locust-json", at(0.25), at(30.5))
    assert bucket.metrics["requests"].samples == 100
    assert (metric(bucket, "err_rate"), metric(bucket, "cache_hit_rate")) == (2.0, 80.0)
    # Locust's rule (stats.calculate_response_time_percentile): from the slowest time down, the first at which at most
    # int(n * p) requests are faster: p95 = 100 (84 faster), p99 = 300 (99 faster).
    assert (metric(bucket, "p95_ms"), metric(bucket, "p99_ms")) == (100.0, 300.0)
    assert load_reports.locust_percentile({1: 1, 2: 1, 3: 1, 4: 1}, 4, 0.5) == 3.0   # Locust says 3, percentile_cont 2.5
    assert load_reports.locust_percentile({1: 1, 2: 1, 3: 1, 4: 1}, 4, 0.95) == 4.0


def test_locust_request_log_is_exact():
    lines = ["end_time,status,duration_ms,cache_hit"]
    for i in range(40):
        status = (500, 0, 429, 403, 200)[i % 5]
        lines.append("%.6f,%d,%s,%s" % (T0_EPOCH + i * 0.5, status, "" if status == 0 else "%.3f" % (i + 1), "1" if i % 5 == 4 else ""))
    report = load_reports.parse_locust("\n".join(lines) + "\n", 10)
    assert (report.kind, report.format) == ("series", "locust-request-log-csv")
    assert [b.metrics["requests"].samples for b in report.buckets] == [20, 20]
    first = report.buckets[0]
    assert metric(first, "err_rate") == 40.0 and metric(first, "cache_hit_rate") == 20.0
    durations = sorted(float(i + 1) for i in range(20) if i % 5 != 1)
    assert metric(first, "p95_ms") == load_reports.percentile_cont(durations, 0.95)


# -- k6 ------------------------------------------------------------------------------------------------

def k6_time(seconds):
    moment = at(seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%06d123Z" % moment.microsecond


def k6_point(metric_name, seconds, value, status=None):
    tags = {"group": "", "scenario": "default", "method": "GET", "name": "/api/search?q="}
    if status is not None:
        tags["status"] = str(status)
        tags["expected_response"] = "true" if 200 <= status <= 499 else "false"
    return json.dumps({"metric": metric_name, "type": "Point", "data": {"time": k6_time(seconds), "value": value, "tags": tags}})


def k6_metric(name, kind, contains="default"):
    return json.dumps({"type": "Metric", "data": {"name": name, "type": kind, "contains": contains, "thresholds": [],
                                                  "submetrics": None}, "metric": name})


def k6_lines(requests, with_reqs=True):
    """requests: (seconds, status, duration_ms, cache hit or None)."""
    lines = [k6_metric("http_reqs", "counter"), k6_metric("http_req_duration", "trend", "time"), k6_metric("cache_hits", "rate")]
    for seconds, status, duration, hit in requests:
        if with_reqs:
            lines.append(k6_point("http_reqs", seconds, 1, status))
        lines.append(k6_point("http_req_duration", seconds, duration, status))
        lines.append(k6_point("http_req_blocked", seconds, 0.01, status))
        if hit is not None:
            lines.append(k6_point("cache_hits", seconds + 0.0001, 1 if hit else 0))
    return [line + "\n" for line in lines]


K6_REQUESTS = [(0.5, 200, 10.0, True), (1.0, 200, 20.0, False), (2.0, 403, 5.0, False), (3.0, 429, 4.0, False),
               (4.0, 500, 30.0, False), (9.999, 0, 0.5, False), (10.0, 200, 12.0, True), (12.5, 503, 40.0, False)]


@pytest.mark.parametrize("with_reqs", [True, False])
def test_k6_json_lines_is_an_exact_series(with_reqs):
    report = load_reports.parse_k6(iter(k6_lines(K6_REQUESTS, with_reqs)), 10)
    assert (report.kind, report.format, report.width) == ("series", "k6-json-lines", 10)
    first, second = report.buckets
    assert (first.start, second.start) == (at(0), at(10))
    assert [b.metrics["requests"].samples for b in report.buckets] == [6, 2]
    assert metric(first, "err_rate") == pytest.approx(100.0 * 2 / 6)      # 500 and 0; 403 and 429 are not errors
    assert metric(second, "err_rate") == 50.0
    assert metric(first, "p95_ms") == load_reports.percentile_cont([0.5, 4.0, 5.0, 10.0, 20.0, 30.0], 0.95)
    assert metric(first, "cache_hit_rate") == pytest.approx(100.0 / 6) and metric(second, "cache_hit_rate") == 50.0
    assert report.start == at(0.5) and report.end == at(12.5)


def test_k6_missing_status_is_no_response():
    line = json.dumps({"metric": "http_reqs", "type": "Point", "data": {"time": k6_time(1), "value": 1, "tags": {"name": "x"}}})
    assert metric(load_reports.parse_k6([line], 10).buckets[0], "err_rate") == 100.0


def test_k6_times_with_nanoseconds_and_offsets():
    assert load_reports.parse_time("2026-11-26T13:00:00.123456789+01:00", "t") == at(0.123456)
    assert load_reports.parse_time("2026-11-26T12:00:05Z", "t") == at(5)
    with pytest.raises(ConfigurationError, match="not an RFC 3339 time"):
        load_reports.parse_time("yesterday", "t")


SUMMARY_EXPORT = {
    "root_group": {"id": "d41d8cd98f00b204e9800998ecf8427e", "groups": {}, "checks": {}, "name": "", "path": ""},
    "metrics": {
        "http_reqs": {"count": 600, "rate": 10.0},
        "http_req_duration": {"avg": 50.0, "min": 1.0, "med": 40.0, "max": 900.0, "p(90)": 100.0, "p(95)": 120.5, "p(99)": 300.25,
                              "thresholds": {"p(95)<500": False, "p(99)<1000": False}},
        "http_req_failed": {"passes": 9, "fails": 591, "value": 0.015, "thresholds": {"rate<0.01": True}},
        "cache_hits": {"passes": 240, "fails": 360, "value": 0.4, "thresholds": {"rate>=0.30": False}},
        "vus": {"value": 50, "min": 50, "max": 50},
    },
}


def test_k6_summary_export_is_one_run_bucket():
    end = at(3600)
    report = load_reports.parse_k6(json.dumps(SUMMARY_EXPORT, indent=4).splitlines(True), 300, end=end)
    bucket, = report.buckets
    assert (report.kind, report.format, bucket.start, bucket.end) == ("run", "k6-summary-export", at(3540), end)
    assert bucket.metrics["requests"] == slo.Sample(600.0, 600)
    assert (metric(bucket, "err_rate"), metric(bucket, "p95_ms"), metric(bucket, "p99_ms")) == (1.5, 120.5, 300.25)
    assert metric(bucket, "cache_hit_rate") == 40.0
    with pytest.raises(ConfigurationError, match="no clock time"):
        load_reports.parse_k6(json.dumps(SUMMARY_EXPORT).splitlines(), 300)


def test_k6_summary_without_p99_or_cache_hits_is_no_data_for_them():
    document = json.loads(json.dumps(SUMMARY_EXPORT))
    del document["metrics"]["http_req_duration"]["p(99)"]
    del document["metrics"]["cache_hits"]
    bucket, = load_reports.parse_k6([json.dumps(document)], 300, end=at(0)).buckets
    assert metric(bucket, "p99_ms") is None and "cache_hit_rate" not in bucket.metrics
    assert metric(bucket, "p95_ms") == 120.5


def test_k6_handle_summary_data_is_read_too():
    data = {"metrics": {name: {"type": "rate" if "passes" in values else "trend", "contains": "default",
                               "values": dict(values, rate=values["value"]) if "passes" in values else values}
                        for name, values in SUMMARY_EXPORT["metrics"].items()}}
    report = load_reports.parse_k6([json.dumps(data)], 300, end=at(3600))
    assert report.format == "k6-summary-json" and metric(report.buckets[0], "err_rate") == 1.5


# -- malformed input: one line that names the problem ------------------------------------------------------

MALFORMED_LOCUST = {
    "empty": ("", "empty"),
    "garbage": ("hello,world\n1,2\n", "not a Locust report"),
    "failures csv": ("Method,Name,Error,Occurrences\nGET,/x,boom,1\n", "failures or exceptions CSV"),
    "cut history": (HISTORY_HEADER + "\n" + history_row(1, "Aggregated", 5, 0)[:30] + "\n", "line 2 has"),
    "history without aggregated": (history(history_row(1, "/x", 5, 0, method="GET")), "no Aggregated rows"),
    "bad count": (history(history_row(1, "Aggregated", 5, 0).replace(",5,0,", ",five,0,")), "Total Request Count"),
    "cut json": ("[{\"name\": ", "not valid JSON"),
    "json object": ("{\"a\": 1}", "list of request entries"),
    "json entry": ("[{\"name\": \"x\"}]", "lacks num_requests"),
    "no requests": ("[]", "no requests"),
    "request log line": ("end_time,status,duration_ms,cache_hit\n1.5,200\n", "line 2 has 2 fields"),
    "request log cache": ("end_time,status,duration_ms,cache_hit\n1.5,200,3,yes\n", "cache_hit is 'yes'"),
    "request log time": ("end_time,status,duration_ms,cache_hit\nnoon,200,3,1\n", "line 2 end_time is 'noon'"),
    "nul byte": ("Type,Name\n\0,x\n", "not readable CSV|not a Locust report"),
}


@pytest.mark.parametrize("text, message", list(MALFORMED_LOCUST.values()), ids=list(MALFORMED_LOCUST))
def test_malformed_locust_input_is_one_clear_line(text, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        load_reports.parse_locust(text, 10, end=T0)
    assert "\n" not in str(raised.value)


MALFORMED_K6 = {
    "empty": ([], "empty"),
    "blank": (["\n", "  \n"], "empty"),
    "cut line": (k6_lines(K6_REQUESTS)[:4] + ['{"metric":"http_reqs","type":"Po\n'], "line 5 is not JSON"),
    "not an object": (k6_lines(K6_REQUESTS)[:2] + ["[1, 2]\n"], "line 3 is not a JSON object"),
    "point without time": (k6_lines([])[:1] + ['{"type": "Point", "metric": "http_reqs", "data": {"value": 1}}\n'], "data.time"),
    "bad time": ([k6_point("http_reqs", 1, 1, 200).replace("2026-11-26T", "26/11/2026 ")], "not an RFC 3339 time"),
    "no http points": (k6_lines([])[:2], "no http_reqs or http_req_duration points"),
    "garbage": (["hello\n"], "neither JSON lines"),
    "summary without metrics": (['{"root_group": {}}'], "no metrics object"),
    "summary without http_reqs": (['{"metrics": {"vus": {"value": 1}}}'], "no http_reqs count"),
    "summary without http_req_failed": (['{"metrics": {"http_reqs": {"count": 5, "rate": 1}}}'], "no http_req_failed"),
    "summary bad count": (['{"metrics": {"http_reqs": {"count": "many", "rate": 1}}}'], "http_reqs count"),
}


@pytest.mark.parametrize("lines, message", list(MALFORMED_K6.values()), ids=list(MALFORMED_K6))
def test_malformed_k6_input_is_one_clear_line(lines, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        load_reports.parse_k6(lines, 10, end=T0)
    assert "\n" not in str(raised.value)


# -- determinism --------------------------------------------------------------------------------------------

@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 120000), st.sampled_from([0, 200, 403, 429, 500]), st.floats(0, 3000),
                          st.sampled_from([True, False, None])), min_size=1, max_size=40),
       st.sampled_from([1, 10, 300]))
def test_parsing_is_deterministic_and_agrees_with_buckets_from_requests(raw, width):
    requests = [(ms / 1000.0, status, duration, hit) for ms, status, duration, hit in raw]
    lines = [k6_point("http_reqs", s, 1, status) + "\n" for s, status, duration, hit in requests]
    lines += [k6_point("http_req_duration", s, duration, status) + "\n" for s, status, duration, hit in requests]
    once = load_reports.parse_k6(lines, width)
    assert once == load_reports.parse_k6(list(lines), width)
    records = [(load_reports.parse_time(k6_time(s), "t"), status, duration, None) for s, status, duration, hit in requests]
    assert once.buckets == load_reports.buckets_from_requests(records, width)


# -- judging a report with the rule engine ---------------------------------------------------------------------

def test_a_run_report_is_judged_as_its_one_bucket():
    report = load_reports.parse_k6([json.dumps(SUMMARY_EXPORT)], 300, end=at(3600))
    rules = slo.preset("success_criteria")
    decision = slo.evaluate(rules, report.buckets, **report.window())
    assert decision.window[2] == 1
    assert {e.rule.id for e in decision.fired} == {"critical:err_rate"}       # 1.5 % >= 1 %; cache hits 40 % are fine
    assert report.to_dict()["requests"] == 600 and report.to_dict()["kind"] == "run"


def test_a_series_report_skips_its_partial_first_and_last_buckets():
    requests = [(5 + i * 0.5, 200 if i % 50 else 500, 10.0, True) for i in range(100)]   # 5 s .. 54.5 s
    report = load_reports.parse_k6(k6_lines(requests), 10)
    assert [b.start for b in report.buckets] == [at(0), at(10), at(20), at(30), at(40), at(50)]
    decision = slo.evaluate(slo.preset("success_criteria"), report.buckets, **report.window())
    assert decision.window[2] == 4                          # 10 s .. 50 s: the complete buckets between the first and last request
    assert slo.evaluate(slo.preset("success_criteria"), report.buckets, **report.window(since=at(0), as_of=at(60))).window[2] == 6


def test_k6_text_instead_of_lines_is_refused():
    with pytest.raises(ConfigurationError, match="as lines"):
        load_reports.parse_k6("".join(k6_lines(K6_REQUESTS)), 10)


def test_locust_request_logs_of_several_processes_can_be_concatenated():
    one = "end_time,status,duration_ms,cache_hit\n%d.5,200,3.000,1\n" % T0_EPOCH
    other = "end_time,status,duration_ms,cache_hit\n%d.5,500,9.000,\n" % (T0_EPOCH + 1)
    bucket, = load_reports.parse_locust(one + other, 10).buckets
    assert bucket.metrics["requests"].samples == 2 and metric(bucket, "err_rate") == 50.0
