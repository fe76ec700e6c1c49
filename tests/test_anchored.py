"""The known-onset path: its window, and the robustness it leans on (the baseline smoother on long, mostly
weighted-out series; mechanism cues whose evidence is the same whatever order the engine returns groups in)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from incidentlens.analysis import analyze
from incidentlens.analysis.anchored import (
    WINDOW_RULE,
    incident_peak,
    known_onset_detection,
    known_periods,
    outside_data,
    window_end,
)
from incidentlens.analysis.baseline import _whittaker
from incidentlens.analysis.mechanism import mechanism_cues
from incidentlens.analysis.shifts import MetricShift
from incidentlens.report import build_postmortem, executive_summary
from incidentlens.report.build import SET_ASIDE_CHARS, source_lines
from incidentlens.report.formatting import minutes
from incidentlens.report.render_html import render_html
from incidentlens.report.render_markdown import render_markdown
from incidentlens.report.schema import Sources
from incidentlens.telemetry import load_telemetry


def test_a_stiff_smoother_over_a_long_mostly_weighted_out_series_stays_accurate():
    # 2000 points, 3 weighted, a penalty of 1e14: solved directly, the banded Cholesky fit was off by ~3600 on a
    # line (and at 1e16 it raised LinAlgError: not positive definite)
    x = np.arange(2000, dtype=float)
    weights = np.zeros(2000)
    weights[[10, 900, 1500]] = 1.0
    fit = _whittaker(2 * x + 1, weights, 1e14)
    assert np.allclose(fit, 2 * x + 1)


class _Spanning:
    """A store double holding data from 10:00 to 11:00."""

    def time_range(self) -> tuple[datetime, datetime]:
        return datetime(2024, 5, 1, 10), datetime(2024, 5, 1, 11)


def test_a_time_outside_the_data_is_said_with_the_datas_range_and_one_inside_it_is_not():
    assert outside_data(_Spanning(), datetime(2024, 5, 2), "--at") == (
        "--at 2024-05-02T00:00:00Z lies outside the data (2024-05-01T10:00:00Z .. 2024-05-01T11:00:00Z)")
    assert outside_data(_Spanning(), datetime(2024, 5, 1, 10), "--at") is None  # the ends are inside
    assert outside_data(_Spanning(), datetime(2024, 5, 1, 11), "--at") is None


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


def _metrics_and_logs(tmp_path, metrics: list[dict], logs: list[dict]):
    """A store of the metric and log records, written as JSON lines a user would give."""
    for name, records in (("metrics", metrics), ("logs", logs)):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return load_telemetry(metrics=tmp_path / "metrics.jsonl", logs=tmp_path / "logs.jsonl")


def _day_of_metrics_beside_three_minutes_of_logs(tmp_path):
    day = datetime(2024, 5, 1)
    metrics = [{"ts": (day + timedelta(minutes=m)).isoformat() + "Z", "service": "api", "metric": "latency_ms",
                "value": 20.0} for m in range(1440)]
    logs = [{"ts": (day + timedelta(hours=10, seconds=s)).isoformat() + "Z", "service": "api", "level": "INFO",
             "message": "request served"} for s in range(0, 180, 5)]
    return _metrics_and_logs(tmp_path, metrics, logs)


def test_an_alert_time_taken_as_the_start_keeps_the_stretch_every_source_covers(tmp_path):
    # the same files, 10:01 an alert time taken as the start: the window is the stretch every source covers
    store = _day_of_metrics_beside_three_minutes_of_logs(tmp_path)
    at = datetime(2024, 5, 1, 10, 1)

    window, _, _ = known_periods(store, at, given=False)
    # to the logs' last line at 10:02:55, and on to the metric sample taken at 10:03: it measures the minute before
    # it, all but 5 s of it covered by the logs
    assert window == (at, datetime(2024, 5, 1, 10, 3, 1))
    detection, *_ = known_onset_detection(store, at, undetected="no incident window")
    assert detection.window.end == window[1]
    assert detection.evidence[0].data["window_rule"] == WINDOW_RULE
    # named, not "the end of the data": the metrics run on for the rest of the day
    assert detection.evidence[0].data["window_end"] == (
        "the end of the logs, the shortest source, and the metric samples taken within half a step after it, which "
        "measure the stretch before them")


def _cpu_contention_beside_logs(tmp_path, at: datetime, logs_from: datetime, seconds: int):
    """Two hours of a pod's CPU sampled at :09 past each minute from 12:00, at 100% from a minute after `at`, beside
    a log line every 5 s for `seconds` from `logs_from`."""
    day = datetime(at.year, at.month, at.day)
    samples = [day + timedelta(hours=12, seconds=9) + timedelta(minutes=m) for m in range(120)]
    metrics = [{"ts": t.isoformat() + "Z", "service": "contacts", "metric": "cpu_percent",
                "value": 100.0 if t >= at + timedelta(minutes=1) else 1.0 + (t.minute % 3) / 10} for t in samples]
    logs = [{"ts": (logs_from + timedelta(seconds=s)).isoformat() + "Z", "service": "contacts", "level": "INFO",
             "message": "request served"} for s in range(0, seconds, 5)]
    return _metrics_and_logs(tmp_path, metrics, logs)


def test_a_metric_sample_taken_just_after_the_logs_end_is_in_the_window_and_one_taken_later_is_not(tmp_path):
    # Nezha's layout: a minute's log file ends at 13:33:00, the pod's CPU is sampled at 13:33:09 (the minute before
    # it, the first at its limit), and the sample at 13:34:09 measures a minute the logs do not cover
    day = datetime(2024, 5, 1)
    at = day + timedelta(hours=13, minutes=31, seconds=54)
    store = _cpu_contention_beside_logs(tmp_path, at, logs_from=day + timedelta(hours=13, minutes=30), seconds=180)

    detection, *_ = known_onset_detection(store, at, undetected="no incident window")
    assert detection.window.end == day + timedelta(hours=13, minutes=33, seconds=9 + 1)
    assert [s.series for s in detection.window.series] == ["contacts/cpu_percent"]
    assert detection.window.series[0].onset == day + timedelta(hours=13, minutes=33, seconds=9)
    # an alert time taken as the start a minute later: most of that sample's minute lies before it, so it says
    # nothing of a change after it, and the window ends with the logs
    window, _, _ = known_periods(store, at + timedelta(minutes=1), given=False)
    assert window[1] == day + timedelta(hours=13, minutes=32, seconds=55 + 1)


def test_a_given_start_holds_the_first_metric_sample_after_it_where_the_logs_end_too_soon_to_reach_one(tmp_path):
    # TrainTicket 13:31:54 handed over with the one minute file holding it: the logs end 6 s after the start, the
    # pod's CPU sampled at :09 is at 100% from 13:33:09 on, and the window held no sample measuring after the start
    day = datetime(2024, 5, 1)
    at = day + timedelta(hours=13, minutes=31, seconds=54)
    store = _cpu_contention_beside_logs(tmp_path, at, logs_from=day + timedelta(hours=13, minutes=31), seconds=61)

    detection, *_ = known_onset_detection(store, at)
    assert detection.window.end == day + timedelta(hours=13, minutes=33, seconds=9 + 1)
    assert [s.series for s in detection.window.series] == ["contacts/cpu_percent"]
    assert detection.evidence[0].data["window_end"] == (
        "the first metric sample that measures the time after the start: the logs end 6 s after the start and say "
        "nothing of the rest")
    # the same minute with the start an alert time: the stretch every source covers, and nothing in it moved
    alerted, *_ = known_onset_detection(store, at, undetected="no incident window")
    assert alerted.window.end == day + timedelta(hours=13, minutes=32, seconds=1)
    assert alerted.window.series == []


def test_hourly_metrics_beside_hours_of_logs_take_in_the_sample_closing_the_logs(tmp_path):
    # a day of hourly samples, logs from 09:00 to 11:50: the last hour before the logs end holds one sample of the
    # series, too few for a step, so the step is read from the day, and the 12:00 sample, measuring an hour the
    # logs cover all but 10 min of, closes the window
    day = datetime(2024, 5, 1)
    metrics = [{"ts": (day + timedelta(hours=h)).isoformat() + "Z", "service": "api", "metric": "cpu_percent",
                "value": 1.0} for h in range(24)]
    logs = [{"ts": (day + timedelta(hours=9, minutes=m)).isoformat() + "Z", "service": "api", "level": "INFO",
             "message": "request served"} for m in range(0, 171, 5)]
    store = _metrics_and_logs(tmp_path, metrics, logs)

    window, _, _ = known_periods(store, day + timedelta(hours=10, minutes=30), given=False)
    assert window[1] == day + timedelta(hours=12, seconds=1)


class _Ranges:
    """A store double with each source's (first, last) time."""

    def __init__(self, **ranges: tuple[datetime, datetime]) -> None:
        self.ranges = ranges

    def view_ranges(self) -> dict[str, tuple[datetime, datetime]]:
        return dict(self.ranges)

    def time_range(self) -> tuple[datetime, datetime]:
        return min(lo for lo, _ in self.ranges.values()), max(hi for _, hi in self.ranges.values())


