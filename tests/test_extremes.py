from __future__ import annotations

import math

import numpy as np

from incidentlens.analysis.extremes import block_tail, blocks_of, pareto_bar

START = np.datetime64("2024-05-01T00:00", "ns")


def test_the_pareto_bar_of_an_exponential_tail_is_its_quantile():
    values = np.sort(np.random.default_rng(1).exponential(1.0, 20_000))
    top = values[-1001:]  # the largest 5% and the threshold under them
    bar = pareto_bar(top[1:] - top[0], float(top[0]), len(values), probability=1e-4)
    assert abs(bar - math.log(1e4)) < 0.6  # 9.2: the exponential's 1-in-10,000 value


def test_hours_the_series_often_reaches_raise_its_bar():
    t = START + np.arange(24 * 20 * 12).astype("timedelta64[m]") * 5  # 20 days of five-minute points
    blocks = blocks_of(t.astype(np.int64), 300 * 10**9, alarms_per_day=0.3)
    score = np.random.default_rng(2).normal(0, 1, len(t))
    assert 3 < block_tail(blocks, score, skip=0).bar(0, 11) < 5  # the noise's own tail
    for hour in range(10, 480, 40):  # an hour at 8 a day and a half apart
        score[hour * 12:(hour + 1) * 12] += 8
    often = block_tail(blocks, score, skip=0)
    assert often.bar(0, 11) > 7
    assert often.bar(10 * 12, 10 * 12 + 11) > 7  # one of those hours, left out of its own fit, still meets them


def test_daily_steps_and_short_series_have_no_tail():
    days = START + np.arange(400).astype("timedelta64[D]")
    assert blocks_of(days.astype(np.int64), 86_400 * 10**9, alarms_per_day=0.3) is None
    week_of_hours = START + np.arange(24 * 7).astype("timedelta64[h]")
    assert blocks_of(week_of_hours.astype(np.int64), 3_600 * 10**9, alarms_per_day=0.3) is None
