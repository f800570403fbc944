"""Every module's EXAMPLES block, run as written against the demo stack.

EXAMPLES is what people copy, and ansible-test only checks that it is YAML.
Here each block is read from the module's source (ast, no import), checked to
be a list of tasks calling modules by their FQCN, and run as one playbook
against a real demo database (examples/demo/stack.py: the initial release with
the kit, the demo app on release r1).

What an example leaves to its reader is supplied per module in CASES: the
variables it names (`{{ vault_supabase_db_url }}` -> the demo's URL), the
host paths and URLs it spells out (/srv/app -> a folder of the test), and
anything the database must already hold. The wrapping play sets
SUPABASE_DB_URL for the examples that rely on it, as a real play would, and
gives slo_check 3-second buckets through module_defaults (the examples keep
the module's 5-minute default). Nothing else is changed: a task that fails
here fails as the reader's would.
"""

import ast
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from ansible.playbook.task import Task

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "examples" / "demo"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from stack import APP_SRC, brought_up, write_private  # noqa: E402
from prometheus_server import PrometheusServer  # noqa: E402

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(bool(os.environ.get("PG_URL")), reason="the demo stack runs on embedded PostgreSQL 18")]

MODULES = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__")
KIT_VERSION = "20260105090004"
TASK_KEYWORDS = set(Task.fattributes) | {"local_action"}


