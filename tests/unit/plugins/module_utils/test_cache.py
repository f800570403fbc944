import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils.cache import (
    MAX_URL_CONCURRENCY,
    STEPS,
    changed,
    describe_url_failure,
    hit_rate,
    kit_objects,
    missing_kit_message,
    parse_options,
    partial_failures,
    plan_cleanup,
    plan_drain,
    plan_refresh,
    plan_urls,
    plan_warm,
    redact_url,
    shape_drain,
    shape_refresh,
    shape_removed,
    shape_url,
    shape_urls,
    shape_warm,
    step_error,
    summarize,
    url_passwords,
)
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

DEFAULTS = dict(drain=True, drain_batch=100, drain_max_seconds=60, warm_top=20, refresh_views=True,
                refresh_pause_seconds=2.0, refresh_schema="public", clean_expired=False, empty_cache=False,
                warm_urls=[], warm_url_concurrency=4, warm_url_timeout=30.0, warm_url_headers={},
                warm_url_validate_certs=True, hit_rate_window_minutes=15, fail_on_partial=True)


def options(**changes):
    return parse_options(dict(DEFAULTS, **changes))


# --- options -------------------------------------------------------------------------------

# name: (changes, steps)
STEP_CASES = {
    "defaults: the runbook's steps 3 and 4": ({}, ("drain", "warm", "refresh")),
    "rollback: clean and empty first": (dict(clean_expired=True, empty_cache=True),
                                        ("clean_expired", "empty_cache", "drain", "warm", "refresh")),
    "warm_top 0 skips the warm-up": (dict(warm_top=0), ("drain", "refresh")),
    "urls last": (dict(warm_urls=["http://app/x"], drain=False), ("warm", "refresh", "urls")),
    "nothing": (dict(drain=False, warm_top=0, refresh_views=False), ()),
}


@pytest.mark.parametrize("changes, steps", list(STEP_CASES.values()), ids=list(STEP_CASES))
def test_steps_run_in_the_runbooks_order(changes, steps):
    assert options(**changes).steps == steps
    assert list(steps) == [step for step in STEPS if step in steps]


# name: (changes, message)
BAD_OPTIONS = {
    "batch 0": (dict(drain_batch=0), "drain_batch must be 1 or more, got 0"),
    "max_seconds 0": (dict(drain_max_seconds=0),
                      "drain_max_seconds must be 1 or more (the kit stops before the first round at 0), got 0"),
    "negative warm_top": (dict(warm_top=-1), "warm_top must be 0 (skip) or more, got -1"),
    "negative pause": (dict(refresh_pause_seconds=-0.5), "refresh_pause_seconds must be 0 or more, got -0.5"),
    "empty schema": (dict(refresh_schema=" "), "refresh_schema must name a schema"),
    "concurrency 0": (dict(warm_url_concurrency=0), "warm_url_concurrency must be between 1 and 32, got 0"),
    "concurrency over the bound": (dict(warm_url_concurrency=MAX_URL_CONCURRENCY + 1),
                                   "warm_url_concurrency must be between 1 and 32, got 33"),
    "timeout 0": (dict(warm_url_timeout=0), "warm_url_timeout must be more than 0 seconds, got 0"),
    "window 0": (dict(hit_rate_window_minutes=0), "hit_rate_window_minutes must be 1 or more, got 0"),
    "ftp URL": (dict(warm_urls=["ftp://host/x"]), "warm_urls[0] ftp://host/x is not an http:// or https:// URL with a host"),
    "URL without host": (dict(warm_urls=["http://ok/", "http:///path"]),
                         "warm_urls[1] http:///path is not an http:// or https:// URL with a host"),
    "relative URL, password masked": (dict(warm_urls=["//u:secret@host/x"]),
                                      "warm_urls[0] //u:********@host/x is not an http:// or https:// URL with a host"),
    "header name with a space": (dict(warm_url_headers={"X Bad": "v"}),
                                 "warm_url_headers: 'X Bad' is not a valid HTTP header name"),
    "header value on two lines": (dict(warm_url_headers={"Authorization": "Bearer a\r\nX-Injected: 1"}),
                                  "warm_url_headers: the value of Authorization must be one line of text"),
}


@pytest.mark.parametrize("changes, message", list(BAD_OPTIONS.values()), ids=list(BAD_OPTIONS))
def test_bad_options_are_named(changes, message):
    with pytest.raises(ConfigurationError) as caught:
        options(**changes)
    assert str(caught.value) == message


