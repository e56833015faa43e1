"""Real parts for the integration tests: anvil and geth nodes, the demo traffic, a
sluice server (one dataset, or several from a [[datasets]] config), and JSON-RPC
calls to the nodes (the independent truth).

Nothing here is mocked: the nodes are anvil and geth, the server is build/sluice,
the client is pyarrow.flight.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

import pyarrow.flight as flight

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / ".deps" / "anvil"
GETH = ROOT / ".deps" / "geth"  # scripts/bootstrap.sh: go install …/cmd/geth@v1.17.10
# SLUICE_BIN: another build of the server, e.g. build-asan/sluice (make test-asan).
SLUICE = Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "sluice"))
PYTHON = ROOT / ".venv" / "bin" / "python"
TRAFFIC = ROOT / "demo" / "traffic.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc(url: str, method: str, params: list | None = None, timeout: float = 30) -> Any:
    """One JSON-RPC call; raises RuntimeError on a JSON-RPC error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


class Anvil:
    """An anvil node on a free port. `block_time` None: no mining (tests mine)."""

    def __init__(self, tmp: Path, block_time: Optional[float] = None, chain_id: int = 31337,
                 genesis_timestamp: Optional[int] = None, extra: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id",
                str(chain_id)]
        args += ["--block-time", str(block_time)] if block_time else ["--no-mining"]
        if genesis_timestamp is not None:  # two anvils started in one second share a genesis
            args += ["--timestamp", str(genesis_timestamp)]
        args += list(extra)  # e.g. ("--hardfork", "berlin")
        self.log = open(tmp / f"anvil-{self.port}.log", "w")
        # anvil writes old states under $HOME/.foundry/anvil/tmp (gigabytes for a
        # long chain) and never deletes them, even on SIGTERM: a home of its own,
        # deleted by stop().
        self.home = tmp / f"anvil-{self.port}-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, HOME=str(self.home)))
        wait_for(lambda: rpc(self.url, "eth_chainId", timeout=1), 30, "anvil to start")

    def head(self) -> int:
        return int(rpc(self.url, "eth_blockNumber"), 16)

    def mine(self, n: int = 1) -> None:
        rpc(self.url, "anvil_mine", [hex(n)])

    def traffic(self, blocks: int, txs_per_block: int = 6, seed: int = 1) -> None:
        """Mine `blocks` blocks of demo traffic (ETH transfers, ERC-20, ERC-721, failures)."""
        subprocess.run([str(PYTHON), str(TRAFFIC), "--rpc-url", self.url, "--mine", "--blocks",
                        str(blocks), "--interval", "0", "--txs-per-block", str(txs_per_block),
                        "--seed", str(seed)], check=True, stderr=subprocess.DEVNULL,
                       timeout=600)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.home, ignore_errors=True)


