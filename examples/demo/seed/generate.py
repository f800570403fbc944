#!/usr/bin/env python
"""Seed data for the demo: documents people search, and the request metrics
the SLO gate reads.

    generate.py --documents 100000 --metrics 1000000 --metrics-hours 24 --seed 1

Rows are generated as they stream into PostgreSQL through COPY FROM STDIN (one
transaction per table), a batch at a time: memory stays flat whatever the
count. The same --seed (with the same time window, see --now) gives the same
rows, whatever --batch is. On two cores 10^7 metric rows load in under a minute
and 10^7 documents in about two: the server's COPY is the limit, the
generator makes about 700,000 metric rows/s.

public.documents: titles and bodies from a built-in vocabulary, 1-4 tags from
a fixed tag set, owners from a pool of 1000 users, 90 % public, created over
the last year (a quarter edited since).

public.performance_metrics (the slogate kit's table): a search-heavy mix of
GET requests, in time order, spread evenly over the window. --error-rate
percent of them fail with 500 (an error for the SLO gate); about 1 % more get
a 401, 403 or 429 (client outcomes, not errors). duration_ms is log-normal
around --latency-ms (p95 about 2.7 x, p99 about 4 x the median);
--cache-hit-rate percent are cache hits (successful, non-probe requests only).

Importable: load_documents(conn, n, ...) and load_metrics(conn, n, ...) do
the same on an open psycopg2 connection and return the number of rows loaded.

Exit codes: 0 loaded; 2 bad input (option, URL, login, missing table);
1 the load failed on the server; 130 interrupted (nothing of the table being
loaded is kept).
"""

import argparse
import itertools
import math
import os
import random
import re
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:  # reported by connect() as one line
    psycopg2 = None

DB_ERRORS = (psycopg2.Error,) if psycopg2 else ()

DEFAULT_BATCH = 10000
COPY_READ_SIZE = 1 << 20
DB_URL_ENV_VARS = ("SUPABASE_DB_URL", "DATABASE_URL")
APPLICATION_NAME = "slogate-seed"

DOCUMENTS_TABLE = "public.documents"
METRICS_TABLE = "public.performance_metrics"
DOCUMENTS_COPY = "COPY public.documents (title, body, tags, owner_id, is_public, created_at, updated_at) FROM STDIN"
METRICS_COPY = ("COPY public.performance_metrics (created_at, endpoint, method, status, cache_hit, user_role, release_id, "
                "duration_ms) FROM STDIN")
MISSING_TABLE_HINT = {
    DOCUMENTS_TABLE: "apply the demo migrations first (examples/demo/supabase/migrations)",
    METRICS_TABLE: "install the slogate kit first (role slogate.supabase.kit, or roles/kit/files/pack/migrations)",
}

OWNER_POOL = 1000
PUBLIC_SHARE = 0.9
EDITED_SHARE = 0.25
DOCUMENT_DAYS = 365
LATENCY_SIGMA = 0.6  # log-normal shape: p95 = median x e^(1.645 sigma), p99 = median x e^(2.326 sigma)
DURATION_QUANTILES = 1 << 16
COMBO_TABLE_SIZE = 1 << 20
TAG_TABLE_SIZE = 1 << 18

# endpoint, share of requests, user roles with their shares
ENDPOINTS = (
    ("/api/search", 0.70, (("anon", 0.55), ("authenticated", 0.42), ("admin", 0.03))),
    ("/api/documents", 0.14, (("anon", 0.30), ("authenticated", 0.66), ("admin", 0.04))),
    ("/api/health", 0.10, (("anon", 1.0),)),
    ("/api/admin/performance", 0.04, (("admin", 0.9), ("authenticated", 0.1))),
    ("/api/admin/audit-log", 0.02, (("admin", 0.9), ("authenticated", 0.1))),
)
PROBE_ENDPOINTS = ("/api/health",)


def client_error_shares(endpoint, role):
    """4xx shares of the requests that did not fail: outcomes a client caused, never errors."""
    shares = {}
    if endpoint.startswith("/api/admin/"):
        shares["403"] = 0.6 if role == "authenticated" else 0.0  # a non-admin trying the admin pages
        shares["401"] = 0.01  # expired session
    elif endpoint not in PROBE_ENDPOINTS:
        shares["401"] = 0.005 if role != "anon" else 0.0
        shares["429"] = 0.004  # rate limited
        shares["403"] = 0.002 if endpoint == "/api/documents" else 0.0  # someone else's private document
    return shares


