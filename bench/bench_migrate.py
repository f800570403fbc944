"""supabase_migrate against the ways a user applies migrations otherwise.

Projects of 200 and 800 migrations (tables, indexes, plpgsql functions, RLS
policies, data inserts) applied, each to a fresh database, by:
  - the Supabase CLI (`supabase db push`),
  - the module, as one whole `ansible localhost -m slogate.supabase.supabase_migrate` task: as
    users run it (its action plugin runs the code in the Ansible worker), and forced to run as
    a module (slogate_supabase_in_controller=false, as on a remote host or another Python),
  - the native engine called directly from Python,
  - one psql session running each file in its own transaction (the floor: server time).
Each tool runs --runs times (default 5) per size, in a rotating order, each time on a fresh
database; the figures are medians. Prints total times and the marginal cost per migration,
(T800 - T200) / 600, as ratios.

The server keeps PostgreSQL's own fsync and synchronous_commit (a real Supabase database
does; the test servers turn them off), so every commit a tool waits for costs a disk flush.
--no-fsync runs the same on a server tuned like the tests'.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
from common import ROOT, VENV_BIN, ansible_env, psql_path, start_server, write_result

sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))

from pgserver import run_sql  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order
from supabase_cli import ensure_cli  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

from ansible_collections.slogate.supabase.plugins.module_utils import migrate  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.slogate.supabase.plugins.module_utils.migration_plan import plan_latest  # noqa: E402
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import connect  # noqa: E402

KINDS = (
    """CREATE TABLE public.t{i} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL DEFAULT 'row; {i}',
  payload jsonb NOT NULL DEFAULT '{{}}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX t{i}_created_at_idx ON public.t{i} (created_at);
""",
    """CREATE FUNCTION public.f{i}(p integer) RETURNS integer
  LANGUAGE plpgsql SET search_path = ''
  AS $fn$
DECLARE
  total integer := 0;  -- a comment; with a semicolon
BEGIN
  FOR n IN 1 .. p LOOP
    total := total + n;
  END LOOP;
  RETURN total + {i};
END
$fn$;
""",
    """ALTER TABLE public.t{j} ENABLE ROW LEVEL SECURITY;
CREATE POLICY t{j}_read ON public.t{j} FOR SELECT USING (true);
""",
    """INSERT INTO public.t{j} (name, payload)
