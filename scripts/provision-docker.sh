#!/usr/bin/env bash
# Provision what the Docker backend's tests need, idempotently (run as root):
#   1. a Docker daemon that answers (installs docker.io and starts dockerd if needed);
#   2. the test image agentbox/busybox:test, built locally FROM scratch with Debian's
#      busybox-static and a non-root user `sandbox` (uid 1000). Nothing is ever pulled. It is
#      labelled as agentbox's (creator, creation time, role) but carries no sandbox id, so a
#      sweep of leaked sandboxes leaves it alone.
# Environment: AGENTBOX_DOCKER_IMAGE (default agentbox/busybox:test),
#              AGENTBOX_DOCKERD_LOG (default /var/log/agentbox-dockerd.log).
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
[ -x "$BUSYBOX" ] && "$BUSYBOX" --list >/dev/null 2>&1 || die "$BUSYBOX does not run"

SCRIPT_SELF="${BASH_SOURCE[0]}"
# The image is rebuilt when busybox or this script changes.
BUILD_HASH="$( (sha256sum "$BUSYBOX" "$SCRIPT_SELF" | awk '{print $1}') | sha256sum | cut -c1-16)"
CURRENT_HASH="$(docker image inspect -f '{{ index .Config.Labels "agentbox.build-hash" }}' "$IMAGE" 2>/dev/null || true)"
PREVIOUS_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ "$CURRENT_HASH" = "$BUILD_HASH" ]; then
  say "image $IMAGE is up to date"
  exit 0
fi

say "building $IMAGE from scratch with $BUSYBOX"
CTX="$(mktemp -d)"
trap 'rm -rf "$CTX"' EXIT
ROOT="$CTX/rootfs"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,workspace,home/sandbox,.agentbox-store,.agentbox-run,skills,root}
cp "$BUSYBOX" "$ROOT/bin/busybox"
chmod 0755 "$ROOT/bin/busybox"
# One symlink per applet, where busybox itself would put it (--install -s layout).
"$BUSYBOX" --list-full | while read -r applet; do
  case "$applet" in bin/busybox | "") continue ;; esac
  dir="$(dirname "$applet")"
  mkdir -p "$ROOT/$dir"
  rel="$(realpath --relative-to="$ROOT/$dir" "$ROOT/bin/busybox")"
  ln -sfn "$rel" "$ROOT/$applet"
done
cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sandbox:x:1000:1000:agentbox sandbox:/home/sandbox:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
sandbox:x:1000:
nogroup:x:65534:
EOF
echo 'hosts: files dns' >"$ROOT/etc/nsswitch.conf"
chmod 1777 "$ROOT/tmp"
chmod 0700 "$ROOT/root" "$ROOT/.agentbox-store"
chmod 0755 "$ROOT/.agentbox-run"
chown -R 1000:1000 "$ROOT/workspace" "$ROOT/home/sandbox" "$ROOT/skills"

CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# `docker import` needs no builder (BuildKit is not required) and never pulls.
tar -C "$ROOT" --numeric-owner -cf - . | docker import \
  --change 'USER 1000:1000' \
  --change 'WORKDIR /workspace' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/workspace' \
  --change 'CMD ["/bin/sh"]' \
  --change 'LABEL agentbox.creator=agentbox' \
  --change "LABEL agentbox.created=$CREATED" \
  --change 'LABEL agentbox.role=test-image' \
  --change "LABEL agentbox.build-hash=$BUILD_HASH" \
  - "$IMAGE" >/dev/null
say "built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE"))"
# The previous build, now untagged, goes unless a container still uses it.
if [ -n "$PREVIOUS_ID" ]; then docker image rm "$PREVIOUS_ID" >/dev/null 2>&1 || true; fi