TAGS = ("postgres", "performance", "security", "rls", "caching", "migrations", "search", "indexes", "monitoring",
        "deployment", "backup", "auth", "api", "storage", "realtime", "tutorial")

ADJECTIVES = ("fast", "slow", "secure", "simple", "practical", "concurrent", "reliable", "incremental", "partial",
              "stale", "private", "public", "hidden", "materialized", "nightly", "zero-downtime", "expensive", "cheap",
              "safe", "careful", "large", "small", "weekly", "idle", "busy", "cold", "warm", "new", "legacy", "shared")
NOUNS = ("index", "query", "migration", "cache", "policy", "role", "table", "view", "backup", "rollback", "release",
         "deploy", "bucket", "metric", "latency", "error budget", "dashboard", "replica", "connection pool", "trigger",
         "function", "schema", "snapshot", "lock", "vacuum", "checkpoint", "alert", "runbook", "endpoint", "token",
         "session", "search path", "upload", "report", "audit log", "queue", "worker", "plan", "statistic", "workload")
VERBS = ("tune", "refresh", "index", "monitor", "secure", "migrate", "roll back", "cache", "debug", "profile",
         "partition", "audit", "warm", "drain", "invalidate", "benchmark", "review", "replay", "restore", "test")
TOPICS = ("PostgreSQL", "Supabase", "PostgREST", "row level security", "materialized views", "full-text search",
          "pgbench", "Ansible", "SLOs", "the query planner", "connection pooling", "JWT claims", "autovacuum")
PEOPLE = ("the on-call engineer", "the team", "a reviewer", "the database", "every user", "the deploy",
          "the monitor", "an admin", "the planner", "the cache worker", "the app")

TITLE_TEMPLATES = (
    "How to {verb} a {adj} {noun} in {topic}",
    "{Adj} {noun} with {topic}",
    "A guide to {adj} {noun}s",
    "{Topic}: {verb} the {noun} before the {noun2}",
    "Notes on {noun} and {noun2}",
    "Why the {noun} was {adj}",
    "{Verb} your {noun}s with {topic}",
    "Lessons from a {adj} {noun}",
    "When to {verb} the {noun}",
    "{Topic} in practice: {adj} {noun}s",
)
SENTENCE_TEMPLATES = (
    "The {noun} became {adj} after the last {noun2}.",
    "{People} should {verb} the {noun} before each {noun2}.",
    "We {verb} every {noun} with {topic} and compare the numbers.",
    "A {adj} {noun} costs more than a {adj2} {noun2}.",
    "If the {noun} is {adj}, {people} can {verb} it without a {noun2}.",
    "{Topic} keeps the {noun} {adj} while {people} {verb}s the {noun2}.",
    "Measure the {noun} first; {verb} the {noun2} only when it is {adj}.",
    "Each {noun} is checked against the {noun2} by {people}.",
    "Nobody noticed the {adj} {noun} until {people} looked at the {noun2}.",
    "Use {topic} to {verb} the {noun}, then watch the {noun2} for an hour.",
    "The {noun2} tells {people} whether the {noun} is still {adj}.",
    "Keep the {noun} {adj}: it is what {people} reads first.",
)


