"""Speed of the whole `analyze` on 10 million log lines (Parquet) plus one day of one-minute metrics for 50 services
x 4 metrics, against one plain DuckDB aggregation scan over the same Parquet.

The data come from a vectorised generator below: 50 services in a call tree, an incident at a leaf that climbs
to the front end two minutes per hop, and 10 million log lines sorted by time. The analysis runs in a child process
so that its peak memory (max RSS) is measured alone.

Run: .venv/bin/python benchmarks/bench_analyze.py [--lines 10000000] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SERVICES = 50
METRICS = ("request_rate", "latency_p95_ms", "error_ratio", "cpu_utilization")
MINUTES = 1440
START = np.datetime64("2024-05-01T00:00:00", "ms")
ROOT = 41  # a leaf of the call tree
INCIDENT_START, INCIDENT_END = 900, 1000  # minutes of the day
HOP_DELAY = 2  # minutes from a callee's onset to its caller's
REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")


def service_names() -> list[str]:
    return [f"svc-{i:02d}" for i in range(SERVICES)]


def onsets() -> np.ndarray:
    """Minute each service starts failing (or a large number): the root's ancestors, one hop later each."""
    onset = np.full(SERVICES, 10**6)
    node, hops = ROOT, 0
    while True:
        onset[node] = INCIDENT_START + hops * HOP_DELAY
        if node == 0:
            return onset
        node, hops = (node - 1) // 3, hops + 1


def write_metrics(path: Path, rng: np.random.Generator) -> None:
    minute = np.arange(MINUTES)
    daily = 1 + 0.3 * np.sin(2 * np.pi * (minute / MINUTES - 0.4))
    onset = onsets()
    hot = (minute[None, :] >= onset[:, None]) & (minute[None, :] < INCIDENT_END)
    base = {"request_rate": 200.0, "latency_p95_ms": 150.0, "error_ratio": 0.005, "cpu_utilization": 0.4}
    moves = {"request_rate": -60.0, "latency_p95_ms": 900.0, "error_ratio": 0.25, "cpu_utilization": 0.2}
    tables = []
    for metric in METRICS:
        noise = rng.normal(0, 0.03, (SERVICES, MINUTES))
        seasonal = daily if metric == "request_rate" else 1.0
        values = base[metric] * seasonal * (1 + noise) + hot * moves[metric]
        tables.append(pa.table({
            "ts": pa.array(np.tile(START + minute.astype("timedelta64[m]"), SERVICES)),
            "service": pa.array(np.repeat(service_names(), MINUTES)),
            "metric": pa.array([metric] * SERVICES * MINUTES),
            "value": values.ravel(),
        }))
    pq.write_table(pa.concat_tables(tables), path)