def test_a_window_taking_in_a_closing_sample_names_only_the_shortest_source_as_its_end():
    # logs to 13:33:00, traces on to 13:33:05, the metrics' closing sample at 13:33:09: the traces are not a
    # shortest source, though they too end before the window does
    day, at = datetime(2024, 5, 1), datetime(2024, 5, 1, 13, 31, 54)
    store = _Ranges(metrics=(day, day + timedelta(hours=14)), logs=(day + timedelta(hours=13, minutes=30), day
                    + timedelta(hours=13, minutes=33)), spans=(day + timedelta(hours=13, minutes=30),
                                                               day + timedelta(hours=13, minutes=33, seconds=5)))
    window = (at, day + timedelta(hours=13, minutes=33, seconds=10))
    assert window_end(store, window, first_sample=None) == (
        "the end of the logs, the shortest source, and the metric samples taken within half a step after it, which "
        "measure the stretch before them")


DAY = datetime(2024, 5, 1)


def _metrics_day(tmp_path, minutes: int = 1440) -> Path:
    """A day's first `minutes` of one-minute metrics of one series that never moves past its noise."""
    metrics = [{"ts": (DAY + timedelta(minutes=m)).isoformat() + "Z", "service": "api", "metric": "latency_ms",
                "value": 20.0 + (m % 7)} for m in range(minutes)]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in metrics) + "\n")
    return path


