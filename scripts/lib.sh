# Shared helpers for the scripts in this folder (sourced, not run).

# The pinned pnpm: the one on PATH when it is that version, otherwise fetched by npx from the registry.
PNPM_VERSION=12.4.2
pnpm_cmd() {
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$PNPM_VERSION" ]; then
    pnpm "$@"
  else
    npx --yes "pnpm@$PNPM_VERSION" "$@"
  fi
}

log() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
