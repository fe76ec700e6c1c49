"""Robustness the known-onset path leans on: the baseline smoother on long, mostly weighted-out series, and
mechanism cues whose evidence is the same whatever order the engine returns groups in."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from incidentlens.analysis.baseline import _whittaker
from incidentlens.analysis.mechanism import mechanism_cues


def test_a_stiff_smoother_over_a_long_mostly_weighted_out_series_stays_accurate():
    # 2000 points, 3 weighted, a penalty of 1e14: solved directly, the banded Cholesky fit was off by ~3600 on a
    # line (and at 1e16 it raised LinAlgError: not positive definite)
    x = np.arange(2000, dtype=float)
    weights = np.zeros(2000)
    weights[[10, 900, 1500]] = 1.0
    fit = _whittaker(2 * x + 1, weights, 1e14)
    assert np.allclose(fit, 2 * x + 1)


class _Rows:
    """A store double whose `fetch` returns the same groups in a given order."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def has(self, view: str) -> bool:
        return view == "logs"

    def fetch(self, sql: str) -> pa.Table:
        return pa.Table.from_pylist(self.rows)


def test_mechanism_cue_evidence_does_not_depend_on_the_engines_group_order():
    kinds = ("connection_pool_exhaustion", "cache_miss_storm", "oom_restart_loop", "provider_throttling",
             "cpu_saturation")
    rows = [{"service": name, "named": named, "problems": 5, **dict.fromkeys(kinds, 0)}
            for name, named in (("api", "db"), ("web", "db"), ("db", ""), ("cache", ""))]
    window = (datetime(2024, 5, 1, 10), datetime(2024, 5, 1, 10) + timedelta(hours=1))
    first, first_evidence = mechanism_cues(_Rows(rows), window, ["api", "web", "db", "cache"])
    second, second_evidence = mechanism_cues(_Rows(rows[::-1]), window, ["api", "web", "db", "cache"])
    assert first_evidence[0].id == second_evidence[0].id
    assert first.named == second.named
