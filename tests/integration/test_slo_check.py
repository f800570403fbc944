"""slo_check on real PostgreSQL with generated traffic patterns."""

import datetime

import pytest

import kit

pytestmark = pytest.mark.integration

UTC = datetime.timezone.utc
WIDTH = 10
T0 = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)   # a grid boundary for 10 s buckets


@pytest.fixture
def metrics_db(pg_db):
    kit.install(pg_db.url)
    return pg_db


def add_bucket(db, start, requests=100, errors=0, p_ms=100.0, slow=0, slow_ms=900.0, hits=None, client_errors=0):
    """Rows for one bucket starting at `start`: `errors` 500s, `client_errors` 429s, `slow` requests at slow_ms."""
    hits = requests // 2 if hits is None else hits
    db.execute("""
        INSERT INTO public.performance_metrics (created_at, endpoint, status, duration_ms, cache_hit)
        SELECT %(start)s + (g * %(step)s) * interval '1 millisecond', '/api/search',
               CASE WHEN g <= %(errors)s THEN 500 WHEN g <= %(errors)s + %(client)s THEN 429 ELSE 200 END,
               CASE WHEN g > %(requests)s - %(slow)s THEN %(slow_ms)s ELSE %(p_ms)s END,
               g <= %(hits)s
        FROM generate_series(1, %(requests)s) AS g""",
               dict(start=start, step=WIDTH * 1000 // (requests + 1), errors=errors, client=client_errors,
                    requests=requests, slow=slow, slow_ms=slow_ms, p_ms=p_ms, hits=hits))


def at(index):
    return T0 + datetime.timedelta(seconds=WIDTH * index)


def check(ansible_module, db, n_buckets, **options):
    args = dict(dict(since=at(0).isoformat(), as_of=at(n_buckets).isoformat(), bucket_seconds=WIDTH, fail_on="never"),
                **options)
    return ansible_module("slo_check", dict(args, db_url=db.url))


def test_healthy_traffic_passes(metrics_db, ansible_module):
    for i in range(3):
        add_bucket(metrics_db, at(i))
    run = check(ansible_module, metrics_db, 3)
    assert not run.failed, run.result["msg"]
    assert run.result["decision"] == "pass"
    assert run.result["msg"] == "pass: 9 rules over 3 complete buckets, none fired"
    assert run.result["window"] == {"since": "2026-11-26T12:00:00+00:00", "as_of": "2026-11-26T12:00:30+00:00",
                                    "bucket_seconds": 10, "buckets": 3}
    evaluation = next(e for e in run.result["evaluations"] if e["id"] == "rollback:err_rate")
    assert [(b["start"], b["samples"], b["value"], b["breached"]) for b in evaluation["buckets"]] == [
        (at(i).isoformat(), 100, 0, False) for i in range(3)]
    assert any("date_bin" in q for q in run.result["queries"])
    assert run.result["totals"] == {"requests": 300, "err_rate": 0, "p95_ms": 100, "p99_ms": 100, "cache_hit_rate": 50}


def test_one_bad_bucket_then_recovery_warns_but_does_not_roll_back(metrics_db, ansible_module):
    add_bucket(metrics_db, at(0))
    add_bucket(metrics_db, at(1), errors=3, slow=10, slow_ms=700)     # p95 700 ms, err 3 %
    add_bucket(metrics_db, at(2), slow=10, slow_ms=700)               # p95 700 ms again, no errors
    add_bucket(metrics_db, at(3))
    run = check(ansible_module, metrics_db, 4)
    assert run.result["decision"] == "warn"
    assert run.result["msg"] == "warn: p95_ms 700 ms and 700 ms > 600 ms for 2 consecutive buckets (12:00:10, 12:00:20; 100 and 100 requests)"


def test_two_consecutive_error_buckets_roll_back_with_the_numbers(metrics_db, ansible_module):
    add_bucket(metrics_db, at(0))
    add_bucket(metrics_db, at(1), requests=812, errors=28, client_errors=40)
    add_bucket(metrics_db, at(2), requests=790, errors=12, client_errors=40)
    run = check(ansible_module, metrics_db, 3, fail_on="rollback")
    assert run.failed and run.result["decision"] == "rollback"
    assert run.result["msg"] == ("rollback: err_rate 3.45% and 1.52% > 1% for 2 consecutive buckets "
                                 "(12:00:10, 12:00:20; 812 and 790 requests)")
    assert [f["id"] for f in run.result["fired"]] == ["rollback:err_rate"]   # 1.52 % is not above page's 2 %