def test_header_values_are_kept_but_never_in_repr():
    parsed = options(warm_url_headers={"Authorization": "Bearer s3cr3t-token", "X-Warm": 1})
    assert parsed.warm_url_headers == (("Authorization", "Bearer s3cr3t-token"), ("X-Warm", "1"))
    assert "s3cr3t" not in repr(parsed)


# --- kit objects --------------------------------------------------------------------------------


def test_kit_objects_per_step_each_once():
    needed = kit_objects(("drain", "warm", "refresh"), "public")
    assert needed[0] == ("table", "public.performance_metrics")
    assert ("function", "public.drain_cache_invalidation_queue(integer, integer)") in needed
    assert ("function", "public.warm_cache_top_queries(integer)") in needed
    assert ("function", "public.refresh_materialized_views_staggered(double precision, text)") in needed
    assert needed[-1] == ("schema", "public")
    assert len(needed) == len(set(needed))
    assert kit_objects((), "public") == (("table", "public.performance_metrics"),)
    assert ("function", "public.clean_expired_cache()") in kit_objects(("clean_expired",))


MISSING = {
    "nothing": ([], None),
    "one function": ([("function", "public.warm_cache_top_queries(integer)")],
                     "kit function public.warm_cache_top_queries(integer) is missing from the database; "
                     "install the kit (role slogate.supabase.kit) first"),
    "functions first": ([("table", "public.query_cache"), ("function", "public.clean_expired_cache()")],
                        "kit objects missing from the database: function public.clean_expired_cache(), "
                        "table public.query_cache; install the kit (role slogate.supabase.kit) first"),
    "schema alone": ([("schema", "reporting")], "refresh_schema reporting does not exist in the database"),
    "kit before schema": ([("schema", "reporting"), ("table", "public.performance_metrics")],
                          "kit table public.performance_metrics is missing from the database; "
                          "install the kit (role slogate.supabase.kit) first"),
}


@pytest.mark.parametrize("missing, message", list(MISSING.values()), ids=list(MISSING))
def test_missing_kit_message(missing, message):
    assert missing_kit_message(missing) == message


# --- hit rate ------------------------------------------------------------------------------------


@pytest.mark.parametrize("requests, hits, expected", [
    (0, 0, None), (None, None, None), (30, 12, 40.0), (3, 1, 33.33), (20, 20, 100.0), (20, 0, 0.0)])
def test_hit_rate(requests, hits, expected):
    assert hit_rate(requests, hits) == expected


@given(st.integers(1, 10 ** 9), st.data())
def test_hit_rate_is_a_percentage(requests, data):
    hits = data.draw(st.integers(0, requests))
    assert 0.0 <= hit_rate(requests, hits) <= 100.0


# --- shaping the kit's results ---------------------------------------------------------------------

DRAIN_RAW = {"ok": True, "processed": 250, "invalidated": 254, "rounds": 3, "remaining": 0, "stopped": "empty",
             "elapsed_ms": 12.3456}
WARM_RAW = {"ok": False, "requested": 5, "warmed": 2, "keys": ["search:2", "search:1"],
            "failed": [{"key": "search:x", "error": "warmer public.gone(jsonb) does not exist"}], "elapsed_ms": 4.04}
REFRESH_RAW = {"ok": False, "failed": 1, "pause_seconds": 0, "total_ms": 40.56, "views": [
    {"view": "public.a", "status": "succeeded", "rows": 10, "concurrent": True, "duration_ms": 20.04},
    {"view": "public.mv_fragile", "status": "failed", "concurrent": True, "duration_ms": 3.0,
     "error": "source table is locked for repair (SQLSTATE P0001)"}]}


def test_shape_drain():
    assert shape_drain(DRAIN_RAW, 15.01) == dict(processed=250, invalidated=254, rounds=3, remaining=0, stopped="empty",
                                                 elapsed_ms=12.3, duration_ms=15.0)


def test_shape_warm_counts_failures_and_names_them():
    shaped = shape_warm(WARM_RAW, 5.0)
    assert (shaped["warmed"], shaped["failed"], shaped["keys"]) == (2, 1, ["search:2", "search:1"])
    assert shaped["failures"] == [{"key": "search:x", "error": "warmer public.gone(jsonb) does not exist"}]


