"""Cost of one streaming microbatch as history grows: a stream resumed one block
below the head of a store holding N blocks (sluice_bench_gen, 1 transaction per
block) runs one one-block microbatch; the time from DoGet to its microbatch_end
is what every new block costs that stream at the tip.

Queries: a plain one-table scan (the baseline), the parent/child self-join of
blocks by hash, and a self-join of transactions by sender across blocks. The
delta of a join reads the history of the other side (H), so its cost grows with
the history unless the engine prunes it.

    .venv/bin/python bench/join_history.py --blocks 10000 1000000 [--runs 5]

Stores are generated once into ~/.cache/sluice/bench/join-<N> (1M blocks: ~40 s).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.flight as flight

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from sluice_harness import Server, query  # noqa: E402

QUERIES = {
    "scan (baseline)": "SELECT block_num, hash FROM eth_rpc.blocks",
    "self-join parent/child": ("SELECT child.block_num, parent.block_num AS parent_num "
                               "FROM eth_rpc.blocks child JOIN eth_rpc.blocks parent "
                               "ON child.parent_hash = parent.hash"),
    "self-join same sender": ('SELECT a.block_num, a.tx_hash, b.tx_hash AS other FROM '
                              'eth_rpc.transactions a JOIN eth_rpc.transactions b '
                              'ON a."from" = b."from" AND a.tx_hash <> b.tx_hash'),
}


def store(blocks: int) -> Path:
    cache = Path(os.environ.get("SLUICE_CACHE", Path.home() / ".cache" / "sluice")) / "bench"
    path = cache / f"join-{blocks}"
    if not (path / "eth_rpc" / "manifest.json").exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(ROOT / "build" / "bench" / "sluice_bench_gen"), "--data-dir", str(path),
                        "--transactions", str(blocks - 1), "--txs-per-block", "1"], check=True)
    return path


def one_microbatch(location: str, sql: str, cursor: dict) -> float:
    client = flight.connect(location)
    headers = [(b"amp-stream", b"true"), (b"amp-resume", json.dumps(cursor).encode())]
    opts = flight.FlightCallOptions(headers=headers)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), opts)
    t0 = time.perf_counter()
    reader = client.do_get(info.endpoints[0].ticket, opts)
    for chunk in reader:
        if json.loads(chunk.app_metadata.to_pybytes()).get("kind") == "microbatch_end":
            elapsed = time.perf_counter() - t0
            reader.cancel()
            client.close()
            return elapsed * 1000
    raise RuntimeError("stream ended")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, nargs="+", default=[10000, 1000000])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    results = []
    for blocks in args.blocks:
        data = store(blocks)
        srv = Server(data, "http://127.0.0.1:9", "--extract", "false", "--network", "anvil")
        try:
            head = srv.stored_head()
            h = query(srv.client(), f"SELECT hash FROM eth_rpc.blocks WHERE block_num = {head - 1}")
            cursor = {"anvil": {"block_number": head - 1, "hash": "0x" + h.column(0)[0].as_py().hex()}}
            for name, sql in QUERIES.items():
                # A comment makes each run's text unique: streams of one query text share
                # microbatches (flight/microbatch_cache.h), which would hide the cost.
                times = [one_microbatch(srv.location, f"/* run {i} */ {sql}", cursor)
                         for i in range(args.runs)]
                row = {"blocks": head + 1, "query": name, "median_ms": round(statistics.median(times), 1),
                       "min_ms": round(min(times), 1), "max_ms": round(max(times), 1)}
                results.append(row)
                print(json.dumps(row), flush=True)
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
