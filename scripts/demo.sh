#!/usr/bin/env bash
# The sluice demo (`make run`, after bootstrap and build): two local chains with
# steady traffic, and sluice following both (two datasets of one server) and
# answering SQL over Flight.
#
#   anvil      127.0.0.1:8545, a block every second          log: .demo/anvil.log
#   geth       127.0.0.1:8546, geth --dev, a block a second  log: .demo/geth.log
#   traffic    demo/traffic.py on each: ETH, ERC-20, ERC-721  logs: .demo/traffic*.log
#   sluice     build/sluice serve, Flight on 0.0.0.0:1602     data: .demo/data
#              datasets eth_rpc (anvil), geth_rpc (geth)      config: .demo/config.toml
#
# Every run starts from scratch: .demo/ is deleted first, so the chains and
# sluice's data directory are new each time.
# Ctrl-C (or SIGTERM) stops every process this script started, then it exits.
#
# Environment: SLUICE_DEMO_RPC_PORT (8545), SLUICE_DEMO_GETH_PORT (8546),
# SLUICE_DEMO_FLIGHT_PORT (1602), SLUICE_BIN (build/sluice).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RPC_PORT="${SLUICE_DEMO_RPC_PORT:-8545}"
GETH_PORT="${SLUICE_DEMO_GETH_PORT:-8546}"
FLIGHT_PORT="${SLUICE_DEMO_FLIGHT_PORT:-1602}"
SLUICE_BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
RPC_URL="http://127.0.0.1:$RPC_PORT"
GETH_URL="http://127.0.0.1:$GETH_PORT"
DEMO="$ROOT/.demo"
PY="$ROOT/.venv/bin/python"
ANVIL="$ROOT/.deps/anvil"
GETH="$ROOT/.deps/geth"

log() { printf 'demo: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---- prerequisites --------------------------------------------------------------
[ -x "$ANVIL" ] || die "missing .deps/anvil: run 'make bootstrap' (scripts/bootstrap.sh)"
[ -x "$GETH" ] || die "missing .deps/geth: run 'make bootstrap' (scripts/bootstrap.sh)"
[ -x "$PY" ] || die "missing .venv: run 'make bootstrap' (scripts/bootstrap.sh)"
[ -f "$ROOT/.deps/contracts/SluiceToken.json" ] \
  || die "missing .deps/contracts: run 'make bootstrap' (it runs demo/build_contracts.sh)"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$RPC_PORT" \
  && die "port $RPC_PORT is already in use (another anvil or node?); stop it first, or set SLUICE_DEMO_RPC_PORT"
port_in_use "$GETH_PORT" \
  && die "port $GETH_PORT is already in use (another geth or node?); stop it first, or set SLUICE_DEMO_GETH_PORT"
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
# anvil keeps old states under $HOME/.foundry/anvil/tmp and never deletes them:
# give it a home in .demo, which the next run starts afresh.
mkdir -p "$DEMO/anvil-home"
HOME="$DEMO/anvil-home" "$ANVIL" --host 127.0.0.1 --port "$RPC_PORT" --block-time 1 --silent \
  >"$DEMO/anvil.log" 2>&1 &
ANVIL_PID=$!
started "$ANVIL_PID" anvil

rpc_ready() {  # rpc_ready URL
  "$PY" - "$1" <<'EOF' 2>/dev/null
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Content-Type": "application/json"},
    data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode())
with urllib.request.urlopen(req, timeout=1) as r:
    sys.exit(0 if json.loads(r.read()).get("result") else 1)
EOF
}
for i in $(seq 100); do
  kill -0 "$ANVIL_PID" 2>/dev/null || { tail -n 20 "$DEMO/anvil.log" >&2; die "anvil exited at start (see .demo/anvil.log)"; }
  rpc_ready "$RPC_URL" && break
  [ "$i" = 100 ] && die "anvil did not answer eth_chainId on $RPC_URL within 20 s"
  sleep 0.2
done
log "anvil answers on $RPC_URL"

# ---- geth --dev ------------------------------------------------------------------
log "starting geth --dev on 127.0.0.1:$GETH_PORT (a block every second; log .demo/geth.log)"
"$GETH" --dev --dev.period 1 --datadir "$DEMO/geth" --http --http.addr 127.0.0.1 \
  --http.port "$GETH_PORT" --http.api eth,net,web3,debug,dev,txpool --ipcdisable \
  --nodiscover --maxpeers 0 --port 0 --authrpc.port 0 --verbosity 2 >"$DEMO/geth.log" 2>&1 &
