"""docs/roles/<role>.md and the lists of docs/index.md say what the roles, modules and playbooks say."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_role_pages_and_index_are_up_to_date():
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "role_docs.py"), "--check"],
                         capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_role_has_a_page_linked_from_the_index():
    roles = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "meta" / "argument_specs.yml").is_file())
    index = (ROOT / "docs" / "index.md").read_text()
    for role in roles:
        assert (ROOT / "docs" / "roles" / ("%s.md" % role)).is_file(), role
        assert "(roles/%s.md)" % role in index, role
