# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus source of the SLO gate: PromQL in, ``slo.Bucket`` objects out.

Pure logic: no Ansible, no network. The caller does one HTTP GET of
``/api/v1/query_range`` per query with the parameters of
:func:`range_query_params`, parses the JSON (:func:`parse_response`) and hands
the answers to :func:`buckets_from_responses`.

Queries (:data:`DEFAULT_QUERIES`, each can be overridden) follow the common
HTTP histogram convention of the Prometheus client libraries:

- ``requests``: every request, from the counter ``http_requests_total``;
- ``errors``: the requests with a ``status`` label of 5xx or ``0`` (no
  response: timeouts and refused connections), 4xx never;
- ``p95_ms``, ``p99_ms``: ``histogram_quantile`` over the histogram
  ``http_request_duration_seconds`` (seconds, so times 1000);
- ``cache_hits``: the counter ``cache_hits_total``.

Two placeholders are filled in each query: ``{window}`` is the bucket width as a
PromQL duration (``300s``) and ``{labels}`` the label matchers of the optional
selector (``job="api",env="prod"``), or nothing. ``{labels}`` always sits inside
a selector's braces: ``http_requests_total{{labels}}`` becomes
``http_requests_total{}`` or ``http_requests_total{job="api"}``, and
``{status=~"5..|0",{labels}}`` becomes ``{status=~"5..|0",}`` (a trailing comma
is valid PromQL).

Semantics (DESIGN.md, "The SLO gate"):

- A bucket is ``[start, start + width)`` on the epoch grid. A range query with
  ``step = width`` and ``start``/``end`` on the grid returns one point per grid
  time ``T``; ``increase(x[width])`` at ``T`` covers ``[T - width, T]``, so the
  point at ``T`` is the bucket ``[T - width, T)``. The first point is the end of
  the first bucket that starts at or after ``since``, the last the end of the
  last bucket that ends at or before ``as_of``: the same window as
  ``slo.window_grid``.
- A bucket's samples (for every metric) are its request count.
  ``err_rate = 100 * errors / requests`` and ``cache_hit_rate = 100 * hits /
  requests``. An empty or missing errors (or cache hits) series while requests
  exist means 0, not no data: client libraries create the 5xx series only at
  the first 5xx, and ``sum()`` over no series is an empty answer. Requests 0 or
  absent make the rates no data; ``NaN`` (``histogram_quantile`` of a bucket
  without requests) is no data.

How exact this is (Prometheus's ``increase`` extrapolates):

- ``increase`` takes the first and last sample inside the range and, when they
  do not sit on the range's edges, extrapolates the difference to the edges (by
  up to 1.1 average scrape intervals at each end). When the scrapes land on the
  grid (timestamps that are multiples of the scrape interval, which divides the
  width) Prometheus 2.x's closed range ``[T - width, T]`` holds a sample at
  both edges and the count is exact. Otherwise the last partial scrape interval
  at each edge is estimated from the bucket's average rate: exact for steady
  traffic; when the rate changes across a bucket edge, up to one scrape
  interval's worth of requests (or errors) is counted in the neighbouring
  bucket. In relative terms at most ``scrape_interval / width`` of a bucket's
  traffic: 1.7 % at 5 s scrapes in 5-minute buckets, 8 % in 1-minute buckets.
  Prometheus 3 ranges are left-open, ``(T - width, T]``, so there the first
  interval is always extrapolated, with the same bound.
- A counter series that first appears inside a bucket loses the increase of
  its first scrape (Prometheus cannot tell a new series from a reset). Create
  the labelled series at start-up (``counter.labels(status="500")``) to count
  the very first errors.
- Extrapolated counts are not whole numbers: a bucket's sample count is its
  request count rounded to the nearest integer, and counts and rates are
  rounded to 6 decimals so that float noise (``11 * 60 / 55``) does not turn
  exactly 5 % into 5.000000000000001 %.
