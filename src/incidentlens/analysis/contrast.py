"""Log contrast, the way Honeycomb's BubbleUp does it: which log values set the incident apart.

The problem lines (WARN/ERROR/FATAL) in the incident window are compared with the baseline, value by value,
for every categorical column of the logs view. The columns are discovered from the view's schema and their
cardinality (ids, by name or by cardinality, and free text are skipped); all of them are counted in one scan with
GROUPING SETS. For each value we report its share of the window population against its share of the baseline
population, the lift, the difference in proportions and a one-sided two-proportion z-test, and rank
over-represented values by the difference in proportions (the value that explains most of the change comes first).
Which metrics moved, and how far, is `shifts.metric_shifts`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.periods import (
    PROBLEM_LEVELS,
    Span,
    check_periods,
    in_span,
    quote_ident,
    sql_in,
)
from incidentlens.analysis.tails import normal_sf
from incidentlens.telemetry import arrays

#: `trace_id`, `user-id`, `TraceID`, `spanId`, `request_uuid`: identifiers, never categories
ID_NAME = re.compile(r"(?:^|[_\-. ])(?:id|ID|Id|uuid|UUID|guid|GUID)$|[a-z0-9](?:ID|Id|UUID|Uuid)$")
#: columns that define the populations or are free text, never contrast dimensions
RESERVED_COLUMNS = ("ts", "message", "level")
#: names the contrast queries give their own columns
INTERNAL_NAMES = ("period", "problem", "n", "lines__")
#: a dimension with more distinct values than this is an id, not a category
MAX_CARDINALITY = 500
#: lines sampled to measure each column's cardinality
CARDINALITY_SAMPLE = 200_000
#: a category repeats: on average each value covers at least this many lines
MIN_LINES_PER_VALUE = 20
#: below this many problem lines in the baseline, the baseline population is every line instead
MIN_BASELINE_PROBLEMS = 50
#: reported contributors: significant at this level (one-sided) ...
MAX_P_VALUE = 1e-3
#: ... with at least this difference in proportions ...
MIN_DIFFERENCE = 0.05
#: ... and at least this many lines in the window
MIN_WINDOW_COUNT = 5


class Contributor(BaseModel):
    """A value over-represented in the incident's problem lines."""

    dimension: str
    value: str
    window_share: float
    baseline_share: float
    lift: float
    difference: float
    p_value: float
    window_count: int
    baseline_count: int
    same_lines_as: str | None = None  # a higher-ranked `dimension=value` with the very same counts
    evidence: str


class LogContrast(BaseModel):
    contributors: list[Contributor] = []
    dimensions: list[str] = []
    skipped: dict[str, str] = {}
    populations: dict[str, Any] = {}
    evidence: list[Evidence] = []


def contrast_logs(store: Any, window: Span, baseline: Span, *, limit: int = 20) -> LogContrast:
    """Which values of which log columns are over-represented in the incident's problem lines, ranked."""
    window, baseline = check_periods(window, baseline)
    dimensions, skipped, discovery_sql = discover_dimensions(store, window, baseline)
    discovery = Evidence.make(
        "contrast",
        f"contrast dimensions: {len(dimensions)} compared, {len(skipped)} skipped",
        discovery_sql,
        {"dimensions": dimensions, "skipped": skipped},
    )
    if not dimensions:
        return LogContrast(skipped=skipped, evidence=[discovery])
    sql = contrast_sql(dimensions, window, baseline)
    counts = store.fetch(sql)
    populations = _choose_populations(counts, dimensions[0])
    rows = _score(counts, dimensions, populations)
    contributors, evidence = _contributors(rows, populations, sql, limit)
    return LogContrast(
        contributors=contributors,
        dimensions=dimensions,
        skipped=skipped,
        populations=populations,
        evidence=[discovery, *evidence],
    )


