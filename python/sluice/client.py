"""The synchronous client: batch queries and the entry points to streams."""
from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import pyarrow as pa
import pyarrow.flight as flight

from ._flight_sql import Parameters, prepared_flight_info
from .streaming import Stream, load_cursor

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from .aio import AsyncStreamingResult, StreamConfig

DEFAULT_FLIGHT_URL = "grpc://localhost:1602"
"""Where ``sluice serve`` listens by default (Arrow Flight over plaintext gRPC)."""

FLIGHT_URL_ENV = "SLUICE_FLIGHT_URL"
"""The environment variable that overrides :data:`DEFAULT_FLIGHT_URL`."""

API_KEY_ENV = "SLUICE_API_KEY"
"""The environment variable :class:`Client` reads its API key from when given none."""

Headers = Union[Mapping[str, str], Sequence[Tuple[Union[str, bytes], Union[str, bytes]]]]
PathLike = Union[str, "os.PathLike[str]"]

_UNSET: Any = object()


def _as_bytes(v: Union[str, bytes]) -> bytes:
    return v if isinstance(v, bytes) else v.encode()


class Client:
    """A connection to a sluice server.

    ``Client(api_key=None, flight_url=None, timeout=None, *, headers=None,
    tls_root_certs=None)``

    Args:
        api_key: sent on every call as the gRPC header
            ``authorization: Bearer <api_key>``. None: the environment variable
            ``SLUICE_API_KEY`` if set, else no key. A server without keys
            configured ignores it; one with keys (docs/security.md) answers a
            missing or wrong key with ``UNAUTHENTICATED``, raised as
            ``pyarrow.flight.FlightUnauthenticatedError``.
        flight_url: the server's Flight location, ``grpc://host:port``, or
            ``grpc+tls://host:port`` for a server with TLS. None: the environment
            variable ``SLUICE_FLIGHT_URL`` if set, else ``grpc://localhost:1602``.
        timeout: seconds, the deadline of each gRPC call, or None for none. For the
            batch helpers it covers the whole answer (GetFlightInfo, and DoGet
            until its last batch): a longer query fails with
            ``pyarrow.flight.FlightTimedOutError`` (``DEADLINE_EXCEEDED``). For
            :meth:`stream` it covers only GetFlightInfo (a stream has no end).
        headers: extra gRPC headers sent on every call (keyword only).
        tls_root_certs: for ``grpc+tls://``, the certificate authorities to trust
            (keyword only): PEM bytes, or the path of a PEM file. None: the
            system's. A server whose certificate they do not sign fails the first
            call with ``pyarrow.flight.FlightUnavailableError``.

    Connecting is lazy in gRPC: an unreachable server shows at the first call, as
    ``pyarrow.flight.FlightUnavailableError``.

    A client may be used from several threads and several asyncio tasks at once.
    Close it with :meth:`close`, or use it as a context manager.

    Errors of the calls below are pyarrow's: SQL that does not parse or bind, a
    refused statement, a refused cursor or a non-incrementalizable streaming query
    are gRPC ``INVALID_ARGUMENT`` from the server, raised as
    ``pyarrow.ArrowInvalid`` (a ``ValueError``) with the server's message.
    """

    def __init__(self, api_key: Optional[str] = None, flight_url: Optional[str] = None,
                 timeout: Optional[float] = None, *, headers: Optional[Headers] = None,
                 tls_root_certs: Optional[Union[bytes, PathLike]] = None) -> None:
        if flight_url is None:
            flight_url = os.environ.get(FLIGHT_URL_ENV) or DEFAULT_FLIGHT_URL
        if api_key is None:
            api_key = os.environ.get(API_KEY_ENV) or None
        self.flight_url: str = flight_url
        self.timeout = timeout
        pairs: List[Tuple[bytes, bytes]] = []
        if api_key is not None:
            pairs.append((b"authorization", b"Bearer " + api_key.encode()))
        if headers is not None:
            items = headers.items() if isinstance(headers, Mapping) else headers
            pairs += [(_as_bytes(k).lower(), _as_bytes(v)) for k, v in items]
        self._headers = pairs
        connect_options: dict = {}
        if tls_root_certs is not None:
            if not isinstance(tls_root_certs, bytes):
                with open(tls_root_certs, "rb") as f:
                    tls_root_certs = f.read()
            connect_options["tls_root_certs"] = tls_root_certs
        self._flight = flight.connect(flight_url, **connect_options)
        self._closed = False

    # ---- plumbing --------------------------------------------------------------------

    @property
    def flight_client(self) -> flight.FlightClient:
        """The underlying ``pyarrow.flight.FlightClient``."""
        return self._flight

    def call_options(self, extra_headers: Sequence[Tuple[bytes, bytes]] = (),
                     timeout: Optional[float] = _UNSET) -> flight.FlightCallOptions:
        """``FlightCallOptions`` with this client's headers (and ``extra_headers``)
        and ``timeout`` seconds (default: the client's)."""
        return flight.FlightCallOptions(
            headers=self._headers + list(extra_headers),
            timeout=self.timeout if timeout is _UNSET else timeout)

    def _do_get(self, sql: str, info_options: flight.FlightCallOptions,
                get_options: flight.FlightCallOptions,
                parameters: Optional[Parameters] = None) -> flight.FlightStreamReader:
        if not isinstance(sql, str):
            raise TypeError(f"sql must be a str, not {type(sql).__name__}")
        if parameters is not None:
            info = prepared_flight_info(self._flight, sql, parameters, info_options)
        else:
            info = self._flight.get_flight_info(
                flight.FlightDescriptor.for_command(sql.encode()), info_options)
        if not info.endpoints:
            raise RuntimeError("the server's FlightInfo has no endpoint")
        return self._flight.do_get(info.endpoints[0].ticket, get_options)

    # ---- batch queries -----------------------------------------------------------------

    def query(self, sql: str, parameters: Optional[Parameters] = None
              ) -> flight.FlightStreamReader:
        """Run ``sql``; return the answer as it streams in.

        Args:
            sql: one SELECT statement.
            parameters: values for its placeholders ``?`` (in order) or ``$1``,
                ``$2``, …: a sequence of Python values or ``pyarrow.Scalar``s, or a
                one-row ``pyarrow.RecordBatch``. They travel as typed Arrow values
                through a Flight SQL prepared statement and are bound by the
                engine, never pasted into the SQL. Batch queries only.

        Returns:
            a ``pyarrow.flight.FlightStreamReader``: ``read_chunk()`` gives the next
            ``FlightStreamChunk`` (``.data`` a ``pyarrow.RecordBatch``,
            ``.app_metadata`` the server's JSON metadata) and raises
            ``StopIteration`` at the end; ``read_all()`` / ``read_pandas()`` wait for
            the whole answer; ``cancel()`` stops it. The last chunk of a batch
            query is an empty batch (metadata only).

        A query ending in ``SETTINGS stream = true`` never ends: use :meth:`stream`.

        Raises:
            pyarrow.ArrowInvalid: the server refused the SQL (``INVALID_ARGUMENT``),
                or the parameters do not match the placeholders.
            pyarrow.ArrowNotImplementedError: a parameter type the engine cannot bind.
            pyarrow.flight.FlightUnavailableError: no server at ``flight_url``.
            pyarrow.flight.FlightTimedOutError: past the client's ``timeout``
                (also later, while reading).
        """
        options = self.call_options()
        return self._do_get(sql, options, options, parameters)

    def query_table(self, sql: str, parameters: Optional[Parameters] = None) -> pa.Table:
        """Run ``sql`` (with ``parameters`` as in :meth:`query`) and return the whole
        answer as a ``pyarrow.Table``.

        Raises: as :meth:`query`.
        """
        return self.query(sql, parameters).read_all()

    def query_pandas(self, sql: str, parameters: Optional[Parameters] = None
                     ) -> "pandas.DataFrame":
        """Run ``sql`` (with ``parameters`` as in :meth:`query`) and return the whole
        answer as a ``pandas.DataFrame`` (needs pandas installed).

        Raises: as :meth:`query`; ``ImportError`` without pandas.
        """
        return self.query(sql, parameters).read_pandas()

    def query_batches(self, sql: str, parameters: Optional[Parameters] = None
                      ) -> Iterator[pa.RecordBatch]:
        """Run ``sql``; yield its ``pyarrow.RecordBatch``es as they arrive (about
        the server's ``rows_per_batch`` rows each, 65,536 by default), skipping the
        empty metadata-only batches. Only one batch is held at a time.

        The call is made at once (errors raise here). Closing the iterator early
        (``close()``, or dropping it after a ``break``) cancels the call, so the
        server stops.

        Raises: as :meth:`query`.
        """
        return _nonempty_batches(self.query(sql, parameters))

    # ---- streaming queries -------------------------------------------------------------

    def stream(self, sql: str, cursor: Optional[Mapping[str, Any]] = None, *,
               cursor_file: Optional[PathLike] = None) -> Stream:
        """Start the streaming query ``sql``; return a :class:`Stream` of events.

        Sends ``amp-stream: true`` (so ``SETTINGS stream = true`` is optional) and,
        to resume, ``amp-resume: <cursor as JSON>``.

        Args:
            sql: an incrementalizable SELECT (see docs/protocol.md).
            cursor: a cursor from an earlier :class:`MicrobatchEnd` (or
                ``Stream.cursor``) to continue after; None starts at the first
                stored block.
            cursor_file: a path. If it exists and ``cursor`` is None, the stream
                resumes from the cursor it holds. After each microbatch the
                consumer has handled, the file is replaced atomically with that
                microbatch's cursor (see :class:`Stream` for exactly when).

        Returns:
            a :class:`Stream`, already connected: iterate it for events; close it
            (or use ``with``) to stop.

        Raises:
            pyarrow.ArrowInvalid: ``INVALID_ARGUMENT`` from the server — bad SQL,
                ``NonIncrementalOp: …`` for a query that cannot stream, a cursor
                that does not parse, names another network, a block not extracted
                yet or not on the canonical chain nor a remembered fork.
            ValueError: ``cursor_file`` does not hold a JSON object.
            pyarrow.flight.FlightUnavailableError: no server.
        """
        if cursor is None and cursor_file is not None:
            cursor = load_cursor(cursor_file)
        extra = [(b"amp-stream", b"true")]
        if cursor is not None:
            extra.append((b"amp-resume", Stream.encode_cursor(cursor)))
        reader = self._do_get(sql, self.call_options(extra),
                              self.call_options(extra, timeout=None))
        return Stream(reader, cursor=dict(cursor) if cursor is not None else None,
                      cursor_file=cursor_file)

    # ---- asyncio ---------------------------------------------------------------------------

    async def execute_stream(self, sql: str, parameters: Optional[Parameters] = None,
                             stream_config: Optional["StreamConfig"] = None
                             ) -> "AsyncStreamingResult":
        """asyncio: run ``sql``; return an :class:`AsyncStreamingResult` whose rows
        arrive in pages of ``stream_config.fetch_size`` rows, read from the server
        only as the consumer asks for them.

        Args:
            sql: the query (a streaming query with ``SETTINGS stream = true`` works
                too: its pages never end).
            parameters: values for the placeholders, as in :meth:`query` (bound by
                the server through a Flight SQL prepared statement; batch queries
                only).
            stream_config: fetch size, page limit, progress callback, timeout
                (default ``StreamConfig()``).

        Raises:
            pyarrow.ArrowInvalid: the server refused the SQL (``INVALID_ARGUMENT``),
                or the parameters do not match the placeholders.
            pyarrow.flight.FlightUnavailableError: no server.
            pyarrow.flight.FlightTimedOutError: past ``timeout_seconds`` (also
                later, while reading pages).
        """
        from .aio import AsyncStreamingResult, StreamConfig

        config = stream_config if stream_config is not None else StreamConfig()
        timeout = self.timeout if config.timeout_seconds is None else config.timeout_seconds
        options = self.call_options(config.headers(), timeout=timeout)
        result = AsyncStreamingResult(config)
        loop = asyncio.get_running_loop()
        try:
            reader = await loop.run_in_executor(result._executor, self._do_get, sql, options,
                                                options, parameters)
        except BaseException:
            result._shutdown()
            raise
        result._attach(reader)
        return result

    # ---- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Readers still open fail afterwards."""
        if not self._closed:
            self._closed = True
            self._flight.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(flight_url={self.flight_url!r})"


def _nonempty_batches(reader: flight.FlightStreamReader) -> Iterator[pa.RecordBatch]:
    finished = False
    try:
        for chunk in reader:
            if chunk.data.num_rows:
                yield chunk.data
        finished = True
    finally:
        if not finished:
            reader.cancel()
