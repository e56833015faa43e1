"""A bounded load test: N concurrent clients (default 200) on loopback for a fixed
duration, mixing batch and streaming queries while blocks arrive.

Starts a real anvil node with demo traffic (demo/traffic.py mining a block every
--block-interval seconds throughout) and `sluice serve`, then runs the clients,
each on its own thread with its own Flight connection (pyarrow):

- batch clients (3 in 4) loop over queries over a random range of stored blocks
  and check each answer against the node's own JSON-RPC answers (block hashes
  and parent hashes, transaction counts, log counts per block);
- streaming clients (1 in 4) follow one of three streaming queries (blocks,
  transactions, logs) from the start of the chain; each drops its connection
  once at a random moment and resumes from its cursor. At the end, the rows each
  received for the blocks [0, its last cursor] must be exactly those of a batch
  query over the same blocks (exactly once: nothing lost, nothing repeated),
  and its microbatch ranges must follow each other without a gap.

The server's resident memory (VmRSS) is sampled every second. Prints one summary
(and with --json, the figures as JSON): clients, queries done and per second,
rows received, microbatches, errors, RSS samples first/last/max.

    .venv/bin/python bench/load_test.py --clients 200 --duration 60
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Optional

import pyarrow.flight as flight

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from sluice_harness import PYTHON, TRAFFIC, Anvil, Server, query, rpc_batch  # noqa: E402

STREAMS = {
    "blocks": ("SELECT block_num, hash FROM eth_rpc.blocks", "hash"),
    "transactions": ("SELECT block_num, tx_hash FROM eth_rpc.transactions", "tx_hash"),
    "logs": ("SELECT block_num, tx_hash, log_index FROM eth_rpc.logs", "log_index"),
}


class Truth:
    """The node's own answers, block by block, fetched once per block (the test
    has no reorgs, so a block's answer never changes)."""

    def __init__(self, url: str):
        self.url = url
        self.blocks: dict = {}
        self.lock = threading.Lock()

    def get(self, lo: int, hi: int) -> dict:
        with self.lock:
            missing = [n for n in range(lo, hi + 1) if n not in self.blocks]
        for i in range(0, len(missing), 50):
            nums = missing[i:i + 50]
            answers = rpc_batch(self.url, [c for n in nums for c in (
                ("eth_getBlockByNumber", [hex(n), False]), ("eth_getBlockReceipts", [hex(n)]))])
            with self.lock:
                for k, n in enumerate(nums):
                    blk, receipts = answers[2 * k], answers[2 * k + 1]
                    self.blocks[n] = {"hash": blk["hash"], "parent": blk["parentHash"],
                                      "txs": len(blk["transactions"]),
                                      "logs": sum(len(r["logs"]) for r in receipts)}
        with self.lock:
            return {n: self.blocks[n] for n in range(lo, hi + 1)}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.errors: list = []

    def add(self, **kw) -> None:
        with self.lock:
            self.counts.update(kw)

    def error(self, who: str, e: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{who}: {type(e).__name__}: {e}"[:500])


def batch_client(i: int, location: str, truth: Truth, head: dict, deadline: float,
                 stats: Stats) -> None:
    rng = random.Random(i)
    client = flight.connect(location)
    try:
        while time.monotonic() < deadline:
            top = head["stored"]
            lo = rng.randint(0, top)
            hi = min(top, lo + rng.randint(0, 40))
            kind = rng.choice(("blocks", "txs", "logs"))
            try:
                if kind == "blocks":
                    t = query(client, "SELECT block_num, hash, parent_hash FROM eth_rpc.blocks "
                                      f"WHERE block_num BETWEEN {lo} AND {hi} ORDER BY block_num")
                    got = {r["block_num"]: ("0x" + r["hash"].hex(), "0x" + r["parent_hash"].hex())
                           for r in t.to_pylist()}
                    want = {n: (b["hash"], b["parent"]) for n, b in truth.get(lo, hi).items()}
                else:
                    table = "transactions" if kind == "txs" else "logs"
                    t = query(client, f"SELECT block_num, count(*) AS n FROM eth_rpc.{table} "
                                      f"WHERE block_num BETWEEN {lo} AND {hi} GROUP BY block_num")
                    got = {r["block_num"]: r["n"] for r in t.to_pylist()}
                    want = {n: b[kind] for n, b in truth.get(lo, hi).items() if b[kind]}
                if got != want:
                    bad = sorted(n for n in set(got) | set(want) if got.get(n) != want.get(n))
                    raise AssertionError(f"{kind} {lo}..{hi}: blocks {bad[:5]} differ from the "
                                         f"node: {[(got.get(n), want.get(n)) for n in bad[:2]]}")
                stats.add(batch_queries=1, batch_rows=t.num_rows)
            except Exception as e:  # noqa: BLE001 - counted, the client goes on
                stats.error(f"batch client {i}", e)
                time.sleep(0.2)
    finally:
        client.close()


class StreamClient:
    """Follows a streaming query, keeps rows per committed microbatch, drops its
    connection once and resumes from its cursor."""

    def __init__(self, i: int, location: str, name: str, deadline: float, stats: Stats):
        self.i, self.location, self.name, self.deadline, self.stats = i, location, name, \
            deadline, stats
        self.sql, self.key = STREAMS[name]
        self.rows: list = []
        self.ranges: list = []
        self.cursor: Optional[dict] = None
        self.resumes = 0
        self.rng = random.Random(1000 + i)

    def run(self) -> None:
        drop_at = time.monotonic() + self.rng.uniform(0.2, 0.8) * (self.deadline - time.monotonic())
        try:
            while time.monotonic() < self.deadline:
                self._follow(drop_at if self.resumes == 0 else None)
        except Exception as e:  # noqa: BLE001 - counted
            self.stats.error(f"stream client {self.i} ({self.name})", e)

    def _follow(self, drop_at: Optional[float]) -> None:
        client = flight.connect(self.location)
        headers = [(b"amp-stream", b"true")]
        if self.cursor is not None:
            headers.append((b"amp-resume", json.dumps(self.cursor).encode()))
        options = flight.FlightCallOptions(headers=headers)
        info = client.get_flight_info(flight.FlightDescriptor.for_command(self.sql.encode()),
                                      options)
        reader = client.do_get(info.endpoints[0].ticket, options)
        stopper = threading.Timer(max(0.0, (drop_at or self.deadline) - time.monotonic()),
                                  reader.cancel)
        stopper.start()
        pending = None
        try:
            for chunk in reader:
                meta = json.loads(chunk.app_metadata.to_pybytes())
                kind = meta.get("kind")
                if kind == "microbatch_start":
                    if meta.get("is_reorg"):
                        raise AssertionError(f"unexpected reorg {meta}")
                    pending = {"range": meta["range"], "rows": []}
                elif kind == "data" and pending is not None:
                    pending["rows"] += [(r["block_num"], r[self.key]) for r in
                                        chunk.data.to_pylist()]
                elif kind == "microbatch_end" and pending is not None:
                    self.rows += pending["rows"]
                    self.ranges.append((pending["range"]["start"], pending["range"]["end"]))
                    self.cursor = meta["cursor"]
                    self.stats.add(microbatches=1, stream_rows=len(pending["rows"]))
                    pending = None
        except flight.FlightCancelledError:
            pass  # our own drop or the end of the run
        except Exception as e:  # noqa: BLE001
            if time.monotonic() < self.deadline and "cancel" not in str(e).lower():
                raise
        finally:
            stopper.cancel()
            client.close()
        if drop_at is not None and time.monotonic() < self.deadline:
            self.resumes += 1
            self.stats.add(stream_resumes=1)

    def check(self, location: str) -> None:
        """Exactly once, against a batch query over the blocks received."""
        if not self.ranges:
            raise AssertionError(f"stream client {self.i} ({self.name}) received no microbatch")
        expect = 0
        for start, end in self.ranges:
            if start != expect:
                raise AssertionError(f"stream client {self.i}: microbatch {start}..{end} after "
                                     f"block {expect - 1}")
            expect = end + 1
        last = self.ranges[-1][1]
        t = query(flight.connect(location),
                  f"SELECT * FROM ({self.sql}) WHERE block_num <= {last}")
        want = Counter((r["block_num"], r[self.key]) for r in t.to_pylist())
        got = Counter(self.rows)
        if got != want:
            extra, lost = got - want, want - got
            raise AssertionError(f"stream client {self.i} ({self.name}) through block {last}: "
                                 f"{sum(lost.values())} rows lost, {sum(extra.values())} "
                                 f"repeated or wrong, e.g. {list((lost or extra).items())[:2]}")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(clients: int = 200, duration: float = 60, block_interval: float = 0.5,
        stream_share: float = 0.25, tmp: Optional[Path] = None) -> dict:
    """Run the load test; returns the figures (see the module doc)."""
    own_tmp = None
    if tmp is None:
        own_tmp = tempfile.TemporaryDirectory()
        tmp = Path(own_tmp.name)
    node = Anvil(tmp)
    node.traffic(blocks=20, txs_per_block=4)
    # Every client may have a query running at once: size the admission limit
    # (max_concurrent_queries, default 64; docs/security.md) for the load, as an
    # operator expecting this many clients would.
    srv = Server(tmp / "data", node.url, "--max-concurrent-queries", str(clients + 16))
    traffic = None
    try:
        srv.wait_head(node.head())
        traffic = subprocess.Popen([str(PYTHON), str(TRAFFIC), "--rpc-url", node.url, "--mine",
                                    "--interval", str(block_interval), "--txs-per-block", "4",
                                    "--seed", "3"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        truth = Truth(node.url)
        stats = Stats()
        head = {"stored": srv.stored_head()}
        first_block = head["stored"]
        start = time.monotonic()
        deadline = start + duration
        samples: list = []
        done = threading.Event()

        def monitor():
            c = flight.connect(srv.location)
            while not done.is_set():
                try:
                    samples.append((round(time.monotonic() - start, 1), rss_mb(srv.proc.pid)))
                    t = query(c, "SELECT max(block_num) AS m FROM eth_rpc.blocks")
                    head["stored"] = t.column("m")[0].as_py()
                except Exception as e:  # noqa: BLE001
                    stats.error("monitor", e)
                done.wait(1.0)
            c.close()

        mon = threading.Thread(target=monitor, daemon=True)
        mon.start()
        threads, streamers = [], []
        n_stream = int(round(clients * stream_share))
        names = list(STREAMS)
        for i in range(clients):
            if i < n_stream:
                s = StreamClient(i, srv.location, names[i % len(names)], deadline, stats)
                streamers.append(s)
                th = threading.Thread(target=s.run, daemon=True)
            else:
                th = threading.Thread(target=batch_client, daemon=True,
                                      args=(i, srv.location, truth, head, deadline, stats))
            threads.append(th)
        for th in threads:
            th.start()
        for th in threads:
            th.join(max(1.0, deadline - time.monotonic() + 60))
        elapsed = time.monotonic() - start
        hung = sum(th.is_alive() for th in threads)
        if hung:
            stats.error("run", RuntimeError(f"{hung} clients still running after the deadline"))
        traffic.send_signal(signal.SIGINT)
        traffic.wait(30)
        srv.wait_head(node.head(), timeout=60)
        for s in streamers:
            try:
                s.check(srv.location)
            except Exception as e:  # noqa: BLE001
                stats.error("exactly-once", e)
        done.set()
        mon.join(5)
        rss = [mb for _, mb in samples]
        third = max(1, len(rss) // 3)
        out = {
            "clients": clients, "batch_clients": clients - n_stream, "stream_clients": n_stream,
            "duration_s": round(elapsed, 1),
            "blocks_during_run": node.head() - first_block,
            "batch_queries": stats.counts["batch_queries"],
            "batch_queries_per_s": round(stats.counts["batch_queries"] / elapsed, 1),
            "batch_rows": stats.counts["batch_rows"],
            "stream_rows": stats.counts["stream_rows"],
            "microbatches": stats.counts["microbatches"],
            "stream_resumes": stats.counts["stream_resumes"],
            "errors": len(stats.errors), "error_samples": stats.errors[:10],
            "rss_mb_first": round(rss[0], 1) if rss else None,
            "rss_mb_last": round(rss[-1], 1) if rss else None,
            "rss_mb_max": round(max(rss), 1) if rss else None,
            "rss_mb_first_third_max": round(max(rss[:third]), 1) if rss else None,
            "rss_mb_last_third_max": round(max(rss[-third:]), 1) if rss else None,
            "rss_samples": samples,
            "server_alive": srv.proc.poll() is None,
        }
        return out
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        if traffic is not None and traffic.poll() is None:
            traffic.kill()
            traffic.wait()
        srv.stop()
        node.stop()
        if own_tmp is not None:
            own_tmp.cleanup()


def rss_flat(figures: dict) -> bool:
    """Resident memory flat after warm-up: the last third's max is at most the first
    third's max x 1.5 + 64 MB."""
    return figures["rss_mb_last_third_max"] <= figures["rss_mb_first_third_max"] * 1.5 + 64


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--duration", type=float, default=60, help="seconds (default %(default)s)")
    p.add_argument("--block-interval", type=float, default=0.5,
                   help="seconds between mined blocks (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = p.parse_args()
    f = run(args.clients, args.duration, args.block_interval)
    print(f"load: {f['clients']} clients ({f['batch_clients']} batch, {f['stream_clients']} "
          f"streaming) for {f['duration_s']} s while {f['blocks_during_run']} blocks arrived")
    print(f"load: {f['batch_queries']} batch queries ({f['batch_queries_per_s']}/s), "
          f"{f['batch_rows']} rows; streams: {f['microbatches']} microbatches, "
          f"{f['stream_rows']} rows, {f['stream_resumes']} resumes; errors: {f['errors']}")
    print(f"load: server RSS first {f['rss_mb_first']} MB, last {f['rss_mb_last']} MB, "
          f"max {f['rss_mb_max']} MB (first third max {f['rss_mb_first_third_max']}, last "
          f"third max {f['rss_mb_last_third_max']}): {'flat' if rss_flat(f) else 'GROWING'}")
    for e in f["error_samples"]:
        print(f"load: error: {e}")
    if args.json:
        print(json.dumps({k: v for k, v in f.items() if k != "rss_samples"}))
    return 0 if f["errors"] == 0 and rss_flat(f) and f["server_alive"] else 1


if __name__ == "__main__":
    sys.exit(main())
