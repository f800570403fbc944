"""http_probe through the real ansible CLI against a real HTTP server on 127.0.0.1 started by each test:
a rate-limited endpoint, JSON and text bodies, a slow endpoint, a closed port; tokens, check mode, bad input."""

import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
from local_http import LocalHTTPServer

pytestmark = pytest.mark.integration

ADMIN = "slogate-probe-admin-4c1d9e7b2a"
USER = "slogate-probe-user-93be0f5d61"
TOKENS = {"admin": ADMIN, "user": USER}


class App(LocalHTTPServer):
    """A small app on 127.0.0.1 that counts every request it gets, with the method, path and Authorization.

    /limited answers 200 to the first `limit` requests of each Authorization, then 429 with Retry-After
    (as the demo app's admin rate limit); /json answers JSON; /big answers `big` bytes of text;
    /slow answers after 3 seconds; anything else is 404 with a JSON error.
    """

    def __init__(self, limit=5, big=10000):
        self.limit, self.big = limit, big
        self.lock = threading.Lock()
        self.requests = []   # (method, path, Authorization header)
        app = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self, with_body):
                with app.lock:
                    app.requests.append((self.command, self.path, self.headers.get("Authorization")))
                    accepted = sum(1 for r in app.requests if r[1] == "/limited" and r[2] == self.headers.get("Authorization"))
                headers = {}
                if self.path == "/limited":
                    code, kind, body = (200, "application/json", b'{"ok": true}') if accepted <= app.limit else (
                        429, "application/json", b'{"error": "rate limited"}')
                    if code == 429:
                        headers["Retry-After"] = "17"
                elif self.path == "/json":
                    code, kind, body = 200, "application/json; charset=utf-8", b'{"status": "ok", "release": "r2"}'
                elif self.path == "/big":
                    code, kind, body = 200, "text/plain", b"x" * app.big
                elif self.path == "/slow":
                    time.sleep(3)
                    code, kind, body = 200, "text/plain", b"late"
                else:
                    code, kind, body = 404, "application/json", b'{"error": "not found"}'
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if with_body:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass   # /slow: the client gave up waiting, as it should

            def do_GET(self):  # noqa: N802 - the name http.server calls
                self.answer(True)

            def do_HEAD(self):  # noqa: N802
                self.answer(False)

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = self.base_url


@pytest.fixture
def app():
    with App() as running:
        yield running


def closed_port_url(path):
    """A URL on a port that was bound and released: nothing listens there."""
    closed = App()
    url = closed.url + path
    closed.server.server_close()
    return url


def probe(ansible_module, check=False, verbosity=0, **args):
    return ansible_module("http_probe", args, check=check, verbosity=verbosity)


def test_a_repeat_loop_keeps_every_status_in_order_then_the_limited_answer_says_when_to_retry(app, ansible_module):
    run = probe(ansible_module, base_url=app.url, bearer_tokens=TOKENS, probes=[
        dict(name="rate_limit", path="/limited", token="admin", repeat=8),
        dict(name="rate_limited", path="/limited", token="admin"),
        dict(name="other_token", path="/limited", token="user"),
    ])
    assert not run.failed, run.result["msg"]
    assert run.result["changed"] is False
    loop = run.result["by_name"]["rate_limit"]
    assert loop["statuses"] == [200] * 5 + [429] * 3
    assert loop["status"] == 429 and loop["retry_after"] == "17" and loop["json"] == {"error": "rate limited"}
    assert loop["repeat"] == 8 and loop["token"] == "admin" and loop["errors"] == [] and loop["duration_ms"] > 0
    limited = run.result["by_name"]["rate_limited"]
    assert limited["statuses"] == [429] and limited["retry_after"] == "17"
    assert run.result["by_name"]["other_token"]["statuses"] == [200]   # the limit counts per token
    assert [p["name"] for p in run.result["probes"]] == ["rate_limit", "rate_limited", "other_token"]
    assert run.result["probes"][0] == loop
    assert app.requests == [("GET", "/limited", "Bearer " + ADMIN)] * 9 + [("GET", "/limited", "Bearer " + USER)]
    assert run.result["requests"] == 10
    assert run.result["msg"] == "sent 10 requests in 3 probes: rate_limit 5x200 3x429, rate_limited 429, other_token 200"


def test_json_is_parsed_text_is_truncated_and_head_has_no_body(app, ansible_module):
    run = probe(ansible_module, base_url=app.url + "/", max_body_bytes=100, probes=[
        dict(name="health", path="/json"),
        dict(name="big", path="big"),
        dict(name="missing", url=app.url + "/nowhere"),
        dict(name="head", path="/json", method="HEAD"),
    ])
    assert not run.failed, run.result["msg"]
    health, big, missing, head = (run.result["by_name"][name] for name in ("health", "big", "missing", "head"))
    assert health["status"] == 200 and health["json"] == {"status": "ok", "release": "r2"} and health["body"] is None
    assert big["status"] == 200 and big["json"] is None and big["body"] == "x" * 100 and big["bytes"] == 10000
    assert missing["status"] == 404 and missing["json"] == {"error": "not found"} and missing["error"] is None
    assert head["method"] == "HEAD" and head["status"] == 200 and head["json"] is None and head["body"] == ""
    assert [method for method, dummy, dummy2 in app.requests] == ["GET", "GET", "GET", "HEAD"]
    assert run.result["msg"] == "sent 4 requests in 4 probes: health 200, big 200, missing 404, head 200"


