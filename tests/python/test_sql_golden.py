"""Runs the plain-text SQL cases of tests/sql/*.test through the Flight server."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import ROOT, query

CASES = []
for path in sorted((ROOT / "tests" / "sql").glob("*.test")):
    text = path.read_text()
    lines = [l for l in text.splitlines() if not l.startswith("#")]
    for block in "\n".join(lines).split("\n\n"):
        block = block.strip("\n")
        if not block.strip():
            continue
        head, _, rest = block.partition("\n")
        sql, _, expected = rest.partition("\n----")
        CASES.append(pytest.param(head.strip(), sql.strip(), expected.strip("\n"),
                                  id=f"{path.stem}:{sql.strip().splitlines()[0][:60]}"))


def render(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


@pytest.mark.parametrize("kind,sql,expected", CASES)
def test_golden(server, kind, sql, expected):
    client = server.client()
    if kind == "query error":
        with pytest.raises(pa.ArrowInvalid) as e:
            query(client, sql)
        assert expected.lower() in str(e.value).lower()
    else:
        assert kind == "query", kind
        t = query(client, sql)
        got = "\n".join("\t".join(render(v) for v in row.values()) for row in t.to_pylist())
        assert got == expected
    # No case may have left anything behind.
    for p in ["/tmp/sluice_sandbox_escape.csv", "/tmp/sluice_sandbox_escape.duckdb",
              "/tmp/sluice_sandbox_export"]:
        assert not Path(p).exists(), p