def test_a_known_onset_window_over_metrics_alone_says_it_ends_after_five_samples(tmp_path):
    # a day of metrics alone, the start at 09:30: the window is five samples, not the rest of the day, and the
    # review's end of the examined window says so rather than "the end of the data"
    store = load_telemetry(metrics=_metrics_day(tmp_path))
    at = DAY + timedelta(hours=9, minutes=30)
    detection, *_ = known_onset_detection(store, at)
    assert detection.window.end == at + timedelta(minutes=5, seconds=1)
    assert detection.evidence[0].data["window_end"].startswith("5 metric samples after the start")
    pm = build_postmortem(analyze(store, at=at, onset="at"))
    assert "5 metric samples after the start" in pm.recovery.narrative.text
    assert "the end of the data" not in pm.recovery.narrative.text


def _logs_until(tmp_path, end: datetime) -> Path:
    """Log lines every 5 s from 10:00 to `end`, as a minute's export around an alert holds them."""
    start = DAY + timedelta(hours=10)
    logs = [{"ts": (start + timedelta(seconds=s)).isoformat() + "Z", "service": "api", "level": "INFO",
             "message": "request served"} for s in range(0, int((end - start).total_seconds()) + 1, 5)]
    path = tmp_path / "logs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in logs) + "\n")
    return path


