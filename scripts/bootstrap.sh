#!/usr/bin/env bash
# Install every workspace dependency with the pinned pnpm and build all packages. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
pnpm_cmd install --frozen-lockfile --reporter=append-only | grep -v '^Progress' || true
pnpm_cmd -r --reporter=append-only build
