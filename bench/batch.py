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
import shutil
import time
from pathlib import Path

import pyarrow.flight as flight

import common
from common import PYTHON, ROOT

SQL = "SELECT * FROM eth_rpc.transactions"


def read_all(client: flight.FlightClient, sql: str = SQL) -> dict:
    """Read a query to the end over a connected client; rows, bytes (Arrow
    buffers), seconds, ttfb_ms."""
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
    return {"rows": rows, "bytes": nbytes, "seconds": secs,
            "ttfb_ms": (ttfb if ttfb is not None else secs) * 1000}


def start_sluice(data_dir: Path, *extra: str):
    """`sluice serve --extract false` over data_dir; an extra argument bin=PATH
    runs another sluice binary (a build from before a change), data=PATH serves
    another data directory (one written in another segment format)."""
    binary = str(ROOT / "build" / "sluice")
    for e in extra:
        if e.startswith("bin="):
            binary = e[4:]
        if e.startswith("data="):
            data_dir = Path(e[5:])
    extra = tuple(e for e in extra if not e.startswith(("bin=", "data=")))
    return common.start_line_server(
        [binary, "serve", "--extract", "false", "--data-dir", str(data_dir),
         "--flight-addr", "127.0.0.1:0", "--jsonl-addr", "127.0.0.1:0", "--admin-api-addr",
         "127.0.0.1:0", "--log-level", "warn", *extra], "sluice: flight listening on ")


def start_baseline(mode: str, data_dir: Path, sql: str | None = None):
    return common.start_line_server(
        [str(PYTHON), str(ROOT / "bench" / "baseline_server.py"), "--mode", mode, "--files",
         str(data_dir / "eth_rpc" / "transactions" / "*.parquet"),
         *(["--sql", sql] if sql else [])],
        "baseline: flight listening on ")


# Workload 9: a query DuckDB executes (an expression and a filter), not a plain scan.
# `value` is the wei amount as a decimal string (spec/evm-tables.md): cast to divide.
EXPRESSION_SQL = ("SELECT block_num, tx_hash, CAST(value AS DOUBLE) / 1e18 AS eth "
                  "FROM {table} WHERE gas_used > 100000")


def expression(data_dir: Path, runs: int, variants: dict | None = None) -> dict:
    """EXPRESSION_SQL read to the end from sluice and from baseline (b) running the
    same query over the same files; interleaved runs; per server rows/s, MB/s."""
    servers = {"sluice": start_sluice(data_dir)}
    for name, extra in (variants or {}).items():
        servers[name] = start_sluice(data_dir, *extra)
    servers["duckdb"] = start_baseline("duckdb", data_dir, EXPRESSION_SQL)
    samples = {name: [] for name in servers}
    clients = {}
    sql = EXPRESSION_SQL.format(table="eth_rpc.transactions")
    try:
        for name, (proc, loc) in servers.items():
            clients[name] = flight.connect(loc)
            read_all(clients[name], sql + " LIMIT 10")
        for _ in range(runs):
            for name in servers:
                samples[name].append(read_all(clients[name], sql))
    finally:
        for c in clients.values():
            c.close()
        for proc, _ in servers.values():
            common.stop(proc)
    out = {"sql": sql}
    for name, s in samples.items():
        if s[0]["rows"] != samples["duckdb"][0]["rows"]:
            raise RuntimeError(f"{name}: {s[0]['rows']} rows, duckdb {samples['duckdb'][0]['rows']}")
        out[name] = {"rows": s[0]["rows"],
                     "rows_per_sec": common.summary([x["rows"] / x["seconds"] for x in s]),
                     "mb_per_sec": common.summary([x["bytes"] / 1e6 / x["seconds"] for x in s]),
                     "seconds": common.summary([x["seconds"] for x in s])}
    out["ratio"] = common.summary([b["seconds"] / a["seconds"]
                                   for a, b in zip(samples["sluice"], samples["duckdb"])])
    return out


def clear_scan_cache(data_dir: Path) -> None:
    """Delete sluice's scan cache of a data directory (ARCHITECTURE.md): the next
    scan decodes Parquet again. Only while no server runs on it."""
    shutil.rmtree(data_dir / ".scan_cache", ignore_errors=True)


