"""Verification (docs/datasets.md#verification): sluice recomputes every block's
hash, transactions root, receipts root and logs bloom from its stored rows and
compares them with the header the node gave.

- anvil: blocks holding every transaction type anvil produces (legacy with and
  without EIP-155, EIP-2930, EIP-1559, EIP-7702; then an EIP-4844 blob block),
  sent as raw transactions signed here (eth-account), are verified at extraction
  (`verify = true`) and by `sluice verify`. anvil 1.7.1 commits a mined blob
  transaction's pooled encoding (with its sidecar) to the transactions root
  (foundry-rs/foundry#15132, fixed after 1.7.1), so its blob block fails: the
  test checks both roots against an independent trie (py-trie), and that the
  failure stops extraction loudly while the verified blocks stay served.
- geth --dev (the harness's Geth, `.deps/geth`; skipped without it): every type,
  blobs included, verifies at extraction and with `sluice verify`, beside the
  running server. It runs as one of three `[[datasets]]` of one server, `verify`
  set per dataset: geth and the anvil chain verified (the top-level default), the
  anvil chain again unverified; the anvil dataset stopping at its blob block
  stops neither of the others, and `sluice verify --config` finds each one's
  storage.
- One changed byte in one stored row (a log's data, a transaction's value), in a
  Parquet segment rewritten in place, makes `sluice verify` fail naming the block.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import ckzg
import pytest
import rlp
from eth_account import Account
from eth_utils import to_checksum_address
from trie import HexaryTrie

from sluice_harness import (GETH, SLUICE, Anvil, Geth, Server, datasets_config, query, rpc,
                            wait_for)

# anvil's second dev account (funded on anvil; funded from the dev account on geth).
KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
SENDER = Account.from_key(KEY).address
OTHER = to_checksum_address("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc")
# Init code that emits LOG2 and LOG1, then deploys 10 zero bytes.
TOPIC_A = "aa" * 32
TOPIC_B = "00" * 31 + "bb"
TOPIC_C = "cc" * 32
LOGGING_INIT = bytes.fromhex(
    "6042600052" + "7f" + TOPIC_B + "7f" + TOPIC_A + "60206000a2" + "7f" + TOPIC_C +
    "60006000a1" + "600a6000f3")


# ---- transactions of every type, signed here ------------------------------------------

def send_raw(url: str, tx: dict) -> str:
    signed = Account.sign_transaction(tx, KEY)
    return rpc(url, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])


@functools.lru_cache(maxsize=1)
def blob_sidecar() -> tuple:
    """One blob with its KZG commitment, versioned hash and EIP-7594 cell proofs,
    computed once (loading the trusted setup takes seconds; eth-account would load
    it three times per signature): (blob, commitment, versioned_hash, cell_proofs).
    The blob's field elements are below the BLS modulus (the top byte of each is 0)."""
    blob = bytearray(131072)
    blob[1:7] = b"sluice"
    blob = bytes(blob)
    setup = importlib.resources.files("eth_account.typed_transactions.blob_transactions")
    trusted = ckzg.load_trusted_setup(str(setup / "kzg_trusted_setup.txt"), 0)
    commitment = ckzg.blob_to_kzg_commitment(blob, trusted)
    _, proofs = ckzg.compute_cells_and_kzg_proofs(blob, trusted)
    versioned = b"\x01" + hashlib.sha256(commitment).digest()[1:]  # EIP-4844 kzg_to_versioned_hash
    return blob, commitment, versioned, proofs


def send_blob(url: str, tx: dict) -> str:
    """Sign a blob transaction (its body: eth-account) and send it in the network
    form EIP-7594 gives it: 0x03 || rlp([body, 1, blobs, commitments, cell_proofs])."""
    blob, commitment, versioned, proofs = blob_sidecar()
    signed = Account.sign_transaction(dict(tx, blobVersionedHashes=[versioned]), KEY)
    body = rlp.decode(bytes(signed.raw_transaction)[1:])
    wrapped = b"\x03" + rlp.encode([body, 1, [blob], [commitment], list(proofs)])
    return rpc(url, "eth_sendRawTransaction", ["0x" + wrapped.hex()])


