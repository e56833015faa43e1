#!/usr/bin/env python3
"""Checks that a chain fed by demo/traffic.py is "worth querying".

Reads every block (eth_getBlockByNumber with full txs) and its receipts
(eth_getBlockReceipts) and checks that there are blocks with several txs,
ERC-20 Transfer logs (3 topics) and ERC-721 Transfer logs (4 topics), Approval
logs, a failed receipt (status 0x0) and a contract creation (to = null).
Prints a summary; exits 1 if anything is missing.

    .venv/bin/python demo/check_chain.py --rpc-url http://127.0.0.1:8545
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import urllib.request

TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
APPROVAL = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"


def rpc(url: str, method: str, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer = json.loads(resp.read())
    if answer.get("error"):
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    p.add_argument("--min-busy-blocks", type=int, default=5,
                   help="blocks with at least 3 txs required (default %(default)s)")
    args = p.parse_args()

    head = int(rpc(args.rpc_url, "eth_blockNumber"), 16)
    c = collections.Counter()
    tx_types = collections.Counter()
    for n in range(head + 1):
        block = rpc(args.rpc_url, "eth_getBlockByNumber", hex(n), True)
        receipts = rpc(args.rpc_url, "eth_getBlockReceipts", hex(n))
        txs = block["transactions"]
        assert len(receipts) == len(txs), f"block {n}: {len(txs)} txs but {len(receipts)} receipts"
        c["blocks"] += 1
        c["txs"] += len(txs)
        if len(txs) >= 3:
            c["busy_blocks"] += 1
        for tx in txs:
            tx_types[tx.get("type")] += 1
            if tx.get("to") is None:
                c["creations"] += 1
        for r in receipts:
            if r["status"] == "0x0":
                c["failed"] += 1
            for lg in r["logs"]:
                t = lg["topics"]
                c["logs"] += 1
                if t and t[0] == TRANSFER and len(t) == 3:
                    c["erc20_transfers"] += 1
                elif t and t[0] == TRANSFER and len(t) == 4:
                    c["erc721_transfers"] += 1
                elif t and t[0] == APPROVAL:
                    c["approvals"] += 1
    print(f"head {head}: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items()))
          + f"; tx types {dict(sorted(tx_types.items()))}")
    missing = [k for k in ("erc20_transfers", "erc721_transfers", "approvals", "failed", "creations")
               if c[k] == 0]
    if c["busy_blocks"] < args.min_busy_blocks:
        missing.append(f"busy_blocks>={args.min_busy_blocks}")
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
