"""Derived tables from configuration (demo/config.toml): the seed 000 query over
eth.nft_owners, streaming over an incrementalizable derived table, and rejection
of one that is not."""
from __future__ import annotations

import subprocess

import pyarrow as pa
import pytest

from sluice_harness import ROOT, SLUICE, Server, StreamReader, query, rpc

CONFIG = ROOT / "demo" / "config.toml"
NFT = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"  # demo NFT on a fresh anvil (traffic.py)
OWNER_OF = "0x6352211e"  # ownerOf(uint256)


@pytest.fixture(scope="module")
def dserver(chain, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dserver")
    srv = Server(tmp / "data", chain.url, "--config", str(CONFIG))
    srv.wait_head(chain.head())
    yield srv
    srv.stop()


def test_seed_000_nft_owners(chain, dserver):
    """The seed's query, with the demo collection's address: every owner equals the
    contract's own ownerOf(tokenId) (eth_call)."""
    reader = dserver.client()
    query_sql = f"""
        SELECT token_id, owner
        FROM eth.nft_owners
        WHERE token_address = '{NFT}'
        ORDER BY CAST(token_id AS NUMERIC)
    """
    df = query(reader, query_sql).to_pandas()
    assert len(df) >= 10
    for token_id, owner in zip(df["token_id"], df["owner"]):
        data = OWNER_OF + int(token_id).to_bytes(32, "big").hex()
        answer = rpc(chain.url, "eth_call", [{"to": NFT, "data": data}, "latest"])
        assert owner == "0x" + answer[-40:], f"token {token_id}"


def test_erc20_transfers_stream_equals_batch(dserver):
    head = dserver.stored_head()
    sql = "SELECT block_num, log_index, token_address, \"from\", \"to\", value FROM eth.erc20_transfers"
    s = StreamReader(dserver.location, sql + " SETTINGS stream = true")
    try:
        got = [r for kind, _, b in s.until_block(head) if kind == "data" for r in b.to_pylist()]
    finally:
        s.close()
    want = query(dserver.client(), f"{sql} WHERE block_num <= {head} ORDER BY block_num, log_index")
    assert got == want.to_pylist()
    assert len(got) > 20
    assert all(int(r["value"]) >= 0 for r in got)


def test_non_incremental_derived_table_rejected(dserver):
    with pytest.raises(pa.ArrowInvalid, match="NonIncrementalOp: Aggregate function MAX"):
        query(dserver.client(), "SELECT block_num FROM eth.recent_blocks SETTINGS stream = true")
    t = query(dserver.client(), "SELECT count(*) AS n FROM eth.recent_blocks")
    assert t.column("n")[0].as_py() == min(100, dserver.stored_head() + 1)


def test_bad_derived_table_refused_at_start(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[derived_tables]]\nname = "eth.bad"\nsql = "SELECT * FROM read_csv(\'/etc/passwd\')"\n')
    proc = subprocess.run([str(SLUICE), "serve", "--config", str(cfg), "--data-dir",
                           str(tmp_path / "d"), "--extract", "false"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "eth.bad" in proc.stderr and "read_csv" in proc.stderr
