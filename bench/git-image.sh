#!/usr/bin/env bash
# The docker image of the workload benchmark: the test image plus this host's git and the
# shared libraries it links (no registry is reachable here, so nothing is pulled). Prints the
# image name. Rebuilt only when git, the base image or this script changed.
set -euo pipefail

BASE="${1:-agentbox/busybox:test}"
IMAGE=agentbox/git:bench
GIT="$(command -v git)" || { echo "git-image: no git on this host" >&2; exit 1; }
HASH="$( (sha256sum "$GIT" "${BASH_SOURCE[0]}" | awk '{print $1}'; docker image inspect -f '{{.Id}}' "$BASE") | sha256sum | cut -c1-16)"
if [ "$(docker image inspect -f '{{ index .Config.Labels "agentbox.build-hash" }}' "$IMAGE" 2>/dev/null)" = "$HASH" ]; then
  echo "$IMAGE"
  exit 0
fi
CTX="$(mktemp -d)"
trap 'rm -rf "$CTX"' EXIT
mkdir "$CTX/root"
# git and what the loader needs for it: the libraries ldd names (resolved), and the loader.
for f in "$GIT" $(ldd "$GIT" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  cp --parents -L "$f" "$CTX/root"
done
# The helpers git runs by path for some commands; hard links stay links in the layer.
tar -C / -cf - usr/lib/git-core | tar -C "$CTX/root" -xf -
printf 'FROM %s\nCOPY root/ /\n' "$BASE" > "$CTX/Dockerfile"
docker build -q --label agentbox.creator=agentbox --label agentbox.role=bench-image \
  --label "agentbox.build-hash=$HASH" -t "$IMAGE" "$CTX" 2>&1 >/dev/null | grep -v -e DEPRECATED -e 'legacy builder' -e buildx -e '^ *$' >&2 || true
[ "$(docker image inspect -f '{{ index .Config.Labels "agentbox.build-hash" }}' "$IMAGE" 2>/dev/null)" = "$HASH" ] ||
  { echo "git-image: docker build of $IMAGE failed" >&2; exit 1; }
echo "$IMAGE"
