"""A service's WARN/ERROR surge around a known onset, from a few minutes of logs as a user hands them over."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from incidentlens.analysis.shifts import SHIFT_THRESHOLD, log_surges, surge_z
from incidentlens.telemetry import load_telemetry

AT = datetime(2024, 5, 1, 10, 45, 10)  # the known onset, 10 s into a calendar minute
LOGS_FROM = datetime(2024, 5, 1, 10, 44, 0)
LOGS_TO = datetime(2024, 5, 1, 10, 47, 0)


def _store(tmp_path: Path, lines: list[tuple[datetime, str, str]], busier_from: datetime | None = None):
    """Each service logs an INFO line every 2 s from LOGS_FROM to LOGS_TO (every 0.5 s from `busier_from` on: four
    times the traffic), plus `lines` (time, service, level)."""
    rows: dict[str, list] = {"ts": [], "service": [], "level": [], "message": []}
    t = LOGS_FROM
    while t < LOGS_TO:
        for service in ("travel", "price", "verify"):
            rows["ts"].append(t), rows["service"].append(service), rows["level"].append("INFO")
            rows["message"].append("request served")
        t += timedelta(seconds=0.5 if busier_from and t >= busier_from else 2)
    for ts, service, level in lines:
        rows["ts"].append(ts), rows["service"].append(service), rows["level"].append(level)
        rows["message"].append(f"{level.lower()} while serving the request")
    path = tmp_path / "logs.parquet"
    pq.write_table(pa.table(rows), path)
    return load_telemetry(logs=[path])


def _surge(store, service: str):
    surges, _ = log_surges(store, (AT, LOGS_TO), (LOGS_FROM, AT))
    return next(s for s in surges if s.service == service)


def test_errors_that_begin_seconds_before_a_known_onset_in_its_minute_are_not_counted_as_baseline(tmp_path):
    """The errors start at 10:45:08 and run every 4 s; the onset given is 10:45:10. Counting calendar minutes would
    put the whole 10:45 minute, errors and all, into the baseline; minutes counted from the onset do not."""
    errors = [(AT - timedelta(seconds=2) + timedelta(seconds=4 * i), "travel", "ERROR") for i in range(28)]
    surge = _surge(_store(tmp_path, errors), "travel")
    assert surge.significant
    assert surge.baseline_per_minute <= 1.0 and surge.ratio >= 5


def test_a_surge_is_the_exact_test_of_two_rates_so_the_baseline_s_length_counts():
    """20 ERROR lines in 3 minutes after none: past chance after a quiet hour, not after a single quiet minute (the
    baseline's rate is itself only a guess then); a rate that held is no surge."""
    def z(window: int, baseline: int, baseline_minutes: int) -> float:
        return float(surge_z(np.array([window], float), 3, np.array([baseline], float), baseline_minutes)[0])

    assert z(20, 0, 60) > 10
    assert z(20, 0, 1) < SHIFT_THRESHOLD
    assert z(6, 120, 60) == 0.0  # 2 a minute before and after
    # the same doubling: past chance at 40 a minute, not at 2
    assert z(240, 2400, 60) > SHIFT_THRESHOLD > z(12, 120, 60)


def _warnings(every_s: float, start: datetime, end: datetime) -> list[tuple[datetime, str, str]]:
    """A WARN line of travel's every `every_s` seconds from `start` to `end`."""
    count = int((end - start).total_seconds() / every_s)
    return [(start + timedelta(seconds=every_s * i), "travel", "WARN") for i in range(count)]


def test_warnings_that_rise_with_the_traffic_are_no_surge(tmp_path):
    """Four times the requests from the onset, and a warning every 8th request line before and after: four times
    the warnings a minute, but no more of them per request. A surge is a rise in how often a service fails, so its
    ordinary lines are the exposure, as requests are an error rate's; the warnings' share rising with the same
    traffic is a surge."""
    steady_share = _warnings(16.0, LOGS_FROM, AT) + _warnings(4.0, AT, LOGS_TO)
    surge = _surge(_store(tmp_path, steady_share, busier_from=AT), "travel")
    assert surge.ratio >= 3 and not surge.significant

    (tmp_path / "more").mkdir()
    more_often = _warnings(16.0, LOGS_FROM, AT) + _warnings(1.0, AT, LOGS_TO)
    assert _surge(_store(tmp_path / "more", more_often, busier_from=AT), "travel").significant



def test_a_service_with_no_ordinary_line_before_is_tested_per_minute_alone(tmp_path):
    """A batch job logged only its errors before the onset, two in the 70 s the logs hold; from it, it logs its work
    too, and an error every 4 s. With no ordinary line before there is nothing to hold its traffic against (its share
    of problem lines cannot be compared), so the per-minute test stands alone: eight times the errors a minute is a
    surge."""
    before = [(LOGS_FROM + timedelta(seconds=60 * i), "batch", "ERROR") for i in range(2)]
    after = [(AT + timedelta(seconds=2 * i), "batch", "ERROR" if i % 2 else "INFO") for i in range(54)]
    surge = _surge(_store(tmp_path, before + after), "batch")
    assert surge.baseline_per_minute == pytest.approx(2 / (70 / 60), abs=1e-3)
    assert surge.ratio >= 8 and surge.significant


def test_a_window_counts_the_minutes_it_holds_and_no_line_at_its_end(tmp_path):
    """travel warns every 30 s from 5 minutes before the onset on, steadily: 2 a minute before and after. A window of
    3 whole minutes holds 6 warnings (a window's end is exclusive, so the warning stamped at its end is not in it); one
    of 3.5 minutes holds 7 in 3.5 minutes, its last minute in part: the same rate."""
    warnings = [(AT + timedelta(seconds=30 * i), "travel", "WARN") for i in range(-10, 12)]
    store = _store(tmp_path, warnings)
    baseline = (AT - timedelta(minutes=5), AT)

    def per_minute(window_minutes: float) -> float:
        surges, _ = log_surges(store, (AT, AT + timedelta(minutes=window_minutes)), baseline)
        (travel,) = (s for s in surges if s.service == "travel")
        assert travel.baseline_per_minute == 2.0
        return travel.window_per_minute

    assert per_minute(3) == 2.0
    assert per_minute(3.5) == 2.0


def test_logs_that_begin_seconds_before_the_onset_count_only_the_seconds_they_hold(tmp_path):
    """The log file begins 19 s before the onset (the metrics' hour began long before), and order warns every half
    second, steadily, before and after. The baseline holds 19 s of logs, not the minute around them: the same rate on
    both sides is no surge (counted as a whole minute, the 38 warnings before looked like a third of the rate)."""
    first = AT - timedelta(seconds=19)
    warnings = [first + timedelta(seconds=0.5 * i) for i in range(118)]  # to 40 s after the onset
    path = tmp_path / "logs.parquet"
    pq.write_table(pa.table({"ts": warnings, "service": ["order"] * len(warnings), "level": ["WARN"] * len(warnings),
                             "message": ["order not found"] * len(warnings)}), path)
    surges, _ = log_surges(load_telemetry(logs=[path]), (AT, AT + timedelta(seconds=40)), (AT - timedelta(hours=1), AT))
    (order,) = surges
    assert order.baseline_per_minute == pytest.approx(120, rel=0.03)
    assert order.ratio == pytest.approx(1, abs=0.05) and not order.significant
