"""What the EVM SQL functions cost (docs/protocol.md, "EVM functions").

On a real server (and a real anvil node for eth_call):
  - decoding: 1M synthetic ERC-20 Transfer logs through evm_decode_log, read as
    typed fields (`decoded.value`), against the same rows without decoding:
    seconds, median of --runs;
  - the query rewrite that types the results: latency of a one-row query with a
    decoding call, against `SELECT 1`, and of its first use with a new signature
    (the typed function is registered then): ms, median of --calls;
  - eth_call: distinct calls per second to anvil (balanceOf of --eth-calls
    addresses; JSON-RPC batches of 64).

    .venv/bin/python bench/evm_functions.py [--threads 1] [--runs 5] [--calls 200]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.flight as flight

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from sluice_harness import Anvil, Server  # noqa: E402

TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
SIG = "Transfer(address indexed from, address indexed to, uint256 value)"
LOGS = ("SELECT evm_decode_log(from_hex(lpad(printf('%x', i), 64, '0')), from_hex('{t2}'), NULL, "
        "from_hex('{data}'), '{sig}') AS d FROM range(1000000) t(i)")


def run(client: flight.FlightClient, sql: str) -> float:
    t0 = time.perf_counter()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    client.do_get(info.endpoints[0].ticket).read_all()
    return time.perf_counter() - t0


def median(client, sql, n) -> float:
    return statistics.median(run(client, sql) for _ in range(n))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="engine threads (query_threads)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--eth-calls", type=int, default=2000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = Anvil(Path(tmp))
        node.traffic(blocks=2)  # deploys the demo token
        srv = Server(Path(tmp) / "data", node.url, "--query-threads", str(args.threads),
                     "--eth-call-max-calls", str(args.eth_calls))
        try:
            c = srv.client()
            logs = LOGS.format(t2="7" * 64, data=format(10**24, "064x"), sig=SIG)
            typed = median(c, f"SELECT count(d.value) AS n FROM ({logs})", args.runs)
            base = median(c, "SELECT count(x) AS n FROM (SELECT from_hex(lpad(printf('%x', i), 64, "
                             "'0')) AS x FROM range(1000000) t(i))", args.runs)
            print(f"decode 1M logs, {args.threads} engine thread(s): {typed:.3f} s, rows alone "
                  f"{base:.3f} s -> {1e3 * (typed - base):.0f} ns per log")
            one = "SELECT evm_decode_type(from_hex('" + "0" * 62 + "2a'), '(uint8 x)') AS v"
            plain = median(c, "SELECT 1 AS v", args.calls) * 1e3
            typed_call = median(c, one, args.calls) * 1e3
            fresh = statistics.median(
                run(c, one.replace("uint8 x", f"uint8 x{i}")) for i in range(args.calls)) * 1e3
            print(f"one-row query: SELECT 1 {plain:.2f} ms, with a typed call {typed_call:.2f} ms, "
                  f"its first use with a new signature {fresh:.2f} ms")
            n = args.eth_calls
            sql = (f"SELECT count(r.data) AS n FROM (SELECT eth_call(NULL, evm_encode_hex('{TOKEN}'), "
                   f"evm_encode_params(evm_encode_type(i + 1, 'uint256')[13:], 'balanceOf(address holder)'), "
                   f"'latest') AS r "
                   f"FROM range({n}) t(i))")
            secs = run(c, sql)
            print(f"eth_call: {n} distinct calls in {secs:.2f} s = {n / secs:.0f} calls/s")
        finally:
            srv.stop()
            node.stop()


if __name__ == "__main__":
    main()
