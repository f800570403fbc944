# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cache warm-up after a deploy or a rollback: options, plan and results as
plain data. Pure logic: no driver, no Ansible, no clock.

The steps run in the runbook's order, each only when asked:

- ``clean_expired``: rollback step 3, ``clean_expired_cache()``;
- ``empty_cache``: rollback step 3, ``DELETE FROM query_cache``;
- ``drain``: deploy step 3, ``drain_cache_invalidation_queue(batch, max_seconds)``;
- ``warm``: deploy step 4, ``warm_cache_top_queries(n)``;
- ``refresh``: deploy step 4, ``refresh_materialized_views_staggered(pause_seconds, view_schema)``;
- ``urls``: GET the app's endpoints so the app's own cache fills too.

The kit's functions return jsonb; the functions here turn what they return
(or, in check mode, what read-only queries found) into the module's result,
decide what counts as a change and as a partial failure, and say it in one line.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
from dataclasses import dataclass, field
from typing import Tuple
from urllib.parse import quote, urlsplit, urlunsplit

from ansible_collections.slogate.supabase.plugins.module_utils.errors import MASK, MIN_LITERAL_SECRET_LENGTH, ConfigurationError

STEPS = ("clean_expired", "empty_cache", "drain", "warm", "refresh", "urls")

MAX_URL_CONCURRENCY = 32

KIT_ROLE = "slogate.supabase.kit"

# What each step needs in the database, as (kind, name); names as to_regprocedure/to_regclass read them.
KIT_OBJECTS = {
    "hit_rate": (("table", "public.performance_metrics"),),
    "clean_expired": (("function", "public.clean_expired_cache()"), ("table", "public.query_cache")),
    "empty_cache": (("table", "public.query_cache"), ("table", "public.audit_log")),
    "drain": (("function", "public.drain_cache_invalidation_queue(integer, integer)"),
              ("table", "public.cache_invalidation_queue"), ("table", "public.query_cache")),
    "warm": (("function", "public.warm_cache_top_queries(integer)"),
             ("table", "public.query_cache_stats"), ("table", "public.cache_warmers")),
    "refresh": (("function", "public.refresh_materialized_views_staggered(double precision, text)"),
                ("function", "slogate.can_refresh_concurrently(regclass)")),
    "urls": (),
}

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Options:
    """The module's options, checked; ``steps`` is what will run, in order."""

    steps: Tuple[str, ...]
    drain_batch: int = 100
    drain_max_seconds: int = 60
    warm_top: int = 20
    refresh_pause_seconds: float = 2.0
    refresh_schema: str = "public"
    warm_urls: Tuple[str, ...] = ()
    warm_url_concurrency: int = 4
    warm_url_timeout: float = 30.0
    warm_url_headers: Tuple[Tuple[str, str], ...] = field(default=(), repr=False)
    warm_url_validate_certs: bool = True
    hit_rate_window_minutes: int = 15
    fail_on_partial: bool = True


