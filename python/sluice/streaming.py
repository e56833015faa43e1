"""Streaming queries as typed events, resume cursors and cursor files.

The wire protocol (docs/protocol.md): every Flight message of a streaming query
is a record batch whose ``app_metadata`` JSON has a ``kind``; this module turns
each message into one event (two for a reorg: :class:`Reorg`, then the
:class:`MicrobatchStart`).
"""
from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Mapping, Optional, Union

import pyarrow as pa
import pyarrow.flight as flight

PathLike = Union[str, "os.PathLike[str]"]


# ---- events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockRange:
    """Blocks ``start..end``, both included (block numbers)."""

    start: int
    end: int

    def __contains__(self, block: object) -> bool:
        return isinstance(block, int) and self.start <= block <= self.end

    def __len__(self) -> int:
        return self.end - self.start + 1

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


@dataclass(frozen=True)
class MicrobatchStart:
    """A microbatch over ``range`` begins.

    ``is_reorg`` is True when the chain reorganized under blocks this stream had
    sent: ``range.start`` is then the first replaced block (every row you hold of
    a block ``>= range.start`` came from the abandoned fork) and a :class:`Reorg`
    event came just before. ``prev_hash`` is the ``0x`` hash of the parent of
    ``range.start`` (after a reorg: the common ancestor, the newest block whose
    rows you keep), None if the server did not send it. ``metadata`` is the
    message's whole ``app_metadata`` JSON.
    """

    range: BlockRange
    is_reorg: bool
    prev_hash: Optional[str]
    metadata: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, repr=False)
class Data:
    """Rows of the current microbatch (``batch``, a ``pyarrow.RecordBatch``), in
    block order; their blocks lie in ``range`` (the microbatch's range)."""

    batch: pa.RecordBatch
    range: BlockRange
    metadata: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_rows(self) -> int:
        return int(self.batch.num_rows)

    def __repr__(self) -> str:
        return f"Data(num_rows={self.batch.num_rows}, range={self.range!r})"


@dataclass(frozen=True)
class BlockComplete:
    """Every row of blocks ``start..end`` has been sent (within this microbatch)."""

    start: int
    end: int
    metadata: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class MicrobatchEnd:
    """The microbatch over ``range`` is complete: apply its rows now. ``cursor``
    (a JSON-able dict, e.g. ``{"anvil": {"block_number": 102, "number": 102,
    "hash": "0x…"}}``) resumes the stream right after ``range.end``; persist it
    together with the rows."""

    range: BlockRange
    cursor: Dict[str, Any]
    metadata: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Reorg:
    """The chain reorganized: drop every row you hold of a block
    ``>= invalidate_from`` (when applying the microbatch that follows, so that a
    cut-off stream loses nothing). Comes right before the :class:`MicrobatchStart`
    flagged ``is_reorg``, whose range starts at ``invalidate_from``."""

    invalidate_from: int
    metadata: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class KeepAlive:
    """Nothing to send for ``keep_alive_interval`` seconds (the server's setting,
    at least 30): the connection is alive."""

    metadata: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


Event = Union[MicrobatchStart, Data, BlockComplete, MicrobatchEnd, Reorg, KeepAlive]
"""Any event of a :class:`Stream`."""


def _range(meta: Mapping[str, Any]) -> BlockRange:
    rng = meta.get("range")
    if rng is None:  # several networks: no single `range`; take the first dataset's
        rng = meta["ranges"][0]["numbers"]
    return BlockRange(int(rng["start"]), int(rng["end"]))


def decode_message(meta: Dict[str, Any], batch: pa.RecordBatch) -> List[Event]:
    """The events of one Flight message (its ``app_metadata`` parsed, its batch).

    Kinds this version does not know give no event (forward compatibility)."""
    kind = meta.get("kind")
    if kind == "data":
        return [Data(batch, _range(meta), meta)]
    if kind == "block_complete":
        bc = meta["block_complete"]
        return [BlockComplete(int(bc["start"]), int(bc["end"]), meta)]
    if kind == "microbatch_start":
        rng = _range(meta)
        ranges = meta.get("ranges") or [{}]
        start = MicrobatchStart(rng, bool(meta.get("is_reorg")), ranges[0].get("prev_hash"), meta)
        return [Reorg(rng.start, meta), start] if start.is_reorg else [start]
    if kind == "microbatch_end":
        return [MicrobatchEnd(_range(meta), meta["cursor"], meta)]
    if kind == "keep_alive":
        return [KeepAlive(meta)]
    return []


# ---- cursor files ------------------------------------------------------------------------


