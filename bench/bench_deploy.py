"""The gated deploy against the runbook as a shell script, and how fast a bad
release is rolled back.

1. Two fresh demo stacks (embedded PostgreSQL 18, the demo project's first
   release, --documents documents, the demo app on release r1 under
   supervisord), one after the other on this machine, each then given the
   "good" stage (runbook steps 1 and 2) and app release r2:
   (a) `ansible-playbook slogate.supabase.deploy` with the load test and the
       monitor window off (predeploy checks and backup, migrations with their
       verifiers, steps 3-4, release switch, smoke tests, report);
   (b) bench/deploy_runbook.sh: the runbook's commands with psql, pg_dump,
       curl and release.py/supervisorctl, no gate.
   Both refresh the materialized views with the function's default 2-second
   pause (the runbook's call). Printed: both wall times and playbook/script
   (target <= 3x).
2. On stack (a), with 3 Locust users of background traffic: a bad deploy
   (stage "bad", release r3 answering 10 % of searches with 500; load test off,
   smoke on, 10-second buckets, poll every 2 s). A thread asks /api/health
   every 0.2 s. Measured: from the close of the second consecutive breaching
   bucket (the rollback rule needs two; its end in the deploy report's
   monitor.fired[].buckets) to the first health answer naming r2 again;
   budget = poll interval + the rollback's duration (monitor verdict to the
   end of the rollback role, from the same report).

    .venv/bin/python bench/bench_deploy.py [--documents 20000] [--skip-rollback]
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, VENV_BIN, psql_path, run_main, write_result

sys.path.insert(0, str(ROOT / "examples" / "demo"))

from stack import APP_SRC, BAD_RELEASE_ENV, DemoStack  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

SCRIPT = ROOT / "bench" / "deploy_runbook.sh"
BUCKET_SECONDS = 10
POLL_INTERVAL = 2
HEALTH_EVERY = 0.2


def parse_time(text):
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.timestamp()


def run_streaming(command, env, cwd, show):
    """Run a command, printing the lines `show` accepts with the elapsed time; (exit code, output, marks, seconds).

    marks: (elapsed seconds, line) of every shown line, for a per-step breakdown."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
                            start_new_session=True)
    lines, marks = [], []
    try:
        for line in proc.stdout:
            lines.append(line)
            if show(line):
                marks.append((time.perf_counter() - started, line.strip()))
                print("    [%6.1f s] %s" % (marks[-1][0], line.strip()[:130]), flush=True)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return code, "".join(lines), marks, time.perf_counter() - started


def is_task_line(line):
    return line.startswith("TASK [") or line.startswith("PLAY RECAP")


def slowest_steps(marks, total, count=6):
    steps = []
    for (at, line), (after, dummy) in zip(marks, marks[1:] + [(total, "")]):
        steps.append(dict(step=line.strip("* ").replace("TASK ", "")[:110], seconds=round(after - at, 2)))
    return sorted(steps, key=lambda step: -step["seconds"])[:count]


def build_stack(label, documents, stacks):
    root = Path(tempfile.mkdtemp(prefix="slogate-bench-deploy-%s-" % label))
    stack = DemoStack(root, log=lambda text: print("  [%s] %s" % (label, text), flush=True), bucket_seconds=BUCKET_SECONDS)
    stacks.append(stack)
    stack.start_database()
    stack.bring_up(documents=documents, traffic_users=0, ledger_rows=0)
    stack.stage_project("good")
    return stack


def check_deployed(stack, label):
    versions = stack.applied_versions()
    health = stack.health() or {}
    if versions[-1] != "20260110120100" or health.get("release") != "r2":
        raise RuntimeError("%s did not deploy the good stage: database at %s, app on %s" % (label, versions[-1], health.get("release")))


def time_playbook(stack):
    print("  (a) ansible-playbook slogate.supabase.deploy, good stage, release r2, load test and monitor off", flush=True)
    vars_file = stack.extra_vars("r2", slogate_loadtest=False, slogate_monitor=False, deploy_refresh_pause_seconds=None)
    code, output, marks, seconds = run_streaming(stack.playbook_command("deploy", vars_file), stack.ansible_env(),
                                                 str(stack.root), is_task_line)
    if code:
        raise RuntimeError("the good deploy failed (exit %d): %s" % (code, output[-2500:]))
    check_deployed(stack, "the playbook")
    return round(seconds, 2), slowest_steps(marks, seconds)


