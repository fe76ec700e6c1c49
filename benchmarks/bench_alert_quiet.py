"""What `analyze --at T` (an alert time, the onset detected: what `serve` runs at each alert) answers where nothing
happened: how often it still reports an incident, and how often it names a root cause.

- the generated no-incident days, seeds 1..N: `quiet` and `busy-day` with T at 03:00, 09:00, 15:00 and 21:00, and
  on `busy-day` also 10 minutes into its surge of demand;
- the Nezha days (when present): T 90 s before each fault's injection minute, with the day's log and trace files
  of the hour before it up to that minute and the metrics cut there too (nothing injected yet; an earlier fault's
  window may still be detected and explained: counted apart, as "a detector window").

    .venv/bin/python benchmarks/bench_alert_quiet.py [seeds]      # 10 seeds when not given
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from incidentlens.analysis import analyze
from incidentlens.analysis.anchored import KNOWN_ONSET
from incidentlens.eval.nezha import METRIC_HISTORY, MetricsCut, fault_inputs, fault_store, load_faults, rca_dir
from incidentlens.scenarios import generate
from incidentlens.telemetry import load_telemetry, sql_ts

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NEZHA = {"TrainTicket": DATASETS / "nezha-trainticket", "OnlineBoutique": DATASETS / "nezha-onlineboutique"}
HOURS = (3, 9, 15, 21)
LEAD = timedelta(seconds=90)


def outcome(store: object, at: datetime) -> str:
    """'no incident', 'a detector window' (one the detector found and explained), or the alert time taken as the
    start: 'taken: root cause X' (', a burst that ended' where the review says it was one) / 'taken: inconclusive'."""
    result = analyze(store, at=at)
    if not result.detected:
        return "no incident"
    if result.detection.get("detector") != KNOWN_ONSET:
        return "a detector window"
    verdict = result.verdict
    if not verdict or verdict.status != "root_cause":
        return "taken: inconclusive"
    return f"taken: root cause {verdict.service}" + (", a burst that ended" if result.hypotheses[0].ended else "")


def generated(seeds: int, scratch: Path) -> Iterator[tuple[str, str]]:
    for name in ("quiet", "busy-day"):
        for seed in range(1, seeds + 1):
            paths = generate(name, scratch / f"{name}-{seed}", seed=seed)
            store = load_telemetry(metrics=paths["metrics"], logs=paths["logs"], events=paths.get("events"))
            truth = json.loads(Path(paths["truth"]).read_text())
            times = [datetime(2024, 5, 1, hour) for hour in HOURS]
            times += [datetime.fromisoformat(d["start"].rstrip("Z")) + timedelta(minutes=10)
                      for d in truth["distractors"] if d["kind"] == "traffic_surge"]
            for at in times:
                yield name, outcome(store, at)


def nezha(system: str, data: Path, scratch: Path) -> Iterator[tuple[str, str]]:
    cuts: dict[str, MetricsCut] = {}
    for fault in load_faults(data, None):
        folder = rca_dir(data, fault.day)
        if fault.day not in cuts:
            cuts = {fault.day: MetricsCut(folder, scratch / fault.day)}
        minute = fault.inject_time.replace(second=0, microsecond=0)
        metrics = scratch / f"metrics-{minute:%H%M}.parquet"
        load_telemetry(metrics=cuts[fault.day].day).cursor().execute(
            f"COPY (SELECT * FROM metrics WHERE ts >= {sql_ts(minute - METRIC_HISTORY)} AND ts < {sql_ts(minute)}) "
            f"TO '{metrics}' (FORMAT parquet)")
        store, _ = fault_store(fault_inputs(folder, fault, minutes=(-2, -1)), metrics)
        yield f"Nezha {system}", outcome(store, minute - LEAD)


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    counts: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="incidentlens-alert-quiet-") as scratch:
        runs = [generated(seeds, Path(scratch))]
        runs += [nezha(system, data, Path(scratch)) for system, data in NEZHA.items() if data.is_dir()]
        for run in runs:
            for where, what in run:
                counts.setdefault(where, Counter())[what] += 1
    for where, seen in counts.items():
        taken = sum(n for what, n in seen.items() if what.startswith("taken"))
        named = sum(n for what, n in seen.items() if what.startswith("taken: root cause"))
        ended = sum(n for what, n in seen.items() if what.endswith("a burst that ended"))
        print(f"{where}: {sum(seen.values())} alert times; no incident {seen['no incident']}, taken as the start "
              f"{taken} (a root cause named {named}, said to be a burst that ended {ended}), a detector window "
              f"{seen['a detector window']}")


if __name__ == "__main__":
    main()