def load_cursor(path: PathLike) -> Optional[Dict[str, Any]]:
    """The cursor saved in ``path`` by :func:`save_cursor`, or None if there is no
    such file.

    Raises:
        ValueError: the file does not hold a JSON object.
        OSError: it cannot be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        cursor = json.loads(text)
    except ValueError as e:
        raise ValueError(f"cursor file {os.fspath(path)!r} does not hold JSON: {e}") from None
    if not isinstance(cursor, dict):
        raise ValueError(f"cursor file {os.fspath(path)!r} does not hold a JSON object")
    return cursor


def save_cursor(path: PathLike, cursor: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``cursor`` (JSON) atomically and durably: write a
    temporary file beside it, fsync it, rename it over ``path``, fsync the
    directory. A crash at any point leaves either the old or the new cursor.

    Raises:
        OSError: the file or its directory cannot be written.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    data = json.dumps(cursor, separators=(",", ":"), sort_keys=True).encode()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    try:
        fd = os.open(target.parent if str(target.parent) else ".", os.O_RDONLY)
    except OSError:  # a platform that cannot open directories (Windows): rename is enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- the stream ------------------------------------------------------------------------------


class Stream(Iterator[Event]):
    """A running streaming query: iterate it for :data:`Event` s, forever (until
    the server ends the stream, an error, or :meth:`close`).

    Made by :meth:`sluice.Client.stream`. Per microbatch::

        [Reorg]  MicrobatchStart  (Data | BlockComplete)*  MicrobatchEnd

    with :class:`KeepAlive` between microbatches when the chain is idle. Hold the
    rows of a microbatch until its :class:`MicrobatchEnd`, then apply them (after
    a :class:`Reorg`, first drop your rows of blocks ``>= invalidate_from``); a
    microbatch cut off before its end is sent again on resume.

    ``cursor`` is the cursor of the last :class:`MicrobatchEnd` yielded (or the one
    the stream resumed from): persist it with your rows and pass it to
    :meth:`sluice.Client.stream` to continue after a disconnect.

    **Cursor file.** With ``cursor_file``, a microbatch counts as *delivered* once
    the consumer has handled its :class:`MicrobatchEnd` — that is, when it asks for
    the next event, or calls :meth:`close` / leaves a ``with`` block without an
    exception. Only then is the file replaced (atomically, fsynced: see
    :func:`save_cursor`) by that microbatch's cursor. After a crash, the stream
    resumes after the last delivered microbatch, so each microbatch is delivered
    exactly once; one whose handling the crash interrupted (even just after your
    own commit, before the next event was asked for) is sent again. For
    exactly-once side effects, make your per-microbatch commit idempotent (keyed
    by ``MicrobatchEnd.range``), or on restart discard what you committed past the
    file's cursor (docs/python.md shows both).

    Errors while iterating are pyarrow's (``pyarrow.flight.FlightError`` and its
    subclasses, ``pyarrow.ArrowException``): the server going away raises
    ``pyarrow.flight.FlightUnavailableError`` (or ``FlightInternalError``); a live
    stream that the server has to end (e.g. a reorg deeper than it remembers)
    raises with the server's message.
    """

    def __init__(self, reader: flight.FlightStreamReader,
                 cursor: Optional[Dict[str, Any]] = None,
                 cursor_file: Optional[PathLike] = None) -> None:
        self._reader = reader
        self._cursor = cursor
        self._cursor_file = cursor_file
        self._unsaved: Optional[Dict[str, Any]] = None
        self._pending: Deque[Event] = deque()
        self._closed = False
        self._ended = False

    @staticmethod
    def encode_cursor(cursor: Mapping[str, Any]) -> bytes:
        """The ``amp-resume`` header value of ``cursor`` (compact JSON, UTF-8)."""
        return json.dumps(cursor, separators=(",", ":")).encode()

    @property
    def cursor(self) -> Optional[Dict[str, Any]]:
        """The cursor of the last :class:`MicrobatchEnd` yielded, else the one the
        stream resumed from, else None."""
        return self._cursor

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the :class:`Data` batches."""
        return self._reader.schema

    @property
    def reader(self) -> flight.FlightStreamReader:
        """The underlying ``pyarrow.flight.FlightStreamReader``."""
        return self._reader

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Event:
        """The next event; blocks until the server sends one.

        Raises:
            StopIteration: after :meth:`close`, or when the server ended the stream.
            pyarrow.flight.FlightError / pyarrow.ArrowException: the stream failed.
        """
        if self._pending:
            return self._pending.popleft()
        self._commit()
        while True:
            if self._closed or self._ended:
                raise StopIteration
            try:
                chunk = self._reader.read_chunk()
            except StopIteration:
                self._ended = True
                raise
            except flight.FlightCancelledError:
                if self._closed:  # close() from another thread while we were waiting
                    raise StopIteration from None
                raise
            raw = chunk.app_metadata
            meta = json.loads(raw.to_pybytes()) if raw is not None else {}
            events = decode_message(meta, chunk.data)
            if not events:
                continue
            for ev in events:
                if isinstance(ev, MicrobatchEnd):
                    self._cursor = ev.cursor
                    self._unsaved = ev.cursor
            self._pending.extend(events[1:])
            return events[0]

    def _commit(self) -> None:
        if self._unsaved is not None:
            if self._cursor_file is not None:
                save_cursor(self._cursor_file, self._unsaved)
            self._unsaved = None

    def close(self, commit: bool = True) -> None:
        """Stop the stream: cancel the gRPC call, so the server stops the query.

        With ``commit`` (the default), a :class:`MicrobatchEnd` already yielded whose
        cursor is not in ``cursor_file`` yet counts as handled and is written.
        Idempotent; safe to call from another thread while one waits in ``next()``
        (that one then sees ``StopIteration``).
        """
        if self._closed:
            return
        if commit:
            self._commit()
        self._unsaved = None
        self._closed = True
        self._pending.clear()
        self._reader.cancel()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException],
                 tb: Any) -> None:
        self.close(commit=exc_type is None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<sluice.Stream {state} cursor={self._cursor!r}>"
