"""Workload 10: many cursors at once. N streams of one query resume from N
different old cursors, spread over the history, while new blocks arrive.

A real anvil is filled with --history blocks (bench/extraction.py's traffic: 4
transactions a block, half of them emitting a log); sluice extracts them. Then N
clients (one thread each) open `SELECT block_num, tx_hash, "from", "to", value FROM
eth_rpc.transactions` as streams (amp-stream) resumed (amp-resume) at blocks spread
evenly over the history, while a block of 3 transactions is mined every 50-150 ms.
Once every stream has passed the head it started behind (caught up), --blocks more
blocks are mined one at a time, as in bench/stream_latency.py, for the tip latency.
Reports:
  - exactness: every client's rows (block_num, tx_hash) equal the batch query's
    over its blocks (cursor, last block];
  - the server's peak RSS (VmHWM) over the whole run;
  - aggregate catch-up: rows of blocks up to the start head, summed over clients,
    per second until the last client caught up;
  - tip latency p50/p99 over the (block, client) pairs of the last blocks.

    .venv/bin/python bench/many_cursors.py --clients 100 --history 3000 --blocks 30
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.flight as flight

import common
from common import verdict
import extraction
import stream_latency
from sluice_harness import Anvil, Server, query, rpc  # noqa: E402

SQL = 'SELECT block_num, tx_hash, "from", "to", value FROM eth_rpc.transactions'


class Follower(threading.Thread):
    """One stream resumed at `cursor`: keeps its rows, the arrival time of each
    block's first row, and when a microbatch first ended at or past `caught_up_at`."""

    def __init__(self, location: str, cursor: dict, caught_up_at: int):
        super().__init__(daemon=True)
        self.location, self.cursor, self.caught_up_at = location, cursor, caught_up_at
        self.rows: list[tuple[int, bytes]] = []
        self.arrivals: dict[int, float] = {}
        self.caught_up: float | None = None
        self.started = time.perf_counter()
        self.error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            client = flight.connect(self.location)
            opts = flight.FlightCallOptions(headers=[
                (b"amp-stream", b"true"), (b"amp-resume", json.dumps(self.cursor).encode())])
            info = client.get_flight_info(flight.FlightDescriptor.for_command(SQL.encode()), opts)
            reader = client.do_get(info.endpoints[0].ticket, opts)
            for chunk in reader:
                now = time.perf_counter()
                if chunk.data is not None and chunk.data.num_rows:
                    nums = chunk.data.column("block_num").to_pylist()
                    hashes = chunk.data.column("tx_hash").to_pylist()
                    self.rows.extend(zip(nums, hashes))
                    for n in nums:
                        self.arrivals.setdefault(n, now)
                meta = json.loads(chunk.app_metadata.to_pybytes()) if chunk.app_metadata else {}
                if (self.caught_up is None and meta.get("kind") == "microbatch_end" and
                        max((r["numbers"]["end"] for r in meta.get("ranges", [])), default=-1)
                        >= self.caught_up_at):
                    self.caught_up = now
                if self.stop.is_set():
                    break
            reader.cancel()
        except Exception as e:  # noqa: BLE001 - cancelled at the end, or a failure
            if not self.stop.is_set():
                self.error = repr(e)


