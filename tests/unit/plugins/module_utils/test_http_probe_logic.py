import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError
from ansible_collections.slogate.supabase.plugins.module_utils.http_request import Answer
from ansible_collections.slogate.supabase.plugins.module_utils.http_probe import (
    Probe,
    by_name,
    is_json_type,
    join_url,
    parse_options,
    plan,
    read_body,
    request_headers,
    shape_probe,
    summarize,
    summarize_statuses,
)

ADMIN = "eyJhbGciOiJIUzI1NiJ9.admin-token-value.signature"
USER = "eyJhbGciOiJIUzI1NiJ9.user-token-value.signature"
TOKENS = {"admin": ADMIN, "user": USER}


def params(probes, **changes):
    """The module's params as Ansible hands them over (sub-option defaults filled in)."""
    filled = [dict(dict(url=None, path=None, method="GET", token=None, repeat=1, headers={}), **probe) for probe in probes]
    return dict(dict(base_url="http://app:3000", probes=filled, bearer_tokens=TOKENS, timeout=10.0,
                     validate_certs=True, max_body_bytes=65536), **changes)


def options(probes, **changes):
    return parse_options(params(probes, **changes))


def answer(status=200, body=b"", content_type=None, retry_after=None, error=None, duration_ms=2.0, size=None):
    headers = tuple(item for item in (("content-type", content_type), ("retry-after", retry_after)) if item[1])
    return Answer(status=status, headers=headers, body=body, size=len(body) if size is None else size, error=error,
                  duration_ms=duration_ms)


NO_ANSWER = dict(status=None, error="[Errno 111] Connection refused")

# --- options ------------------------------------------------------------------------------

BAD = {  # name: (probes, changed options, the one-line message)
    "no probe": ([], {}, "probes must list at least one probe"),
    "no name": ([dict(name=" ", path="/x")], {}, "probes[0] has no name; give every probe a unique name"),
    "duplicate name": ([dict(name="health", path="/a"), dict(name="other", path="/b"), dict(name="health", path="/c")], {},
                       "probes[2]: the name health is already used by probes[0]; give every probe a unique name"),
    "url and path": ([dict(name="health", url="http://app/x", path="/x")], {}, "probe health: give url or path, not both"),
    "neither url nor path": ([dict(name="health")], {},
                             "probe health: give url (an absolute URL) or path (joined to base_url)"),
    "relative url": ([dict(name="health", url="/api/health")], {},
                     "probe health: url /api/health is not an http:// or https:// URL with a host"),
    "ftp url, password masked": ([dict(name="health", url="ftp://u:secret99@app/x")], {},
                                 "probe health: url ftp://u:********@app/x is not an http:// or https:// URL with a host"),
    "path without base_url": ([dict(name="health", path="/api/health")], dict(base_url=None),
                              "probe health: path /api/health needs base_url; set base_url or give an absolute url"),
    "url given as path": ([dict(name="health", path="http://app/x")], {}, "probe health: path http://app/x is a URL; give it as url"),
    "bad base_url": ([dict(name="health", path="/x")], dict(base_url="app:3000"),
                     "base_url app:3000 is not an http:// or https:// URL with a host"),
    "unknown token": ([dict(name="user_performance", path="/x", token="usr")], {},
                      "probe user_performance: token usr is not a name in bearer_tokens (known: admin, user); "
                      "add it there or fix the name"),
    "token without bearer_tokens": ([dict(name="admin", path="/x", token="admin")], dict(bearer_tokens={}),
                                    "probe admin: token admin is not a name in bearer_tokens (known: none, bearer_tokens is empty); "
                                    "add it there or fix the name"),
    "empty token": ([dict(name="rate_limit", path="/x", token="rate_limit")], dict(bearer_tokens=dict(TOKENS, rate_limit="")),
                    "probe rate_limit: bearer_tokens.rate_limit is empty; set the token"),
    "multi-line token": ([dict(name="a", path="/x")], dict(bearer_tokens=dict(admin="abc\ndef")),
                         "bearer_tokens.admin must be one line of text"),
    "repeat 0": ([dict(name="rate_limit", path="/x", repeat=0)], {}, "probe rate_limit: repeat must be 1 or more, got 0"),
    "repeat negative": ([dict(name="rate_limit", path="/x", repeat=-3)], {}, "probe rate_limit: repeat must be 1 or more, got -3"),
    "POST": ([dict(name="health", path="/x", method="POST")], {}, "probe health: method POST is not supported; use GET or HEAD"),
    "Authorization header": ([dict(name="health", path="/x", headers={"Authorization": "Bearer x"})], {},
                             "probe health: headers must not set Authorization (headers are shown in the task's arguments); "
                             "put the token in bearer_tokens and name it with token"),
    "bad header name": ([dict(name="health", path="/x", headers={"X Bad": "1"})], {},
                        "probe health: 'X Bad' is not a valid HTTP header name"),
    "multi-line header": ([dict(name="health", path="/x", headers={"X-Note": "a\r\nInjected: 1"})], {},
                          "probe health: the value of header X-Note must be one line of text"),
    "timeout 0": ([dict(name="health", path="/x")], dict(timeout=0), "timeout must be more than 0 seconds, got 0"),
    "negative max_body_bytes": ([dict(name="health", path="/x")], dict(max_body_bytes=-1), "max_body_bytes must be 0 or more, got -1"),
}


