#!/usr/bin/env bash
# The README's test command (`make test`): every part, with its wall time.
#   bash tests/run.sh          all parts
#   bash tests/run.sh pg15     only the integration suite on Debian's PostgreSQL 15
#   bash tests/run.sh molecule only the Molecule scenarios against PostgreSQL 15 containers
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin="$root/.venv/bin"
export PATH="$bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$root/.venv/collections"
declare -a summary=()

part() {  # part NAME COMMAND...: run it, time it, stop at the first failure
  local name="$1"; shift
  echo
  echo "=== $name"
  local start=$SECONDS
  if "$@"; then
    summary+=("$(printf '%-36s %4ds  ok' "$name" $((SECONDS - start)))")
  else
    summary+=("$(printf '%-36s %4ds  FAILED' "$name" $((SECONDS - start)))")
    report; exit 1
  fi
}

report() {
  echo
  echo "=== wall time per part"
  printf '%s\n' "${summary[@]}"
}

pg15() (
  if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
    echo "installing Debian's postgresql-15 (apt-get)"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
  fi
  dir="$(mktemp -d /tmp/slogate-pg15-XXXXXX)"
  trap '"$bin/python" tests/support/pgserver.py stop --dir "$dir/cluster"; rm -rf "$dir"' EXIT
  url="$("$bin/python" tests/support/pgserver.py start --dir "$dir/cluster" --bindir /usr/lib/postgresql/15/bin)"
  # Only the tests that reach PostgreSQL: the rest does not depend on the server and ran in the first pass.
  PG_URL="$url" SLOGATE_ONLY_DB_TESTS=1 "$bin/python" -m pytest -q -n 2 tests/integration
)

# Molecule against PostgreSQL 15 containers: podman and the images are set up when missing (tests/containers),
# containers.podman comes from the pinned ansible wheel. Two scenarios at a time, each with its own log.
molecule_podman() (
  "$bin/python" tools/vendor_collections.py "$root/.venv/collections"
  CONTAINERS_CONF="$(bash tests/containers/images.sh conf)"
  export CONTAINERS_CONF
  bash tests/containers/images.sh   # nothing to do when the images part ran first
  logs="$(mktemp -d /tmp/slogate-molecule-logs-XXXXXX)"
  scenario() { echo "molecule test -s $1: started"; local start=$SECONDS
    if "$bin/molecule" test -s "$1" >"$logs/$1.log" 2>&1; then echo "molecule test -s $1: passed in $((SECONDS - start)) s"
    else echo "molecule test -s $1: FAILED after $((SECONDS - start)) s, the end of its log:"; tail -80 "$logs/$1.log"; return 1; fi; }
  scenario default & first=$!
  { scenario rollback && scenario kit; } & second=$!
  status=0; wait $first || status=1; wait $second || status=1
  left="$(podman ps -a --filter name=slogate-molecule- --format '{{.Names}}')"
  if [ -n "$left" ]; then echo "containers left behind: $left"; status=1; fi
  rm -rf "$logs"
  return $status
)

# ansible-test sanity and ansible-lint side by side (neither reads what the other writes), each with its own log.
sanity_and_lint() (
  logs="$(mktemp -d /tmp/slogate-static-logs-XXXXXX)"
  trap 'rm -rf "$logs"' EXIT
  bash tests/sanity/run.sh >"$logs/sanity.log" 2>&1 & sanity=$!
  "$bin/ansible-lint" --profile production >"$logs/lint.log" 2>&1 & lint=$!
  status=0
  for job in "sanity:$sanity" "lint:$lint"; do
    if wait "${job#*:}"; then echo "${job%%:*}: passed"; tail -3 "$logs/${job%%:*}.log"
    else echo "${job%%:*}: FAILED, the end of its log:"; tail -60 "$logs/${job%%:*}.log"; status=1; fi
  done
  return $status
)

case "${1:-all}" in
  pg15) part "integration on PostgreSQL 15" pg15; report ;;
  molecule) part "molecule (podman, PostgreSQL 15)" molecule_podman; report ;;
  all)
    part "Debian's prometheus (apt-get when missing)" "$bin/python" tests/support/prometheus_server.py install
    # Before the tests: the execution-environment test builds on the Debian base image, Molecule needs both.
    part "container images (podman, apt-get when missing)" bash tests/containers/images.sh
    part "unit + integration on PostgreSQL 18" "$bin/python" -m pytest -q -n 2 tests/unit tests/integration
    part "integration on PostgreSQL 15" pg15
    part "molecule (podman, PostgreSQL 15)" molecule_podman
    part "ansible-test sanity | ansible-lint" sanity_and_lint
    report ;;
  *) echo "usage: tests/run.sh [all|pg15|molecule]" >&2; exit 2 ;;
esac
