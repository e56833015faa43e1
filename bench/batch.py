"""Workloads 1-3: batch throughput, time to first batch, server memory.

`SELECT * FROM eth_rpc.transactions` over a generated chain (bench/gen_data.cc,
cached), read to the end by a pyarrow Flight client on loopback, from:
  - sluice (`sluice serve --extract false` over the generated data directory),
  - baseline (a) the transport limit: bench/baseline_server.py --mode memory,
  - baseline (b) pyarrow.flight + duckdb: bench/baseline_server.py --mode duckdb.
The runs of the three servers are interleaved (sluice, a, b, sluice, a, b, ...).
Throughput counts the rows and the Arrow buffer bytes the client received
(RecordBatch.nbytes). Time to first batch: from the GetFlightInfo call to the
first record batch. Peak RSS: the server's VmHWM over its runs.

    .venv/bin/python bench/batch.py --rows 20000000 --runs 3
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyarrow.flight as flight

import common
from common import PYTHON, ROOT

SQL = "SELECT * FROM eth_rpc.transactions"


def read_all(location: str, sql: str = SQL) -> dict:
    """Read a query to the end; rows, bytes (Arrow buffers), seconds, ttfb_ms."""
    client = flight.connect(location)
    t0 = time.perf_counter()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    reader = client.do_get(info.endpoints[0].ticket)
    rows = nbytes = 0
    ttfb = None
    for chunk in reader:
        if ttfb is None and chunk.data.num_rows:
            ttfb = time.perf_counter() - t0
        rows += chunk.data.num_rows
        nbytes += chunk.data.nbytes
    secs = time.perf_counter() - t0
    client.close()
    return {"rows": rows, "bytes": nbytes, "seconds": secs,
            "ttfb_ms": (ttfb if ttfb is not None else secs) * 1000}


def start_sluice(data_dir: Path, *extra: str):
    return common.start_line_server(
        [str(ROOT / "build" / "sluice"), "serve", "--extract", "false", "--data-dir", str(data_dir),
         "--flight-addr", "127.0.0.1:0", "--jsonl-addr", "127.0.0.1:0", "--admin-api-addr",
         "127.0.0.1:0", "--log-level", "warn", *extra], "sluice: flight listening on ")


def start_baseline(mode: str, data_dir: Path):
    return common.start_line_server(
        [str(PYTHON), str(ROOT / "bench" / "baseline_server.py"), "--mode", mode, "--files",
         str(data_dir / "eth_rpc" / "transactions" / "*.parquet")],
        "baseline: flight listening on ")


def throughput(data_dir: Path, runs: int, baselines: bool = True) -> dict:
    """Interleaved runs of sluice and the baselines; per server the summaries of
    rows/s, MB/s, ttfb_ms, and the server's peak RSS."""
    servers = {"sluice": start_sluice(data_dir)}
    if baselines:
        servers["memory"] = start_baseline("memory", data_dir)
        servers["duckdb"] = start_baseline("duckdb", data_dir)
    samples = {name: [] for name in servers}
    peaks = {}
    try:
        for name, (proc, loc) in servers.items():
            read_all(loc, SQL + " LIMIT 10")  # warm up: connection, metadata caches
            common.reset_peak(proc.pid)
        for _ in range(runs):
            for name, (proc, loc) in servers.items():
                samples[name].append(read_all(loc))
        for name, (proc, _) in servers.items():
            peaks[name] = common.proc_status(proc.pid, "VmHWM")
    finally:
        for proc, _ in servers.values():
            common.stop(proc)
    out = {}
    for name, s in samples.items():
        out[name] = {
            "rows": s[0]["rows"], "bytes": s[0]["bytes"],
            "rows_per_sec": common.summary([x["rows"] / x["seconds"] for x in s]),
            "mb_per_sec": common.summary([x["bytes"] / 1e6 / x["seconds"] for x in s]),
            "seconds": common.summary([x["seconds"] for x in s]),
            "ttfb_ms": common.summary([x["ttfb_ms"] for x in s]),
            "peak_rss_mb": peaks[name] / 2**20,
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-baselines", action="store_true")
    args = p.parse_args()
    d = common.dataset(args.rows)
    print(json.dumps(throughput(d, args.runs, not args.no_baselines), indent=1))


if __name__ == "__main__":
    main()