@pytest.mark.parametrize("probes, changes, message", list(BAD.values()), ids=list(BAD))
def test_bad_input_is_one_line_naming_the_option_or_probe(probes, changes, message):
    with pytest.raises(ConfigurationError) as raised:
        options(probes, **changes)
    assert str(raised.value) == message
    assert ADMIN not in str(raised.value) and USER not in str(raised.value)


def test_probes_are_parsed_in_order_with_their_urls_tokens_and_repeats():
    parsed = options([dict(name="health", path="/api/health"),
                      dict(name="admin", path="api/admin/performance", token="admin", method="head"),
                      dict(name="elsewhere", url="https://other.example.com/x?y=1", headers={"X-Trace": 7}),
                      dict(name="loop", path="/api/admin/performance", token="admin", repeat=35)],
                     base_url="http://app:3000/")
    assert parsed.probes == (
        Probe(name="health", url="http://app:3000/api/health"),
        Probe(name="admin", url="http://app:3000/api/admin/performance", method="HEAD", token="admin"),
        Probe(name="elsewhere", url="https://other.example.com/x?y=1", headers=(("X-Trace", "7"),)),
        Probe(name="loop", url="http://app:3000/api/admin/performance", token="admin", repeat=35),
    )
    assert parsed.requests == 38
    assert parsed.bearer_tokens == (("admin", ADMIN),)   # only the tokens a probe sends
    assert ADMIN not in repr(parsed)


def test_request_headers_carry_the_named_token_and_the_probe_headers():
    parsed = options([dict(name="admin", path="/x", token="admin", headers={"Accept": "application/json"}),
                      dict(name="anonymous", path="/x")])
    assert request_headers(parsed.probes[0], parsed) == {"Accept": "application/json", "Authorization": "Bearer " + ADMIN}
    assert request_headers(parsed.probes[1], parsed) == {}


@pytest.mark.parametrize("base, path, joined", [
    ("http://app:3000", "/api/health", "http://app:3000/api/health"),
    ("http://app:3000/", "/api/health", "http://app:3000/api/health"),
    ("http://app/prefix/", "api/health?full=1", "http://app/prefix/api/health?full=1"),
])
def test_join_url_puts_one_slash_between(base, path, joined):
    assert join_url(base, path) == joined


# --- results ------------------------------------------------------------------------------

LOOP = Probe(name="rate_limit", url="http://app/api/admin/performance", token="admin", repeat=5)


def test_a_repeated_probe_keeps_every_status_in_order_and_describes_the_last_answer():
    answers = [answer(200, b'{"ok": 1}', "application/json")] * 3 + [
        answer(429, b'{"error": "rate limited"}', "application/json; charset=utf-8", retry_after="42")] * 2
    entry = shape_probe(LOOP, answers)
    assert entry == dict(name="rate_limit", url="http://app/api/admin/performance", method="GET", token="admin", repeat=5,
                         statuses=[200, 200, 200, 429, 429], errors=[], status=429, error=None,
                         json={"error": "rate limited"}, body=None, bytes=25, retry_after="42", duration_ms=10.0)


def test_no_answer_is_status_minus_one_with_numbered_one_line_errors():
    answers = [answer(200), answer(**NO_ANSWER), answer(status=None, error="timed out after 2 s")]
    entry = shape_probe(Probe(name="flaky", url="http://app/x", repeat=3), answers)
    assert entry["statuses"] == [200, None, None]
    assert entry["status"] == -1 and entry["json"] is None and entry["body"] is None and entry["retry_after"] is None
    assert entry["error"] == "timed out after 2 s"
    assert entry["errors"] == ["request 2 of 3: [Errno 111] Connection refused", "request 3 of 3: timed out after 2 s"]
    single = shape_probe(Probe(name="health", url="http://app/x"), [answer(**NO_ANSWER)])
    assert single["errors"] == ["[Errno 111] Connection refused"] and single["bytes"] == 0


def test_a_password_in_the_url_is_masked():
    entry = shape_probe(Probe(name="health", url="https://probe:hunter2secret@app/x"), [answer(200)])
    assert entry["url"] == "https://probe:********@app/x"
    assert "hunter2secret" not in json.dumps(plan(options([dict(name="h", url="https://probe:hunter2secret@app/x")])))


