"""Workload 5: extraction. Backfill speed of sluice against the raw speed of
fetching the same JSON-RPC answers.

Fills a real anvil with --blocks blocks, each holding --txs-per-block
transactions from distinct dev accounts: half ETH transfers, half calls to a tiny
contract that emits one log per call (LOG1 of its calldata). Then, alternating,
--runs times each:
  - raw: build/bench/sluice_bench_rawfetch fetches blocks 1..N with the same
    batching and concurrency as the extractor (rpc_batch_blocks,
    rpc_max_in_flight) and drops the answers;
  - sluice: `sluice serve` on an empty data directory backfills blocks 0..N
    (decode, Arrow, Parquet, fsync); timed from the process start until a query
    sees block N (so sluice's start-up counts against it);
  - cryo (c): cryo 0.3.2 from PyPI (bench/requirements.txt), `cryo.freeze` of
    blocks, transactions and logs of blocks 0..N into Parquet, in a process of its
    own, timed from its start to its end, with its fastest settings found here
    (CRYO_ARGS).
Reports blocks/s of each and the ratios. Then, on the last sluice backfill (once
its compaction has settled): for the busy and the rare contract, `eth_getLogs` of
the node (address and topic, blocks 0..N) against sluice's
`SELECT * FROM eth_rpc.logs WHERE address = … AND topic0 = …` (same rows), median
of 3 each.

    .venv/bin/python bench/extraction.py --blocks 10000 --runs 3
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow.flight as flight

import common
from common import RAWFETCH
from sluice_harness import Anvil, Server, rpc_batch, rpc  # noqa: E402

# Runtime: CALLDATACOPY the calldata to memory, LOG1 it with a fixed topic, STOP.
TOPIC = "ab" * 32
RUNTIME = "366000600037" + "7f" + TOPIC + "36" + "6000" + "a1" + "00"
INIT = "602c600c600039602c6000f3" + RUNTIME


# cryo's fastest settings here (measured on this 2-core machine against anvil):
# chunks of 1,000 blocks, many requests in flight, no rate limit, no progress report.
CRYO_ARGS = dict(chunk_size=1000, max_concurrent_requests=16, max_concurrent_chunks=4,
                 no_verbose=True)


def rare_block(b: int, blocks: int) -> bool:
    """Whether block b is in one of the rare contract's 3 ranges of 20 blocks."""
    return any(blocks * t // 10 <= b < blocks * t // 10 + 20 for t in (1, 5, 9))


def fill_chain(url: str, blocks: int, txs_per_block: int) -> tuple[int, list[str]]:
    """Mine `blocks` blocks with transactions and logs; return the head and the
    emitters (busy, second, rare)."""
    accounts = rpc(url, "eth_accounts")
    if txs_per_block > len(accounts):
        raise ValueError(f"at most {len(accounts)} transactions per block (distinct senders)")
    for _ in range(3):
        rpc(url, "eth_sendTransaction", [{"from": accounts[0], "data": "0x" + INIT, "gas": hex(200000)}])
    rpc(url, "evm_mine")
    emitters = [r["contractAddress"] for r in rpc(url, "eth_getBlockReceipts", ["latest"])]
    for b in range(blocks - 1):
        calls = []
        for k in range(txs_per_block):
            if k % 2:
                emitter = emitters[(k // 2) % 2]
                if emitter == emitters[0] and rare_block(b, blocks):
                    emitter = emitters[2]
                tx = {"from": accounts[k], "to": emitter, "gas": hex(100000),
                      "data": "0x" + f"{b:064x}{k:064x}"}
            else:
                tx = {"from": accounts[k], "to": accounts[(k + 1) % len(accounts)],
                      "value": hex(10**12 + b), "gas": hex(21000)}
            calls.append(("eth_sendTransaction", [tx]))
        rpc_batch(url, calls)
        rpc(url, "evm_mine")
    return int(rpc(url, "eth_blockNumber"), 16), emitters


def raw_fetch(url: str, head: int, batch: int, in_flight: int) -> dict:
    out = subprocess.run([str(RAWFETCH), "--rpc-url", url, "--from", "1", "--to", str(head),
                          "--batch-blocks", str(batch), "--in-flight", str(in_flight)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def cryo_backfill(url: str, head: int, tmp: Path) -> dict:
    """cryo.freeze of blocks, transactions and logs of blocks 0..head, in a process
    of its own (so its start-up counts, as sluice's does)."""
    out = tmp / f"cryo-{time.time_ns()}"
    out.mkdir()
    code = ("import cryo, json, sys; a = json.loads(sys.argv[1]); "
            "cryo.freeze(['blocks', 'transactions', 'logs'], **a)")
    args = dict(CRYO_ARGS, blocks=[f"0:{head + 1}"], rpc=url, output_dir=str(out))
    t0 = time.perf_counter()
    subprocess.run([str(common.PYTHON), "-c", code, json.dumps(args)], check=True,
                   capture_output=True, text=True, timeout=3600)
    secs = time.perf_counter() - t0
    files = list(out.rglob("*.parquet"))
    shutil.rmtree(out, ignore_errors=True)
    if not files:
        raise RuntimeError("cryo wrote no files")
    return {"blocks": head, "seconds": secs, "blocks_per_sec": head / secs}


def settle_segments(data: Path, quiet_secs: float = 2.0, timeout: float = 120.0) -> int:
    """Wait until the store's compaction has nothing left to merge (its logs files
    unchanged for `quiet_secs`): the needles are measured on the store as a server
    that has run a while holds it, not on a backfill's commits being merged. Returns
    the number of logs segment files."""
    def files() -> list[str]:
        return sorted(p.name for p in data.glob("*/logs/*.parquet"))
    last, since, t0 = files(), time.monotonic(), time.monotonic()
    while time.monotonic() - since < quiet_secs and time.monotonic() - t0 < timeout:
        time.sleep(0.2)
        now = files()
        if now != last:
            last, since = now, time.monotonic()
    return len(last)


def get_logs_vs_sluice(url: str, data: Path, emitters: list[str], runs: int = 3) -> dict:
    """eth_getLogs of the node against sluice's needle query, for the busy and the
    rare emitter over all blocks; rows must agree."""
    out = {}
    srv = Server(data, url)
    try:
        head = srv.stored_head()
        client = srv.client()
        settled = settle_segments(data)
        for name, emitter in (("busy", emitters[0]), ("rare", emitters[2])):
            flt = {"fromBlock": "0x0", "toBlock": hex(head), "address": emitter,
                   "topics": ["0x" + TOPIC]}
            sql = ("SELECT * FROM eth_rpc.logs WHERE address = from_hex('" + emitter[2:] +
                   "') AND topic0 = from_hex('" + TOPIC + "') AND block_num <= " + str(head))
            node_ms, ours_ms, rows = [], [], None
            for _ in range(runs):
                t0 = time.perf_counter()
                logs = rpc(url, "eth_getLogs", [flt], timeout=600)
                node_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
                table = client.do_get(info.endpoints[0].ticket).read_all()
                ours_ms.append((time.perf_counter() - t0) * 1000)
                if table.num_rows != len(logs):
                    raise RuntimeError(f"{name}: sluice {table.num_rows} rows, eth_getLogs {len(logs)}")
                rows = len(logs)
            out[name] = {"address": emitter, "rows": rows, "blocks": head + 1,
                         "segment_files": settled,
                         "eth_getLogs_ms": common.summary(node_ms),
                         "sluice_ms": common.summary(ours_ms),
                         "faster": common.summary([n / o for n, o in zip(node_ms, ours_ms)])}
        client.close()
    finally:
        srv.stop()
    return out


def sluice_backfill(url: str, head: int, tmp: Path, batch: int, in_flight: int,
                    keep: bool = False) -> dict:
    """`keep`: leave the data directory (its path in the answer's "data")."""
    data = tmp / f"data-{time.time_ns()}"
    t0 = time.perf_counter()
    srv = Server(data, url, "--rpc-batch-blocks", str(batch), "--rpc-max-in-flight",
                 str(in_flight))
    try:
        while srv.stored_head() < head:
            time.sleep(0.02)
        secs = time.perf_counter() - t0
    finally:
        srv.stop()
        if not keep:
            shutil.rmtree(data, ignore_errors=True)
    return {"blocks": head, "seconds": secs, "blocks_per_sec": head / secs, "data": str(data)}


def run(blocks: int, runs: int, txs_per_block: int = 4, batch: int = 50,
        in_flight: int = 4, with_cryo: bool | None = None) -> dict:
    """`with_cryo`: run baseline (c); by default when cryo is installed (make bench
    installs bench/requirements.txt; the smoke test of `make test` does not)."""
    if with_cryo is None:
        with_cryo = importlib.util.find_spec("cryo") is not None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = Anvil(tmp)
        try:
            t0 = time.monotonic()
            head, emitters = fill_chain(node.url, blocks, txs_per_block)
            fill_secs = time.monotonic() - t0
            counts = rpc_batch(node.url, [("eth_getBlockTransactionCountByNumber", [hex(head)])])
            raw, ours, cryo = [], [], []
            for i in range(runs):
                raw.append(raw_fetch(node.url, head, batch, in_flight))
                ours.append(sluice_backfill(node.url, head, tmp, batch, in_flight,
                                            keep=i == runs - 1))
                if with_cryo:
                    cryo.append(cryo_backfill(node.url, head, tmp))
            needles = get_logs_vs_sluice(node.url, Path(ours[-1]["data"]), emitters)
        finally:
            node.stop()
    raw_bps = [r["blocks_per_sec"] for r in raw]
    our_bps = [r["blocks_per_sec"] for r in ours]
    extra = {"needles": needles}
    if cryo:
        cryo_bps = [r["blocks_per_sec"] for r in cryo]
        extra["cryo_blocks_per_sec"] = common.summary(cryo_bps)
        extra["vs_cryo"] = common.summary([o / c for o, c in zip(our_bps, cryo_bps)])
        extra["cryo_args"] = CRYO_ARGS
    return {"blocks": head, "txs_per_block": int(counts[0], 16), "fill_seconds": fill_secs,
            "rpc_batch_blocks": batch, "rpc_max_in_flight": in_flight,
            "raw_bytes": raw[0]["bytes"],
            "raw_blocks_per_sec": common.summary(raw_bps),
            "sluice_blocks_per_sec": common.summary(our_bps),
            "ratio": common.summary([o / r for o, r in zip(our_bps, raw_bps)]), **extra}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=10000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--txs-per-block", type=int, default=4)
    args = p.parse_args()
    print(json.dumps(run(args.blocks, args.runs, args.txs_per_block), indent=1))


if __name__ == "__main__":
    main()