def throughput(data_dir: Path, runs: int, baselines: bool = True,
               variants: dict | None = None) -> dict:
    """Interleaved runs of sluice and the baselines; per server the summaries of
    rows/s, MB/s, ttfb_ms, and the server's peak RSS. `variants`: more sluice
    servers, name -> extra `sluice serve` arguments (for before/after runs).

    sluice starts without a scan cache: its first scan ("sluice_first_scan")
    decodes the Parquet segments, the second ("sluice_second_scan") also fills the
    cache (a segment is cached when read whole a second time), which the
    interleaved runs then read. The cache is deleted at the end (it takes about twice the Parquet's
    disk)."""
    clear_scan_cache(data_dir)
    servers = {"sluice": start_sluice(data_dir)}
    for name, extra in (variants or {}).items():
        servers[name] = start_sluice(data_dir, *extra)
    if baselines:
        servers["memory"] = start_baseline("memory", data_dir)
        servers["duckdb"] = start_baseline("duckdb", data_dir)
    samples = {name: [] for name in servers}
    peaks = {}
    clients = {}
    try:
        for name, (proc, loc) in servers.items():
            clients[name] = flight.connect(loc)
            read_all(clients[name], SQL + " LIMIT 10")  # warm up: connection, metadata caches
            common.reset_peak(proc.pid)
        first_scan = [read_all(clients["sluice"])]   # decodes the Parquet
        second_scan = [read_all(clients["sluice"])]  # decodes it and fills the scan cache
        for _ in range(runs):
            for name, (proc, loc) in servers.items():
                samples[name].append(read_all(clients[name]))
        for name, (proc, _) in servers.items():
            peaks[name] = common.proc_status(proc.pid, "VmHWM")
    finally:
        for c in clients.values():
            c.close()
        for proc, _ in servers.values():
            common.stop(proc)
        clear_scan_cache(data_dir)
    samples = {"sluice": samples["sluice"], "sluice_first_scan": first_scan,
               "sluice_second_scan": second_scan,
               **{k: v for k, v in samples.items() if k != "sluice"}}
    peaks["sluice_first_scan"] = peaks["sluice_second_scan"] = peaks["sluice"]
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


def first_batch(data_dir: Path, runs: int) -> dict:
    """Time to first batch of SQL on a connected client, `runs` times (each call
    cancelled after its first batch); the summary in ms."""
    clear_scan_cache(data_dir)  # the first batch decodes Parquet (no cache is made)
    proc, loc = start_sluice(data_dir)
    client = flight.connect(loc)
    try:
        read_all(client, SQL + " LIMIT 10")  # warm up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            info = client.get_flight_info(flight.FlightDescriptor.for_command(SQL.encode()))
            reader = client.do_get(info.endpoints[0].ticket)
            reader.read_chunk()
            times.append((time.perf_counter() - t0) * 1000)
            reader.cancel()
    finally:
        client.close()
        common.stop(proc)
    return common.summary(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--variant", action="append", default=[],
                   help="another sluice server run side by side, its extra serve arguments "
                        "as one string, e.g. --variant='--rows-per-batch 65536'; "
                        "bin=PATH among them runs another binary")
    p.add_argument("--data-dir", type=Path, help="serve this store instead of a generated one")
    p.add_argument("--expression", action="store_true",
                   help="workload 9 (EXPRESSION_SQL) instead of the plain scan")
    args = p.parse_args()
    if args.expression:
        d = args.data_dir or common.dataset(args.rows)
        r = expression(d, args.runs, {v: v.split() for v in args.variant})
        print(json.dumps(r, indent=1))
        return
    d = args.data_dir or common.dataset(args.rows)
    variants = {v: v.split() for v in args.variant}
    r = throughput(d, args.runs, not args.no_baselines, variants)
    for name, x in r.items():
        print(f"{name:45s} rows/s {x['rows_per_sec']['median']:>12,.0f}  MB/s "
              f"{x['mb_per_sec']['median']:>6,.0f}  first batch {x['ttfb_ms']['median']:>6.0f} ms  "
              f"peak RSS {x['peak_rss_mb']:>6,.0f} MB")
    print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
