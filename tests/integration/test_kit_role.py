"""The kit role through ansible-playbook: install, idempotence, check mode, never overwriting."""

import shutil

import pytest

import kit

pytestmark = pytest.mark.integration

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: slogate.supabase.kit
"""


@pytest.fixture
def playbook(tmp_path):
    path = tmp_path / "kit.yml"
    path.write_text(PLAYBOOK)
    return path


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "supabase" / "migrations").mkdir(parents=True)
    (root / "supabase" / "migrations" / "20260301120000_app.sql").write_text("CREATE TABLE public.app (id int);\n")
    return root


def migrations(project):
    return sorted(p.name for p in (project / "supabase" / "migrations").iterdir())


def test_install_then_nothing_to_do(ansible_playbook, playbook, project):
    first = ansible_playbook(playbook, {"kit_project_dir": str(project)})
    assert first.rc == 0, first.stdout + first.stderr
    assert first.recap["changed"] == 2  # the migrations and the bootstrap file
    assert migrations(project) == ["20260301120000_app.sql", "20260301120001_slogate_kit_tables.sql",
                                   "20260301120002_slogate_kit_views.sql", "20260301120003_slogate_kit_functions.sql",
                                   "20260301120004_slogate_kit_verify.sql"]
    pack_by_description = {path.name.split("_", 1)[1]: path.name for path in kit.MIGRATIONS}
    for name in migrations(project)[1:]:
        pack_name = pack_by_description[name.split("_", 1)[1]]
        assert (project / "supabase" / "migrations" / name).read_bytes() == \
            (kit.KIT_FILES / "pack" / "migrations" / pack_name).read_bytes()
        assert (project / "supabase" / "rollbacks" / name).read_bytes() == \
            (kit.KIT_FILES / "pack" / "rollbacks" / pack_name).read_bytes()
    assert (project / "supabase" / "slogate_bootstrap.sql").read_bytes() == kit.BOOTSTRAP.read_bytes()
    second = ansible_playbook(playbook, {"kit_project_dir": str(project)})
    assert second.rc == 0 and second.recap["changed"] == 0


def test_check_mode_writes_nothing(ansible_playbook, playbook, project):
    run = ansible_playbook(playbook, {"kit_project_dir": str(project)}, check=True, diff=True)
    assert run.rc == 0 and run.recap["changed"] == 2
    assert "CREATE TABLE public.performance_metrics" in run.stdout  # the diff shows what would be added
    assert migrations(project) == ["20260301120000_app.sql"]
    assert not (project / "supabase" / "rollbacks").exists()


def test_renamed_kit_files_count_as_installed(ansible_playbook, playbook, project):
    for position, path in enumerate(kit.MIGRATIONS):
        shutil.copy(path, project / "supabase" / "migrations" / ("2026040100000%d_renamed.sql" % position))
    run = ansible_playbook(playbook, {"kit_project_dir": str(project), "kit_install_bootstrap": False})
    assert run.rc == 0, run.stdout
    assert len(migrations(project)) == 5  # nothing added; only the down scripts were missing
    assert len(list((project / "supabase" / "rollbacks").iterdir())) == 4


def test_missing_project_dir_is_named(ansible_playbook, playbook, tmp_path):
    run = ansible_playbook(playbook, {"kit_project_dir": str(tmp_path / "nope")})
    assert run.rc != 0
    assert "project_dir %s does not exist" % (tmp_path / "nope") in run.stdout


def test_project_dir_is_required(ansible_playbook, playbook):
    run = ansible_playbook(playbook)
    assert run.rc != 0 and "kit_project_dir" in run.stdout
