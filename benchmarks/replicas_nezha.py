"""A second, healthy pod beside every pod of a Nezha day: is the faulty replica still found?

Every `<pod>_metric.csv` of the day gets a twin `<service>-<replicaset>-zz9zz`, whose samples are its own pod's from
LAG later (a stretch of the day with no fault: 17:00-24:00 on OnlineBoutique, 16:40-24:00 on TrainTicket), 20 s after
the pod's own sample times: a real replica's level and noise, at another time of day. Logs, traces and the other
metric files are linked as they are. The day is written to a temporary directory (never into the repository) and
scored with `eval nezha`, with all sources and with metrics alone (`--without logs --without traces`).

    .venv/bin/python benchmarks/replicas_nezha.py [onlineboutique|trainticket]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import duckdb

from incidentlens.eval.nezha import POD_METRIC_SUFFIX, evaluate_nezha
from incidentlens.telemetry.columns import literal

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
#: how much later a twin's samples are taken from: past the day's last fault, within its metrics
LAG = {"onlineboutique": timedelta(hours=7), "trainticket": timedelta(hours=8)}
TWIN_ID = "zz9zz"


def twin_day(data: Path, out: Path, lag: timedelta) -> Path:
    """`data` linked into `out`, every day's metric folder with a healthy twin per pod; returns `out`."""
    for item in data.iterdir():
        if item.name != "rca_data":
            (out / item.name).symlink_to(item)
    for day in (data / "rca_data").iterdir():
        (out / "rca_data" / day.name).mkdir(parents=True)
        for item in day.iterdir():
            if item.name != "metric":
                (out / "rca_data" / day.name / item.name).symlink_to(item)
        folder = out / "rca_data" / day.name / "metric"
        folder.mkdir()
        for path in (day / "metric").iterdir():
            (folder / path.name).symlink_to(path)
            if POD_METRIC_SUFFIX in path.name:
                _write_twin(path, folder, lag)
    return out


def _write_twin(path: Path, folder: Path, lag: timedelta) -> None:
    """The pod's rows from `lag` after its first sample on, moved back by `lag` less 20 s, named for the twin."""
    pod = path.name.split(POD_METRIC_SUFFIX)[0]
    twin = pod[: -len(TWIN_ID)] + TWIN_ID
    seconds = int(lag.total_seconds())
    con = duckdb.connect()
    rows = f"read_csv({literal(str(path))}, all_varchar = true)"
    con.execute(f"""COPY (
    SELECT strftime(to_timestamp(CAST(TimeStamp AS BIGINT) - {seconds - 20}) AT TIME ZONE 'UTC',
                    '%Y-%m-%d %H:%M:%S.%f') || '000 +0000 UTC m=+0.0' AS "Time",
           CAST(TimeStamp AS BIGINT) - {seconds - 20} AS "TimeStamp", {literal(twin)} AS "PodName",
           * EXCLUDE ("Time", "TimeStamp", "PodName")
    FROM {rows}
    WHERE CAST(TimeStamp AS BIGINT) >= (SELECT min(CAST(TimeStamp AS BIGINT)) FROM {rows}) + {seconds}
) TO {literal(str(folder / f"{twin}{POD_METRIC_SUFFIX}"))} (HEADER, DELIMITER ',')""")
    con.close()


def main(system: str) -> None:
    data = SHARED / f"nezha-{system}"
    if not data.is_dir():
        print(f"skipped: {data} not found")
        return
    with tempfile.TemporaryDirectory(prefix="incidentlens-replicas-") as scratch:
        day = twin_day(data, Path(scratch), LAG[system])
        for without in ((), ("logs", "traces")):
            report = evaluate_nezha(day, without=without)
            summary = report.summary()
            sources = "without " + " and ".join(without) if without else "all sources"
            print(f"{system}, a healthy twin per pod, {sources}: top-1 {summary['top1_count']} / top-3 "
                  f"{summary['top3_count']} of {summary['faults']}, ECE {summary['calibration']['ece']}", flush=True)
            for fault in report.faults:
                print(f"  {fault.inject_time} {fault.service} {fault.kind}: rank {fault.rank} "
                      f"{list(zip(fault.ranked[:3], fault.confidences[:3], strict=False))}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "onlineboutique")