class SeedError(Exception):
    """Bad input or a failed load, with a one-line message naming the thing and what to do."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------- time stamps

_TIME_OF_DAY = []
_MILLIS = [".%03d+00" % ms for ms in range(1000)]


def _time_of_day():
    if not _TIME_OF_DAY:
        _TIME_OF_DAY.extend("%02d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60) for s in range(86400))
    return _TIME_OF_DAY


class _TimeFormatter:
    """Epoch seconds to timestamptz text ('2026-01-05 09:00:00.123+00') at table-lookup speed."""

    def __init__(self, rng):
        self.rng = rng
        self.days = {}
        self.tod = _time_of_day()

    def day(self, number):
        text = self.days.get(number)
        if text is None:
            if len(self.days) > 4096:
                self.days.clear()
            text = self.days[number] = (datetime(1970, 1, 1) + timedelta(days=number)).strftime("%Y-%m-%d ")
        return text

    def format(self, seconds):
        """Texts for whole epoch seconds, each with random milliseconds."""
        millis = self.rng.choices(_MILLIS, k=len(seconds))
        if not seconds:
            return []
        low, high = min(seconds), max(seconds)
        first_day = low // 86400
        days = [self.day(number) for number in range(first_day, high // 86400 + 1)]
        if high - low < 2 * len(seconds):
            # Dense: the text of every second of the span, then one lookup per row.
            window = []
            for i, text in enumerate(days):
                day_start = (first_day + i) * 86400
                window.extend([text + t for t in self.tod[max(low - day_start, 0):high - day_start + 1]])
            return [window[s - low] + m for s, m in zip(seconds, millis)]
        origin = first_day * 86400
        tod = self.tod
        return [days[(s - origin) // 86400] + tod[(s - origin) % 86400] + m for s, m in zip(seconds, millis)]


def _spread(rng, start, step, first, count):
    """Whole epoch seconds of rows first..first+count-1 spread evenly from `start`: row i
    falls uniformly in [start + i*step, start + (i+1)*step), so rows come in time order."""
    rnd = rng.random
    return [int(start + (i + rnd()) * step) for i in range(first, first + count)]


def utc(value):
    """A datetime as an aware UTC datetime (naive means UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _now(now):
    return utc(now) if now is not None else datetime.now(timezone.utc)


# ------------------------------------------------------------------ streaming


class RowStream:
    """A read-only file of COPY text, generated a batch at a time as COPY reads it."""

    def __init__(self, table, total, batches, progress=None, interval=None):
        self.table = table
        self.total = total
        self.rows = 0
        self._batches = batches
        self._chunk = b""
        self._offset = 0
        self._progress = progress
        tty = bool(progress) and hasattr(progress, "isatty") and progress.isatty()
        self._tty = tty
        self._interval = interval if interval is not None else (0.25 if tty else 5.0)
        self.started = time.monotonic()
        self._last_report = self.started

    def readable(self):
        return True

    def read(self, size=-1):
        if self._offset >= len(self._chunk):
            batch = next(self._batches, None)
            if batch is None:
                return b""
            rows, text = batch
            self._chunk = text.encode("utf-8")
            self._offset = 0
            self.rows += rows
            self._report()
        if size is None or size < 0:
            size = len(self._chunk) - self._offset
        piece = self._chunk[self._offset:self._offset + size]
        self._offset += len(piece)
        return piece

    def _report(self):
        if not self._progress:
            return
        now = time.monotonic()
        if now - self._last_report < self._interval:
            return
        self._last_report = now
        self.line(self.describe(now))

    def describe(self, now=None):
        elapsed = (now or time.monotonic()) - self.started
        return "%s: %s / %s rows (%.1f %%), %s rows/s, %.1f s elapsed" % (
            self.table, "{:,}".format(self.rows), "{:,}".format(self.total),
            100.0 * self.rows / self.total if self.total else 100.0,
            "{:,.0f}".format(self.rows / elapsed if elapsed > 0 else 0.0), elapsed)

    def line(self, text, final=False):
        if not self._progress:
            return
        if self._tty:
            self._progress.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self._progress.write(text + "\n")
        self._progress.flush()


def _copy(conn, table, statement, total, batches, progress):
    """COPY the generated rows in one transaction and commit it; return the number of rows loaded."""
    autocommit = conn.autocommit
    stream = RowStream(table, total, batches, progress)
    try:
        if autocommit:
            conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = 0")  # a server default must not cut a long load short
            cur.copy_expert(statement, stream, size=COPY_READ_SIZE)
            loaded = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else stream.rows
        conn.commit()
    except psycopg2.Error as exc:
        _rollback(conn)
        raise SeedError(describe_load_error(table, exc), exit_code=_load_exit_code(exc)) from None
    except BaseException:
        _rollback(conn)
        raise
    finally:
        if autocommit and not conn.closed:
            conn.autocommit = True
    elapsed = time.monotonic() - stream.started
    stream.line("%s: %s rows loaded in %.1f s (%s rows/s)" % (
        table, "{:,}".format(loaded), elapsed, "{:,.0f}".format(loaded / elapsed if elapsed > 0 else 0.0)), final=True)
    return loaded


def _rollback(conn):
    try:
        conn.rollback()
    except psycopg2.Error:
        pass


def _check_table(conn, table):
    with conn.cursor() as cur:
        cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (table,))
        exists = cur.fetchone()[0]
    if not exists:
        raise SeedError("table %s does not exist in database %s: %s" % (
            table, conn.info.dbname, MISSING_TABLE_HINT.get(table, "create it first")))