BODIES = {  # name: (body, size, content type, max bytes, (json, body))
    "json": (b'{"status": "ok"}', None, "application/json", 100, ({"status": "ok"}, None)),
    "problem+json": (b'{"title": "x"}', None, "application/problem+json", 100, ({"title": "x"}, None)),
    "json list": (b"[1, 2]", None, "application/json", 100, ([1, 2], None)),
    "broken json is text": (b'{"status": ', None, "application/json", 100, (None, '{"status": ')),
    "empty json body": (b"", None, "application/json", 100, (None, "")),
    "json cut short is text": (b'{"status": "ok", "long": "xxxxxxxx"}', None, "application/json", 10, (None, '{"status":')),
    "text": (b"<h1>hello</h1>", None, "text/html", 100, (None, "<h1>hello</h1>")),
    "text truncated": (b"abcdefghij", 10_000, "text/plain", 4, (None, "abcd")),
    "no content type": (b'{"a": 1}', None, None, 100, (None, '{"a": 1}')),
    "latin-1": ("café".encode("latin-1"), None, "text/plain; charset=ISO-8859-1", 100, (None, "café")),
    "unknown charset": (b"plain", None, "text/plain; charset=klingon", 100, (None, "plain")),
    "bad utf-8 replaced": (b"ok \xff", None, "text/plain", 100, (None, "ok \ufffd")),
}


@pytest.mark.parametrize("body, size, content_type, limit, expected", list(BODIES.values()), ids=list(BODIES))
def test_read_body(body, size, content_type, limit, expected):
    assert read_body(body, len(body) if size is None else size, content_type, limit) == expected


def test_is_json_type():
    assert is_json_type("application/json; charset=utf-8") and is_json_type("Application/JSON")
    assert is_json_type("application/vnd.api+json")
    assert not is_json_type("text/json-ish") and not is_json_type(None) and not is_json_type("text/plain")


def test_check_mode_plan_lists_the_requests_with_nothing_sent():
    parsed = options([dict(name="health", path="/api/health"), dict(name="loop", path="/x", token="admin", repeat=35)])
    planned = plan(parsed)
    assert [(p["name"], p["url"], p["token"], p["repeat"], p["statuses"], p["status"], p["duration_ms"]) for p in planned] == [
        ("health", "http://app:3000/api/health", None, 1, [], -1, None),
        ("loop", "http://app:3000/x", "admin", 35, [], -1, None)]
    assert summarize(planned, check_mode=True) == "would send 36 requests in 2 probes: health, loop x35"
    assert by_name(planned)["loop"] is planned[1]


# --- the summary ----------------------------------------------------------------------------

STATUSES = {
    "one": ([200], "200"),
    "one without answer": ([None], "no answer"),
    "the rate-limit loop": ([200] * 30 + [429] * 5, "30x200 5x429"),
    "first appearance order": ([429, 200, 429, None], "2x429 1x200 1x no answer"),
    "not sent": ([], "not sent"),
}


@pytest.mark.parametrize("statuses, text", list(STATUSES.values()), ids=list(STATUSES))
def test_summarize_statuses(statuses, text):
    assert summarize_statuses(statuses) == text


@given(st.lists(st.one_of(st.none(), st.sampled_from([200, 401, 403, 429, 500, 503])), min_size=2, max_size=60))
def test_status_summary_counts_every_request_once_in_order_of_first_appearance(statuses):
    parts = summarize_statuses(statuses).replace("x no answer", "xnone").split(" ")
    counted = [(int(part.split("x")[0]), part.split("x", 1)[1]) for part in parts]
    assert sum(count for count, dummy in counted) == len(statuses)
    labels = ["none" if status is None else str(status) for status in statuses]
    assert [label for dummy, label in counted] == list(dict.fromkeys(labels))
    assert all(count == labels.count(label) for count, label in counted)


def test_msg_says_what_each_probe_got_and_why_one_got_no_answer():
    probes = [Probe(name="health", url="http://app/h"), Probe(name="user_performance", url="http://app/p", token="user"),
              Probe(name="rate_limit", url="http://app/p", repeat=35), Probe(name="down", url="http://other/x", repeat=2)]
    entries = [shape_probe(probes[0], [answer(200)]), shape_probe(probes[1], [answer(403)]),
               shape_probe(probes[2], [answer(200)] * 30 + [answer(429, retry_after="9")] * 5),
               shape_probe(probes[3], [answer(**NO_ANSWER)] * 2)]
    assert summarize(entries) == (
        "sent 39 requests in 4 probes: health 200, user_performance 403, rate_limit 30x200 5x429, down 2x no answer; "
        "down: request 1 of 2: [Errno 111] Connection refused (and 1 more)")
    assert summarize([entries[0]]) == "sent 1 request in 1 probe: health 200"
