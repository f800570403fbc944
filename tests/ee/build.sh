#!/usr/bin/env bash
# The execution environment (execution-environment.yml): build it with ansible-builder and podman, then check it.
#   bash tests/ee/build.sh          build when its inputs changed, then run the smoke checks
#   bash tests/ee/build.sh build    only build
#   bash tests/ee/build.sh smoke    only the smoke checks, on the image that exists
#   bash tests/ee/build.sh builder  print the path of ansible-builder (installed into .cache/ee when .venv lacks it)
# Environment:
#   EE_REBUILD=1     build even when the image's recipe label matches (ansible-builder's layer cache still applies)
#   EE_NO_CACHE=1    build every layer again (podman build --no-cache)
#   EE_CA_BUNDLE     CA bundle pip must trust inside the build, where HTTPS goes through an intercepting proxy;
#                    defaults to $PIP_CERT when that is set. It is bind-mounted for the build only, never copied.
#   EE_PG_TIMEOUT    seconds to wait for the PostgreSQL container (default 60)
# Prints "ee-build: skipped|built in N s", "ee-smoke: <check> ok" lines the integration test reads.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
mode="${1:-all}"
case "$mode" in all|build|smoke|builder) ;; *) echo "usage: $0 [build|smoke|builder]" >&2; exit 2 ;; esac
work="$root/.cache/ee"
mkdir -p "$work"

step() { printf '[ee %4ds] %s\n' "$SECONDS" "$*"; }

builder() {
  # ansible-builder is not a dependency of the collection's own tooling; the pinned one goes into a venv of its
  # own unless .venv already has it.
  if [ -x "$root/.venv/bin/ansible-builder" ]; then echo "$root/.venv/bin/ansible-builder"; return; fi
  local venv="$work/ansible-builder-3.2.0"
  # pytest-xdist workers may ask at the same time; one installs, the others wait for it.
  exec 9>"$work/ansible-builder.lock"
  flock 9
  if [ ! -x "$venv/bin/ansible-builder" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/ee/builder-requirements.txt" >"$work/pip.log" 2>&1 \
      || { cat "$work/pip.log" >&2; rm -rf "$venv"; return 1; }
  fi
  flock -u 9
  echo "$venv/bin/ansible-builder"
}
if [ "$mode" = builder ]; then builder; exit 0; fi

CONTAINERS_CONF="$(bash tests/containers/images.sh conf)"
export CONTAINERS_CONF
# The Debian base image (and the PostgreSQL one the smoke checks use) come from Debian packages, no registry.
bash tests/containers/images.sh

version="$(sed -n 's/^version: *//p' galaxy.yml | tr -d "\"'")"
tag="localhost/slogate-supabase-ee:$version"
tarball="build/slogate-supabase-$version.tar.gz"

# A version bump must reach the three places that name the tarball or the tag; say which one was missed.
for f in execution-environment.yml ee/requirements.yml; do
  grep -q "slogate-supabase-$version.tar.gz" "$f" || { echo "$f does not name slogate-supabase-$version.tar.gz (galaxy.yml says $version)" >&2; exit 1; }
done
grep -q "localhost/slogate-supabase-ee:$version" execution-environment.yml \
  || { echo "execution-environment.yml does not tag localhost/slogate-supabase-ee:$version" >&2; exit 1; }

build() {
  local galaxy="$root/.venv/bin/ansible-galaxy"
  [ -x "$galaxy" ] || galaxy=ansible-galaxy
  "$galaxy" collection build --output-path build --force >/dev/null
  # The tarball's bytes change with every build (timestamps), its FILES.json only with the content.
  local recipe
  recipe="$( { sha256sum execution-environment.yml ee/*; tar -xzOf "$tarball" FILES.json | sha256sum; } \
    | sha256sum | cut -c1-16)"
  local built
  built="$(podman image inspect --format '{{ index .Labels "slogate.recipe" }}' "$tag" 2>/dev/null || true)"
  if [ "$built" = "$recipe" ] && [ -z "${EE_REBUILD:-}" ] && [ -z "${EE_NO_CACHE:-}" ]; then
    step "image $tag exists (recipe $recipe)"
    echo "ee-build: skipped"
    return
  fi
  local extra="--label slogate.recipe=$recipe"
  local ca="${EE_CA_BUNDLE:-${PIP_CERT:-}}"
  if [ -n "$ca" ] && [ -f "$ca" ]; then
    # pip in the build reads /etc/pip.conf; both mounts exist only while a RUN step runs.
    printf '[global]\ncert = /run/slogate-build-ca.pem\n' > "$work/pip.conf"
    extra="$extra -v $(readlink -f "$ca"):/run/slogate-build-ca.pem:ro -v $work/pip.conf:/etc/pip.conf:ro"
  fi
  local -a opts=()
  [ -n "${EE_NO_CACHE:-}" ] && opts+=(--no-cache)
  local previous
  previous="$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
  local ansible_builder
  ansible_builder="$(builder)"
  step "ansible-builder build $tag (log: $work/build.log)"
  local start=$SECONDS
  if ! "$ansible_builder" build -f execution-environment.yml -t "$tag" --container-runtime podman -v 3 \
      -c "$work/context" "${opts[@]}" --extra-build-cli-args="$extra" >"$work/build.log" 2>&1; then
    tail -60 "$work/build.log"
    echo "ansible-builder build failed, the whole log: $work/build.log" >&2
    return 1
  fi
  echo "ee-build: built in $((SECONDS - start)) s"
  # The image this build replaced keeps its layers on disk once untagged; drop it (only it: not a broad prune,
  # which would also take other projects' images and the stages ansible-builder's cache reuses).
  if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$tag")" ] \
     && [ -z "$(podman image inspect --format '{{.RepoTags}}' "$previous" 2>/dev/null | tr -d '[]')" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
  step "image size: $(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1000000}')"
}

