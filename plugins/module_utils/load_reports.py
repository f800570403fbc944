# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load-generator output in, SLO buckets out: Locust's and k6's result files as
``slo.Bucket`` values, so a load test is judged by the same rules as the
monitor window. Pure logic: the caller reads the file and hands over its text
(Locust) or its lines (k6, streamed); nothing here opens a file, a socket or a
clock.

A ``Report`` is either a ``series`` (buckets ``[start, start + width)`` on the
grid aligned to the Unix epoch, exactly like PostgreSQL's
``date_bin(width, t, '1970-01-01 00:00+00')``, one bucket per grid cell that
has requests) or a ``run`` (exactly one bucket ``[start, end)`` covering the
whole run, for formats that only carry totals). Metrics follow DESIGN.md:
error = status >= 500 or no response (status 0 or missing), 4xx never;
``err_rate`` and ``cache_hit_rate`` are percentages of all requests; every
metric's sample count is the bucket's request count. ``notes`` says, for each
format, what the numbers approximate.

Formats (detected from the content):

Locust (``parse_locust``):

- ``locust-request-log-csv``: the per-request log ``tests/load/locustfile.py``
  writes when ``SLOGATE_REQUEST_LOG`` is set (header
  ``end_time,status,duration_ms,cache_hit``): a series, exact (percentile_cont
  per bucket, cache_hit_rate from the ``X-Cache`` header).
- ``locust-stats-history-csv`` (``--csv PREFIX`` -> ``PREFIX_stats_history.csv``):
  a series. Requests and errors per bucket are the differences of the
  cumulative ``Total Request Count``/``Total Failure Count`` of the
  ``Aggregated`` rows, attributed to the bucket of each row's timestamp
  (Locust writes a row a second, so up to a second of requests can land in
  the neighbouring bucket). p95/p99 only with ``--csv-full-history``: then
  Locust writes its rolling 10-second percentiles, and a bucket's value is the
  highest of those written in it; without it Locust writes percentiles
  cumulative since the start, which say nothing about a bucket, so they are
  left out (no data).
- ``locust-stats-csv`` (``PREFIX_stats.csv``): a run, from the ``Aggregated``
  row. The file has no clock time: the caller gives ``end`` (when the run
  ended, e.g. the file's modification time) and the start is
  ``end - Request Count / Requests/s`` (Locust's requests/s is the count over
  the time from the start to the last request).
- ``locust-json`` (``--json`` / ``--json-file``): a run from the first entry's
  start to the last request; p95/p99 are Locust's own percentile of its
  response-time histogram over the whole run (nearest rank over times rounded
  to two significant digits above 100 ms). Its per-second counts would give
  per-bucket requests but not per-bucket percentiles, so it is not cut into a
  series.

Locust counts as failures what the locustfile marks failed; the shipped
locustfile marks exactly status >= 500 and no response, so failures are
errors. cache_hit_rate: the shipped locustfile names a request after its
``X-Cache`` header (``/api/search?q= [X-Cache: hit]``); entries so named give
the hits (in the history only with ``--csv-full-history``). Without such
names the metric is absent (no data).

k6 (``parse_k6``):

- ``k6-json-lines`` (``--out json=FILE``): a series, exact. One request per
  ``http_reqs`` point (``http_req_duration`` points when there are none),
  bucketed by the point's time (k6 stamps HTTP samples with the end of the
  request); the ``status`` tag decides errors; p95/p99 are percentile_cont of
  the bucket's ``http_req_duration`` values; cache hits are the ``cache_hits``
  Rate points with value 1 (the shipped script records one per request).
- ``k6-summary-export`` (``--summary-export FILE``) and ``k6-summary-json``
  (``JSON.stringify(data)`` in ``handleSummary``): a run. requests =
  ``http_reqs.count``; the duration is ``count / rate``, ending at ``end``
  (required: the file has no clock time); p95/p99 = ``http_req_duration``
  ``p(95)``/``p(99)`` (k6's percentiles interpolate exactly like
  percentile_cont; absent unless ``summaryTrendStats`` lists them); errors =
  ``http_req_failed`` passes (a Rate: ``passes`` counts true samples, that is
  failed requests); this equals DESIGN's errors only when the script sets
  ``http.setResponseCallback(http.expectedStatuses({min: 200, max: 499}))``;
  cache_hit_rate = ``cache_hits`` passes / requests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import datetime
