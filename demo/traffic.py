#!/usr/bin/env python3
"""Traffic generator for the sluice demo chain: "a chain worth querying".

Talks JSON-RPC (standard library only) to a dev node such as anvil or
`geth --dev`, using its unlocked dev accounts (eth_accounts +
eth_sendTransaction). geth --dev has one: then every transaction is sent by it,
to it or to ten fixed outside addresses, and the ops that need a second signer
(transferFrom after an approve, a transfer by a non-owner) are left out.

Setup (two blocks when --mine is given):
  1. account 0 deploys SluiceToken (ERC-20) and SluiceNFT (ERC-721);
     on a fresh anvil they land at 0x5FbDB2315678afecb367f032d93F642f64180aa3
     and 0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512.
  2. account 0 mints 1,000,000 SLT to every dev account, and every dev account
     mints itself one NFT.
Then each round (one block per round with --mine) sends --txs-per-block
transactions, a mix of:
  - plain ETH transfers (legacy, EIP-2930 and EIP-1559 transactions; some to
    fresh addresses),
  - ERC-20 transfer / approve / transferFrom,
  - ERC-721 mint / transferFrom,
  - mints on tokens deployed during the run,
  - every 4th round (2, 6, 10, ...) one failing call with an explicit gas limit,
    so it is mined with status 0 (ERC-20 transfer above the balance, or an
    ERC-721 transferFrom by a non-owner),
  - every 6th round (3, 9, 15, ...) one contract creation (a new SluiceToken or
    SluiceNFT; the receipt has contractAddress and the tx has to = null).
Choices are deterministic for a given --seed (on a fresh chain with --mine).

One short line per round goes to stderr. SIGINT/SIGTERM stop it cleanly
(exit 0) after the current step; a second signal exits at once. Transport
errors (node down, connection reset, timeouts) are retried with backoff,
forever; a JSON-RPC error on one transaction skips that transaction.

    .venv/bin/python demo/traffic.py --rpc-url http://127.0.0.1:8545 --mine --blocks 20 --interval 0
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ETHER = 10**18
TOKEN_UNIT = 10**18
INITIAL_TOKENS = 1_000_000 * TOKEN_UNIT

GAS_DEPLOY = 1_500_000
GAS_CALL = 400_000  # geth --dev (latest forks) prices a first mint at ~250k
GAS_FAIL = 100_000
GAS_ETH = 21_000

FAIL_EVERY, FAIL_PHASE = 4, 2      # rounds 2, 6, 10, ...
CREATE_EVERY, CREATE_PHASE = 6, 3  # rounds 3, 9, 15, ...


def log(msg: str) -> None:
    print(f"traffic: {msg}", file=sys.stderr, flush=True)


class Stopped(Exception):
    """Raised inside waits and retries once a stop signal has arrived."""


class ChainReset(Exception):
    """The node's head went backwards: it was restarted with a fresh chain."""


class RpcError(Exception):
    """A JSON-RPC error answer (the node is up; the request itself failed)."""

    def __init__(self, method: str, error: dict):
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method}: {error.get('message')} (code {self.code})")


