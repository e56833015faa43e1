#!/usr/bin/env bash
# Installs everything sluice needs to build, run and test. Idempotent: a second
# run with everything present does no network access and takes about a second.
#
# Downloads are cached outside the clone in $SLUICE_CACHE (default
# ~/.cache/sluice); the clone gets only links to them:
#   .venv/            Python virtual environment (pyarrow: Arrow C++ headers + libs)
#   .deps/duckdb/     libduckdb.so + duckdb.h (DuckDB C API)
#   .deps/anvil       the anvil binary (local Ethereum node)
#   .deps/geth        geth, built from the Go module proxy (go install; needs Go >= 1.24)
#   .deps/minio       the MinIO server (object store of the cluster tests and make run-cluster)
#   .deps/contracts/  compiled demo contracts (built by demo/build_contracts.sh)
#   the third-party clients the tests run (scripts/install_clients.sh): spicepy,
#   the Amp TypeScript SDK, spice.js, the Flight SQL JDBC driver, arrow-go
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
mkdir -p "$CACHE" "$ROOT/.deps"

# ---- pinned versions and checksums (sha256 of the npm tarballs) ----------------
PYARROW_VERSION=26.0.1
DUCKDB_VERSION=1.4.4
DUCKDB_LIB_PKG="@duckdb/node-bindings-linux-x64@1.4.4-r.4"
DUCKDB_LIB_SHA256=732fac4dc6b8f198870b9c4bb6ddf13544466daca00ad28ba2f1d80de5d7aa4b
DUCKDB_SRC_PKG="duckdb@1.4.4"
DUCKDB_SRC_SHA256=5bb967dcbcd517670ba5f169f238fb9d6787e53752c60ebe24386169d76941ed
ANVIL_VERSION=1.7.1
ANVIL_PKG="@foundry-rs/anvil-linux-amd64@1.7.1"
ANVIL_SHA256=5727dd8f08f3bf6dde4ec1d9832e87c43f9315ef824bff1ab18486bf51bc7af3
# geth: built once with `go install` (the module proxy checks the module's hashes
# against the checksum database), cached in $CACHE/geth-$GETH_VERSION.
GETH_VERSION=1.17.10
# MinIO, built from source through the Go module proxy (go.sum pins every module).
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

APT_PACKAGES=(g++ cmake ninja-build ccache pkg-config libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libsimdjson-dev libtomlplusplus-dev libcli11-dev libspdlog-dev
  libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev libcrypto++-dev
  zlib1g-dev openssl
  # Fuzzing (libFuzzer) and the sanitizer builds: make fuzz, make test-asan, make test-tsan.
  clang-16 libclang-rt-16-dev)
APT_PACKAGES+=(curl)  # the curl examples of docs/http.md run in tests/python/test_docs_http.py
# The distributed roles (docs/deploy.md): PostgreSQL metadata through libpq; the
# tests and make run-cluster start throwaway PostgreSQL clusters (initdb, pg_ctl).
APT_PACKAGES+=(libpq-dev postgresql)

log() { printf 'bootstrap: %s\n' "$*" >&2; }

# ---- Debian packages ----------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm and venv may come from elsewhere (nodesource, pyenv): ask Debian only if absent.
command -v npm >/dev/null 2>&1 || missing+=(npm)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- npm tarballs, verified -----------------------------------------------------
# fetch_npm PKG SHA256 DEST: npm pack PKG into the cache, check its sha256, unpack into DEST.
fetch_npm() {
  local pkg="$1" sum="$2" dest="$3"
  [ -f "$dest/.ok" ] && return 0
  local dl="$CACHE/npm"; mkdir -p "$dl"
  local tgz
  tgz="$(cd "$dl" && npm pack --silent "$pkg" 2>/dev/null | tail -n1)"
  echo "$sum  $dl/$tgz" | sha256sum -c --quiet - || { log "checksum mismatch for $pkg"; rm -f "$dl/$tgz"; exit 1; }
  rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
  tar xzf "$dl/$tgz" -C "$dest.tmp"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"; touch "$dest/.ok"
}

