"""Vectorised column builders: ids, fixed-width numbers, timestamps and message text, without a loop per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# byte value -> its two hex digits, so one lookup per random byte
_HEX_PAIRS = np.stack([_HEX_DIGITS[np.arange(256) >> 4], _HEX_DIGITS[np.arange(256) & 0x0F]], axis=1).reshape(-1)
_HEX_PAIRS = _HEX_PAIRS.view(np.uint16)


def _bytes_matrix_to_strings(chars: np.ndarray) -> pa.Array:
    """(n, width) uint8 ASCII codes -> a pyarrow string array of n fixed-width strings."""
    n, width = chars.shape
    data = pa.py_buffer(np.ascontiguousarray(chars))
    if n * width < 2**31:
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), data)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data)


def hex_ids(rng: np.random.Generator, n: int, width: int = 32, prefix: str = "") -> pa.Array:
    """n random lowercase hex ids of `width` digits (trace ids, request ids), optionally prefixed."""
    raw = np.frombuffer(rng.bytes(n * ((width + 1) // 2)), dtype=np.uint8).reshape(n, (width + 1) // 2)
    chars = _HEX_PAIRS[raw].view(np.uint8).reshape(n, raw.shape[1] * 2)[:, :width]
    return with_prefix(_bytes_matrix_to_strings(chars), prefix)


def zero_padded(values: np.ndarray, width: int, prefix: str = "") -> pa.Array:
    """Non-negative integers as zero-padded decimal strings of `width` digits (`u-0004211`)."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars = ((values[:, None] // powers[None, :]) % 10).astype(np.uint8) + np.uint8(ord("0"))
    return with_prefix(_bytes_matrix_to_strings(chars), prefix)


def with_prefix(values: pa.Array, prefix: str) -> pa.Array:
    if not prefix:
        return values
    return pc.binary_join_element_wise(prefix, values, "")


def ints(values: np.ndarray) -> pa.Array:
    """Numbers rounded to integers, as decimal text."""
    return pa.array(np.rint(np.asarray(values)).astype(np.int64)).cast(pa.string())


def decimals(values: np.ndarray, places: int) -> pa.Array:
    """Numbers rounded to `places` decimals as text, always showing them (`12.50`)."""
    scaled = np.round(np.asarray(values, dtype=np.float64) * 10**places).astype(np.int64)
    whole = ints(scaled // 10**places)
    frac = zero_padded(scaled % 10**places, places)
    return pc.binary_join_element_wise(whole, frac, ".")


def pick(choices: Sequence[str], index: np.ndarray) -> pa.Array:
    """choices[index] for every row, as a string array."""
    return pa.array(list(choices), type=pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))


def categorical(choices: Sequence[str], index: np.ndarray) -> pa.DictionaryArray:
    """choices[index] for every row, dictionary-encoded: no string copied per row (service, host, level...)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(index, dtype=np.int32)), pa.array(list(choices), type=pa.string())
    )


def as_text(values: pa.Array) -> pa.Array:
    """Plain strings, decoding a dictionary-encoded column."""
    return values.dictionary_decode() if isinstance(values, pa.DictionaryArray) else values


def join(parts: Sequence[pa.Array | str], n: int) -> pa.Array:
    """Concatenate literal and per-row parts into one string array of length n."""
    if not any(isinstance(part, pa.Array) for part in parts):
        return pa.array(["".join(parts)] * n, type=pa.string()) if n else pa.array([], type=pa.string())
    return pc.binary_join_element_wise(*parts, "")


def iso_times(epoch_ms: np.ndarray, with_millis: bool) -> pa.Array:
    """Epoch milliseconds as ISO-8601 UTC text ending in `Z`."""
    unit = "ms" if with_millis else "s"
    values = np.asarray(epoch_ms, dtype=np.int64)
    if not with_millis:
        values = values // 1000
    stamps = pa.array(values).cast(pa.timestamp(unit, tz="UTC"))
    return pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ")


def utc_timestamps(epoch_ms: np.ndarray) -> pa.Array:
    """Epoch milliseconds as a native UTC timestamp column (parquet)."""
    return pa.array(np.asarray(epoch_ms, dtype=np.int64)).cast(pa.timestamp("ms", tz="UTC"))
