"""Who calls whom: the service call graph, from spans, call metrics, logs sharing a trace id, or log messages.

Root-cause ranking needs the call direction because callers fail after their callees. The sources, best first:
spans (a child span of another service is a call to it), call metrics (the `calls` view: a service mesh's latency
per call edge and interval names its caller and callee), logs of several services sharing a trace id (the service
that logs first in a trace is upstream of those that log later), and WARN/ERROR messages that name another service
("upstream db-proxy timed out"). Call metrics add the edges the spans do not show (a service whose spans are
missing still calls and is called); logs sharing a trace id are read only when neither measures any edge, as their
direction is inferred from order, not measured. Every edge keeps the source that gave it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.links import span_links
from incidentlens.analysis.periods import Span, covering, in_span

#: traces sampled for the log-based graph: enough to see every edge, bounded so the join stays cheap
TRACE_SAMPLE = 20000
#: how much of the baseline's end the log-based graph reads
TRACE_LOOKBACK = timedelta(hours=1)


class CallEdge(BaseModel):
    caller: str
    callee: str
    weight: int
    source: str  # spans | calls | trace_logs | messages


def _reached(service: str, step: Callable[[str], set[str]]) -> set[str]:
    """Every service `step` leads to from `service`, then from those, and on (`service` itself left out)."""
    seen: set[str] = set()
    frontier = {service}
    while frontier:
        frontier = {c for s in frontier for c in step(s)} - seen - {service}
        seen |= frontier
    return seen


class CallGraph(BaseModel):
    edges: list[CallEdge] = []
    evidence: list[str] = []

    def callees(self, service: str) -> set[str]:
        return {e.callee for e in self.edges if e.caller == service}

    def callers(self, service: str) -> set[str]:
        return {e.caller for e in self.edges if e.callee == service}

    def downstream(self, service: str) -> set[str]:
        """Every service reachable from `service` along calls (its callees, their callees, ...)."""
        return _reached(service, self.callees)

    def upstream(self, service: str) -> set[str]:
        """Every service that reaches `service` along calls (its callers, their callers, ...)."""
        return _reached(service, self.callers)

    def services(self) -> set[str]:
        """Every service on the graph, as a caller or a callee."""
        return {e.caller for e in self.edges} | {e.callee for e in self.edges}

    @property
    def known(self) -> bool:
        return bool(self.edges)


def spans_edges_sql(links: str) -> str:
    """Calls per (caller, callee) from `links`, the spans joined to their parents (`links.span_links`): a span whose
    parent is another service's is a call."""
    return f"""SELECT parent_service AS caller, service AS callee, count(*) AS calls
FROM {links} WHERE service <> parent_service
GROUP BY parent_service, service
ORDER BY calls DESC, caller, callee"""


def trace_logs_edges_sql(span: Span) -> str:
    """Service pairs that log in the same trace, earlier service first, over a bounded sample of traces."""
    return f"""WITH per_trace AS (
    SELECT trace_id, service, min(ts) AS first_ts
    FROM logs
    WHERE {in_span('ts', span, end_included=True)} AND trace_id IS NOT NULL AND service IS NOT NULL
    GROUP BY trace_id, service
), shared AS (
    SELECT trace_id FROM per_trace GROUP BY trace_id HAVING count(*) > 1 ORDER BY trace_id LIMIT {TRACE_SAMPLE}
)
SELECT a.service AS caller, b.service AS callee, count(*) AS calls
FROM per_trace a JOIN per_trace b ON a.trace_id = b.trace_id
WHERE a.trace_id IN (SELECT trace_id FROM shared) AND a.first_ts < b.first_ts AND a.service <> b.service
GROUP BY a.service, b.service
ORDER BY calls DESC, caller, callee"""


def calls_edges_sql(span: Span) -> str:
    """Per (caller, callee) of the `calls` view, the intervals with a latency measured over `span` (either side)."""
    return f"""SELECT caller, callee, count(DISTINCT ts) AS calls
FROM calls
WHERE {in_span('ts', span)} AND caller <> callee AND latency_ms IS NOT NULL
GROUP BY caller, callee
ORDER BY calls DESC, caller, callee"""


