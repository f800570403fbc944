"""The AWX project under awx/: the surveys follow AWX's survey rules and ask only
for variables the collection knows, with its types and defaults and never a
secret; the wrapper playbooks import the collection's playbooks; the objects in
awx/awx-objects.yml use only options of the awx.awx modules.

No AWX is reachable here, so AWX's side is pinned: its survey rules (the checks
AWX's API makes when a survey spec is saved) and the option names of awx.awx
24.6.1 (the awx.awx of the pinned ansible 12.3.0 wheel, read from its modules'
documentation).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jinja2 import Environment, meta
from ansible.galaxy.dependency_resolution.versioning import meets_requirements
from ansible.parsing.dataloader import DataLoader

ROOT = Path(__file__).resolve().parents[2]
AWX = ROOT / "awx"
VENV_BIN = Path(sys.executable).parent
COLLECTIONS_PATH = Path(os.environ.get("SLOGATE_COLLECTIONS_PATH", ROOT / ".venv" / "collections"))  # as tests/conftest.py
SURVEYS = sorted(AWX.glob("survey-*.json"))

AWX_TYPES = {  # question type: the Python types AWX accepts as its default
    "text": (str,), "textarea": (str,), "password": (str,), "multiplechoice": (str,), "multiselect": (str,),
    "integer": (int,), "float": (int, float),
}
QUESTION_KEYS = {"question_name", "question_description", "required", "type", "variable", "default", "choices", "min", "max",
                 "new_question"}
# Argument spec types a question's answer satisfies (multiple choices are checked against the spec's choices).
SPEC_TYPES = {"integer": {"int", "float"}, "float": {"float"}, "text": {"str"}, "textarea": {"str"}, "password": {"str"},
              "multiplechoice": {"str", "bool"}}
BOOL_CHOICES = {"true", "false"}

AWX_AWX_OPTIONS = {  # awx.awx 24.6.1: the options of each module awx-objects.yml uses
    "credential": "copy_from credential_type description inputs name new_name organization state team update_secrets user",
    "credential_type": "description injectors inputs kind name new_name state",
    "group": "children description hosts inventory name new_name preserve_existing_children preserve_existing_hosts state "
             "variables",
    "host": "description enabled inventory name new_name state variables",
    "inventory": "copy_from description host_filter input_inventories instance_groups kind name new_name organization "
                 "prevent_instance_group_fallback state variables",
    "job_template": "allow_simultaneous ask_credential_on_launch ask_diff_mode_on_launch ask_execution_environment_on_launch "
                    "ask_forks_on_launch ask_instance_groups_on_launch ask_inventory_on_launch ask_job_slice_count_on_launch "
                    "ask_job_type_on_launch ask_labels_on_launch ask_limit_on_launch ask_scm_branch_on_launch "
                    "ask_skip_tags_on_launch ask_tags_on_launch ask_timeout_on_launch ask_variables_on_launch "
                    "ask_verbosity_on_launch become_enabled copy_from credential credentials custom_virtualenv description "
                    "diff_mode execution_environment extra_vars force_handlers forks host_config_key instance_groups "
                    "inventory job_slice_count job_tags job_type labels limit name new_name notification_templates_error "
                    "notification_templates_started notification_templates_success organization playbook "
                    "prevent_instance_group_fallback project scm_branch skip_tags start_at_task state survey_enabled "
                    "survey_spec timeout use_fact_cache vault_credential verbosity webhook_credential webhook_service",
    "project": "allow_override copy_from credential custom_virtualenv default_environment description interval local_path name "
               "new_name notification_templates_error notification_templates_started notification_templates_success "
               "organization scm_branch scm_clean scm_delete_on_update scm_refspec scm_track_submodules scm_type "
               "scm_update_cache_timeout scm_update_on_launch scm_url signature_validation_credential state timeout "
               "update_project wait",
    "workflow_job_template": "allow_simultaneous ask_inventory_on_launch ask_labels_on_launch ask_limit_on_launch "
                             "ask_scm_branch_on_launch ask_skip_tags_on_launch ask_tags_on_launch ask_variables_on_launch "
                             "copy_from description destroy_current_nodes extra_vars inventory job_tags labels limit name "
                             "new_name notification_templates_approvals notification_templates_error "
                             "notification_templates_started notification_templates_success organization scm_branch "
                             "skip_tags state survey_enabled survey_spec webhook_credential webhook_service workflow_nodes",
}
AWX_NODE_OPTIONS = set("all_parents_must_converge diff_mode execution_environment extra_data forks identifier inventory "
                       "job_slice_count job_tags job_type limit related scm_branch skip_tags state timeout "
                       "unified_job_template verbosity".split())
AWX_NODE_TEMPLATE_OPTIONS = {"description", "inventory", "name", "organization", "timeout", "type"}
AWX_NODE_RELATED_OPTIONS = {"always_nodes", "credentials", "failure_nodes", "instance_groups", "labels", "success_nodes"}


# -- what the collection knows ---------------------------------------------------------------------------------

def role_options():
    """Every role option: name -> its argument spec entry."""
    options = {}
    for spec in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        options.update(yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"])
    return options


def role_defaults():
    defaults = {}
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        defaults.update(yaml.safe_load(path.read_text()) or {})
    return defaults


def playbook_texts():
    return "\n".join(path.read_text() for path in sorted((ROOT / "playbooks").glob("*.yml")))


def known_variables():
    """Role options, and the shared slogate_* variables the roles' defaults and the playbooks read."""
    texts = playbook_texts() + "\n".join(str(value) for value in role_defaults().values())
    return set(role_options()) | set(re.findall(r"\bslogate_\w+", texts))