def fees(url: str) -> tuple[int, int]:
    base = int(rpc(url, "eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
    tip = 10**9
    return 3 * base + tip, tip


def send_every_type(url: str, mine, unprotected: bool) -> dict:
    """One block with legacy (EIP-155, and unprotected when `unprotected`),
    EIP-2930, EIP-1559 (a creation emitting logs) and EIP-7702 transactions, then
    one with an EIP-4844 blob transaction. `mine()` gets the pending ones mined
    and returns when they are. Returns {"types": block, "blob": block, "hashes": [...]}."""
    chain = int(rpc(url, "eth_chainId"), 16)
    nonce = int(rpc(url, "eth_getTransactionCount", [SENDER, "pending"]), 16)
    max_fee, tip = fees(url)
    hashes = []
    if unprotected:  # v = 27/28: no chain id (anvil accepts it; geth refuses it over RPC)
        hashes.append(send_raw(url, dict(nonce=nonce, gasPrice=max_fee, gas=21000, to=OTHER,
                                         value=7, data=b"")))
        nonce += 1
    hashes.append(send_raw(url, dict(nonce=nonce, gasPrice=max_fee, gas=21000, to=OTHER,
                                     value=10**21 + 5, data=b"", chainId=chain)))
    hashes.append(send_raw(url, dict(
        type=1, nonce=nonce + 1, gasPrice=max_fee, gas=80000, to=OTHER, value=1,
        data=b"\x01\x02", chainId=chain,
        accessList=[{"address": OTHER, "storageKeys": ["0x" + "00" * 31 + "07",
                                                      "0x" + "00" * 31 + "08"]}])))
    hashes.append(send_raw(url, dict(
        type=2, nonce=nonce + 2, maxFeePerGas=max_fee, maxPriorityFeePerGas=tip, gas=200000,
        value=0, data=LOGGING_INIT, chainId=chain)))
    # The authority is the sender: its nonce is one above the transaction's.
    auth = Account.sign_authorization({"chainId": chain, "address": OTHER, "nonce": nonce + 4},
                                      KEY)
    hashes.append(send_raw(url, dict(
        type=4, nonce=nonce + 3, maxFeePerGas=max_fee, maxPriorityFeePerGas=tip, gas=100000,
        to=OTHER, value=0, data=b"", chainId=chain, accessList=[], authorizationList=[auth])))
    types_block = mine(hashes)
    max_fee, tip = fees(url)
    # (the authorization, valid, counted one more nonce)
    nonce = int(rpc(url, "eth_getTransactionCount", [SENDER, "pending"]), 16)
    blob_hash = send_blob(url, dict(
        type=3, nonce=nonce, maxFeePerGas=max_fee, maxPriorityFeePerGas=tip,
        maxFeePerBlobGas=10**10, gas=21000, to=OTHER, value=3, data=b"", chainId=chain,
        accessList=[]))
    blob_block = mine([blob_hash])
    return {"types": types_block, "blob": blob_block, "hashes": hashes + [blob_hash]}


def receipt_block(url: str, tx_hash: str) -> int:
    r = wait_for(lambda: rpc(url, "eth_getTransactionReceipt", [tx_hash]), 30,
                 f"receipt of {tx_hash}")
    assert r["status"] == "0x1", r
    return int(r["blockNumber"], 16)


# ---- independent truth: the roots py-trie computes ------------------------------------

def trie_root(values: list) -> bytes:
    t = HexaryTrie(db={})
    for i, v in enumerate(values):
        t[rlp.encode(i)] = v
    return t.root_hash


def raw_transactions(url: str, block: int) -> list:
    b = rpc(url, "eth_getBlockByNumber", [hex(block), False])
    return [bytes.fromhex(rpc(url, "eth_getRawTransactionByHash", [h])[2:])
            for h in b["transactions"]]


def canonical(raw: bytes) -> bytes:
    """A transaction's block-body encoding: a blob transaction without the
    network wrapper of its sidecar (EIP-4844: [body, blobs, commitments, proofs];
    EIP-7594: [body, version, blobs, commitments, cell proofs])."""
    if raw[0] != 3:
        return raw
    fields = rlp.decode(raw[1:])
    if isinstance(fields[0], list):  # the wrapper: the body is its first item
        return b"\x03" + rlp.encode(fields[0])
    return raw


# ---- helpers --------------------------------------------------------------------------

def http_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metric(srv: Server, name: str, dataset: str = "eth_rpc") -> float:
    with urllib.request.urlopen(srv.admin_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf'^{name}{{dataset="{dataset}"}} (\S+)$', text, re.M)
    assert m, f"{name} of {dataset} not in /metrics"
    return float(m.group(1))


def sluice_verify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SLUICE), "verify", *args], capture_output=True, text=True,
                          timeout=120)