def require(condition, message):
    """Raise ConfigurationError(message) unless condition holds."""
    if not condition:
        raise ConfigurationError(message)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_http_url(url):
    """True for an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def check_url(position, url):
    """Raise ConfigurationError unless ``url`` is an absolute http(s) URL."""
    text = url.strip() if isinstance(url, str) else ""
    if not is_http_url(text):
        raise ConfigurationError("warm_urls[%d] %s is not an http:// or https:// URL with a host"
                                 % (position, redact_url(str(url))))
    return text


def parse_options(params):
    """Options from the module's params; raise ConfigurationError naming the first bad one."""
    batch, seconds = params.get("drain_batch", 100), params.get("drain_max_seconds", 60)
    top, pause = params.get("warm_top", 20), params.get("refresh_pause_seconds", 2.0)
    schema = params.get("refresh_schema") or ""
    concurrency, timeout = params.get("warm_url_concurrency", 4), params.get("warm_url_timeout", 30.0)
    window = params.get("hit_rate_window_minutes", 15)
    require(is_int(batch) and batch >= 1, "drain_batch must be 1 or more, got %r" % (batch,))
    require(is_int(seconds) and seconds >= 1,
            "drain_max_seconds must be 1 or more (the kit stops before the first round at 0), got %r" % (seconds,))
    require(is_int(top) and top >= 0, "warm_top must be 0 (skip) or more, got %r" % (top,))
    require(isinstance(pause, (int, float)) and not isinstance(pause, bool) and math.isfinite(pause) and pause >= 0,
            "refresh_pause_seconds must be 0 or more, got %r" % (pause,))
    require(isinstance(schema, str) and schema.strip() != "", "refresh_schema must name a schema")
    require(is_int(concurrency) and 1 <= concurrency <= MAX_URL_CONCURRENCY,
            "warm_url_concurrency must be between 1 and %d, got %r" % (MAX_URL_CONCURRENCY, concurrency))
    require(isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and math.isfinite(timeout) and timeout > 0,
            "warm_url_timeout must be more than 0 seconds, got %r" % (timeout,))
    require(is_int(window) and window >= 1, "hit_rate_window_minutes must be 1 or more, got %r" % (window,))
    urls = tuple(check_url(i, url) for i, url in enumerate(params.get("warm_urls") or ()))
    headers = []
    for name, value in (params.get("warm_url_headers") or {}).items():
        require(isinstance(name, str) and _HEADER_NAME.match(name),
                "warm_url_headers: %r is not a valid HTTP header name" % (name,))
        require(value is not None and "\n" not in str(value) and "\r" not in str(value),
                "warm_url_headers: the value of %s must be one line of text" % name)
        headers.append((name, str(value)))
    wanted = dict(
        clean_expired=bool(params.get("clean_expired")),
        empty_cache=bool(params.get("empty_cache")),
        drain=bool(params.get("drain", True)),
        warm=top > 0,
        refresh=bool(params.get("refresh_views", True)),
        urls=bool(urls),
    )
    return Options(
        steps=tuple(step for step in STEPS if wanted[step]),
        drain_batch=batch, drain_max_seconds=seconds, warm_top=top, refresh_pause_seconds=float(pause),
        refresh_schema=schema.strip(), warm_urls=urls, warm_url_concurrency=concurrency,
        warm_url_timeout=float(timeout), warm_url_headers=tuple(headers),
        warm_url_validate_certs=bool(params.get("warm_url_validate_certs", True)), hit_rate_window_minutes=window,
        fail_on_partial=bool(params.get("fail_on_partial", True)),
    )


def kit_objects(steps, refresh_schema=None):
    """The database objects the steps need, each once, in a stable order: (kind, name).

    With the refresh step, the schema whose views it refreshes comes last as ("schema", name).
    """
    needed = []
    for step in ("hit_rate",) + tuple(steps):
        for item in KIT_OBJECTS[step]:
            if item not in needed:
                needed.append(item)
    if "refresh" in steps and refresh_schema:
        needed.append(("schema", refresh_schema))
    return tuple(needed)


def missing_kit_message(missing):
    """One line naming every missing kit object and what to do; None when nothing is missing.

    A missing schema is the user's refresh_schema, not part of the kit: it is named only
    when the kit itself is complete.
    """
    kit = [item for item in missing if item[0] != "schema"]
    if kit:
        ordered = [item for item in kit if item[0] == "function"] + [item for item in kit if item[0] != "function"]
        if len(ordered) == 1:
            kind, name = ordered[0]
            return "kit %s %s is missing from the database; install the kit (role %s) first" % (kind, name, KIT_ROLE)
        return "kit objects missing from the database: %s; install the kit (role %s) first" % (
            ", ".join("%s %s" % item for item in ordered), KIT_ROLE)
    schemas = [name for kind, name in missing if kind == "schema"]
    if schemas:
        return "refresh_schema %s does not exist in the database" % schemas[0]
    return None


