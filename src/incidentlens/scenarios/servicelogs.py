"""The causal scenarios' log lines: everyday traffic, benign bursts and the incident's lines, built column-wise.

Columns: `ts,service,region,host,version,level,endpoint,trace_id,user_id,message`. The answer is never in a
column: which service is the root shows only in when and what each service logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from incidentlens.scenarios import columns, logtext
from incidentlens.scenarios.incident import IncidentPlan
from incidentlens.scenarios.messages import Template, choose_per_group, render_lines
from incidentlens.scenarios.output import time_column
from incidentlens.scenarios.timegrid import TimeGrid, allocate_lines, spread_within_minutes
from incidentlens.scenarios.topology import REGION_SHARE, REGIONS, ROUTES, SERVICES, callees_of, pod_names

NORMAL, INCIDENT, BURST = 0, 1, 2
INCIDENT_RATE = {"root": 4.0, "caller": 2.0, "downstream": 2.0}  # extra lines per normal line at full level
BURST_RATE = 4.0
USERS = 200_000


@dataclass(frozen=True)
class VersionHistory:
    """Per service: the epoch ms of each deploy and the version running from then on (index 0: from the start)."""

    since_ms: dict[str, list[int]]
    versions: dict[str, list[str]]

    def slots(self, service: str) -> list[str]:
        """The distinct versions a service runs (a rollback returns to an earlier slot)."""
        return list(dict.fromkeys(self.versions[service]))


@dataclass(frozen=True)
class Burst:
    service: str
    start: int
    length: int


class TemplateBook:
    """Every template the scenario can use, with the candidate set for each (kind, service) group."""

    def __init__(self) -> None:
        self.templates: list[Template] = []
        self.groups: dict[tuple[int, str], tuple[list[int], list[float]]] = {}

    def add(self, kind: int, service: str, templates: Sequence[Template], weights: Sequence[float]) -> None:
        first = len(self.templates)
        self.templates.extend(templates)
        self.groups[(kind, service)] = (list(range(first, len(self.templates))), list(weights))


def build_book(plan: IncidentPlan | None) -> TemplateBook:
    book = TemplateBook()
    benign_weight = sum(t.weight for t in logtext.BENIGN)
    for service in SERVICES:
        if service.third_party:
            continue
        everyday = logtext.EVERYDAY[service.name]
        everyday_weight = sum(t.weight for t in everyday)
        scale = logtext.BENIGN_SHARE / (1 - logtext.BENIGN_SHARE) * everyday_weight / benign_weight
        book.add(NORMAL, service.name, [*everyday, *logtext.BENIGN],
                 [t.weight for t in everyday] + [t.weight * scale for t in logtext.BENIGN])
        book.add(BURST, service.name, logtext.BENIGN, [t.weight for t in logtext.BENIGN])
    if plan is not None:
        fault = plan.fault
        by_role = {"root": fault.root_logs, "caller": fault.caller_logs, "downstream": fault.downstream_logs}
        for impact in plan.impacts:
            templates = by_role[impact.role]
            if templates:
                book.add(INCIDENT, impact.service, templates, [t.weight for t in templates])
    return book


def line_weights(
    grid: TimeGrid, plan: IncidentPlan | None, bursts: Sequence[Burst], book: TemplateBook,
    traffic: np.ndarray | None = None,
) -> np.ndarray:
    """Expected lines per (kind, service, minute): traffic share times daily load (times `traffic`, relative demand
    per minute, if given), plus incident and bursts."""
    load = grid.daily_load() * (1 if traffic is None else traffic)
    weights = np.zeros((3, len(SERVICES), grid.minutes))
    share = np.array([s.log_share for s in SERVICES])
    weights[NORMAL] = share[:, None] * load[None, :]
    index = {s.name: i for i, s in enumerate(SERVICES)}
    if plan is not None:
        for impact in plan.impacts:
            row = index[impact.service]
            if (INCIDENT, impact.service) in book.groups:
                # logs react faster than averaged metrics: a failing request logs at once, even while few fail
                loudness = np.sqrt(impact.level * impact.level.max())
                weights[INCIDENT, row] = weights[NORMAL, row] * INCIDENT_RATE[impact.role] * loudness
            # failing requests replace some of the everyday success lines
            weights[NORMAL, row] *= 1 - 0.5 * np.clip(impact.level, 0, 1)
    for burst in bursts:
        row = index[burst.service]
        weights[BURST, row, burst.start : burst.start + burst.length] = share[row] * BURST_RATE
    return weights


def causal_logs(
    rng: np.random.Generator,
    grid: TimeGrid,
    plan: IncidentPlan | None,
    bursts: Sequence[Burst],
    history: VersionHistory,
    constants: dict[str, str],
    lines: int,
    fmt: str,
    traffic: np.ndarray | None = None,
) -> pa.Table:
    book = build_book(plan)
    cell = allocate_lines(rng, lines, line_weights(grid, plan, bursts, book, traffic))
    kind, rest = np.divmod(cell, len(SERVICES) * grid.minutes)
    service, minute = np.divmod(rest, grid.minutes)
    ts = spread_within_minutes(rng, grid, minute)
    order = np.argsort(ts, kind="stable")
    ts, kind, service = ts[order], kind[order], service[order]
    n = len(ts)

    region = rng.choice(len(REGIONS), size=n, p=REGION_SHARE)
    if plan is not None and plan.region is not None:
        region[kind == INCIDENT] = plan.region
    template = _choose(rng, book, kind, service)
    row_columns: dict[str, pa.Array | str] = {
        "service": columns.categorical([s.name for s in SERVICES], service),
        "region": columns.categorical(REGIONS, region),
        "user_id": pa.DictionaryArray.from_arrays(
            pa.array(rng.integers(0, USERS, n, dtype=np.int32)), columns.zero_padded(np.arange(USERS), 7, prefix="u-")
        ),
        **constants,
    }
    row_columns["endpoint"], row_columns["upstream"] = _endpoints_and_upstreams(rng, service, kind, plan)
    row_columns["host"], row_columns["version"] = _hosts_and_versions(rng, ts, service, region, history)
    return pa.table({
        "ts": time_column(ts, fmt, with_millis=True),
        "service": row_columns["service"],
        "region": row_columns["region"],
        "host": row_columns["host"],
        "version": row_columns["version"],
        "level": columns.categorical([t.level for t in book.templates], template),
        "endpoint": row_columns["endpoint"],
        "trace_id": columns.hex_ids(rng, n),
        "user_id": row_columns["user_id"],
        "message": render_lines(rng, book.templates, template, row_columns),
    })


def _choose(rng: np.random.Generator, book: TemplateBook, kind: np.ndarray, service: np.ndarray) -> np.ndarray:
    """A template for every line from its (kind, service) group's candidates."""
    keys = [(k, spec.name) for k in (NORMAL, INCIDENT, BURST) for spec in SERVICES]
    candidates = [book.groups.get(key, ([], []))[0] for key in keys]
    weights = [book.groups.get(key, ([], []))[1] for key in keys]
    return choose_per_group(rng, kind * len(SERVICES) + service, candidates, weights)


