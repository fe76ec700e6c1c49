"""Log message templates filled with realistic variables, one template at a time (never one line at a time).

A template is text with placeholders: `{name}` takes the line's own column (`{host}`, `{upstream}`, ...) and
`{kind:spec}` draws a fresh variable per line, e.g. `{ms:20-900}` a duration, `{int:1-50}` a count,
`{hex:12}` an id, `{pick:GET|POST}` a choice, `{pct:40-70}` a percentage with one decimal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from string import Formatter

import numpy as np
import pyarrow as pa

from incidentlens.scenarios import columns


@dataclass(frozen=True)
class Template:
    level: str
    text: str
    weight: float = 1.0


def _bounds(spec: str) -> tuple[float, float]:
    low, high = spec.split("-")
    return float(low), float(high)


def _duration_ms(rng: np.random.Generator, n: int, spec: str) -> pa.Array:
    # log-uniform: durations in real logs spread over orders of magnitude
    low, high = _bounds(spec)
    return columns.ints(np.exp(rng.uniform(np.log(low), np.log(high), size=n)))


def _integer(rng: np.random.Generator, n: int, spec: str) -> pa.Array:
    low, high = _bounds(spec)
    return columns.ints(rng.integers(int(low), int(high) + 1, size=n))


def _percent(rng: np.random.Generator, n: int, spec: str) -> pa.Array:
    low, high = _bounds(spec)
    return columns.decimals(rng.uniform(low, high, size=n), 1)


def _money(rng: np.random.Generator, n: int, spec: str) -> pa.Array:
    low, high = _bounds(spec)
    return columns.decimals(np.exp(rng.uniform(np.log(low), np.log(high), size=n)), 2)


def _hex(rng: np.random.Generator, n: int, spec: str) -> pa.Array:
    return columns.hex_ids(rng, n, int(spec))


def _choice(rng: np.random.Generator, n: int, spec: str) -> pa.Array:
    options = spec.split("|")
    return columns.pick(options, rng.integers(0, len(options), size=n))


VARIABLES: dict[str, Callable[[np.random.Generator, int, str], pa.Array]] = {
    "ms": _duration_ms,
    "int": _integer,
    "pct": _percent,
    "money": _money,
    "hex": _hex,
    "pick": _choice,
}


def render(
    template: Template,
    rng: np.random.Generator,
    row_columns: Mapping[str, pa.Array | str],
    n: int,
    rows: pa.Array | None = None,
) -> pa.Array:
    """The template's text for n lines; `{column}` placeholders read `row_columns` (at `rows` when given).

    A `row_columns` value that is a plain string is the same for every line (a scenario constant).
    """
    parts: list[pa.Array | str] = []
    for literal, field, spec, _ in Formatter().parse(template.text):
        if literal:
            parts.append(literal)
        if field is None:
            continue
        if field in row_columns:
            column = row_columns[field]
            if isinstance(column, str):
                parts.append(column)
            else:
                parts.append(columns.as_text(column if rows is None else column.take(rows)))
        else:
            parts.append(VARIABLES[field](rng, n, spec or ""))
    return columns.join(parts, n)


def render_lines(
    rng: np.random.Generator,
    templates: Sequence[Template],
    template_of_line: np.ndarray,
    row_columns: Mapping[str, pa.Array | str],
) -> pa.Array:
    """Messages for every line, each line rendered with its own template; lines keep their order."""
    groups = _rows_by_key(template_of_line, len(templates))
    chunks = [
        render(templates[index], rng, row_columns, len(rows), pa.array(rows))
        for index, rows in enumerate(groups)
        if len(rows)
    ]
    grouped = pa.concat_arrays(chunks) if chunks else pa.array([], type=pa.string())
    order = np.concatenate(groups) if groups else np.array([], dtype=np.int64)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return grouped.take(pa.array(back))


def choose_per_group(
    rng: np.random.Generator, group: np.ndarray, candidates: Sequence[Sequence[int]], weights: Sequence[Sequence[float]]
) -> np.ndarray:
    """For every line, one of its group's candidate templates (`candidates[group]`), drawn by weight."""
    template = np.full(len(group), -1, dtype=np.int64)
    for key, rows in enumerate(_rows_by_key(group, len(candidates))):
        if len(rows):
            template[rows] = choose_templates(rng, candidates[key], weights[key], len(rows))
    return template


def _rows_by_key(keys: np.ndarray, key_count: int) -> list[np.ndarray]:
    """The row numbers holding each key 0..key_count-1 (one linear-time radix sort for small keys)."""
    order = np.argsort(keys.astype(np.uint16), kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=key_count))])
    return [order[bounds[key] : bounds[key + 1]] for key in range(key_count)]


def choose_templates(
    rng: np.random.Generator, candidates: Sequence[int], weights: Sequence[float], n: int
) -> np.ndarray:
    """n template indices drawn from `candidates` with relative `weights`."""
    probabilities = np.asarray(weights, dtype=np.float64)
    return np.asarray(candidates)[rng.choice(len(candidates), size=n, p=probabilities / probabilities.sum())]
