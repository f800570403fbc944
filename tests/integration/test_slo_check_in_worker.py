"""slo_check run in the Ansible worker returns what the module returns (it only reads, so both read one database)."""

import pytest

import kit
from worker_parity import create_database, drop_database, run_both

pytestmark = pytest.mark.integration

SINCE, AS_OF = "2026-11-26T12:00:00+00:00", "2026-11-26T12:00:40+00:00"
TRAFFIC = """
INSERT INTO public.performance_metrics (created_at, endpoint, status, duration_ms, cache_hit)
SELECT timestamptz '2026-11-26 12:00:00+00' + (b * 10 + g / 101.0) * interval '1 second', '/api/search',
       CASE WHEN b >= 2 AND g <= 5 THEN 500 ELSE 200 END, 100 + g, g % 2 = 0
FROM generate_series(0, 3) AS b, generate_series(1, 100) AS g
"""


@pytest.fixture(scope="module")
def traffic(pg_server):
    """Four 10 s buckets: two healthy, then two with 5% errors (the runbook's rollback trigger)."""
    name, url = create_database(pg_server)
    kit.install(url)
    kit.apply_sql(url, TRAFFIC)
    yield name, url
    drop_database(pg_server, name)


def both(ansible_module, traffic, args, **options):
    return run_both(ansible_module, "slo_check", lambda path: dict(args, db_url=traffic[1]),
                    lambda path: {traffic[0]: "<database>"}, **options)[True]


WINDOW = dict(since=SINCE, as_of=AS_OF, bucket_seconds=10)


@pytest.mark.parametrize("args, decision, failed", [
    (dict(WINDOW, as_of="2026-11-26T12:00:20+00:00"), "pass", False),
    (dict(WINDOW), "rollback", True),
    (dict(WINDOW, fail_on="never"), "rollback", False),
    (dict(WINDOW, rules=[dict(metric="err_rate", op=">", threshold=10, action="page")]), "pass", False),
], ids=["healthy", "rollback", "rollback, fail_on never", "own rule"])
def test_same_decision_both_ways(ansible_module, traffic, args, decision, failed):
    run = both(ansible_module, traffic, args)
    assert run.result["decision"] == decision and run.failed is failed


@pytest.mark.parametrize("args, message", [
    (dict(WINDOW, lookback_minutes=5), "parameters are mutually exclusive: since|lookback_minutes"),
    (dict(WINDOW, source="prometheus"), "source is prometheus but all of the following are missing: prometheus_url"),
    (dict(WINDOW, rules=[dict(metric="err_rate", op="~", threshold=1)]), "op"),
    (dict(WINDOW, as_of="yesterday-ish"), "as_of"),
    (dict(as_of=AS_OF, bucket_seconds=10), "give since (the deploy time) or lookback_minutes"),
], ids=["exclusive", "required_if", "bad rule", "bad time", "no window"])
def test_bad_input_fails_the_same_way(ansible_module, traffic, args, message):
    run = both(ansible_module, traffic, args)
    assert run.failed and message in run.result["msg"]


def test_a_wrong_password_is_masked_both_ways(ansible_module, pg_server, traffic):
    wrong = (traffic[0], traffic[1].replace(":%s@" % pg_server.password, ":NopeNope42@"))
    run = both(ansible_module, wrong, dict(WINDOW))
    assert run.failed and "authentication failed" in run.result["msg"] and "NopeNope42" not in run.output
