#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: slo_check
short_description: Decide from SLO rules whether a deploy passes, needs attention or must roll back
version_added: 0.1.0
description:
  - Evaluates SLO rules over time buckets of request metrics and returns a decision, C(pass) < C(warn) < C(page)
    < C(critical) < C(rollback), or C(hold) when the data are too thin to decide, with the values, thresholds,
    bucket times, sample counts and queries that produced it.
  - Buckets are C([start, start + bucket_seconds)) on a grid aligned to the Unix epoch. Only buckets that start at
    or after O(since) and end at or before O(as_of) count; the current, incomplete bucket never does.
  - An error is a request with status 500 or more, or no response at all (status 0 or NULL); 4xx responses are not
    errors. Rates are percentages (C(1) means 1 %).
  - With O(source=postgres), the metrics are computed from the raw C(performance_metrics) table of the kit (role
    M(slogate.supabase.kit)) with C(date_bin), touching only the window's rows through the C(created_at) index; or
    read from the kit's 5-minute views, or from your own query (O(metrics_from)).
  - With O(source=prometheus), from range queries to a Prometheus server, one per metric, whose points fall on the
    bucket grid. A bucket's samples are its request count; an empty error series while requests exist means no
    errors, not no data.
  - With O(wait_for_buckets), watches live until that many buckets are complete, polling every O(poll_interval)
    seconds, and stops early on C(rollback) or C(critical).
extends_documentation_fragment:
  - slogate.supabase.postgres
  - slogate.supabase.in_worker
