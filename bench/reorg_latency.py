"""Reorg latency of streaming queries: time from the node answering `anvil_reorg` to
the first `is_reorg` microbatch_start reaching a streaming client.

Starts a real anvil (no automatic mining) with demo traffic and sluice, opens
--clients streams of `SELECT block_num, hash FROM eth_rpc.blocks` that apply the
reorg protocol (ProtocolClient in tests/python/sluice_harness.py), then runs
--reorgs reorgs of depths 1, 2, 5, 20, ... one after the other, waiting for every
client to see each. Two kinds of reorg:

- same-height: `anvil_reorg` alone; the node's head keeps its number and changes
  its hash, which the server notices by polling the head;
- with-block:  `anvil_reorg` then one more block at once (`evm_mine`), so the new
  fork is longer, as on a live chain.

The time includes the extractor noticing, walking back to the common ancestor,
removing and re-extracting the replaced blocks, and the microbatch query. Prints
one JSON line per kind with p50 and max over the reorgs (first client to see it)
and over all (reorg, client) pairs.

    .venv/bin/python bench/reorg_latency.py [--reorgs 10] [--clients 3] [--mode both]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from sluice_harness import Anvil, ProtocolClient, Server, anvil_reorg, rpc  # noqa: E402

SQL = "SELECT block_num, hash FROM eth_rpc.blocks"
DEPTHS = [1, 2, 5, 20]


def run(mode: str, reorgs: int, clients: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = Anvil(tmp)
        srv = None
        streams = []
        try:
            node.traffic(blocks=max(DEPTHS) + 10, txs_per_block=3)
            srv = Server(tmp / "data", node.url)
            srv.wait_head(node.head())
            streams = [ProtocolClient(srv.location, SQL) for _ in range(clients)]
            first, every, wrong_start = [], [], 0
            for i in range(reorgs):
                head = node.head()
                for s in streams:
                    s.wait_until(head)
                depth = DEPTHS[i % len(DEPTHS)]
                t0 = anvil_reorg(node.url, depth)
                if mode == "with-block":
                    rpc(node.url, "evm_mine")
                for s in streams:
                    s.wait_reorgs(i + 1, timeout=30)
                arrivals = [s.reorgs[i][0] - t0 for s in streams]
                wrong_start += sum(s.reorgs[i][1]["start"] != head - depth + 1 for s in streams)
                first.append(min(arrivals) * 1000)
                every.extend(a * 1000 for a in arrivals)
                node.mine(1)  # the next reorg starts from a fresh head
        finally:
            for s in streams:
                s.close()
            if srv is not None:
                srv.stop()
            node.stop()
    return {"mode": mode, "reorgs": reorgs, "clients": clients,
            "p50_ms": round(statistics.median(first), 1), "max_ms": round(max(first), 1),
            "all_clients_p50_ms": round(statistics.median(every), 1),
            "all_clients_max_ms": round(max(every), 1),
            "is_reorg_not_at_ancestor_plus_1": wrong_start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reorgs", type=int, default=10)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--mode", choices=["same-height", "with-block", "both"], default="both")
    args = p.parse_args()
    modes = ["same-height", "with-block"] if args.mode == "both" else [args.mode]
    for mode in modes:
        print(json.dumps(run(mode, args.reorgs, args.clients)), flush=True)


if __name__ == "__main__":
    main()
