#!/usr/bin/env bash
# Start (installing if needed) every real service the tests and benchmarks use. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
for provision in scripts/provision-*.sh; do
  log "provision: $provision"
  bash "$provision"
done
