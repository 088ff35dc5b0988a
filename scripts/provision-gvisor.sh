#!/usr/bin/env bash
# Provision gVisor for the Docker backend's `runtime: 'runsc'`, idempotently (run as root):
#   1. Debian's `runsc` package (apt) when runsc is missing;
#   2. the runtime registered in the RUNNING dockerd: a `runsc` entry merged into
#      /etc/docker/daemon.json (what else it holds is kept) and a SIGHUP, which makes dockerd
#      reload its runtimes live. dockerd is never restarted and no second daemon is started:
#      other work uses this one, and a second daemon on one host took the first one's docker0.
# `--platform=ptrace`: the KVM platform hangs in VMs without nested virtualisation.
# `--network=none`: gVisor's own network stack cannot run a container in NetworkMode none
# (the sandbox keeps its loopback). Where any step is impossible it says so loudly and exits 0:
# the runsc tests then skip, naming the reason.
set -euo pipefail

DAEMON_JSON="${AGENTBOX_DAEMON_JSON:-/etc/docker/daemon.json}"
RUNTIME=runsc

say() { echo "provision-gvisor: $*" >&2; }
skip() {
  say "SKIPPED: $*; the runsc tests will be skipped"
  exit 0
}

docker info >/dev/null 2>&1 || skip "no docker daemon answers (scripts/provision-docker.sh starts one)"

# Registered already (by us or by the operator, with any arguments): nothing to do.
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q "\"$RUNTIME\""; then
  say "dockerd already has the $RUNTIME runtime"
  exit 0
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
  skip "DOCKER_HOST=$DOCKER_HOST is not a local daemon; register runsc on that host yourself"
fi
[ "$(id -u)" = 0 ] || skip "not root: cannot install runsc or edit $DAEMON_JSON"

RUNSC="$(command -v runsc || true)"
if [ -z "$RUNSC" ]; then
  command -v apt-get >/dev/null 2>&1 || skip "runsc is missing and apt-get is not available"
  say "installing Debian's runsc"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runsc >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runsc >/dev/null; } ||
    skip "apt-get could not install runsc"
  RUNSC="$(command -v runsc || true)"
  [ -n "$RUNSC" ] || skip "the runsc package installed no runsc on PATH"
fi

DOCKERD_PID="$(pidof dockerd || true)"
case "$DOCKERD_PID" in
  '' | *' '*) skip "cannot tell which dockerd to reload (pidof dockerd: '${DOCKERD_PID}')" ;;
esac
# A daemon started with its own --config-file reads another file: never edit the wrong one.
if tr '\0' '\n' <"/proc/$DOCKERD_PID/cmdline" | grep -q -- '^--config-file'; then
  skip "dockerd runs with its own --config-file; add the $RUNTIME runtime there"
fi

# Merge, never overwrite: every other key (and every other runtime) stays as it was.
mkdir -p "$(dirname "$DAEMON_JSON")"
node - "$DAEMON_JSON" "$RUNTIME" "$RUNSC" <<'EOF'
const fs = require('fs');
const [file, name, path] = process.argv.slice(2);
let config = {};
if (fs.existsSync(file)) {
  const text = fs.readFileSync(file, 'utf8');
  if (text.trim() !== '') config = JSON.parse(text);
  fs.copyFileSync(file, `${file}.agentbox-backup`);
}
config.runtimes = { ...(config.runtimes ?? {}) };
config.runtimes[name] = { path, runtimeArgs: ['--platform=ptrace', '--network=none'] };
const tmp = `${file}.agentbox-tmp`;
fs.writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`);
fs.renameSync(tmp, file);
EOF
say "registered $RUNTIME ($RUNSC --platform=ptrace --network=none) in $DAEMON_JSON; reloading dockerd (SIGHUP)"
kill -HUP "$DOCKERD_PID"
for _ in $(seq 1 40); do
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q "\"$RUNTIME\""; then
    say "dockerd has the $RUNTIME runtime"
    exit 0
  fi
  sleep 0.25
done
skip "dockerd did not pick up the $RUNTIME runtime after SIGHUP (see its log)"
