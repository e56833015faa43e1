"""The EVM SQL functions (docs/protocol.md, "EVM functions") against real parts: an
anvil node running the demo traffic and SluiceProbe (demo/contracts/SluiceProbe.sol,
compiled by solc), the sluice server, and pyarrow / ADBC clients.

Independent truths: the node's own receipts, transactions and eth_call answers;
values written in the contract's source; encodings that solc-compiled code
produces (return data, events, abi.encode / abi.encodeCall results); and the batch
answer for every streaming query. Every example of ../shared/spec/evm-functions.md
runs here."""
from __future__ import annotations

import json
import socket
import threading

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import ROOT, Anvil, Server, StreamReader, query, rpc

PROBE_ARTIFACT = ROOT / ".deps" / "contracts" / "SluiceProbe.json"
TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3"  # SluiceToken on a fresh anvil (traffic.py)
DEV0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
DEV1 = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
ERC20_TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"
POST = ("post(string topic, int256 score, int8 mood, string[] tags, "
        "(uint256 id, string[] tags, address author) p, bytes note)")
POSTED = ("Posted(address indexed author, string indexed topic, int256 score, int8 mood, "
          "string[] tags, (uint256 id, string[] tags, address author) post, bytes note, "
          "uint256 big)")
EXTREMES = ("Extremes(int256 indexed low, uint128 u128, int128 i128, uint256 max, int256 min, "
            "bytes32 tag, bool flag, uint24 odd, bytes3[2] pair)")
UINT256_MAX = 2**256 - 1
MAX_CALLS = 200  # the module server's eth_call_max_calls


def selector(artifact: dict, signature: str) -> str:
    return artifact["methodIdentifiers"][signature]


def word(n: int) -> str:
    return format(n % 2**256, "064x")


def abi_bytes(result_hex: str) -> bytes:
    """The payload of a function's `bytes` return value: offset, length, data."""
    raw = bytes.fromhex(result_hex[2:])
    offset = int.from_bytes(raw[:32], "big")
    length = int.from_bytes(raw[offset:offset + 32], "big")
    return raw[offset + 32:offset + 32 + length]


def mined(url: str, tx: dict) -> dict:
    """Send a transaction, mine it in its own block; its receipt."""
    h = rpc(url, "eth_sendTransaction", [tx])
    rpc(url, "evm_mine")
    receipt = rpc(url, "eth_getTransactionReceipt", [h])
    assert receipt["status"] == "0x1", receipt
    return receipt


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """An anvil node with demo traffic, then SluiceProbe deployed and driven: two
    setReserves (blocks reserves1/reserves2), a post(…) whose calldata solc built, and
    extremes()."""
    if not PROBE_ARTIFACT.exists():
        pytest.skip(f"{PROBE_ARTIFACT} missing: run scripts/bootstrap.sh")
    node = Anvil(tmp_path_factory.mktemp("evm_chain"))
    node.traffic(blocks=8)
    art = json.loads(PROBE_ARTIFACT.read_text())
    url = node.url
    deployed = mined(url, {"from": DEV0, "data": art["bytecode"], "gas": hex(3_000_000)})
    address = deployed["contractAddress"].lower()
    info = {"url": url, "address": address, "artifact": art}

    def call(sig: str, args: str = "", frm: str = DEV0) -> dict:
        return mined(url, {"from": frm, "to": address, "gas": hex(500_000),
                           "data": "0x" + selector(art, sig) + args})

    info["reserves1"] = int(call("setReserves(uint112,uint112)", word(112233) + word(445566))
                            ["blockNumber"], 16)
    rpc(url, "evm_mine")
    info["reserves2"] = int(call("setReserves(uint112,uint112)", word(1) + word(2))
                            ["blockNumber"], 16)
    post_calldata = abi_bytes(rpc(url, "eth_call", [
        {"to": address, "data": "0x" + selector(art, "postCalldata()")}, "latest"]))
    info["post_calldata"] = post_calldata
    receipt = mined(url, {"from": DEV1, "to": address, "gas": hex(500_000),
                          "data": "0x" + post_calldata.hex()})
    info["post_block"], info["post_tx"] = int(receipt["blockNumber"], 16), receipt["transactionHash"]
    info["post_log"] = receipt["logs"][0]
    receipt = call("extremes()")
    info["extremes_log"] = receipt["logs"][0]
    yield node, info
    node.stop()