def fed_options(variable):
    """The role options a variable sets: itself, or those whose default reads it (slogate_bucket_seconds ->
    monitor_bucket_seconds, predeploy_bucket_seconds)."""
    options = role_options()
    if variable in options:
        return {variable: options[variable]}
    return {name: options[name] for name, value in role_defaults().items()
            if re.search(r"\b%s\b" % variable, str(value))}


def playbook_switch_default(variable):
    """A playbook switch `NAME | default(X) | bool`: its default, or None."""
    found = set(re.findall(r"\b%s \| default\((true|false)\) \| bool" % variable, playbook_texts()))
    assert len(found) <= 1, (variable, found)
    return found.pop() if found else None


def from_a_credential(variable):
    """The database URL and the bearer tokens, by their names or those of the options they set: an AWX credential's."""
    return any(name.endswith(("_db_url", "_token")) for name in {variable} | set(fed_options(variable)))


def is_secret(variable):
    return from_a_credential(variable) or "password" in variable or variable.endswith("webhook_url") or any(
        "(a secret)" in str(option.get("description", "")) for option in fed_options(variable).values())


def choices_of(question):
    choices = question["choices"]
    return [c for c in choices.splitlines() if c.strip()] if isinstance(choices, str) else list(choices)


# -- the surveys ---------------------------------------------------------------------------------------------

def test_there_is_a_survey_per_job_template():
    assert [path.name for path in SURVEYS] == ["survey-deploy.json", "survey-rollback.json"]


@pytest.mark.parametrize("path", SURVEYS, ids=[p.name for p in SURVEYS])
def test_survey_follows_awx_rules(path):
    survey = json.loads(path.read_text())
    assert set(survey) == {"name", "description", "spec"}
    assert isinstance(survey["name"], str) and isinstance(survey["description"], str)
    assert isinstance(survey["spec"], list) and survey["spec"]
    variables = [q["variable"] for q in survey["spec"]]
    assert len(variables) == len(set(variables)), "a variable asked twice"
    for question in survey["spec"]:
        where = "%s: %s" % (path.name, question.get("variable"))
        assert set(question) <= QUESTION_KEYS, (where, set(question) - QUESTION_KEYS)
        for key in ("question_name", "variable", "type"):
            assert isinstance(question[key], str) and question[key], where
        assert isinstance(question["required"], bool), where
        assert isinstance(question.get("question_description", ""), str), where
        kind = question["type"]
        assert kind in AWX_TYPES, where
        default = question.get("default", "")
        if default != "":
            assert isinstance(default, AWX_TYPES[kind]) and not isinstance(default, bool), where
        for key in ("min", "max"):
            assert question.get(key) is None or (isinstance(question[key], int) and not isinstance(question[key], bool)), where
        low, high = question.get("min"), question.get("max")
        if kind in ("integer", "float") and default != "":
            assert (low is None or low <= default) and (high is None or default <= high), where
        if kind in ("text", "textarea", "password") and default != "":
            assert (low is None or low <= len(default)) and (high is None or len(default) <= high), where
        if kind in ("multiplechoice", "multiselect"):
            choices = choices_of(question)
            assert choices and len(choices) == len(set(choices)), where
            defaults = [d for d in str(default).splitlines() if d.strip()]
            assert all(d in choices for d in defaults), where
            assert kind != "multiplechoice" or len(defaults) <= 1, where
        else:
            assert "choices" not in question, where
        # AWX keeps $encrypted$ for a stored password; a new spec may not use it.
        assert not str(default).startswith("$encrypted$"), where


