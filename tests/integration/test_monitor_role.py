"""The monitor role (playbooks/monitor.yml) on real PostgreSQL: it notifies a
Slack-compatible webhook on alert tiers and fails with the decision on a
rollback trigger. The webhook is a local HTTP receiver that records what it got."""

import datetime
import json
from http.server import BaseHTTPRequestHandler

import pytest

import kit
from local_http import LocalHTTPServer

pytestmark = pytest.mark.integration

PLAYBOOK = kit.ROOT / "playbooks" / "monitor.yml"
WIDTH = 10
T0 = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)


class Receiver(LocalHTTPServer):
    """An incoming-webhook endpoint on a free port; .posts holds the JSON bodies it received."""

    def __init__(self):
        self.posts = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):   # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                receiver.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = self.base_url + "/hooks/slo"


def add_bucket(db, index, requests=100, errors=0, slow=0):
    start = T0 + datetime.timedelta(seconds=WIDTH * index)
    db.execute("""
        INSERT INTO public.performance_metrics (created_at, endpoint, status, duration_ms, cache_hit)
        SELECT %(start)s + g * interval '50 milliseconds', '/api/search',
               CASE WHEN g <= %(errors)s THEN 500 ELSE 200 END,
               CASE WHEN g > %(requests)s - %(slow)s THEN 700 ELSE 80 END, true
        FROM generate_series(1, %(requests)s) g""", dict(start=start, requests=requests, errors=errors, slow=slow))


def monitor(ansible_playbook, db, receiver_url):
    return ansible_playbook(PLAYBOOK, dict(
        slogate_db_url=db.url, monitor_since=T0.isoformat(), monitor_as_of=(T0 + datetime.timedelta(seconds=3 * WIDTH)).isoformat(),
        monitor_bucket_seconds=WIDTH, monitor_buckets=3,
        monitor_poll_interval=1, monitor_webhook_url=receiver_url))


@pytest.fixture
def metrics_db(pg_db):
    kit.install(pg_db.url)
    return pg_db


def test_warn_is_posted_to_the_webhook_and_does_not_fail(metrics_db, ansible_playbook):
    for index in range(3):
        add_bucket(metrics_db, index, slow=0 if index == 0 else 10)   # p95 700 ms in buckets 1 and 2
    with Receiver() as receiver:
        run = monitor(ansible_playbook, metrics_db, receiver.url)
    assert run.rc == 0, run.stdout[-3000:]
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["decision"] == "warn"
    assert post["text"] == "warn: p95_ms 700 ms and 700 ms > 600 ms for 2 consecutive buckets (12:00:10, 12:00:20; 100 and 100 requests)"
    assert post["blocks"][0]["text"]["text"].startswith("*warn* after 3 buckets: ")


def test_rollback_is_posted_and_fails_with_the_decision(metrics_db, ansible_playbook):
    for index in range(3):
        add_bucket(metrics_db, index, errors=0 if index == 0 else 3)
    with Receiver() as receiver:
        run = monitor(ansible_playbook, metrics_db, receiver.url)
    assert run.rc != 0
    assert "rollback: err_rate 3% and 3% > 1% for 2 consecutive buckets" in run.stdout
    assert [post["decision"] for post in receiver.posts] == ["rollback"]


def test_a_healthy_window_posts_nothing(metrics_db, ansible_playbook):
    for index in range(3):
        add_bucket(metrics_db, index)
    with Receiver() as receiver:
        run = monitor(ansible_playbook, metrics_db, receiver.url)
    assert run.rc == 0, run.stdout[-3000:]
    assert receiver.posts == []