options:
  rules:
    description:
      - The rules. Each has C(metric) (C(p95_ms), C(p99_ms), C(err_rate), C(cache_hit_rate), C(requests), or
        C(mv_refresh_failures), one value for the whole window), C(op) (C(>), C(>=), C(<), C(<=)), C(threshold),
        C(action) (C(warn), C(page), C(critical), C(rollback)), C(for) (N consecutive buckets, default 1) or
        C(within) (C([M, N]), M breaching buckets among N consecutive ones), C(no_data) (C(ignore), C(breach),
        C(hold), default C(hold)) and C(min_samples) (a bucket with fewer requests is no data, default 20).
      - Mutually exclusive with O(preset).
    type: list
    elements: dict
  preset:
    description:
      - A named rule set. V(runbook) is the runbook's alert tiers and rollback triggers; V(success_criteria) its
        success criteria (P95 < 500 ms, P99 < 1 s, errors < 1 %, cache hit >= 30 %).
      - Used when O(rules) is not given.
    type: str
    choices: [runbook, success_criteria]
    default: runbook
  source:
    description:
      - Where the request metrics come from.
      - V(locust) and V(k6) judge a finished load test from its output file O(path), read once. Locust, the CSV of
        C(--csv) (C(PREFIX_stats_history.csv), a series of buckets; C(PREFIX_stats.csv), the run as one bucket), the
        JSON of C(--json-file) (the run as one bucket) or the shipped locustfile's request log (exact buckets). k6, the
        JSON lines of C(--out json=FILE) (exact buckets) or C(--summary-export) (the run as one bucket). The result's
        RV(report) says which and what its numbers approximate.
      - Rules on C(mv_refresh_failures) read the database; without one they are left out with a warning.
    type: str
    choices: [postgres, prometheus, locust, k6]
    default: postgres
  path:
    description:
      - For O(source=locust) or O(source=k6), the output file (C(.gz) is read compressed).
    type: path
  prometheus_url:
    description:
      - For O(source=prometheus), the server's base URL, for example C(http://prometheus:9090).
    type: str
  prometheus_queries:
    description:
      - PromQL per metric, replacing the defaults by name. The names are C(requests), C(errors) (requests with status
        5xx or 0), C(p95_ms), C(p99_ms) and C(cache_hits); a name set to null or empty leaves that metric out.
      - C({window}) is replaced by the bucket width and C({labels}) by O(prometheus_selector).
      - The defaults read C(http_requests_total) with a C(status) label, the histogram
        C(http_request_duration_seconds) and C(cache_hits_total), each summed with C(increase) over one bucket.
    type: dict
  prometheus_selector:
    description:
      - Label matchers added to every default query, for example C(job="api").
    type: str
  prometheus_headers:
    description:
      - HTTP headers for Prometheus, for example a proxy's credentials. Never logged.
    type: dict
  prometheus_bearer_token:
    description:
      - Sent to Prometheus in the C(Authorization) header as a bearer token. Never logged.
    type: str
  validate_certs:
    description:
      - Whether to check Prometheus's TLS certificate.
    type: bool
    default: true
  http_timeout:
    description:
      - Seconds to wait for each Prometheus answer.
    type: float
    default: 10
  since:
    description:
      - Start of the window, usually the deploy time (ISO 8601 or Unix seconds; without a zone, UTC).
        A bucket that starts exactly then counts; the bucket that contains it does not.
      - Either this or O(lookback_minutes) for a live source. For a load test's file, default its first request.
    type: str
  lookback_minutes:
    description:
      - Window start as minutes before O(as_of), when O(since) is not given.
    type: int
  as_of:
    description:
      - End of the window, to replay past data (ISO 8601 or Unix seconds). Rows after it are never read, so a replay
        equals the live run that stopped then. Default, the database's current time.
    type: str
  bucket_seconds:
    description:
      - Width of a bucket. 300 in production; demos use 10.
    type: int
    default: 300
  metrics_from:
    description:
      - Where the PostgreSQL source reads the buckets.
      - V(table) computes them from the raw O(metrics_table) with C(date_bin) at O(bucket_seconds).
      - V(views) reads the kit's 5-minute views named in O(metrics_views); O(bucket_seconds) must be 300.
      - V(query) runs O(query), your own SQL, in a read-only transaction.
    type: str
    choices: [table, views, query]
    default: table
  metrics_table:
    description:
      - The request metrics table, as C(schema.table).
    type: str
    default: public.performance_metrics
  metrics_views:
    description:
      - For O(metrics_from=views), the view with C(bucket), C(requests), C(err_rate), C(p95_ms), C(p99_ms), then the
        view with C(bucket) and C(cache_hit_rate_percent), each as C(schema.view).
    type: list
    elements: str
    default: [public.api_metrics_5m, public.performance_analytics_5min]
  query:
    description:
      - For O(metrics_from=query), SQL that returns one row per metric and bucket with the columns C(bucket) (the
        bucket's start, a timestamptz on the epoch grid of O(bucket_seconds)), C(metric) (C(p95_ms), C(p99_ms),
        C(err_rate), C(cache_hit_rate) or C(requests)), C(value) (null when unknown) and C(samples).
      - "It may use the named parameters C(%(start)s) and C(%(end)s) (the first bucket's start and the last
        bucket's end: read only rows in between), and C(%(width)s) (the bucket width in seconds); write a literal
        percent sign as C(%%)."
    type: str
  refresh_log_table:
    description:
      - The materialized view refresh log, for C(mv_refresh_failures), as C(schema.table).
    type: str
    default: public.mv_refresh_log
  wait_for_buckets:
    description:
      - Watch live until this many buckets of the window are complete (0, the default, evaluates once).
    type: int
    default: 0
  poll_interval:
    description:
      - Seconds between two evaluations while watching.
    type: float
    default: 30
  wait_timeout:
    description:
      - Seconds to go on watching while the decision is C(hold) once O(wait_for_buckets) are complete, counted
        from the later of the first poll and O(since).
        Default, two more buckets.
    type: int
  fail_on:
    description:
      - The lowest decision that fails the task. V(never) only reports.
    type: str
    choices: [warn, page, critical, rollback, never]
    default: rollback
  fail_on_hold:
    description:
      - Also fail the task when the decision is C(hold) at the end.
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Only reads; runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
author:
  - slogate.supabase developers (@slogate)
"""

EXAMPLES = r"""
- name: Watch three 5-minute buckets after the deploy, roll back on the runbook's triggers
  slogate.supabase.slo_check:
    preset: runbook
    since: "{{ deploy_started_at }}"
    wait_for_buckets: 3
  register: monitor_verdict

- name: Judge the canary from Prometheus (the refresh-log rule also reads the database when db_url is given)
  slogate.supabase.slo_check:
    source: prometheus
    prometheus_url: http://prometheus:9090
    prometheus_selector: job="api"
    since: "{{ deploy_started_at }}"
    wait_for_buckets: 3

