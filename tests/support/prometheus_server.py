"""A throw-away Prometheus with known traffic, for the Prometheus source of the SLO gate.

Debian's `prometheus` package (2.42; it brings `promtool`) is installed with
apt-get when missing, without leaving its system service running. The
traffic of a Scenario is written as OpenMetrics text, turned into TSDB blocks
with `promtool tsdb create-blocks-from openmetrics`, and served by a private
`prometheus` on 127.0.0.1 with its own data folder and no scrape targets.

    python tests/support/prometheus_server.py install
        installs the package when prometheus or promtool is missing
    python tests/support/prometheus_server.py start --dir DIR [--port N]
        loads the default scenario, prints the server URL, leaves it running
    python tests/support/prometheus_server.py stop --dir DIR
        stops it and removes DIR
"""

import argparse
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

INSTALL_LOCK = Path("/tmp/slogate-prometheus-install.lock")
# Installs the package; a policy-rc.d (when there is none) keeps the package's
# service from starting, and on systemd the service is disabled and stopped.
INSTALL_SCRIPT = r"""
set -e
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
fi
trap '[ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
"""

LE_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)   # seconds; +Inf follows
CONFIG = "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n"


def installed():
    return bool(shutil.which("prometheus") and shutil.which("promtool"))


def ensure_installed():
    """Install Debian's prometheus (with promtool) when missing; safe to call from parallel test workers."""
    if installed():
        return
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return
        print("installing Debian's prometheus (apt-get)", file=sys.stderr)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        proc = subprocess.run(sudo + ["sh", "-c", INSTALL_SCRIPT], capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not installed():
            raise RuntimeError("apt-get install prometheus failed (exit %d): %s"
                               % (proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:]))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- known traffic ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BucketTraffic:
    """What one job served in one bucket: counts by status and by latency, and cache hits."""

    statuses: tuple          # ((status, count), ...)
    latencies: tuple         # ((seconds, count), ...); counts add up to the requests
    cache_hits: int

    @property
    def requests(self):
        return sum(n for status, n in self.statuses)

    @property
    def errors(self):
        return sum(n for status, n in self.statuses if status == "0" or status.startswith("5"))

    def histogram(self):
        """Cumulative counts per le bound, +Inf last."""
        cumulative = [sum(n for seconds, n in self.latencies if seconds <= le) for le in LE_BOUNDS]
        return cumulative + [self.requests]


def histogram_quantile(q, cumulative):
    """Prometheus's histogram_quantile over cumulative counts per LE_BOUNDS + (+Inf); NaN when empty.

    Linear interpolation inside the bucket the rank falls in; the lowest bucket
    starts at 0; a rank in the +Inf bucket gives the highest finite bound.
    """
    total = cumulative[-1]
    if total == 0:
        return float("nan")
    rank = q * total
    index = next(i for i, count in enumerate(cumulative) if count >= rank)
    if index == len(LE_BOUNDS):
        return LE_BOUNDS[-1]
    lower = LE_BOUNDS[index - 1] if index else 0.0
    below = cumulative[index - 1] if index else 0
    return lower + (LE_BOUNDS[index] - lower) * (rank - below) / (cumulative[index] - below)


def _spread(total, parts):
    """total split over parts as evenly as whole numbers allow, remainder first."""
    quotient, remainder = divmod(total, parts)
    return [quotient + (1 if j < remainder else 0) for j in range(parts)]


@dataclass
class Job:
    """One job's traffic: a BucketTraffic per bucket, scraped every `interval` seconds at grid + `offset`.

    `initialized`: statuses whose counter exists (at 0) from the first scrape;
    others appear at the start of their first bucket with requests, as client
    libraries create a labelled series at its first use (here at 0, at a
    bucket's start, so that no increase is lost).
    """

    name: str
    buckets: list
    offset: int = 0
    initialized: tuple = ("200",)


