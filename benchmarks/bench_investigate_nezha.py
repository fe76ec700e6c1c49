"""The agent team on every labelled Nezha TrainTicket fault with a known onset (`investigate --at T --onset at`).

For each of the 28 faults: the fault's logs and traces (after the day's files of the hour before them, as
`incidentlens eval nezha`, and the same day's fault-free minutes) and the metrics around it, investigated by the
offline team from the injection time; prints the review's root cause and the labelled service's rank among its
hypotheses, the statements the grounding check could not trace to evidence, how the run ended, and the seconds it
took. `--log-history MIN` (first; default 60): the minutes of the day's files before the fault's own; 0, its own
three minutes alone. Needs ../shared/datasets/nezha-trainticket.

    .venv/bin/python benchmarks/bench_investigate_nezha.py [--log-history MIN] [limit]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from incidentlens.agents import investigate
from incidentlens.eval.nezha import LOG_HISTORY, MetricsCut, NezhaFault, fault_inputs, fault_store, load_faults, rca_dir

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha-trainticket"
ARGS = sys.argv[1:]
HISTORY = timedelta(minutes=int(ARGS[1])) if ARGS[:1] == ["--log-history"] else LOG_HISTORY
ARGS = ARGS[2:] if ARGS[:1] == ["--log-history"] else ARGS


def run(fault: NezhaFault, metrics: MetricsCut) -> dict[str, object]:
    started = time.perf_counter()
    day = rca_dir(DATA, fault.day)
    store, _ = fault_store(fault_inputs(day, fault, reference=True, history=HISTORY), metrics.around(fault.inject_time))
    result = investigate(store, llm="offline", at=fault.inject_time, onset="at")
    pm = result.postmortem
    ranked = [h.service for h in pm.hypotheses]
    return {
        "fault": f"{fault.inject_time:%H:%M:%S}", "kind": fault.kind, "truth": fault.service,
        "root cause": pm.root_cause.service if pm.root_cause else "-",
        "rank": ranked.index(fault.service) + 1 if fault.service in ranked else None,
        "ungrounded": len(pm.grounding.issues), "onset": pm.detection.onset, "exit": result.exit_reason,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        return
    limit = int(ARGS[0]) if ARGS else None
    faults = load_faults(DATA)[:limit]
    with tempfile.TemporaryDirectory(prefix="incidentlens-bench-nezha-") as scratch:
        metrics = MetricsCut(rca_dir(DATA, faults[0].day), Path(scratch))
        rows = []
        for fault in faults:
            rows.append(run(fault, metrics))
            print("  ".join(f"{key}={value}" for key, value in rows[-1].items()), flush=True)
    ranks = [row["rank"] for row in rows]
    top1, top3 = sum(r == 1 for r in ranks), sum(r is not None and r <= 3 for r in ranks)
    ungrounded = sum(row["ungrounded"] for row in rows)
    errors = sum(row["exit"] == "error" for row in rows)
    seconds = sum(row["seconds"] for row in rows) / len(rows)
    print(f"faults {len(rows)}: top-1 {top1}, top-3 {top3}, ungrounded statements {ungrounded}, runs ended in error "
          f"{errors}, seconds per fault {seconds:.1f}; log history {HISTORY.total_seconds() / 60:g} min")


if __name__ == "__main__":
    main()