pg=""
data=""
cleanup() {
  if [ -n "$pg" ]; then podman rm -f "$pg" >/dev/null 2>&1 || true; fi
  if [ -n "$data" ]; then rm -rf "$data"; fi
}
trap cleanup EXIT

smoke() {
  podman image exists "$tag" || { echo "no image $tag: run $0 build first" >&2; return 1; }

  step "ansible-doc -l slogate.supabase in the EE"
  local listing
  listing="$(podman run --rm "$tag" ansible-doc -l slogate.supabase)"
  echo "$listing"
  local module
  for module in plugins/modules/*.py; do
    module="$(basename "$module" .py)"
    grep -q "^slogate\.supabase\.$module " <<<"$listing" || { echo "module $module missing from the EE" >&2; return 1; }
  done
  echo "ee-smoke: ansible-doc ok"

  # The EE shares the PostgreSQL container's network namespace, so 127.0.0.1:5432 is the server: no port to pick.
  pg="slogate-ee-pg-$$"
  local password
  password="ee-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  step "PostgreSQL 15 container $pg"
  podman run -d --name "$pg" localhost/local/postgres:15 >/dev/null
  local deadline=$((SECONDS + ${EE_PG_TIMEOUT:-60}))
  until podman exec "$pg" pg_isready -q -h 127.0.0.1 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { podman logs "$pg" | tail -20; echo "PostgreSQL did not start" >&2; return 1; }
    sleep 0.3
  done
  echo "ALTER ROLE postgres PASSWORD '$password'" | podman exec -i "$pg" psql -q
  local url="postgresql://postgres:$password@127.0.0.1:5432/postgres"
  # Ad-hoc runs on the implicit localhost: its two warnings say nothing here.
  local -a quiet=(-e ANSIBLE_LOCALHOST_WARNING=False -e ANSIBLE_INVENTORY_UNPARSED_WARNING=False)

  step "slogate.supabase.pg_verify_function in the EE"
  podman run --rm --network "container:$pg" -e "SUPABASE_DB_URL=$url" "${quiet[@]}" "$tag" \
    ansible localhost -m slogate.supabase.pg_verify_function -a 'function=pg_catalog.version read_only=true'
  echo "ee-smoke: pg_verify_function ok"

  # pg_backup needs pg_dump and pg_restore of the server's major version: the bindep part of the EE.
  step "slogate.supabase.pg_backup state=dumped in the EE"
  podman run --rm --network "container:$pg" -e "SUPABASE_DB_URL=$url" "${quiet[@]}" "$tag" \
    ansible localhost -m slogate.supabase.pg_backup -a 'state=dumped backup_dir=/tmp/backups'
  echo "ee-smoke: pg_backup ok"

  local runner="$root/.venv/bin/ansible-runner"
  if [ ! -x "$runner" ]; then
    echo "ee-smoke: ansible-runner skipped (no $runner: make venv)"
    return
  fi
  # A private data dir as AWX lays it out, the playbook run in the EE by ansible-runner. The EE runs as uid 1000
  # and the data dir is bind-mounted: with rootful podman it belongs to this user, so the container runs as this
  # user. (AWX on Kubernetes streams the data dir into the pod instead, so there it belongs to the EE's user.)
  step "ansible-runner --process-isolation: tests/ee/verify.yml in the EE"
  data="$(mktemp -d /tmp/slogate-ee-runner-XXXXXX)"
  mkdir -p "$data/project" "$data/inventory" "$data/env"
  cp tests/ee/verify.yml "$data/project/"
  printf 'localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n' > "$data/inventory/hosts"
  printf 'SUPABASE_DB_URL: %s\n' "$url" > "$data/env/envvars"
  "$runner" run "$data" -p verify.yml --process-isolation --process-isolation-executable podman \
    --container-image "$tag" --container-option="--network=container:$pg" \
    --container-option="--user=$(id -u):$(id -g)"
  local status
  status="$(cat "$data"/artifacts/*/status)"
  [ "$status" = successful ] || { echo "ansible-runner status: $status" >&2; return 1; }
  echo "ee-smoke: ansible-runner ok"
}

case "$mode" in
  all) build; smoke ;;
  build) build ;;
  smoke) smoke ;;
esac
