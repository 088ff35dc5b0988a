#!/usr/bin/env bash
# Everything CI checks: provision the real services the tests use, type-check, lint, then the
# tests of every package and of the example runner, one at a time (2 cores: parallel packages
# would fight over them), on the node on PATH and again on Node 24 (AGENTBOX_SECOND_NODE=<major>,
# or none to skip).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

bash scripts/provision.sh

log "typecheck"
pnpm_cmd -r --reporter=append-only typecheck
log "lint and format check"
pnpm_cmd exec biome check .
log "package check: publint and attw on every packed package"
bash scripts/check-packages.sh

results=$(mktemp -d)
failed=()
# Every package's tests under the node first on PATH; results land in $results/<label>.
run_packages() {
  local label=$1
  export AGENTBOX_TEST_PASS=$2
  mkdir -p "$results/$label"
  for dir in packages/*/ examples/; do
    name=$(node -p "require('./${dir}package.json').name")
    log "test ($label): $name"
    if ! AGENTBOX_TEST_RESULTS="$results/$label" pnpm_cmd --filter "$name" --reporter=append-only test; then
      failed+=("$name ($label)")
    fi
  done
}

run_packages "node $(node --version)" first
# The libraries promise Node 20 and newer: the same tests again on the current LTS (24),
# fetched from the npm registry as its official binary package.
if [ "${AGENTBOX_SECOND_NODE:-24}" != none ]; then
  if node_bin=$(bash scripts/node-runtime.sh "${AGENTBOX_SECOND_NODE:-24}"); then
    PATH="$node_bin:$PATH" run_packages "node $("$node_bin/node" --version)" second
  else
    echo "SKIPPING the second Node.js pass: Node ${AGENTBOX_SECOND_NODE:-24} could not be fetched from the npm registry" >&2
  fi
fi

# One plain closing line over every package: "N passed, N failed, N skipped".
# One line per runtime, then the plain closing line over all of them: "N passed, N failed, N skipped".
node -e '
  const fs = require("fs"), path = require("path");
  const total = { passed: 0, failed: 0, skipped: 0 };
  const line = (t) => `${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`;
  console.log("");
  for (const label of fs.readdirSync(process.argv[1]).sort()) {
    const t = { passed: 0, failed: 0, skipped: 0 };
    for (const f of fs.readdirSync(path.join(process.argv[1], label))) {
      const r = JSON.parse(fs.readFileSync(path.join(process.argv[1], label, f), "utf8"));
      t.passed += r.numPassedTests; t.failed += r.numFailedTests; t.skipped += r.numPendingTests + r.numTodoTests;
    }
    console.log(`${label}: ${line(t)}`);
    for (const k in total) total[k] += t[k];
  }
  console.log(line(total));
' "$results"
rm -rf "$results"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED packages: ${failed[*]}" >&2
  exit 1
fi