def _check_count(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SeedError("%s must be a whole number of rows, 0 or more, got %r" % (name, value))


def _check_batch(batch):
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SeedError("batch must be a whole number of rows, 1 or more, got %r" % (batch,))


# ------------------------------------------------------------------ documents


def _fill(template, rng):
    return template.format(
        adj=rng.choice(ADJECTIVES), adj2=rng.choice(ADJECTIVES), Adj=rng.choice(ADJECTIVES).capitalize(),
        noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS), verb=rng.choice(VERBS), Verb=rng.choice(VERBS).capitalize(),
        topic=rng.choice(TOPICS), Topic=rng.choice(TOPICS), people=rng.choice(PEOPLE),
        People=rng.choice(PEOPLE).capitalize())


def _sentence(rng):
    text = _fill(rng.choice(SENTENCE_TEMPLATES), rng)
    return text[0].upper() + text[1:]


def document_vocabulary(rng):
    """Pools the rows draw from: titles, paragraphs, tag sets and owners (built once per load)."""
    titles = [_fill(rng.choice(TITLE_TEMPLATES), rng) for unused in range(16384)]
    titles = [t[0].upper() + t[1:] for t in titles]
    paragraphs = [" ".join(_sentence(rng) for unused in range(rng.randint(2, 6))) for unused in range(4096)]
    tag_sets, tag_weights = [], []
    for size in range(1, 5):
        combos = list(itertools.combinations(TAGS, size))
        tag_sets.extend("\t{%s}" % ",".join(c) for c in combos)
        tag_weights.extend([1.0 / len(combos)] * len(combos))  # 1, 2, 3 or 4 tags equally often
    owners = ["\t%s" % uuid.UUID(int=rng.getrandbits(128), version=4) for unused in range(OWNER_POOL)]
    return dict(titles=titles, paragraphs=paragraphs, tag_sets=_weighted_table(tag_sets, tag_weights, TAG_TABLE_SIZE),
                owners=owners)


def _streams(table, seed):
    """One random stream per column, so that a row depends on the seed and its
    position only, not on the batch size."""
    def stream(column):
        return random.Random("%s:%s:%s" % (table, column, seed)) if seed is not None else random.Random()
    return stream


def document_batches(n, seed=None, batch=DEFAULT_BATCH, now=None):
    """(rows, COPY text) batches of public.documents rows."""
    stream = _streams("documents", seed)
    vocab = document_vocabulary(stream("vocabulary"))
    titles, paragraphs, tag_sets, owners = vocab["titles"], vocab["paragraphs"], vocab["tag_sets"], vocab["owners"]
    publics = ["\tt"] * int(PUBLIC_SHARE * 100) + ["\tf"] * (100 - int(PUBLIC_SHARE * 100))
    paragraph_counts = (1, 1, 2, 2, 2, 3, 3, 4)
    end = _now(now).timestamp()
    start = end - DOCUMENT_DAYS * 86400
    step = (end - start) / n if n else 0.0
    created_rng, created_clock = stream("created"), _TimeFormatter(stream("created_ms"))
    edited_rng, edit_rng, edited_clock = stream("edited"), stream("edit"), _TimeFormatter(stream("edited_ms"))
    title_rng, size_rng, paragraph_rng = stream("title"), stream("size"), stream("paragraph")
    tag_rng, owner_rng, public_rng = stream("tags"), stream("owner"), stream("public")
    edited_draw, edit_draw = edited_rng.random, edit_rng.random
    for first in range(0, n, batch):
        count = min(batch, n - first)
        created = _spread(created_rng, start, step, first, count)
        created_text = created_clock.format(created)
        updated_text = list(created_text)
        edited = [i for i in range(count) if edited_draw() < EDITED_SHARE]  # a quarter were edited since, by `end`
        for i, text in zip(edited, edited_clock.format([created[i] + 1 + int(edit_draw() * max(0.0, end - created[i] - 1))
                                                        for i in edited])):
            updated_text[i] = text
        counts = size_rng.choices(paragraph_counts, k=count)
        picked = paragraph_rng.choices(paragraphs, k=sum(counts))
        bodies = []
        at = 0
        for size in counts:
            bodies.append("\t" + "\\n\\n".join(picked[at:at + size]))
            at += size
        columns = (title_rng.choices(titles, k=count), bodies, tag_rng.choices(tag_sets, k=count),
                   owner_rng.choices(owners, k=count), public_rng.choices(publics, k=count),
                   ["\t" + t for t in created_text], ["\t" + t + "\n" for t in updated_text])
        yield count, _interleave(columns, count)