def time_script(stack):
    print("  (b) bench/deploy_runbook.sh, the same migrations and release r2", flush=True)
    env = dict(os.environ, DATABASE_URL=stack.db_url, PROJECT_DIR=str(stack.project), BACKUP_DIR=str(stack.root / "script-backups"),
               APP_ROOT=str(stack.app_root), APP_SRC=str(APP_SRC), RELEASE_ID="r2", APP_URL=stack.app_url,
               ADMIN_TOKEN=stack.tokens["admin"], REGULAR_USER_TOKEN=stack.tokens["user"], RATE_LIMIT_TOKEN=stack.tokens["rate_limit"],
               PSQL=psql_path(), PG_DUMP=str(Path(psql_path()).parent / "pg_dump"), PYTHON=sys.executable,
               SUPERVISORCTL=str(VENV_BIN / "supervisorctl"))
    code, output, marks, seconds = run_streaming(["bash", str(SCRIPT)], env, str(stack.root),
                                                 lambda line: line.startswith("== ") or line.startswith("deployed "))
    if code:
        raise RuntimeError("deploy_runbook.sh failed (exit %d): %s" % (code, output[-2500:]))
    check_deployed(stack, "deploy_runbook.sh")
    return round(seconds, 2), slowest_steps(marks, seconds)


class HealthPoller(threading.Thread):
    """Asks /api/health every HEALTH_EVERY seconds; samples are (epoch seconds, release or None)."""

    def __init__(self, stack):
        super().__init__(daemon=True)
        self.stack = stack
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            health = self.stack.health()
            self.samples.append((time.time(), health.get("release") if health else None))
            self.done.wait(HEALTH_EVERY)

    def stop(self):
        self.done.set()
        self.join(timeout=10)


def newest_report(stack, since):
    reports = [p for p in (stack.state_dir / "reports").glob("*.json") if p.stat().st_mtime >= since]
    if not reports:
        raise RuntimeError("the bad deploy wrote no JSON report under %s" % (stack.state_dir / "reports"))
    return json.loads(max(reports, key=lambda p: p.stat().st_mtime).read_text())


def rollback_reaction(stack):
    print("\nrollback: bad release r3 (FAULT_ERROR_RATE=0.05), 10 s buckets, poll every 2 s, background traffic", flush=True)
    stack.start_traffic()
    time.sleep(2 * BUCKET_SECONDS)   # a baseline, as the demo gives it
    stack.stage_project("bad")
    vars_file = stack.extra_vars("r3", BAD_RELEASE_ENV, slogate_loadtest=False, slogate_bucket_seconds=BUCKET_SECONDS,
                                 slogate_poll_interval=POLL_INTERVAL)
    poller = HealthPoller(stack)
    started = time.time()
    poller.start()
    try:
        code, output, dummy, seconds = run_streaming(stack.playbook_command("deploy", vars_file), stack.ansible_env(),
                                                     str(stack.root), is_task_line)
    finally:
        poller.stop()
        stack.stop_traffic()
    state = stack.deploy_state() or {}
    report = newest_report(stack, started - 1)
    monitor = report.get("monitor") or {}
    if code == 0 or state.get("status") != "rolled_back":
        # Not a crash of the bench: 10 % of searches failing is a random draw per bucket; say what the monitor saw.
        print("  NOT rolled back (exit %d, state %s): %s" % (code, state.get("status"), monitor.get("msg") or output[-1500:]), flush=True)
        return dict(rolled_back=False, playbook_s=round(seconds, 2), exit_code=code, state=state.get("status"),
                    monitor_msg=monitor.get("msg"), monitor_totals=monitor.get("totals"))
    fired = monitor["fired"]
    rule = next((f for f in fired if f["action"] == "rollback"), fired[0] if fired else None)
    if not rule:
        raise RuntimeError("the report names no fired rule")
    ends = sorted(parse_time(b["end"]) for b in rule["buckets"])
    samples = poller.samples
    on_bad = next((t for t, release in samples if release == "r3"), None)
    back = next((t for t, release in samples if on_bad and t > on_bad and release == "r2"), None)
    if back is None:
        raise RuntimeError("the health poller never saw r2 again after r3")
    last_bad = max(t for t, release in samples if release == "r3" and t < back)
    monitor_done = parse_time(report["monitor"]["finished_at"])
    rollback_done = parse_time(report["rollback"]["finished_at"])
    rollback_s = rollback_done - monitor_done
    result = dict(
        rolled_back=True, playbook_s=round(seconds, 2), rule=rule["id"], rule_message=rule["message"],
        breaching_bucket_ends=[datetime.datetime.fromtimestamp(e, datetime.timezone.utc).isoformat() for e in ends],
        poll_interval_s=POLL_INTERVAL, bucket_seconds=BUCKET_SECONDS, health_sample_every_s=HEALTH_EVERY,
        delay_from_second_bucket_close_s=round(back - ends[-1], 2),
        delay_from_first_bucket_close_s=round(back - ends[0], 2),
        detection_s=round(monitor_done - ends[-1], 2),
        verdict_to_old_release_s=round(back - monitor_done, 2),
        rollback_duration_s=round(rollback_s, 2),
        budget_s=round(POLL_INTERVAL + rollback_s, 2),
        no_healthy_answer_s=round(back - last_bad, 2),
        rolled_back_by=state.get("rolled_back_by"), release_now=(stack.health() or {}).get("release"))
    result["within_budget"] = result["delay_from_second_bucket_close_s"] <= result["budget_s"]
    return result