import json
import math
import re
from collections import namedtuple
from dataclasses import dataclass
from typing import Optional, Tuple

from ansible_collections.slogate.supabase.plugins.module_utils import slo
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

SERIES = "series"
RUN = "run"
KINDS = (SERIES, RUN)

# A request of a per-request source: time (aware datetime, when it ended), HTTP
# status (0 or None: no response), duration in ms (None: unknown), cache hit
# (True, False, or None when the source does not say).
Request = namedtuple("Request", "time status duration_ms cache_hit")

REQUEST_LOG_HEADER = ("end_time", "status", "duration_ms", "cache_hit")
# How the shipped locustfile names a request after its X-Cache header.
CACHE_MARKER = "[X-Cache: "
CACHE_HIT_MARKER = "[X-Cache: hit]"
LOCUST_AGGREGATED = "Aggregated"

_FRACTION = re.compile(r"\.(\d+)")


@dataclass(frozen=True)
class Report:
    """Buckets from one load-generator file, and what they are approximations of."""

    kind: str                          # "series" or "run"
    buckets: Tuple[slo.Bucket, ...]
    start: datetime.datetime           # first request (series) or start of the run
    end: datetime.datetime             # last request (series) or end of the run
    format: str
    notes: Tuple[str, ...] = ()
    width: Optional[float] = None      # series: grid width in seconds; run: end - start in seconds

    @property
    def requests(self):
        return sum(int(b.metrics["requests"].samples) for b in self.buckets if "requests" in b.metrics)

    def window(self, since=None, as_of=None):
        """Keyword arguments for ``slo.evaluate``: since, as_of, width and grid.

        A series is judged on the epoch grid from ``since`` (default: its first
        request, so the partial first bucket does not count) to ``as_of``
        (default: its last request, so the incomplete last bucket does not
        count either). A run is judged as its one bucket (an explicit grid).
        """
        if self.kind == RUN:
            return dict(since=self.start, as_of=self.end, width=self.width, grid=[(b.start, b.end) for b in self.buckets])
        return dict(since=since or self.start, as_of=as_of or self.end, width=self.width, grid=None)

    def to_dict(self):
        """What the report is, for a module result (the buckets are reported by the evaluation)."""
        return dict(kind=self.kind, format=self.format, start=self.start.isoformat(), end=self.end.isoformat(),
                    bucket_seconds=self.width, buckets=len(self.buckets), requests=self.requests, notes=list(self.notes))


# -- shared helpers ---------------------------------------------------------------------------

def percentile_cont(sorted_values, fraction):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY v)`` over already sorted values.

    Linear interpolation between the values at ``floor`` and ``ceil`` of
    ``fraction * (n - 1)`` (0-based), in the same float arithmetic as
    PostgreSQL's ``float8_lerp``; None for no values.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ConfigurationError("percentile fraction must be a number from 0 to 1, not %r" % (fraction,))
    count = len(sorted_values)
    if count == 0:
        return None
    position = fraction * (count - 1)
    first = int(math.floor(position))
    second = int(math.ceil(position))
    low = float(sorted_values[first])
    if first == second:
        return low
    high = float(sorted_values[second])
    return low + (high - low) * (position - first)


def is_error(status):
    """DESIGN's error: status >= 500 or no response (0, None, empty); 4xx and the rest are not."""
    if status is None:
        return True
    try:
        code = int(str(status).strip() or 0)
    except ValueError:
        return True
    return code == 0 or code >= 500


def _step(width):
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0 or math.isinf(width):
        raise ConfigurationError("bucket width must be a positive number of seconds, got %r" % (width,))
    step = datetime.timedelta(seconds=width)
    if step <= datetime.timedelta(0):
        raise ConfigurationError("bucket width must be at least a microsecond, got %r seconds" % (width,))
    return step


def _aware(moment, what):
    if not isinstance(moment, datetime.datetime):
        raise ConfigurationError("%s must be a datetime, not %r" % (what, moment))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _from_epoch(seconds):
    return slo.EPOCH + datetime.timedelta(seconds=seconds)


