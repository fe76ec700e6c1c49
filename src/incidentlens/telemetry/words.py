"""A count said with its noun in the number it takes, for the warnings and errors of every layer (the lowest that
says counts: `analysis.words` and the commands take it from here)."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 service`, `0 services`, `3 services`, `1,200 rows`, `1 entry` (`plural`: `2 entries`): a count with its
    noun in the number it takes."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def counted_words(n: int, words: str) -> str:
    """A count before words that open with their plural noun (`rows not numeric`), the noun in the number the count
    takes, and `their` after it said `its` of one: `1 row not numeric`, `3 rows not numeric`, `1 row whose time does
    not parse, its duration kept as NULL`."""
    noun, _, rest = words.partition(" ")
    return f"{counted(n, noun.removesuffix('s'))} {rest.replace('their ', 'its ') if n == 1 else rest}"


def have(n: int) -> str:
    """`has` after a count of 1, else `have`: `1 row has no time`, `2 rows have no time`."""
    return "has" if n == 1 else "have"