def stored_types(srv: Server, dataset: str = "eth_rpc") -> set:
    t = query(srv.client(), f"SELECT DISTINCT type FROM {dataset}.transactions")
    return set(t.column("type").to_pylist())


# ---- anvil ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def anvil_chain(tmp_path_factory):
    """anvil: demo traffic, then a block of types 0 (both kinds), 1, 2 and 4,
    then a blob block, then an empty block."""
    node = Anvil(tmp_path_factory.mktemp("anvil"))
    node.traffic(blocks=6, txs_per_block=4)

    def mine(hashes):
        node.mine()
        blocks = {receipt_block(node.url, h) for h in hashes}
        assert len(blocks) == 1, blocks
        return blocks.pop()

    info = send_every_type(node.url, mine, unprotected=True)
    node.mine()
    info["head"] = node.head()
    yield node, info
    node.stop()


@pytest.fixture(scope="module")
def anvil_extracted(anvil_chain, tmp_path_factory):
    """A server that extracted `anvil_chain` with verify = true, stopped: its
    data directory, the /ready and /metrics it showed, and its log."""
    node, info = anvil_chain
    data = tmp_path_factory.mktemp("verified") / "data"
    srv = Server(data, node.url, "--verify", "true")
    try:
        blob_block = info["blob"]
        canonical_root = trie_root([canonical(r) for r in raw_transactions(node.url, blob_block)])
        anvil_root = bytes.fromhex(
            rpc(node.url, "eth_getBlockByNumber", [hex(blob_block), False])["transactionsRoot"][2:])
        anvil_fixed = anvil_root == canonical_root
        if anvil_fixed:
            srv.wait_head(info["head"])
        else:
            wait_for(lambda: http_json(srv.admin_url + "/ready")[0] == 503 and
                     "extraction stopped" in http_json(srv.admin_url + "/ready")[1]["reason"],
                     60, "extraction to stop at the blob block")
        out = {
            "data": data, "anvil_fixed": anvil_fixed, "canonical_root": canonical_root,
            "anvil_root": anvil_root, "ready": http_json(srv.admin_url + "/ready"),
            "verified": metric(srv, "sluice_verified_blocks_total"),
            "failures": metric(srv, "sluice_verification_failures_total"),
            "stored_head": srv.stored_head(), "types": stored_types(srv),
        }
    finally:
        srv.stop()
    out["log"] = srv.stderr_path.read_text()
    return out


def test_anvil_blocks_of_every_type_verify_at_extraction(anvil_chain, anvil_extracted):
    node, info = anvil_chain
    x = anvil_extracted
    # Every block before the blob block was verified and stored, with every type.
    assert x["types"] >= {0, 1, 2, 4}
    assert x["stored_head"] >= info["blob"] - 1
    assert x["verified"] >= info["blob"]
    if x["anvil_fixed"]:
        assert x["stored_head"] == info["head"] and x["failures"] == 0
        assert x["ready"][0] == 200


def test_anvil_blob_block_stops_extraction_loudly(anvil_chain, anvil_extracted):
    """anvil 1.7.1's blob block: its transactions root is the trie of the pooled
    encoding (sidecar included), which sluice's recomputation, like py-trie over
    the canonical encodings, refuses. Extraction stops there, loudly, and the
    verified blocks below it stay served."""
    node, info = anvil_chain
    x = anvil_extracted
    if x["anvil_fixed"]:
        pytest.skip("this anvil commits the canonical blob encoding (foundry-rs/foundry#15132)")
    raw = raw_transactions(node.url, info["blob"])
    assert x["anvil_root"] == trie_root(raw), "anvil's root is the trie of the pooled encodings"
    assert x["anvil_root"] != x["canonical_root"]
    status, body = x["ready"]
    assert status == 503
    reason = body["reason"]
    assert f"verification failed: block {info['blob']} " in reason, reason
    assert (f"transactions root: recomputed 0x{x['canonical_root'].hex()}, "
            f"stored 0x{x['anvil_root'].hex()}") in reason, reason
    assert "block hash" not in reason and "receipts root" not in reason, reason
    assert x["failures"] == 1
    assert x["stored_head"] == info["blob"] - 1
    assert f"extraction stopped: Invalid: verification failed: block {info['blob']}" in x["log"]


