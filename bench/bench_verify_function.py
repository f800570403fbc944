"""pg_verify_function against the runbook's way: `psql -c "SELECT verify_...()"`.

Two measurements, in one run on one server:
  1. one verification: a psql call vs one ad-hoc module run;
  2. the runbook's verification block (steps 1-3: five verifier calls), as a
     shell script of psql calls vs one playbook of five pg_verify_function tasks.
The ratio is module time / psql time: what the safety (judged results, named
failed checks, masked secrets) costs in wall time.
"""

import json
import tempfile
from pathlib import Path

import psycopg2
from common import VENV_BIN, ansible_env, psql_path, start_server, summary, timed, write_result

VERIFIERS = ["verify_migration_success", "verify_final_punchlist_migration", "verify_materialized_view_indexes",
             "check_slo_compliance", "verify_rls"]
# Each verifier looks at the catalog like the kit's do: one check per table of pg_catalog.
SETUP = "".join("""
CREATE FUNCTION public.%s() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('ok', true, 'checks', jsonb_agg(jsonb_build_object(
    'name', c.relname, 'ok', true, 'detail', c.relkind)))
  FROM pg_catalog.pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r' $$;
""" % name for name in VERIFIERS)
RUNS = 5


def main():
    server = start_server()
    try:
        conn = psycopg2.connect(server.url)
        conn.autocommit = True
        conn.cursor().execute(SETUP)
        conn.close()
        env = ansible_env()
        psql = [psql_path(), server.url, "-X", "-q", "-v", "ON_ERROR_STOP=1"]

        single_psql = timed("psql -c (1 verifier)", psql + ["-c", "SELECT public.verify_migration_success();"], RUNS)
        single_module = timed("ansible -m pg_verify_function (1 verifier)", [
            str(VENV_BIN / "ansible"), "localhost", "-m", "slogate.supabase.pg_verify_function",
            "-a", json.dumps({"function": "verify_migration_success", "db_url": server.url}),
            "-e", "ansible_python_interpreter=%s" % (VENV_BIN / "python")], RUNS, env=env)

        work = Path(tempfile.mkdtemp(prefix="slogate-bench-"))
        script = work / "verify.sh"
        script.write_text("set -e\n" + "".join(
            "%s -c 'SELECT public.%s();' >/dev/null\n" % (" ".join("'%s'" % p for p in psql), name) for name in VERIFIERS))
        playbook = work / "verify.yml"
        playbook.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + "".join(
            "    - slogate.supabase.pg_verify_function:\n        function: %s\n        db_url: '%s'\n" % (name, server.url)
            for name in VERIFIERS))
        block_shell = timed("shell script, 5 x psql", ["bash", str(script)], RUNS)
        block_playbook = timed("playbook, 5 x pg_verify_function", [
            str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
            "-e", "ansible_python_interpreter=%s" % (VENV_BIN / "python")], RUNS, env=env)

        result = dict(
            single=dict(psql=summary(single_psql), module=summary(single_module)),
            block_of_5=dict(shell=summary(block_shell), playbook=summary(block_playbook)),
        )
        result["single"]["ratio_module_over_psql"] = round(
            result["single"]["module"]["median_s"] / result["single"]["psql"]["median_s"], 1)
        result["block_of_5"]["ratio_playbook_over_shell"] = round(
            result["block_of_5"]["playbook"]["median_s"] / result["block_of_5"]["shell"]["median_s"], 1)
        print()
        print("one verifier      psql %.3f s   module %.3f s   ratio %.1fx" % (
            result["single"]["psql"]["median_s"], result["single"]["module"]["median_s"],
            result["single"]["ratio_module_over_psql"]))
        print("five verifiers    shell %.3f s   playbook %.3f s   ratio %.1fx" % (
            result["block_of_5"]["shell"]["median_s"], result["block_of_5"]["playbook"]["median_s"],
            result["block_of_5"]["ratio_playbook_over_shell"]))
        write_result("verify_function", result)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
