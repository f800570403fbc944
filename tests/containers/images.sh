#!/usr/bin/env bash
# The container engine and the two local images Molecule needs, built from Debian packages (no image registry):
#   localhost/local/debian:bookworm    debootstrap --variant=minbase, imported with podman import
#   localhost/local/postgres:15        Containerfile.postgres on top of it
# Each step is skipped when its result exists, so a second run costs nothing.
#   bash tests/containers/images.sh [conf]   (conf: only write the containers.conf and print its path)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
conf_dir="$root/.cache/containers"
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

# This machine kind refuses podman's default nofile limit and crun's cgroup handling; both settings are
# harmless elsewhere. The limit must not exceed this shell's hard limit, so the file is written here.
write_conf() {
  mkdir -p "$conf_dir"
  local nofile; nofile="$(ulimit -Hn)"; [ "$nofile" = unlimited ] && nofile=1048576
  sed "s/@NOFILE@/$nofile/g" "$here/containers.conf.in" > "$conf_dir/containers.conf.new"
  mv "$conf_dir/containers.conf.new" "$conf_dir/containers.conf"
}
write_conf
export CONTAINERS_CONF="$conf_dir/containers.conf"
if [ "${1:-}" = conf ]; then echo "$CONTAINERS_CONF"; exit 0; fi

step() { printf '[images %4ds] %s\n' "$SECONDS" "$*"; }

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
  step "installing podman, runc and debootstrap (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends podman buildah runc conmon \
    catatonit uidmap slirp4netns fuse-overlayfs passt containernetworking-plugins iptables debootstrap >/dev/null
fi

if podman image exists localhost/local/debian:bookworm; then
  step "base image localhost/local/debian:bookworm exists"
else
  # The mirror apt already uses (deb822 or one-line sources), so debootstrap works wherever apt does.
  mirror="$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | sed -n 's/^URIs: *//p; s/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\) .*/\2/p' | grep -v security | head -1 || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  rootfs="$(mktemp -d /tmp/slogate-rootfs-XXXXXX)"
  trap '$sudo rm -rf "$rootfs"' EXIT
  step "debootstrap --variant=minbase bookworm from $mirror (about a minute)"
  $sudo debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  step "podman import"
  $sudo tar -C "$rootfs" --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' -c . \
    | podman import - localhost/local/debian:bookworm >/dev/null
fi

# The image carries its Containerfile's hash: an edited Containerfile rebuilds it, an unchanged one costs nothing.
recipe="$(sha256sum "$here/Containerfile.postgres" | cut -c1-16)"
built="$(podman image inspect --format '{{ index .Labels "slogate.recipe" }}' localhost/local/postgres:15 2>/dev/null || true)"
if [ "$built" = "$recipe" ]; then
  step "image localhost/local/postgres:15 exists (recipe $recipe)"
else
  step "podman build localhost/local/postgres:15 (postgresql-15 from Debian, about 30 s)"
  podman build -q --label "slogate.recipe=$recipe" -t localhost/local/postgres:15 -f "$here/Containerfile.postgres" "$here" >/dev/null
fi
step "images ready"
