"""asyncio: rows and fixed-size pages of a query, fetched as the consumer asks.

Shaped like async-cassandra's ``execute_stream``::

    result = await client.execute_stream(sql, stream_config=StreamConfig(fetch_size=5000))
    async for row in result:          # or: async for page in result.pages()
        ...

The Flight reader is blocking; it is read in a worker thread owned by the
result, one record batch at a time and only when the consumer needs more rows
than it holds, so an idle consumer holds at most one record batch plus one page
and the server's sending is held back by gRPC flow control.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
from dataclasses import dataclass
from typing import (Any, AsyncIterator, Awaitable, Callable, Generator, List, Optional, Tuple,
                    Type)

import pyarrow as pa
import pyarrow.flight as flight

Row = Tuple[Any, ...]
"""A row: a ``collections.namedtuple`` named ``Row`` whose ``_fields`` are the
column names (a name that is not a valid identifier, a keyword, starts with ``_``
or repeats becomes ``_<position>``, as ``namedtuple(rename=True)`` does).
``getattr(row, field)``, ``row[i]`` and ``row._asdict()`` work."""

PageCallback = Callable[[int, int], Any]


@dataclass
class StreamConfig:
    """How :meth:`sluice.Client.execute_stream` pages its rows.

    Attributes:
        fetch_size: rows per page (``>= 1``). Every page has exactly this many
            rows except the last. Also bounds the memory of a page: it is sent as
            the header ``sluice-fetch-size``, so the server's record batches have
            this many rows too (docs/protocol.md).
        max_pages: stop after this many pages (None: no limit); the gRPC call is
            cancelled then, so the server stops computing.
        page_callback: ``callback(page_number, total_rows_fetched)`` after each
            page (1-based page number, running row total including that page); may
            be a coroutine function (it is awaited).
        timeout_seconds: seconds, the deadline of the whole call (GetFlightInfo and
            the reading of every page); past it reading raises
            ``pyarrow.flight.FlightTimedOutError`` (``DEADLINE_EXCEEDED``). None:
            the client's ``timeout``.
    """

    fetch_size: int = 5000
    max_pages: Optional[int] = None
    page_callback: Optional[PageCallback] = None
    timeout_seconds: Optional[float] = None

    MAX_SERVER_FETCH_SIZE = 1 << 20
    """The largest ``sluice-fetch-size`` the server accepts (rows per record batch)."""

    def headers(self) -> List[Tuple[bytes, bytes]]:
        """The gRPC headers of a query with this config: ``sluice-fetch-size``, so
        the server sends record batches of ``fetch_size`` rows (at most
        :attr:`MAX_SERVER_FETCH_SIZE`; pages are cut to ``fetch_size`` anyway)."""
        size = min(self.fetch_size, self.MAX_SERVER_FETCH_SIZE)
        return [(b"sluice-fetch-size", str(size).encode())]

    def __post_init__(self) -> None:
        if not isinstance(self.fetch_size, int) or self.fetch_size < 1:
            raise ValueError(f"fetch_size must be an int >= 1, not {self.fetch_size!r}")
        if self.max_pages is not None and self.max_pages < 0:
            raise ValueError(f"max_pages must be None or >= 0, not {self.max_pages!r}")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, not {self.timeout_seconds!r}")


class _Done:
    """What :meth:`AsyncStreamingResult.cancel` returns: already done, awaitable."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


def _read_one(reader: flight.FlightStreamReader) -> Optional[flight.FlightStreamChunk]:
    try:
        return reader.read_chunk()
    except StopIteration:  # cannot cross a Future
        return None


