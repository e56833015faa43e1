"""Restarts, crashes, foreign chains, dead nodes, the CLI and the configuration."""
from __future__ import annotations

import subprocess
import time

import pytest

from sluice_harness import SLUICE, Server, query, rpc, wait_for


def assert_store_equals_node(srv, node):
    """Each block stored exactly once, with the node's hash and transaction count."""
    head = node.head()
    client = srv.client()
    t = query(client, """
        SELECT b.block_num, b.hash, count(t.tx_hash) AS txs
        FROM eth_rpc.blocks b LEFT JOIN eth_rpc.transactions t USING (block_num)
        GROUP BY ALL ORDER BY b.block_num""")
    assert t.column("block_num").to_pylist() == list(range(head + 1))
    dup = query(client, "SELECT count(*) - count(DISTINCT tx_hash) AS d FROM eth_rpc.transactions")
    assert dup.column("d")[0].as_py() == 0
    for n, h, txs in zip(*(t.column(c).to_pylist() for c in ("block_num", "hash", "txs"))):
        blk = rpc(node.url, "eth_getBlockByNumber", [hex(n), False])
        assert h.hex() == blk["hash"][2:], f"block {n}"
        assert txs == len(blk["transactions"]), f"block {n}"


def test_kill9_during_extraction_then_restart(make_anvil, tmp_path):
    node = make_anvil()
    node.traffic(blocks=30, txs_per_block=4)
    node.mine(1500)
    node.traffic(blocks=30, txs_per_block=4, seed=2)
    head = node.head()
    data = tmp_path / "data"
    slow = ("--rpc-batch-blocks", "5", "--rpc-max-in-flight", "1")
    for kill_at in (40, 700, 1530):
        srv = Server(data, node.url, *slow)
        wait_for(lambda: srv.stored_head() >= kill_at, 120, f"block {kill_at}")
        srv.kill9()
    srv = Server(data, node.url)
    srv.wait_head(head)
    assert_store_equals_node(srv, node)
    srv.stop()


def test_restart_continues_without_gap_or_duplicate(make_anvil, tmp_path):
    node = make_anvil()
    node.traffic(blocks=10)
    data = tmp_path / "data"
    srv = Server(data, node.url)
    srv.wait_head(node.head())
    assert srv.stop() == 0  # SIGINT: clean shutdown
    node.traffic(blocks=10, seed=3)
    srv = Server(data, node.url)
    srv.wait_head(node.head())
    assert_store_equals_node(srv, node)
    srv.stop()


def test_new_blocks_are_followed(chain, server):
    before = chain.head()
    chain.traffic(blocks=3, seed=7)
    assert chain.head() >= before + 3
    server.wait_head(chain.head(), timeout=30)
    assert_store_equals_node(server, chain)


@pytest.mark.parametrize("other", [{"genesis_timestamp": 1_600_000_000},
                                   {"chain_id": 1337, "genesis_timestamp": 1_700_000_000}],
                         ids=["other-genesis", "other-chain-id"])
def test_refuses_a_different_chain(make_anvil, tmp_path, other):
    a = make_anvil(genesis_timestamp=1_700_000_000)
    a.mine(5)
    data = tmp_path / "data"
    srv = Server(data, a.url)
    srv.wait_head(5)
    srv.stop()
    b = make_anvil(**other)
    b.mine(8)
    proc = subprocess.run([str(SLUICE), "serve", "--rpc-url", b.url, "--data-dir", str(data),
                           "--flight-addr", "127.0.0.1:0"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    err = proc.stderr.lower()
    assert "genesis" in err and "data" in err, proc.stderr
    # The data of the first chain is untouched.
    srv = Server(data, a.url)
    srv.wait_head(5)
    assert_store_equals_node(srv, a)
    srv.stop()


def test_dead_node_does_not_take_the_server_down(tmp_path):
    srv = Server(tmp_path / "data", "http://127.0.0.1:1")  # nothing listens on port 1
    time.sleep(1.0)
    assert srv.proc.poll() is None
    t = query(srv.client(), "SELECT count(*) AS n FROM eth_rpc.blocks")
    assert t.column("n")[0].as_py() == 0
    assert srv.stop() == 0


def test_cli_query_prints_a_table(server, chain):
    proc = subprocess.run([str(SLUICE), "query", "--server", server.location, "--format", "table",
                           "SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num LIMIT 3"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split("|")[0].strip() == "block_num"
    genesis = rpc(chain.url, "eth_getBlockByNumber", ["0x0", False])["hash"]
    assert lines[2].split("|")[1].strip() == genesis
    assert lines[-1] == "(3 rows)"


def test_cli_query_error_is_one_line(server):
    proc = subprocess.run([str(SLUICE), "query", "--server", server.location,
                           "SELECT * FROM eth_rpc.nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "nope" in proc.stderr


@pytest.mark.parametrize("cmd", [["--help"], ["serve", "--help"], ["query", "--help"]])
def test_cli_help(cmd):
    proc = subprocess.run([str(SLUICE), *cmd], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    assert "Usage" in proc.stdout or "usage" in proc.stdout.lower()


def test_serve_help_lists_every_setting():
    out = subprocess.run([str(SLUICE), "serve", "--help"], capture_output=True, text=True).stdout
    for flag in ("--server-microbatch-max-interval", "--keep-alive-interval", "--rpc-url",
                 "--dataset", "--network", "--start-block", "--config"):
        assert flag in out


def test_config_file_in_working_directory(make_anvil, tmp_path):
    node = make_anvil()
    node.mine(3)
    (tmp_path / ".amp").mkdir()
    (tmp_path / ".amp" / "config.toml").write_text(
        f'rpc_url = "{node.url}"\ndataset = "eth"\nnetwork = "devnet"\n'
        'server_microbatch_max_interval = 100\nkeep_alive_interval = 60\n')
    srv = Server(tmp_path / "data", node.url, cwd=tmp_path)
    wait_for(lambda: query(srv.client(), "SELECT max(block_num) AS m FROM eth.blocks")
             .column("m")[0].as_py() == 3, 60, "eth.blocks")
    srv.stop()


def test_config_unknown_key_is_named(tmp_path):
    cfg = tmp_path / "sluice.toml"
    cfg.write_text("keep_alive_intervall = 60\n")
    proc = subprocess.run([str(SLUICE), "serve", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0
    assert "keep_alive_intervall" in proc.stderr


def test_config_keep_alive_minimum(tmp_path):
    proc = subprocess.run([str(SLUICE), "serve", "--keep-alive-interval", "10",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "keep_alive_interval" in proc.stderr
