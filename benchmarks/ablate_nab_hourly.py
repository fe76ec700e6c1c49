"""Rules against NAB's hourly false alarms, checked on the windows the robust detector opens: event F1 on NAB at
5 min and 1 h (shaping and held-out half, as `incidentlens eval nab` scores them) and on the generated short events
of `bench_short_events.py` (hourly and per-minute), for each rule beside today's detector.

Each rule keeps or drops the windows of one series after detection, so the detector runs once per series and
cadence. Dropping a window changes no other window's strength (the history bar is built from every run, open or
not), so a rule that only drops windows is measured exactly; a merge is measured as dropping the later window.

- `today`: the windows `detect_series` opens, each a detection at its first point.
- `detect-windows`: the windows `incidentlens detect` lists for the one series (its runs merged across 5 steps),
  each a detection at its start.
- `merge-K`: a window opening in the same direction as an earlier one, while it is open or within K times its
  duration after it ends (at least 5 steps), is part of it (K = 0: overlap or 5 steps).
- `daily-T`: on series of three days or more, a window opens only where a point of it lies T robust σ from the
  values at the same hour of the day on every day (median and MAD per hour of day): a daily peak is not an incident.
- `shift-T`: a level shift that opens on its own (no run) needs a change of T robust σ of the points.
- `bar-T`: a window needs strength T instead of the opening bar (5).
- `persist-N`: at steps of an hour or more, a window needs N steps past the extend threshold (one, today).
- `native-near` (NAB at 1 h only; an oracle, not a rule: it reads the 5-minute data): an hourly window counts only
  within 3 hours of a window the 5-minute run opens.

    .venv/bin/python benchmarks/ablate_nab_hourly.py [variant ...]     # all variants when none is named

Needs ../shared/datasets/nab.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from bench_short_events import EVENTS, SERIES, SETS

from incidentlens.analysis import detection
from incidentlens.analysis.points import SeriesDetection, Span
from incidentlens.eval import nab

NAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"
DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
MIN_DAYS = 3


@dataclass(frozen=True)
class Run:
    """One series at one cadence, detected once: its labelled windows (NAB) or events (generated), and for NAB at 1 h
    the same file's 5-minute detection (for the oracle)."""

    found: SeriesDetection
    half: str  # NAB's half, or the generated set's name
    windows: np.ndarray | None = None  # NAB: labelled windows, k x 2 datetime64
    events: list[tuple[int, int]] | None = None  # generated: event index ranges
    native: SeriesDetection | None = None


Rule = Callable[[Run], list[Span]]


def today(run: Run) -> list[Span]:
    return run.found.spans


def detect_windows(run: Run) -> list[Span]:
    """One detection per window `incidentlens detect` lists for this series alone, at the window's start."""
    found = run.found
    settings = detection.DEFAULT_SETTINGS
    windows = detection._robust_windows({"series": found}, detection._merge_gap_ns({"series": found}, settings),
                                        settings.open_threshold)
    starts = sorted(np.datetime64(w.start.replace(tzinfo=None), "ns") for w in windows)
    points = np.searchsorted(found.series.t, np.array(starts, dtype="datetime64[ns]"))
    return [Span(start=int(i), end=int(i), peak=int(i), direction="up", baseline=0.0, peak_value=0.0, shift=0.0)
            for i in points]


def merge(factor: float) -> Rule:
    def rule(run: Run) -> list[Span]:
        t = run.found.series.t.astype(np.int64)
        step = run.found.series.step_ns
        spans = run.found.spans
        kept = []
        for i, span in enumerate(spans):
            joins = False
            for earlier in spans[:i]:
                if earlier.direction != span.direction:
                    continue
                end = t[earlier.end] + step
                reach = max(detection.DEFAULT_SETTINGS.merge_gap_steps * step, factor * (end - t[earlier.start]))
                joins = joins or t[earlier.start] <= t[span.start] <= end + reach
            if not joins:
                kept.append(span)
        return kept
    return rule


def hour_of_day_z(found: SeriesDetection) -> np.ndarray | None:
    """Per point, its distance from the values at the same hour on every day, in their robust σ (None: under three
    days, or steps of a day or more)."""
    t = found.series.t.astype(np.int64)
    width = max(found.series.step_ns, HOUR_NS)
    if t[-1] - t[0] < MIN_DAYS * DAY_NS or width >= DAY_NS:
        return None
    y = found.series.y
    hour = ((t - t[0]) % DAY_NS) // width
    z = np.zeros(len(y))
    for h in np.unique(hour):
        at = hour == h
        centre = np.median(y[at])
        spread = 1.4826 * np.median(np.abs(y[at] - centre))
        z[at] = np.abs(y[at] - centre) / max(spread, 1e-9 * float(np.max(np.abs(y))) + 1e-12)
    return z