def _interleave(columns, count):
    parts = [None] * (len(columns) * count)
    for i, column in enumerate(columns):
        parts[i::len(columns)] = column
    return "".join(parts)


def load_documents(conn, n, seed=None, batch=DEFAULT_BATCH, now=None, progress=None):
    """Load n generated rows into public.documents in one transaction; return the count.

    conn: an open psycopg2 connection, left open; the load commits its
    transaction (or rolls it back and raises SeedError), so pass one without
    pending work. progress: a text stream for progress lines (None: silent).
    now: the reference time (the rows are created in the year before it)."""
    _check_count("documents", n)
    _check_batch(batch)
    if n == 0:
        return 0
    _check_table(conn, DOCUMENTS_TABLE)
    return _copy(conn, DOCUMENTS_TABLE, DOCUMENTS_COPY, n, document_batches(n, seed, batch, now), progress)


# -------------------------------------------------------------------- metrics


def _weighted_table(items, weights, size):
    """`items` repeated in proportion to `weights` in a list of about `size` entries
    (largest remainders), so an unweighted choice from it is a weighted choice."""
    total = sum(weights)
    exact = [w * size / total for w in weights]
    counts = [int(e) for e in exact]
    short = size - sum(counts)
    for i in sorted(range(len(exact)), key=lambda j: exact[j] - counts[j], reverse=True)[:short]:
        counts[i] += 1
    table = []
    for item, count in zip(items, counts):
        table.extend([item] * count)
    return table


def metric_mix(error_rate, cache_hit_rate, release_id):
    """Every (endpoint, status, cache hit, role) combination as COPY text after the
    time stamp, with its probability. Errors are error_rate % of every endpoint."""
    error_share = error_rate / 100.0
    rows = []
    for endpoint, share, roles in ENDPOINTS:
        for role, role_share in roles:
            base = share * role_share
            client = client_error_shares(endpoint, role)
            ok_share = (1.0 - error_share) * (1.0 - sum(client.values()))
            rows.append((endpoint, "500", role, base * error_share))
            rows.extend((endpoint, code, role, base * (1.0 - error_share) * s) for code, s in client.items() if s > 0)
            rows.append((endpoint, "200", role, base * ok_share))
    # Cache hits only on successful, non-probe requests, as often as needed for
    # cache_hit_rate % of all requests (all requests alike when that cannot be).
    eligible = sum(row[3] for row in rows if row[1] == "200" and row[0] not in PROBE_ENDPOINTS)
    hit_rate = cache_hit_rate / 100.0
    only_eligible = eligible > 0 and hit_rate <= eligible
    combos, weights = [], []
    for endpoint, code, role, prob in rows:
        if prob <= 0:
            continue
        if only_eligible:
            hit = hit_rate / eligible if code == "200" and endpoint not in PROBE_ENDPOINTS else 0.0
        else:
            hit = hit_rate
        for cached, p in (("t", prob * hit), ("f", prob * (1.0 - hit))):
            if p > 0:
                combos.append("\t%s\tGET\t%s\t%s\t%s\t%s\t" % (endpoint, code, cached, role, release_id))
                weights.append(p)
    return combos, weights


def duration_table(latency_ms):
    """Quantiles of a log-normal with median latency_ms, as COPY text ending the row."""
    normal = statistics.NormalDist()
    return ["%.3f\n" % (latency_ms * math.exp(LATENCY_SIGMA * normal.inv_cdf((i + 0.5) / DURATION_QUANTILES)))
            for i in range(DURATION_QUANTILES)]


def metric_window(hours=24.0, start=None, end=None, now=None):
    """(start, end) aware datetimes: start/end when given, else the `hours` before end (or now)."""
    end = utc(end) if end is not None else _now(now)
    start = utc(start) if start is not None else end - timedelta(hours=hours)
    return start, end