@pytest.fixture(scope="module")
def esrv(probe, tmp_path_factory):
    """A server over the probe chain: the demo's derived tables plus two that use the
    EVM functions (one with eth_call, which cannot stream)."""
    node, info = probe
    tmp = tmp_path_factory.mktemp("evm_server")
    cfg = tmp / "config.toml"
    cfg.write_text((ROOT / "demo" / "config.toml").read_text() + f"""
[[derived_tables]]
name = "probe.transfer_calls"
sql = \"\"\"
SELECT block_num, tx_index, evm_decode_params(input, 'transfer(address to, uint256 amount)') AS p
FROM eth_rpc.transactions WHERE evm_decode_hex(input[1:4]) = '0xa9059cbb'
\"\"\"

[[derived_tables]]
name = "probe.token"
sql = \"\"\"
SELECT evm_decode_type(eth_call(NULL, evm_encode_hex('{TOKEN}'), evm_encode_params('name()'),
                                 'latest').data, 'string') AS name, block_num
FROM eth_rpc.blocks WHERE block_num = 0
\"\"\"
""")
    srv = Server(tmp / "data", node.url, "--config", str(cfg), "--eth-call-max-calls", str(MAX_CALLS))
    srv.wait_head(node.head())
    yield srv
    srv.stop()


def stream_rows(srv: Server, sql: str, head: int) -> list:
    s = StreamReader(srv.location, sql + " SETTINGS stream = true")
    try:
        return [r for kind, _, b in s.until_block(head, timeout=120) if kind == "data"
                for r in b.to_pylist()]
    finally:
        s.close()


def one(srv: Server, sql: str):
    t = query(srv.client(), sql)
    assert t.num_rows == 1, t
    return t.to_pylist()[0]


# ---- the examples of evm-functions.md ---------------------------------------------------------

def test_erc20_transfers_decoded_as_struct_fields(probe, esrv):
    """ERC-20 transfers decoded with evm_decode_log and read as decoded.from /
    decoded.value equal the node's receipts, in batch and streaming."""
    node, _ = probe
    head = esrv.stored_head()
    sql = (f"SELECT block_num, log_index, decoded.from, decoded.to, decoded.value FROM "
           f"(SELECT block_num, log_index, evm_decode_log(topic1, topic2, topic3, data, "
           f"'{ERC20_TRANSFER}') AS decoded FROM eth_rpc.logs "
           f"WHERE topic0 = evm_topic('{ERC20_TRANSFER}') AND topic3 IS NULL)")
    batch = query(esrv.client(), sql + f" WHERE block_num <= {head} ORDER BY block_num, log_index")
    assert batch.schema.field("value").type == pa.string()  # uint256: exact decimal text
    assert batch.schema.field("from").type == pa.binary()
    rows = batch.to_pylist()
    want = []
    for b in range(head + 1):
        for rc in rpc(node.url, "eth_getBlockReceipts", [hex(b)]):
            for log in rc["logs"]:
                t = log["topics"]
                if len(t) == 3 and t[0] == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef":
                    want.append({"block_num": b, "log_index": int(log["logIndex"], 16),
                                 "from": bytes.fromhex(t[1][26:]), "to": bytes.fromhex(t[2][26:]),
                                 "value": str(int(log["data"], 16))})
    assert rows == want and len(rows) > 20
    assert stream_rows(esrv, sql, head) == rows


def test_transfer_calls_decoded_from_transaction_input(probe, esrv):
    """evm_decode_params(input, 'transfer(address to, uint256 amount)') equals the
    arguments in the node's transactions; through a derived table it streams."""
    node, _ = probe
    head = esrv.stored_head()
    sql = ("SELECT block_num, tx_index, evm_decode_hex(p.to) AS to, p.amount FROM ("
           "SELECT block_num, tx_index, evm_decode_params(input, "
           "'transfer(address to, uint256 amount)') AS p FROM eth_rpc.transactions "
           "WHERE evm_decode_hex(input[1:4]) = '0xa9059cbb')")
    rows = query(esrv.client(), sql + f" WHERE block_num <= {head} ORDER BY block_num, tx_index").to_pylist()
    want = []
    for b in range(head + 1):
        for tx in rpc(node.url, "eth_getBlockByNumber", [hex(b), True])["transactions"]:
            if tx["input"].startswith("0xa9059cbb"):
                want.append({"block_num": b, "tx_index": int(tx["transactionIndex"], 16),
                             "to": "0x" + tx["input"][34:74],
                             "amount": str(int(tx["input"][74:138], 16))})
    assert rows == want and len(rows) >= 3
    assert stream_rows(esrv, sql, head) == rows
    view = ("SELECT block_num, tx_index, evm_decode_hex(p.to) AS to, p.amount "
            "FROM probe.transfer_calls")
    assert stream_rows(esrv, view, head) == rows


