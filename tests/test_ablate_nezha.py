"""The ablation script's variants switch off what their names say (benchmarks/ablate_nezha.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from incidentlens.analysis import spans
from incidentlens.analysis.spans import SIGNIFICANT_STRENGTH, wait_shifts
from test_spans import _calls

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablate_nezha.py"


def _ablations():
    spec = importlib.util.spec_from_file_location("ablate_nezha", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_typical_wait_always_holds_a_delayed_history_against_the_typical_wait_in_its_rank_test_too():
    # order's calls changed against their own history, so as shipped cart's history (already slow, 60 ms against
    # the others' 3 ms) stays its baseline; "typical wait always" holds cart against the typical wait whatever
    # changed. It lowered cart's median before alone, and the rank test still ranked cart's calls against its own
    # slow calls before: not held against the typical wait at all
    others = [_calls("web", f"svc{i}", [3.0] * 20, [3.0 + 0.1 * k for k in range(20)]) for i in range(4)]
    edges = [*others, _calls("web", "cart", [60.0 + 0.1 * k for k in range(20)], [60.0 + 0.1 * k for k in range(20)]),
             _calls("api", "order", [3.0] * 20, [40.0 + k for k in range(20)])]
    shipped = wait_shifts(edges)
    assert shipped["cart"]["baseline"] == "history" and shipped["cart"]["z"] < SIGNIFICANT_STRENGTH

    ablation = _ablations()
    with ablation.applied("typical wait always"):
        always = spans.wait_shifts(edges)
    assert always["cart"]["baseline"] == "peers"
    assert always["cart"]["z"] >= SIGNIFICANT_STRENGTH
    assert always["order"] == shipped["order"]  # a call edge whose history is no slower than typical keeps it
