"""Writing generated tables (csv, parquet, jsonl) and truth.json, with ISO-8601 UTC times ending in `Z`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from incidentlens.errors import InputError
from incidentlens.outfiles import write_text, write_with
from incidentlens.scenarios.columns import iso_times, utc_timestamps

FORMATS = ("csv", "parquet", "jsonl")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")
    return fmt


def time_column(epoch_ms: np.ndarray, fmt: str, with_millis: bool) -> pa.Array:
    """Parquet keeps a native UTC timestamp; text formats get ISO-8601 with `Z`."""
    if fmt == "parquet":
        return utc_timestamps(epoch_ms)
    return iso_times(epoch_ms, with_millis=with_millis)


def write_table(table: pa.Table, out_dir: Path, stem: str, fmt: str) -> Path:
    """Write `table` as DIR/<stem>.<fmt>."""
    path = out_dir / f"{stem}.{fmt}"
    if fmt == "csv":
        return write_with(path, lambda staged: pacsv.write_csv(
            table, staged, write_options=pacsv.WriteOptions(quoting_style="needed")))
    if fmt == "parquet":
        return write_with(path, lambda staged: pq.write_table(table, staged, compression="zstd"))
    return write_with(path, lambda staged: _write_jsonl(table, staged))


def _write_jsonl(table: pa.Table, path: Path) -> None:
    # pyarrow has no JSON writer; DuckDB's escapes text correctly and streams the Arrow table without copying it
    con = duckdb.connect()
    try:
        con.register("generated", table)
        con.execute(f"COPY generated TO '{path.as_posix()}' (FORMAT json)")
    finally:
        con.close()


def iso(epoch_ms: int | float | None) -> str | None:
    """One time as ISO-8601 UTC text with `Z` (seconds precision)."""
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(int(epoch_ms) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_truth(truth: dict[str, Any], out_dir: Path) -> Path:
    return write_text(out_dir / "truth.json", json.dumps(truth, indent=2) + "\n")
