#!/usr/bin/env bash
# Everything CI checks: provision the real services the tests use, type-check, lint, then the
# tests of every package and of the example runner, in two lanes (below), on the node on PATH and
# again on Node 24 (AGENTBOX_SECOND_NODE=<major>, or none to skip).
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
# The tests wait on dockerd, sshd and the emulators far more than they compute (a whole run keeps
# about half a core busy), so two lanes run side by side: one with the packages whose tests drive
# Docker hardest, one with the rest. Each package's output is printed whole when it ends.
print_lock="$results/.print-lock"
run_lane() {
  local label=$1
  shift
  for dir in "$@"; do
    local name output
    name=$(node -p "require('./${dir}/package.json').name")
    output="$results/.${name//[@\/]/_} ($label).log"
    if ! AGENTBOX_TEST_RESULTS="$results/$label" pnpm_cmd --filter "$name" --reporter=append-only test >"$output" 2>&1; then
      echo "$name ($label)" >>"$results/.failed"
    fi
    flock "$print_lock" sh -c 'printf "\n\033[1m== test (%s): %s\033[0m\n" "$1" "$2"; cat "$3"' sh "$label" "$name" "$output"
    rm -f "$output"
  done
}

# Every package's tests under the node first on PATH; results land in $results/<label>.
# The Docker lane lists its packages; the other lane takes every other package (so a new package is
# never left out), the slow ones first, so that the two lanes end at about the same time.
run_packages() {
  local label=$1 docker_lane=$3 slow_first=$4
  export AGENTBOX_TEST_PASS=$2
  mkdir -p "$results/$label"
  local other_lane=() dir
  for dir in $slow_first packages/*/ examples/; do
    dir=${dir%/}
    case " $docker_lane ${other_lane[*]} " in *" $dir "*) continue ;; esac
    other_lane+=("$dir")
  done
  # shellcheck disable=SC2086 # the lane is a list of words
  run_lane "$label" $docker_lane &
  run_lane "$label" "${other_lane[@]}" &
  wait
}

# Lanes balanced by measured times (each about 25 minutes in the first pass). The kubernetes
# backend needs Node 22.19 or newer (client-node 2), so its suites run in the second pass only.
run_packages "node $(node --version)" first \
  "packages/backend-docker packages/backend-modal packages/backend-daytona" \
  "packages/backend-vercel packages/backend-ssh packages/cli examples packages/backend-singularity packages/backend-local"
# The libraries promise Node 20 and newer: the same tests again on the current LTS (24),
# fetched from the npm registry as its official binary package.
if [ "${AGENTBOX_SECOND_NODE:-24}" != none ]; then
  if node_bin=$(bash scripts/node-runtime.sh "${AGENTBOX_SECOND_NODE:-24}"); then
    # The conformance suites ran in the first pass: what is left is spread differently.
    PATH="$node_bin:$PATH" run_packages "node $("$node_bin/node" --version)" second \
      "packages/backend-kubernetes packages/core packages/backend-vercel packages/backend-daytona packages/backend-modal examples packages/agent packages/emulators packages/conformance" \
      "packages/backend-docker packages/cli packages/backend-ssh packages/backend-local packages/backend-singularity"
  else
    echo "SKIPPING the second Node.js pass: Node ${AGENTBOX_SECOND_NODE:-24} could not be fetched from the npm registry" >&2
  fi
fi

# Each failed test again with the start of its message (a CI log shows only its tail), one line
# per runtime, then the plain closing line over all of them: "N passed, N failed, N skipped".
node -e '
  const fs = require("fs"), path = require("path");
  const total = { passed: 0, failed: 0, skipped: 0 };
  const line = (t) => `${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`;
  const plain = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
  const labels = fs.readdirSync(process.argv[1], { withFileTypes: true }).filter((e) => e.isDirectory());
  const counts = [];
  console.log("");
  for (const label of labels.map((e) => e.name).sort()) {
    const t = { passed: 0, failed: 0, skipped: 0 };
    for (const f of fs.readdirSync(path.join(process.argv[1], label))) {
      const r = JSON.parse(fs.readFileSync(path.join(process.argv[1], label, f), "utf8"));
      t.passed += r.numPassedTests; t.failed += r.numFailedTests; t.skipped += r.numPendingTests + r.numTodoTests;
      for (const file of r.testResults) {
        if (file.status === "failed" && file.assertionResults.every((a) => a.status !== "failed"))
          console.log(`FAILED (${label}) ${f}: ${path.basename(file.name)}: ${plain(file.message || "").slice(0, 600)}`);
        for (const a of file.assertionResults)
          if (a.status === "failed")
            console.log(`FAILED (${label}) ${f}: ${a.fullName}\n  ${plain((a.failureMessages || []).join(" ")).slice(0, 600).replace(/\n/g, "\n  ")}`);
      }
    }
    counts.push(`${label}: ${line(t)}`);
    for (const k in total) total[k] += t[k];
  }
  console.log(counts.join("\n"));
  console.log(line(total));
' "$results"
failed=$(cat "$results/.failed" 2>/dev/null || true)
rm -rf "$results"
if [ -n "$failed" ]; then
  echo "FAILED packages: $(echo "$failed" | paste -sd ' ')" >&2
  exit 1
fi
