#!/usr/bin/env bash
# Provision what the Docker backend's tests need, idempotently (run as root):
#   1. a Docker daemon that answers (installs docker.io and starts dockerd if needed);
#   2. the test image agentbox/busybox:test, built from the package's own Dockerfile
#      (packages/backend-docker/image/Dockerfile: FROM scratch, Debian's busybox-static, 1.37
#      when it can be had (see busybox_137 below), a non-root user `sandbox`, uid 1000).
#      Nothing is ever pulled. It is labelled as agentbox's (creator, creation time, role) but
#      carries no sandbox id, so a sweep leaves it alone.
# Environment: AGENTBOX_DOCKER_IMAGE (default agentbox/busybox:test),
#              AGENTBOX_DOCKERD_LOG (default /var/log/agentbox-dockerd.log),
#              AGENTBOX_BUSYBOX (a static busybox to build the image with, instead).
set -euo pipefail

IMAGE="${AGENTBOX_DOCKER_IMAGE:-agentbox/busybox:test}"
DOCKERD_LOG="${AGENTBOX_DOCKERD_LOG:-/var/log/agentbox-dockerd.log}"
BUSYBOX=/bin/busybox

say() { echo "provision-docker: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

daemon_up() { docker info >/dev/null 2>&1; }

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$1 is missing and apt-get is not available; install it by hand"
  [ "$(id -u)" = 0 ] || die "$1 is missing; run this script as root to install it"
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
  say "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- 1. the daemon ---------------------------------------------------------------------------
if daemon_up; then
  say "docker daemon already answers"
else
  if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer and is not a local socket; start that daemon yourself"
  fi
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 || apt_install docker.io
  [ "$(id -u)" = 0 ] || die "the docker daemon is not running; run this script as root to start it"
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but not answering yet; waiting"
  else
    say "starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: the daemon must outlive the shell (and the test run) that started it.
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    daemon_up && break
    sleep 0.5
  done
  daemon_up || die "dockerd did not come up within 60 s; see $DOCKERD_LOG"
  say "docker daemon is up"
fi

# --- 2. the test image -----------------------------------------------------------------------
# A FROM-scratch image needs a statically linked busybox: Debian's busybox-static package.
if command -v dpkg >/dev/null 2>&1; then
  dpkg -s busybox-static >/dev/null 2>&1 || apt_install busybox-static
elif command -v file >/dev/null 2>&1; then
  file -L "$BUSYBOX" | grep -q 'statically linked' || die "$BUSYBOX is not statically linked; install busybox-static"
fi

SCRIPT_SELF="${BASH_SOURCE[0]}"
REPO="$(cd "$(dirname "$SCRIPT_SELF")/.." && pwd)"

# The default image is busybox:1.37, so the test image carries BusyBox 1.37 too when Debian has
# it: trixie's busybox-static, fetched and checked by apt (signed index, package hash) and kept in
# .tmp/. Besides testing the version users get, it matters for speed: from 1.36 on, sha256sum
# uses the CPU's SHA instructions (256 MiB in 0.21 s here, against 1.2 s with bookworm's 1.35),
# and hashing is most of a first checkpoint. Where it cannot be had (no apt, no network), the
# host's busybox-static is used, and said. AGENTBOX_BUSYBOX names a static busybox to use instead.
version_of() { "$1" 2>&1 | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p' || true; }
busybox_137() {
  local dir="$REPO/.tmp/busybox-1.37" bin
  bin="$dir/busybox"
  if [[ "$(version_of "$bin")" != 1.37.* ]]; then
    command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || return 1
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f "$keyring" ] || return 1
    rm -rf "$dir" && mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/deb"
    echo "deb [signed-by=$keyring] http://deb.debian.org/debian trixie main" >"$dir/sources.list"
    local apt=(apt-get -qq -o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o Debug::NoLocking=1
      -o APT::Sandbox::User=root)
    "${apt[@]}" update >&2 || return 1
    (cd "$dir/deb" && "${apt[@]}" download busybox-static >&2) || return 1
    dpkg-deb -x "$dir/deb"/busybox-static_*.deb "$dir/deb/x" || return 1
    cp "$dir/deb/x/usr/bin/busybox" "$bin"
    rm -rf "$dir/lists" "$dir/cache" "$dir/deb" "$dir/sources.list"
    [[ "$(version_of "$bin")" == 1.37.* ]] || return 1
  fi
  echo "$bin"
}
if [ -n "${AGENTBOX_BUSYBOX:-}" ]; then
  BUSYBOX="$AGENTBOX_BUSYBOX"
elif FOUND="$(busybox_137)"; then
  BUSYBOX="$FOUND"
else
  say "BusyBox 1.37 (Debian trixie's busybox-static) could not be had: the test image uses $BUSYBOX ($(version_of "$BUSYBOX"))"
fi
[ -x "$BUSYBOX" ] && "$BUSYBOX" --list >/dev/null 2>&1 || die "$BUSYBOX does not run"
# The package's own Dockerfile: the same one a user builds from (see packages/backend-docker/README.md).
DOCKERFILE="$REPO/packages/backend-docker/image/Dockerfile"
[ -f "$DOCKERFILE" ] || die "no $DOCKERFILE"
# The image is rebuilt when busybox, the Dockerfile or this script changes.
BUILD_HASH="$( (sha256sum "$BUSYBOX" "$DOCKERFILE" "$SCRIPT_SELF" | awk '{print $1}') | sha256sum | cut -c1-16)"
CURRENT_HASH="$(docker image inspect -f '{{ index .Config.Labels "agentbox.build-hash" }}' "$IMAGE" 2>/dev/null || true)"
PREVIOUS_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ "$CURRENT_HASH" = "$BUILD_HASH" ]; then
  say "image $IMAGE is up to date"
  exit 0
fi

say "building $IMAGE from $DOCKERFILE with $BUSYBOX"
CTX="$(mktemp -d)"
trap 'rm -rf "$CTX"' EXIT
cp "$DOCKERFILE" "$CTX/Dockerfile"
cp "$BUSYBOX" "$CTX/busybox"
CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# FROM scratch: nothing is pulled. Without buildx the CLI uses the classic builder (and says so).
docker build -q \
  --label agentbox.creator=agentbox \
  --label "agentbox.created=$CREATED" \
  --label agentbox.role=test-image \
  --label "agentbox.build-hash=$BUILD_HASH" \
  -t "$IMAGE" "$CTX" 2>&1 >/dev/null | grep -v -e DEPRECATED -e 'legacy builder' -e buildx -e '^ *$' >&2 || true
[ "$(docker image inspect -f '{{ index .Config.Labels "agentbox.build-hash" }}' "$IMAGE" 2>/dev/null)" = "$BUILD_HASH" ] ||
  die "docker build of $IMAGE failed"
say "built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE"))"
# The previous build, now untagged, goes unless a container still uses it.
if [ -n "$PREVIOUS_ID" ]; then docker image rm "$PREVIOUS_ID" >/dev/null 2>&1 || true; fi
