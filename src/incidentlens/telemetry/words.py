"""A count said with its noun in the number it takes, for the warnings and errors of every layer (the lowest that
says counts: `analysis.words` and the commands take it from here)."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """`1 service`, `0 services`, `3 services`, `1,200 rows`: a count with its noun in the number it takes."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