def test_shape_refresh_per_view():
    shaped = shape_refresh(REFRESH_RAW, 41.0)
    assert (shaped["refreshed"], shaped["failed"], shaped["total_ms"]) == (1, 1, 40.6)
    assert shaped["views"] == [
        dict(view="public.a", status="succeeded", duration_ms=20.0, concurrent=True, rows=10, error=None),
        dict(view="public.mv_fragile", status="failed", duration_ms=3.0, concurrent=True, rows=None,
             error="source table is locked for repair (SQLSTATE P0001)")]


def test_shape_empty_results():
    assert shape_drain(None, None)["processed"] == 0
    assert shape_warm({}, 1)["warmed"] == 0 and shape_warm({}, 1)["failures"] == []
    assert shape_refresh({"views": []}, 1)["refreshed"] == 0
    assert shape_removed(None, 1.04) == {"removed": 0, "duration_ms": 1.0}


# name: (status, error given, ok, error shown)
URL_CASES = {
    "200": (200, None, True, None),
    "204": (204, None, True, None),
    "404": (404, "HTTP 404 Not Found", False, "HTTP 404 Not Found"),
    "500 without text": (500, None, False, "HTTP 500"),
    "no response": (None, "timed out after 2 s", False, "timed out after 2 s"),
}


@pytest.mark.parametrize("status, error, ok, shown", list(URL_CASES.values()), ids=list(URL_CASES))
def test_shape_url(status, error, ok, shown):
    shaped = shape_url("http://app/x", status, 12.34, 16, error)
    assert (shaped["ok"], shaped["error"], shaped["status"], shaped["duration_ms"]) == (ok, shown, status, 12.3)
    assert set(shaped) == {"url", "status", "ok", "duration_ms", "bytes", "error"}


def test_shape_urls_counts_and_masks():
    outcomes = [shape_url("http://u:pw1234@app/x", 200, 1, 1, None), shape_url("http://app/y", 500, 1, 1, "HTTP 500")]
    shaped = shape_urls(outcomes, 4, 3.0)
    assert (shaped["requested"], shaped["succeeded"], shaped["failed"]) == (2, 1, 1)
    assert shaped["results"][0]["url"] == "http://u:********@app/x"


@pytest.mark.parametrize("kwargs, text", [
    (dict(status=404, reason="Not Found"), "HTTP 404 Not Found"),
    (dict(status=502), "HTTP 502"),
    (dict(timed_out=True, timeout=2.0), "timed out after 2 s"),
    (dict(timed_out=True, timeout=0.5), "timed out after 0.5 s"),
    (dict(reason="[Errno 111]\nConnection refused"), "[Errno 111] Connection refused"),
    (dict(), "request failed"),
])
def test_describe_url_failure(kwargs, text):
    assert describe_url_failure(**kwargs) == text