def metric_batches(n, seed=None, batch=DEFAULT_BATCH, error_rate=0.5, latency_ms=120.0, cache_hit_rate=60.0,
                   release_id="seed", start=None, end=None):
    """(rows, COPY text) batches of public.performance_metrics rows in [start, end)."""
    stream = _streams("metrics", seed)
    combos, weights = metric_mix(error_rate, cache_hit_rate, release_id)
    combo_table = _weighted_table(combos, weights, COMBO_TABLE_SIZE)
    durations = duration_table(latency_ms)
    begin = start.timestamp()
    step = (end.timestamp() - begin) / n if n else 0.0
    time_rng, clock = stream("created"), _TimeFormatter(stream("created_ms"))
    combo_rng, duration_rng = stream("kind"), stream("duration")
    for first in range(0, n, batch):
        count = min(batch, n - first)
        stamps = clock.format(_spread(time_rng, begin, step, first, count))
        columns = (stamps, combo_rng.choices(combo_table, k=count), duration_rng.choices(durations, k=count))
        yield count, _interleave(columns, count)


def check_metric_options(error_rate, latency_ms, cache_hit_rate, release_id, hours, start, end):
    for name, value in (("error_rate", error_rate), ("cache_hit_rate", cache_hit_rate)):
        if not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise SeedError("%s must be a percentage from 0 to 100, got %r" % (name, value))
    if not isinstance(latency_ms, (int, float)) or not 0 < latency_ms < 1e9:
        raise SeedError("latency_ms must be a positive number of milliseconds, got %r" % (latency_ms,))
    if start is None and (not isinstance(hours, (int, float)) or not 0 < hours <= 24 * 365 * 100):
        raise SeedError("metrics_hours must be a positive number of hours, got %r" % (hours,))
    if not release_id or re.search(r"[\t\n\r\\]", str(release_id)):
        raise SeedError("release_id must be non-empty text without tabs, newlines or backslashes, got %r" % (release_id,))
    if start is not None and end is not None and utc(start) >= utc(end):
        raise SeedError("the metrics window is empty: metrics_from (%s) must be before metrics_to (%s)" % (
            utc(start).isoformat(), utc(end).isoformat()))


def load_metrics(conn, n, seed=None, batch=DEFAULT_BATCH, error_rate=0.5, latency_ms=120.0, cache_hit_rate=60.0,
                 release_id="seed", hours=24.0, start=None, end=None, now=None, progress=None):
    """Load n generated rows into public.performance_metrics in one transaction; return the count.

    conn and progress as for load_documents. The rows are spread evenly over
    [start, end): by default the `hours` before `now` (default: the current
    time). error_rate and cache_hit_rate are percentages; latency_ms is the
    median duration."""
    _check_count("metrics", n)
    _check_batch(batch)
    check_metric_options(error_rate, latency_ms, cache_hit_rate, release_id, hours, start, end)
    if n == 0:
        return 0
    _check_table(conn, METRICS_TABLE)
    start, end = metric_window(hours, start, end, now)
    if start >= end:
        raise SeedError("the metrics window is empty: metrics_from (%s) must be before metrics_to (%s)" % (
            start.isoformat(), end.isoformat()))
    batches = metric_batches(n, seed, batch, error_rate, latency_ms, cache_hit_rate, release_id, start, end)
    return _copy(conn, METRICS_TABLE, METRICS_COPY, n, batches, progress)


# ------------------------------------------------------- errors and the URL

MASK = "********"
_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUOTED = re.compile(r'"[^"]*"')


def mask(text, secrets=()):
    text = str(text)
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, text)


def one_line(text):
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def url_secrets(url):
    """The password in a URL or key=value string, whatever else is wrong with it."""
    found = [m.group(2) for m in _URL_PASSWORD.finditer(url)]
    found += [m.group(2).strip("'") for m in _KEYWORD_PASSWORD.finditer(url)]
    try:
        params = psycopg2.extensions.parse_dsn(url)
        found.append(params.get("password", ""))
    except psycopg2.Error:
        pass
    return [s for s in found if s]


def describe_target(params):
    return "%s@%s:%s/%s" % (params.get("user") or "(default user)", params.get("host") or "local socket",
                            params.get("port") or "5432", params.get("dbname") or params.get("user") or "(default)")


