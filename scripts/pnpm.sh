#!/usr/bin/env bash
# The pinned pnpm, for the root package.json scripts: works on a machine with only Node and npm.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pnpm_cmd "$@"
