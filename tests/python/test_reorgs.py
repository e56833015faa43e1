"""Chain reorganizations (protocol.md §5, docs/reorgs.md) against a real anvil node,
which replaces blocks with `anvil_reorg`, a real server and real pyarrow clients.

Each streaming client applies the client side of the protocol (ProtocolClient in
sluice_harness.py): rows kept per block; an `is_reorg` microbatch drops every row
of block >= range.start; only microbatches that reached microbatch_end count; the
cursor of the last microbatch_end is the resume point. The truth is the node
(eth_getBlockByNumber / eth_getBlockReceipts, compared block by block with the
store) and batch queries over the store once it equals the node: a client that
follows the protocol must end with exactly the batch query's rows.

`pytest -s` prints the time from `anvil_reorg` returning to the first `is_reorg`
microbatch_start at a client (median over the depths).
"""
from __future__ import annotations

import collections
import random
import re
import statistics
import threading
import time

import pytest

from sluice_harness import (ROOT, ProtocolClient, anvil_reorg, assert_store_matches_node,
                            moved_txs, node_chain, query, rpc, store_chain, wait_for,
                            wait_store_matches_node)

# Every query has a block_num column, which the client invalidates by.
QUERIES = {
    "blocks": "SELECT block_num, hash, parent_hash, timestamp, gas_used FROM eth_rpc.blocks",
    "transactions": ('SELECT block_num, tx_index, tx_hash, "from", "to", value, status '
                     "FROM eth_rpc.transactions WHERE gas_used > 21000"),
    "join": ("SELECT t.block_num, t.tx_hash, t.status, l.log_index, l.address, l.topic0 "
             "FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
             "ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash"),
    "udf": ("SELECT block_num, log_index, tx_hash, address, evm_decode_log(topic1, topic2, "
            "topic3, data, 'Transfer(address indexed from, address indexed to, uint256 value)') "
            "AS transfer FROM eth_rpc.logs "
            "WHERE topic0 = evm_topic('Transfer(address,address,uint256)')"),
}


# depth -> seconds from anvil_reorg returning to the first is_reorg microbatch_start.
REORG_LATENCY: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _print_reorg_latency():
    yield
    if REORG_LATENCY:
        per_depth = ", ".join(f"depth {d}: {s * 1000:.0f} ms" for d, s in sorted(REORG_LATENCY.items()))
        print(f"\nreorg latency (anvil_reorg returned -> first is_reorg microbatch_start at a "
              f"client): median {statistics.median(REORG_LATENCY.values()) * 1000:.0f} ms "
              f"over {len(REORG_LATENCY)} depths ({per_depth})")


def batch_rows(srv, name: str, upto: int, after: int = -1) -> list:
    return query(srv.client(), f"SELECT * FROM ({QUERIES[name]}) q "
                               f"WHERE block_num <= {upto} AND block_num > {after}").to_pylist()