def examples_text(module):
    """The EXAMPLES string of a module, read from its source without importing it."""
    tree = ast.parse((ROOT / "plugins" / "modules" / ("%s.py" % module)).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "EXAMPLES" for target in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("%s has no EXAMPLES" % module)


def task_module(task):
    """The one module a task calls (the key that is not a task keyword)."""
    actions = [key for key in task if key not in TASK_KEYWORDS and not key.startswith("with_")]
    assert len(actions) == 1, "task %r calls %s" % (task.get("name"), actions or "no module")
    return actions[0]


@pytest.mark.parametrize("module", MODULES)
def test_examples_are_tasks_calling_modules_by_fqcn(module):
    tasks = yaml.safe_load(examples_text(module))
    assert isinstance(tasks, list) and tasks, "EXAMPLES of %s is not a list of tasks" % module
    called = []
    for task in tasks:
        assert isinstance(task, dict) and task.get("name"), "a task of %s without a name: %r" % (module, task)
        action = task_module(task)
        assert action.startswith(("slogate.supabase.", "ansible.builtin.")) and action.count(".") == 2, \
            "%s: %r is not a FQCN of this collection or ansible.builtin" % (task["name"], action)
        called.append(action)
    assert "slogate.supabase.%s" % module in called


# -- what each module's examples need from the demo ----------------------------------------------------------


@dataclass
class Case:
    """Per module: host paths and URLs of the examples -> the test's, extra variables, play keywords."""

    replace: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    play: dict = field(default_factory=dict)
    cleanup: list = field(default_factory=list)
    check: object = None


def app_release_case(stack, work, ansible_module):
    def check():
        # The examples end on the rollback to r1 and an unpacked, not live, r43.
        assert os.readlink(stack.app_root / "current") == "releases/r1"
        assert (stack.app_root / "releases" / "r43" / ".slogate-unpacked").is_file()
        stack.wait_for_release("r42", timeout=30)   # restarted on r42; the rollback example switches without a restart

    return Case(replace={"/srv/app": str(stack.app_root)}, check=check)


def cache_warm_case(stack, work, ansible_module):
    return Case(replace={"https://app.example.com": stack.app_url},
                variables=dict(slogate_db_url=stack.db_url, vault_db_url=stack.db_url,
                               vault_admin_token=stack.tokens["admin"]))


def http_probe_case(stack, work, ansible_module):
    # The rate-limit token no other example uses: the loop example sees the limit's 30 answers, then 429.
    return Case(replace={"https://app.example.com": stack.app_url},
                variables=dict(vault_admin_token=stack.tokens["admin"], vault_user_token=stack.tokens["user"],
                               vault_rate_limit_token=stack.tokens["rate_limit"]))


def pg_backup_case(stack, work, ansible_module):
    # "A dump made elsewhere": a dump of the demo database without its manifest, and the checksum its sender gives.
    elsewhere = work / "elsewhere"
    made = ansible_module("pg_backup", dict(db_url=stack.db_url, backup_dir=str(elsewhere)))
    assert not made.failed, made.result.get("msg")
    incoming = work / "incoming"
    incoming.mkdir()
    shutil.copy2(made.result["dump_file"], incoming / "app.dump")
    sha256 = hashlib.sha256((incoming / "app.dump").read_bytes()).hexdigest()

    def check():
        assert len(list((work / "backups").glob("demo_*.manifest.json"))) == 2
        assert stack.applied_versions()[-1] == KIT_VERSION

    return Case(replace={"/var/backups/supabase": str(work / "backups"), "/srv/incoming/app.dump": str(incoming / "app.dump")},
                variables=dict(slogate_db_url=stack.db_url, vault_supabase_db_url=stack.db_url,
                               incoming_dump_sha256=sha256),
                check=check)


# The example's "function of your own listing problems": tables of public without row level security.
TABLES_WITHOUT_RLS = """
CREATE OR REPLACE FUNCTION public.find_tables_without_rls()
  RETURNS TABLE (table_name text)
  LANGUAGE sql STABLE SET search_path = ''
  AS $$
    SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
  $$;
"""


def pg_verify_function_case(stack, work, ansible_module):
    stack.sql(TABLES_WITHOUT_RLS)
    return Case(variables=dict(slogate_db_url=stack.db_url, vault_db_url=stack.db_url),
                cleanup=[lambda: stack.sql("DROP FUNCTION public.find_tables_without_rls()")])


def slo_check_case(stack, work, ansible_module):
    prometheus = PrometheusServer(work / "prometheus")
    case = Case(cleanup=[lambda: prometheus.stop(remove=True), stack.stop_traffic])
    try:
        # An empty Prometheus: the example's query runs and finds no series, which is no data, a hold.
        prometheus.start()
        stack.start_traffic(users=2, think=(0.05, 0.15))
    except Exception:
        for step in case.cleanup:
            step()
        raise
    case.replace = {"http://prometheus:9090": prometheus.url}
    case.variables = dict(deploy_started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    # The examples keep the module's 300-second buckets; three of them would take a quarter of an hour here.
    case.play = dict(module_defaults={"slogate.supabase.slo_check": dict(bucket_seconds=3, poll_interval=1)})
    return case


def supabase_migrate_case(stack, work, ansible_module):
    stack.stage_project("good")   # two migrations pending, with their down scripts

    def check():
        assert stack.applied_versions()[-1] == KIT_VERSION   # applied by the first example, undone by the last

    return Case(replace={"/srv/app": str(stack.project)}, variables=dict(vault_supabase_db_url=stack.db_url),
                check=check)


def supabase_migration_pack_case(stack, work, ansible_module):
    project = work / "project"
    (project / "supabase").mkdir(parents=True)   # a project the Supabase CLI initialized, with no migration yet

    def check():
        written = sorted(path.name for path in (project / "supabase" / "migrations").glob("*.sql"))
        assert len(written) == 1 and written[0].endswith("_slogate_kit_tables.sql"), written
        assert (project / "supabase" / "rollbacks" / written[0]).is_file()

    return Case(replace={"/srv/app": str(project)}, check=check)


CASES = {
    "app_release": app_release_case,
    "cache_warm": cache_warm_case,
    "http_probe": http_probe_case,
    "pg_backup": pg_backup_case,
    "pg_verify_function": pg_verify_function_case,
    "slo_check": slo_check_case,
    "supabase_migrate": supabase_migrate_case,
    "supabase_migration_pack": supabase_migration_pack_case,
}


def test_every_module_has_a_case():
    assert sorted(CASES) == MODULES


# -- the demo and the run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack():
    """The demo database after its first deploy (documents and the kit), the app serving r1 under supervisord."""
    with brought_up("slogate-examples-", documents=200, traffic_users=0, ledger_rows=0) as demo:
        yield demo


def substitute(value, replace, used):
    """value with every replace key (a path or URL prefix, whole components only) swapped, recording which were."""
    if isinstance(value, str):
        for old, new in replace.items():
            value, count = re.subn(re.escape(old) + r"(?=$|[/?])", lambda match, new=new: new, value)
            if count:
                used.add(old)
        return value
    if isinstance(value, list):
        return [substitute(item, replace, used) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, replace, used) for key, item in value.items()}
    return value


def task_outcomes(output):
    """[(task name, [status of each result line])] in the order of the default callback's output."""
    outcomes = []
    for line in output.splitlines():
        match = re.match(r"TASK \[(.*?)\] \*+", line)
        if match:
            outcomes.append((match.group(1), []))
        elif outcomes and re.match(r"(ok|changed|skipping|fatal|failed): ", line):
            outcomes[-1][1].append(line.split(":", 1)[0])
    return outcomes


def layout(work):
    """A playbook folder whose `{{ playbook_dir }}/../app` is the demo app and whose files/pack is the kit's pack."""
    playbooks = work / "playbooks"
    (playbooks / "files").mkdir(parents=True)
    (work / "app").symlink_to(APP_SRC, target_is_directory=True)
    (playbooks / "files" / "pack").symlink_to(ROOT / "roles" / "kit" / "files" / "pack", target_is_directory=True)
    return playbooks


@pytest.mark.parametrize("module", MODULES)
def test_examples_run_against_the_demo(module, stack, ansible_module):
    work = stack.root / ("examples-%s" % module)
    work.mkdir()
    playbooks = layout(work)
    case = CASES[module](stack, work, ansible_module)
    try:
        used = set()
        tasks = substitute(yaml.safe_load(examples_text(module)), case.replace, used)
        assert used == set(case.replace), "not in the examples any more: %s" % sorted(set(case.replace) - used)
        play = dict(name="EXAMPLES of slogate.supabase.%s" % module, hosts="localhost", connection="local",
                    gather_facts=False, environment=dict(SUPABASE_DB_URL="{{ demo_db_url }}"), tasks=tasks)
        play.update(case.play)
        playbook = playbooks / ("%s.yml" % module)
        playbook.write_text(yaml.safe_dump([play], sort_keys=False, width=1000))
        # The variables hold the database password and tokens: a 0600 file, as the demo's own.
        values = dict(case.variables, demo_db_url=stack.db_url, ansible_python_interpreter=sys.executable)
        variables = write_private(work / "vars.json", json.dumps(values))
        proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook),
                               "-e", "@%s" % variables], capture_output=True, text=True, env=stack.ansible_env(),
                              cwd=str(work), timeout=600, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, "the examples of %s failed:\n%s" % (module, output[-5000:])
        outcomes = task_outcomes(proc.stdout)
        assert [name for name, statuses in outcomes] == [task["name"] for task in tasks], output[-3000:]
        for name, statuses in outcomes:
            assert statuses and set(statuses) <= {"ok", "changed"}, "%s: %s" % (name, statuses)
        if case.check:
            case.check()
    finally:
        for step in case.cleanup:
            step()
