#!/usr/bin/env bash
# Everything CI checks: provision the real services the tests use, type-check, lint, then every
# package's tests, one package at a time (2 cores: parallel packages would fight over them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

for provision in scripts/provision-*.sh; do
  log "provision: $provision"
  bash "$provision"
done

log "typecheck"
pnpm_cmd -r --reporter=append-only typecheck
log "lint and format check"
pnpm_cmd exec biome check .

failed=()
for dir in packages/*/; do
  name=$(node -p "require('./${dir}package.json').name")
  log "test: $name"
  if ! pnpm_cmd --filter "$name" --reporter=append-only test; then failed+=("$name"); fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED packages: ${failed[*]}" >&2
  exit 1
fi
log "all packages passed"
