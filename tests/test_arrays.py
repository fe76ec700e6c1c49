"""Arrow query results to numpy through the buffers (`telemetry.arrays`), and what that buys: no pandas import."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cli_process import SRC
from incidentlens.telemetry import arrays
from nezha_days import PODS, label, write_day


def _result(sql: str):
    return duckdb.sql(sql).to_arrow_table()


def test_floats_read_nulls_as_nan_and_integers_as_floats():
    table = _result("SELECT * FROM (VALUES (1.5, 3), (NULL, 4), (-2.0, 5)) AS t(x, n)")
    x = arrays.floats(table["x"])
    assert x[0] == 1.5 and math.isnan(x[1]) and x[2] == -2.0
    assert arrays.floats(table["n"]).tolist() == [3.0, 4.0, 5.0]


def test_ints_refuse_a_null():
    table = _result("SELECT * FROM (VALUES (1), (NULL)) AS t(n)")
    with pytest.raises(ValueError, match="NULL"):
        arrays.ints(table["n"])


def test_times_keep_microseconds_and_read_nulls_as_nat():
    table = _result("SELECT * FROM (VALUES (TIMESTAMP '2024-05-01 10:00:00.123456'), (NULL)) AS t(ts)")
    ts = arrays.times(table["ts"])
    assert ts[0] == np.datetime64(datetime(2024, 5, 1, 10, 0, 0, 123456), "us")
    assert np.isnat(ts[1])


def test_a_slice_reads_its_own_rows():
    table = _result("SELECT range AS n, CASE WHEN range % 3 = 0 THEN NULL ELSE range END AS x FROM range(20)")
    part = table.slice(7, 5)
    assert arrays.ints(part["n"]).tolist() == [7, 8, 9, 10, 11]
    assert np.isnan(arrays.floats(part["x"])).tolist() == [False, False, True, False, False]


def test_texts_and_masks_round_trip():
    table = _result("SELECT * FROM (VALUES ('a', 1), (NULL, 2), ('b', 3)) AS t(s, n)")
    assert arrays.texts(table["s"]).tolist() == ["a", None, "b"]
    kept = table.filter(arrays.bool_array(arrays.ints(table["n"]) != 2))
    assert kept["s"].to_pylist() == ["a", "b"]
    assert arrays.int64_array(np.array([4, 5])).to_pylist() == [4, 5]
    assert arrays.string_array(["héllo", "", "b"]).to_pylist() == ["héllo", "", "b"]
    assert arrays.string_array([]).to_pylist() == []


def _imported_by(*args: str, modules: tuple[str, ...] = ("pandas", "scipy.stats", "scipy.linalg")) -> str:
    """`incidentlens ARGS` in a fresh process: what it printed, then which of `modules` it imported."""
    probe = ("import sys\nfrom incidentlens.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             f"print('imported:', sorted(m for m in {modules!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _imported_by_analyze(out: Path, *inputs: str) -> str:
    """`analyze --onset at` over `inputs` in a fresh process: what it imported of pandas, scipy.stats and
    scipy.linalg."""
    printed = _imported_by("analyze", *inputs, "--onset", "at", "--json", "--out", str(out))
    assert (out / "analysis.json").is_file()
    return printed


def test_analyze_with_a_known_onset_imports_neither_pandas_nor_scipy_stats_nor_linalg(scenario_dir, tmp_path: Path):
    """pyarrow's conversions would import pandas (about 0.3 s of every such CLI run), scipy.stats' distributions
    half a second, and the baseline's solver scipy.linalg 0.05 s more beside scipy.special: nothing on this path needs
    them."""
    directory = scenario_dir("seed-tutorial", seed=1, fmt="csv")
    start = json.loads((directory / "truth.json").read_text())["window"]["start"]
    printed = _imported_by_analyze(tmp_path, "--metrics", str(directory / "metrics.csv"), "--logs",
                                   str(directory / "logs.csv"), "--at", start)
    assert "imported: []" in printed, printed[-500:]


def test_a_review_written_from_an_analysis_imports_no_scipy_special(scenario_dir, tmp_path: Path):
    """`report` reads no tail probability (the analysis did): scipy.special's 0.2 s import is not its to pay."""
    directory = scenario_dir("seed-tutorial", seed=1, fmt="csv")
    start = json.loads((directory / "truth.json").read_text())["window"]["start"]
    _imported_by_analyze(tmp_path, "--metrics", str(directory / "metrics.csv"), "--at", start)
    printed = _imported_by("report", "--analysis", str(tmp_path / "analysis.json"), "--out", str(tmp_path / "review"),
                           modules=("scipy.special",))
    assert "imported: []" in printed, printed[-500:]
    assert (tmp_path / "review" / "report.md").is_file()


