"""Gzip files cut short, as a copy or download that did not finish leaves them, and what the readers say of them."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

#: what a reader says of a gzip stream that ends early
CUT_SHORT = "the gzip stream ends early: the file is cut short (a copy or download that did not finish?)"


def write_cut_in_half(path: Path, text: str) -> int:
    """`text` gzipped into `path` with the second half of its compressed bytes cut off; how many whole lines are
    left before the cut."""
    whole = gzip.compress(text.encode())
    path.write_bytes(whole[: len(whole) // 2])
    return zlib.decompressobj(wbits=31).decompress(path.read_bytes()).count(b"\n")


def read_up_to_the_cut(path: Path, lines: int) -> str:
    """The warning of a file read up to its cut: its first `lines` lines."""
    return f"{path}: {CUT_SHORT}: its first {lines:,} lines read; the start of line {lines + 1:,}, cut off, left out"
