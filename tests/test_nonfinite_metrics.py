"""NaN, +-Infinity and overflowing magnitudes in metrics are bad values: counted at load, kept as NULL (so out of
every fit, chart and impact figure), and the incident is still found where the clean copy finds it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from incidentlens.analysis import analyze
from incidentlens.analysis.detection import detect, iso_z
from incidentlens.report import build_postmortem, write_reports
from incidentlens.telemetry import load_telemetry


def test_non_finite_values_are_counted_and_left_out(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    values = ["1.5", "NaN", "Infinity", "-Infinity", "1e308", "-inf", "2.5", "nan"]
    path.write_text("ts,service,metric,value\n" + "".join(
        f"2024-05-01T10:0{i}:00Z,api,latency,{v}\n" for i, v in enumerate(values)))
    store = load_telemetry(metrics=path)
    assert store.warnings == [
        f"{path}: column 'value': 6 rows not finite (NaN, Infinity or beyond +-1e+150), kept as NULL"]
    got = store.fetch("SELECT count(*) AS n, count(value) AS kept, sum(value) AS total FROM metrics").to_pylist()
    assert got == [{"n": 8, "kept": 2, "total": 4.0}]


def test_a_nan_is_counted_among_the_rows_kept_not_again_in_a_row_left_out_for_its_time(tmp_path: Path) -> None:
    # the row with no time and the row with a bad time are left out, and said so: their NaN was counted as well
    path = tmp_path / "metrics.csv"
    path.write_text("ts,service,metric,value\n2024-05-01T10:00:00Z,api,latency,NaN\n,api,latency,NaN\n"
                    "soon,api,latency,NaN\n" + "".join(f"2024-05-01T10:0{m}:00Z,api,latency,1\n" for m in range(1, 9)))
    store = load_telemetry(metrics=path)
    assert store.warnings[-1] == (
        f"{path}: column 'value': 1 row not finite (NaN, Infinity or beyond +-1e+150), kept as NULL")
    got = store.fetch("SELECT count(*) AS n, count(value) AS valued FROM metrics").to_pylist()
    assert got == [{"n": 9, "valued": 8}]


def test_detection_names_a_value_left_out_when_read_as_such_not_as_a_nan_in_the_data(tmp_path: Path) -> None:
    # "api/rps: 1 missing (NaN) values skipped" for a file that held 1e400, not a NaN
    path = tmp_path / "metrics.csv"
    path.write_text("ts,service,metric,value\n" + "".join(
        f"2024-05-01T10:{m:02d}:00Z,api,rps,{'1e400' if m == 7 else 10 + m % 3}\n" for m in range(30)))
    result = detect(load_telemetry(metrics=path))
    said = "api/rps: 1 value missing (empty, or kept as NULL when read: not a number, or not finite) skipped"
    assert said in result.notes


def test_a_count_in_the_thousands_is_written_with_separators(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("ts,service,metric,value\n" + "".join(
        f"2024-05-01T10:00:{i % 60:02d}Z,api,latency,{'NaN' if i % 2 else '1.5'}\n" for i in range(2500)))
    store = load_telemetry(metrics=path)
    assert store.warnings == [
        f"{path}: column 'value': 1,250 rows not finite (NaN, Infinity or beyond +-1e+150), kept as NULL"]


def test_a_typed_parquet_column_and_a_wide_file_are_checked_too(tmp_path: Path) -> None:
    parquet = tmp_path / "metrics.parquet"
    pq.write_table(pa.table({"ts": pa.array(np.arange(3) * 60_000, pa.int64()).cast(pa.timestamp("ms")),
                             "rps": [1.0, float("nan"), float("inf")], "p95": [1.0, 2.0, 3.0]}), parquet)
    store = load_telemetry(metrics=parquet)
    assert store.warnings == [f"{parquet}: column 'rps': 2 rows not finite (NaN, Infinity or beyond +-1e+150), "
                              "kept as NULL"]
    got = store.fetch("SELECT metric, count(value) AS kept FROM metrics GROUP BY metric ORDER BY metric").to_pylist()
    assert got == [{"metric": "p95", "kept": 3}, {"metric": "rps", "kept": 1}]


def _spoiled_copy(clean: Path, target: Path, bad: list[str], share: float = 0.01) -> Path:
    """The clean metrics file with `share` of its values replaced by the `bad` texts."""
    lines = clean.read_text().splitlines()
    rng = np.random.default_rng(7)
    picks = rng.random(len(lines) - 1) < share
    out = [lines[0]]
    for line, pick, choice in zip(lines[1:], picks, rng.integers(0, len(bad), len(lines) - 1), strict=True):
        out.append(line.rsplit(",", 1)[0] + "," + bad[choice] if pick else line)
    target.write_text("\n".join(out) + "\n")
    return target


@pytest.mark.parametrize("bad", [["NaN"], ["Infinity", "-Infinity"], ["1e308", "-1e308"]],
                         ids=["nan", "infinity", "1e308"])
def test_the_incident_is_found_where_the_clean_copy_finds_it(scenario_dir, tmp_path: Path, bad: list[str]) -> None:
    data = scenario_dir("db-pool-exhaustion")
    spoiled = _spoiled_copy(data / "metrics.csv", tmp_path / "metrics.csv", bad)
    clean = detect(load_telemetry(metrics=data / "metrics.csv"))
    store = load_telemetry(metrics=spoiled, logs=data / "logs.csv")
    assert "rows not finite" in store.warnings[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a numpy RuntimeWarning on the way
        window = detect(store).window
        found = analyze(store)
        paths = write_reports(build_postmortem(found.to_dict()), tmp_path / "review", store=store)
    assert (window.start, window.end) == (clean.window.start, clean.window.end)
    assert found.to_dict()["incident_window"] == {"start": iso_z(clean.window.start), "end": iso_z(clean.window.end)}
    assert paths["html"].read_text().count("<svg") >= 1