def redact_url(url):
    """The URL with the password of its user info masked; anything unparsable is returned as is."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, "%s:%s@%s" % (user, MASK, host), parts.path, parts.query, parts.fragment))


def url_passwords(urls):
    """The passwords in the user info of the URLs, so the caller can keep them out of every output."""
    found = []
    for url in [urls] if isinstance(urls, str) else urls or ():
        try:
            password = urlsplit(str(url)).password
        except ValueError:
            continue
        if password and len(password) >= MIN_LITERAL_SECRET_LENGTH:
            found.extend((password, quote(password, safe="")))
    return found


def ms(value):
    """Milliseconds rounded to 0.1, or None."""
    if value is None:
        return None
    return round(float(value), 1)


def hit_rate(requests, hits):
    """Cache hit rate in percent (1 means 1 %), None when there was no request."""
    requests, hits = int(requests or 0), int(hits or 0)
    if requests <= 0:
        return None
    return round(100.0 * hits / requests, 2)


def hit_rate_sample(requests, hits):
    return dict(requests=int(requests or 0), hits=int(hits or 0), percent=hit_rate(requests, hits))


# --- results of a real run --------------------------------------------------------


def shape_removed(removed, duration_ms):
    return dict(removed=int(removed or 0), duration_ms=ms(duration_ms))


def shape_drain(raw, duration_ms):
    """drain_cache_invalidation_queue's jsonb -> processed, invalidated, rounds, remaining, stopped."""
    raw = raw or {}
    return dict(
        processed=int(raw.get("processed") or 0),
        invalidated=int(raw.get("invalidated") or 0),
        rounds=int(raw.get("rounds") or 0),
        remaining=int(raw.get("remaining") or 0),
        stopped=raw.get("stopped"),
        elapsed_ms=ms(raw.get("elapsed_ms")),
        duration_ms=ms(duration_ms),
    )


def shape_warm(raw, duration_ms):
    """warm_cache_top_queries's jsonb -> warmed and failed counts, keys, failures by key."""
    raw = raw or {}
    failures = [dict(key=str(item.get("key")), error=str(item.get("error") or "unknown error"))
                for item in (raw.get("failed") or []) if isinstance(item, dict)]
    keys = [str(key) for key in (raw.get("keys") or [])]
    return dict(
        requested=int(raw.get("requested") or 0),
        warmed=int(raw.get("warmed") if raw.get("warmed") is not None else len(keys)),
        failed=len(failures),
        keys=keys,
        failures=failures,
        elapsed_ms=ms(raw.get("elapsed_ms")),
        duration_ms=ms(duration_ms),
    )


def shape_refresh(raw, duration_ms):
    """refresh_materialized_views_staggered's jsonb -> per view status and duration, counts."""
    raw = raw or {}
    views = []
    for item in raw.get("views") or []:
        status = item.get("status")
        views.append(dict(
            view=str(item.get("view")),
            status=status,
            duration_ms=ms(item.get("duration_ms")),
            concurrent=bool(item.get("concurrent")),
            rows=item.get("rows"),
            error=item.get("error") if status != "succeeded" else None,
        ))
    failed = [view for view in views if view["status"] != "succeeded"]
    return dict(
        views=views,
        refreshed=len(views) - len(failed),
        failed=len(failed),
        pause_seconds=raw.get("pause_seconds"),
        total_ms=ms(raw.get("total_ms")),
        duration_ms=ms(duration_ms),
    )


def describe_url_failure(status=None, reason=None, timed_out=False, timeout=None):
    """One line for a URL that did not answer with a success: HTTP status, time-out or the connection error."""
    if timed_out:
        return "timed out after %g s" % timeout if timeout is not None else "timed out"
    if status is not None:
        return ("HTTP %d %s" % (status, reason)).strip() if reason else "HTTP %d" % status
    return " ".join(str(reason or "request failed").split())


def shape_url(url, status, duration_ms, size, error):
    """One URL's outcome; a URL failed when it raised or answered 400 or more."""
    ok = error is None and status is not None and status < 400
    return dict(url=redact_url(url), status=status, ok=ok, duration_ms=ms(duration_ms),
                bytes=int(size or 0), error=None if ok else (error or "HTTP %s" % status))


def shape_urls(outcomes, concurrency, duration_ms):
    outcomes = list(outcomes)
    failed = [item for item in outcomes if not item["ok"]]
    return dict(requested=len(outcomes), succeeded=len(outcomes) - len(failed), failed=len(failed),
                concurrency=concurrency, results=outcomes, duration_ms=ms(duration_ms))


# --- check mode: what a run would do, from read-only queries ------------------------


def plan_cleanup(steps, entries, expired):
    """What clean_expired and empty_cache would remove: expired first, then the rest."""
    plans = {}
    entries, expired = int(entries or 0), int(expired or 0)
    if "clean_expired" in steps:
        plans["clean_expired"] = dict(would_remove=expired)
    if "empty_cache" in steps:
        plans["empty_cache"] = dict(would_remove=entries - expired if "clean_expired" in steps else entries)
    return plans


def plan_drain(steps, pending, would_invalidate, batch):
    """Queue rows pending and the cache entries they name (none left when the cache is emptied first)."""
    pending = int(pending or 0)
    return dict(
        pending=pending,
        would_invalidate=0 if "empty_cache" in steps else int(would_invalidate or 0),
        rounds_needed=int(math.ceil(pending / float(batch))) if pending else 0,
    )


