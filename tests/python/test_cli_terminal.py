"""`sluice query` on a terminal, driven through a pseudo-terminal (Python's pty
module): the default table output, the progress line on stderr for a long result
(and none when stderr is not a terminal), binary formats refused on a terminal,
Ctrl-C typed at the terminal. The truth is the same query through pyarrow."""
from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import subprocess
import termios
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice_harness import SLUICE, query

# A result long enough to take seconds when its reader is slow (see slow_reader).
LONG_SQL = "SELECT i, i * 2 AS twice FROM range(3000000) t(i)"
PROGRESS = re.compile(rb"(\d+) rows, ([\d.]+ [KMGT]?i?B), (\d+) rows/s\x1b\[K")


class Terminal:
    """A pseudo-terminal; `fd` is the slave end given to the child, `read_all`
    collects what the child writes to it."""

    def __init__(self, cols: int = 200, rows: int = 50):
        self.master, self.slave = os.openpty()
        import struct
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.output = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)

    def start(self) -> None:
        # The slave stays open here too until close(): when the last slave fd
        # closes, Linux may drop what the master has not read yet (a child that
        # wrote and exited before the first read lost its output under load).
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                r, _, _ = select.select([self.master], [], [], 0.1)
                if not r:
                    if self._stop.is_set():
                        return  # the child has exited and everything is read
                    continue
                data = os.read(self.master, 65536)
            except OSError as e:  # EIO: the child closed its end
                if e.errno == errno.EIO:
                    return
                raise
            if not data:
                return
            self.output += data

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self, timeout: float = 10) -> bytes:
        """Call once the child has exited: read what is left, then close both ends."""
        self._stop.set()
        self._thread.join(timeout)
        os.close(self.slave)
        os.close(self.master)
        return bytes(self.output).replace(b"\r\n", b"\n")


def controlling_tty(slave: int):
    """preexec_fn: a new session whose controlling terminal is `slave`, so that
    Ctrl-C typed at the terminal reaches the child as SIGINT."""
    def setup() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    return setup


def run(args, stdout, stderr, tty: Terminal | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(SLUICE), "query", *args], stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr,
                            preexec_fn=controlling_tty(tty.slave) if tty else None)


def slow_reader(pipe, chunk: int = 256 * 1024, pause: float = 0.05) -> bytes:
    """Read a pipe slowly, so that the CLI (blocked on writing) takes seconds."""
    out = bytearray()
    while True:
        data = pipe.read(chunk)
        if not data:
            return bytes(out)
        out += data
        time.sleep(pause)


@pytest.fixture(scope="module")
def long_rows(server):
    return query(server.client(), LONG_SQL).num_rows


def test_default_output_on_a_terminal_is_a_table(server):
    sql = "SELECT block_num, gas_used, hash FROM eth_rpc.blocks ORDER BY block_num LIMIT 5"
    truth = query(server.client(), sql).to_pylist()
    tty = Terminal()
    p = run(["-s", server.location, sql], stdout=tty.slave, stderr=subprocess.PIPE, tty=tty)
    tty.start()
    _, err = p.communicate(timeout=60)
    out = tty.close().decode()
    assert p.returncode == 0, err
    lines = out.strip("\n").split("\n")
    assert [c.strip() for c in lines[0].split("|")] == ["block_num", "gas_used", "hash"]
    assert set(lines[1].replace("+", "")) == {"-"}
    cells = [[c.strip() for c in line.split("|")] for line in lines[2:-1]]
    assert cells == [[str(r["block_num"]), str(r["gas_used"]), "0x" + r["hash"].hex()]
                     for r in truth]
    assert lines[-1] == "(5 rows)"


def test_progress_line_on_a_terminal_for_a_long_result(server, long_rows):
    tty = Terminal()
    p = run(["-s", server.location, "-f", "csv", LONG_SQL], stdout=subprocess.PIPE,
            stderr=tty.slave, tty=tty)
    tty.start()
    out = slow_reader(p.stdout)
    assert p.wait(60) == 0
    err = tty.close()
    # The CSV on stdout is whole and has no progress in it.
    assert out.count(b"\n") == long_rows + 1
    assert b"rows/s" not in out
    shown = PROGRESS.findall(err)
    assert shown, f"no progress line on the terminal: {err[:500]!r}"
    counts = [int(rows) for rows, _, _ in shown]
    assert counts == sorted(counts) and 0 < counts[-1] <= long_rows
    # Each update rewrites the line (\r) and the last one is erased at the end.
    assert err.startswith(b"\r") and err.endswith(b"\r\x1b[K")
    assert b"\n" not in err