class Rpc:
    """Minimal JSON-RPC client. Transport failures are retried with backoff."""

    def __init__(self, url: str, stop: threading.Event, timeout: float = 10.0):
        self.url = url
        self.stop = stop
        self.timeout = timeout
        self._id = 0

    def call(self, method: str, *params):
        delay = 0.2
        warned = False
        while True:
            if self.stop.is_set():
                raise Stopped()
            self._id += 1
            body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method,
                               "params": list(params)}).encode()
            req = urllib.request.Request(self.url, data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    answer = json.loads(resp.read())
            except urllib.error.HTTPError as e:
                if e.code < 500 and e.code != 429:
                    raise RpcError(method, {"code": e.code, "message": f"HTTP {e.code}"}) from e
                problem = f"HTTP {e.code}"
            except (urllib.error.URLError, http.client.HTTPException, OSError,
                    ValueError) as e:
                problem = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            else:
                if isinstance(answer, dict) and answer.get("error"):
                    raise RpcError(method, answer["error"])
                if warned:
                    log(f"{self.url} answers again")
                return answer.get("result") if isinstance(answer, dict) else None
            if not warned or delay >= 5.0:
                log(f"{method} failed ({problem}); retrying in {delay:.1f}s")
                warned = True
            if self.stop.wait(delay):
                raise Stopped()
            delay = min(delay * 2, 5.0)


# ---- ABI encoding by hand: 4-byte selector + 32-byte words ------------------------

def w_addr(a: str) -> str:
    return a[2:].lower().rjust(64, "0")


def w_uint(n: int) -> str:
    return format(n, "064x")


def topic_addr(t: str) -> str:
    return "0x" + t[-40:]


class Contract:
    def __init__(self, artifact: dict):
        self.name = artifact["contractName"]
        self.bytecode = artifact["bytecode"]
        self.selectors = artifact["methodIdentifiers"]
        self.events = artifact.get("events", {})

    def data(self, signature: str, *words: str) -> str:
        return "0x" + self.selectors[signature] + "".join(words)


def load_artifact(directory: str, name: str) -> Contract:
    path = os.path.join(directory, f"{name}.json")
    try:
        with open(path) as f:
            return Contract(json.load(f))
    except FileNotFoundError:
        sys.exit(f"traffic: {path} not found; run scripts/bootstrap.sh (demo/build_contracts.sh)")


TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
APPROVAL_TOPIC = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"


class Traffic:
    def __init__(self, args, stop: threading.Event):
        self.args = args
        self.stop = stop
        self.rpc = Rpc(args.rpc_url, stop)
        self.rng = random.Random(args.seed)
        self.token_c = load_artifact(args.contracts, "SluiceToken")
        self.nft_c = load_artifact(args.contracts, "SluiceNFT")
        for c, sig in ((self.token_c, "Transfer(address,address,uint256)"),
                       (self.nft_c, "Transfer(address,address,uint256)")):
            if c.events.get(sig, TRANSFER_TOPIC) != TRANSFER_TOPIC:
                sys.exit("traffic: unexpected Transfer topic in artifacts")
        self.accounts: list[str] = []
        self.outsiders: list[str] = []   # recipients only (a node with one dev account)
        self.nonces: dict[str, int] = {}
        self.token = ""            # main ERC-20 address
        self.nft = ""              # main ERC-721 address
        self.nft_owner: dict[int, str] = {}                 # main NFT tokenId -> owner
        self.allowances: dict[tuple[str, str], int] = {}    # (owner, spender) -> amount
        self.extra_tokens: list[tuple[str, str]] = []       # (ERC-20 address, owner)
        self.extra_nfts: list[str] = []                     # ERC-721 addresses
        self.created: dict[str, str] = {}                   # creation tx hash -> "token"/"nft"
        self.deploy_block = 0
        self.head_seen = 0

    # ---- basic plumbing ------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        if seconds > 0 and self.stop.wait(seconds):
            raise Stopped()

    def resync_nonce(self, addr: str) -> None:
        self.nonces[addr] = int(self.rpc.call("eth_getTransactionCount", addr, "pending"), 16)

    def send(self, frm: str, to: str | None, data: str = "0x", value: int = 0,
             gas: int = GAS_CALL, kind: str = "1559", fees: dict | None = None) -> str | None:
        """eth_sendTransaction with an explicit nonce and gas; returns the hash or None."""
        tx = {"from": frm, "gas": hex(gas), "value": hex(value), "nonce": hex(self.nonces[frm])}
        if to is not None:
            tx["to"] = to
        if data != "0x":
            tx["input"] = data
        fees = fees or {}
        if kind == "legacy" and "gasPrice" in fees:
            tx["gasPrice"] = fees["gasPrice"]
        elif kind == "2930" and "gasPrice" in fees:
            tx["gasPrice"] = fees["gasPrice"]
            tx["accessList"] = [{"address": to or frm,
                                 "storageKeys": ["0x" + "00" * 31 + "00", "0x" + "00" * 31 + "01"]}]
        elif kind == "1559" and "maxFeePerGas" in fees:
            tx["maxFeePerGas"] = fees["maxFeePerGas"]
            tx["maxPriorityFeePerGas"] = fees["maxPriorityFeePerGas"]
        try:
            h = self.rpc.call("eth_sendTransaction", tx)
        except RpcError as e:
            log(f"tx from {frm[:10]} rejected: {e}")
            self.resync_nonce(frm)
            return None
        self.nonces[frm] += 1
        return h

    def mine_and_wait(self, hashes: list[str], timeout: float = 60.0) -> list[dict]:
        """Mines (with --mine) and waits for every receipt; returns those that arrived."""
        if self.args.mine:
            self.rpc.call("evm_mine")
        pending = [h for h in hashes if h]
        receipts: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        polls = 0
        while pending:
            still = []
            for h in pending:
                r = self.rpc.call("eth_getTransactionReceipt", h)
                if r:
                    receipts[h] = r
                else:
                    still.append(h)
            pending = still
            if not pending:
                break
            if time.monotonic() > deadline:
                log(f"{len(pending)} transactions not mined after {timeout:.0f}s; resyncing nonces")
                for a in self.accounts:
                    self.resync_nonce(a)
                break
            polls += 1
            if polls % 10 == 0:
                self.see_head(int(self.rpc.call("eth_blockNumber"), 16))
                if self.args.mine:
                    self.rpc.call("evm_mine")   # something did not fit into the last block
            self.sleep(0.05 if self.args.mine else 0.2)
        return [receipts[h] for h in hashes if h in receipts]

    def see_head(self, number: int) -> None:
        if number < self.head_seen:
            raise ChainReset(f"head went from {self.head_seen} back to {number}")
        self.head_seen = number

    def fees(self) -> dict:
        block = self.rpc.call("eth_getBlockByNumber", "latest", False) or {}
        self.see_head(int(block.get("number") or "0x0", 16))
        base = int(block.get("baseFeePerGas") or "0x0", 16)
        tip = self.rng.choice([1, 1, 2, 3]) * 10**9
        return {
            "gasPrice": hex(2 * base + tip),
            "maxFeePerGas": hex(2 * base + tip),
            "maxPriorityFeePerGas": hex(tip),
        }

    def absorb(self, receipts: list[dict]) -> None:
        """Updates the local view of NFT owners, allowances and new contracts from receipts."""
        for r in receipts:
            if r.get("status") != "0x1":
                continue
            if r.get("contractAddress") and not r.get("to"):
                addr = r["contractAddress"].lower()
                if addr in (self.token, self.nft):
                    continue
                if self.created.pop(r["transactionHash"], "token") == "nft":
                    self.extra_nfts.append(addr)
                else:
                    self.extra_tokens.append((addr, r["from"].lower()))
            for lg in r.get("logs", []):
                topics = lg.get("topics", [])
                if lg["address"].lower() == self.nft and topics and topics[0] == TRANSFER_TOPIC \
                        and len(topics) == 4:
                    self.nft_owner[int(topics[3], 16)] = topic_addr(topics[2])
                elif lg["address"].lower() == self.token and topics and topics[0] == APPROVAL_TOPIC:
                    key = (topic_addr(topics[1]), topic_addr(topics[2]))
                    self.allowances[key] = int(lg["data"], 16)

    # ---- setup ---------------------------------------------------------------------

    def setup(self) -> None:
        chain_id = int(self.rpc.call("eth_chainId"), 16)
        accounts = self.rpc.call("eth_accounts") or []
        self.accounts = [a.lower() for a in accounts[:10]]
        if not self.accounts:
            sys.exit("traffic: the node must expose an unlocked account (eth_accounts)")
        if len(self.accounts) == 1:
            outsider_rng = random.Random(self.args.seed + 1)
            self.outsiders = ["0x" + outsider_rng.randbytes(20).hex() for _ in range(10)]
        for a in self.accounts:
            self.resync_nonce(a)
        head = int(self.rpc.call("eth_blockNumber"), 16)
        self.head_seen = head
        log(f"chain {chain_id} at block {head}, {len(self.accounts)} dev accounts, "
            f"{'mining with evm_mine' if self.args.mine else 'node mines on its own'}")

        deployer = self.accounts[0]
        hashes = [self.send(deployer, None, self.token_c.bytecode, gas=GAS_DEPLOY),
                  self.send(deployer, None, self.nft_c.bytecode, gas=GAS_DEPLOY)]
        if None in hashes:
            sys.exit("traffic: could not deploy the demo contracts")
        receipts = self.mine_and_wait(hashes)
        if len(receipts) != 2 or any(r.get("status") != "0x1" for r in receipts):
            sys.exit("traffic: deploying the demo contracts failed")
        self.token = receipts[0]["contractAddress"].lower()
        self.nft = receipts[1]["contractAddress"].lower()
        self.deploy_block = int(receipts[0]["blockNumber"], 16)
        log(f"setup: SluiceToken at {self.token}, SluiceNFT at {self.nft} "
            f"(block {self.deploy_block})")

        hashes = []
        for a in self.accounts:
            hashes.append(self.send(deployer, self.token,
                                    self.token_c.data("mint(address,uint256)", w_addr(a), w_uint(INITIAL_TOKENS))))
        for a in self.accounts:
            hashes.append(self.send(a, self.nft, self.nft_c.data("mint(address)", w_addr(a))))
        receipts = self.mine_and_wait(hashes)
        self.absorb(receipts)
        ok = sum(r.get("status") == "0x1" for r in receipts)
        log(f"setup: minted SLT to {len(self.accounts)} accounts and {len(self.nft_owner)} NFTs "
            f"({ok}/{len(hashes)} ok)")

        if self.args.state_out:
            state = {"chain_id": chain_id, "accounts": self.accounts,
                     "token": self.token, "nft": self.nft,
                     "deploy_block": self.deploy_block}
            tmp = self.args.state_out + ".tmp"
            with open(tmp, "w") as f:
                json.dump(state, f, indent=2)
            os.replace(tmp, self.args.state_out)

    # ---- one round -----------------------------------------------------------------

    def other(self, a: str) -> str:
        return self.rng.choice([b for b in self.accounts + self.outsiders if b != a])

    def signed_nfts(self, used: set) -> list:
        """NFTs of the main contract not used this round whose owner can sign."""
        return sorted(t for t, o in self.nft_owner.items() if t not in used and o in self.nonces)

    def open_allowances(self, used_pairs: set) -> list:
        return sorted((k, v) for k, v in self.allowances.items() if v > 0 and k not in used_pairs)

    def plan_op(self, used_nfts: set, used_pairs: set) -> str:
        ops = [("eth", 3), ("erc20_transfer", 3), ("erc20_approve", 1), ("nft_mint", 2)]
        if self.open_allowances(used_pairs):
            ops.append(("erc20_transfer_from", 1))
        if self.signed_nfts(used_nfts):
            ops.append(("nft_transfer", 2))
        if self.extra_tokens or self.extra_nfts:
            ops.append(("extra_mint", 1))
        names, weights = zip(*ops)
        return self.rng.choices(names, weights)[0]

    def round(self, n: int) -> str:
        rng = self.rng
        fees = self.fees()
        hashes: list[str | None] = []
        labels: list[str] = []
        used_nfts: set[int] = set()
        used_pairs: set[tuple[str, str]] = set()   # allowances touched this round
        count = max(1, self.args.txs_per_block)

        for slot in range(count):
            if slot == 0 and n % FAIL_EVERY == FAIL_PHASE:
                op = "fail"
            elif slot == min(1, count - 1) and n % CREATE_EVERY == CREATE_PHASE:
                op = "create"
            else:
                op = self.plan_op(used_nfts, used_pairs)
            frm = rng.choice(self.accounts)
            # An approve and a transferFrom of the same (owner, spender) never share a
            # round, so their order inside the block cannot make the transferFrom fail.
            spenders = [b for b in self.accounts if b != frm and (frm, b) not in used_pairs]
            if op == "erc20_approve" and not spenders:
                op = "erc20_transfer"
            h = None
            if op == "eth":
                kind = rng.choice(["legacy", "2930", "1559", "1559"])
                to = self.other(frm) if rng.random() < 0.8 else "0x" + rng.randbytes(20).hex()
                value = rng.randint(1, 1000) * 10**15   # 0.001 .. 1 ETH
                h = self.send(frm, to, value=value, gas=GAS_ETH if kind != "2930" else 30_000,
                              kind=kind, fees=fees)
            elif op == "erc20_transfer":
                amount = rng.randint(1, 1000) * TOKEN_UNIT
                h = self.send(frm, self.token, self.token_c.data(
                    "transfer(address,uint256)", w_addr(self.other(frm)), w_uint(amount)), fees=fees)
            elif op == "erc20_approve":
                spender = rng.choice(spenders)
                used_pairs.add((frm, spender))
                amount = rng.randint(1, 500) * TOKEN_UNIT
                h = self.send(frm, self.token, self.token_c.data(
                    "approve(address,uint256)", w_addr(spender), w_uint(amount)), fees=fees)
            elif op == "erc20_transfer_from":
                (owner, spender), allowed = rng.choice(self.open_allowances(used_pairs))
                used_pairs.add((owner, spender))
                amount = rng.randint(1, allowed // TOKEN_UNIT or 1) * TOKEN_UNIT
                amount = min(amount, allowed)
                self.allowances[(owner, spender)] = allowed - amount
                frm = spender
                h = self.send(spender, self.token, self.token_c.data(
                    "transferFrom(address,address,uint256)",
                    w_addr(owner), w_addr(self.other(owner)), w_uint(amount)), fees=fees)
            elif op == "nft_mint":
                h = self.send(frm, self.nft, self.nft_c.data(
                    "mint(address)", w_addr(rng.choice(self.accounts))), fees=fees)
            elif op == "nft_transfer":
                token_id = rng.choice(self.signed_nfts(used_nfts))
                used_nfts.add(token_id)
                owner = self.nft_owner[token_id]
                frm = owner
                if owner in self.nonces:
                    h = self.send(owner, self.nft, self.nft_c.data(
                        "transferFrom(address,address,uint256)",
                        w_addr(owner), w_addr(self.other(owner)), w_uint(token_id)), fees=fees)
            elif op == "extra_mint":
                if self.extra_nfts and (not self.extra_tokens or rng.random() < 0.5):
                    h = self.send(frm, rng.choice(self.extra_nfts), self.nft_c.data(
                        "mint(address)", w_addr(self.other(frm))), fees=fees)
                else:
                    addr, owner = rng.choice(self.extra_tokens)
                    frm = owner
                    h = self.send(owner, addr, self.token_c.data(
                        "mint(address,uint256)", w_addr(self.other(owner)),
                        w_uint(rng.randint(1, 10_000) * TOKEN_UNIT)), fees=fees)
            elif op == "fail":
                if self.nft_owner and len(self.accounts) > 1 and rng.random() < 0.5:
                    # ERC-721 transferFrom by someone who neither owns nor is approved
                    token_id = rng.choice(sorted(self.nft_owner))
                    owner = self.nft_owner[token_id]
                    frm = self.other(owner)
                    used_nfts.add(token_id)
                    h = self.send(frm, self.nft, self.nft_c.data(
                        "transferFrom(address,address,uint256)",
                        w_addr(owner), w_addr(frm), w_uint(token_id)), gas=GAS_FAIL, fees=fees)
                else:
                    # ERC-20 transfer far above any balance
                    h = self.send(frm, self.token, self.token_c.data(
                        "transfer(address,uint256)", w_addr(self.other(frm)), w_uint(2**255)),
                        gas=GAS_FAIL, fees=fees)
            elif op == "create":
                which = "nft" if rng.random() < 0.5 else "token"
                code = self.nft_c.bytecode if which == "nft" else self.token_c.bytecode
                h = self.send(frm, None, code, gas=GAS_DEPLOY, fees=fees)
                if h:
                    self.created[h] = which
            hashes.append(h)
            labels.append(op)

        receipts = self.mine_and_wait([h for h in hashes if h])
        self.absorb(receipts)
        blocks = sorted({int(r["blockNumber"], 16) for r in receipts})
        failed = sum(r.get("status") != "0x1" for r in receipts)
        creates = sum(1 for r in receipts if not r.get("to"))
        logs = sum(len(r.get("logs", [])) for r in receipts)
        unexpected = [lbl for h, lbl in zip(hashes, labels) if h for r in receipts
                      if r["transactionHash"] == h and r.get("status") != "0x1" and lbl != "fail"]
        if unexpected:
            log(f"round {n}: unexpected failures: {', '.join(unexpected)}")
        where = (f"block {blocks[0]}" if len(blocks) == 1
                 else f"blocks {blocks[0]}-{blocks[-1]}" if blocks else "no block")
        return (f"round {n}: {where}, {len(receipts)} txs ({failed} failed, {creates} create), "
                f"{logs} logs")

    # ---- main loop -----------------------------------------------------------------

    def reset_state(self) -> None:
        self.nft_owner.clear()
        self.allowances.clear()
        self.extra_tokens.clear()
        self.extra_nfts.clear()
        self.created.clear()
        self.head_seen = 0

    def setup_retrying(self) -> None:
        while True:
            try:
                return self.setup()
            except ChainReset as e:
                log(f"chain was reset during setup ({e}); starting over")
                self.reset_state()

    def run(self) -> int:
        self.setup_retrying()
        done = 0
        errors = 0
        n = 0
        while self.args.blocks is None or done < self.args.blocks:
            n += 1
            started = time.monotonic()
            try:
                line = self.round(n)
            except ChainReset as e:
                log(f"chain was reset ({e}); deploying again")
                self.reset_state()
                self.setup_retrying()
                continue
            except RpcError as e:
                errors += 1
                log(f"round {n} failed: {e}")
                if errors >= 10:
                    log("10 rounds in a row failed; giving up")
                    return 1
                for a in self.accounts:
                    self.resync_nonce(a)
                self.sleep(1.0)
                continue
            errors = 0
            done += 1
            log(line)
            # --interval is the round period: waiting for receipts counts toward it, so
            # with a node mining every second and --interval 1 each block gets a round.
            if self.args.blocks is None or done < self.args.blocks:
                self.sleep(self.args.interval - (time.monotonic() - started))
        log(f"done: {done} rounds")
        return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Send a steady mix of transactions to a dev chain.")
    p.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    p.add_argument("--contracts", default=os.path.join(ROOT, ".deps", "contracts"),
                   help="directory with SluiceToken.json and SluiceNFT.json (default %(default)s)")
    p.add_argument("--mine", action="store_true",
                   help="call evm_mine after each round (for a node started with --no-mining)")
    p.add_argument("--blocks", type=int, default=None, metavar="N",
                   help="stop after N rounds (default: run until SIGINT/SIGTERM)")
    p.add_argument("--txs-per-block", type=int, default=6, metavar="N",
                   help="transactions per round (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, metavar="S",
                   help="random seed for the choices (default %(default)s)")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="time between round starts; waiting for receipts counts toward it "
                        "(default %(default)s; 0 = no sleep)")
    p.add_argument("--state-out", default=None, metavar="FILE",
                   help="after setup, write {chain_id, accounts, token, nft, deploy_block} as JSON here")
    args = p.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum, _frame):
        if stop.is_set():
            log("second signal: exiting now")
            os._exit(128 + signum)
        log(f"{signal.Signals(signum).name}: stopping")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        return Traffic(args, stop).run()
    except Stopped:
        log("stopped")
        return 0


if __name__ == "__main__":
    sys.exit(main())
