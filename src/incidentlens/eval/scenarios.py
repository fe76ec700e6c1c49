"""`eval scenarios`: run `analyze` on every generated scenario over several seeds and score it against truth.json.

Per run: the window IoU with the truth window, whether the true root-cause service is the top hypothesis (top-1)
or among the first three (top-3), whether the top hypothesis has the true kind, whether the verdict is right (the
true service named the root cause; or, where the truth has an incident but no single root cause, "no single root
cause found"), and for a scenario without an incident (`quiet`, `busy-day`) whether an incident was (falsely)
reported. Per scenario: means and rates over the seeds. Over all runs: the calibration of the hypotheses'
confidences (`eval.calibration`: a hypothesis is right when its service is the true root cause).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from incidentlens.analysis import analyze
from incidentlens.errors import InputError
from incidentlens.eval.calibration import Calibration, calibration
from incidentlens.scenarios import generate, list_scenarios
from incidentlens.telemetry import load_telemetry


class ScenarioRun(BaseModel):
    """One scenario at one seed."""

    scenario: str
    seed: int
    detected: bool
    truth_window: bool
    iou: float | None
    truth_root: str | None
    truth_kind: str | None
    ranked: list[str]
    top_kind: str | None
    top1: bool | None
    top3: bool | None
    kind_match: bool | None
    verdict: str | None = None
    verdict_right: bool | None = None
    confidences: list[float] = []
    false_incident: bool | None
    seconds: float
    reason: str | None = None


class ScenarioSummary(BaseModel):
    """One scenario over all seeds (rates over the runs where they apply; None where none does)."""

    scenario: str
    runs: int
    mean_iou: float | None
    top1: float | None
    top3: float | None
    kind_accuracy: float | None
    verdict_accuracy: float | None = None
    false_incidents: int
    missed: int
    mean_seconds: float


class ScenarioEval(BaseModel):
    seeds: list[int]
    summaries: list[ScenarioSummary]
    runs: list[ScenarioRun]
    calibration: Calibration | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


#: the most seeds one `eval scenarios` runs: a seed runs every scenario (about 8 s on 2 cores), so 1000 take two hours
MAX_SEEDS = 1000


def parse_seeds(text: str) -> list[int]:
    """`1-10`, `3`, `1,4,7` or `1-3,8` -> sorted seeds, at most `MAX_SEEDS` of them."""
    ranges: list[tuple[int, int]] = []
    for part in (p.strip() for p in text.split(",")):
        # ASCII digits only, and few enough that int() never meets Python's limit on digits (a traceback)
        match = re.fullmatch(r"([0-9]{1,9})(?:-([0-9]{1,9}))?", part)
        if not match:
            raise InputError(f"--seeds '{text}': expected seeds like 1-10, 3 or 1,4,7 (whole numbers under 10^9)")
        low, high = int(match[1]), int(match[2] or match[1])
        if low > high:
            raise InputError(f"--seeds '{text}': the range {part} runs backwards; write it low to high, {high}-{low}")
        ranges.append((low, high))
    count = _distinct(ranges)  # before any range is expanded: 1-1000000000 would fill the memory first
    if count > MAX_SEEDS:
        raise InputError(f"--seeds '{text}': {count} seeds; at most {MAX_SEEDS} in one run")
    return sorted({seed for low, high in ranges for seed in range(low, high + 1)})


def _distinct(ranges: list[tuple[int, int]]) -> int:
    """How many integers the inclusive ranges cover together (overlaps counted once)."""
    total, covered_to = 0, -1
    for low, high in sorted(ranges):
        total += max(0, high - max(low, covered_to + 1) + 1)
        covered_to = max(covered_to, high)
    return total


def evaluate_scenarios(
    names: Iterable[str] | None = None,
    seeds: Iterable[int] = range(1, 11),
    logs: int | None = None,
    work_dir: Path | None = None,
    on_run: Callable[[ScenarioRun], None] | None = None,
) -> ScenarioEval:
    """Generate each scenario at each seed, analyze it, and score the result; `on_run` sees each run as it ends."""
    known = [name for name, _ in list_scenarios()]
    chosen = list(names) if names else known
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise InputError(f"unknown scenario '{unknown[0]}': choose one of {', '.join(known)}")
    seed_list = list(seeds)
    runs: list[ScenarioRun] = []
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for name in chosen:
            for seed in seed_list:
                run = run_scenario(name, seed, Path(tmp) / f"{name}-{seed}", logs=logs)
                runs.append(run)
                if on_run:
                    on_run(run)
    return ScenarioEval(seeds=seed_list, summaries=[summarize(name, runs) for name in chosen], runs=runs,
                        calibration=calibration(pair for run in runs for pair in confidence_pairs(run)))


def run_scenario(name: str, seed: int, out_dir: Path, logs: int | None = None) -> ScenarioRun:
    """Generate one scenario, analyze it, score it against its truth.json."""
    paths = generate(name, out_dir, seed=seed, logs=logs, fmt="parquet")
    truth = json.loads(Path(paths["truth"]).read_text())
    started = time.perf_counter()
    store = load_telemetry(metrics=paths.get("metrics"), logs=paths.get("logs"), events=paths.get("events"))
    result = analyze(store).to_dict()
    seconds = time.perf_counter() - started
    return score_run(name, seed, truth, result, seconds)


def score_run(name: str, seed: int, truth: dict[str, Any], result: dict[str, Any], seconds: float) -> ScenarioRun:
    """Compare one analysis.json with one truth.json."""
    truth_window = truth.get("window")
    root = truth.get("root_cause") or {}
    ranked = [h["service"] for h in result["hypotheses"]]
    kinds = [h["kind"] for h in result["hypotheses"]]
    iou = None
    if truth_window:
        iou = window_iou(truth_window, result["incident_window"]) if result["detected"] else 0.0
    truth_root = root.get("service")
    verdict = (result.get("verdict") or {}) if result["detected"] else {}
    return ScenarioRun(
        scenario=name,
        seed=seed,
        detected=result["detected"],
        truth_window=bool(truth_window),
        iou=None if iou is None else round(iou, 4),
        truth_root=truth_root,
        truth_kind=root.get("kind"),
        ranked=ranked,
        top_kind=kinds[0] if kinds else None,
        top1=None if truth_root is None else ranked[:1] == [truth_root],
        top3=None if truth_root is None else truth_root in ranked[:3],
        kind_match=None if not root.get("kind") else kinds[:1] == [root["kind"]],
        verdict=verdict.get("status"),
        verdict_right=verdict_right(truth, verdict) if truth_window and result["detected"] else None,
        confidences=[h["confidence"] for h in result["hypotheses"]],
        false_incident=None if truth_window else result["detected"],
        seconds=round(seconds, 3),
        reason=result.get("reason"),
    )


def verdict_right(truth: dict[str, Any], verdict: dict[str, Any]) -> bool:
    """Whether the verdict matches the truth: the true service named the root cause, or, where the truth has no
    single root cause (`root_cause: null`), "no single root cause found"."""
    root = (truth.get("root_cause") or {}).get("service")
    if root is None:
        return verdict.get("status") == "inconclusive"
    return verdict.get("status") == "root_cause" and verdict.get("service") == root


def confidence_pairs(run: ScenarioRun) -> list[tuple[float, bool]]:
    """(confidence, right) for each hypothesis of a run with an incident in its truth: right when its service is
    the true root cause (none is, where the truth has no single root cause)."""
    if not run.truth_window or not run.detected:
        return []
    return [(confidence, service == run.truth_root) for confidence, service in zip(run.confidences, run.ranked,
                                                                                    strict=True)]


def window_iou(truth: dict[str, str], found: dict[str, str] | None) -> float:
    """Intersection over union of two {start, end} windows (ISO times)."""
    if not found:
        return 0.0
    t0, t1 = _parse(truth["start"]), _parse(truth["end"])
    f0, f1 = _parse(found["start"]), _parse(found["end"])
    overlap = (min(t1, f1) - max(t0, f0)).total_seconds()
    union = (max(t1, f1) - min(t0, f0)).total_seconds()
    return max(0.0, overlap) / union if union > 0 else 0.0


def summarize(name: str, runs: list[ScenarioRun]) -> ScenarioSummary:
    mine = [r for r in runs if r.scenario == name]
    return ScenarioSummary(
        scenario=name,
        runs=len(mine),
        mean_iou=_mean([r.iou for r in mine]),
        top1=_mean([r.top1 for r in mine]),
        top3=_mean([r.top3 for r in mine]),
        kind_accuracy=_mean([r.kind_match for r in mine]),
        verdict_accuracy=_mean([r.verdict_right for r in mine]),
        false_incidents=sum(bool(r.false_incident) for r in mine),
        missed=sum(r.truth_window and not r.detected for r in mine),
        mean_seconds=round(sum(r.seconds for r in mine) / max(1, len(mine)), 3),
    )


def _mean(values: list[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