- name: Replay last night's incident with a candidate rule set
  slogate.supabase.slo_check:
    rules:
      - {metric: err_rate, op: ">", threshold: 1, action: rollback, for: 2}
      - {metric: p95_ms, op: ">", threshold: 600, action: warn, within: [2, 3]}
    since: "2026-11-25T23:00:00Z"
    as_of: "2026-11-26T01:00:00Z"
    fail_on: never
"""

RETURN = r"""
decision:
  description: C(pass), C(warn), C(page), C(critical), C(rollback) or C(hold).
  returned: success or a failure after evaluation
  type: str
  sample: rollback
msg:
  description: One line that explains the decision with its numbers.
  returned: always
  type: str
  sample: "rollback: err_rate 3.4% and 3.1% > 1% for 2 consecutive buckets (12:05, 12:10; 812 and 790 requests)"
fired:
  description: The rules that fired, with their message and the buckets that made them fire.
  returned: success or a failure after evaluation
  type: list
  elements: dict
evaluations:
  description: Every rule with its status (C(fired), C(held), C(clear)), the reason it is held, and per bucket the start,
    end, value, samples and whether it breached (null when unknown).
  returned: success or a failure after evaluation
  type: list
  elements: dict
window:
  description: C(since), C(as_of), C(bucket_seconds) and the number of complete buckets evaluated.
  returned: success or a failure after evaluation
  type: dict
totals:
  description:
    - For O(metrics_from=table), the whole window from O(since) to O(as_of) taken together, partial buckets included
      (C(requests), C(err_rate), C(p95_ms), C(p99_ms), C(cache_hit_rate); rates null without requests). What a
      baseline or a smoke test reports; the rules judge buckets, not these.
  returned: success or a failure after evaluation, with O(metrics_from=table)
  type: dict
  sample: {requests: 4210, err_rate: 0.21, p95_ms: 182.5, p99_ms: 410.0, cache_hit_rate: 46.3}
polls:
  description: How many times the rules were evaluated.
  returned: success or a failure after evaluation
  type: int
report:
  description: For O(source=locust) or O(source=k6), what the file held - C(kind) (C(series) or C(run)), C(format),
    C(start), C(end), C(bucket_seconds), C(buckets), C(requests) and C(notes) (what the numbers approximate).
  returned: with O(source=locust) or O(source=k6)
  type: dict
queries:
  description: The statements that ran, with their parameters, so a person can check the decision by hand.
  returned: always
  type: list
  elements: str
"""

import contextlib
import datetime
import gzip
import http.client
import os
import socket
import time
import urllib.error

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url

from ansible_collections.slogate.supabase.plugins.module_utils import load_reports, prometheus, slo
from ansible_collections.slogate.supabase.plugins.module_utils.conninfo import DB_URL_ENV_VARS
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError, SlogateError, mask_secrets
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import jsonable, module_connect, pg_argument_spec, sql

BUCKETS = """
SELECT pg_catalog.date_bin(pg_catalog.make_interval(secs => %(width)s), m.created_at,
                           TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       count(*) AS requests,
       100.0 * count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) / count(*) AS err_rate,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.duration_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.duration_ms) AS p99_ms,
       100.0 * count(*) FILTER (WHERE m.cache_hit) / count(*) AS cache_hit_rate
FROM {table} m
WHERE m.created_at >= %(start)s AND m.created_at < %(end)s
GROUP BY 1
ORDER BY 1
"""

VIEW_BUCKETS = """
SELECT a.bucket, a.requests, a.err_rate, a.p95_ms, a.p99_ms, p.cache_hit_rate_percent AS cache_hit_rate
FROM {errors_view} a
LEFT JOIN {cache_view} p ON p.bucket = a.bucket
WHERE a.bucket >= %(start)s AND a.bucket < %(end)s
ORDER BY 1
"""

TOTALS = """
SELECT count(*) AS requests,
       100.0 * count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) / NULLIF(count(*), 0) AS err_rate,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.duration_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.duration_ms) AS p99_ms,
       100.0 * count(*) FILTER (WHERE m.cache_hit) / NULLIF(count(*), 0) AS cache_hit_rate
