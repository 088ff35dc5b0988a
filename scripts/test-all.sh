#!/usr/bin/env bash
# Everything CI checks: provision the real services the tests use, type-check, lint, then every
# package's tests, one package at a time (2 cores: parallel packages would fight over them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

bash scripts/provision.sh

log "typecheck"
pnpm_cmd -r --reporter=append-only typecheck
log "lint and format check"
pnpm_cmd exec biome check .

results=$(mktemp -d)
failed=()
for dir in packages/*/; do
  name=$(node -p "require('./${dir}package.json').name")
  log "test: $name"
  if ! AGENTBOX_TEST_RESULTS="$results" pnpm_cmd --filter "$name" --reporter=append-only test; then
    failed+=("$name")
  fi
done

# One plain closing line over every package: "N passed, N failed, N skipped".
node -e '
  const fs = require("fs"), path = require("path");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(path.join(process.argv[1], f), "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$results"
rm -rf "$results"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED packages: ${failed[*]}" >&2
  exit 1
fi
