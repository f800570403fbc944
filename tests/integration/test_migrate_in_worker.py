"""supabase_migrate run in the Ansible worker returns what the module returns, and runs as a module whenever the
two could differ."""

import shutil
import sys

import pytest

import kit
from pgserver import run_sql
from worker_parity import PATHS, comparable, database_pair, drop_pair, run_both

pytestmark = pytest.mark.integration

TRICKY = kit.ROOT / "tests" / "integration" / "projects" / "tricky"
HISTORY = "SELECT version, name, statements FROM supabase_migrations.schema_migrations ORDER BY version"
IN_WORKER = "supabase_migrate runs in the Ansible worker"


@pytest.fixture
def databases(pg_server):
    """One database per path, dropped afterwards."""
    pair = database_pair(pg_server)
    yield {path: url for path, (_name, url) in pair.items()}
    drop_pair(pg_server, pair)


@pytest.fixture
def projects(tmp_path):
    """One copy of the tricky project per path, so a test may change one the same way as the other."""
    return {path: shutil.copytree(TRICKY, tmp_path / ("worker" if path else "module")) for path in PATHS}


def names_of(path, projects, databases=None):
    names = {str(projects[path]): "<project>"}
    if databases:
        names[databases[path].rsplit("/", 1)[-1].split("?")[0]] = "<database>"
    return names


def both(ansible_module, databases, projects, args=None, **options):
    """Run the same task both ways (the results must match); return {True: run in the worker, False: as a module}."""
    return run_both(ansible_module, "supabase_migrate",
                    lambda path: dict(args or {}, project_dir=str(projects[path]), db_url=databases[path]),
                    lambda path: names_of(path, projects, databases), **options)


def warnings_of(runs, path, projects):
    return [comparable(line, names_of(path, projects)) for line in runs[path].stderr.splitlines() if line.startswith("[WARNING]")]


