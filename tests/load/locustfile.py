"""Locust version of the runbook's load test (search-performance-enhanced.js):
search-heavy users with some admin calls, judged by the same SLO rules.

    locust -f tests/load/locustfile.py --headless -u 50 -r 10 -t 5m \\
        --host http://127.0.0.1:3000 --csv out/load --csv-full-history --json-file out/load

Environment:
    SLOGATE_USER_TOKEN    Bearer token of a regular user (searches, and the
                          admin calls that must answer 403)
    SLOGATE_ADMIN_TOKEN   Bearer token of an admin (admin calls)
    SLOGATE_SECRETS_FILE  or a JSON file holding both, as {"SLOGATE_USER_TOKEN": ...,
                          "SLOGATE_ADMIN_TOKEN": ...} (keeps them out of the environment)
    SLOGATE_THINK_MIN/MAX think time between tasks in seconds (default 1 and 3)
    SLOGATE_REQUEST_LOG   a file to write one CSV line per request
                          (end_time,status,duration_ms,cache_hit): the exact
                          source for per-bucket p95/p99 (parse_locust reads it)

Outcomes (catch_response): a 4xx, 429 included, is a client outcome and counts
as a success; status >= 500 and no response (status 0) are failures. Locust's
failures are therefore the SLO gate's errors. A response's X-Cache header
(hit or miss) is added to the request's name ("/api/search?q= [X-Cache: hit]"),
so Locust's CSV and JSON stats count cache hits per name; the parser in
plugins/module_utils/load_reports.py reads them back.
"""

import atexit
import json
import os
import random

from locust import HttpUser, between, events, task

SEARCH_TERMS = (
    "postgres", "performance", "security", "caching", "migrations", "search", "indexes", "monitoring", "backup",
    "rollback", "materialized views", "connection pool", "row level security", "latency", "vacuum", "deploy",
    "runbook", "replica", "audit log", "full-text search",
)
# Weights of the runbook's mix: mostly searches, a few health probes and admin calls.
WEIGHT_SEARCH = 20
WEIGHT_HEALTH = 2
WEIGHT_ADMIN_PERFORMANCE = 1
WEIGHT_ADMIN_AUDIT = 1


def _seconds(name, default):
    value = os.environ.get(name, "")
    try:
        return max(float(value), 0.0) if value.strip() else default
    except ValueError:
        raise SystemExit("%s=%r is not a number of seconds" % (name, value))


THINK_MIN = _seconds("SLOGATE_THINK_MIN", 1.0)
THINK_MAX = max(_seconds("SLOGATE_THINK_MAX", 3.0), THINK_MIN)


def _secrets_file():
    """SLOGATE_SECRETS_FILE: a JSON file (mode 0600) with the tokens, so they never sit in a command's environment,
    which Ansible prints at -vvv; its keys are the variable names below."""
    path = os.environ.get("SLOGATE_SECRETS_FILE", "")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise SystemExit("SLOGATE_SECRETS_FILE %s is not readable JSON: %s" % (path, exc))


SECRETS = _secrets_file()


def _bearer(name):
    token = SECRETS.get(name) or os.environ.get(name, "")
    return {"Authorization": "Bearer " + token} if token else {}


def judge(response):
    """Failure = status >= 500 or no response; everything else (4xx included) is a client outcome: success."""
    status = response.status_code or 0
    if status == 0:
        response.failure("no response: %s" % (response.error or "connection failed"))
    elif status >= 500:
        response.failure("status %d" % status)
    else:
        response.success()
    cache = (response.headers.get("X-Cache") or "").strip().lower() if status else ""
    if cache in ("hit", "miss"):
        response.request_meta["name"] = "%s [X-Cache: %s]" % (response.request_meta["name"], cache)


class _RequestLog:
    """One CSV line per request when SLOGATE_REQUEST_LOG is set; one file per Locust process."""

    def __init__(self, path):
        self.handle = None
        if path:
            self.handle = open(path, "w", buffering=1 << 16)
            self.handle.write("end_time,status,duration_ms,cache_hit\n")
            atexit.register(self.close)

    def record(self, response_time=None, response=None, start_time=None, **request):
        """Listener of Locust's request event (which passes everything by keyword)."""
        if self.handle is None or start_time is None:
            return
        status = getattr(response, "status_code", 0) or 0
        headers = getattr(response, "headers", None) or {}
        cache = (headers.get("X-Cache") or "").strip().lower() if status else ""
        self.handle.write("%.6f,%d,%s,%s\n" % (
            start_time + (response_time or 0) / 1000.0, status, "" if response_time is None else "%.3f" % response_time,
            {"hit": "1", "miss": "0"}.get(cache, "")))

    def close(self, **event):
        if self.handle is not None:
            self.handle.close()
            self.handle = None


REQUEST_LOG = _RequestLog(os.environ.get("SLOGATE_REQUEST_LOG", ""))
events.request.add_listener(REQUEST_LOG.record)
events.quit.add_listener(REQUEST_LOG.close)


class SearchUser(HttpUser):
    """A signed-in user: searches most of the time, sometimes an admin page (403 for a regular user)."""

    wait_time = between(THINK_MIN, THINK_MAX)

    def on_start(self):
        self.user_headers = _bearer("SLOGATE_USER_TOKEN")
        self.admin_headers = _bearer("SLOGATE_ADMIN_TOKEN")

    @task(WEIGHT_SEARCH)
    def search(self):
        with self.client.get("/api/search", params={"q": random.choice(SEARCH_TERMS)}, headers=self.user_headers,
                             name="/api/search?q=", catch_response=True) as response:
            judge(response)

    @task(WEIGHT_HEALTH)
    def health(self):
        with self.client.get("/api/health", catch_response=True) as response:
            judge(response)

    @task(WEIGHT_ADMIN_PERFORMANCE)
    def admin_performance(self):
        headers = self.admin_headers if random.random() < 0.9 else self.user_headers
        with self.client.get("/api/admin/performance", headers=headers, catch_response=True) as response:
            judge(response)

    @task(WEIGHT_ADMIN_AUDIT)
    def admin_audit_log(self):
        headers = self.admin_headers if random.random() < 0.9 else self.user_headers
        with self.client.get("/api/admin/audit-log", headers=headers, catch_response=True) as response:
            judge(response)