def print_summary(result):
    print("\n== deploy of the good stage (runbook steps 1-4, release r2, smoke tests), %d documents, monitor window excluded"
          % result["documents"])
    print("   (a) ansible-playbook slogate.supabase.deploy: %7.1f s" % result["playbook_s"])
    print("   (b) bench/deploy_runbook.sh (psql, pg_dump, curl): %7.1f s" % result["script_s"])
    print("   playbook / script: %.2fx (target <= 3x)" % result["ratio_playbook_over_script"])
    for label, key in (("playbook", "playbook_slowest_steps"), ("script", "script_slowest_steps")):
        print("   slowest %s steps: %s" % (label, "; ".join("%s %.1f s" % (s["step"], s["seconds"]) for s in result[key][:4])))
    r = result.get("rollback")
    if r and not r["rolled_back"]:
        print("\n== rollback: the bad deploy was NOT rolled back (exit %d, state %s): %s" % (r["exit_code"], r["state"], r["monitor_msg"]))
    elif r:
        print("\n== rollback of a bad release (%s)" % r["rule_message"])
        print("   breaching buckets closed at %s" % ", ".join(e[11:19] for e in r["breaching_bucket_ends"]))
        print("   second breaching bucket closed -> /api/health names r2 again: %.2f s (from the first bucket's close: %.2f s)"
              % (r["delay_from_second_bucket_close_s"], r["delay_from_first_bucket_close_s"]))
        print("     = detection (bucket close -> monitor verdict) %.2f s + verdict -> old release serving %.2f s"
              % (r["detection_s"], r["verdict_to_old_release_s"]))
        print("   budget: poll interval %d s + rollback %.2f s (verdict -> end of the rollback role) = %.2f s: %s"
              % (r["poll_interval_s"], r["rollback_duration_s"], r["budget_s"], "within" if r["within_budget"] else "OVER"))
        print("   no healthy answer for %.2f s while the app restarted; database rolled back by %s; app now on %s"
              % (r["no_healthy_answer_s"], r["rolled_back_by"], r["release_now"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20000)
    parser.add_argument("--skip-rollback", action="store_true", help="time the deploys only")
    options = parser.parse_args()
    result = dict(documents=options.documents, machine_cpus=os.cpu_count(), load_average_at_start=[round(x, 2) for x in os.getloadavg()])
    stacks = []
    try:
        print("stack (a): for the playbook", flush=True)
        playbook_stack = build_stack("a", options.documents, stacks)
        result["playbook_s"], result["playbook_slowest_steps"] = time_playbook(playbook_stack)
        print("stack (b): for the script", flush=True)
        script_stack = build_stack("b", options.documents, stacks)
        result["script_s"], result["script_slowest_steps"] = time_script(script_stack)
        script_stack.stop()
        result["ratio_playbook_over_script"] = round(result["playbook_s"] / result["script_s"], 2)
        if not options.skip_rollback:
            result["rollback"] = rollback_reaction(playbook_stack)
    finally:
        for stack in stacks:
            stack.stop()
            shutil.rmtree(stack.root, ignore_errors=True)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_summary(result)
    write_result("deploy", result)


if __name__ == "__main__":
    run_main(main, "bench_deploy.py")