def discover_dimensions(store: Any, window: Span, baseline: Span) -> tuple[list[str], dict[str, str], str]:
    """The categorical columns of the logs view (by type and cardinality), those skipped and why, and the SQL."""
    schema = store.fetch("SELECT * FROM logs LIMIT 0").schema
    candidates: list[str] = []
    skipped: dict[str, str] = {}
    for field in schema:
        if field.name in RESERVED_COLUMNS:
            continue
        if field.name in INTERNAL_NAMES or field.name.startswith("g__"):
            skipped[field.name] = "its name clashes with a column of the contrast query"
        elif ID_NAME.search(field.name):
            # on a short stretch of logs an id column can look like a category (lines per trace id repeat)
            skipped[field.name] = "named like an id"
        elif _is_categorical_type(field.type):
            candidates.append(field.name)
        else:
            skipped[field.name] = f"type {field.type} is not categorical"
    if not candidates:
        return [], skipped, "SELECT * FROM logs LIMIT 0"
    distinct = ", ".join(f"approx_count_distinct({quote_ident(c)}) AS {quote_ident(c)}" for c in candidates)
    columns = ", ".join(quote_ident(c) for c in candidates)
    # A sample decides which columns are categories (the counting pass then sees every value): LIMIT stops the scan
    # early, where a full pass of approx_count_distinct over trace ids would cost seconds on 10M lines.
    sql = (
        f"SELECT count(*) AS lines__, {distinct} FROM (SELECT {columns} FROM logs "
        f"WHERE ({in_span('ts', window)}) OR ({in_span('ts', baseline)}) LIMIT {CARDINALITY_SAMPLE}) AS sample"
    )
    row = store.fetch(sql).to_pylist()[0]
    lines = int(row["lines__"])
    dimensions = []
    for column in candidates:
        cardinality = int(row[column] or 0)
        if cardinality < 2:
            skipped[column] = f"{cardinality} distinct value(s)"
        elif cardinality > MAX_CARDINALITY or cardinality * MIN_LINES_PER_VALUE > lines:
            skipped[column] = f"~{cardinality} distinct values in {lines} sampled lines: an id, not a category"
        else:
            dimensions.append(column)
    return dimensions, skipped, sql


def _is_categorical_type(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_boolean(data_type)
        or pa.types.is_integer(data_type)
        or pa.types.is_dictionary(data_type)
    )


def contrast_sql(dimensions: list[str], window: Span, baseline: Span) -> str:
    """One scan: line counts per (period, problem, value) for every dimension, via GROUPING SETS."""
    values = ", ".join(f"CAST({quote_ident(d)} AS VARCHAR) AS {quote_ident(d)}" for d in dimensions)
    columns = ", ".join(quote_ident(d) for d in dimensions)
    grouping = ", ".join(f"GROUPING({quote_ident(d)}) AS {quote_ident('g__' + d)}" for d in dimensions)
    sets = ", ".join(f"(period, problem, {quote_ident(d)})" for d in dimensions)
    return (
        f"SELECT period, problem, {columns}, {grouping}, count(*) AS n\n"
        f"FROM (\n"
        f"    SELECT CASE WHEN {in_span('ts', window)} THEN 'window' ELSE 'baseline' END AS period,\n"
        f"           CASE WHEN level IN {sql_in(PROBLEM_LEVELS)} THEN 1 ELSE 0 END AS problem,\n"
        f"           {values}\n"
        f"    FROM logs WHERE ({in_span('ts', window)}) OR ({in_span('ts', baseline)})\n"
        f") AS lines\n"
        f"GROUP BY GROUPING SETS ({sets})"
    )


def _choose_populations(counts: pa.Table, first_dimension: str) -> dict[str, Any]:
    """Window: its problem lines (every line if it has none). Baseline: its problem lines when there are enough."""
    in_set = _in_grouping_set(counts, first_dimension)
    period, problem, n = arrays.texts(counts["period"]), arrays.ints(counts["problem"]), arrays.ints(counts["n"])

    def total(side: str, problems: int) -> int:
        return int(n[in_set & (period == side) & (problem == problems)].sum())

    window_problems, baseline_problems = total("window", 1), total("baseline", 1)
    window_all = window_problems + total("window", 0)
    baseline_all = baseline_problems + total("baseline", 0)
    window_focus = window_problems > 0
    baseline_focus = window_focus and baseline_problems >= MIN_BASELINE_PROBLEMS
    levels = "/".join(PROBLEM_LEVELS)
    return {
        "window": f"{levels} lines in the incident window" if window_focus else "all lines in the incident window",
        "baseline": f"{levels} lines in the baseline" if baseline_focus else "all lines in the baseline",
        "window_problems_only": window_focus,
        "baseline_problems_only": baseline_focus,
        "window_total": window_problems if window_focus else window_all,
        "baseline_total": baseline_problems if baseline_focus else baseline_all,
    }


