#!/usr/bin/env bash
# Compiles demo/contracts/*.sol into .deps/contracts/<Name>.json
# ({contractName, abi, bytecode, methodIdentifiers, events, compiler}).
# Called by scripts/bootstrap.sh; safe to run by hand.
#
# Idempotent and cached outside the clone, in $SLUICE_CACHE (default ~/.cache/sluice):
#   solc-<version>/          npm solc (solcjs), installed with `npm ci` from
#                            demo/solc/package-lock.json, which pins every package
#                            by version and sha512 integrity
#   contracts-<sha256>/      compiled artifacts, keyed by the sha256 of the .sol
#                            sources, demo/compile.js, the solc version and the
#                            EVM version
# A second run with both present uses no network and takes well under a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
SOLC_VERSION=0.8.30       # must match demo/solc/package.json and package-lock.json
EVM_VERSION=cancun        # anvil 1.7.1 defaults to a later hardfork; cancun runs there

log() { printf 'build_contracts: %s\n' "$*" >&2; }

mkdir -p "$CACHE" "$ROOT/.deps"
LOCK="$ROOT/demo/solc/package-lock.json"
grep -q "\"solc\": \"$SOLC_VERSION\"" "$ROOT/demo/solc/package.json" \
  || { log "demo/solc/package.json does not pin solc $SOLC_VERSION"; exit 1; }

# ---- solc (npm), pinned by the lockfile ------------------------------------------
SOLC_DIR="$CACHE/solc-$SOLC_VERSION"
lock_sum="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ "$(cat "$SOLC_DIR/.ok" 2>/dev/null)" != "$lock_sum" ]; then
  command -v npm >/dev/null 2>&1 || { log "npm is required (run scripts/bootstrap.sh)"; exit 1; }
  log "installing solc $SOLC_VERSION (npm ci, lockfile-pinned)"
  tmp="$SOLC_DIR.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  cp "$ROOT/demo/solc/package.json" "$LOCK" "$tmp/"
  # npm ci installs exactly what the lockfile says and fails on any integrity mismatch.
  (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  got="$(node -p "require('$tmp/node_modules/solc/package.json').version")"
  [ "$got" = "$SOLC_VERSION" ] || { log "npm installed solc $got, expected $SOLC_VERSION"; rm -rf "$tmp"; exit 1; }
  echo "$lock_sum" > "$tmp/.ok"
  rm -rf "$SOLC_DIR"; mv "$tmp" "$SOLC_DIR"
fi

# ---- compile, cached by content --------------------------------------------------
shopt -s nullglob
SOURCES=("$ROOT"/demo/contracts/*.sol)
[ ${#SOURCES[@]} -gt 0 ] || { log "no .sol files in demo/contracts"; exit 1; }
key="$( { for f in "${SOURCES[@]}"; do printf '%s\n' "$(basename "$f")"; cat "$f"; done
          cat "$ROOT/demo/compile.js"; echo "solc=$SOLC_VERSION evm=$EVM_VERSION"; } \
        | sha256sum | cut -c1-16)"
OUT="$CACHE/contracts-$key"
if [ ! -f "$OUT/.ok" ]; then
  log "compiling ${#SOURCES[@]} contracts into $OUT"
  tmp="$OUT.tmp.$$"
  rm -rf "$tmp"
  node "$ROOT/demo/compile.js" "$SOLC_DIR" "$EVM_VERSION" "$tmp" "${SOURCES[@]}"
  touch "$tmp/.ok"
  rm -rf "$OUT"; mv "$tmp" "$OUT"
fi
ln -sfn "$OUT" "$ROOT/.deps/contracts"