- ``p95_ms``/``p99_ms`` interpolate linearly inside a histogram bucket
  (``histogram_quantile``), unlike ``percentile_cont`` over raw rows: their
  accuracy is the width of the histogram bucket the quantile falls in. A
  quantile in the ``+Inf`` bucket is reported as the highest finite bound.
- ``width`` must be at least two scrape intervals (better four or more), or
  ranges hold fewer than two samples and the buckets are empty.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math
from urllib.parse import urlencode

from ansible_collections.slogate.supabase.plugins.module_utils import slo
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError, one_line

QUERY_NAMES = ("requests", "errors", "p95_ms", "p99_ms", "cache_hits")
REQUIRED_QUERIES = ("requests",)
DEFAULT_QUERIES = {
    "requests": "sum(increase(http_requests_total{{labels}}[{window}]))",
    "errors": 'sum(increase(http_requests_total{status=~"5..|0",{labels}}[{window}]))',
    "p95_ms": "1000 * histogram_quantile(0.95, sum by (le) (increase(http_request_duration_seconds_bucket{{labels}}[{window}])))",
    "p99_ms": "1000 * histogram_quantile(0.99, sum by (le) (increase(http_request_duration_seconds_bucket{{labels}}[{window}])))",
    "cache_hits": "sum(increase(cache_hits_total{{labels}}[{window}]))",
}
API_PATH = "/api/v1/query_range"
# Prometheus refuses a range query of more points per series than this.
MAX_POINTS = 11000
ROUND_DIGITS = 6


# -- queries ------------------------------------------------------------------------------------