_CONNECT_ERRORS = (
    (r'password authentication failed for user "(?P<user>[^"]*)"',
     "authentication failed for user {user} on {target}: check the password in {origin}"),
    (r"no password supplied", "the server at {target} asks for a password and {origin} has none: add it to the URL"),
    (r'database "(?P<db>[^"]*)" does not exist',
     "database {db} does not exist on {target}: create it or fix the database name in {origin}"),
    (r'role "(?P<role>[^"]*)" does not exist', "role {role} does not exist on {target}: fix the user name in {origin}"),
    (r'could not translate host name "(?P<host>[^"]*)"', "host {host} cannot be resolved: fix the host name in {origin}"),
    (r"Connection refused", "cannot reach PostgreSQL at {target}: connection refused; check the host and port in {origin} "
                            "and that the server is running"),
    (r"(?i)timeout expired|timed out", "cannot reach PostgreSQL at {target}: no answer within 10 s; check the host, port "
                                       "and firewall"),
)


def connect(url, origin="--db-url"):
    """An open connection (not autocommit) or SeedError with one line naming the target, never the password."""
    if psycopg2 is None:
        raise SeedError("psycopg2 is not installed for %s: pip install psycopg2-binary" % sys.executable)
    secrets = url_secrets(url)
    try:
        params = psycopg2.extensions.parse_dsn(url)
    except psycopg2.Error as exc:
        reason = re.sub(r"^invalid dsn:\s*", "", _QUOTED.sub('"..."', one_line(exc)))
        raise SeedError("%s is not a valid PostgreSQL connection URL (%s); expected "
                        "postgresql://user:password@host:port/dbname" % (origin, mask(reason, secrets))) from None
    target = describe_target(params)
    try:
        return psycopg2.connect(url, connect_timeout=10, application_name=APPLICATION_NAME)
    except psycopg2.Error as exc:
        message = mask(one_line(exc), secrets)
        if re.search(r"for connection option|invalid connection option|invalid URI|invalid \w+ value", message):
            reason = _QUOTED.sub('"..."', message)
            raise SeedError("%s is not a valid PostgreSQL connection URL (%s); expected "
                            "postgresql://user:password@host:port/dbname" % (origin, reason)) from None
        for pattern, template in _CONNECT_ERRORS:
            match = re.search(pattern, message)
            if match:
                raise SeedError(mask(template.format(target=target, origin=origin, **match.groupdict()), secrets)) from None
        raise SeedError("cannot connect to %s: %s" % (target, message)) from None


def describe_load_error(table, exc):
    first = one_line(getattr(exc, "pgerror", None) or exc).replace("ERROR:  ", "", 1)
    first = re.sub(r"\s*CONTEXT:.*$", "", first)
    code = getattr(exc, "pgcode", None)
    hint = ""
    if "row-level security" in first:
        hint = ": connect as the table's owner or a role with BYPASSRLS (postgres, service_role)"
    elif code == "42501":
        hint = ": connect as a role that may insert into %s (its owner, or service_role)" % table
    elif code in ("42703", "42P01"):
        hint = ": the table does not match the generator; apply the current migrations"
    elif code == "53100":
        hint = ": free disk space on the server or load fewer rows"
    return "loading %s failed, nothing was kept: %s%s%s" % (
        table, first, " (SQLSTATE %s)" % code if code else "", hint)


def _load_exit_code(exc):
    code = getattr(exc, "pgcode", None) or ""
    return 2 if code in ("42501", "42703", "42P01") or code.startswith("22") else 1


# ------------------------------------------------------------------------ CLI


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad options in one line (no usage block), exit 2."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def _count(text):
    """A row count: 1000, 10_000_000 or 1e7."""
    value = None
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        try:
            number = float(text)
            value = int(number) if number.is_integer() else None
        except (ValueError, OverflowError):
            value = None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError("must be a whole number of rows, 0 or more, got %r" % text)
    return int(value)


def _positive_int(text):
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more, got %r" % text)
    return value