def test_token_name_and_decimals_through_eth_call(probe, esrv):
    node, _ = probe
    row = one(esrv, f"""
        SELECT evm_decode_type(eth_call(NULL, evm_encode_hex('{TOKEN}'), evm_encode_params('name()'),
                                        'latest').data, 'string') AS name,
               evm_decode_type(eth_call(NULL, evm_encode_hex('{TOKEN}'),
                                        evm_encode_params('decimals()'), 'latest').data, 'uint8') AS decimals,
               eth_call(NULL, evm_encode_hex('{TOKEN}'), evm_encode_params('symbol()'), 'latest') AS raw""")
    assert row["name"] == "Sluice Demo Token"  # the constants in SluiceToken.sol
    assert row["decimals"] == 18
    node_answer = rpc(node.url, "eth_call", [{"to": TOKEN, "data": "0x95d89b41"}, "latest"])
    assert row["raw"] == {"data": bytes.fromhex(node_answer[2:]), "message": None}
    assert one(esrv, "SELECT name FROM probe.token") == {"name": "Sluice Demo Token"}


def test_balance_of_at_historical_blocks(probe, esrv):
    """balanceOf at given blocks equals the node's eth_call at those blocks."""
    node, _ = probe
    head = esrv.stored_head()
    got = query(esrv.client(), f"""
        SELECT block_num, evm_decode_type(eth_call(NULL, evm_encode_hex('{TOKEN}'),
                   evm_encode_params(evm_encode_hex('{DEV1}'), 'balanceOf(address account)'),
                   CAST(block_num AS VARCHAR)).data, 'uint256') AS balance
        FROM eth_rpc.blocks WHERE block_num BETWEEN 1 AND {head} ORDER BY block_num""").to_pylist()
    want = [{"block_num": b, "balance": str(int(rpc(node.url, "eth_call", [
        {"to": TOKEN, "data": "0x70a08231" + DEV1[2:].rjust(64, "0")}, hex(b)]), 16))}
        for b in range(1, head + 1)]
    assert got == want
    assert len({r["balance"] for r in got}) >= 3  # the block argument matters
    # An integer block number works as well.
    assert one(esrv, f"SELECT evm_decode_type(eth_call(NULL, evm_encode_hex('{TOKEN}'), "
                     f"evm_encode_params(evm_encode_hex('{DEV1}'), 'balanceOf(address)'), 3).data, "
                     f"'uint256') AS b")["b"] == want[2]["balance"]


def test_get_reserves_decoded_as_tuple(probe, esrv):
    node, info = probe
    sql = (f"SELECT evm_decode_type(eth_call(NULL, evm_encode_hex('{info['address']}'), "
           f"evm_encode_params('getReserves()'), '{{}}').data, '(uint112,uint112,uint32)') AS r")
    first = one(esrv, sql.format(info["reserves1"]))["r"]
    latest = one(esrv, sql.format("latest"))["r"]
    ts1 = int(rpc(node.url, "eth_getBlockByNumber", [hex(info["reserves1"]), False])["timestamp"], 16)
    ts2 = int(rpc(node.url, "eth_getBlockByNumber", [hex(info["reserves2"]), False])["timestamp"], 16)
    assert first == {"c0": 112233, "c1": 445566, "c2": ts1}
    assert latest == {"c0": 1, "c1": 2, "c2": ts2}
    # The Sync events of those calls, decoded.
    rows = query(esrv.client(), "SELECT block_num, evm_decode_log(topic1, topic2, topic3, data, "
                                "'Sync(uint112 reserve0, uint112 reserve1)') AS s FROM eth_rpc.logs "
                                "WHERE topic0 = evm_topic('Sync(uint112,uint112)') ORDER BY block_num").to_pylist()
    assert rows == [{"block_num": info["reserves1"], "s": {"reserve0": 112233, "reserve1": 445566}},
                    {"block_num": info["reserves2"], "s": {"reserve0": 1, "reserve1": 2}}]


