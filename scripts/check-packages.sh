#!/usr/bin/env bash
# Every publishable package, packed as npm would publish it, passes publint (strict) and
# "are the types wrong" (node16 profile), and ships its LICENSE. Needs a build first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=()
for dir in packages/*/; do
  [ "$(node -p "require('./${dir}package.json').private === true")" = true ] && continue
  name=$(node -p "require('./${dir}package.json').name")
  log "package check: $name"
  tarball=$(cd "$dir" && pnpm_cmd pack --pack-destination "$out" 2>/dev/null | grep '\.tgz$' | tail -n 1)
  ok=1
  tar -tzf "$tarball" >"$out/files"
  grep -qx 'package/LICENSE' "$out/files" || { echo "$name: the tarball has no LICENSE" >&2; ok=0; }
  pnpm_cmd exec publint run --strict "$tarball" || ok=0
  pnpm_cmd exec attw "$tarball" --profile node16 --no-emoji --no-color || ok=0
  [ "$ok" = 1 ] || failed+=("$name")
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "package check FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "package check: every publishable package passes publint and attw"
