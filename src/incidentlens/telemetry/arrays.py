"""Arrow columns to and from numpy, through the Arrow buffers.

pyarrow's own conversions (`to_numpy`, `np.asarray` on an array, `pa.array` from numpy or Python values, compute
functions given a Python scalar) import pandas on first use: about 0.3 s of a CLI run that needs no pandas. These
read and write the same values through the buffers instead, NULL as NaN (numbers) or NaT (times).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def floats(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 (NULL: NaN)."""
    array = _flat(column.cast(pa.float64()))
    values = _values(array, np.float64)
    return np.where(_valid(array), values, np.nan) if array.null_count else values


def ints(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An integer column with no NULL as int64."""
    array = _flat(column.cast(pa.int64()))
    if array.null_count:
        raise ValueError("arrays.ints: NULL in an integer column (read it with floats)")
    return _values(array, np.int64)


def times(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A timestamp column as datetime64[us] (NULL: NaT)."""
    array = _flat(column.cast(pa.timestamp("us")).cast(pa.int64()))
    values = _values(array, np.int64)
    if array.null_count:
        values = np.where(_valid(array), values, np.iinfo(np.int64).min)  # NaT's integer
    return values.view("datetime64[us]")


def texts(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A column's values as a numpy object array (NULL: None)."""
    return np.asarray(column.to_pylist(), dtype=object)


def int64_array(values: np.ndarray) -> pa.Array:
    """Integers as an Arrow int64 array (no NULL)."""
    return _numbers(pa.int64(), values, np.int64)


def bool_array(mask: np.ndarray) -> pa.Array:
    """A numpy boolean mask as an Arrow boolean array (no NULL), e.g. for `Table.filter`."""
    bits = np.packbits(np.asarray(mask, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(bits)])


def float_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Numbers as an Arrow float64 array (NaN stays NaN, not NULL); `valid`: which are not NULL (none: all are)."""
    if valid is None or valid.all():
        return _numbers(pa.float64(), values, np.float64)
    data = np.ascontiguousarray(values, dtype=np.float64)
    validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.float64(), len(data), [validity, pa.py_buffer(data)],
                                 null_count=int(len(data) - valid.sum()))


def time_array(values: np.ndarray, unit: str) -> pa.Array:
    """Integer times since the epoch in `unit` ('ms', 'us') as an Arrow timestamp array (no NULL)."""
    return _numbers(pa.timestamp(unit), values, np.int64)


def string_array(values: list[str | None]) -> pa.Array:
    """Python strings as an Arrow string array (None: NULL), through its validity, offsets and UTF-8 data buffers."""
    encoded = [b"" if value is None else value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(data) for data in encoded], out=offsets[1:])
    missing = [value is None for value in values]
    validity = pa.py_buffer(np.packbits(np.logical_not(missing), bitorder="little")) if any(missing) else None
    return pa.Array.from_buffers(pa.string(), len(encoded), [validity, pa.py_buffer(offsets),
                                                             pa.py_buffer(b"".join(encoded))],
                                 null_count=sum(missing))


def repeated_strings(values: list[str | None], counts: np.ndarray) -> pa.Array:
    """Each of `values` `counts` times over, in order, as an Arrow string array (None: NULL): one string per value
    encoded, not one per row (a series' labels beside each of its points)."""
    indices = np.repeat(np.arange(len(values), dtype=np.int32), counts)
    positions = pa.Array.from_buffers(pa.int32(), len(indices), [None, pa.py_buffer(indices)])
    return pa.DictionaryArray.from_arrays(positions, string_array(values)).cast(pa.string())


def _numbers(kind: pa.DataType, values: np.ndarray, dtype: type) -> pa.Array:
    """`values` as an Arrow array of `kind` (no NULL), its data buffer numpy's own `dtype` values."""
    data = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])


def _flat(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _values(array: pa.Array, dtype: type) -> np.ndarray:
    if len(array) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype)[array.offset:array.offset + len(array)]


def _valid(array: pa.Array) -> np.ndarray:
    """Which entries are not NULL (the validity bitmap)."""
    bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[array.offset:array.offset + len(array)].astype(bool)
