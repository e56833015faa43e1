"""The Flight SQL prepared-statement calls behind ``parameters=`` (docs/protocol.md,
"Flight SQL"): ``CreatePreparedStatement``, ``DoPut`` of one row of parameters,
``GetFlightInfo(CommandPreparedStatementQuery)``, ``ClosePreparedStatement``.

The few protobuf messages are encoded by hand (the protobuf wire format: a
length-delimited field is ``varint(number << 3 | 2)``, ``varint(length)``, bytes),
so the package needs nothing but pyarrow."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence, Tuple, Union

import pyarrow as pa
import pyarrow.flight as flight

_TYPE_PREFIX = b"type.googleapis.com/arrow.flight.protocol.sql."

Parameters = Union[Sequence[Any], pa.RecordBatch]
"""Values for the placeholders ``?`` (in order) or ``$1``, ``$2``, …: a sequence of
Python values or ``pyarrow.Scalar``s, or a one-row ``pyarrow.RecordBatch`` (column i
for placeholder i+1)."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _any(name: str, value: bytes) -> bytes:
    return _field(1, _TYPE_PREFIX + name.encode()) + _field(2, value)


def _fields(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """The length-delimited fields of a message (others are skipped)."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            if pos >= len(data):
                raise ValueError("malformed Flight SQL message from the server")
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    while pos < len(data):
        key = varint()
        wire_type = key & 7
        if wire_type == 0:
            varint()
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            n = varint()
            yield key >> 3, data[pos:pos + n]
            pos += n
        else:
            raise ValueError("malformed Flight SQL message from the server")


def parameters_batch(parameters: Parameters) -> pa.RecordBatch:
    """One row of parameters as a ``pyarrow.RecordBatch`` (columns "1", "2", …).

    Python values get pyarrow's inferred types (int -> int64, float -> double,
    str -> utf8, bytes -> binary, bool, None -> null, Decimal -> decimal128,
    datetime -> timestamp[us], date -> date32); a ``pyarrow.Scalar`` keeps its type.

    Raises:
        ValueError: a record batch that does not have exactly one row.
        pyarrow.ArrowInvalid / TypeError: a value pyarrow cannot convert.
    """
    if isinstance(parameters, pa.RecordBatch):
        if parameters.num_rows != 1:
            raise ValueError(f"parameters must be one row; got {parameters.num_rows}")
        return parameters
    if isinstance(parameters, (str, bytes)):
        raise TypeError("parameters must be a sequence of values, not a single str/bytes")
    arrays = []
    for value in parameters:
        if isinstance(value, pa.Scalar):
            arrays.append(pa.array([value.as_py()], type=value.type))
        else:
            arrays.append(pa.array([value]))
    return pa.RecordBatch.from_arrays(arrays, names=[str(i + 1) for i in range(len(arrays))])


def prepared_flight_info(client: flight.FlightClient, sql: str, parameters: Parameters,
                         options: flight.FlightCallOptions) -> flight.FlightInfo:
    """Prepare ``sql``, bind ``parameters``, and return the FlightInfo whose ticket
    runs it. The prepared statement is closed before returning (the ticket carries
    the query and its parameters)."""
    batch = parameters_batch(parameters)
    request = _any("ActionCreatePreparedStatementRequest", _field(1, sql.encode()))
    results = list(client.do_action(flight.Action("CreatePreparedStatement", request), options))
    if not results:
        raise ValueError("CreatePreparedStatement answered nothing")
    handle: Optional[bytes] = None
    for number, value in _fields(results[0].body.to_pybytes()):
        if number == 2:  # Any.value: ActionCreatePreparedStatementResult
            for inner_number, inner in _fields(value):
                if inner_number == 1:
                    handle = inner
    if handle is None:
        raise ValueError("CreatePreparedStatement answered no handle")
    try:
        descriptor = flight.FlightDescriptor.for_command(
            _any("CommandPreparedStatementQuery", _field(1, handle)))
        writer, metadata_reader = client.do_put(descriptor, batch.schema, options)
        writer.write_batch(batch)
        writer.done_writing()
        answer = metadata_reader.read()  # DoPutPreparedStatementResult, maybe a new handle
        writer.close()
        if answer is not None:
            for number, value in _fields(answer.to_pybytes()):
                if number == 1 and value:
                    handle = value
                    descriptor = flight.FlightDescriptor.for_command(
                        _any("CommandPreparedStatementQuery", _field(1, handle)))
        return client.get_flight_info(descriptor, options)
    finally:
        close = _any("ActionClosePreparedStatementRequest", _field(1, handle))
        try:
            list(client.do_action(flight.Action("ClosePreparedStatement", close), options))
        except flight.FlightError:
            pass  # the server forgets idle statements anyway
