"""benchmarks/concurrent_nezha.py on a small generated Nezha day: the second fault's files moved by exactly the
shift, row for row, and a pair of faults analysed as one stretch with both services among the suspects."""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from incidentlens.eval import nezha
from nezha_days import PODS, label, write_day

DAY = "2022-08-23"
_spec = importlib.util.spec_from_file_location(
    "concurrent_nezha", Path(__file__).resolve().parents[1] / "benchmarks" / "concurrent_nezha.py")
assert _spec and _spec.loader
concurrent = sys.modules["concurrent_nezha"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(concurrent)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nezha")
    write_day(root, DAY, [label(f"{DAY} 10:12:30", PODS["cartservice"], "exception"),
                          label(f"{DAY} 10:15:30", PODS["cartservice"], "cpu_contention"),
                          label(f"{DAY} 10:22:30", PODS["adservice"], "return")])
    return root


def test_the_pairs_are_each_services_first_error_fault(data: Path) -> None:
    faults = concurrent.first_error_faults(data)
    assert [(f"{f.inject_time:%H:%M}", f.service, f.kind) for f in faults] == [
        ("10:12", "cartservice", "exception"), ("10:22", "adservice", "return")]


def test_the_second_faults_files_move_by_exactly_the_shift_row_for_row(data: Path, tmp_path: Path) -> None:
    minutes = nezha.fault_inputs(nezha.rca_dir(data, DAY), concurrent.first_error_faults(data)[1],
                                 history=timedelta(0))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    shift = timedelta(minutes=-9, seconds=-30)
    for role, time_column in (("traces", "StartTimeUnixNano"), ("logs", "TimeUnixNano")):
        copy = concurrent.shifted_copy(con, role, minutes[role], shift, tmp_path / f"{role}.csv")
        files = ", ".join(f"'{p}'" for p in minutes[role])
        before = con.execute(f"SELECT TraceID, CAST({time_column} AS HUGEINT) FROM read_csv([{files}]) "
                             "ORDER BY ALL").fetchall()
        after = con.execute(f"SELECT TraceID, CAST({time_column} AS HUGEINT) FROM read_csv('{copy}') "
                            "ORDER BY ALL").fetchall()
        assert [(trace, t + int(shift.total_seconds() * 1e9)) for trace, t in before] == after
    moved = con.execute(f"SELECT strftime(min(CAST(Timestamp AS TIMESTAMPTZ)), '%H:%M:%S') "
                        f"FROM read_csv('{tmp_path / 'logs.csv'}')").fetchone()
    assert moved == ("10:11:30",)  # 10:22:30 injection: its files hold 10:21 on, now 9.5 minutes earlier


def test_a_pair_is_analysed_as_one_stretch_with_both_faults_in_it(data: Path, tmp_path: Path) -> None:
    first, second = concurrent.first_error_faults(data)
    metrics = nezha.MetricsCut(nezha.rca_dir(data, DAY), tmp_path, nezha.METRIC_HISTORY)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    row = concurrent.run_pair(data, first, second, timedelta(seconds=30), metrics, tmp_path, con)
    assert row["a"] == "10:12 cartservice exception" and row["b"] == "10:22 adservice return"
    assert row["a_rank"] is not None and row["b_rank"] is not None  # both faults' services are suspects
    assert concurrent.summary([row])["both_in_top3"] == 1
