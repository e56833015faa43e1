"""Workload 6: client memory. RSS growth of a client reading N rows.

Python: `sluice.Client.execute_stream` (python/sluice/aio.py) reads the query's
rows page by page (fetch_size rows a page) and drops each page. RSS growth is
the process's peak RSS while reading (VmHWM, reset right before
execute_stream) minus its RSS just before execute_stream.

C++: build/client/sluice_client_read_all, when built, measures itself and prints
{"rows":..,"batches":..,"rss_growth_bytes":..}.

    .venv/bin/python bench/client_memory.py --flight-url grpc://127.0.0.1:PORT --rows 10000000
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess

import common  # noqa: F401 - puts python/ on sys.path
from common import CPP_CLIENT

SQL = "SELECT block_num, tx_index, tx_hash, value FROM eth_rpc.transactions LIMIT {rows}"


async def python_read(flight_url: str, sql: str, fetch_size: int) -> dict:
    from sluice import Client
    from sluice.aio import StreamConfig

    client = Client(flight_url=flight_url)
    pid = os.getpid()
    before = common.proc_status(pid, "VmRSS")
    common.reset_peak(pid)
    result = await client.execute_stream(sql, stream_config=StreamConfig(fetch_size=fetch_size))
    rows = pages = 0
    async for page in result.pages():
        rows += len(page)
        pages += 1
    peak = common.proc_status(pid, "VmHWM")
    return {"rows": rows, "pages": pages, "rss_before_bytes": before,
            "rss_growth_bytes": max(0, peak - before)}


def cpp_read(flight_url: str, sql: str, fetch_size: int) -> dict | None:
    """The C++ client's own measurement, or None when it is not built."""
    if not CPP_CLIENT.exists():
        return None
    out = subprocess.run([str(CPP_CLIENT), "--flight-url", flight_url, "--sql", sql,
                          "--fetch-size", str(fetch_size)], check=True, capture_output=True,
                         text=True, timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flight-url", required=True)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--fetch-size", type=int, default=10000)
    args = p.parse_args()
    sql = SQL.format(rows=args.rows)
    print(json.dumps(asyncio.run(python_read(args.flight_url, sql, args.fetch_size))))


if __name__ == "__main__":
    main()