def _canon(row: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def assert_same_rows(got: list, want: list, what: str) -> None:
    """Equal as multisets of full rows; on failure name a few rows missing and extra."""
    g, w = collections.Counter(map(_canon, got)), collections.Counter(map(_canon, want))
    if g == w:
        return
    missing, extra = list((w - g).elements()), list((g - w).elements())
    pytest.fail(f"{what}: {len(got)} rows, batch query {len(want)}; {len(missing)} missing, "
                f"{len(extra)} extra\n  missing e.g. {missing[:3]}\n  extra e.g. {extra[:3]}")


def assert_one_reorg_at(client: ProtocolClient, ancestor: int, chain: dict, what: str) -> None:
    """Exactly one is_reorg microbatch, starting at the common ancestor + 1, whose
    prev_hash is the ancestor's hash on the node."""
    assert not client.violations, f"{what}: {client.violations[:5]}"
    ranges = [r for _, r, _ in client.reorgs]
    assert len(ranges) == 1, f"{what}: is_reorg microbatches {ranges}, expected one"
    assert ranges[0]["start"] == ancestor + 1, \
        f"{what}: is_reorg microbatch {ranges[0]}, common ancestor is {ancestor}"
    assert client.reorgs[0][2] == chain[ancestor]["hash"], f"{what}: prev_hash"


def new_txs(url: str, depth: int) -> list:
    """anvil_reorg pairs putting fresh ETH transfers (not the old fork's) into the new blocks."""
    accounts = rpc(url, "eth_accounts")
    return [[{"from": accounts[5], "to": accounts[6 + off % 3], "value": hex(10**15 + off)}, off]
            for off in range(0, depth, 3)]


CASES = [  # depth, transactions of the new fork, whether the new fork outgrows the old
    pytest.param(1, "none", False, id="depth1"),
    pytest.param(2, "moved", False, id="depth2-moved"),
    pytest.param(5, "moved", True, id="depth5-moved-longer"),
    pytest.param(20, "new", True, id="depth20-new-longer"),
    pytest.param(64, "moved", True, id="depth64-moved-longer"),
]


@pytest.mark.parametrize("depth,txs,longer", CASES)
def test_reorg_streams_end_exact(make_anvil, make_server, tmp_path, depth, txs, longer):
    node = make_anvil()
    node.traffic(blocks=depth + 12, txs_per_block=4, seed=depth)
    srv = make_server(tmp_path / "data", node.url, "--server-microbatch-max-interval", "7")
    head = node.head()
    srv.wait_head(head)
    clients = {name: ProtocolClient(srv.location, sql) for name, sql in QUERIES.items()}
    leaver = ProtocolClient(srv.location, QUERIES["join"])  # disconnects before the reorg
    try:
        for c in [*clients.values(), leaver]:
            c.wait_until(head)
        leaver.disconnect()
        old_cursor = leaver.cursor
        assert old_cursor["anvil"]["block_number"] == head

        before = node_chain(node.url, 0, head)
        pairs = {"none": lambda: [], "moved": lambda: moved_txs(node.url, depth),
                 "new": lambda: new_txs(node.url, depth)}[txs]()
        t_reorg = anvil_reorg(node.url, depth, pairs)
        if longer:
            node.mine(depth + 3)  # the new fork outgrows the old one before the server looks
        after = node_chain(node.url, 0, head)
        ancestor = max(n for n in before if before[n]["hash"] == after[n]["hash"])
        assert ancestor == head - depth  # the node replaced exactly `depth` blocks
        replaced = range(ancestor + 1, head + 1)
        old_txs = sorted(h for n in replaced for h in before[n]["txs"])
        assert old_txs, "the replaced blocks held no transactions: the test proves nothing"
        if txs == "moved":
            new = {h: n for n in replaced for h in after[n]["txs"]}
            assert sorted(new) == old_txs
            if depth > 1:
                assert any(new[h] != n for n in replaced for h in before[n]["txs"])

        for c in clients.values():
            c.wait_reorgs(1, timeout=20)
        REORG_LATENCY[depth] = min(c.reorgs[0][0] for c in clients.values()) - t_reorg

        node.traffic(blocks=3, txs_per_block=4, seed=100 + depth)
        final_head = wait_store_matches_node(srv, node)
        assert assert_store_matches_node(srv, node) == final_head
        chain = node_chain(node.url, 0, final_head)

        for name, c in clients.items():
            c.wait_until(final_head)
            assert_one_reorg_at(c, ancestor, chain, name)
            rows = c.rows_upto(final_head)
            assert_same_rows(rows, batch_rows(srv, name, final_head), name)
        tx_rows = clients["transactions"].rows_upto(final_head)
        assert len({r["tx_hash"] for r in tx_rows}) == len(tx_rows)

        # The client that left resumes with its cursor from the abandoned fork: the
        # server restarts it at the common ancestor + 1, flagged is_reorg.
        assert chain[head]["hash"] != old_cursor["anvil"]["hash"]
        leaver.resume()
        leaver.wait_until(final_head)
        assert_one_reorg_at(leaver, ancestor, chain, "resumed with a cursor of the old fork")
        assert_same_rows(leaver.rows_upto(final_head), batch_rows(srv, "join", final_head),
                         "join resumed with a cursor of the old fork")
    finally:
        for c in [*clients.values(), leaver]:
            c.close()


def test_streams_that_never_passed_the_fork_see_no_reorg(make_anvil, make_server, tmp_path):
    """A stream opened after the reorg, and streams resuming with cursors at or below
    the common ancestor, see no is_reorg and get exactly the batch rows."""
    node = make_anvil()
    node.traffic(blocks=20, txs_per_block=4, seed=3)
    srv = make_server(tmp_path / "data", node.url, "--server-microbatch-max-interval", "4")
    head = node.head()
    srv.wait_head(head)
    early = ProtocolClient(srv.location, QUERIES["transactions"])
    try:
        early.wait_until(head)
    finally:
        early.close()
    depth = 6
    ancestor = head - depth
    below = [c for c in early.cursors if c["anvil"]["block_number"] < ancestor]
    assert below, early.cursors
    anvil_reorg(node.url, depth, moved_txs(node.url, depth))
    node.traffic(blocks=2, txs_per_block=4, seed=4)
    final_head = wait_store_matches_node(srv, node)
    chain = node_chain(node.url, 0, final_head)
    at_ancestor = {"anvil": {"block_number": ancestor, "hash": chain[ancestor]["hash"]}}
    streams = [
        (ProtocolClient(srv.location, QUERIES["transactions"]), -1, "opened after the reorg"),
        (ProtocolClient(srv.location, QUERIES["transactions"], cursor=below[-1]),
         below[-1]["anvil"]["block_number"], "resumed below the common ancestor"),
        (ProtocolClient(srv.location, QUERIES["join"], cursor=at_ancestor), ancestor,
         "resumed at the common ancestor"),
    ]
    try:
        for c, after, what in streams:
            c.wait_until(final_head)
            assert not c.violations, f"{what}: {c.violations[:5]}"
            assert c.reorgs == [], f"{what}: is_reorg microbatches {[r for _, r, _ in c.reorgs]}"
            name = "join" if c.sql == QUERIES["join"] else "transactions"
            assert_same_rows(c.rows_upto(final_head), batch_rows(srv, name, final_head, after),
                             what)
    finally:
        for c, _, _ in streams:
            c.close()


def test_kill9_during_reorg_converges(make_anvil, make_server, tmp_path):
    """Reorg after reorg, each followed by kill -9 of the server at a random short
    delay, mostly while it re-extracts; restarted on the same data directory each
    time. The store converges to the node's chain, and a client resuming with a
    cursor of the first, long abandoned fork gets exactly the batch rows."""
    node = make_anvil()
    node.traffic(blocks=130, txs_per_block=3, seed=5)
    data = tmp_path / "data"
    slow = ("--rpc-batch-blocks", "1", "--rpc-max-in-flight", "1",
            "--server-microbatch-max-interval", "20")
    srv = make_server(data, node.url, *slow)
    head = node.head()
    srv.wait_head(head)
    c = ProtocolClient(srv.location, QUERIES["join"])
    try:
        c.wait_until(head)
    finally:
        c.close()
    before = node_chain(node.url, 0, head)
    # A client that stays, reconnecting with its latest cursor after each restart:
    # its cursor may name a block of any of the abandoned forks.
    follower = ProtocolClient(srv.location, QUERIES["blocks"])
    rng = random.Random(9)
    kills = []  # (stored head, node head, stored blocks the node no longer has) at each kill

    def reorg_then_kill(depth, max_delay):
        nonlocal srv
        anvil_reorg(node.url, depth, moved_txs(node.url, depth))
        node.mine(rng.randint(0, 3))
        time.sleep(rng.uniform(0.0, max_delay))
        try:  # what the store holds just before the kill
            stored = {r["block_num"]: "0x" + r["hash"].hex() for r in query(
                srv.client(), "SELECT block_num, hash FROM eth_rpc.blocks").to_pylist()}
        except Exception:  # noqa: BLE001 - not listening yet
            stored = None
        srv.kill9()
        if stored is not None:
            now = node_chain(node.url, max(0, node.head() - 130))
            stale = sum(1 for n, b in now.items() if n in stored and stored[n] != b["hash"])
            kills.append((max(stored), max(now), stale))
        srv = make_server(data, node.url, *slow)
        follower.disconnect()
        follower.resume(location=srv.location)

    try:
        follower.wait_until(head)
        for depth in (120, 40, 3, 120, 10, 60, 2, 90):
            reorg_then_kill(depth, 0.2)
        # The point is to hit the re-extraction: if no kill did, try again sooner.
        for _ in range(6):
            if any(s != n or stale for s, n, stale in kills):
                break
            reorg_then_kill(120, 0.05)
        print(f"\nat each kill -9 (stored head, node head, stale stored blocks): {kills}")
        assert any(s != n or stale for s, n, stale in kills), \
            f"no kill -9 hit the store between two chains: {kills}"
        final_head = wait_store_matches_node(srv, node)
        assert assert_store_matches_node(srv, node) == final_head
        chain = node_chain(node.url, 0, final_head)
        ancestor = max(n for n in before if before[n]["hash"] == chain[n]["hash"])
        assert ancestor < head

        c.resume(location=srv.location)  # with the cursor of the first fork
        c.wait_until(final_head)
        assert_one_reorg_at(c, ancestor, chain, "resumed after kill -9 with an old cursor")
        assert_same_rows(c.rows_upto(final_head), batch_rows(srv, "join", final_head), "join")
        follower.wait_until(final_head)
        assert not follower.violations, follower.violations[:5]
        assert follower.reorgs, "the follower saw no reorg"
        assert_same_rows(follower.rows_upto(final_head), batch_rows(srv, "blocks", final_head),
                         "blocks, reconnecting after each kill -9")
    finally:
        c.close()
        follower.close()


def test_finality_depth_hides_shallow_reorgs(make_anvil, make_server, tmp_path):
    finality = 3
    node = make_anvil()
    node.traffic(blocks=20, txs_per_block=4, seed=6)
    srv = make_server(tmp_path / "data", node.url, "--finality-depth", str(finality),
                      "--server-microbatch-max-interval", "4")
    wait_store_matches_node(srv, node, behind=finality)

    too_new, stop = [], threading.Event()
    reorg_phase = [0]  # odd while anvil_reorg runs

    def watch():  # the stored head never comes within `finality` of the node's head
        while not stop.is_set():
            phase = reorg_phase[0]
            stored = srv.stored_head()
            node_head = node.head()  # read after: the node's head only grows here...
            # ...except while anvil_reorg runs (anvil rewinds and re-mines): skip those.
            if phase % 2 == 0 and reorg_phase[0] == phase and stored > node_head - finality:
                too_new.append((stored, node_head))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    clients = {name: ProtocolClient(srv.location, QUERIES[name])
               for name in ("blocks", "transactions", "join")}
    try:
        stored = node.head() - finality
        for c in clients.values():
            c.wait_until(stored)
        reorg_phase[0] += 1
        anvil_reorg(node.url, 2, moved_txs(node.url, 2))
        reorg_phase[0] += 1
        time.sleep(1.5)  # longer than the server's head re-check (1 s)
        node.traffic(blocks=3, txs_per_block=4, seed=7)
        final_head = wait_store_matches_node(srv, node, behind=finality)
        assert assert_store_matches_node(srv, node, behind=finality) == final_head
        for name, c in clients.items():
            c.wait_until(final_head)
            assert not c.violations, f"{name}: {c.violations[:5]}"
            assert c.reorgs == [], f"{name}: is_reorg microbatches {[r for _, r, _ in c.reorgs]}"
            assert_same_rows(c.rows_upto(final_head), batch_rows(srv, name, final_head), name)
        assert max(clients["blocks"].rows) == final_head
    finally:
        stop.set()
        watcher.join(5)
        for c in clients.values():
            c.close()
    assert not too_new, f"(stored head, node head) within {finality} of the head: {too_new[:5]}"


def test_reorg_deeper_than_the_limit_stops_extraction_loudly(make_anvil, make_server, tmp_path):
    """A reorg deeper than max_reorg_depth stops extraction with an error naming it;
    the server keeps serving the old chain, never a mix of the two."""
    node = make_anvil()
    node.traffic(blocks=20, txs_per_block=2, seed=8)
    srv = make_server(tmp_path / "data", node.url, "--max-reorg-depth", "8")
    head = node.head()
    srv.wait_head(head)
    before = node_chain(node.url, 0, head)
    anvil_reorg(node.url, 10)
    node.mine(3)
    wait_for(lambda: "reorg deeper than max_reorg_depth=8" in srv.log_text(), 20,
             "an error naming max_reorg_depth")
    node.mine(2)
    time.sleep(1.0)
    # The server stays up and serves what it stored: the old chain, untouched.
    assert srv.proc.poll() is None, srv.log_text()
    store = store_chain(srv)
    assert sorted(store) == list(range(head + 1))
    assert all(store[n]["hash"] == before[n]["hash"] for n in store)


def test_docs_example_client(make_anvil, make_server, tmp_path):
    """The client of docs/reorgs.md, run as written: it catches up, disconnects,
    resumes with its saved cursor, follows a reorg that happens while it is
    connected, and ends with exactly the batch rows."""
    text = (ROOT / "docs" / "reorgs.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    ns: dict = {"__name__": "docs_reorgs_example"}
    exec(compile(code, "docs/reorgs.md", "exec"), ns)  # noqa: S102 - our own documentation

    node = make_anvil()
    node.traffic(blocks=15, txs_per_block=4, seed=10)
    srv = make_server(tmp_path / "data", node.url, "--server-microbatch-max-interval", "5")
    head = node.head()
    srv.wait_head(head)
    sql = QUERIES["transactions"]
    state = ns["State"]()
    target = {"block": head}
    done = threading.Event()
    errors = []

    def run():
        try:
            ns["follow"](srv.location, sql, state, stop=lambda s: s.cursor["anvil"]["block_number"]
                         >= target["block"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(30) and not errors, f"the example did not catch up: {errors}"
    # Resume with the saved cursor; the chain reorganizes while it is connected.
    done.clear()
    target["block"] = 10**9
    threading.Thread(target=run, daemon=True).start()
    time.sleep(0.5)
    anvil_reorg(node.url, 4, moved_txs(node.url, 4))
    node.traffic(blocks=2, txs_per_block=4, seed=11)
    final_head = wait_store_matches_node(srv, node) + 1
    target["block"] = final_head
    node.mine(1)  # a microbatch_end at final_head ends follow()
    assert wait_store_matches_node(srv, node) == final_head
    assert done.wait(30) and not errors, f"the example did not follow the reorg: {errors}"
    rows = [r for b in sorted(state.rows) if b <= final_head for r in state.rows[b]]
    assert_same_rows(rows, batch_rows(srv, "transactions", final_head), "docs example")
