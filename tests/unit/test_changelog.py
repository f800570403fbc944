"""The changelog: valid fragments, and a CHANGELOG.rst that says what they say.

changelogs/config.yaml keeps the fragments after a release (keep_fragments),
so they can be linted here and a fragment added before the release is tagged
still reaches it: `antsibull-changelog release --version <galaxy.yml version>`
run again adds every new fragment to that release and rewrites CHANGELOG.rst.
"""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHANGELOGS = ROOT / "changelogs"


def antsibull(*args):
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")))
    return subprocess.run([str(VENV_BIN / "antsibull-changelog")] + list(args), capture_output=True, text=True,
                          cwd=str(ROOT), env=env, check=False, timeout=300)


def test_fragments_and_changelog_yaml_lint_clean():
    for args in (["lint"], ["lint-changelog-yaml", str(CHANGELOGS / "changelog.yaml")]):
        run = antsibull(*args)
        assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr


def test_the_release_in_galaxy_yml_holds_every_fragment():
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    releases = yaml.safe_load((CHANGELOGS / "changelog.yaml").read_text())["releases"] or {}
    if version not in releases:
        return   # the next version is in the works: its fragments are not released yet
    fragments = sorted(path.name for path in (CHANGELOGS / "fragments").iterdir() if path.suffix in (".yml", ".yaml"))
    released = {name for release in releases.values() for name in release.get("fragments", [])}
    assert sorted(set(fragments) - released) == [], (
        "fragments not in release %s of changelogs/changelog.yaml: run antsibull-changelog release --version %s"
        % (version, version))


def test_changelog_rst_is_generated_from_changelog_yaml(tmp_path):
    run = antsibull("generate", "--output", str(tmp_path / "CHANGELOG.rst"), "--output-format", "rst")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (ROOT / "CHANGELOG.rst").read_text() == (tmp_path / "CHANGELOG.rst").read_text(), (
        "CHANGELOG.rst is out of date: run antsibull-changelog generate")
