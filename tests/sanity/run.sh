#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection, with no ignore file.
# ansible-test wants the collection under ansible_collections/<ns>/<name>/ as a
# real folder (a symlink is refused), and its import test bootstraps pip with a
# script it downloads from a host this network cannot reach: we seed that
# script's cache with one that installs pip from the pip we already have.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VENV:-$root/.venv}"
py="$venv/bin/python"

pip_version="$("$py" - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
class Py:  # get_venv_packages only reads .version
    version = "3.11"
print(get_venv_packages(Py())["pip"])
PY
)"
cache="$HOME/.ansible/test/cache"
bootstrap="$cache/pip-bootstrap"
mkdir -p "$cache"
rm -rf "$bootstrap" && mkdir -p "$bootstrap"
site="$("$py" -c 'import pip, os; print(os.path.dirname(os.path.dirname(pip.__file__)))')"
# The package alone, without its dist-info, so the new venv does not see it as installed.
cp -r "$site/pip" "$bootstrap/pip"
cat > "$cache/get_pip_${pip_version//./_}.py" <<PY
# Seeded by slogate.supabase tests/sanity/run.sh: installs pip with a local copy of pip.
import sys
sys.path.insert(0, "$bootstrap")
from pip._internal.cli.main import main
# get-pip options that pip install does not know
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install"] + args))
PY

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/slogate/supabase"
mkdir -p "$dest"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$dest")
if ls "$dest"/tests/sanity/ignore-*.txt >/dev/null 2>&1; then
  echo "tests/sanity/ignore-*.txt found: sanity must pass without an ignore file" >&2
  exit 1
fi
cd "$dest"
git init -q && git add -A  # ansible-test lists a collection's files through git when it can
PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" sanity --local --python 3.11 --color no "$@"