class _Cell:
    __slots__ = ("requests", "errors", "durations", "hits")

    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.durations = []
        self.hits = 0


class _Grid:
    """Per-bucket accumulators on the epoch-aligned grid; bucket index = (t - EPOCH) // width, exact to the microsecond."""

    def __init__(self, width):
        self.step = _step(width)
        self.width = width
        self.cells = {}
        self.first = None
        self.last = None
        self.cache_known = False

    def cell(self, moment):
        index = (moment - slo.EPOCH) // self.step
        found = self.cells.get(index)
        if found is None:
            found = self.cells[index] = _Cell()
        return found

    def add_request(self, moment, status, duration_ms, cache_hit=None):
        cell = self.cell(moment)
        cell.requests += 1
        if is_error(status):
            cell.errors += 1
        if duration_ms is not None:
            cell.durations.append(float(duration_ms))
        if cache_hit is not None:
            self.cache_known = True
            if cache_hit:
                cell.hits += 1
        if self.first is None or moment < self.first:
            self.first = moment
        if self.last is None or moment > self.last:
            self.last = moment

    def add_cache(self, moment, hit):
        self.cache_known = True
        if hit:
            self.cell(moment).hits += 1

    def buckets(self):
        result = []
        for index in sorted(self.cells):
            cell = self.cells[index]
            if not cell.requests:
                continue
            start = slo.EPOCH + self.step * index
            count = cell.requests
            durations = sorted(cell.durations)
            metrics = {
                "requests": slo.Sample(float(count), count),
                "err_rate": slo.Sample(100.0 * cell.errors / count, count),
                "p95_ms": slo.Sample(percentile_cont(durations, 0.95), count),
                "p99_ms": slo.Sample(percentile_cont(durations, 0.99), count),
            }
            if self.cache_known:
                metrics["cache_hit_rate"] = slo.Sample(100.0 * min(cell.hits, count) / count, count)
            result.append(slo.Bucket(start, start + self.step, metrics))
        return tuple(result)


def buckets_from_requests(records, width):
    """Buckets on the epoch-aligned grid from per-request records ``(time, status, duration_ms, cache_hit)``.

    ``time`` is an aware datetime (a naive one is taken as UTC). A bucket per
    grid cell that has requests; cache_hit_rate only when some record says
    whether it was a cache hit (None everywhere: no data).
    """
    grid = _Grid(width)
    for record in records:
        moment, status, duration_ms, cache_hit = record
        grid.add_request(_aware(moment, "request time"), status, duration_ms, cache_hit)
    return grid.buckets()


def _series(grid, fmt, notes, what):
    if grid.first is None:
        raise ConfigurationError("%s holds no requests: nothing to judge; check that the load test ran and reached the app" % what)
    return Report(SERIES, grid.buckets(), grid.first, grid.last, fmt, tuple(notes), grid.width)


def _run(start, end, requests, errors, p95, p99, hits, fmt, notes):
    if requests <= 0:
        raise ConfigurationError("the %s file holds no requests: nothing to judge; check that the load test ran and reached the app" % fmt)
    if end <= start:
        end = start + datetime.timedelta(seconds=1)
    metrics = {
        "requests": slo.Sample(float(requests), requests),
        "err_rate": slo.Sample(100.0 * errors / requests, requests),
        "p95_ms": slo.Sample(p95, requests),
        "p99_ms": slo.Sample(p99, requests),
    }
    if hits is not None:
        metrics["cache_hit_rate"] = slo.Sample(100.0 * min(hits, requests) / requests, requests)
    return Report(RUN, (slo.Bucket(start, end, metrics),), start, end, fmt, tuple(notes), (end - start).total_seconds())


def _number(text, what):
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ConfigurationError("%s is %r, not a number" % (what, text))
    if math.isnan(value) or math.isinf(value):
        raise ConfigurationError("%s is %r, not a finite number" % (what, text))
    return value


def _count(text, what):
    value = _number(text, what)
    if value < 0 or value != int(value):
        raise ConfigurationError("%s is %r, not a count" % (what, text))
    return int(value)


def _optional_ms(text):
    """A percentile cell: None for N/A or empty."""
    value = str(text).strip()
    if not value or value.upper() == "N/A":
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if not (math.isnan(number) or math.isinf(number)) else None