def test_no_answer_is_status_minus_one_with_a_one_line_error(app, ansible_module):
    refused = closed_port_url("/gone")
    run = probe(ansible_module, timeout=1, probes=[
        dict(name="refused", url=refused, repeat=2),
        dict(name="slow", url=app.url + "/slow"),
        dict(name="health", url=app.url + "/json"),
    ])
    assert not run.failed, run.result["msg"]
    gone, slow, health = (run.result["by_name"][name] for name in ("refused", "slow", "health"))
    assert gone["statuses"] == [None, None] and gone["status"] == -1 and gone["json"] is None and gone["body"] is None
    assert len(gone["errors"]) == 2 and all("\n" not in line and "refused" in line.lower() for line in gone["errors"])
    assert gone["errors"][0].startswith("request 1 of 2: ")
    assert slow["statuses"] == [None] and slow["status"] == -1 and slow["errors"] == ["timed out after 1 s"]
    assert health["status"] == 200   # the probes after a failed one are still sent
    msg = run.result["msg"]
    assert "\n" not in msg
    assert msg.startswith("sent 4 requests in 3 probes: refused 2x no answer, slow no answer, health 200; refused: request 1 of 2: ")
    assert msg.endswith("; slow: timed out after 1 s")


def test_tokens_and_url_passwords_never_show_even_at_vvv(app, ansible_module):
    with_password = app.url.replace("http://", "http://probe:hunter2secret@") + "/json"
    run = probe(ansible_module, verbosity=3, base_url=app.url, bearer_tokens=TOKENS, probes=[
        dict(name="admin", path="/limited", token="admin"),
        dict(name="user", path="/limited", token="user", headers={"X-Probe": "smoke"}),
        dict(name="basic", url=with_password),
    ])
    assert not run.failed, run.result["msg"]
    assert ("GET", "/limited", "Bearer " + ADMIN) in app.requests and ("GET", "/limited", "Bearer " + USER) in app.requests
    for secret in (ADMIN, USER, "hunter2secret"):
        assert secret not in run.output
    arguments = run.result["invocation"]["module_args"]
    assert arguments["bearer_tokens"] == {"admin": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "user": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
    assert arguments["probes"][1]["headers"] == {"X-Probe": "smoke"}
    assert run.result["by_name"]["basic"]["url"] == with_password.replace("hunter2secret", "********")
    assert [run.result["by_name"][name]["token"] for name in ("admin", "user", "basic")] == ["admin", "user", None]


def test_check_mode_sends_nothing_and_lists_the_requests(app, ansible_module):
    run = probe(ansible_module, check=True, base_url=app.url, bearer_tokens=TOKENS, probes=[
        dict(name="health", path="/json"), dict(name="rate_limit", path="/limited", token="admin", repeat=35)])
    assert not run.failed, run.result["msg"]
    assert app.requests == []
    assert run.result["changed"] is False
    assert run.result["msg"] == "would send 36 requests in 2 probes: health, rate_limit x35"
    assert run.result["requests"] == 36 and run.result["duration_ms"] is None
    planned = run.result["by_name"]["rate_limit"]
    assert planned["statuses"] == [] and planned["status"] == -1 and planned["url"] == app.url + "/limited"
    assert planned["repeat"] == 35 and planned["token"] == "admin"


BAD_INPUT = {  # name: (args, the one-line message)
    "unknown token name": (dict(bearer_tokens=TOKENS, probes=[dict(name="user_performance", path="/x", token="usr")]),
                           "probe user_performance: token usr is not a name in bearer_tokens (known: admin, user); "
                           "add it there or fix the name"),
    "duplicate probe name": (dict(probes=[dict(name="health", path="/a"), dict(name="health", path="/b")]),
                             "probes[1]: the name health is already used by probes[0]; give every probe a unique name"),
    "url and path": (dict(probes=[dict(name="health", path="/a", url="http://127.0.0.1:9/a")]),
                     "probe health: give url or path, not both"),
    "repeat 0": (dict(probes=[dict(name="loop", path="/a", repeat=0)]), "probe loop: repeat must be 1 or more, got 0"),
}


@pytest.mark.parametrize("args, message", list(BAD_INPUT.values()), ids=list(BAD_INPUT))
def test_bad_input_fails_with_one_line_and_sends_nothing(app, ansible_module, args, message):
    run = probe(ansible_module, base_url=app.url, **args)
    assert run.failed
    assert run.result["msg"] == message
    assert app.requests == []
    assert ADMIN not in run.output and USER not in run.output and "Traceback" not in run.output


def test_an_unknown_probe_option_is_refused_by_ansible(app, ansible_module):
    run = probe(ansible_module, base_url=app.url, probes=[dict(name="health", path="/json", methd="HEAD")])
    assert run.failed and "methd" in run.result["msg"] and "\n" not in run.result["msg"]
    assert app.requests == []