def test_a_window_under_a_minute_is_stated_in_seconds_not_as_zero_minutes(tmp_path):
    # a day of metrics beside a minute of logs whose last line is 25 s after the given start at 10:00:15: the window
    # runs on to the metric sample at 10:01, the first to measure mostly the time after the start (the review said
    # "0 minutes examined" of such a window)
    at = DAY + timedelta(hours=10, seconds=15)
    store = load_telemetry(metrics=_metrics_day(tmp_path), logs=_logs_until(tmp_path, at + timedelta(seconds=25)))
    result = analyze(store, at=at, onset="at")
    assert 0 < result.impact["duration_minutes"] < 1
    pm = build_postmortem(result)
    assert "(46 s examined)" in pm.summary.text  # to the sample, and the second the window's end holds it
    assert ("the first metric sample that measures the time after the start: the logs end 25 s after the start "
            "and say nothing of the rest (46 s examined)") in pm.summary.text
    assert "0 minutes" not in pm.summary.text


def test_a_window_of_81_seconds_is_said_as_81_s_not_as_one_minute(tmp_path):
    # a given start 81 s before the logs' end: its length was rounded to whole minutes ("1 minute examined")
    at = DAY + timedelta(hours=10, seconds=45)
    store = load_telemetry(metrics=_metrics_day(tmp_path), logs=_logs_until(tmp_path, at + timedelta(seconds=82)))
    pm = build_postmortem(analyze(store, at=at, onset="at"))
    assert "the end of the logs, the shortest source (81 s examined)" in pm.summary.text
    assert "1 minute" not in pm.summary.text
    assert render_markdown(pm).count("| **Examined (start given)** | 81 s |") == 1


def test_durations_under_two_minutes_are_in_seconds_and_longer_ones_in_minutes():
    assert [minutes(m) for m in (0.4, 1.0, 83 / 60, 2.0, 29.6, 144.0)] == [
        "24 s", "60 s", "83 s", "2 minutes", "29.6 minutes", "144 minutes"]
    assert [minutes(m, short=True) for m in (83 / 60, 2.5, 144.0)] == ["83 s", "2.5 min", "2h 24m"]


def test_a_window_holding_one_sample_of_each_metric_says_so(tmp_path):
    # TrainTicket 10:56:45 with its one minute file: 24 s after the start held one sample of each one-minute series,
    # and nothing said that a metric's shift rested on one value
    at = DAY + timedelta(hours=10, seconds=15)
    note = "one sample of each metric series in the window: a metric's shift there rests on one value"
    for logs_after, said in ((timedelta(seconds=25), True), (timedelta(minutes=2), False)):
        store = load_telemetry(metrics=_metrics_day(tmp_path), logs=_logs_until(tmp_path, at + logs_after))
        assert (note in analyze(store, at=at, onset="at").sources["notes"]) is said


def test_a_day_of_call_metrics_ending_before_the_metrics_still_bounds_the_window_at_five_samples(tmp_path):
    # a mesh's call latency for the day, its last minute read a second before the metrics' (OnlineBoutique's
    # files): the calls are the shortest source, and a day of them is no more the incident's than a day of metrics
    calls = [{"ts": (DAY + timedelta(minutes=m, seconds=-1)).isoformat() + "Z", "caller": "api", "callee": "db",
              "side": side, "latency_ms": 5.0 + (m % 3)} for m in range(1, 1440) for side in ("client", "server")]
    (tmp_path / "calls.jsonl").write_text("\n".join(json.dumps(r) for r in calls) + "\n")
    store = load_telemetry(metrics=_metrics_day(tmp_path), calls=tmp_path / "calls.jsonl")
    at = DAY + timedelta(hours=9, minutes=30)
    window, _, _ = known_periods(store, at)
    assert window == (at, at + timedelta(minutes=5, seconds=1))


def test_a_start_at_the_datas_second_sample_still_bounds_the_window_at_five_samples(tmp_path):
    # one sample before the start gives no step to read there: the series' step after it bounds the window
    store = load_telemetry(metrics=_metrics_day(tmp_path))
    at = DAY + timedelta(minutes=1)
    window, _, _ = known_periods(store, at)
    assert window == (at, at + timedelta(minutes=5, seconds=1))


