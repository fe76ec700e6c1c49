"""Downsampled metric series for charts: one aggregate query, at most `max_points` buckets per series."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from incidentlens.analysis.periods import in_span, sql_in, sql_str
from incidentlens.telemetry import arrays, naive_utc, sql_ts


@dataclass(frozen=True)
class MetricSeries:
    """One `service/metric` series: bucket start times (datetime64[us], UTC) and the mean value per bucket."""

    name: str
    t: np.ndarray
    value: np.ndarray


def key_series(store: Any, names: Sequence[str], window: tuple[datetime, datetime],
               max_points: int = 240, pods: Mapping[str, str] | None = None) -> list[MetricSeries]:
    """The named `service/metric` series over `window`, averaged into at most `max_points` equal time buckets;
    `pods`: the one pod to read of a series whose service has several (the one that moved), by name.

    Series are returned in the order of `names`; a name the store does not hold is left out.
    """
    if not names or not store.has("metrics"):
        return []
    pinned = {name: pod for name, pod in (pods or {}).items() if name in names}
    only = "".join(f" AND (service || '/' || metric <> {sql_str(name)} OR pod = {sql_str(pod)})"
                   for name, pod in pinned.items())
    start, end = (naive_utc(w) for w in window)
    bucket_s = max(1, math.ceil((end - start).total_seconds() / max(1, max_points)))
    table = store.fetch(f"""
        SELECT service || '/' || metric AS name,
               time_bucket(INTERVAL '{bucket_s} seconds', ts, {sql_ts(start)}) AS t,
               avg(value) AS value
        FROM metrics
        WHERE {in_span('ts', (start, end))} AND value IS NOT NULL
          AND service || '/' || metric IN {sql_in(list(names))}{only}
        GROUP BY 1, 2
        ORDER BY 1, 2
    """)
    all_names = arrays.texts(table.column("name"))
    all_t = arrays.times(table.column("t"))
    all_values = arrays.floats(table.column("value"))
    present = set(np.unique(all_names).tolist())
    return [MetricSeries(name, all_t[all_names == name], all_values[all_names == name])
            for name in names if name in present]


def overview_names(store: Any, limit: int = 4) -> list[str]:
    """The series a reader checks first when nothing was found: error ratios/rates, then latencies, busiest first."""
    if not store.has("metrics"):
        return []
    table = store.fetch(f"""
        SELECT service || '/' || metric AS name,
               CASE WHEN regexp_matches(lower(metric), 'error|fail|5xx') THEN 0
                    WHEN regexp_matches(lower(metric), 'latency|p9[59]|duration') THEN 1 END AS rank,
               count(*) AS n
        FROM metrics
        WHERE regexp_matches(lower(metric), 'error|fail|5xx|latency|p9[59]|duration')
        GROUP BY 1, 2
        ORDER BY rank, n DESC, name
        LIMIT {int(limit)}
    """)
    return table.column("name").to_pylist()
