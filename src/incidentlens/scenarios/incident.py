"""Planning a causal incident: which services it reaches, when each starts and recovers, and how hard it hits."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from incidentlens.scenarios.faults import Fault
from incidentlens.scenarios.timegrid import TimeGrid
from incidentlens.scenarios.topology import REGIONS, callers_of

PROPAGATION_LOSS = 0.85  # a caller feels at most this share of its callee's trouble (timeouts, retries, fallbacks)
MIN_STRENGTH = 0.2  # weaker than this and the caller absorbs it
ONSET_LEVEL = (0.15, 0.4)  # a fault is visible from its first minute at this share, then ramps up to full strength
PULSE_FLOOR = {"root": 0.5, "caller": 0.1, "downstream": 0.1}  # between restarts: GC pressure at the root only


@dataclass(frozen=True)
class Impact:
    """One affected service: from `onset` to `end` (minutes, end exclusive) it misbehaves at `level` (0..1 per minute).

    `role` is root, caller or downstream; `upstream` is the callee the trouble arrived through.
    """

    service: str
    role: str
    strength: float
    upstream: str | None
    onset: int
    end: int
    level: np.ndarray


@dataclass(frozen=True)
class IncidentPlan:
    fault: Fault
    root: str
    region: int | None
    intensity: float
    impacts: tuple[Impact, ...]
    kills: np.ndarray  # minutes the root's pods are OOM-killed (pulsed faults only)

    @property
    def start(self) -> int:
        return self.impacts[0].onset

    @property
    def end(self) -> int:
        return max(impact.end for impact in self.impacts)


def plan_incident(rng: np.random.Generator, fault: Fault, grid: TimeGrid) -> IncidentPlan:
    """Draw the incident's root, start, length, intensity and per-hop delays from the seed."""
    root = str(rng.choice(fault.roots))
    region = int(rng.integers(len(REGIONS))) if fault.regional else None
    minutes = grid.minutes
    duration = int(rng.integers(30, 181)) if minutes >= 600 else int(rng.integers(max(8, minutes // 12), minutes // 4))
    # leave a clean baseline before (>= 25% of the range) and room to recover after
    latest = max(round(0.25 * minutes), round(0.85 * minutes) - duration - 20)
    start = int(rng.integers(round(0.25 * minutes), latest + 1))
    intensity = float(rng.uniform(0.4, 1.0))
    onset_level = float(rng.uniform(*ONSET_LEVEL))
    spans = _propagate(rng, fault, root, start, start + duration)
    kills = _kill_minutes(rng, start, start + duration) if fault.pulsed else np.array([], dtype=np.int64)
    impacts = tuple(
        Impact(service, role, strength, upstream, onset, end,
               _level(rng, minutes, onset, end, onset_level, intensity * strength,
                      _pulse(kills, onset - start, role, minutes) if fault.pulsed else None))
        for service, role, strength, upstream, onset, end in spans
    )
    return IncidentPlan(fault, root, region, intensity, impacts, kills)


def _propagate(
    rng: np.random.Generator, fault: Fault, root: str, start: int, end: int
) -> list[tuple[str, str, float, str | None, int, int]]:
    """Breadth-first up the call graph from the root: each hop starts later and recovers later."""
    spans = [(root, "root", 1.0, None, start, end)]
    if fault.downstream:
        spans.append((fault.downstream, "downstream", 0.8, None, start + int(rng.integers(2, 6)),
                      end + int(rng.integers(1, 4))))
    queue = deque([(root, 1.0, 0, start, end)])
    reached = {root}
    while queue:
        callee, strength, hops, onset, recovery = queue.popleft()
        if hops >= fault.max_hops:
            continue
        for caller, weight in callers_of(callee):
            felt = strength * weight * PROPAGATION_LOSS
            if caller in reached or felt < MIN_STRENGTH:
                continue
            reached.add(caller)
            caller_onset = onset + int(rng.integers(2, 6))
            caller_end = recovery + int(rng.integers(1, 5))
            spans.append((caller, "caller", felt, callee, caller_onset, caller_end))
            queue.append((caller, felt, hops + 1, caller_onset, caller_end))
    return spans


def _level(
    rng: np.random.Generator,
    minutes: int,
    onset: int,
    end: int,
    onset_level: float,
    peak: float,
    pulse: np.ndarray | None,
) -> np.ndarray:
    """0 outside [onset, end); inside, a jump to onset_level, a ramp to 1, a plateau and a ramp down; times peak."""
    minute = np.arange(minutes)
    ramp_up = int(rng.integers(3, 13))
    ramp_down = int(rng.integers(2, 6))
    rising = onset_level + (1 - onset_level) * np.clip((minute - onset + 1) / ramp_up, 0, 1)
    falling = np.clip((end - minute) / ramp_down, 0, 1)
    level = np.where((minute >= onset) & (minute < end), np.minimum(rising, falling), 0.0) * peak
    return level * pulse if pulse is not None else level


def _kill_minutes(rng: np.random.Generator, start: int, end: int) -> np.ndarray:
    """When the leaking pods hit their memory limit: first after the leak has grown, then every few minutes."""
    first = start + int(rng.integers(5, 11))
    period = int(rng.integers(6, 13))
    return np.arange(first, max(first + 1, end - 2), period, dtype=np.int64)


def _pulse(kills: np.ndarray, delay: int, role: str, minutes: int) -> np.ndarray:
    """1 in the two minutes after each kill (seen `delay` minutes later by callers), a floor in between."""
    pulse = np.full(minutes, PULSE_FLOOR[role])
    for offset in (0, 1):
        hit = kills + delay + offset
        pulse[hit[hit < minutes]] = 1.0
    return pulse