def _cache_name(name):
    return CACHE_MARKER in (name or "")


def _cache_hit_name(name):
    return CACHE_HIT_MARKER in (name or "")


# -- Locust ---------------------------------------------------------------------------------------

def parse_locust(text, width, end=None):
    """A Report from a Locust result file's text; the format is detected from the content (see the module doc).

    ``width``: bucket width in seconds for series. ``end``: when the run
    ended, needed only for ``PREFIX_stats.csv`` (it has no clock time).
    """
    _step(width)
    if not isinstance(text, str):
        raise ConfigurationError("Locust report must be text, not %s" % type(text).__name__)
    body = text.lstrip("\ufeff").strip()
    if not body:
        raise ConfigurationError("the Locust report is empty: give PREFIX_stats_history.csv, PREFIX_stats.csv or the --json-file output")
    if body[0] in "[{":
        return _locust_json(body)
    try:
        rows = list(csv.reader(body.splitlines()))
    except csv.Error as exc:
        raise ConfigurationError("the Locust report is not readable CSV (%s): give PREFIX_stats_history.csv, PREFIX_stats.csv or the "
                                 "--json-file output" % exc)
    header = [cell.strip() for cell in rows[0]]
    if tuple(header) == REQUEST_LOG_HEADER:
        return _locust_request_log(rows[1:], width)
    if "Timestamp" in header and "Total Request Count" in header:
        return _locust_history(header, rows[1:], width)
    if "Request Count" in header and "Failure Count" in header and "Name" in header:
        return _locust_stats(header, rows[1:], end)
    if "Occurrences" in header or "Traceback" in header:
        raise ConfigurationError("this is Locust's failures or exceptions CSV, which has no request counts: give PREFIX_stats_history.csv, "
                                 "PREFIX_stats.csv or the --json-file output")
    raise ConfigurationError("not a Locust report: expected the CSV of --csv (PREFIX_stats_history.csv or PREFIX_stats.csv), the JSON of "
                             "--json/--json-file, or the locustfile's request log; the first line is %r" % body.splitlines()[0][:120])


def _locust_request_log(rows, width):
    grid = _Grid(width)
    for number, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip() or tuple(cell.strip() for cell in row) == REQUEST_LOG_HEADER:
            continue   # blank, or the header of another process's log appended (cat worker logs into one file)
        if len(row) != 4:
            raise ConfigurationError("Locust request log line %d has %d fields, expected 4 (end_time,status,duration_ms,cache_hit): "
                                     "the file is cut or not from tests/load/locustfile.py" % (number, len(row)))
        moment = _number(row[0], "Locust request log line %d end_time" % number)
        status = row[1].strip() or None
        duration = None if not row[2].strip() else _number(row[2], "Locust request log line %d duration_ms" % number)
        cache = row[3].strip().lower()
        if cache not in ("", "0", "1"):
            raise ConfigurationError("Locust request log line %d cache_hit is %r: expected 1, 0 or empty" % (number, row[3]))
        grid.add_request(_from_epoch(moment), status, duration, None if cache == "" else cache == "1")
    notes = ["exact: one line per request from tests/load/locustfile.py; p95/p99 are percentile_cont of the bucket's durations "
             "(Locust's response time: request sent to body read)",
             "requests are bucketed by the time they ended"]
    if grid.cache_known:
        notes.append("cache_hit_rate: requests whose X-Cache header said hit, of all requests")
    else:
        notes.append("cache_hit_rate: no data (no response carried an X-Cache header)")
    return _series(grid, "locust-request-log-csv", notes, "the Locust request log")


def _columns(header, names, what):
    missing = [name for name in names if name not in header]
    if missing:
        raise ConfigurationError("%s lacks the column(s) %s: it is not from Locust 2.x --csv, or it was edited" % (what, ", ".join(missing)))
    return {name: header.index(name) for name in header}