def run(clients: int, history: int, blocks: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = Anvil(tmp)
        try:
            t0 = time.monotonic()
            extraction.fill_chain(node.url, history, 4)
            fill_secs = time.monotonic() - t0
            srv = Server(tmp / "data", node.url)
            try:
                return _measure(node, srv, clients, blocks, fill_secs)
            finally:
                srv.stop()
        finally:
            node.stop()


def _mine_one(node, accounts, rng) -> tuple[int, float]:
    for k in range(3):
        rpc(node.url, "eth_sendTransaction",
            [{"from": accounts[k], "to": accounts[k + 1], "value": hex(10**15 + rng.randrange(1000))}])
    n = node.head() + 1
    rpc(node.url, "evm_mine")
    return n, time.perf_counter()


def _measure(node, srv, clients: int, blocks: int, fill_secs: float) -> dict:
    head0 = node.head()
    srv.wait_head(head0, timeout=600)
    c = srv.client()
    hashes = {r["block_num"]: r["hash"] for r in
              query(c, "SELECT block_num, hash FROM eth_rpc.blocks").to_pylist()}
    common.reset_peak(srv.proc.pid)
    cursors = [int(head0 * i / clients) for i in range(clients)]
    followers = [Follower(srv.location, {"anvil": {"block_number": b, "hash": "0x" + hashes[b].hex()}},
                          head0) for b in cursors]
    t_start = time.perf_counter()
    for f in followers:
        f.start()
    accounts = rpc(node.url, "eth_accounts")
    rng = random.Random(11)
    deadline = time.monotonic() + 900
    while any(f.caught_up is None and f.error is None for f in followers):
        if time.monotonic() > deadline:
            raise RuntimeError("streams did not catch up in 15 minutes")
        _mine_one(node, accounts, rng)  # blocks keep arriving meanwhile
        time.sleep(rng.uniform(0.05, 0.15))
    errors = [f.error for f in followers if f.error]
    if errors:
        raise RuntimeError(f"{len(errors)} streams failed: {errors[0]}")
    t_caught = max(f.caught_up for f in followers)
    catch_up_rows = sum(sum(1 for n, _ in f.rows if n <= head0) for f in followers)
    # The tip, once every stream follows it.
    time.sleep(1.0)
    mined = {}
    for _ in range(blocks):
        n, t = _mine_one(node, accounts, rng)
        mined[n] = t
        wait = time.monotonic() + 10
        while time.monotonic() < wait and not all(n in f.arrivals for f in followers):
            time.sleep(0.001)
        time.sleep(rng.uniform(0.05, 0.15))
    last = max(mined)
    srv.wait_head(last)
    time.sleep(0.5)
    for f in followers:
        f.stop.set()
    peak_rss = common.proc_status(srv.proc.pid, "VmHWM")
    lat = [(f.arrivals[n] - t) * 1000 for n, t in mined.items() for f in followers
           if n in f.arrivals]
    # Exactness against the batch query, per client over (cursor, last].
    truth = query(c, f"SELECT block_num, tx_hash FROM eth_rpc.transactions WHERE block_num <= {last}")
    by_block: dict[int, list[bytes]] = {}
    for n, h in zip(truth.column("block_num").to_pylist(), truth.column("tx_hash").to_pylist()):
        by_block.setdefault(n, []).append(h)
    for f in followers:
        f.join(10)
    inexact = 0
    for f, b in zip(followers, cursors):
        got = sorted((n, h) for n, h in f.rows if n <= last)
        want = sorted((n, h) for n, hs in by_block.items() if b < n <= last for h in hs)
        inexact += got != want
    c.close()
    return {"clients": clients, "history_blocks": head0 + 1, "fill_seconds": fill_secs,
            "sql": SQL, "cursors": [cursors[0], cursors[-1]],
            "exact_clients": clients - inexact, "peak_rss_mb": peak_rss / 2**20,
            "catch_up_rows": catch_up_rows, "catch_up_seconds": t_caught - t_start,
            "catch_up_rows_per_sec": catch_up_rows / (t_caught - t_start),
            "tip": stream_latency.percentiles(lat)}


def targets(r: dict) -> list[tuple]:
    """Summary rows of BENCHMARKS.md: (workload, measured, target, met)."""
    tip = r["tip"]
    return [
        (f"10. Many cursors: streams exact ({r['clients']} resumed)",
         f"{r['exact_clients']} / {r['clients']}", "all", r["exact_clients"] == r["clients"]),
        ("10. Many cursors: server peak RSS", f"{r['peak_rss_mb']:.0f} MB", "≤ 1,024 MB",
         r["peak_rss_mb"] <= 1024),
        (f"10. Many cursors: tip latency p50 / p99 after catch-up",
         f"{tip['p50_ms']:.0f} / {tip['p99_ms']:.0f} ms", "≤ 50 / ≤ 200 ms",
         tip["p50_ms"] <= 50 and tip["p99_ms"] <= 200),
    ]


def section(r: dict, cfg: dict) -> list[str]:
    """Section 10 of BENCHMARKS.md."""
    tip = r["tip"]
    return [
        "## 10. Many cursors at once",
        "",
        f"A real anvil with {r['history_blocks']:,} blocks of history; {r['clients']} streams"
        f" of `{r['sql']}` resumed from cursors spread evenly over it (blocks"
        f" {r['cursors'][0]}–{r['cursors'][1]}) while a block of 3 transactions is mined every"
        " 50–150 ms; once all have caught up, blocks are mined one at a time for the tip"
        " latency. Each stream's rows are compared with the batch query over its blocks.",
        "",
        f"Command: `.venv/bin/python bench/many_cursors.py --clients {cfg['cursor_clients']}"
        f" --history {cfg['cursor_history']} --blocks {cfg['cursor_blocks']}` (in the suite:"
        " `bench/run_all.py --only many_cursors`)",
        "",
        "| | measured | target | |",
        "|---|---|---|---|",
        f"| streams exactly equal to the batch query | {r['exact_clients']} of {r['clients']} |"
        f" all | {verdict(r['exact_clients'] == r['clients'])} |",
        f"| server peak RSS | {r['peak_rss_mb']:.0f} MB | ≤ 1,024 MB |"
        f" {verdict(r['peak_rss_mb'] <= 1024)} |",
        f"| aggregate catch-up | {r['catch_up_rows']:,} rows in {r['catch_up_seconds']:.1f} s:"
        f" {r['catch_up_rows_per_sec']:,.0f} rows/s | reported | |",
        f"| tip latency after catch-up, p50 / p99 ({tip['samples']} samples) |"
        f" {tip['p50_ms']:.0f} / {tip['p99_ms']:.0f} ms | ≤ 50 / ≤ 200 ms |"
        f" {verdict(tip['p50_ms'] <= 50 and tip['p99_ms'] <= 200)} |",
        "",
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--history", type=int, default=3000)
    p.add_argument("--blocks", type=int, default=30)
    args = p.parse_args()
    print(json.dumps(run(args.clients, args.history, args.blocks), indent=1))


if __name__ == "__main__":
    main()
