"""A JSON-RPC proxy that injects faults between sluice and a real node: what a
node or a hosted provider does that a local dev node does not (tests/python/
test_faults.py, test_providers.py). Only the faults are made up; every answer
that is not a fault is the real node's."""
from __future__ import annotations

import http.client
import http.server
import json
import socket
import socketserver
import threading
import time
from typing import Optional

from sluice_harness import free_port


# ---------------------------------------------------------------------------

FAULTS = ("down", "slow", "http_503", "rpc_error", "malformed", "truncated", "reset",
          "rate_limit")


class FaultProxy:
    """An HTTP proxy on a free port forwarding JSON-RPC POSTs to `upstream`.

    `fault` says what it does with each request:
      None         forward it and relay the node's answer;
      "down"       nothing listens: the port is closed (connection refused), open
                   connections are closed;
      "slow"       forward it, but answer `slow_secs` later;
      "http_503"   answer HTTP 503 with a text body;
      "rpc_error"  answer HTTP 200 with a JSON-RPC error object per call;
      "malformed"  answer HTTP 200 with a body that is not JSON;
      "truncated"  answer HTTP 200 with the first half of the node's real answer;
      "reset"      close the connection without an answer;
      "rate_limit" answer HTTP 429 with `Retry-After: retry_after` (when not None)
                   and a JSON-RPC error 429 "Too Many Requests", as hosted
                   providers do.
    Besides the fault, what hosted providers do differently from a local node:
      `max_batch`  batches of more calls are refused with HTTP 413 (None: no limit);
      `refuse`     {method: error object}: calls of these methods are answered
                   with that error (the others of a batch are forwarded), e.g. a
                   node without eth_getBlockReceipts;
      `rewrite`    a function (calls, answers) -> answers applied to every
                   forwarded answer (a list of call objects, a list of answers).
    `requests` counts requests received, `faulted` those answered with a fault,
    `calls` the calls received by method.
    """

    def __init__(self, upstream: str, slow_secs: float = 1.5):
        self.upstream = upstream.removeprefix("http://")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.slow_secs = slow_secs
        self.retry_after: Optional[str] = "1"
        self.max_batch: Optional[int] = None
        self.refuse: dict = {}
        self.rewrite = None
        self.requests = 0
        self.faulted = 0
        self.calls: dict = {}
        self._fault: Optional[str] = None
        self._lock = threading.Lock()
        self._server: Optional[socketserver.ThreadingTCPServer] = None
        self._open: set = set()
        self._listen()

    @property
    def fault(self) -> Optional[str]:
        return self._fault

    def set_fault(self, fault: Optional[str]) -> None:
        assert fault is None or fault in FAULTS, fault
        if fault == "down":
            self._fault = fault
            self._close()
        else:
            was_down = self._fault == "down"
            self._fault = fault
            if was_down:
                self._listen()

    def _listen(self) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as curl expects

            def setup(self):
                super().setup()
                with proxy._lock:
                    proxy._open.add(self.connection)

            def finish(self):
                with proxy._lock:
                    proxy._open.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                fault = proxy._fault
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                calls = parsed if isinstance(parsed, list) else [parsed]
                with proxy._lock:
                    proxy.requests += 1
                    if fault is not None:
                        proxy.faulted += 1
                    for c in calls:
                        if isinstance(c, dict):
                            m = c.get("method")
                            proxy.calls[m] = proxy.calls.get(m, 0) + 1
                if fault == "rate_limit":
                    err = {"jsonrpc": "2.0", "id": calls[0].get("id") if calls[0] else None,
                           "error": {"code": 429, "message": "Too Many Requests"}}
                    headers = {"Retry-After": proxy.retry_after} if proxy.retry_after else {}
                    return self._answer(429, json.dumps(err).encode(), headers=headers)
                if (proxy.max_batch is not None and isinstance(parsed, list)
                        and len(parsed) > proxy.max_batch):
                    return self._answer(413, b"Request Entity Too Large", "text/plain")
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "http_503":
                    return self._answer(503, b"node overloaded, try later", "text/plain")
                if fault == "malformed":
                    return self._answer(200, b'{"jsonrpc":"2.0","id":1,"result":{"number":0x1,,}')
                if fault == "rpc_error":
                    calls = json.loads(body)
                    errs = [{"jsonrpc": "2.0", "id": c.get("id"),
                             "error": {"code": -32603, "message": "injected: internal error"}}
                            for c in (calls if isinstance(calls, list) else [calls])]
                    out = errs if isinstance(calls, list) else errs[0]
                    return self._answer(200, json.dumps(out).encode())
                status, answer = proxy._forward_calls(parsed, body)
                if fault == "slow":
                    time.sleep(proxy.slow_secs)
                if fault == "truncated":
                    answer = answer[: len(answer) // 2]
                self._answer(status, answer)

            def _answer(self, status: int, body: bytes, ctype: str = "application/json",
                        headers: Optional[dict] = None):
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the server gave up on this request (or "down" cut it)
                    self.close_connection = True

        class TCPServer(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = TCPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def _forward_calls(self, parsed, body: bytes) -> tuple:
        """Forward a request, answering the calls of `refuse` itself and passing the
        answers through `rewrite`."""
        if parsed is None or (not self.refuse and self.rewrite is None):
            return self._forward(body)
        calls = parsed if isinstance(parsed, list) else [parsed]
        own = {i: {"jsonrpc": "2.0", "id": c.get("id"), "error": self.refuse[c.get("method")]}
               for i, c in enumerate(calls) if c.get("method") in self.refuse}
        rest = [c for i, c in enumerate(calls) if i not in own]
        answers: list = []
        status = 200
        if rest:
            status, raw = self._forward(json.dumps(rest).encode())
            if status != 200:
                return status, raw
            answers = json.loads(raw)
            by_id = {a.get("id"): a for a in answers}
            answers = [by_id.get(c.get("id")) for c in rest]
            if self.rewrite is not None:
                answers = self.rewrite(rest, answers)
        it = iter(answers)
        out = [own[i] if i in own else next(it) for i in range(len(calls))]
        return status, json.dumps(out if isinstance(parsed, list) else out[0]).encode()

    def _forward(self, body: bytes) -> tuple:
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            conn.request("POST", "/", body, {"content-type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._lock:
            conns = list(self._open)
        for c in conns:  # keep-alive connections die with the "node"
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._close()