@pytest.mark.parametrize("path", SURVEYS, ids=[p.name for p in SURVEYS])
def test_survey_asks_only_for_variables_the_collection_knows_with_their_types_and_defaults(path):
    known = known_variables()
    for question in json.loads(path.read_text())["spec"]:
        variable, kind, default = question["variable"], question["type"], question.get("default", "")
        assert variable in known, "%s: %s is read by no role or playbook" % (path.name, variable)
        options = fed_options(variable)
        switch = playbook_switch_default(variable)
        assert options or switch, variable
        spec_types = {option.get("type", "str") for option in options.values()} | ({"bool"} if switch else set())
        assert spec_types <= SPEC_TYPES[kind] or (kind == "integer" and spec_types <= {"int", "float"}), (variable, spec_types)
        if kind == "multiplechoice":
            choices = set(choices_of(question))
            if spec_types == {"bool"}:
                assert choices == BOOL_CHOICES, variable
            else:
                for option in options.values():
                    assert choices <= set(option["choices"]), variable
        # The survey's default is the collection's, so an operator who answers nothing gets the runbook's behaviour.
        collection_defaults = {json.dumps(option["default"]) for option in options.values() if "default" in option}
        if switch:
            collection_defaults.add(json.dumps(switch == "true"))
        if collection_defaults and default != "":
            answer = (default == "true") if default in BOOL_CHOICES and "bool" in spec_types else default
            assert collection_defaults == {json.dumps(answer)}, (variable, default, collection_defaults)


@pytest.mark.parametrize("path", SURVEYS, ids=[p.name for p in SURVEYS])
def test_survey_asks_for_no_credential_and_hides_any_other_secret(path):
    for question in json.loads(path.read_text())["spec"]:
        variable = question["variable"]
        assert not from_a_credential(variable), "%s: %s comes from a credential" % (path.name, variable)
        if is_secret(variable):
            assert question["type"] == "password", variable


def test_deploy_survey_asks_the_operator_facing_settings():
    variables = {q["variable"] for q in json.loads((AWX / "survey-deploy.json").read_text())["spec"]}
    assert {"slogate_release_id", "slogate_bucket_seconds", "slogate_poll_interval", "slogate_loadtest", "monitor_buckets",
            "slogate_webhook_url"} <= variables


# -- the wrapper playbooks and the requirements --------------------------------------------------------------

@pytest.mark.parametrize("name", ["deploy", "rollback"])
def test_wrapper_loads_the_vault_file_then_imports_the_collection_playbook(name):
    plays = yaml.safe_load((AWX / ("%s.yml" % name)).read_text())
    *first, last = plays
    assert last == {"name": last["name"], "ansible.builtin.import_playbook": "slogate.supabase.%s" % name}
    assert (ROOT / "playbooks" / ("%s.yml" % name)).is_file()
    imported = yaml.safe_load((ROOT / "playbooks" / ("%s.yml" % name)).read_text())
    # The secrets play must target the hosts the collection's play runs on, or they would not get the variables.
    assert [play["hosts"] for play in first] == [imported[0]["hosts"]]
    [task] = first[0]["tasks"]
    assert task["ansible.builtin.include_vars"] == {"file": "{{ playbook_dir }}/vault.yml"} and task["no_log"] is True


