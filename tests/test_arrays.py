"""Arrow query results to numpy through the buffers (`analysis.arrays`), and what that buys: no pandas import."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cli_process import SRC
from incidentlens.analysis import arrays


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


def test_analyze_with_a_known_onset_imports_neither_pandas_nor_scipy_stats_nor_linalg(scenario_dir, tmp_path: Path):
    """pyarrow's conversions would import pandas (about 0.3 s of every such CLI run), scipy.stats' distributions
    half a second, and the baseline's solver scipy.linalg 0.05 s more beside scipy.special: nothing on this path needs
    them."""
    directory = scenario_dir("seed-tutorial", seed=1, fmt="csv")
    start = json.loads((directory / "truth.json").read_text())["window"]["start"]
    probe = ("import sys\nfrom incidentlens.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('imported:', sorted(m for m in ('pandas', 'scipy.stats', 'scipy.linalg') if m in sys.modules))")
    done = subprocess.run(
        [sys.executable, "-c", probe, "analyze", "--metrics", str(directory / "metrics.csv"), "--logs",
         str(directory / "logs.csv"), "--at", start, "--onset", "at", "--json", "--out", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "analysis.json").is_file()
    assert "imported: []" in done.stdout, done.stdout[-500:]
