"""Arrow IPC files: save answers and read them back, one record batch at a time.

Two formats (Arrow's own; see the pyarrow IPC guide):

- the **stream** format (``.arrows``): a schema, then batches, read front to back;
  a writer can be fed as rows arrive, a reader starts before the writer ends;
- the **file** format (``.arrow``, Feather v2): the same plus a footer, which
  allows random access (``get_batch(i)``) and memory mapping.

The writers take any source of record batches and write each batch as it comes
(memory: one batch), skipping empty batches (sluice's metadata-only messages).
"""
from __future__ import annotations

import os
from typing import IO, Any, Iterable, Iterator, Optional, Tuple, Union

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc as ipc

from .streaming import (BlockComplete, Data, KeepAlive, MicrobatchEnd, MicrobatchStart,
                        Reorg)

_ROWLESS_EVENTS = (MicrobatchStart, BlockComplete, MicrobatchEnd, Reorg, KeepAlive)

PathLike = Union[str, "os.PathLike[str]"]
Sink = Union[PathLike, pa.NativeFile, IO[bytes]]
"""Where to write: a path (created or truncated), a ``pyarrow.NativeFile`` or a
binary Python file object (left open)."""
Source = Union[PathLike, pa.NativeFile, pa.Buffer, bytes, IO[bytes]]
"""What to read: a path, a ``pyarrow.NativeFile``, a buffer, or a binary Python
file object."""
Batches = Union[flight.FlightStreamReader, pa.RecordBatchReader, pa.Table,
                Iterable[Union[pa.RecordBatch, Data, Any]]]
"""A source of record batches: a ``FlightStreamReader`` (e.g. from
:meth:`sluice.Client.query`), a ``pyarrow.RecordBatchReader`` (or IPC reader), a
``pyarrow.Table``, or any iterable of ``pyarrow.RecordBatch`` — such as
:meth:`sluice.Client.query_batches` — or of :class:`sluice.Stream` events, whose
:class:`~sluice.Data` batches are written and other events skipped."""


def _schema_and_batches(source: Batches, schema: Optional[pa.Schema]
                        ) -> Tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    if isinstance(source, flight.FlightStreamReader):
        return schema or source.schema, (chunk.data for chunk in source)
    if isinstance(source, pa.Table):
        return schema or source.schema, iter(source.to_batches())
    if isinstance(source, pa.RecordBatch):
        return schema or source.schema, iter([source])
    if hasattr(source, "schema") and hasattr(source, "read_next_batch"):  # RecordBatchReader
        return schema or source.schema, iter(source)

    def batches() -> Iterator[pa.RecordBatch]:
        for item in source:
            if isinstance(item, Data):
                yield item.batch
            elif isinstance(item, pa.RecordBatch):
                yield item
            elif hasattr(item, "data") and isinstance(item.data, pa.RecordBatch):
                yield item.data  # a FlightStreamChunk
            elif isinstance(item, _ROWLESS_EVENTS):
                continue
            else:
                raise TypeError(f"not a record batch: {type(item).__name__}")

    it = batches()
    if schema is not None:
        return schema, it
    for first in it:  # the schema comes from the first batch
        def chained(first: pa.RecordBatch = first) -> Iterator[pa.RecordBatch]:
            yield first
            yield from it
        return first.schema, chained()
    raise ValueError("no record batch to take the schema from: pass schema=")


def _write(writer_class: Any, source: Batches, sink: Sink, schema: Optional[pa.Schema],
           options: Optional[ipc.IpcWriteOptions]) -> int:
    schema, batches = _schema_and_batches(source, schema)
    own = isinstance(sink, (str, os.PathLike))
    out: Any = pa.OSFile(os.fspath(sink), "wb") if own else sink  # type: ignore[arg-type]
    rows = 0
    try:
        with writer_class(out, schema, options=options) as writer:
            for batch in batches:
                if batch.num_rows:
                    writer.write_batch(batch)
                    rows += batch.num_rows
    finally:
        if own:
            out.close()
    return rows


def write_ipc_stream(source: Batches, sink: Sink, *, schema: Optional[pa.Schema] = None,
                     options: Optional[ipc.IpcWriteOptions] = None) -> int:
    """Write ``source``'s record batches to ``sink`` in the Arrow IPC **stream**
    format, batch by batch as they arrive (memory: one batch).

    Args:
        source: see :data:`Batches`. A ``FlightStreamReader`` is read to its end.
        sink: see :data:`Sink`.
        schema: the schema to write; default: the source's (or its first batch's).
        options: ``pyarrow.ipc.IpcWriteOptions`` (e.g. compression="zstd").

    Returns:
        the number of rows written.

    Raises:
        ValueError: an empty iterable and no ``schema``.
        TypeError: an item that is not a record batch.
        pyarrow.ArrowInvalid: a batch whose schema differs from ``schema``.
        OSError: the sink cannot be written.
        (and whatever reading ``source`` raises: Flight errors from the server)
    """
    return _write(ipc.RecordBatchStreamWriter, source, sink, schema, options)


def write_ipc_file(source: Batches, sink: Sink, *, schema: Optional[pa.Schema] = None,
                   options: Optional[ipc.IpcWriteOptions] = None) -> int:
    """Write ``source``'s record batches to ``sink`` in the Arrow IPC **file**
    (random access) format, batch by batch (memory: one batch; the footer at the
    end lists the batches). Arguments, result and errors as :func:`write_ipc_stream`.
    """
    return _write(ipc.RecordBatchFileWriter, source, sink, schema, options)


def _open(source: Source, memory_map: bool) -> Any:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        return pa.memory_map(path, "r") if memory_map else pa.OSFile(path, "rb")
    if isinstance(source, bytes):
        return pa.BufferReader(source)
    return source


def read_ipc_stream(source: Source) -> ipc.RecordBatchStreamReader:
    """Open an Arrow IPC **stream** for reading.

    Returns:
        a ``pyarrow.ipc.RecordBatchStreamReader``: iterate it (or
        ``read_next_batch()``) for one batch at a time; ``read_all()`` for a
        ``pyarrow.Table``; ``read_pandas()`` for a DataFrame; ``.schema``.

    Raises:
        FileNotFoundError / OSError: the path cannot be opened.
        pyarrow.ArrowInvalid: not an Arrow IPC stream.
    """
    return ipc.open_stream(_open(source, memory_map=False))


def read_ipc_file(source: Source) -> ipc.RecordBatchFileReader:
    """Open an Arrow IPC **file** for reading; a path is memory-mapped, so batches
    are read zero-copy and only the pages touched come into memory.

    Returns:
        a ``pyarrow.ipc.RecordBatchFileReader``: ``num_record_batches``,
        ``get_batch(i)``, ``read_all()``, ``read_pandas()``, ``.schema``.

    Raises:
        FileNotFoundError / OSError: the path cannot be opened.
        pyarrow.ArrowInvalid: not an Arrow IPC file.
    """
    return ipc.open_file(_open(source, memory_map=True))