DUCK="$CACHE/duckdb-$DUCKDB_VERSION"
if [ ! -f "$DUCK/.ok" ]; then
  log "fetching DuckDB $DUCKDB_VERSION (libduckdb.so and headers)"
  fetch_npm "$DUCKDB_LIB_PKG" "$DUCKDB_LIB_SHA256" "$CACHE/npm-duckdb-lib-$DUCKDB_VERSION"
  fetch_npm "$DUCKDB_SRC_PKG" "$DUCKDB_SRC_SHA256" "$CACHE/npm-duckdb-src-$DUCKDB_VERSION"
  rm -rf "$DUCK.tmp"; mkdir -p "$DUCK.tmp/lib" "$DUCK.tmp/include"
  cp "$CACHE/npm-duckdb-lib-$DUCKDB_VERSION/package/libduckdb.so" "$DUCK.tmp/lib/"
  cp "$CACHE/npm-duckdb-src-$DUCKDB_VERSION/package/src/duckdb/src/include/duckdb.h" "$DUCK.tmp/include/"
  rm -rf "$CACHE/npm-duckdb-src-$DUCKDB_VERSION"   # 60 MB of sources we no longer need
  rm -rf "$DUCK"; mv "$DUCK.tmp" "$DUCK"; touch "$DUCK/.ok"
fi
ln -sfn "$DUCK" "$ROOT/.deps/duckdb"

ANVIL_DIR="$CACHE/anvil-$ANVIL_VERSION"
if [ ! -f "$ANVIL_DIR/.ok" ]; then
  log "fetching anvil $ANVIL_VERSION"
  fetch_npm "$ANVIL_PKG" "$ANVIL_SHA256" "$ANVIL_DIR"
fi
chmod +x "$ANVIL_DIR/package/bin/anvil"
ln -sfn "$ANVIL_DIR/package/bin/anvil" "$ROOT/.deps/anvil"

# Go builds geth and MinIO below (once each; the binaries are cached).
GO="$(command -v go || true)"
[ -z "$GO" ] && [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go

# ---- geth (go install from the Go module proxy; about 10 minutes the first time) --
GETH_DIR="$CACHE/geth-$GETH_VERSION"
geth_ok() {
  local out
  out="$("$GETH_DIR/bin/geth" version 2>/dev/null)" || return 1
  grep -qx "Version: $GETH_VERSION-stable" <<<"$out"
}
if ! geth_ok; then
  [ -n "$GO" ] || { log "geth $GETH_VERSION needs Go (>= 1.24) to build: install Go, or put it on PATH"; exit 1; }
  log "building geth $GETH_VERSION with $("$GO" version | cut -d' ' -f3) (once; cached in $GETH_DIR)"
  mkdir -p "$GETH_DIR/bin" "$CACHE/go"
  GOPATH="$CACHE/go" GOBIN="$GETH_DIR/bin" GOFLAGS=-modcacherw \
    nice "$GO" install "github.com/ethereum/go-ethereum/cmd/geth@v$GETH_VERSION"
  geth_ok || { log "geth built in $GETH_DIR/bin does not say version $GETH_VERSION"; exit 1; }
fi
ln -sfn "$GETH_DIR/bin/geth" "$ROOT/.deps/geth"

# ---- MinIO (S3-compatible object store for the cluster tests) ---------------------
# `go install` of the pinned version, about 3 minutes once; the binary is cached.
MINIO_DIR="$CACHE/minio-$MINIO_VERSION"
if [ ! -x "$MINIO_DIR/minio" ]; then
  [ -n "$GO" ] || { log "MinIO needs Go (go install $MINIO_MODULE); install Go 1.24 or newer"; exit 1; }
  log "building MinIO $MINIO_VERSION with go install (a few minutes, once)"
  rm -rf "$MINIO_DIR.tmp"; mkdir -p "$MINIO_DIR.tmp"
  (cd "$MINIO_DIR.tmp" && GOBIN="$MINIO_DIR.tmp" GOMODCACHE="$CACHE/go/pkg/mod" GOFLAGS="-modcacherw -buildvcs=false" \
    nice "$GO" install "$MINIO_MODULE@$MINIO_VERSION")
  rm -rf "$MINIO_DIR"; mv "$MINIO_DIR.tmp" "$MINIO_DIR"
fi
ln -sfn "$MINIO_DIR/minio" "$ROOT/.deps/minio"

# ---- Python virtual environment -----------------------------------------------
VENV="$ROOT/.venv"
REQ="$ROOT/scripts/requirements.txt"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  log "creating Python environment in .venv"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --cache-dir "$CACHE/pip" -r "$REQ"
  "$VENV/bin/python" -c "import pyarrow; pyarrow.create_library_symlinks()"
  echo "$want" > "$STAMP"
fi

# ---- third-party clients the tests run (scripts/install_clients.sh) ---------------
SLUICE_CACHE="$CACHE" bash "$ROOT/scripts/install_clients.sh"

# ---- demo contracts (compiled from Solidity with npm solc) ----------------------
if [ -x "$ROOT/demo/build_contracts.sh" ]; then
  SLUICE_CACHE="$CACHE" "$ROOT/demo/build_contracts.sh"
fi