def _shift(metric: str, peak_shift: float, peak_at: datetime, **flags: str) -> MetricShift:
    return MetricShift(service="api", metric=metric, direction="up", baseline=1.0, window_median=2.0, peak=3.0,
                       peak_at=peak_at, shift=peak_shift / 2, peak_shift=peak_shift, onset=peak_at, evidence="e",
                       **flags)


def test_the_incident_peaks_when_a_series_the_traces_bear_out_peaked():
    # TrainTicket 08:52: the peak was a client's p99 at 286 s, whose 60 traced calls took at most 4.31 ms
    at = datetime(2024, 5, 1, 10)
    cpu = _shift("cpu", 8.0, at + timedelta(minutes=3))
    contradicted = _shift("ClientLatencyP99(s)", 900.0, at + timedelta(minutes=1),
                          not_borne_out="its 60 traced calls took at most 4.31 ms")
    uncovered = _shift("ClientLatencyP90(s)", 400.0, at + timedelta(minutes=2), unchecked="no traced call covers it")
    assert incident_peak([contradicted, uncovered, cpu]) == at + timedelta(minutes=3)
    assert incident_peak([contradicted, uncovered]) == at + timedelta(minutes=2)
    assert incident_peak([contradicted]) == at + timedelta(minutes=1)
    assert incident_peak([]) is None


def test_a_window_ending_within_a_second_is_written_to_the_next_whole_second(tmp_path):
    # the last log line at 10:00:20.457: the window ends one step past it, 10:00:21.457, and analysis.json wrote
    # 10:00:21, cut to the second, an end before the metric sample at 10:00:21 that the window holds
    last = DAY + timedelta(hours=10, seconds=20, milliseconds=457)
    logs = [{"ts": t.isoformat() + "Z", "service": "api", "level": "INFO", "message": "request served"}
            for t in (DAY + timedelta(hours=10), last)]
    (tmp_path / "logs.jsonl").write_text("\n".join(json.dumps(r) for r in logs) + "\n")
    metrics = [{"ts": (DAY + timedelta(hours=10, seconds=s)).isoformat() + "Z", "service": "api",
                "metric": "latency_ms", "value": 20.0} for s in range(0, 30, 3)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in metrics) + "\n")
    store = load_telemetry(metrics=tmp_path / "metrics.jsonl", logs=tmp_path / "logs.jsonl")

    result = analyze(store, at=DAY + timedelta(hours=10, seconds=5), onset="at")
    written = result.to_dict()

    assert written["incident_window"] == {"start": "2024-05-01T10:00:05Z", "end": "2024-05-01T10:00:22Z"}
    detection = next(e for e in written["evidence"] if e["kind"] == "detection")
    assert detection["data"]["window"]["end"] == "2024-05-01T10:00:22Z"
    # and its length is that of the window written: it said "10:00:05 to 10:00:22 (16 s examined)", 16.457 s
    assert written["impact"]["duration_minutes"] == round(17 / 60, 3)
    assert "to 2024-05-01 10:00:22 UTC (17 s examined)" in executive_summary(build_postmortem(result))[1]


def test_the_review_lists_the_sources_read_and_what_they_lacked(tmp_path):
    # logs that end before the given start and a metric value that is not a number: analyze printed "note: no logs
    # for this period" and the value set aside, and the review said neither (a missing source read as a quiet one)
    at = DAY + timedelta(hours=10, seconds=45)
    values = [f"{(DAY + timedelta(minutes=m)).isoformat()}Z,api,latency_ms,{'n/a' if m == 7 else 20 + m % 7}"
              for m in range(720)]
    (tmp_path / "metrics.csv").write_text("\n".join(["ts,service,metric,value", *values]) + "\n")
    store = load_telemetry(metrics=tmp_path / "metrics.csv", logs=_logs_until(tmp_path, at - timedelta(seconds=10)))
    pm = build_postmortem(analyze(store, at=at, onset="at"))

    assert pm.to_dict()["sources"]["missing"] == ["logs", "traces"]
    sources = render_markdown(pm).split("## Sources\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert sources == [
        "- Read: metrics (5 rows in the window, 601 in the baseline)",
        "- no logs for this period",
        "- no traces for this period",
        "- set aside when read: metrics.csv: column 'value': 1 row not numeric, kept as NULL",  # the path: report.json
    ]
    assert "<li>no logs for this period</li>" in render_html(pm)


