"""The incident review over every generated scenario: does the real analysis render, grounded, in reasonable time?

For each scenario (seed 1): generate, analyze, build the postmortem, write JSON/Markdown/HTML with charts, and
print the build and render times, the statements the grounding validator checked and any it rejected, the evidence
ids cited but not held, the severity, whether the root cause matches the truth, and the size of report.html.

    .venv/bin/python benchmarks/bench_report.py [seed]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from incidentlens.analysis import analyze
from incidentlens.report import build_postmortem, write_reports
from incidentlens.scenarios import generate, list_scenarios
from incidentlens.telemetry import load_telemetry


def run(name: str, seed: int, root: Path) -> dict[str, object]:
    paths = generate(name, root / name, seed=seed)
    truth = json.loads(Path(paths["truth"]).read_text())
    store = load_telemetry(metrics=paths.get("metrics"), logs=paths.get("logs"), events=paths.get("events"))
    analysis = analyze(store).to_dict()
    started = time.perf_counter()
    pm = build_postmortem(analysis)
    built = time.perf_counter()
    written = write_reports(pm, root / name / "review", store=store)
    rendered = time.perf_counter()
    expected = (truth.get("root_cause") or {}).get("service")
    found = pm.root_cause.service if pm.root_cause else None
    return {
        "scenario": name, "detected": pm.detected, "severity": pm.severity or "-",
        "root cause ok": "no truth" if expected is None else str(expected == found),
        "statements": pm.grounding.statements, "ungrounded": len(pm.grounding.issues),
        "missing evidence": len(pm.grounding.missing_evidence),
        "build ms": round((built - started) * 1000), "write ms": round((rendered - built) * 1000),
        "html KB": round(written["html"].stat().st_size / 1024),
    }


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(name, seed, Path(tmp)) for name, _ in list_scenarios()]
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(row[c])) for row in rows)) for c in columns}
    print("  ".join(f"{c:>{widths[c]}}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]!s:>{widths[c]}}" for c in columns))
    issues = sum(int(row["ungrounded"]) for row in rows)
    missing = sum(int(row["missing evidence"]) for row in rows)
    print(f"\n{len(rows)} scenarios, seed {seed}: {issues} ungrounded statements, {missing} evidence ids cited but "
          "not held")


if __name__ == "__main__":
    main()
