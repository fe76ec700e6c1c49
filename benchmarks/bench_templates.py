"""Choosing Drain's similarity threshold without tuning to the scored systems: leave-one-system-out on Loghub-2k.

For each threshold, every system's grouping accuracy (each raw log read as a user's file is). Then:
- leave one system out: the threshold with the best average on the other systems, scored on the one left out;
- two halves: the threshold chosen on half the systems (alphabetical: first four, then last four), scored on the
  other half.
Run: .venv/bin/python benchmarks/bench_templates.py [../shared/datasets/loghub-2k]
"""

from __future__ import annotations

import sys
from pathlib import Path

from incidentlens.analysis.templates import MINING_SIMILARITY
from incidentlens.eval.templates import evaluate_templates, loghub_systems

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def best_threshold(scores: dict[float, dict[str, float]], systems: list[str]) -> float:
    """The threshold with the highest average over `systems` (the lower one on a tie)."""
    return max(THRESHOLDS, key=lambda t: (sum(scores[t][s] for s in systems) / len(systems), -t))


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/loghub-2k")
    systems = loghub_systems(data)
    scores = {t: {s.system: s.grouping_accuracy for s in evaluate_templates(data, similarity=t).systems}
              for t in THRESHOLDS}
    print("threshold " + " ".join(f"{s[:9]:>9}" for s in systems) + "   average")
    for t in THRESHOLDS:
        row = scores[t]
        mark = "  (shipped)" if t == MINING_SIMILARITY else ""
        print(f"{t:9.1f} " + " ".join(f"{row[s]:9.3f}" for s in systems)
              + f"   {sum(row.values()) / len(row):.3f}{mark}")
    print("\nleave one system out: threshold chosen on the other systems -> GA of the one left out")
    held_out = []
    for system in systems:
        others = [s for s in systems if s != system]
        chosen = best_threshold(scores, others)
        held_out.append(scores[chosen][system])
        print(f"  {system:10} chosen {chosen:.1f} -> {scores[chosen][system]:.3f}")
    print(f"  average over held-out systems: {sum(held_out) / len(held_out):.3f}, "
          f"lowest {min(held_out):.3f}")
    half = len(systems) // 2
    for chosen_on, scored_on in ((systems[:half], systems[half:]), (systems[half:], systems[:half])):
        chosen = best_threshold(scores, chosen_on)
        average = sum(scores[chosen][s] for s in scored_on) / len(scored_on)
        print(f"chosen on {', '.join(chosen_on)}: {chosen:.1f} -> {average:.3f} on {', '.join(scored_on)}")


if __name__ == "__main__":
    main()
