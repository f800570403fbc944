"""The SLO-gated deploy and the rollback playbook end to end: a real PostgreSQL,
the demo app under supervisord with Locust traffic, the collection's playbooks
run by ansible-playbook. Each test gets its own stack (examples/demo/stack.py,
what `make demo` uses), with 3-second buckets so a monitor window takes about
ten seconds.

The scenarios run once, on the embedded PostgreSQL 18 each stack starts; the
modules they compose are tested on PostgreSQL 15 as well.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "demo"))

from stack import BAD_RELEASE_ENV, brought_up  # noqa: E402

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(bool(os.environ.get("PG_URL")), reason="playbook scenarios run once, on embedded PostgreSQL 18")]

KIT_VERSION = "20260105090004"
GOOD_VERSION = "20260110120100"
QUIET = dict(slogate_loadtest=False)
DB_AND_APP_ONLY = dict(slogate_loadtest=False, slogate_smoke=False, slogate_monitor=False)
REPORT_TASKS = {"Create the report folder", "Write the JSON report", "Write the Markdown report"}


@pytest.fixture
def stack():
    """Release r1 serving (documents + kit applied), 500 documents, Locust users in the background."""
    with brought_up("slogate-playbook-", documents=500, traffic_users=2, ledger_rows=100) as demo:
        yield demo


def deploy(stack, release_id, release_env=None, *extra, **overrides):
    return stack.run_playbook("deploy", stack.extra_vars(release_id, release_env, **overrides), *extra, stream=False)


def latest_report(stack):
    return json.loads(sorted((stack.state_dir / "reports").glob("*.json"))[-1].read_text())


def changed_tasks(output):
    """Names of the tasks that reported a change, from the default callback's output."""
    names, task = set(), None
    for line in output.splitlines():
        match = re.match(r"TASK \[(?:[\w.]+ : )?(.*?)\] \*+", line)
        if match:
            task = match.group(1)
        elif line.startswith("changed: ") and task:
            names.add(task)
    return names


def failures(output):
    """The lines that say what failed, for an assertion message."""
    return "\n".join(line for line in output.splitlines() if line.startswith(("fatal:", "[ERROR]", "failed:")))[-4000:]


def ledger_rows(stack):
    return stack.sql("SELECT count(*) FROM public.ledger")[0][0]


def test_good_deploy_passes_reports_and_leaks_no_secret(stack):
    stack.stage_project("good")
    code, output = deploy(stack, "r2", None, "-vvv", loadtest_seconds=5, loadtest_users=4)
    assert code == 0, failures(output)
    assert stack.health()["release"] == "r2"
    assert stack.applied_versions()[-2:] == ["20260110120000", GOOD_VERSION]
    assert stack.deploy_state()["status"] == "deployed"
    report = latest_report(stack)
    assert report["outcome"] == "succeeded"
    assert [m["version"] for m in report["deploy"]["applied"]] == ["20260110120000", GOOD_VERSION]
    verifiers = [v["function"] for v in report["deploy"]["verifications"]]
    assert verifiers[:2] == ["public.verify_migration_success()", "public.verify_final_punchlist_migration()"]
    assert report["monitor"]["decision"] == "pass" and report["monitor"]["window"]["buckets"] >= 3
    assert report["smoke"]["passed"] == len(report["smoke"]["checks"]) == 7
    assert report["loadtest"]["decision"] in ("pass", "hold") and report["loadtest"]["figures"]["pgbench"]["tps"] > 0
    markdown = sorted((stack.state_dir / "reports").glob("*.md"))[-1].read_text()
    assert "# Deployment report: succeeded" in markdown and "| 20260110120100 | final_punchlist_implementation |" in markdown
    secrets = [stack.server.password, (stack.root / "jwt_secret").read_text()] + list(stack.tokens.values())
    texts = [output] + [path.read_text() for path in (stack.state_dir / "reports").iterdir()]
    for secret in secrets:
        assert all(secret not in text for text in texts), "a secret reached the output or a report"

    reports = sorted((stack.state_dir / "reports").iterdir())
    again_code, again = deploy(stack, "r2", None, slogate_report_when_unchanged=False, **DB_AND_APP_ONLY)
    assert again_code == 0, failures(again)
    assert changed_tasks(again) == set(), changed_tasks(again)
    assert re.search(r"localhost +: ok=\d+ +changed=0 ", again), again[-400:]
    assert "report: none written (nothing changed" in again
    assert sorted((stack.state_dir / "reports").iterdir()) == reports


