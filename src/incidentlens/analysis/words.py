"""Lists of names, and a name's possessive, as a sentence says them, for the analysis' reasons and the review
alike."""

from __future__ import annotations

from collections.abc import Sequence

from incidentlens.telemetry.words import counted as counted  # a count and its noun, said as telemetry says them


def listed(names: Sequence[str], word: str = "and") -> str:
    """`a`, `a and b`, `a, b and c` (or another `word`: `a, b or c`); a name given twice is said once."""
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


def possessive(name: str) -> str:
    """`checkout's`, and of a name ending in s, `payments'` (not `payments's`)."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"