@pytest.mark.parametrize("url, shown", [
    ("http://app/x", "http://app/x"),
    ("https://user:pa%40ss@app:8443/x?q=1", "https://user:********@app:8443/x?q=1"),
    ("http://user@app/x", "http://user@app/x"),
    ("http://[::1/x", "http://[::1/x"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_url_passwords_are_found_plain_and_encoded():
    assert url_passwords(["http://app/x", "https://u:pa@ss1@app/y", "http://u:abc@app/", "http://[::1/x"]) == [
        "pa@ss1", "pa%40ss1"]
    assert url_passwords(None) == []


# --- check mode plans ----------------------------------------------------------------------------------


@pytest.mark.parametrize("steps, expected", [
    (("clean_expired",), {"clean_expired": {"would_remove": 2}}),
    (("empty_cache",), {"empty_cache": {"would_remove": 10}}),
    (("clean_expired", "empty_cache"), {"clean_expired": {"would_remove": 2}, "empty_cache": {"would_remove": 8}}),
    (("drain",), {}),
])
def test_plan_cleanup(steps, expected):
    assert plan_cleanup(steps, 10, 2) == expected


def test_plan_drain():
    assert plan_drain(("drain",), 250, 240, 100) == {"pending": 250, "would_invalidate": 240, "rounds_needed": 3}
    assert plan_drain(("empty_cache", "drain"), 5, 5, 100)["would_invalidate"] == 0
    assert plan_drain(("drain",), 0, 0, 100) == {"pending": 0, "would_invalidate": 0, "rounds_needed": 0}


def test_plan_warm_flags_missing_warmers():
    planned = plan_warm([
        {"key": "a", "query_name": "q", "requests": 9, "function_name": "public.w", "warmer_exists": True},
        {"key": "b", "query_name": "r", "requests": 3, "function_name": "public.gone", "warmer_exists": False}])
    assert planned["would_warm"] == 1
    assert planned["would_fail"] == [{"key": "b", "error": "warmer public.gone(jsonb) does not exist"}]
    assert planned["candidates"][0] == {"key": "a", "query_name": "q", "requests": 9, "warmer": "public.w", "warmer_exists": True}


def test_plan_refresh_and_urls():
    planned = plan_refresh([{"view": "public.a", "concurrent": True, "populated": True},
                            {"view": "public.b", "concurrent": False, "populated": False}], 2.0)
    assert planned["would_refresh"] == 2 and planned["pauses_seconds"] == 2.0
    assert plan_refresh([], 2.0)["pauses_seconds"] == 0
    assert plan_urls(["http://u:secret@a/x"], 4) == {"would_request": ["http://u:********@a/x"], "concurrency": 4}


# --- verdict ----------------------------------------------------------------------------------------------

# name: (result, changed)
CHANGED = {
    "nothing ran": ({}, False),
    "drained nothing": ({"drain": {"processed": 0}}, False),
    "drained": ({"drain": {"processed": 1}}, True),
    "warmed": ({"warm": {"warmed": 2}}, True),
    "only warm failures": ({"warm": {"warmed": 0, "failed": 1}}, False),
    "refreshed": ({"refresh": {"refreshed": 1}}, True),
    "every refresh failed": ({"refresh": {"refreshed": 0, "failed": 2}}, False),
    "cleaned": ({"clean_expired": {"removed": 3}}, True),
    "emptied": ({"empty_cache": {"removed": 3}}, True),
    "urls only": ({"urls": {"succeeded": 10}}, False),
    "check: pending": ({"drain": {"pending": 4}}, True),
    "check: nothing pending": ({"drain": {"pending": 0}, "warm": {"would_warm": 0}, "refresh": {"would_refresh": 0}}, False),
    "check: would refresh": ({"refresh": {"would_refresh": 2}}, True),
    "check: would clean": ({"clean_expired": {"would_remove": 1}}, True),
}


@pytest.mark.parametrize("result, expected", list(CHANGED.values()), ids=list(CHANGED))
def test_changed(result, expected):
    assert changed(result) is expected


def test_partial_failures_name_each_key_view_and_url():
    result = {"warm": shape_warm(WARM_RAW, 1), "refresh": shape_refresh(REFRESH_RAW, 1),
              "urls": shape_urls([shape_url("http://app/y", 500, 1, 0, "HTTP 500 Internal Server Error")], 4, 1)}
    assert partial_failures(result) == [
        "warm key search:x: warmer public.gone(jsonb) does not exist",
        "view public.mv_fragile: source table is locked for repair (SQLSTATE P0001)",
        "URL http://app/y: HTTP 500 Internal Server Error"]
    assert partial_failures({"refresh": plan_refresh([{"view": "public.a"}], 1.0), "warm": plan_warm([])}) == []


def test_summarize_real_run_and_check_mode():
    result = {"drain": shape_drain(DRAIN_RAW, 1), "refresh": shape_refresh(REFRESH_RAW, 1),
              "cache_hit_rate_before": 40.0, "cache_hit_rate_after": None}
    result["partial_failures"] = partial_failures(result)
    assert summarize(result) == (
        "drained 250 queue rows (254 cache entries, 0 left), refreshed 1 views (1 failed); "
        "cache hit rate 40 % before, n/a after; 1 failed: view public.mv_fragile: "
        "source table is locked for repair (SQLSTATE P0001)")
    plan = {"drain": plan_drain(("drain",), 3, 2, 100), "urls": plan_urls(["http://a/"], 1),
            "cache_hit_rate_before": 55.5, "cache_hit_rate_after": 55.5}
    assert summarize(plan, check_mode=True) == (
        "would drain 3 queue rows (2 cache entries), request 1 URLs; cache hit rate 55.5 % before, 55.5 % after")
    assert summarize({}, check_mode=True).startswith("nothing to do;")


def test_step_error():
    assert step_error("drain", "public.drain_cache_invalidation_queue", "canceling statement due to statement timeout") == (
        "drain (public.drain_cache_invalidation_queue) failed: canceling statement due to statement timeout")
    assert step_error("empty_cache", None, "permission denied") == "empty_cache failed: permission denied"