def _endpoints_and_upstreams(
    rng: np.random.Generator, service: np.ndarray, kind: np.ndarray, plan: IncidentPlan | None
) -> tuple[pa.Array, pa.Array]:
    """Each line's endpoint and the callee it talks to.

    Where a service routes each endpoint to one callee (the gateway, checkout) the callee follows the endpoint, and
    an incident line's endpoint is one routed to the callee the trouble came through. Elsewhere an everyday line
    talks to any callee and an incident line to the one the trouble came through.
    """
    through = {impact.service: impact.upstream for impact in plan.impacts} if plan else {}
    endpoints: list[list[str]] = []
    upstreams: list[list[str]] = []
    for incident in (False, True):
        for spec in SERVICES:
            trouble = through.get(spec.name) if incident else None
            routes = ROUTES.get(spec.name)
            if routes:
                pairs = [(e, u) for e, u in routes.items() if trouble in (None, u)] or list(routes.items())
            else:
                callees = [trouble] if trouble else callees_of(spec.name) or [""]
                pairs = [(e, u) for e in spec.endpoints for u in callees]
            endpoints.append([e for e, _ in pairs])
            upstreams.append([u for _, u in pairs])
    group = service + len(SERVICES) * (kind == INCIDENT)
    sizes = np.array([len(options) for options in endpoints])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    index = first[group] + (rng.random(len(group)) * sizes[group]).astype(np.int64)
    return (columns.categorical([e for own in endpoints for e in own], index),
            columns.categorical([u for own in upstreams for u in own], index))


def _hosts_and_versions(
    rng: np.random.Generator, ts: np.ndarray, service: np.ndarray, region: np.ndarray, history: VersionHistory
) -> tuple[pa.Array, pa.Array]:
    """Each line's pod and version: the version its service ran at that time, a pod of that version in its region."""
    pods: list[str] = []
    versions: list[str] = []
    host_index = np.zeros(len(ts), dtype=np.int64)
    version_index = np.zeros(len(ts), dtype=np.int64)
    for row, spec in enumerate(SERVICES):
        if spec.third_party:
            continue
        slots = history.slots(spec.name)
        slot_of_deploy = np.array([slots.index(v) for v in history.versions[spec.name]])
        mine = np.flatnonzero(service == row)
        deploy = np.searchsorted(np.array(history.since_ms[spec.name]), ts[mine], side="right") - 1
        slot = slot_of_deploy[np.clip(deploy, 0, None)]
        per_region = len(slots) * spec.pods_per_region
        pod = region[mine] * per_region + slot * spec.pods_per_region + rng.integers(0, spec.pods_per_region, len(mine))
        host_index[mine] = len(pods) + pod
        version_index[mine] = len(versions) + slot
        pods.extend(pod_names(rng, spec, len(slots)))
        versions.extend(slots)
    return columns.categorical(pods, host_index), columns.categorical(versions, version_index)
