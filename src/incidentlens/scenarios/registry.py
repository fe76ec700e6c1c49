"""The scenario catalogue: names, one-line descriptions, and `generate`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from incidentlens.errors import InputError
from incidentlens.outfiles import output_dir
from incidentlens.scenarios.causal import generate_causal
from incidentlens.scenarios.faults import FAULTS
from incidentlens.scenarios.output import check_format
from incidentlens.scenarios.tutorial import generate_tutorial

Builder = Callable[[Path, int, float, int | None, str], dict[str, Path]]

# Each generated line holds about 350 bytes of memory while the columns are built (10M lines: 3.6 GB); a year's
# default (50,000 lines a day) stays under this.
MAX_LOG_LINES = 20_000_000


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Builder


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "seed-tutorial",
            "the original tutorial's day: rps, p95_ms, error_rate and a ramped incident at 62-72% of the range",
            generate_tutorial,
        ),
        *(Scenario(fault.scenario, fault.description, partial(generate_causal, fault.scenario)) for fault in FAULTS),
        Scenario("quiet", "an ordinary day on the same services: seasonality, noise, benign spikes, no incident",
                 partial(generate_causal, "quiet")),
        Scenario("busy-day", "a quiet day with a benign surge of demand (a campaign): 1.6-2.5x requests, CPU and "
                             "log lines for 1-2.5 h, error ratio and latency unchanged, no incident",
                 partial(generate_causal, "busy-day")),
    )
}


def list_scenarios() -> list[tuple[str, str]]:
    """(name, one-line description) of every scenario, in catalogue order."""
    return [(s.name, s.description) for s in SCENARIOS.values()]


def generate(
    name: str, out_dir: str | Path, seed: int = 1, hours: float = 24, logs: int | None = None, fmt: str = "csv"
) -> dict[str, Path]:
    """Write scenario `name` into out_dir: metrics, logs, events (when it has any) and truth.json.

    Returns the written paths by role (`metrics`, `logs`, `events`, `truth`).
    """
    if name not in SCENARIOS:
        raise InputError(f"unknown scenario '{name}': choose one of {', '.join(SCENARIOS)}")
    check_format(fmt)
    if seed < 0:
        raise InputError(f"--seed {seed}: the seed must be a non-negative integer")
    if logs is not None and logs < 0:
        raise InputError(f"--logs {logs}: the number of log lines cannot be negative")
    if logs is not None and logs > MAX_LOG_LINES:
        raise InputError(f"--logs {logs:,}: at most {MAX_LOG_LINES:,} log lines (each takes about 350 bytes of "
                         "memory while they are built)")
    out = output_dir(out_dir)
    return SCENARIOS[name].build(out, seed, hours, logs, fmt)