def daily(bar: float) -> Rule:
    def rule(run: Run) -> list[Span]:
        z = hour_of_day_z(run.found)
        if z is None:
            return run.found.spans
        return [span for span in run.found.spans if z[span.start:span.end + 1].max() >= bar]
    return rule


def shift_size(bar: float) -> Rule:
    def rule(run: Run) -> list[Span]:
        return [span for span in run.found.spans if len(span.scales) != 1 or abs(span.shift) >= bar]
    return rule


def strength(bar: float) -> Rule:
    def rule(run: Run) -> list[Span]:
        return [span for span in run.found.spans if span.strength >= bar]
    return rule


def persistence(steps: int) -> Rule:
    def rule(run: Run) -> list[Span]:
        step = run.found.series.step_ns
        if step < HOUR_NS:
            return run.found.spans
        return [span for span in run.found.spans if span.sustained_ns >= steps * step]
    return rule


def native_near(run: Run) -> list[Span]:
    if run.native is None:
        return run.found.spans
    t = run.found.series.t.astype(np.int64)
    step = run.found.series.step_ns
    nt = run.native.series.t.astype(np.int64)
    others = [(nt[s.start], nt[s.end]) for s in run.native.spans]
    return [span for span in run.found.spans
            if any(a <= t[span.end] + step + 3 * HOUR_NS and b >= t[span.start] - 3 * HOUR_NS for a, b in others)]


VARIANTS: dict[str, Rule] = {
    "today": today, "detect-windows": detect_windows,
    **{f"merge-{k:g}": merge(k) for k in (0, 1, 2, 4)},
    **{f"daily-{b:g}": daily(b) for b in (2, 3, 4)},
    **{f"shift-{b:g}": shift_size(b) for b in (2.5, 4)},
    **{f"bar-{b:g}": strength(b) for b in (5.5, 6)},
    **{f"persist-{n}": persistence(n) for n in (2, 3)},
    "native-near": native_near,
}


def nab_runs() -> dict[str, list[Run]]:
    """{cadence: runs}, NAB at 5 min ("native") and 1 h, every labelled file run as `detect` runs it."""
    labels = nab.load_labels(NAB)
    split = nab.split_of(labels)
    runs: dict[str, list[Run]] = {"native": [], "1h": []}
    for key in sorted(labels):
        ts, values = nab.load_series(NAB / "data" / key)
        native = None
        for cadence in runs:
            t, y, windows = nab.resample(ts, values, labels[key], nab.CADENCES[cadence])
            found = detection.detect_series(t, y)
            runs[cadence].append(Run(found=found, half=split[key], windows=windows, native=native))
            native = found
    return runs


def generated_runs() -> list[Run]:
    runs = []
    for name, generate in SETS.items():
        rng = np.random.default_rng(0)
        for _ in range(SERIES):
            ts, values, events = generate(rng)
            runs.append(Run(found=detection.detect_points(ts, values), half=name, events=events))
    return runs


def nab_f1(runs: list[Run], rule: Rule, half: str) -> str:
    score = nab.DetectorScore(detector="robust", series=[
        nab.score_series("", run.found.series.t, run.windows, replace(run.found, spans=rule(run)))
        for run in runs if run.half == half and run.windows is not None])
    return f"{score.f1:.3f} ({score.found}/{score.windows}, {score.false_alarms} of {score.detections})"


def generated_f1(runs: list[Run], rule: Rule, name: str) -> str:
    found = opened = inside = 0
    for run in (r for r in runs if r.half == name and r.events is not None):
        onsets = [span.start for span in rule(run)]
        found += sum(any(a <= onset <= b for onset in onsets) for a, b in run.events)
        opened += len(onsets)
        inside += sum(any(a <= onset <= b for a, b in run.events) for onset in onsets)
    recall = found / (SERIES * EVENTS)
    precision = inside / opened if opened else 0.0
    return f"{2 * precision * recall / (precision + recall) if precision + recall else 0.0:.2f}"


def main() -> None:
    if not NAB.is_dir():
        print(f"skipped: {NAB} not found")
        return
    names = sys.argv[1:] or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"error: unknown variant(s) {', '.join(unknown)}: choose from {', '.join(VARIANTS)}", file=sys.stderr)
        sys.exit(2)
    print("NAB event F1 (windows found / scored, false alarms of detections), shaping | held-out; generated F1",
          flush=True)
    by_cadence = nab_runs()
    generated = generated_runs()
    for name in names:
        rule = VARIANTS[name]
        cells = [f"{cadence} {nab_f1(runs, rule, 'shaping')} | {nab_f1(runs, rule, 'held-out')}"
                 for cadence, runs in by_cadence.items()]
        cells.append("generated " + " / ".join(generated_f1(generated, rule, s) for s in SETS))
        print(f"{name}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