def test_client_errors_are_not_errors(metrics_db, ansible_module):
    for i in range(2):
        add_bucket(metrics_db, at(i), client_errors=30)
    assert check(ansible_module, metrics_db, 2).result["decision"] == "pass"


def test_thin_traffic_holds(metrics_db, ansible_module):
    for i in range(3):
        add_bucket(metrics_db, at(i), requests=5, errors=5)
    run = check(ansible_module, metrics_db, 3)
    assert run.result["decision"] == "hold"
    assert run.result["msg"] == ("hold: rollback:err_rate cannot be decided yet: not enough data in "
                                 "12:00:00, 12:00:10 (5 and 5 requests)")


def test_bad_buckets_before_since_are_ignored(metrics_db, ansible_module):
    add_bucket(metrics_db, at(-2), errors=50)
    add_bucket(metrics_db, at(-1), errors=50)
    add_bucket(metrics_db, at(0) - datetime.timedelta(seconds=0), requests=100)
    add_bucket(metrics_db, at(1))
    run = check(ansible_module, metrics_db, 2)
    assert run.result["decision"] == "pass"
    shifted = check(ansible_module, metrics_db, 2, since=(at(0) + datetime.timedelta(seconds=5)).isoformat())
    assert shifted.result["window"]["buckets"] == 1   # the bucket containing the deploy does not count


def test_refresh_failures_since_the_deploy_roll_back(metrics_db, ansible_module):
    for i in range(2):
        add_bucket(metrics_db, at(i))
    metrics_db.execute("INSERT INTO public.mv_refresh_log (view_name, started_at, status) "
                       "SELECT 'public.v', %s + g * interval '1 second', 'failed' FROM generate_series(1, 3) g", (at(0),))
    run = check(ansible_module, metrics_db, 2)
    assert run.result["decision"] == "rollback"
    assert run.result["msg"] == "rollback: mv_refresh_failures 3 > 2 since the deploy"


