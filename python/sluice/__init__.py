"""sluice: a Python client for the sluice server.

sluice answers SQL over live Ethereum data as Arrow record batches over Arrow
Flight. This package wraps ``pyarrow.flight`` (its only dependency):

- :class:`Client` — batch queries: ``query()`` returns the
  ``pyarrow.flight.FlightStreamReader`` itself; ``query_table()``,
  ``query_pandas()``, ``query_batches()`` are shortcuts.
- :meth:`Client.stream` — a streaming query as typed events
  (:class:`MicrobatchStart`, :class:`Data`, :class:`BlockComplete`,
  :class:`MicrobatchEnd`, :class:`Reorg`, :class:`KeepAlive`) with resume cursors,
  optionally persisted in a file (:func:`load_cursor`, :func:`save_cursor`).
- :meth:`Client.execute_stream` — asyncio: rows and pages of a fixed size
  (:class:`StreamConfig`, :class:`AsyncStreamingResult`).
- :func:`write_ipc_stream`, :func:`write_ipc_file`, :func:`read_ipc_stream`,
  :func:`read_ipc_file` — Arrow IPC files, batch by batch.

Errors are pyarrow's: a gRPC ``INVALID_ARGUMENT`` from the server (bad SQL, a
refused query or cursor) raises ``pyarrow.ArrowInvalid`` (a ``ValueError``),
``UNIMPLEMENTED`` ``pyarrow.ArrowNotImplementedError``, ``DEADLINE_EXCEEDED``
``pyarrow.flight.FlightTimedOutError``, ``UNAVAILABLE`` (no server)
``pyarrow.flight.FlightUnavailableError``, ``CANCELLED``
``pyarrow.flight.FlightCancelledError``; all Flight errors derive from
``pyarrow.flight.FlightError``. See docs/python.md.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .aio import AsyncStreamingResult, StreamConfig
from .client import DEFAULT_FLIGHT_URL, FLIGHT_URL_ENV, Client
from .ipc import read_ipc_file, read_ipc_stream, write_ipc_file, write_ipc_stream
from .streaming import (
    BlockComplete,
    BlockRange,
    Data,
    Event,
    KeepAlive,
    MicrobatchEnd,
    MicrobatchStart,
    Reorg,
    Stream,
    load_cursor,
    save_cursor,
)

__all__ = [
    "__version__",
    "DEFAULT_FLIGHT_URL",
    "FLIGHT_URL_ENV",
    "Client",
    "Stream",
    "Event",
    "BlockRange",
    "MicrobatchStart",
    "Data",
    "BlockComplete",
    "MicrobatchEnd",
    "Reorg",
    "KeepAlive",
    "load_cursor",
    "save_cursor",
    "StreamConfig",
    "AsyncStreamingResult",
    "write_ipc_stream",
    "write_ipc_file",
    "read_ipc_stream",
    "read_ipc_file",
]
