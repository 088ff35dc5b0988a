#!/usr/bin/env bash
# Provision the image registry the docker backend's pull tests use, idempotently (run as root):
#   1. Debian's docker-registry package (apt-get installs it when the binary is missing);
#   2. a registry serving on 127.0.0.1 only, started from its own config file (no systemd), with
#      its storage and log in the state directory;
#   3. the test image (agentbox/busybox:test, built by provision-docker.sh) pushed there as
#      127.0.0.1:$PORT/agentbox/busybox:test. The local tag of that name is removed again, so a
#      sandbox opened from it really pulls.
# dockerd treats registries on 127.0.0.0/8 as insecure-allowed: no TLS and no daemon change needed.
# A registry that already answers on the port is reused; anything else there is an error.
# Environment: AGENTBOX_REGISTRY_PORT (default 5000), AGENTBOX_REGISTRY_DIR (default <repo>/.tmp/registry),
#              AGENTBOX_DOCKER_IMAGE (default agentbox/busybox:test).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${AGENTBOX_REGISTRY_PORT:-5000}"
STATE_DIR="${AGENTBOX_REGISTRY_DIR:-$ROOT/.tmp/registry}"
IMAGE="${AGENTBOX_DOCKER_IMAGE:-agentbox/busybox:test}"
CONFIG="$STATE_DIR/config.yml"
PID_FILE="$STATE_DIR/registry.pid"
LOG_FILE="$STATE_DIR/registry.log"
ADDRESS="127.0.0.1:$PORT"

say() { echo "provision-registry: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

# The registry API answers on the port (any registry, ours or one started before).
registry_answers() {
  local headers
  headers="$(curl -fsS -o /dev/null -D - --max-time 2 "http://$ADDRESS/v2/" 2>/dev/null)" || return 1
  grep -qi '^docker-distribution-api-version: registry/2' <<<"$headers"
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ||
  die "no Docker daemon answers; run scripts/provision-docker.sh first"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE; run scripts/provision-docker.sh first"

# --- 1 and 2. the registry --------------------------------------------------------------------
if registry_answers; then
  say "a registry already answers on $ADDRESS"
else
  port_taken && die "port $PORT on 127.0.0.1 is taken by something that is not a registry; set AGENTBOX_REGISTRY_PORT"
  if ! command -v docker-registry >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "docker-registry is missing and apt-get is not available"
    [ "$(id -u)" = 0 ] || die "docker-registry is missing; run this script as root to install it"
    say "apt-get install -y docker-registry"
    apt-get update -qq
    # The package's systemd unit is not used (and systemd may not run here).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
  fi
  mkdir -p "$STATE_DIR/data"
  cat >"$CONFIG" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE_DIR/data
  delete:
    enabled: true
http:
  addr: $ADDRESS
EOF
  say "starting docker-registry on $ADDRESS (log: $LOG_FILE)"
  # setsid: the registry must outlive the shell (and the test run) that started it.
  setsid nohup docker-registry serve "$CONFIG" >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 50); do
    registry_answers && break
    sleep 0.2
  done
  registry_answers || die "docker-registry did not answer on $ADDRESS within 10 s; see $LOG_FILE"
fi

# --- 3. the test image in the registry --------------------------------------------------------
REMOTE="$ADDRESS/${IMAGE%%:*}:${IMAGE##*:}"
docker tag "$IMAGE" "$REMOTE"
docker push -q "$REMOTE" >/dev/null || die "docker push $REMOTE failed"
# Only the tag goes: the image itself stays as $IMAGE.
docker rmi "$REMOTE" >/dev/null 2>&1 || say "kept the local tag $REMOTE: a container uses it"
say "$REMOTE is in the registry (pull it with pull: 'missing' or 'always')"