class Geth:
    """`geth --dev` on free ports: a one-node post-merge chain (chain id 1337) whose
    simulated beacon seals a block every `period` seconds (0: as soon as a
    transaction arrives), with one funded, unlocked dev account. The debug and dev
    namespaces are on (debug_setHead makes reorgs). `extra`: more geth flags, e.g.
    ("--rpc.batch-request-limit", "10")."""

    def __init__(self, tmp: Path, period: int = 1, extra: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.datadir = tmp / f"geth-{self.port}"
        args = [str(GETH), "--dev", "--dev.period", str(period), "--datadir", str(self.datadir),
                "--http", "--http.addr", "127.0.0.1", "--http.port", str(self.port),
                "--http.api", "eth,net,web3,debug,dev,txpool", "--ipcdisable", "--nodiscover",
                "--maxpeers", "0", "--port", "0", "--authrpc.port", "0", "--verbosity", "2",
                *extra]
        self.log = open(tmp / f"geth-{self.port}.log", "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: rpc(self.url, "eth_chainId", timeout=1), 60, "geth to start")
        self.account = rpc(self.url, "eth_accounts")[0]

    def head(self) -> int:
        return int(rpc(self.url, "eth_blockNumber"), 16)

    def wait_head(self, number: int, timeout: float = 60) -> int:
        return wait_for(lambda: self.head() >= number and self.head(), timeout,
                        f"geth to reach block {number}", interval=0.1)

    def traffic(self, rounds: int, txs_per_block: int = 4, seed: int = 1) -> None:
        """`rounds` rounds of demo traffic from the dev account (ETH transfers of
        three transaction types, ERC-20, ERC-721, failures, creations), each waiting
        for its receipts: the node mines them on its own."""
        subprocess.run([str(PYTHON), str(TRAFFIC), "--rpc-url", self.url, "--blocks",
                        str(rounds), "--interval", "0", "--txs-per-block", str(txs_per_block),
                        "--seed", str(seed)], check=True, stderr=subprocess.DEVNULL,
                       timeout=600)

    def set_head(self, number: int) -> None:
        """debug_setHead: rewind the chain to `number`; the next blocks sealed build
        on it, with other hashes (a reorg)."""
        rpc(self.url, "debug_setHead", [hex(number)])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def datasets_config(path: Path, datasets: list, extra: str = "") -> Path:
    """Write a config file listing `datasets`, each a dict of dataset settings with
    `name` (e.g. {"name": "eth_rpc", "network": "anvil", "rpc_url": url}); `extra`:
    more TOML at the top. Returns `path`."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)
    text = extra + "\n"
    for d in datasets:
        text += "\n[[datasets]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in d.items())
    path.write_text(text)
    return path


class Server:
    """`sluice serve` on free ports (Flight, JSON Lines, admin API), extracting from
    `rpc_url` into `data_dir`; with `rpc_url` None, the datasets come from the
    config file given in `extra` (`--config FILE`, see datasets_config)."""

    def __init__(self, data_dir: Path, rpc_url: Optional[str], *extra: str,
                 wait_ready: bool = True, cwd: Optional[Path] = None, data_dir_flag: bool = True):
        """`data_dir_flag` False: no --data-dir (the default, `data`, or the config
        file's); `data_dir` then only says where the log goes (its parent)."""
        self.data_dir = data_dir
        url_args = ["--rpc-url", rpc_url] if rpc_url is not None else []
        # Free ports by default; an address in `extra` (a fixed port) replaces it.
        addrs = [a for flag in ("--flight-addr", "--jsonl-addr", "--admin-api-addr")
                 if flag not in extra for a in (flag, "127.0.0.1:0")]
        dirs = ["--data-dir", str(data_dir)] if data_dir_flag else []
        self.args = [str(SLUICE), "serve", *url_args, *dirs, *addrs, "--log-level",
                     os.environ.get("SLUICE_TEST_LOG_LEVEL", "warn"), *extra]
        self.stderr_path = data_dir.parent / f"sluice-{data_dir.name}-{time.time_ns()}.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, cwd=cwd)
        self.port: Optional[int] = None
        self.jsonl_port: Optional[int] = None
        self.admin_port: Optional[int] = None
        if wait_ready:
            self.wait_listening()

    # One line per endpoint, in this order; the scheme says whether it is TLS
    # (grpc+tls://, https://).
    LISTENING = re.compile(r"sluice: (flight|jsonl|admin) listening on ([a-z+]+)://(.+):(\d+)")
    host = "127.0.0.1"  # TLS tests use "localhost", the name in their certificate

    def wait_listening(self, timeout: float = 60) -> None:
        self.schemes = {}
        for attr, name in (("port", "flight"), ("jsonl_port", "jsonl"), ("admin_port", "admin")):
            line = self.proc.stdout.readline()
            m = self.LISTENING.fullmatch(line.strip())
            if not m or m.group(1) != name:
                if self.proc.poll() is None and name == "flight":
                    self.proc.wait(10)
                raise RuntimeError(f"server did not start ({name}): {line!r}\n{self.log_text()}")
            setattr(self, attr, int(m.group(4)))
            self.schemes[name] = m.group(2)

    @property
    def location(self) -> str:
        return f"{self.schemes['flight']}://{self.host}:{self.port}"

    @property
    def jsonl_url(self) -> str:
        return f"{self.schemes['jsonl']}://{self.host}:{self.jsonl_port}"

    @property
    def admin_url(self) -> str:
        return f"{self.schemes['admin']}://{self.host}:{self.admin_port}"

    def client(self) -> flight.FlightClient:
        return flight.connect(self.location)

    def log_text(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text()

    def stored_head(self, dataset: str = "eth_rpc") -> int:
        t = query(self.client(), f"SELECT max(block_num) AS m FROM {dataset}.blocks")
        v = t.column("m")[0].as_py()
        return -1 if v is None else v

    def wait_head(self, number: int, timeout: float = 120, dataset: str = "eth_rpc") -> None:
        wait_for(lambda: self.stored_head(dataset) >= number, timeout,
                 f"block {number} of {dataset} to be stored")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.stderr.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.stderr.closed:
            self.stderr.close()
        return self.proc.returncode


def query(client: flight.FlightClient, sql: str, headers=None):
    """Run `sql` through GetFlightInfo + DoGet; return the whole answer as a pyarrow Table
    (every endpoint's rows, in endpoint order, all read from this client's server)."""
    import pyarrow as pa
    options = flight.FlightCallOptions(headers=headers or [])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    parts = [client.do_get(e.ticket, options).read_all() for e in info.endpoints]
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def pb_field(num: int, data: bytes) -> bytes:
    """A length-delimited protobuf field: varint(num << 3 | 2), varint(len), bytes."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    return varint(num << 3 | 2) + varint(len(data)) + data


def flight_sql_any(name: str, value: bytes = b"") -> bytes:
    """google.protobuf.Any{type_url: ...arrow.flight.protocol.sql.<name>, value}."""
    return (pb_field(1, b"type.googleapis.com/arrow.flight.protocol.sql." + name.encode())
            + pb_field(2, value))


def encode_command_statement_query(sql: str) -> bytes:
    """google.protobuf.Any{CommandStatementQuery{query=sql}}, encoded per the protobuf
    wire format (field 1 type_url, field 2 value; CommandStatementQuery field 1 query)."""
    return flight_sql_any("CommandStatementQuery", pb_field(1, sql.encode()))


class StreamReader:
    """Reads a streaming query's messages in a background thread, so a test can
    mine blocks meanwhile. Each message is (kind, metadata dict, RecordBatch)."""

    def __init__(self, location: str, sql: str, headers=None, cursor: Optional[dict] = None):
        import queue
        import threading

        self.client = flight.connect(location)
        hdrs = list(headers or [])
        if cursor is not None:
            hdrs.append((b"amp-resume", json.dumps(cursor).encode()))
        options = flight.FlightCallOptions(headers=hdrs)
        info = self.client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()),
                                           options)
        self.reader = self.client.do_get(info.endpoints[0].ticket, options)
        self.messages: "queue.Queue" = queue.Queue()
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in self.reader:
                meta = json.loads(chunk.app_metadata.to_pybytes())
                self.messages.put((meta.get("kind"), meta, chunk.data))
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.error = e
        self.messages.put(None)

    def next(self, timeout: float = 30):
        import queue
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no stream message within timeout") from None
        if m is None:
            raise RuntimeError(f"stream ended: {self.error!r}")
        return m

    def until_block(self, number: int, timeout: float = 60):
        """Messages until the MicrobatchEnd whose range ends at or after `number`."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.1, deadline - time.monotonic()))
            out.append(m)
            if m[0] == "microbatch_end" and m[1]["range"]["end"] >= number:
                return out

    def close(self) -> None:
        self.reader.cancel()
        self.client.close()


# ---------------------------------------------------------------------------
# Reorg helpers (tests/python/test_reorgs.py, bench/reorg_latency.py)
# ---------------------------------------------------------------------------

def rpc_batch(url: str, calls: list, timeout: float = 60) -> list:
    """A JSON-RPC batch of (method, params) calls; answers in call order."""
    if not calls:
        return []
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                       for i, (m, p) in enumerate(calls)])
    req = urllib.request.Request(url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answers = sorted(json.loads(resp.read()), key=lambda a: a["id"])
    for a, (m, _) in zip(answers, calls):
        if "error" in a:
            raise RuntimeError(f"{m}: {a['error']}")
    return [a["result"] for a in answers]


def node_chain(url: str, lo: int = 0, hi: Optional[int] = None) -> dict:
    """The node's blocks lo..hi (default: its head) as {number: {hash, parent, txs, logs}}
    with txs = [tx hash, ...] and logs = [(log index, tx hash), ...] in chain order."""
    if hi is None:
        hi = int(rpc(url, "eth_blockNumber"), 16)
    out = {}
    for start in range(lo, hi + 1, 100):
        nums = range(start, min(hi, start + 99) + 1)
        answers = rpc_batch(url, [c for n in nums for c in (
            ("eth_getBlockByNumber", [hex(n), False]), ("eth_getBlockReceipts", [hex(n)]))])
        for i, n in enumerate(nums):
            blk, receipts = answers[2 * i], answers[2 * i + 1]
            out[n] = {"hash": blk["hash"], "parent": blk["parentHash"], "txs": blk["transactions"],
                      "logs": [(int(log["logIndex"], 16), log["transactionHash"])
                               for rc in receipts for log in rc["logs"]]}
    return out


def store_chain(srv: "Server", dataset: str = "eth_rpc") -> dict:
    """The server's stored blocks in the form of node_chain, read with batch queries;
    each transaction and log row must name its block's hash."""
    c = srv.client()
    out = {}
    for r in query(c, f"SELECT block_num, hash, parent_hash FROM {dataset}.blocks").to_pylist():
        assert r["block_num"] not in out, f"block {r['block_num']} stored twice"
        out[r["block_num"]] = {"hash": "0x" + r["hash"].hex(),
                               "parent": "0x" + r["parent_hash"].hex(), "txs": [], "logs": []}
    for r in query(c, f"SELECT block_num, block_hash, tx_hash FROM {dataset}.transactions "
                      "ORDER BY block_num, tx_index").to_pylist():
        b = out.get(r["block_num"])
        assert b is not None and b["hash"] == "0x" + r["block_hash"].hex(), f"stale tx row {r}"
        b["txs"].append("0x" + r["tx_hash"].hex())
    for r in query(c, f"SELECT block_num, block_hash, log_index, tx_hash FROM {dataset}.logs "
                      "ORDER BY block_num, log_index").to_pylist():
        b = out.get(r["block_num"])
        assert b is not None and b["hash"] == "0x" + r["block_hash"].hex(), f"stale log row {r}"
        b["logs"].append((r["log_index"], "0x" + r["tx_hash"].hex()))
    return out


def assert_store_matches_node(srv: "Server", node, behind: int = 0,
                              dataset: str = "eth_rpc") -> int:
    """Block by block, the store holds exactly the node's chain up to its head - `behind`:
    hash, parent hash, the transactions (hashes, in order) and the logs (index, tx
    hash). Returns the stored head."""
    store = store_chain(srv, dataset)
    head = node.head() - behind
    want = node_chain(node.url, 0, head)
    assert sorted(store) == list(range(head + 1)), \
        f"stored blocks {min(store, default=None)}..{max(store, default=None)}, node head {head}"
    for n in range(head + 1):
        assert store[n] == want[n], f"block {n}: stored {store[n]} != node {want[n]}"
    return head


def wait_store_matches_node(srv: "Server", node, timeout: float = 60,
                            behind: int = 0, dataset: str = "eth_rpc") -> int:
    """Wait until the stored head is the node's head - `behind` and the stored hashes are
    the node's. Returns the stored head."""
    def same():
        head = node.head() - behind
        got = {r["block_num"]: "0x" + r["hash"].hex() for r in query(
            srv.client(), f"SELECT block_num, hash FROM {dataset}.blocks").to_pylist()}
        if max(got, default=-1) != head:
            return False
        want = node_chain(node.url, max(0, head - 300), head)
        return all(got.get(n) == b["hash"] for n, b in want.items()) and head
    return wait_for(same, timeout, "the store to equal the node's chain", interval=0.1)


def moved_txs(url: str, depth: int) -> list:
    """anvil_reorg pairs that put the raw transactions of the top `depth` blocks back
    into the new fork, each in the new block offset // 2 (order kept, so nonces stay
    valid): the same transaction hashes, in other blocks."""
    head = int(rpc(url, "eth_blockNumber"), 16)
    pairs = []
    for off, n in enumerate(range(head - depth + 1, head + 1)):
        blk = rpc(url, "eth_getBlockByNumber", [hex(n), False])
        raws = rpc_batch(url, [("eth_getRawTransactionByHash", [h]) for h in blk["transactions"]])
        pairs += [[raw, off // 2] for raw in raws]
    return pairs


def anvil_reorg(url: str, depth: int, pairs: Optional[list] = None) -> float:
    """anvil_reorg: replace the top `depth` blocks (same height) by new ones holding
    `pairs` ([tx request or raw tx, block offset], ...). Returns time.monotonic() at
    the node's answer."""
    rpc(url, "anvil_reorg", [depth, pairs or []])
    return time.monotonic()


class ProtocolClient:
    """A streaming client that applies the reorg protocol (docs/reorgs.md): rows are
    kept per block; a microbatch counts only once its microbatch_end arrives; a
    microbatch flagged is_reorg first drops every row of block >= range.start; the
    cursor of each microbatch_end is saved and used by resume().

    `reorgs` lists (monotonic arrival time, range, prev_hash) of each is_reorg
    microbatch_start; `violations` lists protocol breaches seen (a non-reorg
    microbatch that does not continue the previous one, rows outside the range)."""

    def __init__(self, location: str, sql: str, cursor: Optional[dict] = None,
                 block_col: str = "block_num", network: str = "anvil"):
        import threading
        self.location, self.sql, self.block_col, self.network = location, sql, block_col, network
        self.rows: dict = {}
        self.cursor = cursor
        self.end: Optional[int] = cursor[network]["block_number"] if cursor else None
        self.cursors: list = []
        self.reorgs: list = []
        self.violations: list = []
        self.error: Optional[BaseException] = None
        self._cv = threading.Condition()
        self._thread = None
        self.resume()

    def resume(self, cursor: Optional[dict] = None, location: Optional[str] = None) -> None:
        """(Re)connect with the saved cursor (or `cursor`), keeping the rows held;
        to `location` when given (a restarted server listens on another port)."""
        import threading
        assert self._thread is None, "still connected"
        self.location = location or self.location
        if cursor is not None:
            self.cursor = cursor
            self.end = cursor[self.network]["block_number"]
        self.error = None
        self._client = flight.connect(self.location)
        hdrs = [(b"amp-stream", b"true")]
        if self.cursor is not None:
            hdrs.append((b"amp-resume", json.dumps(self.cursor).encode()))
        options = flight.FlightCallOptions(headers=hdrs)
        info = self._client.get_flight_info(
            flight.FlightDescriptor.for_command(self.sql.encode()), options)
        self._reader = self._client.do_get(info.endpoints[0].ticket, options)
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = None
        try:
            for chunk in self._reader:
                now = time.monotonic()
                meta = json.loads(chunk.app_metadata.to_pybytes())
                kind = meta.get("kind")
                if kind == "microbatch_start":
                    rng = meta["range"]
                    if pending is not None:
                        self.violations.append(f"microbatch_start {rng} inside {pending['range']}")
                    if meta["is_reorg"]:
                        self.reorgs.append((now, rng, meta["ranges"][0].get("prev_hash")))
                        if self.end is not None and rng["start"] > self.end:
                            self.violations.append(f"is_reorg at {rng} above held end {self.end}")
                    elif self.end is not None and rng["start"] != self.end + 1:
                        self.violations.append(f"microbatch {rng} after end {self.end} "
                                               "without is_reorg")
                    pending = {"range": rng, "reorg": meta["is_reorg"], "rows": []}
                elif kind == "data":
                    rows = chunk.data.to_pylist()
                    rng = pending["range"] if pending else None
                    for r in rows:
                        if rng is None or not rng["start"] <= r[self.block_col] <= rng["end"]:
                            self.violations.append(f"row of block {r[self.block_col]} in {rng}")
                            break
                    if pending is not None:
                        pending["rows"].extend(rows)
                elif kind == "microbatch_end":
                    if pending is None:
                        self.violations.append(f"microbatch_end {meta.get('range')} without start")
                        continue
                    with self._cv:
                        if pending["reorg"]:
                            for b in [b for b in self.rows if b >= pending["range"]["start"]]:
                                del self.rows[b]
                        for r in pending["rows"]:
                            self.rows.setdefault(r[self.block_col], []).append(r)
                        self.end = meta["range"]["end"]
                        self.cursor = meta["cursor"]
                        self.cursors.append(meta["cursor"])
                        self._cv.notify_all()
                    pending = None
        except BaseException as e:  # noqa: BLE001 - reported to the waiter
            if not self._closing:
                self.error = e
        with self._cv:
            self._cv.notify_all()

    def wait_until(self, block: int, timeout: float = 60) -> None:
        """Wait until every row up to `block` is committed (a microbatch_end at or past it)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self.end is None or self.end < block:
                if self.error is not None or not self._thread.is_alive():
                    raise RuntimeError(f"stream of {self.sql!r} ended: {self.error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"stream of {self.sql!r} did not reach block {block} "
                                       f"(at {self.end})")
                self._cv.wait(min(left, 0.2))

    def wait_reorgs(self, n: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.reorgs) < n:
            if self.error is not None:
                raise RuntimeError(f"stream of {self.sql!r} ended: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream of {self.sql!r} saw {len(self.reorgs)} is_reorg "
                                   f"microbatches, waited for {n}")
            time.sleep(0.005)

    def rows_upto(self, block: int) -> list:
        with self._cv:
            return [r for b in sorted(self.rows) if b <= block for r in self.rows[b]]

    def disconnect(self) -> None:
        if self._thread is None:
            return
        self._closing = True
        try:
            self._reader.cancel()
        except Exception:  # noqa: BLE001
            pass
        self._thread.join(10)
        self._client.close()
        self._thread = None

    close = disconnect