def test_a_review_of_no_incident_lists_the_sources_read_and_what_was_set_aside(tmp_path):
    # a quiet day with a value that is not a number: the review of "no incident" had no Sources section, so the
    # value set aside at load, and that no logs or traces were read, went unsaid
    values = [f"{(DAY + timedelta(minutes=m)).isoformat()}Z,api,latency_ms,{'n/a' if m == 7 else 20 + m % 7}"
              for m in range(720)]
    (tmp_path / "metrics.csv").write_text("\n".join(["ts,service,metric,value", *values]) + "\n")
    pm = build_postmortem(analyze(load_telemetry(metrics=tmp_path / "metrics.csv")))

    assert not pm.detected
    assert pm.to_dict()["sources"]["missing"] == ["logs", "traces"]
    sources = render_markdown(pm).split("## Sources\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert sources == [
        "- Read: metrics",  # no window to count its rows in
        "- no logs in the data read",
        "- no traces in the data read",
        "- set aside when read: metrics.csv: column 'value': 1 row not numeric, kept as NULL",  # the path: report.json
    ]
    assert "<li>no logs in the data read</li>" in render_html(pm)


def test_a_review_of_no_incident_over_logs_with_no_time_says_they_were_read_but_held_no_time(tmp_path):
    # a plain-text log in no known line format: read (its templates work), but no line has a time; the review of
    # no incident said "no logs in the data read" and "no source had a row in the window", with no window at all
    (tmp_path / "app.log").write_text("hello world\nsomething failed\nanother line\n")
    pm = build_postmortem(analyze(load_telemetry(logs=tmp_path / "app.log")))

    sources = render_markdown(pm).split("## Sources\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert sources[:4] == [
        "- Read: no source had a row with a time",
        "- no metrics in the data read",
        "- no logs with a time in the data read",
        "- no traces in the data read",
    ]


def test_closing_samples_of_series_sampled_at_different_seconds_come_in_only_with_half_a_step_after_the_start(
        tmp_path):
    # two series sampled at :05 and :25, logs ending 13:33:00: a start 10 s before the logs end takes in neither
    # (series a's 13:33:05 sample measures mostly the 50 s before the start), one 70 s before takes in both
    day = datetime(2024, 5, 1)
    metrics = [{"ts": (day + timedelta(hours=12, minutes=m, seconds=offset)).isoformat() + "Z", "service": name,
                "metric": "cpu_percent", "value": 1.0} for m in range(120) for name, offset in (("a", 5), ("b", 25))]
    logs = [{"ts": (day + timedelta(hours=13, minutes=30, seconds=s)).isoformat() + "Z", "service": "a",
             "level": "INFO", "message": "request served"} for s in range(0, 181, 5)]
    store = _metrics_and_logs(tmp_path, metrics, logs)
    logs_end = day + timedelta(hours=13, minutes=33)

    late, _, _ = known_periods(store, logs_end - timedelta(seconds=10), given=False)
    assert late[1] == logs_end + timedelta(seconds=1)
    early, _, _ = known_periods(store, logs_end - timedelta(seconds=70), given=False)
    assert early[1] == logs_end + timedelta(seconds=25 + 1)


def test_a_review_of_nothing_moved_after_an_alert_counts_the_rows_after_it_not_merely_the_sources_given(tmp_path):
    # logs that end before the alert: "no logs in the data read" would be wrong (they were read); what the review
    # must say is that none lie after the alert, where nothing moved
    at = DAY + timedelta(hours=10, minutes=30)
    store = load_telemetry(metrics=_metrics_day(tmp_path), logs=_logs_until(tmp_path, at - timedelta(minutes=20)))
    pm = build_postmortem(analyze(store, at=at))

    assert not pm.detected and "nothing moved after it" in pm.reason
    sources = pm.to_dict()["sources"]
    assert sources["used"] == ["metrics"] and sources["missing"] == ["logs", "traces"]
    assert sources["rows"]["metrics"]["window_rows"] == 6 and sources["rows"]["logs"]["window_rows"] == 0  # 10:30-10:35
    assert "no logs for this period" in sources["notes"]
    assert "no logs in the data read" not in sources["notes"]