def infer_call_graph(store: Any, window: Span, baseline: Span, named: Sequence[tuple[str, str, int]] = (),
                     named_evidence: str | None = None) -> tuple[CallGraph, list[Evidence]]:
    """The call graph from spans and call metrics (or, with neither, logs sharing a trace id), with the evidence of
    each source used.

    `named`: (logging service, named service, lines) from the window's WARN/ERROR lines (mechanism cues), whose
    evidence id is `named_evidence`; they add the edges the other sources do not know."""
    evidence: list[Evidence] = []
    edges: list[CallEdge] = []
    if store.has("spans"):
        edges = _edges(store, spans_edges_sql(span_links(store)), "spans", evidence,
                       "call graph from spans (parent -> child)")
    if store.has("calls"):
        edges += _calls_edges(store, covering(window, baseline), edges, evidence)
    if not edges and store.has("logs") and "trace_id" in _columns(store, "logs"):
        # a clean stretch just before the window: normal call order, not the incident's retries and timeouts
        span = (max(baseline[0], baseline[1] - TRACE_LOOKBACK), baseline[1])
        candidates = _edges(store, trace_logs_edges_sql(span), "trace_logs", [], "")
        edges = _dominant_direction(candidates)
        if edges:
            title = "call graph from logs sharing a trace id"
            evidence.append(_edge_evidence(trace_logs_edges_sql(span), edges, title))
    known = {(e.caller, e.callee) for e in edges}
    from_messages = [
        CallEdge(caller=caller, callee=callee, weight=lines, source="messages")
        for caller, callee, lines in named
        if (caller, callee) not in known and (callee, caller) not in known
    ]
    ids = [e.id for e in evidence] + ([named_evidence] if from_messages and named_evidence else [])
    return CallGraph(edges=edges + from_messages, evidence=ids), evidence


def _calls_edges(store: Any, span: Span, traced: list[CallEdge], evidence: list[Evidence]) -> list[CallEdge]:
    """The call edges the call metrics measured over `span` that the spans (`traced`) do not show: a service whose
    calls no span records (not instrumented, or its spans not propagated) still calls, and its callers still wait
    on it."""
    sql = calls_edges_sql(span)
    known = {(e.caller, e.callee) for e in traced}
    edges = [e for e in _edges(store, sql, "calls", [], "") if (e.caller, e.callee) not in known]
    if edges:
        title = "call graph from call metrics" + (", the edges no span shows" if traced else "")
        evidence.append(_edge_evidence(sql, edges, title, kind="calls"))
    return edges


def _edges(store: Any, sql: str, source: str, evidence: list[Evidence], title: str) -> list[CallEdge]:
    rows = store.fetch(sql).to_pylist()
    edges = [CallEdge(caller=r["caller"], callee=r["callee"], weight=int(r["calls"]), source=source) for r in rows]
    if edges and title:
        evidence.append(_edge_evidence(sql, edges, title))
    return edges


def _dominant_direction(edges: list[CallEdge]) -> list[CallEdge]:
    """Keep a -> b only where a logs before b in clearly more shared traces than the other way round."""
    weight = {(e.caller, e.callee): e.weight for e in edges}
    return [e for e in edges if e.weight >= 2 * weight.get((e.callee, e.caller), 0) and e.weight >= 3]


def _edge_evidence(sql: str, edges: list[CallEdge], title: str, kind: str = "trace") -> Evidence:
    top = sorted(edges, key=lambda e: -e.weight)
    data = {"edges": [[e.caller, e.callee, e.weight] for e in top[:20]], "cut": max(0, len(top) - 20)}
    return Evidence.make(kind, f"{title}: {len(edges)} edges", sql, data)


def _columns(store: Any, view: str) -> list[str]:
    return list(store.columns(view))
