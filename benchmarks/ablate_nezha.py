"""Ablations and leave-one-system-out figures of the root-cause ranking on the Nezha days (no reference minute).

Each variant switches off one rule of the ranking and scores every fault of each dataset given, the way
`incidentlens eval nezha --data DIR` does (known onset, the fault's log and trace minutes after the day's files of
the hour before them, an hour of metrics).
A rule is kept when it helps on more than one system, or helps on one and costs nothing on the other.

    .venv/bin/python benchmarks/ablate_nezha.py [--without SOURCE] [variant ...]     # all variants when none is named

`--without traces` (or logs, metrics) scores each fault without that source, as `eval nezha --without` does.

Needs ../shared/datasets/nezha-trainticket and nezha-onlineboutique.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

from incidentlens.analysis import callmetrics, masking, mechanism, rootcause, shifts, spans
from incidentlens.eval import nezha
from incidentlens.eval.nezha import evaluate_nezha

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SYSTEMS = {"TrainTicket": DATASETS / "nezha-trainticket", "OnlineBoutique": DATASETS / "nezha-onlineboutique"}


def _own_time_with_client_spans(window: spans.Span, baseline: spans.Span) -> str:
    return _ORIGINAL_OWN_TIME(window, baseline).replace("HAVING NOT client", "")


def _tail_cut_at_the_p90_before(window: spans.Span, baseline: spans.Span) -> str:
    """The last round's tail test: the cut at the p90 of the spans before the onset, not of both sides."""
    return _ORIGINAL_OWN_TIME(window, baseline).replace(
        "quantile_cont(own_ms, 0.9) AS p90 FROM own GROUP BY", "quantile_cont(own_ms, 0.9) AS p90 FROM own WHERE NOT "
                                                                "after GROUP BY")


_ORIGINAL_OWN_TIME = spans.own_time_sql
_ORIGINAL_WAIT_SHIFTS = spans.wait_shifts