def test_the_sources_section_says_at_most_five_set_aside_notes_each_short_with_its_file_by_name():
    # Nezha's day of metrics: six notes like "/work/shared/datasets/nezha-trainticket/rca_data/2023-01-29/metric/
    # ts-admin-basic-info-service-5f55b6cf68-77cfw_metric.csv (and 45 more): column 'PodServerLatencyP90(s)': 13180
    # values not finite ...", each over 250 characters; a bad time's note quotes the value, however long
    folder = "/work/shared/datasets/nezha-trainticket/rca_data/2023-01-29/metric"
    notes = [f"{folder}/ts-admin-basic-info-service-5f55b6cf68-77cfw_metric.csv (and 45 more): column 'P{n}(s)': "
             f"{n} rows not finite (NaN, Infinity or beyond +-1e+150), kept as NULL" for n in range(6)]
    notes[1] = f"{folder}/a.csv: column 'ts': 3 rows with a bad time left out; the first, row 4: '{'9' * 500}'"
    pm = SimpleNamespace(sources=Sources(used=["metrics"], left_out=notes))

    lines = source_lines(pm)

    assert lines[1] == ("set aside when read: ts-admin-basic-info-service-5f55b6cf68-77cfw_metric.csv (and 45 more): "
                        "column 'P0(s)': 0 rows not finite (NaN, Infinity or beyond +-1e+150), kept as NULL")
    assert lines[2].startswith("set aside when read: a.csv: column 'ts': 3 rows with a bad time left out; the first, "
                               "row 4: '999")
    assert len(lines[2]) <= SET_ASIDE_CHARS + len("set aside when read: ") and lines[2].endswith("…")
    assert lines[6:] == ["1 more note of what was set aside when read: report.json's sources.left_out lists them all"]


def test_the_sources_section_says_names_read_as_one_service_s_as_read_not_set_aside():
    # OnlineBoutique's front-end metric file with the per-pod files: "set aside when read: service names that differ
    # only in case, read as one service's: Frontend as frontend", where nothing was set aside
    notes = ["service names that differ only in case, read as one service's: Frontend as frontend",
             "metrics.csv: column 'value': 1 row not numeric, kept as NULL"]
    lines = source_lines(SimpleNamespace(sources=Sources(used=["metrics"], left_out=notes)))
    assert lines[1:] == [f"when read: {notes[0]}", f"set aside when read: {notes[1]}"]


def test_a_window_between_two_metric_samples_says_it_holds_none_not_that_nothing_moved(tmp_path):
    # 20 s of logs from a given start at 10:00:05, beside one-minute metrics exported up to 10:00: no metric sample
    # falls in the window, and the charts said "The metrics hold none of the series that moved", as if the metrics
    # had been seen quiet
    at = DAY + timedelta(hours=10, seconds=5)
    store = load_telemetry(metrics=_metrics_day(tmp_path, minutes=601),
                           logs=_logs_until(tmp_path, at + timedelta(seconds=20)))
    html = render_html(build_postmortem(analyze(store, at=at, onset="at")), store)
    assert ("No metric samples in the window (metrics every 60 s): the metrics cannot show whether anything moved "
            "in it.") in html
    assert "none of the series that moved" not in html


