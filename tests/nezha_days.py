"""A small generated day in Nezha's layout, for the tests of `eval nezha` and `analyze` on unseen days.

The files have the shapes of the Nezha repository's (the headers, Go's time strings in `Time`, container-runtime JSON
log lines, `ParentID=root`), with three pods: frontend calls cartservice and adservice in every request. A fault
makes its pod's CPU high and its spans slow for FAULT_MINUTES, and its log lines errors.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

PODS = {"frontend": "frontend-579b9bff58-t2dbm", "cartservice": "cartservice-579f59597d-wc2lz",
        "adservice": "adservice-5f6585d649-fnmft"}
METRIC_HEADER = ("Time,TimeStamp,PodName,CpuUsage(m),CpuUsageRate(%),MemoryUsage(Mi),MemoryUsageRate(%),"
                 "PodClientLatencyP90(s),PodServerLatencyP90(s),PodWorkload(Ops),PodSuccessRate(%)")
LOG_HEADER = "Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log"
TRACE_HEADER = "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration"
START = "10:00"
MINUTES = 30
REQUESTS_PER_MINUTE = 20
FAULT_MINUTES = 5
#: whether a pod is broken at a moment
Faulty = Callable[[str, datetime], bool]


def label(when: str, pod: str, kind: str) -> dict[str, str]:
    """One fault as a Nezha fault list holds it (`when`: "YYYY-MM-DD HH:MM:SS", UTC)."""
    moment = datetime.fromisoformat(when).replace(tzinfo=UTC)
    return {"inject_time": when, "inject_timestamp": str(int(moment.timestamp())), "inject_pod": pod,
            "inject_type": kind}


def write_day(root: Path, day: str, faults: list[dict[str, str]]) -> Path:
    """`root/rca_data/<day>/`: the fault list (by hour), per-pod metrics, front_service.csv and gzipped log and trace
    minutes from START for MINUTES; returns the day's folder."""
    folder = root / "rca_data" / day
    for sub in ("metric", "log", "trace"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    by_hour: dict[str, list[dict[str, str]]] = {}
    for fault in faults:
        by_hour.setdefault(fault["inject_time"][11:13], []).append(fault)
    (folder / f"{day}-fault_list.json").write_text(json.dumps(by_hour, indent=4))
    start = datetime.fromisoformat(f"{day} {START}")
    broken = [(datetime.fromisoformat(f["inject_time"]).replace(second=0), f["inject_pod"]) for f in faults]

    def faulty(pod: str, moment: datetime) -> bool:
        return any(p == pod and at <= moment < at + timedelta(minutes=FAULT_MINUTES) for at, p in broken)

    _write_metrics(folder / "metric", start, faulty)
    rng = random.Random(day)
    for minute in range(1, MINUTES + 1):
        _write_minute(folder, start + timedelta(minutes=minute), faulty, rng)
    return folder


def _nanos(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp()) * 10**9 + moment.microsecond * 1000


def _write_metrics(folder: Path, start: datetime, faulty: Faulty) -> None:
    for number, pod in enumerate(PODS.values()):
        rows = [METRIC_HEADER]
        for minute in range(MINUTES + 5):
            at = start + timedelta(minutes=minute, seconds=28)
            cpu = (90.0 if faulty(pod, at) else 10.0) + (minute * 7 + number) % 5 / 10
            latency = 0.5 if faulty(pod, at) else 0.004
            rows.append(f"{at:%Y-%m-%d %H:%M:%S}.196000455 +0000 UTC m=+{minute * 60}.17,"
                        f"{_nanos(at) // 10**9},{pod},{cpu * 3:.3f},{cpu:.3f},33.1,25.8,0.004,{latency},8.8,100")
        (folder / f"{pod}_metric.csv").write_text("\n".join(rows) + "\n")
    (folder / "front_service.csv").write_text(
        "Time,TimeStamp,ServiceName,SuccessRate(%),LatencyP50(s),LatencyP90(s),LatencyP95(s),LatencyP99(s)\n"
        + "".join(f"{start + timedelta(minutes=m):%Y-%m-%d %H:%M:%S}.11 +0000 UTC m=+0.09,"
                  f"{_nanos(start + timedelta(minutes=m)) // 10**9},Frontend,100,0.16,0.73,0.96,2.1\n"
                  for m in range(MINUTES)))


def _write_minute(folder: Path, end: datetime, faulty: Faulty, rng: random.Random) -> None:
    """The log and trace files `HH_MM`, holding [end - 1 min, end)."""
    logs, spans = [LOG_HEADER], [TRACE_HEADER]
    for request in range(REQUESTS_PER_MINUTE):
        at = end - timedelta(seconds=60 - 3 * request)
        trace, root, cart, ads = f"{rng.getrandbits(128):032x}", *(f"{rng.getrandbits(64):016x}" for _ in range(3))
        cart_us = 400_000 if faulty(PODS["cartservice"], at) else 4_000 + rng.randrange(500)
        ads_us = 300_000 if faulty(PODS["adservice"], at) else 1_000 + rng.randrange(200)
        start = _nanos(at)
        for span, parent, pod, operation, offset_us, duration_us in (
                (root, "root", PODS["frontend"], "/cart", 0, max(cart_us, ads_us) + 2_000),
                (cart, root, PODS["cartservice"], "GetCart", 500, cart_us),
                (ads, root, PODS["adservice"], "GetAds", 300, ads_us)):
            begin = start + offset_us * 1000
            end_ns = begin + duration_us * 1000
            spans.append(f"{trace},{span},{parent},{pod},{operation},{begin},{end_ns},{duration_us}")
        for span, pod, message in ((root, PODS["frontend"], "request complete"),
                                   (cart, PODS["cartservice"], "GetCart called")):
            failed = faulty(pod, at) or (pod == PODS["frontend"] and faulty(PODS["cartservice"], at))
            level, text = ("error", f"{message}: failed") if failed else ("info", message)
            written = at + timedelta(milliseconds=2)
            line = json.dumps({"log": json.dumps({"severity": level, "message": text}) + "\n", "stream": "stdout",
                               "time": f"{written:%Y-%m-%dT%H:%M:%S.%f}Z"})
            quoted = line.replace('"', '""')
            logs.append(f"{written:%Y-%m-%dT%H:%M:%S.%f}Z,{_nanos(written)},10.0.0.1,{pod},server,{trace},{span},"
                        f'"{quoted}"')
    for sub, kind, rows in (("log", "_log", logs), ("trace", "_trace", spans)):
        with gzip.open(folder / sub / f"{end:%H_%M}{kind}.csv.gz", "wt") as packed:
            packed.write("\n".join(rows) + "\n")
