"""The perturbed copies of benchmarks/perturb_nezha.py, on a small generated Nezha day: the same files and columns,
whole traces sampled, clocks moved by exactly the skew, a seeded share of pods' metrics and log lines left out."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import duckdb
import pytest

from nezha_days import label, write_day

DAY = "2022-08-23"
_spec = importlib.util.spec_from_file_location(
    "perturb_nezha", Path(__file__).resolve().parents[1] / "benchmarks" / "perturb_nezha.py")
assert _spec and _spec.loader
perturb = sys.modules["perturb_nezha"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(perturb)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nezha")
    write_day(root, DAY, [label(f"{DAY} 10:12:30", "cartservice-579f59597d-wc2lz", "cpu_contention")])
    return root


def _copy(data: Path, tmp_path: Path, **change: float) -> Path:
    return perturb.perturbed_copy(data, tmp_path, perturb.Variant("test", **change)) / "rca_data" / DAY


def _rows(path: Path, select: str = "*", group: str = "") -> list[tuple]:
    return duckdb.sql(f"SELECT {select} FROM read_csv('{path}', all_varchar = true) {group} ORDER BY ALL").fetchall()


def _header(path: Path) -> str:
    with gzip.open(path, "rt") if path.name.endswith(".gz") else path.open() as lines:
        return lines.readline()


def test_sampling_keeps_whole_traces_and_the_layout(data: Path, tmp_path: Path) -> None:
    day = _copy(data, tmp_path, trace_keep=0.5)
    source, copy = data / "rca_data" / DAY / "trace", day / "trace"
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in source.iterdir())
    spans = ("TraceID, count(*)", "GROUP BY TraceID")
    before = dict(_rows(source / "10_05_trace.csv.gz", *spans))
    after = dict(_rows(copy / "10_05_trace.csv.gz", *spans))
    assert 0 < len(after) < len(before)
    assert all(before[trace] == count for trace, count in after.items())  # every span of a kept trace
    assert _header(copy / "10_05_trace.csv.gz") == _header(source / "10_05_trace.csv.gz")
    assert (day / "log").is_symlink() and (day / "metric").is_symlink()  # what is not perturbed is linked
    # seeded: the same traces on every run
    assert dict(_rows(_copy(data, tmp_path / "again", trace_keep=0.5) / "trace" / "10_05_trace.csv.gz",
                      *spans)) == after


def test_skew_moves_every_span_by_exactly_its_seconds(data: Path, tmp_path: Path) -> None:
    day = _copy(data, tmp_path, trace_shift_s=-2)
    times = "SpanID, CAST(StartTimeUnixNano AS BIGINT), CAST(EndTimeUnixNano AS BIGINT), Duration"
    before = _rows(data / "rca_data" / DAY / "trace" / "10_05_trace.csv.gz", times)
    after = _rows(day / "trace" / "10_05_trace.csv.gz", times)
    assert after == [(span, start - 2 * 10**9, end - 2 * 10**9, took) for span, start, end, took in before]


def test_metric_times_move_in_both_columns(data: Path, tmp_path: Path) -> None:
    day = _copy(data, tmp_path, metric_shift_s=15)
    name = "adservice-5f6585d649-fnmft_metric.csv"
    before = _rows(data / "rca_data" / DAY / "metric" / name, '"Time", CAST("TimeStamp" AS BIGINT)')
    after = _rows(day / "metric" / name, '"Time", CAST("TimeStamp" AS BIGINT)')
    assert before[0][0] == "2022-08-23 10:00:28.196000455 +0000 UTC m=+0.17"
    assert after[0][0] == "2022-08-23 10:00:43.196000455 +0000 UTC m=+0.17"
    assert [stamp for _, stamp in after] == [stamp + 15 for _, stamp in before]
    assert _header(day / "metric" / name) == _header(data / "rca_data" / DAY / "metric" / name)


def test_a_seeded_share_of_pods_and_log_lines_left_out(data: Path, tmp_path: Path) -> None:
    day = _copy(data, tmp_path, pods_missing=0.3, log_keep=0.5)
    source = data / "rca_data" / DAY
    pods = sorted(p.name for p in (day / "metric").iterdir() if perturb.POD_METRIC_SUFFIX in p.name)
    assert len(pods) == 2 and (day / "metric" / "front_service.csv").exists()  # one of three pods' files gone
    lines_before = len(_rows(source / "log" / "10_05_log.csv.gz"))
    lines_after = _rows(day / "log" / "10_05_log.csv.gz")
    assert 0.25 * lines_before < len(lines_after) < 0.75 * lines_before
    assert set(lines_after) <= set(_rows(source / "log" / "10_05_log.csv.gz"))  # lines as they were