# ---- eth_call: reverts, errors, limits ------------------------------------------------------------

def test_reverts_carry_the_decoded_reason(probe, esrv):
    node, info = probe
    art, address = info["artifact"], info["address"]
    row = one(esrv, f"""
        SELECT eth_call(NULL, evm_encode_hex('{address}'),
                        evm_encode_params('no entry', 'fail(string reason)'), 'latest') AS f,
               eth_call(NULL, evm_encode_hex('{address}'),
                        evm_encode_params(7, 0, 'divide(uint256 a, uint256 b)'), 'latest') AS d,
               eth_call(NULL, evm_encode_hex('{address}'),
                        evm_encode_params(7, 2, 'divide(uint256 a, uint256 b)'), 'latest') AS ok""")
    # The node's own answer to the same call: its message and revert data.
    fail_data = "0x" + selector(art, "fail(string)") + word(32) + word(8) + b"no entry".hex().ljust(64, "0")
    answer = json.loads(rpc_raw(node.url, "eth_call", [{"to": address, "data": fail_data}, "latest"]))
    assert answer["error"]["message"] == "execution reverted: no entry"
    assert row["f"] == {"data": bytes.fromhex(answer["error"]["data"][2:]),
                        "message": "execution reverted: no entry"}
    assert row["d"]["message"] == "execution reverted: panic 0x12 (division or modulo by zero)"
    assert row["d"]["data"] == bytes.fromhex("4e487b71" + word(0x12))  # Panic(uint256), 0x12
    assert row["ok"] == {"data": bytes.fromhex(word(3)), "message": None}


def rpc_raw(url: str, method: str, params: list) -> str:
    import urllib.request
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read().decode()


def test_eth_call_limit_and_argument_errors(probe, esrv):
    _, info = probe
    c = esrv.client()
    # More distinct calls than eth_call_max_calls: the query fails, saying why.
    with pytest.raises(pa.ArrowInvalid, match=r"eth_call: the query makes more than 200 calls"):
        query(c, f"SELECT eth_call(NULL, evm_encode_hex('{TOKEN}'), evm_encode_params(i::UBIGINT, "
                 f"'balanceOf(uint256 x)'), 'latest') FROM range({MAX_CALLS + 50}) t(i)")
    # Identical calls count once.
    t = query(c, f"SELECT eth_call(NULL, evm_encode_hex('{TOKEN}'), evm_encode_params('name()'), "
                 f"'latest').message IS NULL AS ok FROM range({MAX_CALLS * 3}) t(i)")
    assert t.num_rows == MAX_CALLS * 3 and all(t.column("ok").to_pylist())
    for sql, msg in [
        (f"SELECT eth_call(NULL, NULL, NULL, 'latest')", "to must be an address of 20 bytes"),
        (f"SELECT eth_call(NULL, evm_encode_hex('{TOKEN}'), NULL, 'newest')", "block must be"),
        (f"SELECT eth_call(NULL, evm_encode_hex('{TOKEN}'), NULL, NULL)", "block must not be NULL"),
        (f"SELECT eth_call('\\x01'::BLOB, evm_encode_hex('{TOKEN}'), NULL, 'latest')", "from must be"),
        ("SELECT nope.eth_call(NULL, NULL, NULL, 'latest')", "nope"),
    ]:
        with pytest.raises(pa.ArrowInvalid, match=msg):
            query(c, sql)
    # eth_rpc.eth_call names the dataset; the server is still up and answers.
    assert one(esrv, f"SELECT eth_rpc.eth_call(NULL, evm_encode_hex('{TOKEN}'), "
                     f"evm_encode_params('decimals()'), 'latest').data AS d")["d"] == bytes.fromhex(word(18))


