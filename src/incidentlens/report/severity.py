"""Severity from impact, by a stated rule.

The first level whose any condition holds wins:

| level | peak error rate | failed requests | users affected | peak latency vs baseline |
|---|---|---|---|---|
| SEV1 | >= 20% | >= 10% of requests | >= 10,000 | |
| SEV2 | >= 5% | >= 1% of requests | >= 1,000 | >= 3x for >= 30 min |
| SEV3 | >= 1% and >= 2x baseline | any | any | >= 1.5x |
| SEV4 | otherwise: a measurable shift with no user-visible impact in the data | | | |

Failed requests and users count only where harm was seen (the impact's `services_affected`: a service whose latency
or error metrics rose, or whose WARN/ERROR lines surged, against the baseline) or could not be looked for (no such
metrics or lines, `harm_checked` empty): where it was looked for and not seen they are the window's ordinary failures,
which the baseline held as well. With no harm seen and nothing moved (no series, no hypothesis), there is no shift to
call SEV4 either, and a lone peak is noise the shift tests saw through: the severity is undetermined (None).
"""

from __future__ import annotations

from dataclasses import dataclass

from incidentlens.report.schema import Impact, Severity

RULE = ("SEV1: peak error rate >= 20%, or >= 10% of requests failed, or >= 10,000 users; "
        "SEV2: >= 5%, >= 1%, >= 1,000 users, or latency >= 3x baseline for >= 30 min; "
        "SEV3: error rate >= 1% and >= 2x baseline, any failed requests or users, or latency >= 1.5x; else SEV4; "
        "failed requests and users count only where a service's latency, errors or WARN/ERROR lines rose against "
        "the baseline; with none and nothing moved (whatever a lone peak reached): undetermined")


@dataclass(frozen=True)
class _Figures:
    error_rate: float | None
    error_baseline: float | None
    failed_share: float | None
    users: int | None
    latency_ratio: float | None
    minutes: float | None


def derive_severity(impact: Impact, moved: bool = True) -> tuple[Severity | None, str]:
    """The severity level and the rule, with the figures that decided it; `moved`: whether anything moved in the
    window (a metric series, a hypothesis). None: undetermined, no impact measured and nothing moved."""
    harm_seen = shows_harm(impact)
    level, why = _level(_figures(impact, harm_seen))
    if not harm_seen and not moved:  # a lone peak where nothing moved is noise the shift tests saw through
        return None, (f"undetermined: no impact measured ({no_harm(impact)}) and nothing moved beyond its baseline's "
                      f"noise (rule: {RULE})")
    if level == "SEV4" and not harm_seen:
        why += f" ({no_harm(impact)})"
    return level, f"{level} because {why} (rule: {RULE})"


def _figures(impact: Impact, harm_seen: bool) -> _Figures:
    """The figures the rule reads; failed requests and users only where harm was seen (or not looked for)."""
    err = impact.peak_error_rate
    lat = impact.peak_latency
    latency_ratio = lat.value / lat.baseline if lat and lat.baseline else None
    return _Figures(err.value if err else None, err.baseline if err else None,
                    impact.failed_share if harm_seen else None, impact.users_affected if harm_seen else None,
                    latency_ratio, impact.duration_minutes)


def _level(f: _Figures) -> tuple[Severity, str]:
    def at_least(value: float | None, floor: float) -> bool:
        return value is not None and value >= floor

    long_enough = at_least(f.minutes, 30)
    checks: list[tuple[Severity, bool, str]] = [
        ("SEV1", at_least(f.error_rate, 0.20), "peak error rate >= 20%"),
        ("SEV1", at_least(f.failed_share, 0.10), ">= 10% of requests failed"),
        ("SEV1", at_least(f.users, 10_000), ">= 10,000 users affected"),
        ("SEV2", at_least(f.error_rate, 0.05), "peak error rate >= 5%"),
        ("SEV2", at_least(f.failed_share, 0.01), ">= 1% of requests failed"),
        ("SEV2", at_least(f.users, 1_000), ">= 1,000 users affected"),
        ("SEV2", at_least(f.latency_ratio, 3.0) and long_enough, "latency >= 3x baseline for >= 30 min"),
        ("SEV3", at_least(f.error_rate, 0.01) and (f.error_baseline is None or f.error_rate >= 2 * f.error_baseline),
         "peak error rate >= 1% and >= 2x baseline"),
        ("SEV3", at_least(f.failed_share, 1e-12), "requests failed"),
        ("SEV3", at_least(f.users, 1), "users affected"),
        ("SEV3", at_least(f.latency_ratio, 1.5), "latency >= 1.5x baseline"),
    ]
    return next(((level, why) for level, hit, why in checks if hit),
                ("SEV4", "no user-visible impact reached the SEV3 floor"))


def shows_harm(impact: Impact) -> bool:
    """Whether the impact shows harm: a service affected, or nothing in the data could show one (`harm_checked`
    empty: no latency or error metrics, no log lines)."""
    return bool(impact.services_affected) or not impact.harm_checked


def no_harm(impact: Impact) -> str:
    """What was checked for harm and not seen, in words: `no service's latency and error metrics or WARN/ERROR lines
    rose against the baseline`."""
    return f"no service's {' or '.join(impact.harm_checked)} rose against the baseline"


def harm(impact: Impact, severity: Severity | None) -> str:
    """What the window shows of harm: `seen` (a service affected, or nothing here could show one), `peak` (none
    sustained, but a peak reached SEV3 or worse) or `none` (no impact measured)."""
    if shows_harm(impact):
        return "seen"
    return "none" if severity in (None, "SEV4") else "peak"
