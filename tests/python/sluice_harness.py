"""Real parts for the integration tests: an anvil node, the demo traffic, a
sluice server, and JSON-RPC calls to the node (the independent truth).

Nothing here is mocked: the node is anvil, the server is build/sluice, the client
is pyarrow.flight.
"""
from __future__ import annotations

import contextlib
import json
import os
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
SLUICE = ROOT / "build" / "sluice"
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
                 genesis_timestamp: Optional[int] = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id",
                str(chain_id)]
        args += ["--block-time", str(block_time)] if block_time else ["--no-mining"]
        if genesis_timestamp is not None:  # two anvils started in one second share a genesis
            args += ["--timestamp", str(genesis_timestamp)]
        self.log = open(tmp / f"anvil-{self.port}.log", "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
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


class Server:
    """`sluice serve` on a free port, extracting from `rpc_url` into `data_dir`."""

    def __init__(self, data_dir: Path, rpc_url: str, *extra: str, wait_ready: bool = True,
                 cwd: Optional[Path] = None):
        self.data_dir = data_dir
        self.args = [str(SLUICE), "serve", "--rpc-url", rpc_url, "--data-dir", str(data_dir),
                     "--flight-addr", "127.0.0.1:0", "--log-level", os.environ.get("SLUICE_TEST_LOG_LEVEL", "warn"), *extra]
        self.stderr_path = data_dir.parent / f"sluice-{data_dir.name}-{time.time_ns()}.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, cwd=cwd)
        self.port: Optional[int] = None
        if wait_ready:
            self.wait_listening()

    def wait_listening(self, timeout: float = 60) -> None:
        line = self.proc.stdout.readline()
        if not line.startswith("sluice: flight listening on grpc://"):
            self.proc.wait(10)
            raise RuntimeError(f"server did not start: {line!r}\n{self.log_text()}")
        self.port = int(line.strip().rsplit(":", 1)[1])

    @property
    def location(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def client(self) -> flight.FlightClient:
        return flight.connect(self.location)

    def log_text(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text()

    def stored_head(self) -> int:
        t = query(self.client(), "SELECT max(block_num) AS m FROM eth_rpc.blocks")
        v = t.column("m")[0].as_py()
        return -1 if v is None else v

    def wait_head(self, number: int, timeout: float = 120) -> None:
        wait_for(lambda: self.stored_head() >= number, timeout, f"block {number} to be stored")

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
    """Run `sql` through GetFlightInfo + DoGet; return the whole answer as a pyarrow Table."""
    options = flight.FlightCallOptions(headers=headers or [])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    return client.do_get(info.endpoints[0].ticket, options).read_all()


def encode_command_statement_query(sql: str) -> bytes:
    """google.protobuf.Any{CommandStatementQuery{query=sql}}, encoded per the protobuf
    wire format (field 1 type_url, field 2 value; CommandStatementQuery field 1 query)."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    def field(num: int, data: bytes) -> bytes:
        return varint(num << 3 | 2) + varint(len(data)) + data

    inner = field(1, sql.encode())
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return field(1, url) + field(2, inner)


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