def test_sluice_verify_over_stored_blocks(anvil_extracted):
    data = anvil_extracted["data"]
    head = anvil_extracted["stored_head"]
    r = sluice_verify("--data-dir", str(data), "--dataset", "eth_rpc")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(rf"eth_rpc: verified {head + 1} blocks \(\d+ transactions, \d+ logs\)",
                     r.stdout), r.stdout
    assert "every block matches its hash, roots and bloom" in r.stdout
    r = sluice_verify("--data-dir", str(data), "--from", "2", "--to", "4")
    assert r.returncode == 0 and "verified 3 blocks" in r.stdout, r.stdout + r.stderr
    r = sluice_verify("--data-dir", str(data), "--from", "1", "--to", str(head + 5))
    assert r.returncode == 2
    assert f"are not all stored: {data / 'eth_rpc'} holds blocks 0..{head}" in r.stderr, r.stderr
    r = sluice_verify("--data-dir", str(data), "--dataset", "nope")
    assert r.returncode == 2, r.stdout + r.stderr
    assert (f"dataset nope is not configured (configured: eth_rpc) and nothing is stored at "
            f"{data / 'nope'}") in r.stderr, r.stderr


def rewrite_one_value(segment: Path, column: str, row: int, change) -> None:
    """Rewrite a stored Parquet segment in place with one value changed (the
    schema, row count and file name stay)."""
    t = pq.read_table(segment)
    values = t.column(column).to_pylist()
    values[row] = change(values[row])
    i = t.schema.get_field_index(column)
    t = t.set_column(i, t.schema.field(i), pa.array(values, t.schema.field(i).type))
    pq.write_table(t, segment)


def segment_with(data: Path, table: str, column: str, pred):
    """The first (segment, row, block) of `table` whose `column` satisfies `pred`."""
    for seg in sorted((data / "eth_rpc" / table).glob("0*.parquet")):
        t = pq.read_table(seg, columns=["block_num", column])
        for k, (n, v) in enumerate(zip(t.column("block_num").to_pylist(),
                                       t.column(column).to_pylist())):
            if pred(v):
                return seg, k, n
    raise AssertionError(f"no {table}.{column} to change")