def _number(low, high, what, low_open=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or math.isnan(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError("must be %s, got %r" % (what, text))
        return value
    return parse


def _timestamp(text):
    try:
        return utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(
            "%r is not an ISO timestamp: use e.g. 2026-01-05T09:00:00Z (no offset means UTC)" % text) from None


def build_parser():
    parser = _Parser(prog="generate.py", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="The database URL may also come from SUPABASE_DB_URL or DATABASE_URL.")
    parser.add_argument("--db-url", help="postgresql://user:password@host:port/dbname "
                        "(default: $SUPABASE_DB_URL, then $DATABASE_URL)")
    parser.add_argument("--documents", type=_count, default=0, metavar="N", help="rows of public.documents (default 0)")
    parser.add_argument("--metrics", type=_count, default=0, metavar="N",
                        help="rows of public.performance_metrics (default 0)")
    parser.add_argument("--metrics-hours", type=_number(0, 24 * 365 * 100, "a positive number of hours", True),
                        default=24.0, metavar="H",
                        help="spread the metrics over the H hours before --metrics-to or now (default 24)")
    parser.add_argument("--metrics-from", type=_timestamp, metavar="TS",
                        help="start of the metrics window, ISO 8601, no offset means UTC (instead of --metrics-hours)")
    parser.add_argument("--metrics-to", type=_timestamp, metavar="TS", help="end of the metrics window (default: now)")
    parser.add_argument("--error-rate", type=_number(0, 100, "a percentage from 0 to 100"), default=0.5, metavar="PCT",
                        help="percent of requests that fail with 500 (default 0.5)")
    parser.add_argument("--latency-ms", type=_number(0, 1e9, "a positive number of milliseconds", True), default=120.0,
                        metavar="MS", help="median duration_ms (default 120)")
    parser.add_argument("--cache-hit-rate", type=_number(0, 100, "a percentage from 0 to 100"), default=60.0,
                        metavar="PCT", help="percent of requests served from the cache (default 60)")
    parser.add_argument("--release-id", default="seed", help="release_id of the metrics rows (default: seed)")
    parser.add_argument("--seed", type=int, help="random seed: the same seed and window give the same rows")
    parser.add_argument("--now", type=_timestamp, metavar="TS",
                        help="reference time for 'the last year/H hours' (default: the current time)")
    parser.add_argument("--batch", type=_positive_int, default=DEFAULT_BATCH, metavar="N",
                        help="rows generated per batch (default %d)" % DEFAULT_BATCH)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser


def resolve_db_url(option, environ):
    if option:
        return option, "--db-url"
    for name in DB_URL_ENV_VARS:
        if environ.get(name):
            return environ[name], name
    raise SeedError("no database URL: pass --db-url or set %s (postgresql://user:password@host:port/dbname)"
                    % " or ".join(DB_URL_ENV_VARS))


def run(options, environ):
    if options.documents == 0 and options.metrics == 0:
        raise SeedError("nothing to load: give --documents N and/or --metrics N")
    start, end = options.metrics_from, options.metrics_to
    check_metric_options(options.error_rate, options.latency_ms, options.cache_hit_rate, options.release_id,
                         options.metrics_hours, start, end)
    url, origin = resolve_db_url(options.db_url, environ)
    conn = connect(url, origin)
    progress = None if options.quiet else sys.stderr
    try:
        # Both tables are checked before either is loaded.
        if options.documents:
            _check_table(conn, DOCUMENTS_TABLE)
        if options.metrics:
            _check_table(conn, METRICS_TABLE)
        loaded = {}
        if options.documents:
            loaded["documents"] = load_documents(conn, options.documents, seed=options.seed, batch=options.batch,
                                                 now=options.now, progress=progress)
        if options.metrics:
            loaded["performance_metrics"] = load_metrics(
                conn, options.metrics, seed=options.seed, batch=options.batch, error_rate=options.error_rate,
                latency_ms=options.latency_ms, cache_hit_rate=options.cache_hit_rate, release_id=options.release_id,
                hours=options.metrics_hours, start=start, end=end, now=options.now, progress=progress)
    finally:
        conn.close()
    return loaded


def main(argv=None, environ=None):
    options = build_parser().parse_args(argv)
    try:
        loaded = run(options, os.environ if environ is None else environ)
    except SeedError as exc:
        sys.stderr.write("generate.py: error: %s\n" % exc)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\ngenerate.py: interrupted: the table being loaded was rolled back\n")
        return 130
    except DB_ERRORS as exc:  # e.g. the server went away between two statements
        sys.stderr.write("generate.py: error: %s\n" % one_line(exc))
        return 1
    print(", ".join("%s %s rows" % (table, "{:,}".format(rows)) for table, rows in loaded.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