def plan_warm(candidates):
    """The top candidates that have a warmer; those whose warmer function is missing would fail."""
    listed = [dict(key=str(c["key"]), query_name=c.get("query_name"), requests=int(c.get("requests") or 0),
                   warmer=c.get("function_name"), warmer_exists=bool(c.get("warmer_exists")))
              for c in candidates]
    would_fail = [dict(key=c["key"], error="warmer %s(jsonb) does not exist" % c["warmer"])
                  for c in listed if not c["warmer_exists"]]
    return dict(candidates=listed, would_warm=len(listed) - len(would_fail), would_fail=would_fail)


def plan_refresh(views, pause_seconds):
    listed = [dict(view=str(v["view"]), concurrent=bool(v.get("concurrent")), populated=bool(v.get("populated")))
              for v in views]
    return dict(views=listed, would_refresh=len(listed), pause_seconds=pause_seconds,
                pauses_seconds=round(pause_seconds * max(len(listed) - 1, 0), 3))


def plan_urls(urls, concurrency):
    return dict(would_request=[redact_url(url) for url in urls], concurrency=concurrency)


# --- verdict ------------------------------------------------------------------------


def changed(result):
    """True when something was (or, in check mode, would be) drained, warmed, refreshed, cleaned or emptied."""
    def count(step, *keys):
        part = result.get(step) or {}
        return any((part.get(key) or 0) > 0 for key in keys)
    return (count("clean_expired", "removed", "would_remove") or count("empty_cache", "removed", "would_remove")
            or count("drain", "processed", "pending") or count("warm", "warmed", "would_warm")
            or count("refresh", "refreshed", "would_refresh"))


def partial_failures(result):
    """Every warm key, view and URL that failed, one line each."""
    lines = []
    for item in (result.get("warm") or {}).get("failures") or []:
        lines.append("warm key %s: %s" % (item["key"], item["error"]))
    for view in (result.get("refresh") or {}).get("views") or []:
        if view.get("status", "succeeded") != "succeeded":  # check mode's views have no status
            lines.append("view %s: %s" % (view["view"], view.get("error") or view["status"]))
    for item in (result.get("urls") or {}).get("results") or []:
        if not item["ok"]:
            lines.append("URL %s: %s" % (item["url"], item["error"]))
    return lines


def _rate(value):
    return "n/a" if value is None else "%g %%" % value


def summarize(result, check_mode=False):
    """One line: what each step did (or would do), the hit rates, and what failed."""
    parts = []
    if check_mode:
        for step, text in (("clean_expired", "clean %(would_remove)d expired cache entries"),
                           ("empty_cache", "empty %(would_remove)d cache entries"),
                           ("drain", "drain %(pending)d queue rows (%(would_invalidate)d cache entries)"),
                           ("warm", "warm %(would_warm)d keys"),
                           ("refresh", "refresh %(would_refresh)d views")):
            if step in result:
                parts.append(text % result[step])
        if "urls" in result:
            parts.append("request %d URLs" % len(result["urls"]["would_request"]))
        head = "would " + ", ".join(parts) if parts else "nothing to do"
    else:
        for step, text in (("clean_expired", "cleaned %(removed)d expired cache entries"),
                           ("empty_cache", "emptied %(removed)d cache entries"),
                           ("drain", "drained %(processed)d queue rows (%(invalidated)d cache entries, %(remaining)d left)"),
                           ("warm", "warmed %(warmed)d keys (%(failed)d failed)"),
                           ("refresh", "refreshed %(refreshed)d views (%(failed)d failed)"),
                           ("urls", "requested %(succeeded)d of %(requested)d URLs")):
            if step in result:
                parts.append(text % result[step])
        head = ", ".join(parts) if parts else "nothing to do"
    line = "%s; cache hit rate %s before, %s after" % (
        head, _rate(result.get("cache_hit_rate_before")), _rate(result.get("cache_hit_rate_after")))
    failures = result.get("partial_failures") or []
    if failures:
        line += "; %d failed: %s" % (len(failures), "; ".join(failures))
    return line


def step_error(step, function, message):
    """One line for a step whose statement raised."""
    return "%s (%s) failed: %s" % (step, function, message) if function else "%s failed: %s" % (step, message)
