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

Prints JSON lines; with --report, writes the section bench/CLUSTER.md (which
`make bench` includes in BENCHMARKS.md) and replaces that section in BENCHMARKS.md;
`--report-only FILE.json` only renders. The machine is shared: ratios decide,
not absolute times.
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
from sluice_harness import Anvil, Server, wait_for  # noqa: E402

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
        mined = stream_latency.mine_blocks(node, blocks, arrivals)
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


CLUSTER_MD = ROOT / "bench" / "CLUSTER.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"
HEADING = "## Distributed roles (bench/cluster.py)"


def med(values: list[float]) -> str:
    f = "{:,.0f}" if min(values) >= 1000 else "{:,.1f}"
    m, lo, hi = (f.format(v) for v in (statistics.median(values), min(values), max(values)))
    return f"{m} ({lo}–{hi})" if len(values) > 1 else m


def render(out: list, command: str) -> str:
    import datetime
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    lines = [HEADING, "",
             f"Measured {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC at {commit} with "
             f"`{command}`, on this 2-core machine **while it was shared with and loaded by "
             "other builds and test runs** (load average 2–12): absolute numbers are noisy, "
             "compare the rows of one table. Median (min–max) over the runs.", ""]
    tip = [r for r in out if r["bench"] == "tip"]
    if tip:
        clients = tip[0]["clients"]
        lines += ["### Tip latency", "",
                  f"From the node answering `evm_mine` to the block's rows at each of {clients} "
                  "streaming clients (`SELECT block_num, hash FROM eth_rpc.blocks`, one pyarrow "
                  "thread each), 30 blocks with 3 transactions each. Distributed: one active "
                  "worker (extract, write, upload to MinIO, one PostgreSQL commit + NOTIFY), the "
                  "clients spread over three query servers (LISTEN, catch up, fetch the new "
                  "segments into the cache, microbatch).", "",
                  "| setup | p50 ms | p99 ms | samples per run |", "|---|---|---|---|"]
        for setup in ("single process", "3 query servers"):
            rs = [r for r in tip if r["setup"] == setup]
            if rs:
                lines.append(f"| {setup} | {med([r['p50_ms'] for r in rs])} | "
                             f"{med([r['p99_ms'] for r in rs])} | {rs[0]['samples']} |")
        lines += ["", "The distributed path adds, per block, the worker's upload of the block's "
                  "files to MinIO and its PostgreSQL commit, then on each server the NOTIFY, a "
                  "catch-up transaction and the download of the new files into the cache before "
                  "the microbatch runs; these steps were not timed one by one here."]
        lines.append("")
    scan = [r for r in out if r["bench"] == "scan"]
    if scan:
        lines += ["### Batch scan through the segment cache", "",
                  f"`{SCAN}` ({scan[0]['rows']:,} rows generated by sluice_bench_gen, direct "
                  "scan, read whole by pyarrow). The query server starts with an empty cache: its "
                  "first scan downloads every segment of the table from MinIO (loopback) before "
                  "reading; the next scans read the cached files (and from the second full read "
                  "on, the scan cache's Arrow IPC copies, as the single process does).", "",
                  "| setup | rows/s | seconds |", "|---|---|---|"]
        setups = []
        for r in scan:
            key = r["setup"] + (f", scan {r['scan']}" if "scan" in r else "")
            if key not in setups:
                setups.append(key)
        for key in setups:
            rs = [r for r in scan if r["setup"] + (f", scan {r['scan']}" if "scan" in r else "")
                  == key]
            lines.append(f"| {key} | {med([r['rows_per_s'] for r in rs])} | "
                         f"{med([r['seconds'] for r in rs])} |")
        lines.append("")
    cost = [r for r in out if r["bench"] == "server_cost"]
    if cost:
        lines += ["### The cost of one more query server", "",
                  f"Idle query servers (no clients) following a chain with a block a second "
                  f"(anvil `--block-time 1`, one worker), over {cost[0]['seconds']:.0f} s per "
                  "row: each server's CPU and resident memory, PostgreSQL's transactions per "
                  "second and the CPU of all its processes, and sluice's connections to it.", "",
                  "| query servers | CPU per server | RSS per server | PostgreSQL xacts/s | "
                  "PostgreSQL CPU | connections |", "|---|---|---|---|---|---|"]
        for r in cost:
            lines.append(f"| {r['servers']} | {r['server_cpu_pct_each']} % | "
                         f"{r['server_rss_mb_each']} MB | {r['pg_xacts_per_s']} | "
                         f"{r['pg_cpu_pct']} % | {r['pg_connections']} |")
        if len(cost) > 1:
            dx = (cost[-1]["pg_xacts_per_s"] - cost[0]["pg_xacts_per_s"]) / (len(cost) - 1)
            dc = (cost[-1]["pg_cpu_pct"] - cost[0]["pg_cpu_pct"]) / (len(cost) - 1)
            lines += ["", f"Each more server adds about {dx:.1f} PostgreSQL transactions/s "
                      f"({dc:.2f} % of a core) at one block a second: per new block, one read-only "
                      "catch-up transaction (a few statements) per server, woken by NOTIFY — no "
                      "polling — and two connections (the listener's and the catch-up's). The "
                      "worker's own commits (one transaction per block) are the rest."]
        lines.append("")
    return "\n".join(lines)


def write_report(out: list, command: str) -> None:
    section = render(out, command)
    CLUSTER_MD.write_text(section + "\n")
    text = BENCHMARKS.read_text()
    if HEADING in text:
        start = text.index(HEADING)
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + ("\n" + text[nxt:] if nxt >= 0 else "\n")
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    BENCHMARKS.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--blocks", type=int, default=30)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--only", choices=["tip", "scan", "cost"], action="append")
    p.add_argument("--json", type=Path)
    p.add_argument("--report", action="store_true",
                   help="write bench/CLUSTER.md and its section of BENCHMARKS.md")
    p.add_argument("--report-only", type=Path, help="render the section from a --json file")
    args = p.parse_args()
    command = "bench/cluster.py " + " ".join(sys.argv[1:])
    if args.report_only:
        write_report(json.loads(args.report_only.read_text()),
                     "bench/cluster.py --clients 100 --blocks 30 --rows 2000000 --runs 2")
        return
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
    if args.report:
        write_report(out, command)


if __name__ == "__main__":
    main()
