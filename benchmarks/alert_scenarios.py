"""What `analyze --at T` (an alert time, the onset detected: what `serve` runs at each alert) answers on the
generated incident days when the alert fires some time after the incident began: is the root cause right, is it
named (a confident answer), and does the window keep the incident's start or begin at the alert?

The six incident scenarios, seeds 1..N, the alert 0, 2, 5 and 10 minutes after the truth window's start (slow-burning
faults such as `cache-miss-storm` are alerted late in practice). A rule about which window an alert is about is
measured here as well as on the Nezha days (`incidentlens eval nezha --alert-after`).

    .venv/bin/python benchmarks/alert_scenarios.py [seeds]      # 5 seeds when not given
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from incidentlens.analysis import analyze
from incidentlens.scenarios import generate
from incidentlens.telemetry import load_telemetry

SCENARIOS = ("db-pool-exhaustion", "cache-miss-storm", "bad-deploy", "region-outage", "oom-restart-loop",
             "provider-throttling")
DELAYS = (timedelta(0), timedelta(minutes=2), timedelta(minutes=5), timedelta(minutes=10))


def score(store: object, truth: dict, delay: timedelta) -> tuple[bool, bool, bool]:
    """(right service first, a root cause named, the window starts no later than the truth's start + 1 minute)."""
    start = datetime.fromisoformat(truth["window"]["start"].rstrip("Z"))
    result = analyze(store, at=start + delay)
    top = result.hypotheses[0].service if result.hypotheses else None
    named = result.verdict is not None and result.verdict.status == "root_cause"
    window = result.incident_window or {}
    kept_start = bool(window) and datetime.fromisoformat(window["start"].rstrip("Z")) <= start + timedelta(minutes=1)
    return top == truth["root_cause"]["service"], named, kept_start


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    tally: dict[timedelta, Counter[str]] = {delay: Counter() for delay in DELAYS}
    with tempfile.TemporaryDirectory(prefix="incidentlens-alert-scenarios-") as scratch:
        for name in SCENARIOS:
            for seed in range(1, seeds + 1):
                paths = generate(name, Path(scratch) / f"{name}-{seed}", seed=seed)
                store = load_telemetry(metrics=paths["metrics"], logs=paths["logs"], events=paths.get("events"))
                truth = json.loads(Path(paths["truth"]).read_text())
                for delay in DELAYS:
                    right, named, kept_start = score(store, truth, delay)
                    tally[delay].update({"runs": 1, "right": right, "named wrong": named and not right,
                                         "start kept": kept_start})
    for delay, seen in tally.items():
        print(f"alert {int(delay.total_seconds() // 60)} min after the start: {seen['runs']} runs; root cause first "
              f"{seen['right']}, named wrong {seen['named wrong']}, the incident's start kept {seen['start kept']}")


if __name__ == "__main__":
    main()