@pytest.mark.parametrize("name", ["deploy", "rollback"])
def test_wrapper_parses_and_lists_the_collection_playbook_tasks(name):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    run = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--list-tasks", str(AWX / ("%s.yml" % name))],
                         capture_output=True, text=True, env=env, cwd=str(ROOT), check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    # The imported play's roles were resolved, not just the file named.
    assert "slogate.supabase.%s : " % name in run.stdout, run.stdout[-2000:]


def test_requirements_name_the_collection_at_its_version():
    requirements = yaml.safe_load((AWX / "collections" / "requirements.yml").read_text())
    [entry] = requirements["collections"]
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert entry["name"] == "%s.%s" % (galaxy["namespace"], galaxy["name"])
    assert meets_requirements(galaxy["version"], entry["version"]), (galaxy["version"], entry["version"])


# -- the AWX objects -----------------------------------------------------------------------------------------

def awx_tasks():
    [play] = DataLoader().load_from_file(str(AWX / "awx-objects.yml"))
    tasks = []
    for task in play["tasks"]:
        [module] = [key for key in task if key.startswith("awx.awx.")]
        tasks.append((module[len("awx.awx."):], task[module], task))
    return tasks


def test_awx_objects_use_only_options_of_the_awx_modules():
    for module, args, task in awx_tasks():
        assert module in AWX_AWX_OPTIONS, module
        assert set(args) <= set(AWX_AWX_OPTIONS[module].split()), (task["name"], set(args) - set(AWX_AWX_OPTIONS[module].split()))
        for node in args.get("workflow_nodes", []):
            assert set(node) <= AWX_NODE_OPTIONS, node
            assert set(node["unified_job_template"]) <= AWX_NODE_TEMPLATE_OPTIONS, node
            assert set(node.get("related", {})) <= AWX_NODE_RELATED_OPTIONS, node


def test_awx_job_templates_run_the_wrappers_with_their_surveys_and_the_workflow_falls_back_to_rollback():
    by_module = {}
    for module, args, _task in awx_tasks():
        by_module.setdefault(module, []).append(args)
    templates = {jt["name"]: jt for jt in by_module["job_template"]}
    assert {jt["playbook"] for jt in templates.values()} == {"deploy.yml", "rollback.yml"}
    for jt in templates.values():
        assert (AWX / jt["playbook"]).is_file() and jt["job_type"] == "run" and jt["survey_enabled"] is True
        survey = re.search(r"'(survey-\w+\.json)'", jt["survey_spec"]).group(1)
        assert survey == "survey-%s" % jt["playbook"].replace(".yml", ".json")
    [workflow] = by_module["workflow_job_template"]
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    assert {node["unified_job_template"]["name"] for node in nodes.values()} <= set(templates)
    assert all(node["unified_job_template"]["type"] == "job_template" for node in nodes.values())
    deploy = next(n for n in nodes.values() if templates[n["unified_job_template"]["name"]]["playbook"] == "deploy.yml")
    [fallback] = deploy["related"]["failure_nodes"]
    assert templates[nodes[fallback["identifier"]]["unified_job_template"]["name"]]["playbook"] == "rollback.yml"
    assert not deploy["related"].get("success_nodes") and not deploy["related"].get("always_nodes")


def test_awx_credential_type_injects_every_secret_the_collection_reads():
    [credential_type] = [args for module, args, _task in awx_tasks() if module == "credential_type"]
    assert credential_type["kind"] == "cloud"
    fields = {field["id"]: field for field in credential_type["inputs"]["fields"]}
    assert all(field["type"] == "string" and field["secret"] is True for field in fields.values())
    assert set(credential_type["inputs"]["required"]) <= set(fields)
    injected = credential_type["injectors"]["extra_vars"]
    secrets = {name for name in known_variables() if name.startswith("slogate_") and from_a_credential(name)}
    assert set(injected) == secrets, (set(injected) ^ secrets)
    for template in injected.values():
        # AWX renders these with the credential's inputs: they must reach it unrendered and name only its fields.
        assert meta.find_undeclared_variables(Environment().parse(template)) <= set(fields), template
    credentials = [task for module, _args, task in awx_tasks() if module == "credential"]
    assert all(task.get("no_log") is True for task in credentials)