def promql_duration(width):
    """A bucket width in seconds as a PromQL duration: 300 -> '300s', 0.5 -> '500ms'."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0 or math.isinf(width):
        raise ConfigurationError("bucket width must be a positive number of seconds, got %r" % (width,))
    millis = round(width * 1000)
    if abs(millis - width * 1000) > 1e-6:
        raise ConfigurationError("bucket width %r s is not a whole number of milliseconds, which PromQL needs" % (width,))
    return "%ds" % (millis // 1000) if millis % 1000 == 0 else "%dms" % millis


def _label_matchers(selector):
    if selector is not None and not isinstance(selector, str):
        raise ConfigurationError("prometheus selector must be label matchers text such as job=\"api\", not %r" % (selector,))
    text = (selector or "").strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    text = text.rstrip(",").strip()
    if "{" in text or "}" in text:
        raise ConfigurationError("prometheus selector %r must be label matchers such as job=\"api\",env=\"prod\"" % selector)
    return text


def render_queries(width, overrides=None, selector=None):
    """{name: PromQL} with ``{window}`` and ``{labels}`` filled in.

    ``overrides`` replaces default queries by name; a name set to None or ""
    is not queried (its metric is then no data), except ``requests``.
    """
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ConfigurationError("prometheus queries must be a mapping of query name to PromQL; names: %s"
                                 % ", ".join(QUERY_NAMES))
    unknown = sorted(str(name) for name in overrides if name not in QUERY_NAMES)
    if unknown:
        raise ConfigurationError("prometheus queries has unknown names %s; valid names: %s"
                                 % (", ".join(unknown), ", ".join(QUERY_NAMES)))
    window = promql_duration(width)
    labels = _label_matchers(selector)
    queries = {}
    for name in QUERY_NAMES:
        template = overrides[name] if name in overrides else DEFAULT_QUERIES[name]
        if template is None or (isinstance(template, str) and not template.strip()):
            if name in REQUIRED_QUERIES:
                raise ConfigurationError("prometheus query %s cannot be empty: every rate and sample count rests on it"
                                         % name)
            continue
        if not isinstance(template, str):
            raise ConfigurationError("prometheus query %s must be PromQL text, not %r" % (name, template))
        if labels and "{labels}" not in template:
            raise ConfigurationError("prometheus query %s has no {labels} placeholder for the selector %s: add it "
                                     "inside the metric's braces or put the labels in the query" % (name, labels))
        queries[name] = template.replace("{window}", window).replace("{labels}", labels)
    return queries


def _unix(moment):
    if not isinstance(moment, datetime.datetime) or moment.tzinfo is None:
        raise ConfigurationError("window times must be timezone-aware datetimes, got %r" % (moment,))
    return (moment - slo.EPOCH).total_seconds()


def _number(seconds):
    text = "%.3f" % seconds
    return text.rstrip("0").rstrip(".")


def range_query_params(query, since, as_of, width):
    """The parameters of GET /api/v1/query_range whose point at T is the bucket [T - width, T).

    start is the end of the first grid bucket that starts at or after ``since``,
    end the end of the last grid bucket that ends at or before ``as_of``, step
    the width. None when the window holds no complete bucket (ask nothing: the
    window is empty).
    """
    step = promql_duration(width)
    for moment in (since, as_of):
        _unix(moment)   # refuses naive times before the grid arithmetic does, with a TypeError
    first_start = slo.grid_start(since, width)
    if first_start < since:
        first_start += datetime.timedelta(seconds=width)
    first_end = first_start + datetime.timedelta(seconds=width)
    last_end = slo.grid_start(as_of, width)
    if last_end < first_end:
        return None
    points = int(round((_unix(last_end) - _unix(first_end)) / width)) + 1
    if points > MAX_POINTS:
        raise ConfigurationError("the window %s to %s holds %d buckets of %s; Prometheus returns at most %d points "
                                 "per query: shorten the window or widen the buckets"
                                 % (since.isoformat(), as_of.isoformat(), points, step, MAX_POINTS))
    return {"query": query, "start": _number(_unix(first_end)), "end": _number(_unix(last_end)), "step": step}


def query_url(base_url, params):
    """The full URL of a range query, to report so that a person can run it by hand."""
    return "%s%s?%s" % (api_base(base_url), API_PATH, urlencode(params))


def api_base(base_url):
    """The server URL without a trailing slash, checked to be http(s)."""
    text = (base_url or "").strip()
    if not (text.startswith("http://") or text.startswith("https://")) or len(text.split("://", 1)[1]) == 0:
        raise ConfigurationError("prometheus_url %r must be the server's http:// or https:// URL, "
                                 "e.g. http://prometheus:9090" % (base_url,))
    text = text.rstrip("/")
    if text.endswith(API_PATH):
        text = text[:-len(API_PATH)]
    return text


# -- answers -------------------------------------------------------------------------------------

def parse_response(name, body):
    """The JSON of an answer (bytes or text); ConfigurationError when it is not JSON."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body)
    except ValueError:
        start = one_line(body or "")[:60]
        raise ConfigurationError("Prometheus answered the %s query with something that is not JSON (%r): check that "
                                 "prometheus_url is the Prometheus server itself" % (name, start))


def _points(name, response):
    """{grid time in ms: value} of one answer; {} when it has no series."""
    if not isinstance(response, dict):
        raise ConfigurationError("the answer to the %s query is not a Prometheus API object: check that "
                                 "prometheus_url is the Prometheus server itself" % name)
    status = response.get("status")
    if status == "error":
        raise ConfigurationError("Prometheus rejected the %s query (%s): %s; fix that query"
                                 % (name, response.get("errorType", "error"), one_line(response.get("error", ""))))
    data = response.get("data")
    if status != "success" or not isinstance(data, dict):
        raise ConfigurationError("the answer to the %s query has status %r and no data: check that prometheus_url "
                                 "is the Prometheus server itself" % (name, status))
    kind = data.get("resultType")
    result = data.get("result")
    if kind not in ("matrix", "vector") or not isinstance(result, list):
        raise ConfigurationError("the %s query returned a %s, not one series over time: make it return an "
                                 "instant vector, e.g. sum(...)" % (name, kind))
    if len(result) > 1:
        shown = ", ".join(_labels_text(series) for series in result[:3])
        more = " and %d more" % (len(result) - 3) if len(result) > 3 else ""
        raise ConfigurationError("the %s query returned %d series (%s%s), not one: aggregate them with sum(...) "
                                 "(or sum by (le) inside histogram_quantile)" % (name, len(result), shown, more))
    if not result:
        return {}
    series = result[0] if isinstance(result[0], dict) else {}
    pairs = series.get("values") if kind == "matrix" else [series.get("value")] if "value" in series else None
    if not isinstance(pairs, list):
        raise ConfigurationError("the %s query's series has no %s: not a Prometheus API answer"
                                 % (name, "values" if kind == "matrix" else "value"))
    points = {}
    for pair in pairs:
        try:
            stamp, text = pair
            points[int(round(float(stamp) * 1000))] = float(text)
        except (TypeError, ValueError):
            raise ConfigurationError("the %s query's series holds %r, not a [time, \"value\"] pair" % (name, pair))
    return points