def test_live_run_then_replay_agree(metrics_db, ansible_module):
    now = metrics_db.scalar("SELECT now()")
    start = datetime.datetime.fromtimestamp((int(now.timestamp()) // WIDTH - 3) * WIDTH, UTC)
    for i in range(3):
        add_bucket(metrics_db, start + datetime.timedelta(seconds=WIDTH * i), errors=5 if i else 0)
    live = ansible_module("slo_check", dict(db_url=metrics_db.url, since=start.isoformat(), bucket_seconds=WIDTH,
                                            fail_on="never"))
    assert live.result["decision"] == "rollback"
    replay = ansible_module("slo_check", dict(db_url=metrics_db.url, since=start.isoformat(), bucket_seconds=WIDTH,
                                              as_of=live.result["window"]["as_of"], fail_on="never"))
    as_of = datetime.datetime.fromisoformat(live.result["window"]["as_of"])
    add_bucket(metrics_db, as_of + datetime.timedelta(milliseconds=1), errors=50)   # rows after as_of: never read
    again = ansible_module("slo_check", dict(db_url=metrics_db.url, since=start.isoformat(), bucket_seconds=WIDTH,
                                             as_of=live.result["window"]["as_of"], fail_on="never"))
    for run in (replay, again):
        assert (run.result["decision"], run.result["msg"], run.result["evaluations"]) == (
            live.result["decision"], live.result["msg"], live.result["evaluations"])


def test_watch_stops_early_on_rollback(metrics_db, ansible_module):
    now = metrics_db.scalar("SELECT now()")
    width = 2
    # far enough ahead that the module is watching before the first bucket completes, even on a slow machine
    start = datetime.datetime.fromtimestamp((int(now.timestamp()) // width + 5) * width, UTC)
    metrics_db.execute("""
        INSERT INTO public.performance_metrics (created_at, endpoint, status, duration_ms, cache_hit)
        SELECT %s + g * interval '10 milliseconds', '/api/search', CASE WHEN mod(g, 10) = 0 THEN 500 ELSE 200 END, 50, true
        FROM generate_series(0, 599) g""", (start,))
    run = ansible_module("slo_check", dict(db_url=metrics_db.url, since=start.isoformat(), bucket_seconds=width,
                                           wait_for_buckets=3, poll_interval=0.5))
    assert run.failed and run.result["decision"] == "rollback"
    assert run.result["window"]["buckets"] == 2 and run.result["polls"] > 1


@pytest.mark.parametrize("rules, message", [
    ([{"metric": "latency", "op": ">", "threshold": 1, "action": "warn"}],
     "rules[0] metric 'latency' is not known; valid metrics: p95_ms, p99_ms, err_rate, cache_hit_rate, requests, "
     "mv_refresh_failures"),
    ([{"metric": "p95_ms", "op": "=>", "threshold": 1, "action": "warn"}], "rules[0] op '=>' is not known; valid ops: >, >=, <, <="),
])
def test_bad_rules_are_one_line(metrics_db, ansible_module, rules, message):
    run = check(ansible_module, metrics_db, 1, rules=rules)
    assert run.failed and run.result["msg"] == message


def test_bad_time_is_named(metrics_db, ansible_module):
    run = check(ansible_module, metrics_db, 1, since="yesterday")
    assert run.failed and run.result["msg"].startswith("since='yesterday' is not a time")


def five_minutes(index):
    return T0 + datetime.timedelta(minutes=5 * index)


def test_kit_views_give_the_same_decision_as_the_raw_table(metrics_db, ansible_module):
    for i, errors in enumerate((0, 3, 4)):
        add_bucket(metrics_db, five_minutes(i), errors=errors, hits=10)
    common = dict(since=five_minutes(0).isoformat(), as_of=five_minutes(3).isoformat(), bucket_seconds=300, fail_on="never")
    table = ansible_module("slo_check", dict(common, db_url=metrics_db.url))
    views = ansible_module("slo_check", dict(common, db_url=metrics_db.url, metrics_from="views"))
    assert views.result["decision"] == "rollback"
    assert (views.result["msg"], views.result["evaluations"]) == (table.result["msg"], table.result["evaluations"])
    assert any("api_metrics_5m" in q for q in views.result["queries"])


def test_kit_views_need_five_minute_buckets(metrics_db, ansible_module):
    run = check(ansible_module, metrics_db, 3, metrics_from="views")
    assert run.failed and run.result["msg"] == "metrics_from=views reads the kit's 5-minute views: set bucket_seconds=300, not 10"


USER_QUERY = """
SELECT date_bin(make_interval(secs => %(width)s), created_at, '1970-01-01 00:00+00') AS bucket,
       'err_rate' AS metric,
       100.0 * count(*) FILTER (WHERE status >= 500 OR status = 429) / count(*) AS value,
       count(*) AS samples
FROM public.performance_metrics
WHERE created_at >= %(start)s AND created_at < %(end)s
GROUP BY 1
"""


def test_user_query_feeds_the_same_rules(metrics_db, ansible_module):
    for i in range(3):   # 429s are not errors by default; this user's own query counts them
        add_bucket(metrics_db, at(i), client_errors=5 if i else 0)
    default = check(ansible_module, metrics_db, 3)
    own = check(ansible_module, metrics_db, 3, metrics_from="query", query=USER_QUERY,
                rules=[{"metric": "err_rate", "op": ">", "threshold": 1, "action": "rollback", "for": 2}])
    assert default.result["decision"] == "pass"
    assert own.result["decision"] == "rollback"
    assert own.result["msg"] == ("rollback: err_rate 5% and 5% > 1% for 2 consecutive buckets (12:00:10, 12:00:20; "
                                 "100 and 100 requests)")


def test_user_query_runs_read_only(metrics_db, ansible_module):
    run = check(ansible_module, metrics_db, 3, metrics_from="query",
                query="DELETE FROM public.performance_metrics RETURNING created_at AS bucket")
    assert run.failed and "read-only transaction" in run.result["msg"]


@pytest.mark.parametrize("query, message", [
    ("SELECT TIMESTAMPTZ '2026-11-26 12:00:10+00' AS bucket, 'latency' AS metric, 1 AS value, 30 AS samples",
     "query row 1: metric 'latency' is not known; valid metrics: p95_ms, p99_ms, err_rate, cache_hit_rate, requests"),
    ("SELECT TIMESTAMPTZ '2026-11-26 12:00:03+00' AS bucket, 'err_rate' AS metric, 1 AS value, 30 AS samples",
     "query row 1: bucket 2026-11-26T12:00:03+00:00 is not on the 10-second grid"),
    ("SELECT 1 AS value", "query row 1 has no column bucket, metric, samples; return bucket, metric, value, samples"),
])
def test_user_query_rows_are_checked(metrics_db, ansible_module, query, message):
    run = check(ansible_module, metrics_db, 3, metrics_from="query", query=query)
    assert run.failed and run.result["msg"].startswith(message)