SELECT 'item ' || g, jsonb_build_object('n', g, 'text', 'it''s; {i}') FROM generate_series(1, 50) AS g;
ALTER TABLE public.t{j} ADD COLUMN extra_{i} text;
""",
)


def make_project(folder, count):
    migrations = folder / "supabase" / "migrations"
    migrations.mkdir(parents=True)
    for i in range(count):
        table = i - (i % 4)  # the table created by the first file of each group of four
        body = KINDS[i % 4].format(i=i, j=table)
        (migrations / ("%014d_step_%d.sql" % (20260000000000 + i, i))).write_text(body)
    return folder


def fresh_database(admin_url, server):
    name = "bench_%s" % uuid.uuid4().hex[:10]
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    conn.cursor().execute('CREATE DATABASE "%s"' % name)
    conn.close()
    return server.url_for(name)


def run(label, command, env=None):
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit("%s failed (exit %d): %s" % (label, proc.returncode, (proc.stderr or proc.stdout)[-1500:]))
    return elapsed


def by_cli(cli, project, url):
    env = dict(ansible_env(), SUPABASE_TELEMETRY_DISABLED="1", DO_NOT_TRACK="1")
    return run("supabase db push", [str(cli), "db", "push", "--db-url", url + "?sslmode=disable", "--yes",
                                    "--workdir", str(project)], env)


def by_module(project, url, in_worker=True):
    args = json.dumps({"project_dir": str(project), "db_url": url})
    switch = [] if in_worker else ["-e", "slogate_supabase_in_controller=false"]
    return run("ansible supabase_migrate", [str(VENV_BIN / "ansible"), "localhost", "-m", "slogate.supabase.supabase_migrate",
                                            "-a", args, "-e", "ansible_python_interpreter=%s" % sys.executable] + switch,
               ansible_env())


def by_ping():
    return run("ansible ping", [str(VENV_BIN / "ansible"), "localhost", "-m", "ansible.builtin.ping",
                                "-e", "ansible_python_interpreter=%s" % sys.executable], ansible_env())


def by_engine(project, url):
    started = time.perf_counter()
    loaded = migrate.load_project(str(project))
    with connect({"db_url": url}) as db:
        engine = migrate.Engine(db, defer_flush=True)
        engine.acquire_lock(60)
        plan = plan_latest(loaded.local, engine.read_history())
        engine.ensure_history()
        for migration in plan.to_apply:
            engine.apply(migration, loaded.statements[migration.version], loaded.modes[migration.version])
        engine.end_run()
    return time.perf_counter() - started


def by_psql(project, url):
    script = project / "all.psql"
    script.write_text("".join("BEGIN;\n\\i %s\nCOMMIT;\n" % path
                              for path in sorted((project / "supabase" / "migrations").glob("*.sql"))))
    return run("psql", [psql_path(), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,800", help="two project sizes (default 200,800)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each tool per size; medians are used (default 5)")
    parser.add_argument("--no-fsync", action="store_true", help="a server with fsync and synchronous_commit off")
    options = parser.parse_args()
    small, large = (int(n) for n in options.sizes.split(","))
    cli = ensure_cli()
    server = start_server(durable=not options.no_fsync)
    print("server: fsync %s, synchronous_commit %s" % tuple(
        run_sql(server.url, "SELECT pg_catalog.current_setting(%s)", (name,))[0][0]
        for name in ("fsync", "synchronous_commit")), flush=True)
    work = Path(tempfile.mkdtemp(prefix="slogate-bench-migrate-"))
    tools = {"supabase db push": lambda p, u: by_cli(cli, p, u), "module (ansible task)": by_module,
             "module, as a module": lambda p, u: by_module(p, u, in_worker=False),
             "native engine": by_engine, "psql, one session": by_psql}
    runs = {name: {small: [], large: []} for name in tools}
    pings = []
    try:
        projects = {size: make_project(work / ("p%d" % size), size) for size in (small, large)}
        names = list(tools)
        for number in range(options.runs):
            order = names[number % len(names):] + names[:number % len(names)]  # no tool always goes first
            pings.append(by_ping())
            for size in (small, large):
                for name in order:
                    elapsed = tools[name](projects[size], fresh_database(server.url, server))
                    runs[name][size].append(elapsed)
                    print("  run %d/%d  %-24s %4d migrations  %7.2f s" % (
                        number + 1, options.runs, name, size, elapsed), flush=True)
    finally:
        server.stop()
    times = {name: {size: statistics.median(values) for size, values in measured.items()} for name, measured in runs.items()}
    floor = (times["psql, one session"][large] - times["psql, one session"][small]) / (large - small)
    cli_marginal = (times["supabase db push"][large] - times["supabase db push"][small]) / (large - small)
    result = {"sizes": [small, large], "runs": options.runs, "fsync": not options.no_fsync, "tools": {}}
    print()
    print("medians of %d runs" % options.runs)
    print("%-24s %9s %9s %14s %10s %10s" % ("", "T%d" % small, "T%d" % large, "ms/migration", "x psql", "x CLI"))
    for name, measured in times.items():
        marginal = (measured[large] - measured[small]) / (large - small)
        result["tools"][name] = dict(total_s={str(k): round(v, 3) for k, v in measured.items()},
                                     runs_s={str(k): [round(v, 3) for v in values] for k, values in runs[name].items()},
                                     marginal_ms=round(marginal * 1000, 3),
                                     marginal_vs_psql=round(marginal / floor, 2),
                                     marginal_vs_cli=round(marginal / cli_marginal, 2))
        row = (name, measured[small], measured[large], marginal * 1000, marginal / floor, marginal / cli_marginal)
        print("%-24s %8.2fs %8.2fs %14.2f %9.2fx %9.2fx" % row)
    module_vs_cli = times["module (ansible task)"][small] / times["supabase db push"][small]
    as_module_vs_cli = times["module, as a module"][small] / times["supabase db push"][small]
    result["module_task_vs_cli_at_%d" % small] = round(module_vs_cli, 2)
    result["module_task_as_a_module_vs_cli_at_%d" % small] = round(as_module_vs_cli, 2)
    print("\nwhole module task at %d migrations: %.2fx the CLI's time (run as a module: %.2fx)" % (
        small, module_vs_cli, as_module_vs_cli))
    # What no module can beat: Ansible's own start plus the server's work.
    ping = statistics.median(pings)
    floor_vs_cli = (ping + times["psql, one session"][small]) / times["supabase db push"][small]
    result["ansible_ping_s"] = round(ping, 3)
    result["ansible_ping_plus_psql_vs_cli_at_%d" % small] = round(floor_vs_cli, 2)
    print("an ansible task that does nothing (ping): %.2f s; with the psql floor's server time at %d migrations: "
          "%.2fx the CLI's time" % (ping, small, floor_vs_cli))
    write_result("migrate", result)


if __name__ == "__main__":
    main()
