"""Detection rules in time: the same incident at any sampling step, every incident listed, and the closest miss
when nothing qualifies."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from incidentlens.analysis import analyze
from incidentlens.analysis.detection import (
    detect,
    detect_points,
    lag_one_correlation,
    mean_sd,
    settings_for,
    window_mean_spread,
)
from incidentlens.cli import app
from incidentlens.errors import InputError
from incidentlens.report import build_postmortem
from incidentlens.telemetry import load_telemetry

START = np.datetime64("2024-05-01T00:00", "ns")
STEPS = {"10 s": 10, "1 min": 60, "5 min": 300, "1 h": 3600, "1 day": 86400}


def incident_series(seed: int = 1, n: int = 2000) -> np.ndarray:
    """Noise around a slow drift, and a 40-step shift of 8 sigma at step 1200."""
    rng = np.random.default_rng(seed)
    y = 50 + 5 * np.sin(np.arange(n) * 2 * np.pi / 5000) + rng.normal(0, 1, n)
    y[1200:1240] += 8
    return y


def hourly_days(seed: int, *shifts: tuple[int, int, float]) -> tuple[np.ndarray, np.ndarray]:
    """Eight weeks of hourly values: a daily cycle, noise of σ 3, and shifts (start hour, end hour, by)."""
    rng = np.random.default_rng(seed)
    hours = np.arange(1344)
    values = 100 + 20 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 3, len(hours))
    for start, stop, by in shifts:
        values[start:stop] += by
    return START + hours * np.timedelta64(1, "h"), values


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_few_hours_held_near_4_sigma_are_an_event_though_no_single_hour_need_pass_the_bar(seed):
    # three events of 4-6 hours at about 4 σ: a single hour of one may stay under the 4.7 σ bar of 1,344 points,
    # but the mean of 2 or 4 hours is far past it (the scan evidence); an event seen before does not hide the next
    events = [(300, 305), (700, 704), (1100, 1106)]
    ts, values = hourly_days(seed, *((a, b, 12.5) for a, b in events))
    found = detect_points(ts, values)
    for a, b in events:
        assert any(a <= span.start < b for span in found.spans), (a, [span.start for span in found.spans])
    assert all(span.evidence > abs(span.shift) for span in found.spans)


def test_the_same_level_for_one_hour_is_not_an_event():
    ts, values = hourly_days(1, (700, 701, 12.5))
    assert not any(span.start <= 700 <= span.end for span in detect_points(ts, values).spans)


@pytest.mark.parametrize("label", list(STEPS))
def test_the_same_incident_is_found_at_every_sampling_step(label):
    step = np.timedelta64(STEPS[label], "s")
    ts = START + np.arange(2000) * step
    found = detect_points(ts, incident_series())
    assert [(s.start, s.end) for s in found.spans] == [(1200, 1239)], label


@pytest.mark.parametrize("label", ["1 min", "1 h", "1 day"])
def test_irregular_sampling_and_gaps_do_not_move_the_incident(label):
    step = STEPS[label]
    rng = np.random.default_rng(3)
    jitter = rng.uniform(-0.2, 0.2, 2000) * step  # samples up to a fifth of a step early or late
    ts = START + ((np.arange(2000) * step + jitter) * 1e9).astype("timedelta64[ns]")
    keep = np.ones(2000, dtype=bool)
    keep[400:460] = False  # a hole of 60 steps before the incident
    keep[1215] = False  # and one missing sample inside it
    found = detect_points(ts[keep], incident_series()[keep])
    assert found.series.gaps == 1
    assert len(found.spans) == 1
    span = found.spans[0]
    assert (found.series.t[span.start], found.series.t[span.end]) == (ts[1200], ts[1239])


def test_a_blip_shorter_than_five_minutes_is_not_an_incident_at_fine_steps_but_one_step_is_at_coarse_ones():
    y = incident_series()
    y[1200:1240] -= 8
    y[1200:1220] += 12  # 20 steps at 12 sigma
    fine = detect_points(START + np.arange(2000) * np.timedelta64(10, "s"), y)  # 200 s
    hourly = detect_points(START + np.arange(2000) * np.timedelta64(1, "h"), y)  # 20 h
    assert fine.spans == [] and "under the 5 min a window needs" in fine.near_miss.why
    assert [(s.start, s.end) for s in hourly.spans] == [(1200, 1219)]



def shifted_month(seed: int, per_day: int, by: float) -> tuple[np.ndarray, np.ndarray]:
    """A month at `per_day` steps a day: a daily cycle, noise of σ 1, and the level `by` higher on days 18-21."""
    rng = np.random.default_rng(seed)
    steps = np.arange(30 * per_day)
    values = 50 + 10 * np.sin(2 * np.pi * steps / per_day) + rng.normal(0, 1, len(steps))
    values[18 * per_day:22 * per_day] += by
    return START + steps * np.timedelta64(86400 // per_day, "s"), values


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("per_day", "by"), [(288, 2.0), (24, 3.0)])
def test_a_level_held_for_days_is_found_at_its_change_point_though_the_baseline_follows_it(seed, per_day, by):
    # four days 2 σ higher at 5-minute steps (3 σ at hourly ones): the baseline takes the new level for its own
    # within hours, so no point stands out for long; the median of the day after against the day before does
    ts, values = shifted_month(seed, per_day, by)
    change = START + np.timedelta64(18, "D")
    found = detect_points(ts, values)
    onsets = [found.series.t[s.start] for s in found.spans if s.direction == "up"]
    assert any(abs(onset - change) <= np.timedelta64(4, "h") for onset in onsets), onsets
    if per_day == 288:  # the day's median is what finds it: without it, nothing at 5-minute steps
        without = detect_points(ts, values, settings=replace(settings_for(None), shift_periods=()))
        assert without.spans == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_return_to_the_level_before_is_the_shift_s_recovery_not_a_second_incident(seed):
    ts, values = shifted_month(seed, 288, 2.0)
    found = detect_points(ts, values)
    assert len(found.spans) == 1 and found.spans[0].direction == "up"
    span = found.spans[0]  # the level before and after the change
    assert span.baseline == pytest.approx(50, abs=0.3) and span.peak_value == pytest.approx(52, abs=0.3)


@pytest.mark.parametrize("per_day", [288, 24, 1])
def test_a_month_without_a_shift_opens_no_window_from_the_day_s_median(per_day):
    for seed in (3, 4, 5):
        ts, values = shifted_month(seed, per_day, 0.0)
        assert detect_points(ts, values).spans == []


def raised(seed: int, hours: np.ndarray, from_day: int = 18, until_day: int = 99) -> tuple[np.ndarray, np.ndarray]:
    """Values at `hours` since START: a daily cycle, noise of σ 1, and the level 3 higher from `from_day` until
    `until_day` (by default to the end of the data)."""
    rng = np.random.default_rng(seed)
    higher = (hours >= from_day * 24) & (hours < until_day * 24)
    values = 50 + 10 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, len(hours)) + 3.0 * higher
    return START + (hours * 3600).astype("timedelta64[s]"), values


def write_series(path: Path, ts: np.ndarray, values: np.ndarray) -> Path:
    pacsv.write_csv(pa.table({"ts": ts, "service": ["api"] * len(ts), "metric": ["latency_ms"] * len(ts),
                              "value": values}), path)
    return path


def test_a_level_still_held_when_the_data_ends_is_an_incident_under_way_not_a_recovered_one(tmp_path):
    # a month of hours, 3 σ higher from day 18 to the last hour: the window was one day long ("recovered" on day
    # 19, with the level still up to the end of the data); it now runs to the end of the data
    ts, values = raised(2, np.arange(30 * 24))
    store = load_telemetry(metrics=str(write_series(tmp_path / "m.csv", ts, values)))
    window = detect(store).window
    assert abs(np.datetime64(window.start) - (START + np.timedelta64(18, "D"))) <= np.timedelta64(4, "h")
    assert np.datetime64(window.end) == ts[-1] + np.timedelta64(1, "h")  # one step past the last sample
    pm = build_postmortem(analyze(store))
    assert pm.recovery.recovered_at is None
    assert "still under way when the data ends" in pm.recovery.narrative.text
    assert "lasted at least" in pm.impact.narrative.text


@pytest.mark.parametrize("seed", [2, 3, 6])
def test_at_inside_a_held_level_and_a_later_incident_takes_the_incident_not_the_level(tmp_path, seed):
    # a level held from day 18 to the end, and three hours far higher on day 24: --at in those hours lies in both
    # windows, and the one an on-call engineer asks about is the shorter, the incident inside the level
    hours = np.arange(30 * 24)
    ts, values = raised(seed, hours)
    values[(hours >= 24 * 24) & (hours < 24 * 24 + 3)] += 15
    store = load_telemetry(metrics=str(write_series(tmp_path / "m.csv", ts, values)))
    day_24 = datetime(2024, 5, 25)
    level = next(w for w in detect(store).windows if w.start < day_24 - timedelta(days=5))
    assert level.end > day_24 + timedelta(days=5)  # held to the end of the data, so it contains --at
    chosen = detect(store, at=day_24 + timedelta(hours=1))
    assert (chosen.window.start, chosen.window.end) == (day_24, day_24 + timedelta(hours=3))
    assert chosen.evidence[0].data["chosen_by"] == "the window containing --at 2024-05-25T01:00:00Z"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_level_that_returns_ends_its_window_where_it_returns(seed):
    # 3 σ higher on days 18-21 (hourly) and back on day 22: the window ends at the return (within the hours a
    # change point of 3 σ at hourly steps can miss by), not a day after the change point, nor at the end of the data
    ts, values = raised(seed, np.arange(30 * 24), until_day=22)
    found = detect_points(ts, values)
    shift = next(span for span in found.spans if span.held_end is not None)
    assert abs(found.series.t[shift.held_end] - (START + np.timedelta64(22, "D"))) <= np.timedelta64(6, "h")
    assert not any(span.direction == "down" for span in found.spans)  # the return is no incident of its own


@pytest.mark.parametrize("seed", [1, 3, 6])
def test_a_day_is_a_day_of_time_on_a_series_sampled_coarser_in_its_past(seed):
    # hourly for 24 days (history kept coarse), then every 5 minutes for 4: the series' step is 5 minutes, so a
    # day counted in steps (288) was 12 days of its hourly part, and a spike 4 days after a level shift fell in
    # the shift's "day" and hid it; a day of time keeps both
    hours = np.concatenate((np.arange(24 * 24), 24 * 24 + np.arange(4 * 288) / 12))
    ts, values = raised(seed, hours, from_day=12)
    values[(hours >= 16 * 24) & (hours < 16 * 24 + 2)] += 15  # two hours on day 16
    found = detect_points(ts, values)
    onsets = [(found.series.t[s.start] - (START + np.timedelta64(12, "D"))) / np.timedelta64(1, "h")
              for s in found.spans if s.direction == "up"]
    assert any(abs(onset) <= 12 for onset in onsets) and 96 in onsets, onsets


def test_a_level_that_rose_during_a_gap_opens_no_shift_down_from_the_few_points_before_the_gap():
    # hourly, 3 σ higher from hour 270, in a gap from hour 240 to 300: the day before the gap's start holds 4 points
    # and 20 hours interpolated from the last of them; a median of 4 noisy points is no median of 24, and read as
    # one it opened a level shift down at hour 236, held to the end of the data (seed 2, strength 7.8)
    hours = np.concatenate((np.arange(240), 300 + np.arange(240)))
    ts, values = raised(2, hours, from_day=270 / 24)
    shifts = [span for span in detect_points(ts, values).spans if span.held_end is not None]
    assert all(span.direction == "up" for span in shifts), [(hours[s.start], s.direction) for s in shifts]


DAY = datetime(2024, 5, 1)


def write_day(path: Path, series: dict[str, np.ndarray]) -> Path:
    """`service/metric -> values`, one value a minute from DAY, as a long csv."""
    ts = np.datetime64(DAY, "s") + np.arange(1440).astype("timedelta64[m]")
    parts = [pa.table({"ts": ts, "service": [name.split("/")[0]] * 1440, "metric": [name.split("/")[1]] * 1440,
                       "value": values}) for name, values in series.items()]
    pacsv.write_csv(pa.concat_tables(parts), path)
    return path


def day_of(seed: int, *shifts: tuple[int, int, float]) -> np.ndarray:
    values = 100 + np.random.default_rng(seed).normal(0, 4, 1440)
    for start, stop, by in shifts:
        values[start:stop] += by
    return values


def test_two_incidents_in_one_day_are_both_listed_most_severe_first(tmp_path):
    path = write_day(tmp_path / "m.csv", {
        "checkout/latency_ms": day_of(1, (300, 360, 120), (900, 940, 48)),  # 30 sigma, later 12 sigma
        "checkout/error_ratio": day_of(2, (305, 360, 100), (905, 940, 40)),
        "search/latency_ms": day_of(3),
    })
    store = load_telemetry(metrics=str(path))
    result = detect(store)
    assert [(w.start, w.end) for w in result.windows] == [
        (DAY + timedelta(minutes=300), DAY + timedelta(minutes=360)),
        (DAY + timedelta(minutes=900), DAY + timedelta(minutes=940)),
    ]
    assert result.windows[0].severity > result.windows[1].severity
    assert result.window == result.windows[0]
    assert result.evidence[0].data["other_windows"][0]["start"] == "2024-05-01T15:00:00Z"
    later = detect(store, at=DAY + timedelta(hours=15, minutes=20))
    assert later.window.start == DAY + timedelta(minutes=900)
    assert later.evidence[0].data["chosen_by"] == "the window containing --at 2024-05-01T15:20:00Z"
    table = CliRunner().invoke(app, ["detect", "--metrics", str(path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "2024-05-01T05:00:00Z" in table.output and "2024-05-01T15:00:00Z" in table.output
    assert "1 other window(s) listed, most severe first" in table.output


def test_a_quiet_day_says_what_came_closest_and_how_to_ask_for_more(tmp_path):
    bump = day_of(1)
    bump[600] = 117  # one minute at about 4 sigma: under the bar (a few minutes held there would be an incident)
    path = write_day(tmp_path / "m.csv", {"api/latency_ms": bump})
    runner = CliRunner()
    table = runner.invoke(app, ["detect", "--metrics", str(path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "no incident found" in table.output
    # 5 σ is the bar of 8,000 points; a day of minutes has a lower one
    assert "closest: api/latency_ms up" in table.output and "under the 4.7 σ bar" in table.output
    assert "--sensitivity high" in table.output
    as_json = json.loads(runner.invoke(app, ["detect", "--metrics", str(path), "--json"]).output)
    miss = as_json["detection"]["closest_miss"]
    assert miss["series"] == "api/latency_ms"
    assert (miss["start"], miss["end"]) == ("2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z")
    assert miss["baseline"] == pytest.approx(100, abs=2) and miss["peak"] == 117 and 3 < miss["shift"] < 5
    assert "it lasted 60 s, under the 5 min a window needs" in miss["why_short"]
    high = json.loads(runner.invoke(app, ["detect", "--metrics", str(path), "--json", "--sensitivity",
                                          "high"]).output)
    # a lower bar clears the size, not the duration: still one minute, still no incident
    assert not high["detected"]
    assert high["detection"]["closest_miss"]["why_short"] == "it lasted 60 s, under the 5 min a window needs"
    # already at high, it is not told to ask for high
    assert high["detection"]["closest_miss"]["ask_for_more"].startswith("--sensitivity <σ> under the 4 σ given, "
                                                                        "and above 3")
    assert high["detection"]["sensitivity"].startswith("high: opening bar 4 robust σ for a series of 8,000 points")
    # the history bar moves with it (1.3 x 4 / 5), and a run must clear both bars
    assert "raised to 1.04 x the least of the series' 3 largest earlier peaks" in high["detection"]["sensitivity"]


def test_a_closest_miss_under_3_sigma_says_no_bar_opens_a_window_on_it(tmp_path):
    # NAB's art_daily_small_noise: "it stayed under the 3 σ a window needs to open", then "ask for --sensitivity
    # high (opening bar 4 σ)", which cannot open one either
    bounded = 100 + np.random.default_rng(1).uniform(-4, 4, 1440)  # noise with no tail: nothing past 2 σ
    path = write_day(tmp_path / "m.csv", {"api/latency_ms": bounded})
    miss = json.loads(CliRunner().invoke(app, ["detect", "--metrics", str(path), "--json"]).output)[
        "detection"]["closest_miss"]
    assert miss["strength"] < 3
    assert miss["why_short"] == "it stayed under 3 σ, where a run begins; a window opens at 4.7 σ"
    assert miss["ask_for_more"] == "no --sensitivity opens a window on it: every opening bar is above 3 σ"


def test_analyze_takes_the_sensitivity_too_and_its_closest_miss_says_so(tmp_path):
    bump = day_of(1)
    bump[600] = 117
    path = write_day(tmp_path / "m.csv", {"api/latency_ms": bump})
    result = CliRunner().invoke(app, ["analyze", "--metrics", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    analysis = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert not analysis["detected"]
    assert analysis["detection"]["closest_miss"]["ask_for_more"].startswith(
        "--sensitivity high (detect, analyze, investigate")
    # the fourth of four identical shifts: medium takes it for what the series does, high explains it
    ts, values = hourly_days(1, *[(start, start + 6, 24.0) for start in (300, 550, 800, 1050)])
    hourly = tmp_path / "hourly.csv"
    pacsv.write_csv(pa.table({"ts": ts, "service": ["api"] * len(ts), "metric": ["latency_ms"] * len(ts),
                              "value": values}), hourly)
    fourth = str(ts[1052].astype("datetime64[s]")) + "Z"
    windows = {}
    for sensitivity in ("medium", "high"):
        out = tmp_path / sensitivity
        result = CliRunner().invoke(app, ["analyze", "--metrics", str(hourly), "--at", fourth, "--sensitivity",
                                          sensitivity, "--out", str(out)])
        assert result.exit_code == 0, result.output
        windows[sensitivity] = json.loads((out / "analysis.json").read_text())["incident_window"]
    assert windows["high"]["start"] == str(ts[1050].astype("datetime64[s]")) + "Z"
    assert windows["medium"]["start"] == str(ts[800].astype("datetime64[s]")) + "Z"  # the nearest it lists


def test_a_near_miss_measured_over_several_steps_says_so():
    # a quiet day whose closest miss is two minutes in a row (about 2.3 and 3.3 σ down): their mean came closest
    miss = detect_points(START + np.arange(1440) * np.timedelta64(1, "m"), day_of(3)).near_miss
    assert miss is not None
    assert miss.why.startswith("4.0 σ over 2 steps is under the 4.7 σ bar")


@pytest.mark.parametrize("command", ["detect", "analyze", "investigate"])
def test_a_bad_sensitivity_is_one_line_of_error(tmp_path, command):
    path = write_day(tmp_path / "m.csv", {"api/latency_ms": day_of(1)})
    result = CliRunner().invoke(app, [command, "--metrics", str(path), "--sensitivity", "extreme",
                                      *([] if command == "detect" else ["--out", str(tmp_path / "out")])])
    assert result.exit_code != 0
    assert "--sensitivity 'extreme': use low, medium, high or a number" in str(result.exception)
    assert not (tmp_path / "out").exists()  # stopped before anything was read or written


def test_sensitivity_as_a_number_must_be_above_the_extend_threshold_and_finite():
    assert settings_for("6.5").open_threshold == 6.5
    with pytest.raises(InputError, match="must be above 3"):
        settings_for("2")
    # past about 38 σ the normal tail the bars are set from is 0 in floating point
    for too_high in ("40", "inf", "nan"):
        with pytest.raises(InputError, match="and at most 30"):
            settings_for(too_high)


def test_a_very_high_sensitivity_bar_is_one_line_of_error_not_a_traceback(tmp_path):
    path = write_day(tmp_path / "m.csv", {"api/latency_ms": day_of(1)})
    result = CliRunner().invoke(app, ["detect", "--metrics", str(path), "--sensitivity", "40"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert str(result.exception) == "--sensitivity 40: the opening bar must be above 3 robust σ and at most 30"


def test_high_sensitivity_also_lowers_the_history_bar_so_a_recurring_incident_is_listed():
    # the same six-hour shift of 8 σ every ten days or so: the default takes the fourth for what the series does
    # (1.3 x its third-largest earlier peak); asking for more lowers that bar in proportion and lists it
    ts, values = hourly_days(1, *[(start, start + 6, 24.0) for start in (300, 550, 800, 1050)])
    medium = [span.start for span in detect_points(ts, values, settings=settings_for("medium")).spans]
    high = [span.start for span in detect_points(ts, values, settings=settings_for("high")).spans]
    assert medium == [300, 550, 800]
    assert {300, 550, 800, 1050} <= set(high)
    assert settings_for("high").history_factor == pytest.approx(1.3 * 4 / 5)


def test_a_level_held_for_hours_stands_apart_from_routine_spikes_to_that_level():
    # two weeks of five-minute CPU at 0.1 %, a five-step spike to 90 % twice a day (routine: the history bar learns
    # it), then 90 % held for 200 minutes: only an 8- or 16-step mean tells it from the spikes
    rng = np.random.default_rng(3)
    values = 0.1 + rng.normal(0, 0.01, 4032)
    for start in rng.choice(np.arange(100, 3000, 60), 30, replace=False):
        values[start:start + 5] = 90 + rng.normal(0, 3, 5)
    values[3500:3540] = 92 + rng.normal(0, 3, 40)
    found = detect_points(START + np.arange(4032) * np.timedelta64(5, "m"), values)
    assert [span.start for span in found.spans][-1] == 3500
    assert len(found.spans) < 10  # the spikes after the first few are the series' routine


def test_long_window_means_are_measured_against_the_series_own_spread_of_such_means():
    # residuals with slow structure (a baseline off by a little for hours): the lag-one model would take a 16-step
    # mean of them for far more unusual than it is
    rng = np.random.default_rng(0)
    score = rng.normal(0, 1, 5000) + np.repeat(rng.normal(0, 0.5, 50), 100)
    rho = lag_one_correlation(score)
    means_of_16 = np.convolve(score, np.ones(16) / 16, mode="valid")
    assert window_mean_spread(means_of_16, 16, rho) > 1.5 * mean_sd(16, rho)
    assert window_mean_spread(score, 1, rho) == mean_sd(1, rho)


@pytest.mark.parametrize("seed", [1, 3])
def test_a_one_minute_spike_inside_the_day_of_a_shift_does_not_hide_the_shift(seed):
    # three days 2 σ higher at 1-minute steps, and one point 15 σ up two hours in: that spike opens no window (a
    # minute is under the 5 a window needs), so the shift it lies in is not reported by it
    rng = np.random.default_rng(seed)
    values = 50 + rng.normal(0, 1, 8 * 1440)
    values[5 * 1440:] += 2.0
    values[5 * 1440 + 120] += 15
    found = detect_points(START + np.arange(len(values)) * np.timedelta64(60, "s"), values)
    change = START + np.timedelta64(5, "D")
    assert [(s.direction, abs(found.series.t[s.start] - change) <= np.timedelta64(4, "h")) for s in found.spans] \
        == [("up", True)]


@pytest.mark.parametrize(("seed", "per_day"), [(5, 288), (6, 24)])
def test_a_weak_change_hours_before_the_change_point_does_not_take_the_shift_s_place(seed, per_day):
    # the day's median rises a little, short of the bar, hours before the change: the shift is at its change point,
    # not 16 h (seed 5, 5-minute steps) or 13 h (seed 6, hourly) early
    ts, values = shifted_month(seed, per_day, 2.0 if per_day == 288 else 3.0)
    found = detect_points(ts, values)
    change = START + np.timedelta64(18, "D")
    onsets = [found.series.t[s.start] - change for s in found.spans if s.direction == "up"]
    assert onsets[0] >= -np.timedelta64(2, "h"), onsets
