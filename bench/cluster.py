"""The distributed roles, measured (docs/deploy.md; issue: "Measured, not tested"):

1. tip latency: from the node answering `evm_mine` to the block's rows at each of N
   streaming clients spread over three query servers (worker: extract, upload to
   MinIO, commit in PostgreSQL + NOTIFY; servers: catch up, fetch, microbatch),
   p50/p99, against the single process (bench/stream_latency.py's run);
2. batch scan throughput (`SELECT * FROM eth_rpc.transactions`, direct scan) of a
   query server through its segment cache, cold (every segment from MinIO) and
   warm, against the single process reading its local disk;
3. the cost of one more query server: CPU and memory of an idle server following
   a chain with a block a second, and the PostgreSQL load per server
   (transactions/s and backend CPU, from pg_stat_database and /proc).

    .venv/bin/python bench/cluster.py [--clients 100] [--blocks 30] [--rows 2000000]
        [--json out.json]

Prints JSON lines; bench/cluster_report.py turns the --json file into BENCHMARKS.md's
section. The machine is shared: ratios decide, not absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.flight as flight

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "bench"))
import stream_latency  # noqa: E402
from cluster_harness import (MINIO_PASSWORD, MINIO_USER, MinIO, Postgres, QueryServer,  # noqa: E402
                             Worker, cluster_env)
from sluice_harness import Anvil, Server, rpc, wait_for  # noqa: E402

GEN = ROOT / "build" / "bench" / "sluice_bench_gen"
SCAN = "SELECT * FROM eth_rpc.transactions"


def emit(out: list, **record) -> None:
    print(json.dumps(record), flush=True)
    out.append(record)


# ---- 1. tip latency ---------------------------------------------------------------

def tip_latency(tmp: Path, clients: int, blocks: int) -> list[float]:
    tmp.mkdir(parents=True, exist_ok=True)
    pg = Postgres()
    minio = MinIO(tmp / "minio")
    node = Anvil(tmp)
    node.mine(1)
    s3 = minio.url("tip")
    worker = Worker(tmp / "w" / "data", node.url, pg.url, s3, name="w")
    servers = []
    try:
        wait_for(worker.active, 30, "the worker to be active")
        servers = [QueryServer(tmp / f"q{i}" / "data", pg.url, s3) for i in range(3)]
        for q in servers:
            q.wait_head(node.head())
        stop = threading.Event()
        arrivals = [dict() for _ in range(clients)]
        for i in range(clients):
            ready = threading.Event()
            threading.Thread(target=stream_latency.follow,
                             args=(servers[i % 3].location, arrivals[i], ready, stop),
                             daemon=True).start()
            ready.wait(30)
        time.sleep(1.0)
        accounts = rpc(node.url, "eth_accounts")
        import random
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
            time.sleep(rng.uniform(0.05, 0.15))
        stop.set()
        return [(a[n] - t0) * 1000 for n, t0 in mined.items() for a in arrivals if n in a]
    finally:
        for q in servers:
            q.stop()
        worker.stop()
        node.stop()
        minio.stop()
        pg.close()


# ---- 2. batch scan throughput -----------------------------------------------------

def scan_seconds(location: str) -> tuple[float, int]:
    client = flight.connect(location)
    t0 = time.perf_counter()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(SCAN.encode()))
    rows = 0
    for e in info.endpoints:
        for chunk in client.do_get(e.ticket):
            rows += chunk.data.num_rows
    return time.perf_counter() - t0, rows


def generate(args: list[str], env=None) -> dict:
    out = subprocess.run([str(GEN), *args], check=True, capture_output=True, text=True,
                         env=env, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def batch_scan(tmp: Path, rows: int, runs: int, out: list) -> None:
    local = tmp / "local"
    generate(["--data-dir", str(local), "--transactions", str(rows)])
    single = Server(local, "http://127.0.0.1:1", "--extract", "false")
    try:
        for r in range(runs):
            secs, n = scan_seconds(single.location)
            emit(out, bench="scan", setup="single process, local disk", run=r + 1, rows=n,
                 seconds=round(secs, 3), rows_per_s=round(n / secs))
    finally:
        single.stop()
    pg = Postgres()
    minio = MinIO(tmp / "minio-scan")
    try:
        s3 = minio.url("scan")
        generate(["--data-dir", str(tmp / "gen"), "--transactions", str(rows), "--postgres-url",
                  pg.url, "--object-store-url", s3], env=cluster_env())
        for r in range(runs):
            # A new server, a new (empty) cache: the first scan reads every segment
            # from MinIO, the next ones from the cache.
            q = QueryServer(tmp / f"scan-q{r}" / "data", pg.url, s3)
            try:
                for attempt, label in ((1, "cold (segments from MinIO)"),
                                       (2, "warm (segment cache)"), (3, "warm (segment cache)")):
                    secs, n = scan_seconds(q.location)
                    emit(out, bench="scan", setup=f"query server, {label}", run=r + 1,
                         scan=attempt, rows=n, seconds=round(secs, 3),
                         rows_per_s=round(n / secs))
            finally:
                q.stop()
    finally:
        minio.stop()
        pg.close()


# ---- 3. cost of one more query server ---------------------------------------------

def cpu_seconds(pids: list[int]) -> float:
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def postgres_pids(pg: Postgres) -> list[int]:
    pid = int((pg.data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                              text=True).stdout.split()
    return [pid] + [int(c) for c in children]


def server_cost(tmp: Path, window: float, out: list) -> None:
    pg = Postgres()
    minio = MinIO(tmp / "minio-cost")
    node = Anvil(tmp, block_time=1)
    s3 = minio.url("cost")
    worker = Worker(tmp / "cw" / "data", node.url, pg.url, s3, name="cw")
    servers = []
    try:
        wait_for(worker.active, 30, "the worker to be active")
        for count in (1, 2, 3, 4):
            while len(servers) < count:
                q = QueryServer(tmp / f"cost-q{len(servers)}" / "data", pg.url, s3)
                q.wait_head(node.head())
                servers.append(q)
            time.sleep(2)
            xacts = lambda: int(pg.psql("SELECT sum(xact_commit + xact_rollback) "
                                        "FROM pg_stat_database"))
            pids = [q.proc.pid for q in servers]
            pg_pids = postgres_pids(pg)
            c0, p0, x0, b0 = cpu_seconds(pids), cpu_seconds(pg_pids), xacts(), node.head()
            time.sleep(window)
            c1, p1, x1, b1 = cpu_seconds(pids), cpu_seconds(pg_pids), xacts(), node.head()
            conns = int(pg.psql("SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name = 'sluice'"))
            emit(out, bench="server_cost", servers=count, seconds=window, blocks=b1 - b0,
                 server_cpu_pct_each=round(100 * (c1 - c0) / window / count, 2),
                 server_rss_mb_each=round(statistics.mean(rss_mb(p) for p in pids), 1),
                 pg_xacts_per_s=round((x1 - x0 - 2) / window, 1),  # minus this probe's own
                 pg_cpu_pct=round(100 * (p1 - p0) / window, 2),
                 pg_connections=conns)
    finally:
        for q in servers:
            q.stop()
        worker.stop()
        node.stop()
        minio.stop()
        pg.close()


def pct(lat: list[float]) -> dict:
    return stream_latency.percentiles(lat)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--blocks", type=int, default=30)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--only", choices=["tip", "scan", "cost"], action="append")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    out: list = []
    only = set(args.only or ["tip", "scan", "cost"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "tip" in only:
            for r in range(args.runs):
                emit(out, bench="tip", setup="single process", run=r + 1, clients=args.clients,
                     **pct(stream_latency.run(args.clients, args.blocks)))
                emit(out, bench="tip", setup="3 query servers", run=r + 1, clients=args.clients,
                     **pct(tip_latency(tmp / f"tip{r}", args.clients, args.blocks)))
        if "scan" in only:
            batch_scan(tmp, args.rows, args.runs, out)
        if "cost" in only:
            server_cost(tmp, args.window, out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