def _typical_wait_always(edges, directions=("in", "out"), peers="lower", parsimony=True):
    """Every call edge against the lower of its history and the typical wait, whether or not any call changed: an
    edge whose history waited longer than the typical wait is held against the typical wait as an edge with no
    history is, its shift and its rank test both (among the other edges' calls). Lowering its median before alone,
    as this variant did, left the rank test against its own calls before (`spans._rank_test`)."""
    comparable = sorted(e["wait_after"] for e in edges if e["source"] in spans.PEER_COMPARABLE)
    typical = comparable[(len(comparable) - 1) // 2] if comparable else 0.0  # as wait_shifts takes it
    held = [{**e, "history": False}
            if e["history"] and e["source"] in spans.PEER_COMPARABLE and e["wait_before"] > typical else e
            for e in edges]
    return _ORIGINAL_WAIT_SHIFTS(held, directions, peers, parsimony)
_ORIGINAL_GRID = shifts._MinuteGrid.build.__func__
_ORIGINAL_SURGE_SQL = shifts.log_surge_sql


def _calendar_minute(t):
    return t.replace(second=0, microsecond=0)


def _calendar_surge_sql(window, baseline, services=None):
    return _ORIGINAL_SURGE_SQL((_calendar_minute(window[0]), window[1]), baseline, services)


def _calendar_grid(cls, table, start, end, origin):
    return _ORIGINAL_GRID(cls, table, start, end, _calendar_minute(origin))


def _specificity_strong_cues_only(service, moved, cues):
    """The rule before a CPU at its limit counted: only strong metric cues (pool, cache, restarts, throttling)."""
    words = max((cues.share(service, kind) for kind in mechanism.LOG_CUES), default=0.0)
    resource = any(weight >= 3 for _, _, weight, _ in mechanism._metric_cues(service, moved))
    return max(min(1.0, 2 * words), 1.0 if resource else 0.0)


_ORIGINAL_ADD_CUT_AT = rootcause._add_cut_at


def _largest_cut_at(callee, caller):
    """Cuts in several callers after the same callee: the largest, not their chi-square combination."""
    _ORIGINAL_ADD_CUT_AT(callee, caller)
    callee.cut_strength = max(callee.cut_at_by.values())


def _root_sum_of_squares(zs):
    """The last round's combination of cuts: the root of the sum of their squares, which grows with every cut."""
    return round(math.sqrt(sum(z * z for z in zs)), 4)


_ORIGINAL_EARLIER_DOWNSTREAM = rootcause._earlier_downstream


def _victim_within_a_minute(s, signals, graph, sample):
    """The last round's victim rule: a callee up to a fixed minute after its caller moved no later, at any step."""
    return _ORIGINAL_EARLIER_DOWNSTREAM(s, signals, graph, timedelta(minutes=1) / rootcause.SAME_SAMPLE_STEPS)


def _surge_by_ratio(surge: shifts.LogSurge) -> bool:
    """The last round's surge: three times the baseline's rate and five lines, however likely by chance."""
    return surge.onset is not None and surge.ratio >= 3.0 and surge.window_problems >= shifts.MIN_SURGE_LINES


#: variant -> the patches that switch its rule off
VARIANTS: dict[str, Callable[[], list[mock._patch]]] = {
    "full": lambda: [],
    # the hour of logs and traces before each fault, and the three rules that read a long baseline right
    "the fault's own three minutes alone (--log-history 0)": lambda: [
        mock.patch.object(nezha, "earlier_files", lambda day_dir, fault, history, first=0: {"logs": [], "traces": []})],
    "log lines over every trace, logged or not": lambda: [
        mock.patch.object(spans, "_logged_sql", lambda *_: "TRUE")],
    "per-trace log events by masked line, not by statement (Drain)": lambda: [
        mock.patch.object(spans, "statements_relation", lambda store, masks, span: None)],
    "a line's template is the whole masked line": lambda: [
        mock.patch.object(masking, "MAX_TEMPLATE_CHARS", masking.MAX_MESSAGE_CHARS)],
    "no typical minute (the pooled share alone)": lambda: [mock.patch.object(spans, "DISPERSION_MINUTES", 10**6)],
    "the typical minute from 3 minutes": lambda: [mock.patch.object(spans, "DISPERSION_MINUTES", 3)],
    "no wait on calls": lambda: [mock.patch.object(spans, "wait_shifts", lambda edges: {})],
    "wait into a service only": lambda: [
        mock.patch.object(spans, "wait_shifts", functools.partial(spans.wait_shifts, directions=("in",)))],
    "no typical-wait baseline": lambda: [
        mock.patch.object(spans, "wait_shifts", functools.partial(spans.wait_shifts, peers="never"))],
    "no parsimony over delayed calls": lambda: [
        mock.patch.object(spans, "wait_shifts", functools.partial(spans.wait_shifts, parsimony=False))],
    "typical wait always": lambda: [mock.patch.object(spans, "wait_shifts", _typical_wait_always)],
    "typical wait only without history": lambda: [
        mock.patch.object(spans, "wait_shifts", functools.partial(spans.wait_shifts, peers="missing"))],
    "a wait counted without the rank test": lambda: [mock.patch.object(spans, "rank_test_z", lambda waits: None)],
    "a lone lead's share by its trace change's size, not how sure it is": lambda: [
        mock.patch.object(spans.TraceSignal, "sureness", property(lambda s: s.strength))],
    # call metrics (OnlineBoutique only: TrainTicket's day has none; `calls_overlay_trainticket.py` for its topology)
    "call metrics: the minutes before at their median, not their p90": lambda: [
        mock.patch.object(callmetrics, "BEFORE_QUANTILE", 0.5)],
    "call metrics from 2 minutes a side, not 3": lambda: [mock.patch.object(callmetrics, "MIN_INTERVALS", 2)],
    "call metrics held against the typical wait too": lambda: [
        mock.patch.object(spans, "PEER_COMPARABLE", ("spans", callmetrics.SOURCE))],
    "client spans in own time": lambda: [mock.patch.object(spans, "own_time_sql", _own_time_with_client_spans)],
    "a delay named while its own work slowed": lambda: [
        mock.patch.object(rootcause, "own_work_slowed", lambda moved, server_latency=True: None)],
    "own time without the tail test": lambda: [mock.patch.object(
        spans.TraceSignal, "own_time", property(lambda s: spans.OWN_TIME_WEIGHT * s.own_time_shift))],
    "the tail test's cut at the p90 before": lambda: [
        mock.patch.object(spans, "own_time_sql", _tail_cut_at_the_p90_before)],
    "log minutes by the calendar": lambda: [
        mock.patch.object(shifts, "log_surge_sql", _calendar_surge_sql),
        mock.patch.object(shifts._MinuteGrid, "build", classmethod(_calendar_grid))],
    "traffic counters make suspects": lambda: [mock.patch.object(rootcause, "own_health", lambda metric: True)],
    "CPU at its limit not a mechanism": lambda: [
        mock.patch.object(rootcause, "specificity", _specificity_strong_cues_only)],
    # calibration only: the ranking (top-1/top-3) is the same, the stated confidences are not (ECE)
    "a shift alone stands on its own": lambda: [
        mock.patch.object(rootcause, "stands_on_its_own", lambda s, kind, parts: True)],
    "best alone at 88% (the last round's cap)": lambda: [mock.patch.object(rootcause, "MAX_MARGIN", 2.0)],
    "a call fewer stands on its own": lambda: [
        mock.patch.object(spans.TraceSignal, "cut_short", property(lambda s: False))],
    "the callee requests now end after is no candidate": lambda: [
        mock.patch.object(rootcause, "_add_cut_at", lambda callee, caller: None)],
    "cuts after one callee not added up (the largest)": lambda: [
        mock.patch.object(rootcause, "_add_cut_at", _largest_cut_at)],
    "cuts after one callee added as the root of their squares": lambda: [
        mock.patch.object(rootcause, "combined_z", _root_sum_of_squares)],
    "a callee gets the whole cut, wherever the new cuts end": lambda: [
        mock.patch.object(rootcause, "_callee_share", lambda caller: 1.0)],
    "a callee up to a minute after its caller makes it a victim (not the same sample)": lambda: [
        mock.patch.object(rootcause, "_earlier_downstream", _victim_within_a_minute)],
    "a callee up to a moment after its caller makes it a victim (1.5 samples)": lambda: [
        mock.patch.object(rootcause, "SAME_SAMPLE_STEPS", rootcause.SAME_MOMENT_STEPS)],
    "a callee a moment before its caller makes it a victim, not one in its sample": lambda: [
        mock.patch.object(rootcause, "SAME_SAMPLE_STEPS", -rootcause.SAME_MOMENT_STEPS)],
    "a callee known only by cuts is no victim of its own callees": lambda: [
        mock.patch.object(rootcause, "_fails_on_its_own", lambda s: False)],
    # a WARN/ERROR surge is made by its z past chance (`shifts.surge_z`)
    "a surge made by its rate ratio (x3), not its z": lambda: [
        mock.patch.object(shifts.LogSurge, "significant", property(_surge_by_ratio))],
}


@contextmanager
def applied(variant: str) -> Iterator[None]:
    patches = VARIANTS[variant]()
    for patch in patches:
        patch.start()
    try:
        yield
    finally:
        for patch in reversed(patches):
            patch.stop()


def _without(args: list[str]) -> list[str]:
    """The source named after `--without`, both taken out of `args`."""
    if "--without" not in args:
        return []
    at = args.index("--without")
    source = args[at + 1]
    del args[at:at + 2]
    return [source]


def main() -> None:
    missing = [str(path) for path in SYSTEMS.values() if not path.is_dir()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found")
        return
    args = sys.argv[1:]
    without = _without(args)
    variants = args or list(VARIANTS)
    print("| variant | " + " | ".join(f"{name} top-1 | {name} top-3 | {name} ECE" for name in SYSTEMS)
          + " | by type (top-1) |")
    print("|---|" + "---|---|---|" * len(SYSTEMS) + "---|")
    for variant in variants:
        cells, types = [], []
        with applied(variant):
            for name, data in SYSTEMS.items():
                report = evaluate_nezha(data, without=without)
                summary = report.summary()
                faults = summary["faults"]
                cells += [f"{summary['top1_count']}/{faults}", f"{summary['top3_count']}/{faults}",
                          f"{report.calibration().ece:.3f}"]
                types += [f"{name[:2]} {kind} {s['top1_count']}/{s['faults']}"
                          for kind, s in summary["by_type"].items()]
        print(f"| {variant} | " + " | ".join(cells) + f" | {', '.join(types)} |", flush=True)


if __name__ == "__main__":
    main()
