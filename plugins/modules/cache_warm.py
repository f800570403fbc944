#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cache_warm
short_description: Drain the cache invalidation queue, warm the cache and refresh materialized views after a deploy
version_added: 0.1.0
description:
  - Replaces steps 3 and 4 of the deployment runbook (the kit's functions C(drain_cache_invalidation_queue),
    C(warm_cache_top_queries) and C(refresh_materialized_views_staggered)) and the rollback's cache
    invalidation (C(clean_expired_cache), C(DELETE FROM query_cache)) with one task that reports
    every count and timing.
  - >-
    Runs the steps in the runbook's order, each only when asked: clean expired entries (O(clean_expired)),
    empty the cache (O(empty_cache)), drain the invalidation queue (O(drain)), warm the most requested
    queries (O(warm_top)), refresh the materialized views of a schema (O(refresh_views)), then GET the app's
    endpoints (O(warm_urls)) so the app's own cache fills too.
  - Each database step calls the kit's function with query parameters and is committed on its own, so a
    step that fails leaves the earlier ones done, and the result says which ran.
  - Needs the database kit (role C(slogate.supabase.kit)); a missing kit function fails the task at once,
    naming it, before anything runs.
  - Measures the cache hit rate over C(performance_metrics) before and after, for the report.
extends_documentation_fragment:
  - slogate.supabase.postgres
  - slogate.supabase.in_worker
