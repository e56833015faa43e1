"""Every example of docs/http.md, run as written against a real server following a
real anvil node: the ```sh blocks with curl (ports 1603/1610 pointed at the test
server's) and the ```python blocks marked `# test: run` (ADBC against 1602).
Each example must succeed and print; the outputs are checked against the server's
own answers where the doc states them."""
from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess

from sluice_harness import ROOT, query

DOC = ROOT / "docs" / "http.md"


def blocks(lang: str) -> list:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.S)


def test_curl_examples(server):
    examples = blocks("sh")
    assert len(examples) >= 5
    outputs = []
    for example in examples:
        script = (example.replace("localhost:1603", f"127.0.0.1:{server.jsonl_port}")
                  .replace("localhost:1610", f"127.0.0.1:{server.admin_port}"))
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True,
                              text=True, timeout=120)
        # `head` closing the pipe early is SIGPIPE for curl (exit 23): expected.
        assert proc.returncode in (0, 23), f"{script}\n{proc.stderr}"
        assert proc.stdout.strip(), script
        outputs.append(proc.stdout)
    # The first example: the three newest blocks, as Flight answers them.
    rows = [json.loads(line) for line in outputs[0].splitlines()]
    want = query(server.client(), "SELECT block_num FROM eth_rpc.blocks ORDER BY block_num DESC "
                                  "LIMIT 3").column(0).to_pylist()
    assert [r["block_num"] for r in rows] == want
    # gzip: as many lines as logs.
    n_logs = query(server.client(), "SELECT count(*) AS n FROM eth_rpc.logs").column(0)[0].as_py()
    assert outputs[1].strip().splitlines()[-1].strip() == str(n_logs)
    assert "STREAMING_NOT_SUPPORTED" in outputs[3] and "read_csv is not allowed" in outputs[3]


def test_adbc_examples(server):
    examples = [b for b in blocks("python") if b.startswith("# test: run")]
    assert len(examples) >= 2
    printed = io.StringIO()
    for i, code in enumerate(examples):
        code = code.replace("grpc://localhost:1602", server.location)
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"docs/http.md python example {i + 1}", "exec"), {})  # noqa: S102
    text = printed.getvalue()
    n_tx = query(server.client(), "SELECT count(*) AS n FROM eth_rpc.transactions").column(0)[0].as_py()
    assert f"{n_tx} transactions" in text
    assert "memory.eth_rpc.blocks (TABLE)" in text
    assert text.rstrip().endswith("sluice")
