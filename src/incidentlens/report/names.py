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
    data = _not_ordered_against_itself(data)
    pattern = re.compile(r"(?<![\w.\-/])(" + "|".join(map(re.escape, sorted(renames, key=len, reverse=True)))
                         + r")(?![\w\-])")
    data = _rewrite(data, lambda text: pattern.sub(lambda m: renames[m[1]], text))
    verdict = data.get("verdict")
    if isinstance(verdict, dict) and verdict.get("services"):
        data = {**data, "verdict": {**verdict, "services": _merged_showings(verdict["services"])}}
    if isinstance(data.get("hypotheses"), list):
        data = {**data, "hypotheses": _merged_hypotheses(data["hypotheses"])}
    return data


#: a hypothesis' precedence test as `rootcause` words it: `if S were the cause its anomalies would precede those of
#: the other services that moved (a, b): ...`, then how the first of them moved against it, then maybe a callee ahead
_PRECEDES = re.compile(r"^if (?P<service>.+?) were the cause its anomalies would precede those of "
                       r"(?P<scope>its callers|the other services that moved) \((?P<names>[^)]*)\): (?P<parts>.*)$")
_CALLEE_AHEAD = re.compile(r"(?:^|, )(?P<ahead>but \S+, which it calls, moved .+ before it)$")


def _not_ordered_against_itself(data: dict[str, Any]) -> dict[str, Any]:
    """The hypotheses whose precedence test ordered their service against itself spelt in another case, and those
    tests' evidence, told without it (OnlineBoutique 12:10: "if frontend were the cause its anomalies would precede
    those of the other services that moved (frontend): they start within 90 s of it (frontend 7 s later)", the second
    `frontend` the front-end metric file's `Frontend`). Where another service moved too, the other spelling leaves
    the list; where none did, there is nothing to order it against, and the test decides nothing. Where the other
    spelling is the one whose time the test gives, the test is left as written: its words rest on that time."""
    told: dict[str, tuple[str, bool]] = {}
    hypotheses = []
    for hypothesis in data.get("hypotheses") or []:
        retold = _without_itself(hypothesis) if isinstance(hypothesis, dict) else None
        if retold is None:
            hypotheses.append(hypothesis)
            continue
        told[hypothesis["test"]] = retold
        text, undecided = retold
        hypotheses.append({**hypothesis, "test": text, **({"test_passed": None} if undecided else {})})
    if not told:
        return data

    def retold_evidence(item: Any) -> Any:
        if not isinstance(item, dict) or item.get("kind") != "hypothesis_test" or item.get("title") not in told:
            return item
        text, undecided = told[item["title"]]
        said = item.get("data")
        return {**item, "title": text,
                **({"data": {**said, "passed": None}} if undecided and isinstance(said, dict) else {})}
    return {**data, "hypotheses": hypotheses, "evidence": [retold_evidence(e) for e in data.get("evidence") or []]}


def _without_itself(hypothesis: dict[str, Any]) -> tuple[str, bool] | None:
    """The hypothesis' test without its own service spelt in another case among those it is ordered against, and
    whether that leaves it undecided (nothing to order against); None where it names no such spelling, or where the
    time the test gives is that spelling's."""
    service, test = hypothesis.get("service"), hypothesis.get("test")
    found = _PRECEDES.match(test) if isinstance(service, str) and isinstance(test, str) else None
    if found is None or found["service"] != service:
        return None
    names = found["names"].split(", ")
    selves = [name for name in names if name != service and name.lower() == service.lower()]
    if not selves:
        return None
    others = [name for name in names if name not in selves]
    ahead = _CALLEE_AHEAD.search(found["parts"])
    if not others and ahead:
        return (f"if {service} were the cause none of the services it calls would move before it: "
                f"{ahead['ahead']}"), False
    if not others:
        return (f"if {service} were the cause it would be the first to move: it is the only service whose change the "
                f"tests count (the other that moved was {service} itself, its name spelt in another case), so there is "
                "nothing to order it against"), True
    timed = "|".join(re.escape(name) for name in selves)
    if found["parts"].startswith("they do, by") or re.search(rf"\((?:{timed}) \S+ \S+ (?:later|earlier)\)|"
                                                             rf"they do not, (?:{timed}) moved", found["parts"]):
        return None
    return (f"if {service} were the cause its anomalies would precede those of {found['scope']} ({', '.join(others)}): "
            f"{found['parts']}"), False