def test_a_minute_of_logs_missing_across_the_given_start_is_said_among_the_sources(tmp_path):
    # OnlineBoutique's 14_12 and 14_14 trace minutes given without 14_13: the window's rows were counted, and
    # nothing said that its first 35 s held none
    at = DAY + timedelta(hours=10, minutes=1, seconds=25)
    lines = [{"ts": (DAY + timedelta(hours=10, seconds=s)).isoformat() + "Z", "service": "api", "level": "INFO",
              "message": "request served"} for s in [*range(0, 60, 5), *range(120, 180, 5)]]  # no 10:01 minute
    (tmp_path / "logs.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    store = load_telemetry(metrics=_metrics_day(tmp_path), logs=tmp_path / "logs.jsonl")
    pm = build_postmortem(analyze(store, at=at, onset="at"))

    said = ("no logs from 2024-05-01T10:00:55Z to 2024-05-01T10:02:00Z (65 s, across the start): none in the "
            "window's first 35 s")
    assert said in pm.to_dict()["sources"]["notes"]
    assert f"- {said}" in render_markdown(pm).split("## Sources\n", 1)[1]


def test_a_stretch_of_the_window_without_logs_is_said_among_the_sources(tmp_path):
    # an export with 15 minutes missing in the middle: the window's rows were counted, and nothing said that half
    # of it held none
    at, end = DAY + timedelta(hours=10), DAY + timedelta(hours=10, minutes=30)
    kept = [DAY + timedelta(hours=9, seconds=s) for s in range(0, 3600 + 600, 5)]
    kept += [DAY + timedelta(hours=10, seconds=s) for s in range(1500, 1800, 5)] + [end]
    lines = [{"ts": moment.isoformat() + "Z", "service": "api", "level": "INFO", "message": "request served"}
             for moment in kept]
    (tmp_path / "logs.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    store = load_telemetry(metrics=_metrics_day(tmp_path), logs=tmp_path / "logs.jsonl")

    notes = analyze(store, at=at, onset="at").to_dict()["sources"]["notes"]

    assert "no logs from 2024-05-01T10:09:55Z to 2024-05-01T10:25:00Z (905 s, inside the window)" in notes


def test_logs_that_stop_before_a_detected_window_ends_say_so(tmp_path):
    # a day of metrics with 30 minutes of latency up from 10:00, logs exported until 10:20
    metrics = [{"ts": (DAY + timedelta(minutes=m)).isoformat() + "Z", "service": "api", "metric": "latency_ms",
                "value": 20.0 + (m % 7) + (400 if 600 <= m < 630 else 0)} for m in range(1440)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in metrics) + "\n")
    lines = [{"ts": (DAY + timedelta(hours=7, seconds=s)).isoformat() + "Z", "service": "api", "level": "INFO",
              "message": "request served"} for s in range(0, 3 * 3600 + 1200, 5)]
    (tmp_path / "logs.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    store = load_telemetry(metrics=tmp_path / "metrics.jsonl", logs=tmp_path / "logs.jsonl")

    result = analyze(store).to_dict()

    assert result["incident_window"] == {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T10:30:00Z"}
    assert "no logs from 2024-05-01T10:19:55Z to the window's end, 2024-05-01T10:30:00Z (605 s)" in (
        result["sources"]["notes"])


def test_logs_sparser_than_a_minute_throughout_add_no_hole_note(tmp_path):
    # a quiet service logging every 3 minutes: its gaps are its rhythm, not a hole
    at, end = DAY + timedelta(hours=10), DAY + timedelta(hours=10, minutes=30)
    lines = [{"ts": (DAY + timedelta(hours=9, minutes=m)).isoformat() + "Z", "service": "api", "level": "INFO",
              "message": "heartbeat"} for m in range(0, 91, 3)]
    (tmp_path / "logs.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    store = load_telemetry(metrics=_metrics_day(tmp_path), logs=tmp_path / "logs.jsonl")

    notes = analyze(store, at=at, onset="at").to_dict()["sources"]["notes"]

    assert not any(note.startswith("no logs from") for note in notes), (notes, end)


def test_logs_with_no_hole_across_the_start_add_no_note(tmp_path):
    at = DAY + timedelta(hours=10, minutes=1, seconds=25)
    store = load_telemetry(metrics=_metrics_day(tmp_path), logs=_logs_until(tmp_path, at + timedelta(minutes=1)))
    notes = analyze(store, at=at, onset="at").to_dict()["sources"]["notes"]
    assert not any("across the start" in note for note in notes)
