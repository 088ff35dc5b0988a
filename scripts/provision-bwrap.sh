#!/usr/bin/env bash
# Provision bubblewrap, idempotently: the local backend's isolated mode (isolation 'bwrap') and
# the SSH backend's per-sandbox jails on the (here: local) SSH host use it. apt-get installs
# Debian's `bubblewrap` when bwrap is missing; then a probe checks that this machine lets an
# unprivileged user create the namespaces it needs, and says so loudly when it does not.
set -euo pipefail

say() { echo "provision-bwrap: $*" >&2; }

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing bubblewrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap >/dev/null; }
  else
    say "SKIPPED: bwrap is missing and this is not root with apt-get; the bubblewrap tests will be skipped"
    exit 0
  fi
fi
for tool in nsenter setpriv; do
  command -v "$tool" >/dev/null 2>&1 || say "WARNING: $tool (util-linux) is missing: bubblewrap isolation will be unavailable"
done

probe() { bwrap --unshare-user --unshare-pid --unshare-net --ro-bind / / true 2>&1; }
if out="$(probe)"; then
  say "bubblewrap $(bwrap --version | awk '{print $2}') works"
else
  say "WARNING: bubblewrap cannot create namespaces here ($out); isolation 'bwrap' will refuse to open"
fi
