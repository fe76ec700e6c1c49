"""The window's SQL time predicates, run in DuckDB."""

from __future__ import annotations

from datetime import datetime

import duckdb

from incidentlens.analysis.periods import in_span

SPAN = (datetime(2024, 5, 1, 2, 0), datetime(2024, 5, 1, 2, 30))


def _times_in(predicate: str) -> list[str]:
    rows = duckdb.sql(f"""SELECT strftime(ts, '%H:%M') AS at FROM (VALUES
        (TIMESTAMP '2024-05-01 01:59:59'), (TIMESTAMP '2024-05-01 02:00:00'), (TIMESTAMP '2024-05-01 02:30:00'))
        AS t(ts) WHERE {predicate} ORDER BY ts""").fetchall()
    return [at for (at,) in rows]


def test_a_span_holds_its_start_but_not_its_end() -> None:
    assert _times_in(in_span("ts", SPAN)) == ["02:00"]


def test_a_span_with_its_end_included_holds_the_sample_at_its_end() -> None:
    assert _times_in(in_span("ts", SPAN, end_included=True)) == ["02:00", "02:30"]