GETH_PID=$!
started "$GETH_PID" geth
for i in $(seq 150); do
  kill -0 "$GETH_PID" 2>/dev/null || { tail -n 20 "$DEMO/geth.log" >&2; die "geth exited at start (see .demo/geth.log)"; }
  rpc_ready "$GETH_URL" && break
  [ "$i" = 150 ] && die "geth did not answer eth_chainId on $GETH_URL within 30 s"
  sleep 0.2
done
log "geth answers on $GETH_URL"

# ---- traffic ---------------------------------------------------------------------
log "starting demo/traffic.py (log .demo/traffic.log)"
"$PY" "$ROOT/demo/traffic.py" --rpc-url "$RPC_URL" --state-out "$DEMO/contracts.json" \
  >"$DEMO/traffic.log" 2>&1 &
started $! traffic
"$PY" "$ROOT/demo/traffic.py" --rpc-url "$GETH_URL" --state-out "$DEMO/contracts-geth.json" \
  >"$DEMO/traffic-geth.log" 2>&1 &
started $! traffic-geth

# ---- sluice ----------------------------------------------------------------------
if [ ! -x "$SLUICE_BIN" ]; then
  log "$SLUICE_BIN not found (run 'make build'); the chain and its traffic run without sluice."
  log "Ctrl-C to stop."
  wait "$ANVIL_PID"
  exit $?
fi

# demo/config.toml (settings, derived tables) plus the two datasets.
{
  cat "$ROOT/demo/config.toml"
  printf '\n[[datasets]]\nname = "eth_rpc"\nnetwork = "anvil"\nrpc_url = "%s"\n' "$RPC_URL"
  printf '\n[[datasets]]\nname = "geth_rpc"\nnetwork = "geth"\nrpc_url = "%s"\n' "$GETH_URL"
} >"$DEMO/config.toml"
log "starting sluice: Flight on 0.0.0.0:$FLIGHT_PORT, datasets eth_rpc (anvil) and geth_rpc (geth), data in .demo/data"
"$SLUICE_BIN" serve --config "$DEMO/config.toml" --data-dir "$DEMO/data" --flight-addr "0.0.0.0:$FLIGHT_PORT" &
SLUICE_PID=$!
started "$SLUICE_PID" sluice

for _ in $(seq 150); do
  kill -0 "$SLUICE_PID" 2>/dev/null || break
  port_in_use "$FLIGHT_PORT" && break
  sleep 0.2
done
if kill -0 "$SLUICE_PID" 2>/dev/null; then
  cat >&2 <<EOF

demo: sluice is serving two chains over Arrow Flight at grpc://localhost:$FLIGHT_PORT
      eth_rpc   anvil at $RPC_URL   (.demo/anvil.log, traffic .demo/traffic.log)
      geth_rpc  geth at $GETH_URL    (.demo/geth.log, traffic .demo/traffic-geth.log)
      data: .demo/data   config: .demo/config.toml
      First queries, from another terminal in $ROOT:

  .venv/bin/python -c 'import pyarrow.flight as fl; c = fl.connect("grpc://localhost:$FLIGHT_PORT"); info = c.get_flight_info(fl.FlightDescriptor.for_command(b"SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num DESC LIMIT 5")); print(c.do_get(info.endpoints[0].ticket).read_pandas())'

  build/sluice query "SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num DESC LIMIT 5"

      Both chains in one query:

  build/sluice query "SELECT 'anvil' AS chain, count(*) AS txs, max(block_num) AS head FROM eth_rpc.transactions UNION ALL SELECT 'geth', count(*), max(block_num) FROM geth_rpc.transactions"

  build/sluice query "SELECT block_num, a.gas_used AS anvil_gas, g.gas_used AS geth_gas FROM eth_rpc.blocks a JOIN geth_rpc.blocks g USING (block_num) ORDER BY block_num DESC LIMIT 5"

      Ctrl-C stops sluice, the traffic and the chains.

EOF
fi

set +e
wait "$SLUICE_PID"
status=$?
set -e
log "sluice exited with status $status"
exit "$status"