def _score(counts: pa.Table, dimensions: list[str], populations: dict[str, Any]) -> list[dict[str, Any]]:
    """Effect size and significance of every (dimension, value), vectorised per dimension."""
    n_window, n_baseline = populations["window_total"], populations["baseline_total"]
    if n_window == 0 or n_baseline == 0:
        return []
    in_window = _population_mask(counts, "window", populations["window_problems_only"])
    in_baseline = _population_mask(counts, "baseline", populations["baseline_problems_only"])
    lines = arrays.floats(counts["n"])
    rows: list[dict[str, Any]] = []
    for dimension in dimensions:
        values, x1, x2 = _counts_by_value(counts[dimension], _in_grouping_set(counts, dimension), lines,
                                          in_window, in_baseline)
        p1, p2 = x1 / n_window, x2 / n_baseline
        lift = p1 / np.maximum(p2, 0.5 / n_baseline)
        rows.extend(
            {
                "dimension": dimension,
                "value": value,
                "window_count": int(w),
                "baseline_count": int(b),
                "window_share": float(s1),
                "baseline_share": float(s2),
                "lift": float(lf),
                "difference": float(s1 - s2),
                "p_value": float(p),
            }
            for value, w, b, s1, s2, lf, p in zip(
                values, x1, x2, p1, p2, lift, two_proportion_p(x1, n_window, x2, n_baseline), strict=True
            )
        )
    return rows


def _in_grouping_set(counts: pa.Table, dimension: str) -> np.ndarray:
    """The rows of the grouping set of `dimension` (its GROUPING() is 0)."""
    return arrays.ints(counts[f"g__{dimension}"]) == 0


def _population_mask(counts: pa.Table, period: str, problems_only: bool) -> np.ndarray:
    mask = arrays.texts(counts["period"]) == period
    return mask & (arrays.ints(counts["problem"]) == 1) if problems_only else mask


def _counts_by_value(column: pa.ChunkedArray, in_set: np.ndarray, lines: np.ndarray, in_window: np.ndarray,
                     in_baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dimension's values seen in either population (sorted) and their lines in the window's and in the baseline's
    (problem and other lines summed), over its grouping set's rows (`in_set`); NULL values are not contributors."""
    values = arrays.texts(column)
    keep = in_set & (in_window | in_baseline) & ~np.equal(values, None)
    keys, index = np.unique(values[keep], return_inverse=True)
    return (keys, np.bincount(index, weights=(lines * in_window)[keep], minlength=len(keys)),
            np.bincount(index, weights=(lines * in_baseline)[keep], minlength=len(keys)))


def two_proportion_p(x1: np.ndarray, n1: int, x2: np.ndarray, n2: int) -> np.ndarray:
    """One-sided p-value that proportion x1/n1 exceeds x2/n2 (pooled two-proportion z-test), element-wise."""
    pooled = (x1 + x2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (x1 / n1 - x2 / n2) / se, 0.0)
    return normal_sf(z)


def _contributors(
    rows: list[dict[str, Any]], populations: dict[str, Any], sql: str, limit: int
) -> tuple[list[Contributor], list[Evidence]]:
    over = [
        r for r in rows
        if r["p_value"] < MAX_P_VALUE and r["difference"] >= MIN_DIFFERENCE and r["window_count"] >= MIN_WINDOW_COUNT
    ]
    over.sort(key=lambda r: (-r["difference"], r["p_value"]))
    contributors, evidence = [], []
    first_with_counts: dict[tuple[int, int], str] = {}
    for row in over[:limit]:
        # the same lines under another name (a service's only version, a host's region): say so, keep both
        label = f"{row['dimension']}={row['value']}"
        alias = first_with_counts.setdefault((row["window_count"], row["baseline_count"]), label)
        row = {**row, "same_lines_as": alias if alias != label else None}
        item = Evidence.make(
            "contrast",
            f"{row['dimension']}={row['value']}: {row['window_share']:.0%} of {populations['window']} "
            f"vs {row['baseline_share']:.0%} of {populations['baseline']}",
            sql,
            {
                **row,
                "window_population": populations["window"],
                "window_total": populations["window_total"],
                "baseline_population": populations["baseline"],
                "baseline_total": populations["baseline_total"],
                "test": "one-sided two-proportion z-test (pooled)",
            },
        )
        evidence.append(item)
        contributors.append(Contributor(**row, evidence=item.id))
    return contributors, evidence