options:
  drain:
    description:
      - Drain the cache invalidation queue with the kit's C(public.drain_cache_invalidation_queue),
        called with O(drain_batch) and O(drain_max_seconds) (runbook step 3), which drops the cache entries
        each pending queue row names and marks the row processed.
    type: bool
    default: true
  drain_batch:
    description:
      - Queue rows taken per round of the drain.
    type: int
    default: 100
  drain_max_seconds:
    description:
      - Seconds after which the drain stops starting new rounds; rows left are reported as RV(drain.remaining).
      - At least 1.
    type: int
    default: 60
  warm_top:
    description:
      - Recompute the cached results of this many most requested queries that have a registered warmer
        (C(public.cache_warmers)), with the kit's C(public.warm_cache_top_queries) (runbook step 4).
      - V(0) skips the step.
    type: int
    default: 20
  refresh_views:
    description:
      - Refresh every materialized view of O(refresh_schema), in creation order, with
        the kit's C(public.refresh_materialized_views_staggered), called with O(refresh_pause_seconds) and
        O(refresh_schema) (runbook step 4).
        Views with a usable unique index are refreshed C(CONCURRENTLY). Every refresh is logged to C(mv_refresh_log).
    type: bool
    default: true
  refresh_pause_seconds:
    description:
      - Seconds to pause between two view refreshes.
    type: float
    default: 2
  refresh_schema:
    description:
      - Schema whose materialized views are refreshed.
    type: str
    default: public
  clean_expired:
    description:
      - First remove expired cache entries with the kit's C(public.clean_expired_cache) (the rollback's cache invalidation).
    type: bool
    default: false
  empty_cache:
    description:
      - First remove every cache entry (C(DELETE FROM public.query_cache), the rollback's cache invalidation),
        after O(clean_expired) when both are set. The removal is recorded in C(public.audit_log).
      - The request statistics in C(query_cache_stats) are kept, so O(warm_top) still knows the top queries.
    type: bool
    default: false
  warm_urls:
    description:
      - App endpoints to GET after the database steps, to fill the app's own cache. Each must be an
        C(http://) or C(https://) URL.
      - A URL that cannot be reached, times out or answers with a status of 400 or more counts as a partial failure.
      - A password in a URL's user info is masked in the result.
    type: list
    elements: str
    default: []
  warm_url_concurrency:
    description:
      - At most this many O(warm_urls) requests in flight at a time (1 to 32).
    type: int
    default: 4
  warm_url_timeout:
    description:
      - Seconds one URL request may take, connection and response together.
    type: float
    default: 30
  warm_url_headers:
    description:
      - Headers sent with every O(warm_urls) request, for example C(Authorization) with a bearer token.
      - Never logged and never in the result, even at C(-vvv); their values are masked wherever they would appear.
      - Not sent again when a response redirects, so a token never follows a redirect to another host.
    type: dict
    default: {}
  warm_url_validate_certs:
    description:
      - Verify the TLS certificate of C(https://) URLs.
    type: bool
    default: true
  hit_rate_window_minutes:
    description:
      - The hit rates RV(cache_hit_rate_before) and RV(cache_hit_rate_after) are over the C(performance_metrics)
        rows of this many last minutes.
    type: int
    default: 15
  fail_on_partial:
    description:
      - Fail the task when a warm key, a view refresh or a URL failed, naming each and why.
      - With V(false) the task passes, warns for each failure and lists them in RV(partial_failures).
      - An error of a whole step (the server refusing the call, a statement timeout) always fails the task.
    type: bool
    default: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Only read-only queries run, in a read-only transaction that is rolled back, and no URL is requested.
        Each step reports what it would do (queue rows pending, the top candidates that have a warmer,
        the views that would be refreshed, the cache entries that would be removed).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - C(changed) is true when something was drained, warmed, refreshed, cleaned or emptied. A view refresh and
    a warm-up recompute data every time, so a rerun with O(refresh_views) or O(warm_top) is changed again when
    there is a view or a top query; a rerun of the drain alone is not.
  - The kit's warm, refresh and clean functions write a row to C(audit_log) on every call, also when they find nothing to do.
seealso:
  - module: slogate.supabase.pg_verify_function
author:
  - slogate.supabase developers (@slogate)
"""

EXAMPLES = r"""
- name: Drain, warm and refresh after the deploy (runbook steps 3 and 4)
  slogate.supabase.cache_warm:
    db_url: "{{ slogate_db_url }}"
  register: deploy_cache

- name: Same, and warm the app's own cache through its API with an admin token
  slogate.supabase.cache_warm:
    db_url: "{{ slogate_db_url }}"
    warm_top: 50
    refresh_pause_seconds: 5
    warm_urls:
      - https://app.example.com/api/search?q=popular
      - https://app.example.com/api/admin/performance
    warm_url_concurrency: 2
    warm_url_timeout: 10
    warm_url_headers:
      Authorization: "Bearer {{ vault_admin_token }}"

- name: Rollback's cache invalidation, then warm again; a failing view does not stop the rollback
  slogate.supabase.cache_warm:
    clean_expired: true
    empty_cache: true
    fail_on_partial: false
  environment:
    SUPABASE_DB_URL: "{{ vault_db_url }}"

- name: What would the warm-up do?
  slogate.supabase.cache_warm:
    db_url: "{{ slogate_db_url }}"
  check_mode: true
  register: cache_plan
"""

RETURN = r"""
msg:
  description: One line saying what each step did (or would do), the hit rates and every partial failure.
  returned: always
  type: str
  sample: "drained 250 queue rows (250 cache entries, 0 left), warmed 3 keys (0 failed), refreshed 2 views (0 failed); cache hit rate 40 % before, 55 % after"
steps:
  description: The steps that ran, in order (in check mode, the steps that would run).
  returned: always
  type: list
  elements: str
  sample: [drain, warm, refresh, urls]
clean_expired:
  description: >-
    What C(clean_expired_cache) removed: C(removed) and C(duration_ms);
    in check mode C(would_remove), the expired entries.
  returned: when O(clean_expired) is set
  type: dict
  sample: {"removed": 3, "duration_ms": 2.1}
empty_cache:
  description: >-
    What emptying the cache removed: C(removed) and C(duration_ms); in check mode C(would_remove).
  returned: when O(empty_cache) is set
  type: dict
  sample: {"removed": 120, "duration_ms": 1.4}
drain:
  description: >-
    The drain's figures. In check mode instead C(pending) (queue rows not yet processed),
    C(would_invalidate) (cache entries they name now) and C(rounds_needed).
  returned: when O(drain) is set
  type: dict
  contains:
    processed:
      description: Queue rows processed.
      type: int
      sample: 250
    invalidated:
      description: Cache entries dropped.
      type: int
      sample: 250
    rounds:
      description: Rounds of at most O(drain_batch) rows.
      type: int
      sample: 3
    remaining:
      description: Queue rows still pending afterwards (left by the time limit or locked by another drain).
      type: int
      sample: 0
    stopped:
      description: Why the drain stopped, C(empty) or C(time).
      type: str
      sample: empty
    elapsed_ms:
      description: Time the drain function measured.
      type: float
    duration_ms:
      description: Time of the step as the module measured it, commit included.
      type: float
warm:
  description: >-
    The warm-up's figures. In check mode instead C(candidates) (the top O(warm_top) keys that have a
    warmer, with C(key), C(query_name), C(requests), C(warmer), C(warmer_exists)), C(would_warm) and C(would_fail).
  returned: when O(warm_top) is more than 0
  type: dict
  contains:
    requested:
      description: O(warm_top) as sent.
      type: int
    warmed:
      description: Keys recomputed and stored.
      type: int
      sample: 20
    failed:
      description: Keys whose warmer failed.
      type: int
      sample: 0
    keys:
      description: The keys warmed, most requested first.
      type: list
      elements: str
    failures:
      description: Each failed key with the error, as C(key) and C(error).
      type: list
      elements: dict
    elapsed_ms:
      description: Time the warm function measured.
      type: float
    duration_ms:
      description: Time of the step as the module measured it.
      type: float
refresh:
  description: >-
    The refresh's figures. In check mode instead C(views) (C(view), C(concurrent), C(populated)),
    C(would_refresh) and C(pauses_seconds).
  returned: when O(refresh_views) is set
  type: dict
  contains:
    views:
      description: >-
        Each view in refresh order: C(view), C(status) (C(succeeded) or C(failed)), C(duration_ms),
        C(concurrent), C(rows) and C(error) (the server's message and SQLSTATE of a failed refresh).
      type: list
      elements: dict
    refreshed:
      description: Views refreshed.
      type: int
      sample: 2
    failed:
      description: Views whose refresh failed.
      type: int
      sample: 0
    pause_seconds:
      description: The pause between two refreshes.
      type: float
    total_ms:
      description: Time the refresh function measured, pauses included.
      type: float
    duration_ms:
      description: Time of the step as the module measured it.
      type: float
urls:
  description: >-
    The URL requests. In check mode instead C(would_request), the URLs.
  returned: when O(warm_urls) is not empty
  type: dict
  contains:
    requested:
      description: URLs requested.
      type: int
    succeeded:
      description: URLs that answered with a status under 400.
      type: int
    failed:
      description: URLs that did not.
      type: int
    concurrency:
      description: O(warm_url_concurrency).
      type: int
    results:
      description: >-
        Each URL in the order given: C(url) (password masked), C(status) (null without a response),
        C(ok), C(duration_ms), C(bytes) and C(error) (null, or the HTTP status, time-out or connection error as text).
        Headers are never returned.
      type: list
      elements: dict
    duration_ms:
      description: Time of all requests together.
      type: float
cache_hit_rate_before:
  description: >-
    Percent of C(performance_metrics) requests of the last O(hit_rate_window_minutes) minutes that were cache
    hits, before the first step (1 means 1 %). Null when there was no request in the window.
  returned: always
  type: float
  sample: 40.0
cache_hit_rate_after:
  description: The same after the last step. In check mode the same as RV(cache_hit_rate_before).
  returned: always
  type: float
  sample: 55.0
hit_rate:
  description: >-
    The samples behind the hit rates: C(window_minutes), and C(before) and C(after) each with
    C(requests), C(hits) and C(percent), so the rates can be checked by hand.
  returned: when the database was reached
  type: dict
  sample: {"window_minutes": 15, "before": {"requests": 30, "hits": 12, "percent": 40.0},
           "after": {"requests": 40, "hits": 22, "percent": 55.0}}
partial_failures:
  description: Each warm key, view and URL that failed, one line each, naming it and why.
  returned: always
  type: list
  elements: str
  sample: ["view public.mv_search: division by zero (SQLSTATE 22012)"]
queries:
  description: Every statement run, in order, with its parameters.
  returned: always
  type: list
  elements: str
"""

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.slogate.supabase.plugins.module_utils import cache, http_request
from ansible_collections.slogate.supabase.plugins.module_utils.masking import SecretMaskingModule
from ansible_collections.slogate.supabase.plugins.module_utils.errors import (
    ConfigurationError,
    QueryFailure,
    SlogateError,
)
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import (
    jsonable,
    module_connect,
    pg_argument_spec,
)

HTTP_AGENT = "slogate.supabase-cache_warm"

KIT_CHECK = """
SELECT r.kind, r.name,
       CASE r.kind WHEN 'function' THEN pg_catalog.to_regprocedure(r.name) IS NOT NULL
                   WHEN 'table' THEN pg_catalog.to_regclass(r.name) IS NOT NULL
                   ELSE pg_catalog.to_regnamespace(r.name) IS NOT NULL END AS present
FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS r(kind, name, position)
ORDER BY r.position
"""

# Bounded by created_at alone, so the scan uses performance_metrics_created_at_idx.
HIT_RATE = """
SELECT pg_catalog.count(*) AS requests, pg_catalog.count(*) FILTER (WHERE m.cache_hit) AS hits
FROM public.performance_metrics m
WHERE m.created_at >= pg_catalog.now() - pg_catalog.make_interval(mins => %s)
"""

CLEAN = "SELECT public.clean_expired_cache() AS removed"

EMPTY = """
WITH removed AS (DELETE FROM public.query_cache RETURNING 1),
     counted AS (SELECT pg_catalog.count(*) AS removed FROM removed),
     audited AS (INSERT INTO public.audit_log (action, object, detail)
                 SELECT 'empty_query_cache', 'public.query_cache', pg_catalog.jsonb_build_object('removed', c.removed)
                 FROM counted c RETURNING 1)
SELECT c.removed FROM counted c
"""

DRAIN = "SELECT public.drain_cache_invalidation_queue(batch => %s, max_seconds => %s) AS result"

WARM = "SELECT public.warm_cache_top_queries(n => %s) AS result"

REFRESH = "SELECT public.refresh_materialized_views_staggered(pause_seconds => %s, view_schema => %s) AS result"

STEP_FUNCTIONS = {
    "clean_expired": "public.clean_expired_cache",
    "empty_cache": None,
    "drain": "public.drain_cache_invalidation_queue",
    "warm": "public.warm_cache_top_queries",
    "refresh": "public.refresh_materialized_views_staggered",
}

# Check mode: the same selections the kit's functions make, read only.
CACHE_ENTRIES = """
SELECT pg_catalog.count(*) AS entries, pg_catalog.count(*) FILTER (WHERE c.expires_at <= pg_catalog.now()) AS expired
FROM public.query_cache c
"""

PENDING = """
SELECT (SELECT pg_catalog.count(*) FROM public.cache_invalidation_queue q WHERE q.processed_at IS NULL) AS pending,
       (SELECT pg_catalog.count(*) FROM public.query_cache c
        WHERE (NOT %(cleaned_first)s OR c.expires_at > pg_catalog.now())
          AND EXISTS (SELECT 1 FROM public.cache_invalidation_queue q
                      WHERE q.processed_at IS NULL
                        AND (c.key = q.cache_key
                             OR (q.key_prefix IS NOT NULL AND pg_catalog.starts_with(c.key, q.key_prefix))))
       ) AS would_invalidate
"""

CANDIDATES = """
SELECT s.key, s.query_name, s.requests, w.function_name,
       pg_catalog.to_regprocedure(w.function_name || '(jsonb)') IS NOT NULL AS warmer_exists
FROM public.query_cache_stats s
JOIN public.cache_warmers w ON w.query_name = s.query_name
ORDER BY s.requests DESC, s.key
LIMIT %s
"""

VIEWS = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS view, c.relispopulated AS populated,
       slogate.can_refresh_concurrently(c.oid::pg_catalog.regclass) AS concurrent
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND c.relnamespace = pg_catalog.to_regnamespace(%s)
ORDER BY c.oid
"""


def require_kit(db, options):
    """Fail before anything runs when a kit object the steps need is missing."""
    needed = cache.kit_objects(options.steps, options.refresh_schema)
    rows = db.fetch_all(KIT_CHECK, ([kind for kind, dummy in needed], [name for dummy, name in needed]))
    message = cache.missing_kit_message([(row["kind"], row["name"]) for row in rows if not row["present"]])
    if message:
        raise ConfigurationError(message)


def measure_hit_rate(db, options):
    row = db.fetch_one(HIT_RATE, (options.hit_rate_window_minutes,))
    return cache.hit_rate_sample(row["requests"], row["hits"])


def run_step(db, step, options):
    """Run one database step in a transaction of its own; return its shaped result."""
    started = time.monotonic()
    try:
        if step == "clean_expired":
            raw = db.fetch_one(CLEAN)["removed"]
        elif step == "empty_cache":
            raw = db.fetch_one(EMPTY)["removed"]
        elif step == "drain":
            raw = db.fetch_one(DRAIN, (options.drain_batch, options.drain_max_seconds))["result"]
        elif step == "warm":
            raw = db.fetch_one(WARM, (options.warm_top,))["result"]
        else:
            raw = db.fetch_one(REFRESH, (options.refresh_pause_seconds, options.refresh_schema))["result"]
        db.commit()
    except QueryFailure as exc:
        db.rollback()
        raise QueryFailure(cache.step_error(step, STEP_FUNCTIONS[step], str(exc)), sqlstate=exc.sqlstate)
    elapsed = 1000.0 * (time.monotonic() - started)
    raw = jsonable(raw)
    if step in ("clean_expired", "empty_cache"):
        return cache.shape_removed(raw, elapsed)
    return dict(drain=cache.shape_drain, warm=cache.shape_warm, refresh=cache.shape_refresh)[step](raw, elapsed)


def fetch_url(url, headers, options):
    """GET one URL, reading the whole body; return its shaped outcome (never raises for HTTP trouble)."""
    answer = http_request.send(url, headers=headers, timeout=options.warm_url_timeout,
                               validate_certs=options.warm_url_validate_certs, http_agent=HTTP_AGENT)
    # An answer urllib raised (400 or more, a redirect not followed) failed with its status line.
    error = cache.describe_url_failure(status=answer.status, reason=answer.reason) if answer.raised else answer.error
    return cache.shape_url(url, answer.status, answer.duration_ms, answer.size, error)


def warm_urls(options):
    """GET every URL, at most warm_url_concurrency at a time; results in the order given."""
    headers = dict(options.warm_url_headers)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(options.warm_url_concurrency, len(options.warm_urls))) as pool:
        outcomes = list(pool.map(lambda url: fetch_url(url, headers, options), options.warm_urls))
    return cache.shape_urls(outcomes, options.warm_url_concurrency, 1000.0 * (time.monotonic() - started))


def warm_up(db, options, result):
    """The real run: hit rate, each step committed on its own, URLs, hit rate again. Fills result as it goes."""
    require_kit(db, options)
    before = measure_hit_rate(db, options)
    db.commit()
    result.update(cache_hit_rate_before=before["percent"],
                  hit_rate=dict(window_minutes=options.hit_rate_window_minutes, before=before))
    for step in options.steps:
        result[step] = warm_urls(options) if step == "urls" else run_step(db, step, options)
        result["steps"].append(step)
        result["changed"] = cache.changed(result)
    after = measure_hit_rate(db, options)
    db.commit()
    result["cache_hit_rate_after"] = after["percent"]
    result["hit_rate"]["after"] = after


def plan(db, options, result):
    """Check mode: what each step would do, from read-only queries in a transaction rolled back."""
    db.execute("SET TRANSACTION READ ONLY")
    # The kit's functions resolve warmer names with an empty search_path; so does the plan.
    db.execute("SELECT pg_catalog.set_config('search_path', '', true)")
    require_kit(db, options)
    sample = measure_hit_rate(db, options)
    result.update(cache_hit_rate_before=sample["percent"], cache_hit_rate_after=sample["percent"],
                  hit_rate=dict(window_minutes=options.hit_rate_window_minutes, before=sample, after=sample))
    steps = options.steps
    if "clean_expired" in steps or "empty_cache" in steps:
        row = db.fetch_one(CACHE_ENTRIES)
        result.update(cache.plan_cleanup(steps, row["entries"], row["expired"]))
    if "drain" in steps:
        row = db.fetch_one(PENDING, dict(cleaned_first="clean_expired" in steps))
        result["drain"] = cache.plan_drain(steps, row["pending"], row["would_invalidate"], options.drain_batch)
    if "warm" in steps:
        result["warm"] = cache.plan_warm(jsonable(db.fetch_all(CANDIDATES, (options.warm_top,))))
    if "refresh" in steps:
        result["refresh"] = cache.plan_refresh(db.fetch_all(VIEWS, (options.refresh_schema,)),
                                               options.refresh_pause_seconds)
    if "urls" in steps:
        result["urls"] = cache.plan_urls(options.warm_urls, options.warm_url_concurrency)
    db.rollback()
    result["steps"] = list(steps)
    result["changed"] = cache.changed(result)


OPTIONS = dict(
    drain=dict(type="bool", default=True),
    drain_batch=dict(type="int", default=100),
    drain_max_seconds=dict(type="int", default=60),
    warm_top=dict(type="int", default=20),
    refresh_views=dict(type="bool", default=True),
    refresh_pause_seconds=dict(type="float", default=2),
    refresh_schema=dict(type="str", default="public"),
    clean_expired=dict(type="bool", default=False),
    empty_cache=dict(type="bool", default=False),
    warm_urls=dict(type="list", elements="str", default=[]),
    warm_url_concurrency=dict(type="int", default=4),
    warm_url_timeout=dict(type="float", default=30),
    warm_url_headers=dict(type="dict", default={}, no_log=True),
    warm_url_validate_certs=dict(type="bool", default=True),
    hit_rate_window_minutes=dict(type="int", default=15),
    fail_on_partial=dict(type="bool", default=True),
)


def module_kwargs():
    """AnsibleModule's arguments, for the module and for its run in the Ansible worker (the action plugin)."""
    return dict(argument_spec=pg_argument_spec(**OPTIONS), supports_check_mode=True)


def secrets_in(params):
    """The passwords in the user info of warm_urls: kept out of every output, the invocation at -vvv included."""
    return cache.url_passwords(params.get("warm_urls"))


def run_task(module):
    """The whole task on an AnsibleModule or the worker's stand-in; ends with exit_json or fail_json."""
    result = dict(changed=False, steps=[], partial_failures=[], queries=[],
                  cache_hit_rate_before=None, cache_hit_rate_after=None)
    db = None
    try:
        options = cache.parse_options(module.params)
        db = module_connect(module)
        with db:
            (plan if module.check_mode else warm_up)(db, options, result)
    except SlogateError as exc:
        result.update(queries=db.queries if db else [], partial_failures=cache.partial_failures(result))
        module.fail_json(msg=str(exc), **result)
    result.update(queries=db.queries, partial_failures=cache.partial_failures(result))
    msg = cache.summarize(result, check_mode=module.check_mode)
    if result["partial_failures"] and options.fail_on_partial:
        module.fail_json(msg="cache warm-up partly failed: " + msg, **result)
    for line in result["partial_failures"]:
        module.warn(line)
    module.exit_json(msg=msg, **result)


def main():
    run_task(SecretMaskingModule(secrets_in, **module_kwargs()))


if __name__ == "__main__":
    main()
