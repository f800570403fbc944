"""http_probe and cache_warm run in the Ansible worker return what the modules return."""

from http.server import BaseHTTPRequestHandler

import pytest

import kit
from local_http import LocalHTTPServer
from pgserver import run_sql
from worker_parity import PATHS, comparable, drop_pair, filled_pair, marker, run_both

pytestmark = pytest.mark.integration

TOKEN = "slogate-parity-token-5e0c8a71d3"
QUEUE = """
INSERT INTO public.query_cache (key, query_name, value, expires_at)
SELECT 'search:' || i, 'search', '{}', now() + interval '1 hour' FROM generate_series(1, 30) i;
INSERT INTO public.cache_invalidation_queue (cache_key, reason) SELECT 'search:' || i, 'test' FROM generate_series(1, 30) i;
"""


class Handler(BaseHTTPRequestHandler):
    """/json answers JSON, /admin wants the bearer token (401 without it), anything else is a 404."""

    def do_GET(self):  # noqa: N802 - the name http.server calls
        if self.path == "/json":
            code, body = 200, b'{"status": "ok"}'
        elif self.path == "/admin":
            code, body = (200, b'{"admin": true}') if self.headers.get("Authorization") == "Bearer " + TOKEN else (
                401, b'{"error": "unauthorized"}')
        else:
            code, body = 404, b'{"error": "not found"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def probe_both(ansible_module, probes, **options):
    runs, urls = {}, {}
    for path in PATHS:
        with LocalHTTPServer(Handler) as app:
            urls[path] = app.base_url
            runs[path] = ansible_module("http_probe", dict(base_url=app.base_url, bearer_tokens={"admin": TOKEN},
                                                           probes=probes), in_worker=path, verbosity=3, **options)
        assert marker("slogate.supabase.http_probe", path) in runs[path].stdout, runs[path].stdout[-2000:]
        assert TOKEN not in runs[path].output
    worker, module = (comparable(runs[path].result, {urls[path]: "<app>"}) for path in PATHS)
    assert worker == module
    return runs[True]


@pytest.mark.parametrize("probes, check, failed", [
    ([dict(name="json", path="/json"), dict(name="admin", path="/admin", token="admin"), dict(name="anon", path="/admin"),
      dict(name="missing", path="/nope", repeat=2)], False, False),
    ([dict(name="json", path="/json")], True, False),
    ([dict(name="json", path="/json", token="nobody")], False, True),
    ([dict(name="json", path="/json", colour="red")], False, True),
], ids=["probes", "check mode", "unknown token", "bad probe"])
def test_http_probe_gives_the_same_result_both_ways(ansible_module, probes, check, failed):
    assert probe_both(ansible_module, probes, check=check).failed is failed


@pytest.fixture
def kit_databases(pg_server):
    def fill(url):
        kit.install(url)
        run_sql(url, QUEUE)

    pair = filled_pair(pg_server, fill)
    yield pair
    drop_pair(pg_server, pair)


def warm_both(ansible_module, databases, args, **options):
    task_args = dict(dict(drain=False, warm_top=0, refresh_views=False), **args)
    return run_both(ansible_module, "cache_warm", lambda path: dict(task_args, db_url=databases[path][1]),
                    lambda path: {databases[path][0]: "<database>"}, **options)[True]


def test_cache_warm_gives_the_same_result_both_ways(ansible_module, kit_databases):
    planned = warm_both(ansible_module, kit_databases, dict(drain=True), check=True)
    assert planned.result["changed"] is True
    drained = warm_both(ansible_module, kit_databases, dict(drain=True, drain_batch=10))
    assert drained.result["changed"] is True and drained.result["drain"]["processed"] == 30
    for _name, url in kit_databases.values():
        assert run_sql(url, "SELECT count(*) FROM public.cache_invalidation_queue WHERE processed_at IS NULL") == [(0,)]
    again = warm_both(ansible_module, kit_databases, dict(drain=True))
    assert again.result["changed"] is False


@pytest.mark.parametrize("args, message", [
    (dict(warm_urls=["ftp://example.com/x"]), "is not an http:// or https:// URL with a host"),
    (dict(warm_urls=["http://127.0.0.1:9/"], warm_url_concurrency=100), "warm_url_concurrency must be between 1 and 32"),
    (dict(warm_url_headers={"Authorization": "Bearer " + TOKEN}, warm_urls=["http://u:S3cretPassw0rd@127.0.0.1:9/"],
          unknown=1), "Unsupported parameters"),
], ids=["bad url", "bad concurrency", "unknown option with secrets"])
def test_cache_warm_bad_input_fails_the_same_way(ansible_module, kit_databases, args, message):
    run = warm_both(ansible_module, kit_databases, args)
    assert run.failed and message in run.result["msg"]
    assert TOKEN not in run.output and "S3cretPassw0rd" not in run.output
