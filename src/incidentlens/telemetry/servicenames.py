"""One name per service across the sources: names that differ only in case are one service.

Nezha's OnlineBoutique names its front end `Frontend` in its front-end metric file and `frontend` in its spans,
logs and per-pod metric files. Kept apart, every reader downstream would see two services where there is one: a
ranking with the front end twice, each spelling with half its evidence, and a review saying `frontend` and
`Frontend` side by side. The lower-case spelling is the one kept (a Kubernetes service's or pod's name is lower case;
a capitalised one is a display form).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from incidentlens.telemetry.columns import literal, quote

#: the start of the warnings that name the services spelt in two cases (`TelemetryStore.one_name_per_service`): a
#: note of how they were read, not of anything set aside
NAMED_IN_TWO_CASES = "service names that differ only in case"
#: the service the rows that name none are filed under (`views`): no service's own, so a service spelt so in another
#: case (`Global`) is not read as it
UNNAMED = "global"
#: the columns of each view that name a service (a span's `peer` is the service it calls, whose span is inferred
#: under the call where nothing traced it: `peers.inferred_spans_sql`)
SERVICE_COLUMNS: dict[str, tuple[str, ...]] = {
    "metrics": ("service",), "logs": ("service",), "spans": ("service", "peer"), "events": ("service",),
    "calls": ("caller", "callee"),
}


def case_renames(names: Iterable[str], kept: Iterable[str] = ()) -> dict[str, str]:
    """{name: the name it is read as} for each name another differs from only in case: the lower-case one,
    `{'Frontend': 'frontend'}` from `['frontend', 'Frontend', 'cartservice']`, and from `['Frontend', 'FRONTEND']`
    both (no source need write the lower-case one); but where one of them is among `kept` (names that cannot be read
    otherwise: logs queried where they are stored), that one, and a name `kept` is never read as another. The names
    spelt as `UNNAMED` in any case are left as written."""
    fixed = set(kept)
    renames = {}
    for lower, spelt in _spellings(set(names) | fixed).items():
        if len(spelt) < 2 or lower == UNNAMED:
            continue
        held = [name for name in spelt if name in fixed]
        read_as = held[0] if len(held) == 1 else lower
        renames.update({name: read_as for name in spelt if name != read_as and name not in fixed})
    return renames


def kept_apart(kept: Iterable[str]) -> list[list[str]]:
    """The names of `kept` (names that cannot be read otherwise, `case_renames`) that differ only in case, by
    service."""
    return [spelt for spelt in _spellings(kept).values() if len(spelt) > 1]


def _spellings(names: Iterable[str]) -> dict[str, list[str]]:
    """{the lower-case form: the names spelt so, sorted} of `names`."""
    spellings: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        spellings.setdefault(name.lower(), []).append(name)
    return spellings


def renamed_sql(select: str, columns: Iterable[str], renames: Mapping[str, str]) -> str:
    """`select` with each of `columns` read through `renames` (a name not among them as it is)."""
    if not renames:
        return select
    cases = " ".join(f"WHEN {literal(name)} THEN {literal(renamed)}" for name, renamed in renames.items())
    replaced = ", ".join(f"CASE {quote(column)} {cases} ELSE {quote(column)} END AS {quote(column)}"
                         for column in columns)
    return f"SELECT * REPLACE ({replaced}) FROM ({select})"