FROM {table} m
WHERE m.created_at >= %(since)s AND m.created_at < %(as_of)s
"""

REFRESH_FAILURES = """
SELECT count(*) AS failures FROM {table} l
WHERE l.status = 'failed' AND l.started_at >= %(since)s AND l.started_at <= %(as_of)s
"""


def qualified(name, option):
    parts = name.split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigurationError("%s=%r must be schema.table" % (option, name))
    return sql.Identifier(*parts)


def read_rules(params):
    if params["rules"]:
        return slo.parse_rules(params["rules"])
    return slo.preset(params["preset"])


def read_buckets(db, params, grid):
    """The window's buckets from the kit's raw table, the kit's 5-minute views, or the user's own query."""
    width = params["bucket_seconds"]
    bounds = dict(width=width, start=grid[0][0], end=grid[-1][1])
    if params["metrics_from"] == "views":
        if width != 300:
            raise ConfigurationError("metrics_from=views reads the kit's 5-minute views: set bucket_seconds=300, not %d" % width)
        views = params["metrics_views"]
        if len(views) != 2:
            raise ConfigurationError("metrics_views must name two views, the errors view then the cache view; got %d" % len(views))
        query = sql.SQL(VIEW_BUCKETS).format(errors_view=qualified(views[0], "metrics_views[0]"),
                                             cache_view=qualified(views[1], "metrics_views[1]"))
        return slo.buckets_from_rows(db.fetch_all(query, bounds), width)
    if params["metrics_from"] == "query":
        if not params["query"]:
            raise ConfigurationError("metrics_from=query needs the query option: SQL returning bucket, metric, value, samples")
        # The user's SQL only reads: a read-only transaction makes sure of it.
        db.execute("BEGIN READ ONLY", record=False)
        try:
            rows = db.fetch_all(params["query"], bounds)
        finally:
            db.execute("ROLLBACK", record=False)
        return slo.buckets_from_metric_rows(rows, width)
    query = sql.SQL(BUCKETS).format(table=qualified(params["metrics_table"], "metrics_table"))
    return slo.buckets_from_rows(db.fetch_all(query, bounds), width)


def measure(db, params, rules, since, as_of):
    """Buckets and window values from the database for the window [since, as_of]."""
    grid = slo.window_grid(since, as_of, params["bucket_seconds"])
    buckets = read_buckets(db, params, grid) if grid else []
    window_values = {}
    if any(rule.metric == "mv_refresh_failures" for rule in rules):
        window_values = refresh_failures(db, params, since, as_of)
    return buckets, window_values


FILE_SOURCES = ("locust", "k6")


def read_report(params):
    """The load generator's file as a load_reports.Report."""
    path = params["path"]
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            end = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
            if params["source"] == "k6":
                return load_reports.parse_k6(handle, params["bucket_seconds"], end=end)
            return load_reports.parse_locust(handle.read(), params["bucket_seconds"], end=end)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConfigurationError("cannot read the %s report %s: %s" % (params["source"], path, getattr(exc, "strerror", None) or exc))


def judge_file(module, params, rules):
    """Evaluate a finished load test's file once and exit: no database, no watching."""
    if params["wait_for_buckets"]:
        raise ConfigurationError("wait_for_buckets watches a live source; a %s file is read once: leave it out" % params["source"])
    if params["lookback_minutes"]:
        raise ConfigurationError("lookback_minutes does not apply to a %s file: give since/as_of or neither" % params["source"])
    left_out = [rule.id for rule in rules if rule.metric in slo.WINDOW_METRICS]
    if left_out:
        module.warn("%s not evaluated: a load generator's file has no refresh log" % ", ".join(left_out))
        rules = [rule for rule in rules if rule.metric not in slo.WINDOW_METRICS]
    report = read_report(params)
    since = slo.parse_time(params["since"], "since") if params["since"] else None
    as_of = slo.parse_time(params["as_of"], "as_of") if params["as_of"] else None
    window = report.window(since, as_of)
    decision = slo.evaluate(rules, report.buckets, window["since"], window["as_of"], window["width"], grid=window["grid"])
    result = dict(changed=False, polls=1, queries=[], report=jsonable(report.to_dict()))
    result.update(jsonable(slo.to_dict(decision, window["width"])))
    finish(module, params, decision, result)


def finish(module, params, decision, result):
    failing = (params["fail_on"] != "never" and decision.decision not in ("hold",)
               and slo.severity(decision.decision) >= slo.severity(params["fail_on"]))
    if failing or (decision.decision == "hold" and params["fail_on_hold"]):
        module.fail_json(**result)
    module.exit_json(**result)