def test_bad_release_is_rolled_back_by_the_monitor(stack):
    stack.stage_project("bad")
    code, output = deploy(stack, "r3", BAD_RELEASE_ENV, **QUIET)
    assert code != 0
    assert "Rolled back: rollback: err_rate" in output, failures(output)
    assert stack.health()["release"] == "r1"
    assert stack.applied_versions()[-1] == KIT_VERSION          # all three migrations undone by their down scripts
    assert stack.sql("SELECT to_regclass('public.search_suggestions')")[0][0] is None
    assert ledger_rows(stack) == 100
    report = latest_report(stack)
    assert report["outcome"] == "rolled_back"
    assert report["monitor"]["decision"] == "rollback"
    assert "rollback:err_rate" in [rule["id"] for rule in report["monitor"]["fired"]]
    assert report["rollback"]["method"] == "down_scripts"
    assert [r["version"] for r in report["rollback"]["reverted"]] == ["20260120090000", GOOD_VERSION, "20260110120000"]
    assert stack.deploy_state()["status"] == "rolled_back"

    rerun_code, rerun = stack.run_playbook("rollback", stack.extra_vars("r3"), stream=False)
    assert rerun_code == 0, failures(rerun)
    assert changed_tasks(rerun) <= REPORT_TASKS, changed_tasks(rerun)
    assert stack.health()["release"] == "r1" and stack.applied_versions()[-1] == KIT_VERSION


def test_a_403_leak_and_a_missing_rate_limit_fail_the_smoke_test_and_an_irreversible_migration_restores_the_backup(stack):
    stack.stage_project("good")
    migrations = stack.project / "supabase" / "migrations"
    (migrations / "20260115000000_notes.sql").write_text(
        "CREATE TABLE public.notes (id int PRIMARY KEY);\nALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;\n")
    code, output = deploy(stack, "r2", {"ADMIN_RATE_LIMIT": "1000", "FAULT_ADMIN_OPEN": "true"}, **QUIET)
    assert code != 0
    assert "smoke tests failed: 403 with a generic body for a regular user: status 200" in output, failures(output)
    assert "; rate limit, " in output, failures(output)
    report = latest_report(stack)
    assert sorted(check["name"].split(",")[0] for check in report["smoke"]["checks"] if not check["ok"]) == [
        "403 with a generic body for a regular user", "rate limit"]
    assert report["rollback"] and report["rollback"]["method"] == "restore", failures(output)
    assert report["rollback"]["restored"]["manifest"] == report["predeploy"]["backup_manifest"]
    assert stack.applied_versions()[-1] == KIT_VERSION
    assert stack.sql("SELECT to_regclass('public.notes')")[0][0] is None
    assert ledger_rows(stack) == 100
    assert stack.health()["release"] == "r1"


def test_check_mode_changes_nothing_then_a_failing_migration_leaves_nothing_half_applied(stack):
    stack.stage_project("good")
    before = (stack.applied_versions(), sorted(os.listdir(stack.app_root / "releases")), os.readlink(stack.app_root / "current"),
              stack.deploy_state())
    backups = sorted((stack.state_dir / "backups").glob("*"))
    code, output = deploy(stack, "r2", None, "--check", **QUIET)
    assert code == 0, failures(output)
    after = (stack.applied_versions(), sorted(os.listdir(stack.app_root / "releases")), os.readlink(stack.app_root / "current"),
             stack.deploy_state())
    assert after == before
    assert sorted((stack.state_dir / "backups").glob("*")) == backups
    assert stack.health()["release"] == "r1"

    supabase = stack.project / "supabase"
    (supabase / "migrations" / "20260115000000_broken.sql").write_text(
        "CREATE TABLE public.half (id int PRIMARY KEY);\nINSERT INTO public.half VALUES (1), (1);\n")
    (supabase / "rollbacks" / "20260115000000_broken.sql").write_text("DROP TABLE IF EXISTS public.half;\n")
    code, output = deploy(stack, "r2", None, **QUIET)
    assert code != 0
    assert "20260115000000_broken.sql" in output and "duplicate key" in output, failures(output)
    assert stack.sql("SELECT to_regclass('public.half')")[0][0] is None
    assert stack.applied_versions()[-1] == KIT_VERSION
    assert latest_report(stack)["outcome"] == "rolled_back"
    assert stack.health()["release"] == "r1"