def _merged_hypotheses(hypotheses: list[Any]) -> list[Any]:
    """The hypotheses with those one name now has twice made one (OnlineBoutique 12:10 listed `frontend` at 46% and
    again at 0%, the second `Frontend`'s of the front-end metric file): the likeliest one's mechanism, test and kind,
    the two spellings' confidences added (they are shares of one whole: that the service is the cause, either way
    spelt), their evidence together; an ended burst or an untraced service only where both were."""
    return [group[0] if len(group) == 1 else _merged_hypothesis(group) for group in _by_service(hypotheses)]


def _merged_hypothesis(group: list[dict[str, Any]]) -> dict[str, Any]:
    """One service's hypotheses as one (`_merged_hypotheses`)."""
    first = max(group, key=lambda h: float(h.get("confidence") or 0))
    return {**first, "confidence": min(1.0, sum(float(h.get("confidence") or 0) for h in group)),
            **{field: list(dict.fromkeys(e for h in group for e in h.get(field) or []))
               for field in ("supporting", "contradicting")},
            "ended": first.get("ended") if all(h.get("ended") for h in group) else None,
            "untraced": all(h.get("untraced", False) for h in group)}


def _merged_showings(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verdict's services with the entries one name now has twice made one (OnlineBoutique 12:01: `frontend`'s
    per-pod metrics and `Frontend`'s front-end file each had an entry, and the summary said "frontend from 12:02:28
    UTC: PodClientLatencyP99(s) ..." of the one that moved at 12:01:28, then "frontend from 12:02:28 UTC" again): at
    the earlier entry's place and onset, what each showed in time order, a later entry's findings said with their
    time (`then at 12:02:28 UTC: ...`, as the analysis words a finding later than its service's onset); its own change
    where either showed one, from the earlier of their times."""
    return [_merged(sorted(group, key=lambda s: str(s.get("onset") or "~"))) for group in _by_service(services)]


def _by_service(items: list[Any]) -> list[list[Any]]:
    """`items` (hypotheses, verdict entries) grouped by the service they name, in the order each service first
    appears; an item that names none (not a dict, or no service name in it) is a group of its own."""
    groups: dict[Any, list[Any]] = {}
    for item in items:
        service = item.get("service") if isinstance(item, dict) else None
        groups.setdefault(service if isinstance(service, str) and service else id(item), []).append(item)
    return list(groups.values())


def _merged(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One service's verdict entries, earliest first, as one (`_merged_showings`)."""
    first = entries[0]
    if len(entries) == 1:
        return first
    later = [said for entry in entries[1:] for said in _later_findings(entry, first.get("onset"))]
    owns = [e.get("own_onset") for e in entries if e.get("own", True) and e.get("own_onset")]
    return {**first, "showed": [*(first.get("showed") or []), *later],
            "evidence": list(dict.fromkeys(e for entry in entries for e in entry.get("evidence") or [])),
            "ends_after": next((e["ends_after"] for e in entries if e.get("ends_after")), None),
            "own": any(e.get("own", True) for e in entries), "own_onset": min(owns, key=str) if owns else None}


def _later_findings(entry: dict[str, Any], onset: Any) -> list[str]:
    """What `entry` showed, each finding said with its entry's time where that is later than `onset` and the finding
    has none of its own."""
    when = entry.get("onset")
    prefix = f"then at {str(when)[11:19]} UTC: " if when and onset and str(when) > str(onset) else ""
    return [said if not prefix or said.startswith("then at ") else prefix + said for said in entry.get("showed", [])]


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
    names += [f.get("service") for key in ("traced_failures", "slowed_too_little", "failing_before")
              for f in impact.get(key) or []]
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