class AsyncStreamingResult:
    """The answer of :meth:`sluice.Client.execute_stream`, read page by page.

    - ``async for row in result`` — rows (namedtuples, see :data:`Row`).
    - ``async for page in result.pages()`` — pages: lists of exactly
      ``fetch_size`` rows, the last one possibly shorter.
    - ``page_number`` — pages fetched so far; ``total_rows_fetched`` — rows in them.
    - ``await result.cancel()`` (or ``result.cancel()``) — stop: cancels the gRPC
      call so the server stops; iteration then ends.
    - ``async with result: …`` — cancels on leaving if not read to the end.

    Rows and pages share one position: mixing them continues where the other
    left off. A page is read from the server only when asked for.

    Errors while reading are pyarrow's (``pyarrow.flight.FlightError`` and
    subclasses, ``pyarrow.ArrowInvalid`` for ``INVALID_ARGUMENT``); cancelling the
    consuming task (``asyncio.CancelledError``) also cancels the gRPC call.
    """

    def __init__(self, config: StreamConfig) -> None:
        self._config = config
        # One thread per result: a read may wait long (a streaming query between
        # blocks) without starving the event loop's default executor.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sluice-execute-stream")
        self._reader: Optional[flight.FlightStreamReader] = None
        self._row_type: Optional[Type[Any]] = None
        self._batch: Optional[pa.RecordBatch] = None
        self._offset = 0
        self._lock = asyncio.Lock()
        self._done = False
        self._cancelled = False
        self.page_number = 0
        """Pages fetched so far (the number of the last page)."""
        self.total_rows_fetched = 0
        """Rows in the pages fetched so far."""

    def _attach(self, reader: flight.FlightStreamReader) -> None:
        self._reader = reader
        names = reader.schema.names
        self._row_type = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the answer."""
        assert self._reader is not None
        return self._reader.schema

    @property
    def fields(self) -> Tuple[str, ...]:
        """The rows' ``_fields``."""
        assert self._row_type is not None
        return tuple(self._row_type._fields)

    @property
    def done(self) -> bool:
        """No more pages: read to the end, ``max_pages`` reached, or cancelled."""
        return self._done

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def config(self) -> StreamConfig:
        return self._config

    # ---- reading -----------------------------------------------------------------------

    async def _next_batch(self) -> Optional[pa.RecordBatch]:
        """The next non-empty record batch, or None at the end / once cancelled."""
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        while True:
            if self._cancelled:
                return None
            fut = loop.run_in_executor(self._executor, _read_one, self._reader)
            try:
                chunk = await fut
            except asyncio.CancelledError:  # the consuming task was cancelled: so is the call
                self.cancel()
                raise
            except Exception:
                if self._cancelled:  # cancel() while this read waited: not an error
                    return None
                self._finish(cancel=False)  # the call failed: no more pages
                raise
            if chunk is None:
                return None
            if chunk.data.num_rows:
                return chunk.data

    def _rows(self, batch: pa.RecordBatch) -> List[Row]:
        assert self._row_type is not None
        make = self._row_type._make
        if batch.num_columns == 0:
            return [make(()) for _ in range(batch.num_rows)]
        columns = [col.to_pylist() for col in batch.columns]
        return [make(values) for values in zip(*columns)]

    async def next_page(self) -> Optional[List[Row]]:
        """The next page (a list of rows), or None when there are no more.

        Raises: as the class says (errors from the server while reading).
        """
        async with self._lock:
            if self._done:
                return None
            limit = self._config.max_pages
            if limit is not None and self.page_number >= limit:
                self._finish(cancel=True)
                return None
            page: List[Row] = []
            need = self._config.fetch_size
            exhausted = False
            while need:
                if self._batch is None or self._offset >= self._batch.num_rows:
                    self._batch = None
                    batch = await self._next_batch()
                    if batch is None:
                        exhausted = True
                        break
                    self._batch, self._offset = batch, 0
                take = min(need, self._batch.num_rows - self._offset)
                page.extend(self._rows(self._batch.slice(self._offset, take)))
                self._offset += take
                need -= take
            if self._cancelled:
                return None
            if exhausted:
                self._finish(cancel=False)
            if not page:
                return None
            self.page_number += 1
            self.total_rows_fetched += len(page)
            if limit is not None and self.page_number >= limit:
                self._finish(cancel=not exhausted)
            callback = self._config.page_callback
            if callback is not None:
                answer = callback(self.page_number, self.total_rows_fetched)
                if inspect.isawaitable(answer):
                    await answer
            return page

    async def pages(self) -> AsyncIterator[List[Row]]:
        """Yield the remaining pages."""
        while True:
            page = await self.next_page()
            if page is None:
                return
            yield page

    async def _iter_rows(self) -> AsyncIterator[Row]:
        while True:
            page = await self.next_page()
            if page is None:
                return
            for row in page:
                yield row

    def __aiter__(self) -> AsyncIterator[Row]:
        return self._iter_rows()

    # ---- stopping --------------------------------------------------------------------------

    def _cancel_call(self) -> None:
        if self._reader is not None:
            self._reader.cancel()

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=False)

    def _finish(self, cancel: bool) -> None:
        if cancel and not self._done:
            self._cancel_call()
        self._done = True
        self._batch = None
        self._shutdown()

    def cancel(self) -> Awaitable[None]:
        """Stop: cancel the gRPC call (the server stops the query), drop the rows
        held; iteration ends (a read in progress returns no more rows).

        Takes effect at once; returns an already-completed awaitable, so both
        ``await result.cancel()`` and ``result.cancel()`` work. Idempotent; no-op
        on a result read to the end."""
        if not self._done:
            self._cancelled = True
            self._cancel_call()
            self._done = True
            self._batch = None
            self._shutdown()
        return _Done()

    async def aclose(self) -> None:
        """Same as :meth:`cancel`."""
        await self.cancel()

    def __del__(self) -> None:
        # An abandoned result must not leave the server computing (nor its reading
        # thread blocked on a stream that never ends).
        try:
            if not self._done:
                self._cancel_call()
                self._shutdown()
        except Exception:  # noqa: BLE001 - interpreter shutdown, half-built object
            pass

    async def __aenter__(self) -> "AsyncStreamingResult":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    def __repr__(self) -> str:
        return (f"<sluice.AsyncStreamingResult page_number={self.page_number} "
                f"total_rows_fetched={self.total_rows_fetched} done={self._done}>")