def _locust_history(header, rows, width):
    what = "Locust's stats history CSV"
    index = _columns(header, ("Timestamp", "Name", "Total Request Count", "Total Failure Count"), what)
    grid = _Grid(width)
    aggregated = []
    entries = {}
    for number, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(header):
            raise ConfigurationError("%s line %d has %d fields, the header %d: the file is cut or not from Locust --csv" % (
                what, number, len(row), len(header)))
        stamp = _number(row[index["Timestamp"]], "%s line %d Timestamp" % (what, number))
        total = _count(row[index["Total Request Count"]], "%s line %d Total Request Count" % (what, number))
        failed = _count(row[index["Total Failure Count"]], "%s line %d Total Failure Count" % (what, number))
        name = row[index["Name"]]
        if name == LOCUST_AGGREGATED:
            # Locust writes 0 when its rolling window is not there yet (the first seconds): unknown, not 0 ms.
            p95 = _optional_ms(row[index["95%"]]) if "95%" in index else None
            p99 = _optional_ms(row[index["99%"]]) if "99%" in index else None
            aggregated.append((stamp, total, failed, p95 or None, p99 or None))
        else:
            key = (row[index["Type"]] if "Type" in index else "", name)
            entries.setdefault(key, []).append((stamp, total))
    if not aggregated:
        raise ConfigurationError("%s has no Aggregated rows: it is not from Locust --csv, or the run never started" % what)
    full_history = bool(entries)
    previous_total = previous_failed = 0
    percentiles = {}
    for stamp, total, failed, p95, p99 in aggregated:
        moment = _from_epoch(stamp)
        # A drop means Locust's stats were reset: the count starts again from 0.
        new = total - previous_total if total >= previous_total else total
        new_failed = failed - previous_failed if failed >= previous_failed else failed
        previous_total, previous_failed = total, failed
        cell = grid.cell(moment)
        cell.requests += new
        cell.errors += min(new_failed, new) if new else 0
        if new:
            grid.first = moment if grid.first is None else min(grid.first, moment)
        grid.last = moment if grid.last is None else max(grid.last, moment)
        if full_history:
            slot = percentiles.setdefault((moment - slo.EPOCH) // grid.step, [None, None])
            slot[0] = _max(slot[0], p95)
            slot[1] = _max(slot[1], p99)
    cache_entries = [key for key in entries if _cache_name(key[1])]
    if cache_entries:
        grid.cache_known = True
        for key in cache_entries:
            if not _cache_hit_name(key[1]):
                continue
            previous = 0
            for stamp, total in entries[key]:
                new = total - previous if total >= previous else total
                previous = total
                grid.cell(_from_epoch(stamp)).hits += new
    report = _series(grid, "locust-stats-history-csv", [], what)
    buckets = []
    for bucket in report.buckets:
        metrics = dict(bucket.metrics)
        count = metrics["requests"].samples
        slot = percentiles.get((bucket.start - slo.EPOCH) // grid.step, [None, None])
        metrics["p95_ms"] = slo.Sample(slot[0], count)
        metrics["p99_ms"] = slo.Sample(slot[1], count)
        buckets.append(slo.Bucket(bucket.start, bucket.end, metrics))
    notes = ["requests and errors per bucket: differences of Locust's cumulative Aggregated counts, given to the bucket of each row's "
             "timestamp; Locust writes a row a second, so up to a second of requests can land in the neighbouring bucket",
             "Locust does not write the CSV again at exit: the last second of requests can be missing (the --json-file is complete)",
             "errors: requests the locustfile marked failed (the shipped one: status >= 500 and no response)"]
    if full_history:
        notes.append("p95/p99 per bucket are the highest of Locust's rolling 10-second percentiles written in the bucket "
                     "(each covers the 10 s before its row; response times rounded to 2 significant digits above 100 ms; the 0 Locust writes "
                     "before its window fills is no data)")
    else:
        notes.append("p95/p99: no data; without --csv-full-history Locust writes percentiles cumulative since the start, not per bucket")
    if cache_entries:
        notes.append("cache_hit_rate: requests named '%s' of all requests" % CACHE_HIT_MARKER)
    else:
        notes.append("cache_hit_rate: no data (needs --csv-full-history and the shipped locustfile's X-Cache request names)")
    return Report(SERIES, tuple(buckets), report.start, report.end, report.format, tuple(notes), grid.width)


def _max(current, value):
    if value is None:
        return current
    return value if current is None else max(current, value)


def _locust_stats(header, rows, end):
    what = "Locust's stats CSV"
    index = _columns(header, ("Name", "Request Count", "Failure Count", "Requests/s"), what)
    aggregated = None
    hits = 0
    cache_named = False
    for number, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(header):
            raise ConfigurationError("%s line %d has %d fields, the header %d: the file is cut or not from Locust --csv" % (
                what, number, len(row), len(header)))
        name = row[index["Name"]]
        if name == LOCUST_AGGREGATED:
            aggregated = (number, row)
        elif _cache_name(name):
            cache_named = True
            if _cache_hit_name(name):
                hits += _count(row[index["Request Count"]], "%s line %d Request Count" % (what, number))
    if aggregated is None:
        raise ConfigurationError("%s has no Aggregated row: it is not from Locust --csv, or the file is cut" % what)
    number, row = aggregated
    requests = _count(row[index["Request Count"]], "%s line %d Request Count" % (what, number))
    failures = _count(row[index["Failure Count"]], "%s line %d Failure Count" % (what, number))
    rate = _number(row[index["Requests/s"]], "%s line %d Requests/s" % (what, number))
    if end is None:
        raise ConfigurationError("Locust's stats CSV has no clock time: give the time the run ended (end), e.g. the file's modification time")
    end = _aware(end, "end")
    seconds = requests / rate if rate > 0 else 0.0
    start = end - datetime.timedelta(seconds=seconds)
    p95 = _optional_ms(row[index["95%"]]) if "95%" in index else None
    p99 = _optional_ms(row[index["99%"]]) if "99%" in index else None
    notes = ["one bucket for the whole run, from Locust's Aggregated row; it ends at the given end and lasts Request Count / Requests/s",
             "p95/p99: Locust's percentiles over the whole run (nearest rank over response times rounded to 2 significant digits "
             "above 100 ms), not percentile_cont",
             "Locust rewrites this file a second and not again at exit: the last second of requests can be missing "
             "(the --json-file is complete)",
             "errors: requests the locustfile marked failed (the shipped one: status >= 500 and no response)"]
    notes.append("cache_hit_rate: requests named '%s' of all requests" % CACHE_HIT_MARKER if cache_named
                 else "cache_hit_rate: no data (the requests carry no X-Cache names)")
    return _run(start, end, requests, failures, p95, p99, hits if cache_named else None, "locust-stats-csv", notes)


def locust_percentile(histogram, count, fraction):
    """Locust's percentile of a ``{rounded ms: requests}`` histogram (stats.calculate_response_time_percentile)."""
    if count <= 0:
        return None
    wanted = int(count * fraction)
    processed = 0
    for value in sorted(histogram, reverse=True):
        processed += histogram[value]
        if count - processed <= wanted:
            return float(value)
    return 0.0


def _locust_json(body):
    what = "Locust's JSON stats"
    try:
        entries = json.loads(body)
    except ValueError as exc:
        raise ConfigurationError("%s are not valid JSON (%s): the file is cut or not from locust --json/--json-file" % (what, exc))
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigurationError("%s must be a list of request entries, as locust --json/--json-file writes them" % what)
    requests = failures = none_times = 0
    histogram = {}
    starts = []
    lasts = []
    hits = 0
    cache_named = False
    for position, entry in enumerate(entries):
        where = "%s entry %d" % (what, position)
        missing = [key for key in ("name", "num_requests", "num_failures", "response_times", "start_time") if key not in entry]
        if missing:
            raise ConfigurationError("%s lacks %s: not from locust 2.x --json/--json-file" % (where, ", ".join(missing)))
        count = _count(entry["num_requests"], where + " num_requests")
        requests += count
        failures += _count(entry["num_failures"], where + " num_failures")
        none_times += _count(entry.get("num_none_requests") or 0, where + " num_none_requests")
        if not isinstance(entry["response_times"], dict):
            raise ConfigurationError("%s response_times must be a mapping of response time to count" % where)
        for key, value in entry["response_times"].items():
            bucket = _number(key, where + " response time")
            histogram[bucket] = histogram.get(bucket, 0) + _count(value, where + " response time count")
        starts.append(_number(entry["start_time"], where + " start_time"))
        if entry.get("last_request_timestamp") is not None:
            lasts.append(_number(entry["last_request_timestamp"], where + " last_request_timestamp"))
        if _cache_name(entry["name"]):
            cache_named = True
            if _cache_hit_name(entry["name"]):
                hits += count
    if not requests:
        raise ConfigurationError("%s hold no requests: nothing to judge; check that the load test ran and reached the app" % what)
    start = _from_epoch(min(starts))
    end = _from_epoch(max(lasts)) if lasts else start
    timed = requests - none_times
    notes = ["one bucket for the whole run: from Locust's start to its last request",
             "p95/p99: Locust's percentile of its response-time histogram over the whole run (nearest rank over times rounded "
             "to 2 significant digits above 100 ms), not percentile_cont; per-bucket percentiles need the locustfile's request log",
             "errors: requests the locustfile marked failed (the shipped one: status >= 500 and no response)"]
    notes.append("cache_hit_rate: requests named '%s' of all requests" % CACHE_HIT_MARKER if cache_named
                 else "cache_hit_rate: no data (the requests carry no X-Cache names)")
    return _run(start, end, requests, failures, locust_percentile(histogram, timed, 0.95), locust_percentile(histogram, timed, 0.99),
                hits if cache_named else None, "locust-json", notes)


# -- k6 ------------------------------------------------------------------------------------------------

def parse_time(text, what):
    """An aware datetime from k6's RFC 3339 time (nanoseconds and any offset allowed)."""
    value = str(text).strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    match = _FRACTION.search(value)
    if match:
        digits = (match.group(1) + "000000")[:6]
        value = value[:match.start()] + "." + digits + value[match.end():]
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigurationError("%s is %r, not an RFC 3339 time" % (what, text))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def parse_k6(lines, width, end=None):
    """A Report from k6 output given as an iterable of text lines (streamed; the JSON-lines file may be big).

    Detects ``--out json=FILE`` JSON lines (a series) or a ``--summary-export``
    / ``handleSummary`` JSON document (a run ending at ``end``, required
    there). See the module doc for what each number is.
    """
    _step(width)
    if isinstance(lines, (str, bytes)):
        raise ConfigurationError("k6 output must be given as lines (an open file or a list of lines), not as one %s" % type(lines).__name__)
    iterator = iter(lines)
    first = None
    number = 0
    for line in iterator:
        number += 1
        if line.strip():
            first = line.lstrip("\ufeff")
            break
    if first is None:
        raise ConfigurationError("the k6 output is empty: give the file of k6 run --out json=FILE or --summary-export FILE")
    stripped = first.strip()
    if stripped.startswith("{") and stripped.endswith("}") and '"type"' in stripped:
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("type") in ("Point", "Metric"):
            return _k6_json_lines(record, number, iterator, width)
    text = "\n".join([first.rstrip("\r\n")] + [line.rstrip("\r\n") for line in iterator])
    return _k6_summary(text, end)


def _k6_json_lines(first, first_number, iterator, width):
    what = "k6 JSON output"
    requests = _Grid(width)      # from http_reqs points
    durations = _Grid(width)     # from http_req_duration points
    number = first_number
    record = first
    while True:
        if record is not None:
            _k6_point(record, number, requests, durations, what)
        try:
            line = next(iterator)
        except StopIteration:
            break
        number += 1
        text = line.strip()
        if not text:
            record = None
            continue
        try:
            record = json.loads(text)
        except ValueError:
            raise ConfigurationError("%s line %d is not JSON: the file is cut or not from k6 run --out json=FILE" % (what, number))
        if not isinstance(record, dict):
            raise ConfigurationError("%s line %d is not a JSON object: not from k6 run --out json=FILE" % (what, number))
    source = requests if requests.first is not None else durations
    if source.first is None:
        raise ConfigurationError("%s has no http_reqs or http_req_duration points: no HTTP requests were made, or the metrics were "
                                 "filtered out" % what)
    if source is requests:
        # Percentiles come from the duration points, counts and errors from http_reqs.
        for index, cell in requests.cells.items():
            other = durations.cells.get(index)
            cell.durations = other.durations if other else []
    counted = "http_reqs" if source is requests else "http_req_duration"
    notes = ["exact: one request per %s point, bucketed by its time (k6 stamps HTTP samples with the end of the request)" % counted,
             "errors: status tag >= 500, or 0/missing (no response); 4xx are not errors",
             "p95/p99: percentile_cont of the bucket's http_req_duration values (sending + waiting + receiving, in ms)"]
    notes.append("cache_hit_rate: cache_hits points with value 1 of all requests, timed when the script recorded them (right after the "
                 "response)" if source.cache_known else "cache_hit_rate: no data (the script recorded no cache_hits points)")
    return _series(source, "k6-json-lines", notes, what)


def _k6_point(record, number, requests, durations, what):
    if record.get("type") != "Point":
        return
    metric = record.get("metric")
    if metric not in ("http_reqs", "http_req_duration", "cache_hits"):
        return
    data = record.get("data")
    if not isinstance(data, dict) or "time" not in data or "value" not in data:
        raise ConfigurationError("%s line %d: a Point needs data.time and data.value; not from k6 run --out json=FILE" % (what, number))
    moment = parse_time(data["time"], "%s line %d time" % (what, number))
    value = _number(data["value"], "%s line %d value" % (what, number))
    if metric == "cache_hits":
        requests.add_cache(moment, value != 0)
        durations.add_cache(moment, value != 0)
        return
    tags = data.get("tags") or {}
    status = tags.get("status") if isinstance(tags, dict) else None
    if metric == "http_reqs":
        requests.add_request(moment, status, None)
    else:
        durations.add_request(moment, status, value)


def _k6_summary(text, end):
    what = "k6 summary"
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError("the k6 output is neither JSON lines (--out json=FILE) nor a summary JSON (--summary-export FILE): %s" % exc)
    if not isinstance(document, dict) or not isinstance(document.get("metrics"), dict):
        raise ConfigurationError("the k6 JSON has no metrics object: give the file of --summary-export FILE or --out json=FILE")
    metrics = document["metrics"]
    fmt = "k6-summary-export"
    if any(isinstance(m, dict) and isinstance(m.get("values"), dict) for m in metrics.values()):
        fmt = "k6-summary-json"      # handleSummary's data: {"type", "contains", "values": {...}}

    def values(name):
        metric = metrics.get(name)
        if not isinstance(metric, dict):
            return None
        return metric.get("values") if isinstance(metric.get("values"), dict) else metric

    reqs = values("http_reqs")
    if not reqs or "count" not in reqs:
        raise ConfigurationError("%s has no http_reqs count: no HTTP requests were made (or this is not k6 output)" % what)
    requests = _count(reqs["count"], what + " http_reqs count")
    rate = _number(reqs.get("rate", 0), what + " http_reqs rate")
    failed = values("http_req_failed")
    if not failed or "passes" not in failed:
        raise ConfigurationError("%s has no http_req_failed passes: k6 older than 0.31, or the metric was filtered out" % what)
    errors = _count(failed["passes"], what + " http_req_failed passes")
    duration = values("http_req_duration") or {}
    p95 = _number(duration["p(95)"], what + " http_req_duration p(95)") if "p(95)" in duration else None
    p99 = _number(duration["p(99)"], what + " http_req_duration p(99)") if "p(99)" in duration else None
    hits_metric = values("cache_hits")
    hits = _count(hits_metric["passes"], what + " cache_hits passes") if hits_metric and "passes" in hits_metric else None
    if end is None:
        raise ConfigurationError("the k6 summary has no clock time: give the time the run ended (end), e.g. the file's modification time")
    end = _aware(end, "end")
    seconds = requests / rate if rate > 0 else 0.0
    notes = ["one bucket for the whole run: it ends at the given end and lasts http_reqs count / rate",
             "errors: http_req_failed passes (failed requests); equal to status >= 500 plus no response only with "
             "http.setResponseCallback(http.expectedStatuses({min: 200, max: 499})), as the shipped script sets",
             "p95/p99: k6's p(95)/p(99) of http_req_duration, which interpolate like percentile_cont"
             + ("" if p99 is not None and p95 is not None else "; missing ones are no data (add them to summaryTrendStats)")]
    notes.append("cache_hit_rate: cache_hits passes of all requests" if hits is not None
                 else "cache_hit_rate: no data (the script has no cache_hits Rate)")
    return _run(end - datetime.timedelta(seconds=seconds), end, requests, errors, p95, p99, hits, fmt, notes)