class PrometheusSource(object):
    """Buckets from a Prometheus server's range queries, one query per metric, on the bucket grid."""

    def __init__(self, module, params):
        self.module = module
        self.params = params
        self.base = prometheus.api_base(params["prometheus_url"])
        self.queries = prometheus.render_queries(params["bucket_seconds"], params["prometheus_queries"],
                                                 params["prometheus_selector"])
        self.headers = dict(params["prometheus_headers"] or {})
        if params["prometheus_bearer_token"]:
            self.headers["Authorization"] = "Bearer %s" % params["prometheus_bearer_token"]
        self.secrets = [params["prometheus_bearer_token"]] + list(self.headers.values())
        self.urls = []

    def fetch(self, name, url):
        try:
            response = open_url(url, headers=self.headers, validate_certs=self.params["validate_certs"],
                                timeout=self.params["http_timeout"])
            body = response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read() if exc.code in (400, 422, 503) else None
            if not body:
                raise ConfigurationError(mask_secrets("Prometheus at %s answered HTTP %d to the %s query" % (
                    self.base, exc.code, name), self.secrets))
        except (urllib.error.URLError, UrlConnectionError, SSLValidationError, http.client.HTTPException,
                socket.error, ValueError) as exc:
            raise ConfigurationError(mask_secrets("Prometheus at %s is not reachable: %s" % (
                self.base, getattr(exc, "reason", exc)), self.secrets))
        return prometheus.parse_response(name, body)

    def buckets(self, since, as_of):
        width = self.params["bucket_seconds"]
        self.urls = []
        answers = {}
        for name, query in sorted(self.queries.items()):
            params = prometheus.range_query_params(query, since, as_of, width)
            if params is None:
                return []
            url = prometheus.query_url(self.base, params)
            self.urls.append(url)
            answers[name] = self.fetch(name, url)
        return prometheus.buckets_from_responses(answers, width)


def refresh_failures(db, params, since, as_of):
    row = db.fetch_one(sql.SQL(REFRESH_FAILURES).format(table=qualified(params["refresh_log_table"], "refresh_log_table")),
                       dict(since=since, as_of=as_of))
    return {"mv_refresh_failures": int(row["failures"])}


def module_kwargs():
    """AnsibleModule's arguments, for the module and for its run in the Ansible worker (the action plugin)."""
    return dict(
        argument_spec=pg_argument_spec(
            rules=dict(type="list", elements="dict"),
            preset=dict(type="str", choices=sorted(slo.PRESETS), default="runbook"),
            source=dict(type="str", choices=["postgres", "prometheus", "locust", "k6"], default="postgres"),
            path=dict(type="path"),
            since=dict(type="str"),
            lookback_minutes=dict(type="int"),
            as_of=dict(type="str"),
            bucket_seconds=dict(type="int", default=300),
            metrics_from=dict(type="str", choices=["table", "views", "query"], default="table"),
            metrics_table=dict(type="str", default="public.performance_metrics"),
            metrics_views=dict(type="list", elements="str", default=["public.api_metrics_5m", "public.performance_analytics_5min"]),
            query=dict(type="str"),
            refresh_log_table=dict(type="str", default="public.mv_refresh_log"),
            prometheus_url=dict(type="str"),
            prometheus_queries=dict(type="dict"),
            prometheus_selector=dict(type="str"),
            prometheus_headers=dict(type="dict", no_log=True),
            prometheus_bearer_token=dict(type="str", no_log=True),
            validate_certs=dict(type="bool", default=True),
            http_timeout=dict(type="float", default=10),
            wait_for_buckets=dict(type="int", default=0),
            poll_interval=dict(type="float", default=30),
            wait_timeout=dict(type="int"),
            fail_on=dict(type="str", choices=["warn", "page", "critical", "rollback", "never"], default="rollback"),
            fail_on_hold=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("since", "lookback_minutes")],
        required_if=[("source", "prometheus", ["prometheus_url"]), ("source", "locust", ["path"]), ("source", "k6", ["path"])],
        supports_check_mode=True,
    )


