"""Each role's README documents exactly the variables of its argument spec."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_role_readmes_match_argument_specs():
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "role_readme.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_role_has_an_argument_spec_and_readme():
    roles = sorted(path.name for path in (ROOT / "roles").iterdir() if path.is_dir())
    assert roles == ["deploy", "kit", "loadtest", "monitor", "predeploy", "report", "rollback", "smoke"]
    for role in roles:
        assert (ROOT / "roles" / role / "meta" / "argument_specs.yml").is_file(), role
        assert (ROOT / "roles" / role / "README.md").is_file(), role