def _labels_text(series):
    labels = series.get("metric") if isinstance(series, dict) else None
    if not isinstance(labels, dict):
        return "{}"
    return "{%s}" % ",".join('%s="%s"' % (key, labels[key]) for key in sorted(labels))


def _finite(name, millis, value):
    """None for NaN (no data); the value otherwise; an error for an infinite one."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        raise ConfigurationError("the %s query returned %s at %s: histogram_quantile needs the le buckets of a "
                                 "histogram (..._bucket, sum by (le)); fix that query"
                                 % (name, value, _iso(millis)))
    return round(value, ROUND_DIGITS)


def _iso(millis):
    return (slo.EPOCH + datetime.timedelta(milliseconds=millis)).isoformat()


def _share(part, whole):
    """100 x part / whole, at most 100 (extrapolation can overshoot); part None means 0."""
    return round(min(100.0, 100.0 * (part or 0.0) / whole), ROUND_DIGITS)


def buckets_from_responses(responses, width):
    """slo.Bucket objects from {query name: parsed JSON answer of query_range}.

    The point at grid time T is the bucket [T - width, T). Every metric's sample
    count is the bucket's request count. A query absent from ``responses`` leaves
    its metric out (no data); a query present with an empty series counts 0.
    """
    if not isinstance(responses, dict):
        raise ConfigurationError("responses must map query names to Prometheus answers")
    unknown = sorted(str(name) for name in responses if name not in QUERY_NAMES)
    if unknown:
        raise ConfigurationError("answers to unknown queries %s; valid names: %s"
                                 % (", ".join(unknown), ", ".join(QUERY_NAMES)))
    for name in REQUIRED_QUERIES:
        if name not in responses:
            raise ConfigurationError("the %s query is required: every rate and sample count rests on it" % name)
    promql_duration(width)
    width_ms = int(round(width * 1000))
    points = {name: _points(name, answer) for name, answer in responses.items()}
    buckets = []
    for millis in sorted(set().union(*(p.keys() for p in points.values()))):
        if millis % width_ms:
            raise ConfigurationError("a Prometheus point at %s is not on the %s bucket grid: query with start and end "
                                     "on the grid and step = the bucket width (range_query_params)"
                                     % (_iso(millis), promql_duration(width)))
        requests = _finite("requests", millis, points["requests"].get(millis))
        if requests is not None:
            requests = max(0.0, requests)
        count = int(round(requests)) if requests is not None else 0
        metrics = {"requests": slo.Sample(requests, count)}
        for metric, source in (("err_rate", "errors"), ("cache_hit_rate", "cache_hits")):
            if source in points:
                part = _finite(source, millis, points[source].get(millis))
                metrics[metric] = slo.Sample(_share(part, requests) if requests else None, count)
        for metric in ("p95_ms", "p99_ms"):
            if metric in points:
                metrics[metric] = slo.Sample(_finite(metric, millis, points[metric].get(millis)), count)
        end = slo.EPOCH + datetime.timedelta(milliseconds=millis)
        buckets.append(slo.Bucket(end - datetime.timedelta(milliseconds=width_ms), end, metrics))
    return buckets