def test_no_progress_when_stderr_is_not_a_terminal(server, long_rows):
    p = run(["-s", server.location, "-f", "csv", LONG_SQL], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
    errs = []
    t = threading.Thread(target=lambda: errs.append(p.stderr.read()), daemon=True)
    t.start()
    out = slow_reader(p.stdout)
    assert p.wait(60) == 0
    t.join(10)
    assert out.count(b"\n") == long_rows + 1
    assert errs == [b""]


@pytest.mark.parametrize("fmt", ["arrow", "arrows", "parquet"])
def test_binary_formats_refuse_a_terminal(server, fmt):
    tty = Terminal()
    p = run(["-s", server.location, "-f", fmt, "SELECT * FROM eth_rpc.blocks"],
            stdout=tty.slave, stderr=subprocess.PIPE, tty=tty)
    tty.start()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1
    assert f"refusing to write binary {fmt} to a terminal".encode() in err
    assert tty.close() == b""  # nothing written to the terminal


def test_binary_format_to_a_file_from_a_terminal(server, tmp_path):
    sql = "SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num"
    path = tmp_path / "blocks.parquet"
    tty = Terminal()
    p = run(["-s", server.location, "-o", str(path), sql], stdout=tty.slave,
            stderr=tty.slave, tty=tty)
    tty.start()
    assert p.wait(60) == 0
    assert tty.close() == b""
    assert pq.read_table(path).equals(query(server.client(), sql))


def test_ctrl_c_at_the_terminal_stops_the_query(server):
    tty = Terminal()
    p = run(["-s", server.location, "-f", "csv", "SELECT * FROM range(10000000000) t(i)"],
            stdout=tty.slave, stderr=tty.slave, tty=tty)
    tty.start()
    deadline = time.monotonic() + 60
    while len(tty.output) < 100_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(tty.output) >= 100_000, "no rows on the terminal"
    tty.type(b"\x03")  # Ctrl-C: the terminal sends SIGINT to the query
    assert p.wait(60) == 130
    tty.close()
    # The server is still up and answers.
    assert query(server.client(), "SELECT 1 AS one").to_pylist() == [{"one": 1}]


# ---- docs/cli.md: its console examples, run on a terminal ------------------------------


def doc_examples() -> list:
    """(command, expected output lines) of each `$ ` line in the doc's console blocks."""
    text = (SLUICE.parent.parent / "docs" / "cli.md").read_text()
    out = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for part in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, *expected = part.rstrip("\n").split("\n")
            out.append((command, expected))
    return out


def test_cli_doc_examples(server, tmp_path):
    import shlex

    from sluice_harness import PYTHON
    examples = doc_examples()
    assert len(examples) >= 6
    for command, expected in examples:
        args = shlex.split(command)
        if args[0] == "build/sluice":
            assert args[1] == "query"
            args = [str(SLUICE), "query", "-s", server.location, *args[2:]]
        elif args[0] == ".venv/bin/python":
            args[0] = str(PYTHON)
        else:
            raise AssertionError(f"docs/cli.md runs {args[0]}")
        tty = Terminal()
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=tty.slave, stderr=tty.slave,
                             cwd=tmp_path, preexec_fn=controlling_tty(tty.slave))
        tty.start()
        p.wait(60)
        got = tty.close().decode().rstrip("\n").split("\n") if tty.output else []
        assert [line.rstrip() for line in got] == expected, f"docs/cli.md: $ {command}"
        assert p.returncode == (1 if expected and expected[0].startswith("error:") else 0)


def test_cli_doc_shell_examples_run(server, tmp_path):
    """The doc's `sh` blocks (chain data, redirections) run and succeed; the
    streaming one never ends by itself and is test_cli.py's."""
    text = (SLUICE.parent.parent / "docs" / "cli.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("build/sluice query") and "--stream" not in line:
                commands.append(line)
    assert len(commands) >= 3
    for command in commands:
        command = command.replace("build/sluice query",
                                  f"{SLUICE} query -s {server.location}", 1)
        p = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True,
                           timeout=120)
        assert p.returncode == 0, f"{command}: {p.stderr!r}"
    assert (tmp_path / "logs.csv").stat().st_size > 0
    assert (tmp_path / "transfers.arrow").stat().st_size > 0
