"""Every down script, applied after its up script, leaves the schema as it was
before the up script (pg_dump --schema-only, compared line by line)."""

import subprocess
from pathlib import Path

import pytest

import kit
from pgserver import embedded_bindir

pytestmark = pytest.mark.integration

DEMO = kit.ROOT / "examples" / "demo" / "supabase"
PROJECTS = {
    "kit pack": (sorted((kit.KIT_FILES / "pack" / "migrations").glob("*.sql")), kit.KIT_FILES / "pack" / "rollbacks"),
    "demo project": (sorted((DEMO / "migrations").glob("*.sql")), DEMO / "rollbacks"),
}


def schema_dump(url):
    """The schema as pg_dump sees it, without the lines that differ between two dumps of one schema."""
    proc = subprocess.run([str(embedded_bindir() / "pg_dump"), "--schema-only", "--no-owner", url],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines()
            if line.strip() and not line.startswith("--") and not line.startswith(("\\restrict", "\\unrestrict"))]


@pytest.mark.parametrize("project", list(PROJECTS))
def test_every_down_script_restores_the_schema(pg_db, project):
    migrations, rollbacks = PROJECTS[project]
    kit.apply_file(pg_db.url, kit.BOOTSTRAP)
    for migration in migrations:
        rollback = rollbacks / migration.name
        assert rollback.exists(), "%s has no down script" % migration.name
        before = schema_dump(pg_db.url)
        kit.apply_file(pg_db.url, migration)
        assert schema_dump(pg_db.url) != before, "%s changed nothing" % migration.name
        kit.apply_file(pg_db.url, rollback)
        assert schema_dump(pg_db.url) == before, "%s does not undo %s" % (rollback.name, migration.name)
        kit.apply_file(pg_db.url, migration)


def test_demo_ships_the_kit_unchanged():
    """The demo's kit migrations are the pack as the kit role installed it: same content, same down scripts."""
    pack = {path.read_text(): path.name for path in (kit.KIT_FILES / "pack" / "migrations").glob("*.sql")}
    demo = {path.read_text(): path.name for path in (DEMO / "migrations").glob("*.sql")}
    assert set(pack) <= set(demo)
    for content, pack_name in pack.items():
        demo_name = demo[content]
        assert (DEMO / "rollbacks" / demo_name).read_text() == (kit.KIT_FILES / "pack" / "rollbacks" / pack_name).read_text()
        assert Path(demo_name).name.split("_", 1)[1] == pack_name.split("_", 1)[1]
