"""Calibration of the root-cause confidences, leaving one dataset out: the margin over "none of these" shaped on two
of the Nezha days and the scenarios, scored on the third.

Every fault of both Nezha days (as `incidentlens eval nezha --data DIR`, no reference minute) and the scenarios at
seeds 1-10 (as `incidentlens eval scenarios --seeds 1-10`) are ranked once; each ranking's scores are kept, and the
confidences are recomputed for each cap `rootcause.MAX_MARGIN` on a grid (the ranking does not depend on it). Per
dataset and cap: the log loss (smooth: it chooses the cap) and the ECE (`eval.calibration`, what the README reports).
Then, per dataset left out, the cap that minimises the other two's log loss and the ECE and log loss it gives there.
TrainTicket with its fault-free reference minute (`--reference`: a cleaner baseline, the same faults) is shown beside
them, not left out.
Every cap is scored with the share of it a best hypothesis resting on one test gets (`rootcause.support`) and, beside
it, with the full cap for every such one (the rule left out); the pseudo-onsets with no fault of both days (`eval nezha
--null`), where every lead is false, show how much confidence each states on chance (mean, runs at 90% or more).

    .venv/bin/python benchmarks/calibrate_nezha.py

Needs ../shared/datasets/nezha-trainticket and nezha-onlineboutique.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from incidentlens.analysis import pipeline, rootcause
from incidentlens.eval.calibration import calibration
from incidentlens.eval.nezha import evaluate_nezha, null_calibration
from incidentlens.eval.scenarios import evaluate_scenarios

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NEZHA = {"TrainTicket": DATASETS / "nezha-trainticket", "OnlineBoutique": DATASETS / "nezha-onlineboutique"}
CAPS = [round(float(c), 2) for c in np.arange(1.0, 3.51, 0.25)]


@dataclass
class Scored:
    """One ranking: every candidate's score, the top three with theirs, whether the best stands on its own, the
    truth."""

    totals: list[float]
    top: list[tuple[str, float]]
    standing: bool
    support: float
    truth: str | None = None

    def pairs(self, cap: float, one_test: bool = True) -> list[tuple[float, bool]]:
        """(confidence, right) of the top three with the cap `cap` (as `rank_root_causes` computes them); without
        `one_test`, the full cap for a best hypothesis resting on one test too."""
        if not self.top:
            return []
        margin = cap * (self.support if one_test else 1.0) if self.standing else rootcause.THIN_MARGIN
        none_of_these = max(rootcause.NONE_OF_THESE, max(self.totals) - margin)
        norm = sum(math.exp(t) for t in self.totals) + math.exp(none_of_these)
        return [(round(math.exp(total) / norm, 3), service == self.truth) for service, total in self.top]


@contextmanager
def recording(into: list[Scored]) -> Iterator[None]:
    """Keep each ranking's scores as `analyze` ranks (one ranking per analysed incident)."""
    original = pipeline.rank_root_causes

    def rank(*args: Any, **kwargs: Any) -> Any:
        ranking, evidence = original(*args, **kwargs)
        top = [(h.service, ranking.scores[h.service]["total"]) for h in ranking.hypotheses]
        into.append(Scored(totals=[s["total"] for s in ranking.scores.values()], top=top,
                           standing=ranking.stands_on_its_own, support=ranking.support))
        return ranking, evidence

    with mock.patch.object(pipeline, "rank_root_causes", rank):
        yield


def nezha_rankings(data: Path, reference: bool = False) -> list[Scored]:
    kept: list[Scored] = []
    labelled: list[Scored] = []

    def label(_: int, __: int, score: Any) -> None:
        if kept:  # a fault whose analysis found nothing to rank has no ranking
            kept[-1].truth = score.service
            labelled.append(kept.pop())

    with recording(kept):
        evaluate_nezha(data, progress=label, reference=reference)
    return labelled


def null_rankings(data: Path) -> list[Scored]:
    """The rankings at the pseudo-onsets with no fault (`null_calibration`): no service is the truth."""
    kept: list[Scored] = []
    with recording(kept):
        null_calibration(data)
    return kept


def scenario_rankings() -> list[Scored]:
    kept: list[Scored] = []
    labelled: list[Scored] = []

    def label(run: Any) -> None:
        scored = kept.pop() if kept else None
        if scored is not None and run.truth_window and run.detected:  # as `scenarios.confidence_pairs`
            scored.truth = run.truth_root
            labelled.append(scored)
        kept.clear()

    with recording(kept):
        evaluate_scenarios(seeds=range(1, 11), on_run=label)
    return labelled


def log_loss(pairs: list[tuple[float, bool]]) -> float:
    return -float(np.mean([math.log(max(1e-4, c if right else 1 - c)) for c, right in pairs]))


def main() -> None:
    missing = [str(path) for path in NEZHA.values() if not path.is_dir()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found")
        return
    sets = {name: nezha_rankings(data) for name, data in NEZHA.items()}
    sets["scenarios"] = scenario_rankings()
    shaping = list(sets)
    sets["TrainTicket --reference"] = nezha_rankings(NEZHA["TrainTicket"], reference=True)
    chance = {f"{name} --null": null_rankings(data) for name, data in NEZHA.items()}
    for name, scored in sets.items():  # the caps and the share move confidences only, never the ranking
        first = sum(1 for r in scored if r.top and r.top[0][0] == r.truth)
        print(f"{name}: top-1 {first}, top-3 {sum(1 for r in scored if r.truth in [s for s, _ in r.top])} "
              f"of {len(scored)} ranked")
    for one_test in (True, False):
        print(f"\n{'with' if one_test else 'WITHOUT'} the share for a best hypothesis resting on one test")
        table(sets, chance, shaping, one_test)


def table(sets: dict[str, list[Scored]], chance: dict[str, list[Scored]], shaping: list[str], one_test: bool) -> None:
    def pairs(name: str, cap: float) -> list[tuple[float, bool]]:
        return [p for scored in sets[name] for p in scored.pairs(cap, one_test)]

    def stated(name: str, cap: float) -> str:
        tops = [scored.pairs(cap, one_test)[0][0] if scored.top else 0.0 for scored in chance[name]]
        return f"{np.mean(tops):.3f} / {sum(c >= 0.9 for c in tops)} of {len(tops)}"

    print("| cap | " + " | ".join(f"{name} ECE / log loss" for name in sets)
          + " | " + " | ".join(f"{name} mean stated / at 90%+" for name in chance) + " |")
    print("|---|" + "---|" * (len(sets) + len(chance)))
    for cap in CAPS:
        cells = [f"{calibration(pairs(name, cap)).ece:.3f} / {log_loss(pairs(name, cap)):.3f}" for name in sets]
        cells += [stated(name, cap) for name in chance]
        print(f"| {cap:g}{' (shipped)' if cap == rootcause.MAX_MARGIN else ''} | " + " | ".join(cells) + " |")
    print("\nleave one out: the cap shaped on the others (least log loss), the ECE and log loss on the one left out")
    for held in shaping:
        others = [name for name in shaping if name != held]
        cap = min(CAPS, key=lambda c: log_loss([p for name in others for p in pairs(name, c)]))
        print(f"  shaped on {' + '.join(others)}: cap {cap:g}; {held} ECE {calibration(pairs(held, cap)).ece:.3f}, "
              f"log loss {log_loss(pairs(held, cap)):.3f}")


if __name__ == "__main__":
    main()