def test_apply_and_the_second_run_match(ansible_module, databases, projects):
    runs = both(ansible_module, databases, projects)
    assert not runs[True].failed and runs[True].result["changed"] is True and len(runs[True].result["applied"]) == 8
    assert runs[True].result["invocation"]["module_args"]["db_url"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert warnings_of(runs, True, projects) == warnings_of(runs, False, projects)
    assert run_sql(databases[True], HISTORY) == run_sql(databases[False], HISTORY)
    again = both(ansible_module, databases, projects)
    assert again[True].result["changed"] is False


def test_check_mode_with_diff_matches(ansible_module, databases, projects):
    runs = both(ansible_module, databases, projects, check=True, diff=True)
    assert runs[True].result["changed"] is True and len(runs[True].result["pending"]) == 8
    assert "CREATE INDEX CONCURRENTLY accounts_created_at_idx" in runs[True].stdout
    for url in databases.values():
        assert run_sql(url, "SELECT to_regclass('supabase_migrations.schema_migrations')") == [(None,)]


def test_a_broken_migration_fails_the_same_way(ansible_module, databases, projects):
    for project in projects.values():
        (project / "supabase" / "migrations" / "20260201000009_broken.sql").write_text(
            "CREATE TABLE public.half_done (id int);\nINSERT INTO public.no_such_table VALUES (1);\n")
    runs = both(ansible_module, databases, projects)
    assert runs[True].failed and "20260201000009_broken.sql, statement 2 (line 2)" in runs[True].result["msg"]
    assert run_sql(databases[True], HISTORY) == run_sql(databases[False], HISTORY)


def test_drift_warns_the_same_way(ansible_module, databases, projects):
    both(ansible_module, databases, projects)
    for project in projects.values():
        path = project / "supabase" / "migrations" / "20260201000001_accounts.sql"
        path.write_text(path.read_text().replace("email text NOT NULL UNIQUE", "email text NOT NULL"))
    runs = both(ansible_module, databases, projects, args=dict(state="status"))
    assert runs[True].result["drift"]
    warned = warnings_of(runs, True, projects)
    assert any("changed after it was applied" in line for line in warned)
    assert warned == warnings_of(runs, False, projects)


def test_rolled_back_refusal_matches(ansible_module, databases, projects):
    both(ansible_module, databases, projects)
    for project in projects.values():
        (project / "supabase" / "rollbacks" / "20260201000008_after_header.sql").unlink()
    runs = both(ansible_module, databases, projects, args=dict(state="rolled_back", target="20260201000006"))
    assert runs[True].failed and runs[True].result["irreversible"]


@pytest.mark.parametrize("args, expected", [
    (dict(no_such_option=1), "Unsupported parameters for (slogate.supabase.supabase_migrate) module: no_such_option"),
    (dict(state="sideways"), "value of state must be one of: latest, status, rolled_back, got: sideways"),
    (dict(lock_wait="soon"), "lock_wait"),
    (dict(lock_timeout="five"), "lock_timeout"),
], ids=["unknown option", "bad choice", "bad int", "bad duration"])
def test_bad_input_fails_with_the_same_message(ansible_module, databases, projects, args, expected):
    runs = both(ansible_module, databases, projects, args=args)
    assert runs[True].failed and expected in runs[True].result["msg"]


def test_missing_project_dir_fails_the_same_way(ansible_module, databases, projects):
    runs = {path: ansible_module("supabase_migrate", dict(db_url=databases[path]), in_worker=path) for path in PATHS}
    assert runs[True].failed and "project_dir" in runs[True].result["msg"]
    assert runs[True].result["msg"] == runs[False].result["msg"]


def test_a_wrong_password_is_masked_both_ways(ansible_module, pg_server, databases, projects):
    urls = {path: url.replace(":%s@" % pg_server.password, ":NopeNope42@") for path, url in databases.items()}
    assert all("NopeNope42" in url for url in urls.values())
    runs = both(ansible_module, urls, projects)
    assert runs[True].failed and "authentication failed" in runs[True].result["msg"]
    for run in runs.values():
        assert "NopeNope42" not in run.output


def test_another_python_runs_it_as_a_module(ansible_module, databases, projects, tmp_path):
    other = tmp_path / "bin" / "python3"  # the same interpreter under another folder: not provably the same Python
    other.parent.mkdir()
    other.symlink_to(sys.executable)
    run = ansible_module("supabase_migrate", dict(project_dir=str(projects[True]), db_url=databases[True], state="status"),
                         interpreter=str(other), verbosity=3)
    assert "runs as a module: its Python (%s) is not the one running Ansible" % other in run.stdout


def run_play(ansible_playbook, tmp_path, text, extra_vars, **options):
    playbook = tmp_path / "play.yml"
    playbook.write_text(text)
    run = ansible_playbook(playbook, extra_vars, verbosity=3, **options)
    assert run.rc == 0, run.stdout[-2000:]
    return run


def test_a_task_environment_runs_it_as_a_module(ansible_playbook, databases, projects, tmp_path):
    run = run_play(ansible_playbook, tmp_path, """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Status with an environment
      slogate.supabase.supabase_migrate:
        project_dir: "{{ project }}"
        state: status
      environment:
        SUPABASE_DB_URL: "{{ url }}"
""", dict(project=str(projects[True]), url=databases[True]))
    assert "runs as a module: the task sets environment (SUPABASE_DB_URL)" in run.stdout


def test_a_task_delegated_to_localhost_runs_in_the_worker(ansible_playbook, databases, projects, tmp_path):
    """The Python that counts is the delegated host's (localhost: Ansible's own), not db1's."""
    run = run_play(ansible_playbook, tmp_path, """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Localhost runs modules with the Python running Ansible
      ansible.builtin.set_fact:
        ansible_python_interpreter: "{{ ansible_playbook_python }}"
    - name: A database host reached over SSH with its own Python (never contacted here)
      ansible.builtin.add_host:
        name: db1
        ansible_host: 192.0.2.10
        ansible_connection: ssh
        ansible_python_interpreter: /opt/elsewhere/bin/python3
- hosts: db1
  gather_facts: false
  tasks:
    - name: Status from the controller
      slogate.supabase.supabase_migrate:
        project_dir: "{{ project }}"
        db_url: "{{ url }}"
        state: status
      delegate_to: localhost
""", dict(project=str(projects[True]), url=databases[True]), python=None)
    assert IN_WORKER in run.stdout and "ok: [db1 -> localhost]" in run.stdout


def test_a_switch_that_is_not_a_boolean_fails_in_one_line(ansible_playbook, projects, tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text("""
- hosts: localhost
  gather_facts: false
  vars:
    slogate_supabase_in_controller: maybe
  tasks:
    - name: Status
      slogate.supabase.supabase_migrate:
        project_dir: "{{ project }}"
        state: status
""")
    run = ansible_playbook(playbook, dict(project=str(projects[True])))
    assert run.rc != 0
    assert "slogate_supabase_in_controller must be true or false, got 'maybe'" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