def write_logs(path: Path, lines: int, rng: np.random.Generator) -> None:
    ms = np.sort(rng.integers(0, MINUTES * 60_000, lines))
    minute = ms // 60_000
    service = rng.integers(0, SERVICES, lines)
    onset = onsets()
    failing = (minute >= onset[service]) & (minute < INCIDENT_END) & (rng.random(lines) < 0.3)
    benign = rng.random(lines) < 0.01
    names = pa.array(service_names())
    parent = np.maximum((service - 1) // 3, 0)
    number = pa.array(rng.integers(1, 5000, lines)).cast(pa.string())
    info = pc.binary_join_element_wise("GET /api/v1/items/", number, " 200 in ", number, " ms", "")
    slow = pc.binary_join_element_wise("Slow request /api/v1/items took ", number, " ms", "")
    caller = pc.binary_join_element_wise("upstream ", names.take(pa.array(np.minimum(service * 3 + 1, 49))),
                                         " timed out after ", number, " ms", "")
    root = pc.binary_join_element_wise("Timeout acquiring connection from pool primary (active=50/50, waiting=",
                                       number, ")", "")
    is_root = service == ROOT
    message = pc.if_else(pa.array(failing & is_root), root,
                         pc.if_else(pa.array(failing), caller, pc.if_else(pa.array(benign), slow, info)))
    level = np.where(failing, "ERROR", np.where(benign, "WARN", "INFO"))
    table = pa.table({
        "ts": pa.array(START + ms.astype("timedelta64[ms]")),
        "service": names.take(pa.array(service)),
        "region": pa.array(np.asarray(REGIONS)[rng.integers(0, 3, lines)]),
        "host": pc.binary_join_element_wise(names.take(pa.array(service)), "-",
                                            pa.array(rng.integers(0, 4, lines)).cast(pa.string()), ""),
        "version": pc.binary_join_element_wise("v1.", pa.array(parent % 7).cast(pa.string()), ""),
        "level": pa.array(level),
        "endpoint": pa.array(["/api/v1/items"] * lines),
        "trace_id": pa.array(rng.integers(0, 2**62, lines)).cast(pa.string()),
        "user_id": pc.binary_join_element_wise("u-", pa.array(rng.integers(0, 50_000, lines)).cast(pa.string()), ""),
        "message": message,
    })
    pq.write_table(table, path, row_group_size=256 * 1024)


def ensure_data(directory: Path, lines: int) -> dict[str, Path]:
    paths = {"metrics": directory / "metrics.parquet", "logs": directory / f"logs-{lines}.parquet"}
    rng = np.random.default_rng(0)
    if not paths["metrics"].exists():
        write_metrics(paths["metrics"], rng)
    if not paths["logs"].exists():
        began = time.perf_counter()
        write_logs(paths["logs"], lines, rng)
        print(f"generated {lines:,} log lines in {time.perf_counter() - began:.1f} s")
    return paths


def plain_scan(logs: Path) -> float:
    """One DuckDB aggregation over every line of the Parquet file: the floor any analysis pays."""
    con = duckdb.connect()
    began = time.perf_counter()
    con.sql(f"SELECT service, level, count(*), min(ts), max(ts) FROM read_parquet('{logs}') GROUP BY ALL").fetchall()
    return time.perf_counter() - began


def peak_resident_gb() -> float:
    """This process's own peak resident memory (VmHWM, reset at exec; ru_maxrss is not: after a fork and exec it
    still counts the parent's pages, such as the data generator's, when the data was generated in this run)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_analysis(metrics: Path, logs: Path) -> None:
    """Child process: load, analyze, print the timings and the top hypothesis as JSON."""
    from incidentlens.analysis import analyze
    from incidentlens.telemetry import load_telemetry

    began = time.perf_counter()
    store = load_telemetry(metrics=metrics, logs=logs)
    loaded = time.perf_counter()
    result = analyze(store)
    done = time.perf_counter()
    top = result.hypotheses[0] if result.hypotheses else None
    peak_gb = peak_resident_gb()
    print(json.dumps({"load_s": loaded - began, "analyze_s": done - loaded, "total_s": done - began, "peak_gb": peak_gb,
                      "window": result.incident_window, "top": top.service if top else None,
                      "kind": top.kind if top else None}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "incidentlens-bench-analyze")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_analysis(*args.child)
        return
    args.data.mkdir(parents=True, exist_ok=True)
    paths = ensure_data(args.data, args.lines)
    scan = min(plain_scan(paths["logs"]) for _ in range(2))
    child = subprocess.run([sys.executable, __file__, "--child", str(paths["metrics"]), str(paths["logs"])],
                           capture_output=True, text=True, check=True)
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"data: {args.lines:,} log lines (Parquet) + {SERVICES} services x {len(METRICS)} metrics x {MINUTES} min")
    print(f"analyze (load + analyze): {figures['total_s']:.2f} s  (load {figures['load_s']:.2f} s, "
          f"analyze {figures['analyze_s']:.2f} s); peak memory {figures['peak_gb']:.2f} GB")
    print(f"plain DuckDB aggregation scan over the logs: {scan:.2f} s; ratio {figures['total_s'] / scan:.1f}x")
    print(f"found window {figures['window']}, top hypothesis {figures['top']} ({figures['kind']}); "
          f"truth: svc-{ROOT:02d} (connection_pool_exhaustion)")


if __name__ == "__main__":
    main()
