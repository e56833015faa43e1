#!/usr/bin/env bash
# The sluice demo (`make run`, after bootstrap and build): a local chain with
# steady traffic, and sluice extracting it and answering SQL over Flight.
#
#   anvil      127.0.0.1:8545, a block every second          log: .demo/anvil.log
#   traffic    demo/traffic.py: ETH, ERC-20 and ERC-721 txs  log: .demo/traffic.log
#   sluice     build/sluice serve, Flight on 0.0.0.0:1602     data: .demo/data
#
# Every run starts from scratch: .demo/ is deleted first, so both the chain
# (anvil keeps no state on disk) and sluice's data directory are new each time.
# Ctrl-C (or SIGTERM) stops every process this script started, then it exits.
#
# Environment: SLUICE_DEMO_RPC_PORT (8545), SLUICE_DEMO_FLIGHT_PORT (1602),
# SLUICE_BIN (build/sluice).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RPC_PORT="${SLUICE_DEMO_RPC_PORT:-8545}"
FLIGHT_PORT="${SLUICE_DEMO_FLIGHT_PORT:-1602}"
SLUICE_BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
RPC_URL="http://127.0.0.1:$RPC_PORT"
DEMO="$ROOT/.demo"
PY="$ROOT/.venv/bin/python"
ANVIL="$ROOT/.deps/anvil"

log() { printf 'demo: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---- prerequisites --------------------------------------------------------------
[ -x "$ANVIL" ] || die "missing .deps/anvil: run 'make bootstrap' (scripts/bootstrap.sh)"
[ -x "$PY" ] || die "missing .venv: run 'make bootstrap' (scripts/bootstrap.sh)"
[ -f "$ROOT/.deps/contracts/SluiceToken.json" ] \
  || die "missing .deps/contracts: run 'make bootstrap' (it runs demo/build_contracts.sh)"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$RPC_PORT" \
  && die "port $RPC_PORT is already in use (another anvil or node?); stop it first, or set SLUICE_DEMO_RPC_PORT"
port_in_use "$FLIGHT_PORT" \
  && die "port $FLIGHT_PORT is already in use (another sluice?); stop it first, or set SLUICE_DEMO_FLIGHT_PORT"

# ---- process bookkeeping: stop everything we started, whatever happens ----------
PIDS=()        # in start order; stopped in reverse
NAMES=()
GOT_INT=0
# all_exited TENTHS: wait up to TENTHS/10 s for every started process to exit
all_exited() {
  local pid alive
  for _ in $(seq "$1"); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  return 1
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local i pid
  # A Ctrl-C in the terminal reaches the whole process group: let the children
  # shut down on that one signal before sending them a second.
  if [ "$GOT_INT" = 1 ] && [ ${#PIDS[@]} -gt 0 ] && all_exited 30; then
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    exit "$status"
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    kill -0 "$pid" 2>/dev/null && { log "stopping ${NAMES[$i]} (pid $pid)"; kill -TERM "$pid" 2>/dev/null || true; }
  done
  # give them 10 s to exit, then SIGKILL what is left
  if [ ${#PIDS[@]} -gt 0 ] && ! all_exited 100; then
    for ((i = 0; i < ${#PIDS[@]}; i++)); do
      pid="${PIDS[$i]}"
      kill -0 "$pid" 2>/dev/null && { log "${NAMES[$i]} did not stop; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    done
  fi
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  exit "$status"
}
trap cleanup EXIT
trap 'GOT_INT=1; exit 130' INT
trap 'exit 143' TERM

started() { PIDS+=("$1"); NAMES+=("$2"); }

# ---- fresh state (chain and data directory both start empty every run) -----------
rm -rf "$DEMO"
mkdir -p "$DEMO"

# ---- anvil -----------------------------------------------------------------------
log "starting anvil on 127.0.0.1:$RPC_PORT (a block every second; log .demo/anvil.log)"
"$ANVIL" --host 127.0.0.1 --port "$RPC_PORT" --block-time 1 --silent >"$DEMO/anvil.log" 2>&1 &
ANVIL_PID=$!
started "$ANVIL_PID" anvil

rpc_ready() {
  "$PY" - "$RPC_URL" <<'EOF' 2>/dev/null
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Content-Type": "application/json"},
    data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode())
with urllib.request.urlopen(req, timeout=1) as r:
    sys.exit(0 if json.loads(r.read()).get("result") else 1)
EOF
}
for i in $(seq 100); do
  kill -0 "$ANVIL_PID" 2>/dev/null || { tail -n 20 "$DEMO/anvil.log" >&2; die "anvil exited at start (see .demo/anvil.log)"; }
  rpc_ready && break
  [ "$i" = 100 ] && die "anvil did not answer eth_chainId on $RPC_URL within 20 s"
  sleep 0.2
done
log "anvil answers on $RPC_URL"

# ---- traffic ---------------------------------------------------------------------
log "starting demo/traffic.py (log .demo/traffic.log)"
"$PY" "$ROOT/demo/traffic.py" --rpc-url "$RPC_URL" --state-out "$DEMO/contracts.json" \
  >"$DEMO/traffic.log" 2>&1 &
started $! traffic

# ---- sluice ----------------------------------------------------------------------
if [ ! -x "$SLUICE_BIN" ]; then
  log "$SLUICE_BIN not found (run 'make build'); the chain and its traffic run without sluice."
  log "Ctrl-C to stop."
  wait "$ANVIL_PID"
  exit $?
fi

log "starting sluice: Flight on 0.0.0.0:$FLIGHT_PORT, data in .demo/data"
"$SLUICE_BIN" serve --config "$ROOT/demo/config.toml" --rpc-url "$RPC_URL" --data-dir "$DEMO/data" --flight-addr "0.0.0.0:$FLIGHT_PORT" &
SLUICE_PID=$!
started "$SLUICE_PID" sluice

for _ in $(seq 150); do
  kill -0 "$SLUICE_PID" 2>/dev/null || break
  port_in_use "$FLIGHT_PORT" && break
  sleep 0.2
done
if kill -0 "$SLUICE_PID" 2>/dev/null; then
  cat >&2 <<EOF

demo: sluice is serving $RPC_URL over Arrow Flight at grpc://localhost:$FLIGHT_PORT
      Chain: .demo/anvil.log   traffic: .demo/traffic.log   data: .demo/data
      First query, from another terminal in $ROOT:

  .venv/bin/python -c 'import pyarrow.flight as fl; c = fl.connect("grpc://localhost:$FLIGHT_PORT"); info = c.get_flight_info(fl.FlightDescriptor.for_command(b"SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num DESC LIMIT 5")); print(c.do_get(info.endpoints[0].ticket).read_pandas())'

  build/sluice query "SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num DESC LIMIT 5"

      Ctrl-C stops sluice, the traffic and the chain.

EOF
fi

set +e
wait "$SLUICE_PID"
status=$?
set -e
log "sluice exited with status $status"
exit "$status"