def run_task(module):
    """The whole task on an AnsibleModule or the worker's stand-in; ends with exit_json or fail_json."""
    params = module.params
    result = dict(changed=False, queries=[], polls=0)
    db = None
    source = None
    totals = None
    try:
        rules = read_rules(params)
        if params["bucket_seconds"] < 1:
            raise ConfigurationError("bucket_seconds must be 1 or more, got %d" % params["bucket_seconds"])
        fixed_as_of = slo.parse_time(params["as_of"], "as_of") if params["as_of"] else None
        if params["source"] in FILE_SOURCES:
            judge_file(module, params, rules)
        if not (params["since"] or params["lookback_minutes"]):
            raise ConfigurationError("give since (the deploy time) or lookback_minutes: the window of a live source has no default")
        if params["source"] == "prometheus":
            source = PrometheusSource(module, params)
        # Prometheus needs the database only for the refresh log; without one, those rules are left out, loudly.
        needs_db = params["source"] == "postgres"
        if not needs_db:
            log_rules = [rule for rule in rules if rule.metric in slo.WINDOW_METRICS]
            needs_db = bool(log_rules) and database_configured(params)
            if log_rules and not needs_db:
                module.warn("%s not evaluated: it reads the refresh log in the database; give db_url to include it"
                            % ", ".join(rule.id for rule in log_rules))
                rules = [rule for rule in rules if rule.metric not in slo.WINDOW_METRICS]
        db = module_connect(module) if needs_db else None
        with db or contextlib.nullcontext():
            if db:
                db.connection.autocommit = True
            first_as_of = None
            while True:
                if db:
                    db.queries[:] = []   # report the statements of the last evaluation only
                as_of = fixed_as_of or (db.fetch_one("SELECT pg_catalog.now() AS now", record=False)["now"] if db else
                                        datetime.datetime.now(datetime.timezone.utc))
                since = (slo.parse_time(params["since"], "since") if params["since"] else
                         as_of - datetime.timedelta(minutes=params["lookback_minutes"]))
                if source:
                    buckets = source.buckets(since, as_of)
                    window_values = refresh_failures(db, params, since, as_of) if db else {}
                else:
                    buckets, window_values = measure(db, params, rules, since, as_of)
                decision = slo.evaluate(rules, buckets, since, as_of, params["bucket_seconds"], window_values)
                result["polls"] += 1
                first_as_of = first_as_of or as_of
                if not keep_watching(params, decision, fixed_as_of, max(first_as_of, since), as_of):
                    break
                time.sleep(params["poll_interval"])
            if not source:
                totals = window_totals(db, params, decision.window[0], decision.window[1])
    except SlogateError as exc:
        result["queries"] = reported_queries(db, source)
        module.fail_json(msg=str(exc), **result)
    result.update(jsonable(slo.to_dict(decision, params["bucket_seconds"])))
    result["queries"] = reported_queries(db, source)
    if totals is not None:
        result["totals"] = totals
    finish(module, params, decision, result)


def database_configured(params):
    return bool(params.get("db_url") or any(os.environ.get(name) for name in DB_URL_ENV_VARS))


def reported_queries(db, source):
    """What ran, so a person can check the decision by hand: SQL statements and Prometheus query URLs."""
    return (list(source.urls) if source else []) + (list(db.queries) if db else [])


def window_totals(db, params, since, as_of):
    """The whole window taken together, for the table source: what a baseline or smoke test reports."""
    if params["metrics_from"] != "table":
        return None
    row = db.fetch_one(sql.SQL(TOTALS).format(table=qualified(params["metrics_table"], "metrics_table")),
                       dict(since=since, as_of=as_of))
    return jsonable(dict(row, requests=int(row["requests"])))


def keep_watching(params, decision, fixed_as_of, watch_start, as_of):
    """Whether a live watch goes on after this evaluation.

    The deadline counts from the later of the first poll and O(since): a watch may start before the deploy's
    first bucket has begun, and that wait must not eat into the buckets it was asked to see.
    """
    wanted = params["wait_for_buckets"]
    if not wanted or fixed_as_of or decision.decision in ("rollback", "critical"):
        return False
    grace = params["wait_timeout"] if params["wait_timeout"] is not None else 2 * params["bucket_seconds"]
    if (as_of - watch_start).total_seconds() >= (wanted + 1) * params["bucket_seconds"] + grace:
        return False   # the deadline: what is still held stays held, and a person decides
    return decision.window[2] < wanted or decision.decision == "hold"


def main():
    run_task(AnsibleModule(**module_kwargs()))


if __name__ == "__main__":
    main()
