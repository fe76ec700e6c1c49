"""One name per service in a review: the sources may spell one service in two cases.

Nezha's OnlineBoutique names its front end `Frontend` in the front-end metric file and `frontend` in the spans, logs
and per-pod files; the analysis keeps both as given (its rankings rest on the data as loaded), so a review would say
`frontend` and `Frontend` side by side, two services to a reader. Names that differ only in case are one service, and
the review writes them as the lower-case one (a Kubernetes service's or pod's name is lower case; a capitalised one is
a display form). Only service names are rewritten, whole and not inside a dotted operation (`hipstershop.Frontend/
Recv.` is a gRPC method, not the service), and never in an evidence item's query, which must still run as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from incidentlens.analysis.impact import entry_names

#: the parts of an evidence item that are not prose: its query runs against the data as loaded
_VERBATIM = frozenset({"query"})


def one_name_per_service(data: dict[str, Any]) -> dict[str, Any]:
    """The analysis with every service name that differs from another only in case written as the lower-case one."""
    renames = case_renames(_service_names(data))
    if not renames:
        return data
    pattern = re.compile(r"(?<![\w.\-/])(" + "|".join(map(re.escape, sorted(renames, key=len, reverse=True)))
                         + r")(?![\w\-])")
    return _rewrite(data, lambda text: pattern.sub(lambda m: renames[m[1]], text))


def case_renames(names: Iterable[str]) -> dict[str, str]:
    """{name: the lower-case name it is written as} for each name whose lower-case form is also a name:
    `{'Frontend': 'frontend'}` from `['frontend', 'Frontend', 'cartservice']`."""
    known = set(names)
    return {name: name.lower() for name in known if name != name.lower() and name.lower() in known}


def _service_names(data: dict[str, Any]) -> list[str]:
    """The services the analysis names: its hypotheses, the verdict's, the impact's (where requests were counted
    too), and the moved series' owners."""
    impact = data.get("impact") or {}
    names = [h.get("service") for h in data.get("hypotheses") or []]
    names += [s.get("service") for s in (data.get("verdict") or {}).get("services") or []]
    names += list(impact.get("services_affected") or []) + entry_names(impact.get("entry_service"))
    names += [f.get("service") for f in impact.get("traced_failures") or []]
    names += [(impact.get(p) or {}).get("service") for p in ("peak_latency", "peak_error_rate")]
    names += [str(s.get("series", "")).split("/", 1)[0] for s in (data.get("detection") or {}).get("series") or []]
    return [n for n in names if isinstance(n, str) and n]


def _rewrite(value: Any, rename: Callable[[str], str], key: str | None = None) -> Any:
    """`value` with `rename` applied to every text in it (keys too), but for the `_VERBATIM` fields."""
    if isinstance(value, str):
        return value if key in _VERBATIM else rename(value)
    if isinstance(value, dict):
        return {rename(k) if isinstance(k, str) else k: _rewrite(v, rename, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(item, rename, key) for item in value]
    return value
