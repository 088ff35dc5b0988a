#!/usr/bin/env bash
# Install the workspace dependencies with the pinned pnpm and build the packages, doing only
# what changed: the install runs when the lockfile or a package.json changed since the last one
# (or node_modules is missing); a package builds when its sources, its build config, the
# lockfile or a workspace dependency changed since its last build (scripts/build-state.mjs keeps
# the stamps). Idempotent. Progress goes to stderr, so stdout is the caller's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
say() { echo "bootstrap: $*" >&2; }

if node scripts/build-state.mjs install-needed; then
  say "installing dependencies (pnpm install --frozen-lockfile)"
  # pipefail: a failed install stops here (grep only drops the progress lines).
  pnpm_cmd install --frozen-lockfile --reporter=append-only | { grep -v '^Progress' || true; } >&2
  node scripts/build-state.mjs install-stamp
else
  say "dependencies up to date"
fi

mapfile -t stale < <(node scripts/build-state.mjs stale)
if [ "${#stale[@]}" -eq 0 ]; then
  say "packages up to date"
  exit 0
fi
filters=()
stamps=()
for line in "${stale[@]}"; do
  filters+=(--filter "${line%% *}")
  stamps+=("${line%% *}=${line##* }")
done
say "building ${#stale[@]} package(s): $(printf '%s ' "${stale[@]%% *}")"
pnpm_cmd "${filters[@]}" --reporter=append-only build >&2
node scripts/build-state.mjs stamp "${stamps[@]}"