def test_eth_call_node_down_or_silent(probe, tmp_path, make_server):
    """A node that refuses connections, or accepts and never answers (past
    eth_call_timeout_secs): the query fails naming eth_call; the server stays up."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted = []
    stop = threading.Event()

    def hold():  # accept and say nothing
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                pass

    threading.Thread(target=hold, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    try:
        for port, msg in [(dead_port, "eth_call: dataset eth_rpc: .*127.0.0.1"),
                          (silent.getsockname()[1], "eth_call: dataset eth_rpc: .*(imeout|timed out)")]:
            srv = make_server(tmp_path / f"d{port}", f"http://127.0.0.1:{port}", "--extract", "false",
                              "--eth-call-timeout-secs", "0.5")
            with pytest.raises(pa.ArrowInvalid, match=msg):
                query(srv.client(), f"SELECT eth_call(NULL, evm_encode_hex('{TOKEN}'), NULL, 'latest')")
            assert one(srv, "SELECT evm_decode_hex(evm_encode_hex('" + TOKEN + "')) AS t") == {"t": TOKEN}
    finally:
        stop.set()
        silent.close()
        for s in accepted:
            s.close()


def test_eth_call_refused_in_streaming(esrv):
    for sql in [f"SELECT block_num, eth_call(NULL, evm_encode_hex('{TOKEN}'), NULL, 'latest') "
                f"FROM eth_rpc.blocks",
                "SELECT * FROM probe.token"]:
        with pytest.raises(pa.ArrowInvalid, match="NonIncrementalOp: eth_call"):
            query(esrv.client(), sql + " SETTINGS stream = true")


# ---- encodings solc produces --------------------------------------------------------------------

def test_decode_and_encode_match_solc(probe, esrv):
    node, info = probe
    a = info["address"]
    # triple() returns abi.encode(Triple(-1, -2, ["str1", "str2", "str3"])).
    row = one(esrv, f"""
        SELECT evm_decode_type(r.data, '(int256, int8, string[])') AS decoded,
               evm_encode_type(row(-1, -2, ['str1', 'str2', 'str3']), '(int256, int8, string[])')
                 = r.data AS same_as_solc,
               evm_encode_type(row(5, 6, ['x']), '(int256,int8,string[])')
                 = evm_decode_type(eth_call(NULL, evm_encode_hex('{a}'),
                     evm_encode_params(5, 6, ['x'], 'encodeTriple(int256 a, int8 b, string[] c)'),
                     'latest').data, 'bytes') AS same_as_abi_encode
        FROM (SELECT eth_call(NULL, evm_encode_hex('{a}'), evm_encode_params('triple()'), 'latest') AS r)""")
    assert row == {"decoded": {"c0": "-1", "c1": -2, "c2": ["str1", "str2", "str3"]},
                   "same_as_solc": True, "same_as_abi_encode": True}
    # evm_encode_params writes the calldata abi.encodeCall(this.post, …) writes.
    got = one(esrv, f"""SELECT evm_encode_params('topic', -5, -128, ['abi', 'sql'],
                              row(7, ['é€ unicode'], evm_encode_hex('{a}')), '\\x00\\xff\\x10'::BLOB,
                              '{POST}') AS calldata""")["calldata"]
    assert got == info["post_calldata"]
    # echo(p) decodes sluice's calldata with solc's decoder and returns p re-encoded.
    row = one(esrv, f"""
        SELECT evm_decode_type(eth_call(NULL, evm_encode_hex('{a}'),
                 evm_encode_params(row(9, ['a', 'bé', ''], evm_encode_hex('{DEV0}')),
                                   'echo((uint256 id, string[] tags, address author) p)'),
                 'latest').data, '(uint256 id, string[] tags, address author)') AS p""")
    assert row["p"] == {"id": "9", "tags": ["a", "bé", ""], "author": bytes.fromhex(DEV0[2:])}


def test_post_call_and_event_decoded(probe, esrv):
    """The post(…) transaction (calldata by solc) and its Posted event, decoded, hold
    the values written in SluiceProbe.postCalldata(); the indexed string is its topic."""
    node, info = probe
    a = info["address"]
    params = one(esrv, f"SELECT evm_decode_params(input, '{POST}') AS p FROM eth_rpc.transactions "
                       f"WHERE tx_hash = from_hex('{info['post_tx'][2:]}')")["p"]
    assert params == {"topic": "topic", "score": "-5", "mood": -128, "tags": ["abi", "sql"],
                      "p": {"id": "7", "tags": ["é€ unicode"], "author": bytes.fromhex(a[2:])},
                      "note": b"\x00\xff\x10"}
    log = info["post_log"]
    ev = one(esrv, f"SELECT evm_decode_log(topic1, topic2, topic3, data, '{POSTED}') AS e "
                   f"FROM eth_rpc.logs WHERE block_num = {info['post_block']}")["e"]
    assert ev == {"author": bytes.fromhex(DEV1[2:]), "topic": bytes.fromhex(log["topics"][2][2:]),
                  "score": "-5", "mood": -128, "tags": ["abi", "sql"],
                  "post": {"id": "7", "tags": ["é€ unicode"], "author": bytes.fromhex(a[2:])},
                  "note": b"\x00\xff\x10", "big": str(UINT256_MAX)}
    assert log["topics"][0] == info["artifact"]["events"][
        "Posted(address,string,int256,int8,string[],(uint256,string[],address),bytes,uint256)"]
    assert one(esrv, f"SELECT evm_topic('{POSTED}') AS t")["t"] == bytes.fromhex(log["topics"][0][2:])


def test_extreme_integers_exact(probe, esrv):
    node, info = probe
    t = query(esrv.client(), f"SELECT evm_decode_log(topic1, topic2, topic3, data, '{EXTREMES}') AS e "
                             f"FROM eth_rpc.logs WHERE topic0 = evm_topic('{EXTREMES}')")
    assert t.num_rows == 1
    fields = {f.name: f.type for f in t.schema.field("e").type}
    assert fields["i128"] == pa.decimal128(38, 0)  # HUGEINT
    assert fields["odd"] == pa.uint32() and fields["u128"] == pa.string()
    e = t.to_pylist()[0]["e"]
    data = bytes.fromhex(info["extremes_log"]["data"][2:])
    assert e["low"] == "-42"
    assert e["u128"] == str(2**128 - 1)
    assert int(e["i128"]) == -2**127
    assert e["max"] == str(UINT256_MAX) and e["min"] == str(-2**255)
    assert e["tag"] == data[32 * 4:32 * 5]  # keccak256("sluice"), as the node stored it
    assert e["flag"] is True and e["odd"] == 0xabcdef
    assert e["pair"] == [b"abc", b"def"]


# ---- schemas, prepared statements, bad input ------------------------------------------------------

def test_flight_info_schema_equals_data(probe, esrv):
    sql = (f"SELECT evm_decode_log(topic1, topic2, topic3, data, '{ERC20_TRANSFER}') AS d, "
           f"evm_decode_type(data, '(uint112 a, string[] b)') AS t FROM eth_rpc.logs LIMIT 5")
    c = esrv.client()
    info = c.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    data = c.do_get(info.endpoints[0].ticket).read_all()
    assert info.schema == data.schema
    assert str(data.schema.field("d").type) == "struct<from: binary, to: binary, value: string>"


def test_prepared_statements_through_adbc(probe, esrv):
    with flight_sql.connect(esrv.location, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT evm_decode_type(?, '(uint112,uint112,uint32)') AS r, "
                    "evm_decode_hex(?) AS h",
                    parameters=(bytes.fromhex(word(1000) + word(2000) + word(3)), b"\xab\xcd"))
        assert cur.fetchone() == ({"c0": 1000, "c1": 2000, "c2": 3}, "0xabcd")


def test_bad_input_is_null_or_a_clear_error(probe, esrv):
    c = esrv.client()
    row = one(esrv, "SELECT evm_decode_type(from_hex('01'), 'uint256') AS a, "
                    "evm_decode_log(NULL, NULL, NULL, from_hex('00'), 'E(uint256 x)') AS b, "
                    "evm_decode_params(from_hex('a9059cbb'), 'transfer(address to, uint256 amount)') AS p")
    assert row == {"a": None, "b": None, "p": {"to": None, "amount": None}}
    for sql, msg in [
        ("SELECT evm_decode_log(NULL, NULL, NULL, data, 'E(uint7 x)') FROM eth_rpc.logs",
         "evm_decode_log: event signature 'E\\(uint7 x\\)': bad integer type"),
        ("SELECT evm_decode_type(data, 'tuple(') FROM eth_rpc.logs", "evm_decode_type: type"),
        ("SELECT evm_decode_type(data, s) FROM eth_rpc.logs, (SELECT 'uint8' AS s)",
         "must be a string literal"),
        ("SELECT evm_encode_type(300, 'uint8')", "out of range for uint8"),
        ("SELECT evm_encode_hex('0x12')", "40 or 64 hex digits"),
        ("SELECT shift_units('one', 2)", "not a decimal number"),
    ]:
        with pytest.raises(pa.ArrowInvalid, match=msg):
            query(c, sql)
    assert one(esrv, "SELECT shift_units('1500000000000000000', -18) AS v") == {"v": "1.5"}


def test_protocol_doc_examples(probe, esrv):
    """The examples of docs/protocol.md's EVM section, run as written (the pair's
    address put in for :pair), checked against the node."""
    import re
    node, info = probe
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text[text.index("### Examples (run by"):text.index("## Derived tables")]
    examples = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(examples) == 4
    c = esrv.client()
    head = esrv.stored_head()
    transfers = query(c, examples[0]).to_pylist()
    n_logs = sum(1 for b in range(head + 1) for rc in rpc(node.url, "eth_getBlockReceipts", [hex(b)])
                 for log in rc["logs"] if log["topics"][0] ==
                 "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
    assert len(transfers) == n_logs  # ERC-721 transfers too: they do not fit, decoded is NULL
    assert sum(1 for r in transfers if r["amount"] is not None) > 20
    calls = query(c, examples[1]).to_pylist()
    assert len(calls) >= 3 and all(r["recipient"].startswith("0x") for r in calls)
    token = query(c, examples[2]).to_pylist()[0]
    raw = int(rpc(node.url, "eth_call", [{"to": TOKEN, "data": "0x70a08231" + DEV1[2:].rjust(64, "0")},
                                         "0x3"]), 16)
    whole, frac = divmod(raw, 10**18)
    want = f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
    assert token == {"name": "Sluice Demo Token", "decimals": 18, "balance_at_block_3": want}
    pair = query(c, examples[3].replace(":pair", f"evm_encode_hex('{info['address']}')")).to_pylist()[0]
    ts2 = int(rpc(node.url, "eth_getBlockByNumber", [hex(info["reserves2"]), False])["timestamp"], 16)
    assert pair == {"reserves": {"c0": 1, "c1": 2, "c2": ts2}, "why": "execution reverted: no entry"}


def test_nested_results_stream_as_batch(probe, esrv):
    """Structs holding lists, structs and exact wide integers go through the
    microbatches exactly as the batch answer has them."""
    head = esrv.stored_head()
    sql = (f"SELECT block_num, log_index, evm_decode_log(topic1, topic2, topic3, data, '{POSTED}') AS p, "
           f"evm_decode_log(topic1, topic2, topic3, data, '{EXTREMES}') AS x FROM eth_rpc.logs "
           f"WHERE topic0 IN (evm_topic('{POSTED}'), evm_topic('{EXTREMES}'))")
    batch = query(esrv.client(), sql + f" AND block_num <= {head} ORDER BY block_num, log_index")
    assert batch.num_rows == 2
    assert stream_rows(esrv, sql, head) == batch.to_pylist()


def test_reference_approve_example(probe, esrv):
    """The reference's evm_encode_params example with the uint256 maximum written as
    a literal (DuckDB reads it as an inexact DOUBLE; sluice passes its text): the
    calldata is the hand-encoded one, and the token's approve accepts it."""
    row = one(esrv, f"""
        SELECT evm_encode_params(evm_encode_hex('{DEV1}'),
                 115792089237316195423570985008687907853269984665640564039457584007913129639935,
                 'approve(address spender, uint256 amount)') AS calldata""")
    assert row["calldata"] == bytes.fromhex("095ea7b3" + DEV1[2:].rjust(64, "0") + "f" * 64)
    ok = one(esrv, f"""
        SELECT evm_decode_type(eth_call(evm_encode_hex('{DEV0}'), evm_encode_hex('{TOKEN}'),
                 evm_encode_params(evm_encode_hex('{DEV1}'),
                   115792089237316195423570985008687907853269984665640564039457584007913129639935,
                   'approve(address spender, uint256 amount)'), 'latest').data, 'bool') AS ok""")
    assert ok == {"ok": True}