def test_analyze_with_traces_and_their_logs_imports_no_pandas_either(tmp_path: Path):
    """The traces' log lines are grouped into statements (`spans.statements_relation`), whose table is built from
    Python strings: through the buffers too."""
    day = write_day(tmp_path / "data", "2022-08-22", [label("2022-08-22 10:20:30", PODS["adservice"], "cpu")])
    minutes = [f"10_{minute}" for minute in range(11, 24)]
    printed = _imported_by_analyze(
        tmp_path / "out", "--at", "2022-08-22T10:20:30Z", "--metrics", str(day / "metric" / "*_metric.csv"),
        *(arg for minute in minutes for arg in ("--logs", str(day / "log" / f"{minute}_log.csv.gz"))),
        *(arg for minute in minutes for arg in ("--traces", str(day / "trace" / f"{minute}_trace.csv.gz"))))
    assert "imported: []" in printed, printed[-500:]


def test_analyze_of_logs_with_a_malformed_line_imports_no_pandas_either(scenario_dir, tmp_path: Path):
    """The lines set aside move the later lines' numbers (`views._count_skipped_lines`): the shifts go to DuckDB as
    query parameters, not as a table built from Python values."""
    directory = scenario_dir("seed-tutorial", seed=1, fmt="csv")
    start = json.loads((directory / "truth.json").read_text())["window"]["start"]
    header, *lines = (directory / "logs.csv").read_text().splitlines()
    lines.insert(len(lines) // 2, lines[len(lines) // 2] + "," + lines[len(lines) // 2])  # two lines run together
    logs = tmp_path / "logs.csv"
    logs.write_text("\n".join([header, *lines]) + "\n")
    printed = _imported_by_analyze(tmp_path / "out", "--metrics", str(directory / "metrics.csv"), "--logs", str(logs),
                                   "--at", start)
    assert "imported: []" in printed, printed[-500:]


def test_analyze_of_saved_prometheus_and_loki_answers_imports_no_pandas_either(tmp_path: Path):
    """A saved query_range answer's series and a Loki answer's lines are built into Arrow tables through the buffers
    (`arrays.time_array`, `repeated_strings`, ...): `pa.array` would import pandas."""
    start = datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp()
    latency = [[start + 60 * i, str(120 + (400 if i >= 40 else i % 3))] for i in range(50)]
    metrics = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "http_p95_ms", "service": "checkout", "pod": "checkout-5c8d7e6f4a-n3w4p"},
         "values": latency},
        {"metric": {"__name__": "http_p95_ms", "service": "cart"}, "values": [[t, "20"] for t, _ in latency]}]}}
    lines = [[str(int((start + 30 * i) * 1e9)), "timeout calling payments" if i >= 80 else "order placed"]
             for i in range(100)]
    logs = {"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"service_name": "checkout", "level": "error"}, "values": lines[80:]},
        {"stream": {"service_name": "checkout"}, "values": lines[:80]}]}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "logs.json").write_text(json.dumps(logs))
    at = datetime.fromtimestamp(start + 60 * 40, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    printed = _imported_by_analyze(tmp_path / "out", "--metrics", str(tmp_path / "metrics.json"), "--logs",
                                   str(tmp_path / "logs.json"), "--at", at)

    assert "imported: []" in printed, printed[-500:]
    assert json.loads((tmp_path / "out" / "analysis.json").read_text())["hypotheses"][0]["service"] == "checkout"