def test_one_flipped_byte_fails_naming_the_block(anvil_extracted, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(anvil_extracted["data"], data)
    # A log's data: the receipts root (and only it) no longer matches.
    seg, row, block = segment_with(data, "logs", "data", lambda v: len(v) > 0)
    original = seg.read_bytes()
    rewrite_one_value(seg, "data", row, lambda v: bytes([v[0] ^ 1]) + v[1:])
    r = sluice_verify("--data-dir", str(data))
    assert r.returncode == 1, r.stdout + r.stderr
    mismatches = [line for line in r.stdout.splitlines() if line.startswith("MISMATCH ")]
    assert len(mismatches) == 1, r.stdout
    assert mismatches[0].startswith(f"MISMATCH block {block} (0x"), mismatches[0]
    assert "receipts root: recomputed" in mismatches[0]
    assert "transactions root" not in mismatches[0]
    assert f"1 blocks differ (first: block {block})" in r.stdout
    seg.write_bytes(original)
    assert sluice_verify("--data-dir", str(data)).returncode == 0

    # A transaction's value (one digit): its hash and the transactions root.
    seg, row, block = segment_with(data, "transactions", "value", lambda v: v != "0")
    rewrite_one_value(seg, "value", row, lambda v: v[:-1] + str((int(v[-1]) + 1) % 10))
    r = sluice_verify("--data-dir", str(data), "--dataset", "eth_rpc")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(rf"^MISMATCH block {block} \(0x[0-9a-f]{{64}}\): transaction \d+ hash: "
                     r"recomputed 0x[0-9a-f]{64}, stored 0x[0-9a-f]{64}", r.stdout, re.M), r.stdout
    assert "transactions root: recomputed" in r.stdout


# ---- geth, and verify per dataset --------------------------------------------------------

@pytest.fixture(scope="module")
def geth_chain(tmp_path_factory):
    if not GETH.exists():
        pytest.skip(f"{GETH} is missing (scripts/bootstrap.sh builds it)")
    node = Geth(tmp_path_factory.mktemp("geth"))
    fund = rpc(node.url, "eth_sendTransaction", [{"from": node.account, "to": SENDER,
                                                  "value": hex(10**22)}])
    receipt_block(node.url, fund)

    def mine(hashes):
        return max(receipt_block(node.url, h) for h in hashes)

    info = send_every_type(node.url, mine, unprotected=False)
    yield node, info
    node.stop()


def test_verify_per_dataset_geth_blocks_of_every_type(geth_chain, anvil_chain, anvil_extracted,
                                                      tmp_path):
    node, info = geth_chain
    anvil, anvil_info = anvil_chain
    data = tmp_path / "data"
    config = datasets_config(tmp_path / "config.toml", [
        {"name": "geth_rpc", "network": "geth", "rpc_url": node.url},
        {"name": "eth_rpc", "network": "anvil", "rpc_url": anvil.url},
        {"name": "anvil_unverified", "network": "anvil-unverified", "rpc_url": anvil.url,
         "verify": False},
    ], extra=f"data_dir = {json.dumps(str(data))}\nverify = true")
    srv = Server(data, None, "--config", str(config))
    try:
        # The unverified dataset stores the anvil chain whole, its blob block included.
        srv.wait_head(anvil_info["head"], dataset="anvil_unverified")
        if anvil_extracted["anvil_fixed"]:
            srv.wait_head(anvil_info["head"])
        else:  # the verified one stops at the blob block, the others go on
            wait_for(lambda: http_json(srv.admin_url + "/ready/eth_rpc")[0] == 503, 60,
                     "the anvil dataset to stop at its blob block")
            status, body = http_json(srv.admin_url + "/ready/eth_rpc")
            assert f"verification failed: block {anvil_info['blob']} " in body["reason"], body
            assert srv.stored_head() == anvil_info["blob"] - 1
            assert metric(srv, "sluice_verification_failures_total") == 1
        geth_after = node.head() + 2  # geth goes on sealing blocks; they are verified too
        srv.wait_head(max(info["blob"] + 1, geth_after), dataset="geth_rpc")
        assert http_json(srv.admin_url + "/ready/geth_rpc")[0] == 200
        assert http_json(srv.admin_url + "/ready/anvil_unverified")[0] == 200
        assert metric(srv, "sluice_verification_failures_total", "geth_rpc") == 0
        assert metric(srv, "sluice_verified_blocks_total", "geth_rpc") >= geth_after + 1
        assert metric(srv, "sluice_verified_blocks_total", "anvil_unverified") == 0
        assert metric(srv, "sluice_verified_blocks_total") >= anvil_info["blob"]
        assert stored_types(srv, "geth_rpc") >= {0, 1, 2, 3, 4}
        # The columns verification needs equal geth's answers.
        t = query(srv.client(), "SELECT tx_hash, v, cumulative_gas_used, post_state_root, type "
                                "FROM geth_rpc.transactions")
        for row in t.to_pylist():
            h = "0x" + row["tx_hash"].hex()
            tx = rpc(node.url, "eth_getTransactionByHash", [h])
            rc = rpc(node.url, "eth_getTransactionReceipt", [h])
            assert int(row["v"]) == int(tx["v"], 16)
            assert row["cumulative_gas_used"] == int(rc["cumulativeGasUsed"], 16)
            assert row["post_state_root"] is None and "root" not in rc
            assert row["type"] == int(tx["type"], 16)

        # sluice verify finds each dataset's storage from the [[datasets]] config, beside
        # the running server.
        head = srv.stored_head("geth_rpc")
        r = sluice_verify("--config", str(config), "--dataset", "geth_rpc", "--to", str(head))
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"geth_rpc: verified {head + 1} blocks" in r.stdout, r.stdout
        r = sluice_verify("--config", str(config), "--dataset", "anvil_unverified")
        if anvil_extracted["anvil_fixed"]:
            assert r.returncode == 0, r.stdout + r.stderr
        else:  # stored unverified: the blob block is found now
            assert r.returncode == 1, r.stdout + r.stderr
            assert f"MISMATCH block {anvil_info['blob']} (0x" in r.stdout, r.stdout
        r = sluice_verify("--config", str(config))
        assert r.returncode == 2
        assert ("several datasets are configured (geth_rpc, eth_rpc, anvil_unverified): name "
                "one with --dataset") in r.stderr, r.stderr
    finally:
        srv.stop()
