"""`make demo`: the whole SLO-gated deploy on this machine, twice.

1. Set-up: an embedded PostgreSQL, the demo project's first release (the
   documents table and the slogate kit) applied by the deploy playbook, 20,000
   documents, the demo app (release r1) and its cache worker under supervisord,
   and a few Locust users in the background for the rest of the demo.
2. A good deploy: runbook steps 1 and 2 (search optimization, punch list) and
   app release r2, through predeploy, deploy, smoke, load test and monitor.
   It passes and writes its report.
3. A bad deploy: a new migration and app release r3, which answers 10 % of
   searches with a 500 (FAULT_ERROR_RATE=0.1). The monitor sees the error
   rate above 1 % for two consecutive buckets and the playbook rolls back by
   itself: the app goes back to r2, the migration is undone by its down
   script, the cache is cleared, and the report says why, number by number.

Buckets are 10 seconds so the demo ends in a few minutes; the runbook's
5-minute buckets are one variable away (slogate_bucket_seconds=300).

    python examples/demo/run_demo.py [--dir DIR] [--keep]
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import BAD_RELEASE_ENV, DemoStack  # noqa: E402


def banner(text):
    print("\n" + "=" * 78 + "\n" + text + "\n" + "=" * 78, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--dir", help="folder for everything the demo makes (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="leave the database and the app running at the end")
    parser.add_argument("--documents", type=int, default=20000)
    args = parser.parse_args(argv)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="slogate-demo-"))
    if args.dir and root.exists() and any(root.iterdir()):
        sys.stderr.write("run_demo.py: error: %s is not empty; give an empty or new folder\n" % root)
        return 2
    stack = DemoStack(root)
    started = time.monotonic()
    outcome = 1
    try:
        banner("1/3 set-up: database, first release, documents, app, background traffic")
        stack.start_database()
        stack.deploy_first_release()
        print("migrations applied: %s" % ", ".join(stack.applied_versions()))
        first_reports = stack.reports()
        stack.seed_documents(args.documents)
        stack.start_app("r1")
        stack.start_traffic()
        time.sleep(2 * stack.bucket_seconds)   # a baseline for the first gated deploy

        banner("2/3 a good deploy: runbook steps 1-2 and app release r2")
        stack.stage_project("good")
        good_code = stack.run_playbook("deploy", stack.extra_vars("r2"))[0]
        good_reports = stack.reports()

        banner("3/3 a bad deploy: release r3 fails 10 % of searches; the monitor must roll it back")
        stack.stage_project("bad")
        bad_code = stack.run_playbook("deploy", stack.extra_vars("r3", BAD_RELEASE_ENV, slogate_loadtest=False))[0]
        health = stack.health() or {}
        state = stack.deploy_state() or {}
        banner("demo finished in %.0f s" % (time.monotonic() - started))
        print("good deploy: %s" % ("passed" if good_code == 0 else "FAILED (exit %d)" % good_code))
        print("bad deploy:  %s" % ("rolled back" if bad_code and state.get("status") == "rolled_back" else
                                   "NOT rolled back (exit %d, state %s)" % (bad_code, state.get("status"))))
        print("app now serves release %s; database at %s" % (health.get("release"), stack.applied_versions()[-1]))
        print("reports:")
        for path in stack.reports():
            label = "first release" if path in first_reports else "good deploy" if path in good_reports else "bad deploy"
            print("  %s  (%s)" % (path, label))
        outcome = 0 if good_code == 0 and bad_code and state.get("status") == "rolled_back" and health.get("release") == "r2" else 1
    except (RuntimeError, OSError) as exc:
        sys.stderr.write("run_demo.py: error: %s\n" % exc)
    except KeyboardInterrupt:
        sys.stderr.write("run_demo.py: interrupted\n")
        outcome = 130
    finally:
        if args.keep:
            print("left running: app %s, database %s (stop: supervisorctl -c %s/supervisord.conf shutdown)" % (
                stack.app_url, "127.0.0.1:%d" % stack.server.port if stack.server else "-", stack.app_root))
            stack.stop_traffic()
        else:
            stack.stop()
            if not args.dir and outcome == 0:
                shutil.rmtree(root / "pg", ignore_errors=True)
    print("everything the demo made is in %s" % root)
    return outcome


if __name__ == "__main__":
    sys.exit(main())
