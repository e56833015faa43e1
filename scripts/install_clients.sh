#!/usr/bin/env bash
# Installs the third-party clients that the integration tests run against sluice
# (tests/python/test_client_*.py; docs/clients.md). Called by scripts/bootstrap.sh;
# safe to run by hand. Each comes from its own registry, pinned, and is cached in
# $SLUICE_CACHE (default ~/.cache/sluice); the clone gets links:
#
#   tests/clients/js/node_modules   npm: @edgeandnode/amp 0.0.51 with its peer
#                                   dependencies, @spiceai/spice 3.2.0 (npm ci from
#                                   tests/clients/js/package-lock.json, every package
#                                   pinned by version and sha512 integrity)
#   .deps/flight-sql-jdbc-driver.jar  Maven Central: org.apache.arrow:flight-sql-jdbc-driver
#                                   18.3.0 (sha256 checked)
#   .deps/sluice-go-client          tests/clients/go built against arrow-go v18.9.0 from
#                                   the Go module proxy (go.sum checked), once per source
#   .venv: spicepy 2.0.0            from ../shared/peers/spicepy-2.0.0-aef0011.tar.gz
#                                   (pip --no-deps; never PyPI's unrelated "spicepy"),
#                                   when that file is there
#
# A client whose toolchain (node, java + mvn, go) is missing is skipped with a
# message; its tests then skip naming it. A second run with everything present
# uses no network and takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
mkdir -p "$CACHE" "$ROOT/.deps"
log() { printf 'install_clients: %s\n' "$*" >&2; }

JDBC_VERSION=18.3.0
JDBC_SHA256=3f418b46c880e263558c5de669bdbede2c5d4375527ced116fb29f795b03704c
SPICEPY_FILE=spicepy-2.0.0-aef0011.tar.gz

# ---- npm: the Amp TypeScript SDK and spice.js ----------------------------------------
JS="$ROOT/tests/clients/js"
if command -v npm >/dev/null 2>&1; then
  lock_sum="$(cat "$JS/package.json" "$JS/package-lock.json" | sha256sum | cut -c1-16)"
  JS_DIR="$CACHE/js-clients-$lock_sum"
  if [ ! -f "$JS_DIR/.ok" ]; then
    log "installing the JavaScript clients (npm ci, lockfile-pinned) into $JS_DIR"
    tmp="$JS_DIR.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    cp "$JS/package.json" "$JS/package-lock.json" "$tmp/"
    (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
       --cache "$CACHE/npm-cache" >/dev/null)
    touch "$tmp/.ok"
    rm -rf "$JS_DIR"; mv "$tmp" "$JS_DIR"
  fi
  ln -sfn "$JS_DIR/node_modules" "$JS/node_modules"
else
  log "npm not found: the Amp SDK and spice.js tests will be skipped"
fi

# ---- Maven Central: the Arrow Flight SQL JDBC driver ------------------------------------
JAR="$CACHE/jdbc-$JDBC_VERSION/flight-sql-jdbc-driver-$JDBC_VERSION.jar"
if [ ! -f "$JAR" ]; then
  if command -v mvn >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then
    log "fetching flight-sql-jdbc-driver $JDBC_VERSION from Maven Central"
    tmp="$CACHE/jdbc-$JDBC_VERSION.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" dependency:copy \
      -Dartifact="org.apache.arrow:flight-sql-jdbc-driver:$JDBC_VERSION" \
      -DoutputDirectory="$tmp" >&2
    echo "$JDBC_SHA256  $tmp/flight-sql-jdbc-driver-$JDBC_VERSION.jar" | sha256sum -c --quiet - \
      || { log "checksum mismatch for flight-sql-jdbc-driver $JDBC_VERSION"; rm -rf "$tmp"; exit 1; }
    rm -rf "$CACHE/jdbc-$JDBC_VERSION"; mv "$tmp" "$CACHE/jdbc-$JDBC_VERSION"
  else
    log "java or mvn not found: the JDBC tests will be skipped"
  fi
fi
[ -f "$JAR" ] && ln -sfn "$JAR" "$ROOT/.deps/flight-sql-jdbc-driver.jar"

# ---- Go module proxy: arrow-go's Flight SQL client, in a small test program ----------------
GO="$(command -v go || true)"
[ -z "$GO" ] && [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go
GOSRC="$ROOT/tests/clients/go"
if [ -n "$GO" ]; then
  key="$(cat "$GOSRC/go.mod" "$GOSRC/go.sum" "$GOSRC"/*.go | sha256sum | cut -c1-16)"
  GO_DIR="$CACHE/go-client-$key"
  if [ ! -f "$GO_DIR/.ok" ]; then
    log "building the Go Flight SQL client (arrow-go, pinned by go.sum) into $GO_DIR"
    tmp="$GO_DIR.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    (cd "$GOSRC" && GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS="-mod=readonly -buildvcs=false" \
       "$GO" build -o "$tmp/sluice-go-client" .)
    touch "$tmp/.ok"
    rm -rf "$GO_DIR"; mv "$tmp" "$GO_DIR"
  fi
  ln -sfn "$GO_DIR/sluice-go-client" "$ROOT/.deps/sluice-go-client"
else
  log "go not found: the Go Flight SQL client tests will be skipped"
fi

# ---- spicepy, from ../shared/peers (not on PyPI under that name) --------------------------
SPICEPY="$ROOT/../shared/peers/$SPICEPY_FILE"
VENV="$ROOT/.venv"
if [ -f "$SPICEPY" ]; then
  sum="$(sha256sum "$SPICEPY" | cut -d' ' -f1)"
  if [ "$(cat "$VENV/.spicepy.sha256" 2>/dev/null)" != "$sum" ]; then
    WHEELS="$CACHE/spicepy-${sum:0:16}"
    if [ ! -f "$WHEELS/.ok" ]; then
      log "building spicepy from $SPICEPY_FILE"
      rm -rf "$WHEELS"; mkdir -p "$WHEELS"
      "$VENV/bin/pip" wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
        --no-index -w "$WHEELS" "$SPICEPY"
      touch "$WHEELS/.ok"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-index \
      --force-reinstall "$WHEELS"/spicepy-*.whl
    echo "$sum" > "$VENV/.spicepy.sha256"
  fi
else
  log "../shared/peers/$SPICEPY_FILE not found: the spicepy tests will be skipped"
fi