class Scenario:
    """Known traffic of several jobs in `len(buckets)` buckets of `width` seconds from t0 (on the grid)."""

    def __init__(self, t0, width, jobs, interval=5):
        if width % interval or t0 % width:
            raise ValueError("the scrape interval must divide the width and t0 must be on the grid")
        self.t0, self.width, self.jobs, self.interval = t0, width, jobs, interval
        self.per_bucket = width // interval

    def bucket_start(self, index):
        return self.t0 + index * self.width

    def expected(self, job, index):
        traffic = self.job(job).buckets[index]
        requests = traffic.requests
        cumulative = traffic.histogram()
        return dict(requests=requests, errors=traffic.errors,
                    err_rate=100.0 * traffic.errors / requests if requests else None,
                    cache_hit_rate=100.0 * traffic.cache_hits / requests if requests else None,
                    p95_ms=1000 * histogram_quantile(0.95, cumulative) if requests else None,
                    p99_ms=1000 * histogram_quantile(0.99, cumulative) if requests else None)

    def job(self, name):
        return next(job for job in self.jobs if job.name == name)

    def _intervals(self, job, count_of):
        """The count of each scrape interval: count_of(BucketTraffic) of the bucket that holds the interval's end,
        spread over that bucket's intervals."""
        ends = self._stamps(job)[1:]
        owners = [(end - self.t0 - 1) // self.width for end in ends]
        counts = []
        for index, traffic in enumerate(job.buckets):
            counts.extend(_spread(count_of(traffic), owners.count(index)))
        return counts

    def _stamps(self, job):
        """Scrape times: the first interval ends at t0 + offset + interval; the first sample is at t0 + offset."""
        total = len(job.buckets) * self.per_bucket
        if job.offset:
            total -= 1   # the last sample must stay before the last bucket's end
        return [self.t0 + job.offset + k * self.interval for k in range(total + 1)]

    def _counter_lines(self, metric, labels, job, count_of, first_bucket=0):
        """Samples of one counter series: cumulative counts at each scrape from the first bucket it exists in."""
        counts = self._intervals(job, count_of)
        lines = []
        value = 0
        first_k = first_bucket * self.per_bucket
        for k, stamp in enumerate(self._stamps(job)):
            if k > 0:
                value += counts[k - 1]
            if k >= first_k:
                lines.append("%s{%s} %s %d" % (metric, labels, value, stamp))
        return lines

    def openmetrics(self):
        lines = ["# TYPE http_requests counter", "# HELP http_requests Requests served, by status."]
        for job in self.jobs:
            statuses = []
            for traffic in job.buckets:
                statuses.extend(status for status, count in traffic.statuses if status not in statuses)
            for status in sorted(set(statuses) | set(job.initialized)):
                first = 0 if status in job.initialized else next(
                    i for i, traffic in enumerate(job.buckets) if dict(traffic.statuses).get(status))
                lines += self._counter_lines("http_requests_total", 'job="%s",status="%s"' % (job.name, status), job,
                                             lambda t, s=status: dict(t.statuses).get(s, 0), first)
        lines += ["# TYPE cache_hits counter", "# HELP cache_hits Responses served from the cache."]
        for job in self.jobs:
            lines += self._counter_lines("cache_hits_total", 'job="%s"' % job.name, job, lambda t: t.cache_hits)
        lines += ["# TYPE http_request_duration_seconds histogram",
                  "# HELP http_request_duration_seconds Request latency.", "# UNIT http_request_duration_seconds seconds"]
        for job in self.jobs:
            lines += self._histogram_lines(job)
        lines.append("# EOF")
        return "\n".join(lines) + "\n"

    def _histogram_lines(self, job):
        name = "http_request_duration_seconds"
        latencies = sorted({seconds for traffic in job.buckets for seconds, count in traffic.latencies})
        per_latency = {s: self._intervals(job, lambda t, s=s: dict(t.latencies).get(s, 0)) for s in latencies}
        observed = {s: 0 for s in latencies}
        lines = []
        for k, stamp in enumerate(self._stamps(job)):
            if k > 0:
                for seconds in latencies:
                    observed[seconds] += per_latency[seconds][k - 1]
            for le in LE_BOUNDS + (float("inf"),):
                count = sum(n for seconds, n in observed.items() if seconds <= le)
                le_text = "+Inf" if le == float("inf") else repr(le)
                lines.append('%s_bucket{job="%s",le="%s"} %d %d' % (name, job.name, le_text, count, stamp))
            lines.append('%s_count{job="%s"} %d %d' % (name, job.name, sum(observed.values()), stamp))
            lines.append('%s_sum{job="%s"} %s %d' % (name, job.name, repr(sum(s * n for s, n in observed.items())),
                                                     stamp))
        return lines


def default_scenario(now=None):
    """30 one-minute buckets ending at least 5 minutes before now, on the 5-minute grid.

    Job "aligned" (scrapes on the grid, so Prometheus's counts are exact):
    600 + 20 i requests in bucket i, 2 % 404s (never errors), 60 % cache hits,
    3 % of requests at 300 ms and the rest at 80 ms; no 5xx series at all
    until bucket 20; buckets 20 and 21 have exactly 5 % errors (4 % status
    500, the rest status 0) and 20 % of requests at 700 ms; the 500 and 0
    series stay (flat) afterwards; bucket 25 has no traffic at all (the
    counters stay, flat).
    Job "offset" (scrapes 2 s after the grid, so Prometheus extrapolates):
    20 requests and 10 cache hits every 5 s, all at 80 ms; the 500 series exists
    from the start, and 1 of the 20 requests is a 500 in every interval that
    ends in buckets 20 and 21 (5 %).
    """
    now = time.time() if now is None else now
    width = 60
    end = int(now // 300) * 300 - 300
    t0 = end - 30 * width
    aligned = []
    for i in range(30):
        n = 0 if i == 25 else 600 + 20 * i
        bad = i in (20, 21)
        errors = n * 5 // 100 if bad else 0
        e500 = n * 4 // 100 if bad else 0
        not_found = n * 2 // 100
        slow = n * (20 if bad else 3) // 100
        statuses = (("200", n - not_found - errors), ("404", not_found)) + ((("500", e500), ("0", errors - e500)) if bad else ())
        aligned.append(BucketTraffic(statuses, ((0.08, n - slow), (0.7 if bad else 0.3, slow)), n * 60 // 100))
    offset = []
    for i in range(30):
        bad = i in (20, 21)
        offset.append(BucketTraffic((("200", 228 if bad else 240), ("500", 12 if bad else 0)), ((0.08, 240),), 120))
    return Scenario(t0, width, [Job("aligned", aligned), Job("offset", offset, offset=2, initialized=("200", "500"))])


# -- the server --------------------------------------------------------------------------------

class PrometheusServer:
    def __init__(self, basedir, port=None):
        self.basedir = Path(basedir)
        self.port = port or free_port()
        self.datadir = self.basedir / "data"
        self.logfile = self.basedir / "prometheus.log"
        self.pidfile = self.basedir / "prometheus.pid"
        self.process = None
        self.scenario = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def load(self, openmetrics_text):
        """Backfill TSDB blocks from OpenMetrics text (before start)."""
        ensure_installed()
        self.basedir.mkdir(parents=True, exist_ok=True)
        source = self.basedir / "data.om"
        source.write_text(openmetrics_text)
        proc = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source),
                               str(self.datadir)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError("promtool create-blocks-from failed (exit %d): %s"
                               % (proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:]))
        return self

    def load_scenario(self, scenario):
        """Backfill a Scenario's traffic; it stays at .scenario for the tests."""
        self.scenario = scenario
        return self.load(scenario.openmetrics())

    def start(self, timeout=60):
        ensure_installed()
        self.basedir.mkdir(parents=True, exist_ok=True)
        config = self.basedir / "prometheus.yml"
        config.write_text(CONFIG)
        with open(self.logfile, "w") as log:
            self.process = subprocess.Popen(
                ["prometheus", "--config.file=%s" % config, "--storage.tsdb.path=%s" % self.datadir,
                 "--web.listen-address=127.0.0.1:%d" % self.port, "--storage.tsdb.retention.time=3650d"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pidfile.write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("prometheus exited with %s: %s" % (self.process.returncode, self._log_tail()))
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("prometheus was not ready in %d s: %s" % (timeout, self._log_tail()))

    def _log_tail(self):
        try:
            return " | ".join(self.logfile.read_text().strip().splitlines()[-5:])
        except OSError:
            return "(no log)"

    def stop(self, remove=False):
        pid = self.process.pid if self.process else _read_pid(self.pidfile)
        if pid:
            _terminate(pid, self.process)
        self.process = None
        if remove:
            shutil.rmtree(self.basedir, ignore_errors=True)


def _read_pid(path):
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _terminate(pid, process=None):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if process is not None:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return
    for attempt in range(150):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install")
    start = sub.add_parser("start")
    start.add_argument("--dir", required=True)
    start.add_argument("--port", type=int)
    stop = sub.add_parser("stop")
    stop.add_argument("--dir", required=True)
    args = parser.parse_args()
    if args.command == "install":
        ensure_installed()
    elif args.command == "start":
        ensure_installed()
        server = PrometheusServer(args.dir, args.port).load_scenario(default_scenario()).start()
        server.process = None   # leave it running
        print(server.url)
    else:
        PrometheusServer(args.dir).stop(remove=True)


if __name__ == "__main__":
    main()
