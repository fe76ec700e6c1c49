"""The call graph's edges from call metrics where the spans miss a service: TrainTicket's topology, a delay overlaid
on one service (as `calls_overlay_trainticket.py`), and that service's spans left out, as if it were not
instrumented: the day's per-pod metrics, the other services' spans of the hour before AT to three minutes after,
and call metrics made from all the spans. The delayed service's rank with the call metrics adding the edges no span
shows (as shipped), and beside it with them read only when the spans give no edge at all.

    .venv/bin/python benchmarks/calls_graph_gap_trainticket.py [DELAY_MS] [SERVICES]
    # default 30 ms into each of the 20 most called services, at each AT
"""

from __future__ import annotations

import importlib.util
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

import incidentlens.analysis.callgraph as callgraph
from incidentlens.analysis import analyze
from incidentlens.eval.nezha import MetricsCut
from incidentlens.telemetry import load_telemetry

_SPEC = importlib.util.spec_from_file_location("calls_overlay",
                                               Path(__file__).with_name("calls_overlay_trainticket.py"))
_CALLS = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_CALLS)
SERVICE = _CALLS.SERVICE
SHIPPED = callgraph._calls_edges


def _fallback(store: Any, span: Any, traced: list[Any], evidence: list[Any]) -> list[Any]:
    """Call-metrics edges only when the spans give none."""
    return [] if traced else SHIPPED(store, span, traced, evidence)


def main() -> None:
    if not _CALLS.DAY.is_dir():
        print(f"skipped: {_CALLS.DAY} not found")
        return
    delay_ms, count = _CALLS.arguments()
    con = duckdb.connect()
    services = _CALLS.most_called(con, count)
    first = {"shipped": 0, "fallback": 0}
    runs = 0
    with tempfile.TemporaryDirectory(prefix="incidentlens-calls-gap-") as scratch:
        metrics = MetricsCut(_CALLS.DAY, Path(scratch) / "metrics", _CALLS.METRIC_HISTORY)
        spans, gap, calls = (Path(scratch) / name for name in ("spans.csv", "gap.csv", "calls.parquet"))
        for at in _CALLS.ATS:
            cut = metrics.around(at)
            con.execute(f"CREATE OR REPLACE TABLE s AS SELECT * FROM base WHERE CAST(StartTimeUnixNano AS HUGEINT) "
                        f"< {_CALLS._ns(at + timedelta(minutes=3))}")
            for service in services:
                _CALLS._OVERLAY.overlay(con, service, delay_ms, spans, at)
                overlaid = f"read_csv('{spans}', header=true, all_varchar=true)"
                _CALLS.call_metrics(con, overlaid, calls)
                since = _CALLS._ns(at - timedelta(hours=1))
                con.execute(f"""COPY (SELECT * FROM {overlaid} WHERE {SERVICE.format('PodName')} <> '{service}'
                    AND CAST(StartTimeUnixNano AS HUGEINT) >= {since}) TO '{gap}' (HEADER)""")
                line = []
                for name, edges in (("shipped", SHIPPED), ("fallback", _fallback)):
                    callgraph._calls_edges = edges
                    result = analyze(load_telemetry(metrics=cut, traces=gap, calls=calls), at=at, onset="at")
                    names = [h.service for h in result.hypotheses]
                    rank = names.index(service) + 1 if service in names else None
                    first[name] += rank == 1
                    top = [(h.service, h.kind, h.confidence) for h in result.hypotheses[:2]]
                    line.append(f"{name} rank {rank} top {top}")
                callgraph._calls_edges = SHIPPED
                runs += 1
                print(f"{at:%H:%M} {service:30s} " + " | ".join(line), flush=True)
    print(f"{delay_ms:g} ms into each of {len(services)} services at {len(_CALLS.ATS)} onsets, its spans left out: "
          f"first in {first['shipped']} of {runs} as shipped, {first['fallback']} with call-metrics edges only "
          "without span edges")


if __name__ == "__main__":
    main()
