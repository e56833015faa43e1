"""Tip latency of streaming queries: time from the node answering `evm_mine` to
the block's rows reaching each of N concurrent streaming clients.

Starts a real anvil (no automatic mining) and sluice, opens N streams of
`SELECT block_num, hash FROM eth_rpc.blocks SETTINGS stream = true` (pyarrow,
one thread each), mines --blocks blocks one by one with a few transactions each,
and reports p50/p99/max over all (block, client) pairs. Blocks are mined at
random gaps of 50-150 ms after the previous one reached every client. The time includes the
extractor noticing the block (poll_interval_secs), fetching, storing (fsync),
and the microbatch query.

    .venv/bin/python bench/stream_latency.py --clients 1 100 [--blocks 30] [--sql SQL]

Before/after comparisons on a noisy machine: `--bin A --bin B --runs 3` runs
the binaries in turn (A, B, A, B, …) for each client count and prints, per
binary and client count, the median of the runs' p50 and p99 with their min
and max.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.flight as flight

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
import sluice_harness  # noqa: E402
from sluice_harness import Anvil, Server, rpc  # noqa: E402

SQL = b"SELECT block_num, hash FROM eth_rpc.blocks SETTINGS stream = true"


def follow(location: str, arrivals: dict, ready: threading.Event, stop: threading.Event,
           sql: bytes = SQL):
    client = flight.connect(location)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql))
    reader = client.do_get(info.endpoints[0].ticket)
    ready.set()
    try:
        for chunk in reader:
            now = time.perf_counter()
            if chunk.data.num_rows:
                for n in chunk.data.column("block_num").to_pylist():
                    arrivals.setdefault(n, now)
            if stop.is_set():
                break
    except Exception:  # noqa: BLE001 - cancelled at the end
        pass


def mine_blocks(node, blocks: int, arrivals: list) -> dict:
    """Mine `blocks` blocks of 3 transactions one at a time, each once every client
    has its rows (or 10 s passed), then a random 50-150 ms gap; block -> mined time
    (time.perf_counter())."""
    accounts = rpc(node.url, "eth_accounts")
    rng = random.Random(7)
    mined = {}
    for _ in range(blocks):
        for k in range(3):
            rpc(node.url, "eth_sendTransaction",
                [{"from": accounts[k], "to": accounts[k + 1], "value": hex(10**15)}])
        n = node.head() + 1
        rpc(node.url, "evm_mine")
        mined[n] = time.perf_counter()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(n in a for a in arrivals):
            time.sleep(0.001)
        # A random gap before the next block, so blocks do not arrive in step
        # with the extractor's polls (a fixed 50 ms gap always lands just
        # after a poll and waits a whole poll_interval_secs).
        time.sleep(rng.uniform(0.05, 0.15))
    return mined


def run(clients: int, blocks: int, server_args: tuple = (), binary: str | None = None,
        sql: bytes = SQL) -> list[float]:
    if binary:
        sluice_harness.SLUICE = Path(binary)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = Anvil(tmp)
        node.mine(1)
        srv = Server(tmp / "data", node.url, *server_args)
        srv.wait_head(node.head())
        stop = threading.Event()
        arrivals = [dict() for _ in range(clients)]
        threads = []
        for i in range(clients):
            ready = threading.Event()
            t = threading.Thread(target=follow, args=(srv.location, arrivals[i], ready, stop, sql),
                                 daemon=True)
            t.start()
            ready.wait(30)
            threads.append(t)
        time.sleep(1.0)  # every stream caught up and waiting
        mined = mine_blocks(node, blocks, arrivals)
        stop.set()
        srv.stop()
        node.stop()
    return [(a[n] - t0) * 1000 for n, t0 in mined.items() for a in arrivals if n in a]


def percentiles(lat: list[float]) -> dict:
    """samples, p50, p99 and max of latencies in ms."""
    lat = sorted(lat)
    if not lat:
        raise RuntimeError("no block reached any client")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return {"samples": len(lat), "p50_ms": round(statistics.median(lat), 1),
            "p99_ms": round(p99, 1), "max_ms": round(lat[-1], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 100])
    p.add_argument("--blocks", type=int, default=30)
    p.add_argument("--server-args", default="",
                   help="extra `sluice serve` arguments, e.g. '--poll-interval-secs 0.02'")
    p.add_argument("--bin", action="append", default=[],
                   help="a sluice binary to measure (repeat to compare, run in turn); "
                        "default build/sluice")
    p.add_argument("--runs", type=int, default=1, help="runs per binary and client count")
    p.add_argument("--sql", default=SQL.decode(),
                   help="the streaming query (its result must have a block_num column), e.g. "
                        "the parent/child self-join of blocks")
    args = p.parse_args()
    bins = args.bin or [None]
    results: dict = {}
    for c in args.clients:
        for r in range(args.runs):
            for b in bins:
                stats = percentiles(run(c, args.blocks, tuple(args.server_args.split()), b,
                                        args.sql.encode()))
                results.setdefault((b, c), []).append(stats)
                print(json.dumps({"clients": c, **({"bin": b, "run": r + 1} if args.bin or
                                                    args.runs > 1 else {}), **stats}), flush=True)
    if args.runs > 1:
        for (b, c), runs in results.items():
            summary = {"bin": b, "clients": c, "runs": len(runs)}
            for k in ("p50_ms", "p99_ms"):
                v = [x[k] for x in runs]
                summary[k] = {"median": statistics.median(v), "min": min(v), "max": max(v)}
            print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
