"""The mitigation catalogue: what to do about each root-cause mechanism.

Action items and runbook steps come from here, chosen by the root cause's kind and filled in with its service,
never written from nothing. One playbook per mechanism the analysis names (connection-pool exhaustion, cache-miss
storm, bad deploy, region outage, memory exhaustion or memory near its limit with no restart seen, provider
throttling, CPU saturation, network delay) and one for a cause it could not pin down. A step may give an example of
what the logs say, as a quoted phrase in parentheses; it stays only when the data's log text holds it (a runbook
cites only strings that exist in the data).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from incidentlens.report.formatting import listed, possessive
from incidentlens.report.schema import ActionItem, ActionType, Priority


@dataclass(frozen=True)
class _Action:
    type: ActionType
    priority: Priority
    eta: str
    description: str  # "{service}" is filled in
    owner: str = "{service} team"


@dataclass(frozen=True)
class Playbook:
    kind: str
    label: str
    actions: tuple[_Action, ...]
    runbook: tuple[str, ...]

    @property
    def phrase(self) -> str:
        """The label inside a sentence: 'a bad deploy', 'memory exhaustion', 'CPU saturation'."""
        if self.kind not in _COUNTABLE:
            return self.label
        return f"{'an' if self.label[0] in 'aeiou' else 'a'} {self.label}"


#: what a service's calls to its dependencies can be measured by, in the order an action names them
CALL_MEASURES = ("error", "latency")
#: the first step for a failure of undetermined mechanism, where nothing says whether a change preceded the onset
REVERT_IF_ANY = "Revert the latest change to {service} if one precedes the onset"
#: ... where the data holds no change to the service before the onset: none to revert until one is found
REVERT_NONE_SEEN = ("Look for a change to {service} before the onset, which the data does not show, and revert it if "
                    "there is one")
#: ... where no deploy or config events were given at all: the data could not have shown one
REVERT_NOT_GIVEN = ("Look for a change to {service} before the onset (no deploy or config events were given to show "
                    "one) and revert it if there is one")
#: an undetermined change's first step where nothing measured was harmed: no instance to take out of rotation
UNHARMED_MITIGATION = ("{revert}; nothing measured here harmed requests, so watch {service} rather than take its "
                       "instances out of rotation while the change is investigated")
#: what memory near its limit's first action says of the kills and restarts it asks to check: none in the data ...
NONE_SEEN = "none is in this data"
#: ... or, where the period held no log lines, that none could have shown there (OnlineBoutique 16:13's adservice)
NO_LOGS_TO_SHOW_IT = "no logs for this period, where one would show"
#: the first action on a root cause nothing traces (a database, a cache, an external API seen only from its callers'
#: client spans), whose mechanism the data cannot name: it has no instances here to take out of rotation or restart
UNTRACED_MITIGATION = ("{revert}; look at {service} itself, which nothing here traces (its own metrics and logs: slow "
                       "queries, locks, connections, load, or its provider's status), and bound the calls into it "
                       "with timeouts while the cause is investigated")
#: ... and what would have named its mechanism
UNTRACED_TELEMETRY = ("Trace {service} or export its own metrics (a database exporter, the client library's pool "
                      "metrics), so that its own time can be told from the network and the queueing around the calls")
#: the kinds whose label is a countable noun and so takes an article in a sentence
_COUNTABLE = frozenset({"cache_miss_storm", "bad_deploy", "region_outage"})


#: what both CPU-saturation playbooks (demand rose or not, `_acting`) alert on, confirm and verify
_CPU_DETECT = _Action("detect", "P1", "1 week",
                      "Alert on {service} CPU utilisation and run-queue length, which saturate before latency climbs",
                      "SRE")
_CPU_CONFIRM = "Confirm: {service} CPU pinned near its limit with latency rising for its callers"
_CPU_VERIFY = "Verify: CPU below its limit and latency back to baseline"

_PLAYBOOKS: dict[str, Playbook] = {p.kind: p for p in (
    Playbook(
        "connection_pool_exhaustion", "database connection pool exhaustion",
        (
            _Action("mitigate", "P0", "24 hours",
                    "Give {whose} connection pool headroom: raise its ceiling (only where the database has spare "
                    "connections) or add replicas, and recycle connections held by stuck requests"),
            _Action("prevent", "P1", "2 weeks",
                    "Bound how long a request may hold a pooled connection in {service}: acquire and statement "
                    "timeouts shorter than the caller's timeout, failing fast when the pool is saturated"),
            _Action("prevent", "P2", "1 month",
                    "Find connection leaks in {service}: audit paths that acquire without releasing and turn on the "
                    "pool's leak detection"),
            _Action("detect", "P1", "1 week",
                    "Alert on {service} pool utilisation and connection-acquire wait time, which saturate before "
                    "requests fail", "SRE"),
            _Action("process", "P2", "1 month",
                    "Load-test {service} with production pool settings at peak traffic before each release", "SRE"),
        ),
        (
            "Confirm: {service} has every pooled connection in use and its connection-acquire errors rising "
            "('timeout acquiring connection')",
            "Check the database behind {service}: active sessions, long-running queries, lock waits",
            "Mitigate: cancel runaway queries, then restart stuck {service} instances one at a time",
            "Mitigate: raise {whose} pool size only if the database can take the extra connections",
            "Verify: error rate and latency back to baseline and pool utilisation well below its ceiling",
        ),
    ),
    Playbook(
        "cache_miss_storm", "cache-miss storm",
        (
            _Action("mitigate", "P0", "24 hours",
                    "Warm {whose} cache with the hottest keys and rate-limit the traffic that misses, to take "
                    "load off the backing store"),
            _Action("prevent", "P1", "2 weeks",
                    "Add request coalescing (single-flight) and jittered TTLs in {service} so expiring keys cannot "
                    "stampede the backend"),
            _Action("prevent", "P2", "1 month",
                    "Serve stale entries while revalidating when {whose} backend is slow"),
            _Action("detect", "P1", "1 week",
                    "Alert on {service} cache hit ratio leaving its baseline band and on backend query-rate surges",
                    "SRE"),
            _Action("process", "P2", "1 month",
                    "Make cache flushes and cold starts of {service} a reviewed, rate-limited operation", "SRE"),
        ),
        (
            "Confirm: {service} cache hit ratio dropped while backend query rate and latency rose",
            "Find what emptied the cache: a flush, a key-format change in a deploy, a mass TTL expiry",
            "Mitigate: throttle the missing traffic and pre-warm the hottest keys",
            "Verify: hit ratio, backend load and error rate back to baseline",
        ),
    ),
    Playbook(
        "bad_deploy", "bad deploy",
        (
            _Action("mitigate", "P0", "immediately",
                    "Roll {service} back to the last known-good release and hold further rollouts until a fix is "
                    "verified"),
            _Action("prevent", "P1", "2 weeks",
                    "Gate {service} rollouts behind a canary stage that rolls back automatically on error-rate and "
                    "latency regressions"),
            _Action("prevent", "P2", "1 month",
                    "Add a regression test that reproduces this failure to {whose} CI"),
            _Action("detect", "P1", "1 week",
                    "Mark deploys on dashboards and alert on an error-rate change that follows a {service} rollout",
                    "SRE"),
            _Action("process", "P2", "1 month",
                    "Require a rollback plan and an on-call owner for every {service} release", "SRE"),
        ),
        (
            "Confirm: the onset follows a {service} deploy or config change and new error templates appear with it",
            "Mitigate: roll {service} back to the previous release (or revert the config change)",
            "Verify: error rate and latency back to baseline, the new error templates gone",
            "Hold: freeze {service} rollouts until the fix ships with a regression test",
        ),
    ),
    Playbook(
        "region_outage", "regional outage",
        (
            _Action("mitigate", "P0", "immediately",
                    "Fail {service} traffic over away from the affected region and drain it at the load balancer"),
            _Action("prevent", "P1", "1 month",
                    "Run {service} active-active across regions with the capacity to lose one region"),
            _Action("detect", "P1", "1 week",
                    "Alert on per-region error rate and latency for {service}, not only the global aggregate", "SRE"),
            _Action("process", "P2", "1 month",
                    "Rehearse regional failover of {service} in a scheduled game day", "SRE"),
        ),
        (
            "Confirm: errors concentrate in one region while the others stay at baseline",
            "Check the cloud provider's status page and the region's network and load-balancer health",
            "Mitigate: shift {service} traffic to the healthy regions and drain the affected one",
            "Verify: global error rate back to baseline; keep the region drained until it is healthy",
        ),
    ),
    Playbook(
        # named for what every case of the kind shows, memory at its limit: restarts are seen only in some
        # (`mechanism.Classification.restart_seen`), and the title must not claim them where none was
        "oom_restart_loop", "memory exhaustion",
        (
            _Action("mitigate", "P0", "24 hours",
                    "Raise {whose} memory limit for now and cap the per-request or per-batch work that drives "
                    "memory growth"),
            _Action("prevent", "P1", "2 weeks",
                    "Fix the memory growth in {service} from a heap profile under production load; bound caches and "
                    "queues by size"),
            _Action("detect", "P1", "1 week",
                    "Alert on {service} restarts (OOMKilled) and on memory approaching its limit", "SRE"),
            _Action("process", "P2", "1 month",
                    "Add a soak test that checks {service} memory stays flat over hours of load", "SRE"),
        ),
        (
            "Confirm: {service} restarts repeatedly (OOMKilled) with memory at its limit before each restart",
            "Capture a heap profile from one instance before it is killed",
            "Mitigate: roll back a recent {service} deploy if one precedes the onset; else raise limits or scale out",
            "Verify: no restarts and memory flat under load",
        ),
    ),
    Playbook(
        # an out-of-memory kind resting on memory near its limit alone (`mechanism.NO_RESTART_SEEN`): no kill or
        # restart is in the data, so raising the limit is not yet called for
        "memory_near_limit", "memory near its limit",
        (
            _Action("mitigate", "P1", "24 hours",
                    "Check {whose} pods for out-of-memory kills and restarts ({unseen}) before "
                    "raising its memory limit; raise it, or add replicas, if they restart or memory keeps climbing"),
            _Action("prevent", "P2", "2 weeks",
                    "Find what holds {whose} memory near its limit from a heap profile under production load; "
                    "bound caches and queues by size"),
            _Action("detect", "P1", "1 week",
                    "Alert on {service} memory approaching its limit and on its restarts (OOMKilled)", "SRE"),
        ),
        (
            "Confirm: {whose} memory near its limit in the window, and whether it was already there before it",
            "Check {whose} pod events for out-of-memory kills (OOMKilled) and restarts",
            "Mitigate only if it restarts or its memory keeps climbing: raise its limit or scale it out",
            "Verify: memory flat below its limit and latency back to baseline",
        ),
    ),
    Playbook(
        "provider_throttling", "third-party provider throttling",
        (
            _Action("mitigate", "P0", "24 hours",
                    "Cut {whose} request rate to the provider (backoff with jitter, queueing, or degrading the "
                    "feature) and ask the provider for more quota"),
            _Action("prevent", "P1", "2 weeks",
                    "Put client-side rate limiting and a circuit breaker around {whose} provider calls"),
            _Action("prevent", "P2", "1 month",
                    "Cache or batch {whose} provider calls and evaluate a secondary provider"),
            _Action("detect", "P1", "1 week",
                    "Alert on throttled (HTTP 429) responses to {whose} provider calls and on quota use nearing "
                    "its limit", "SRE"),
            _Action("process", "P2", "1 month",
                    "Review {whose} provider quotas against its traffic forecast on a regular schedule", "SRE"),
        ),
        (
            "Confirm: {whose} provider calls return throttling responses (HTTP 429 / quota exceeded)",
            "Mitigate: lower the call rate (backoff, queue, feature flag) and contact the provider about quota",
            "Verify: throttling responses stop and dependent error rate returns to baseline",
        ),
    ),
    Playbook(
        "cpu_saturation", "CPU saturation",
        (
            _Action("mitigate", "P0", "24 hours",
                    "Scale {service} out (or up) and shed low-priority work until CPU has headroom again"),
            _Action("prevent", "P1", "2 weeks",
                    "Profile {service} under production load and remove the hot path that saturated it; autoscale on "
                    "CPU and queue depth"),
            _CPU_DETECT,
            _Action("process", "P2", "1 month",
                    "Capacity-plan {service} against peak traffic with a load test each quarter", "SRE"),
        ),
        (
            _CPU_CONFIRM,
            "Check what changed: traffic mix, a deploy, a batch job sharing the hosts",
            "Mitigate: scale {service} out and shed or defer non-critical work",
            _CPU_VERIFY,
        ),
    ),
    Playbook(
        "network_delay", "network delay",
        (
            _Action("mitigate", "P1", "24 hours",
                    "Move {service} off the network path that delays calls into it: reschedule its pods onto other "
                    "nodes or drain the node they share, and look there for packet loss, retransmits or a "
                    "traffic-shaping rule"),
            _Action("prevent", "P2", "2 weeks",
                    "Give the calls into {service} timeouts and bounded retries so that a slow network path fails "
                    "fast instead of holding its callers' requests"),
            _Action("detect", "P2", "1 week",
                    "Alert on how long {whose} callers wait around each call beyond its own server time (the "
                    "callers' client latency less its server latency)", "SRE"),
            _Action("process", "P2", "2 weeks",
                    "Review the network path into {service} (node, network plugin, service-mesh sidecar) with the "
                    "platform team", "SRE"),
        ),
        (
            "Confirm: {whose} callers wait longer around each call into it while its own server time stays flat",
            "Check the network path into {service}: its node's interface and network plugin, the sidecar proxy, "
            "and traffic-shaping rules (tc qdisc)",
            "Mitigate: reschedule {whose} pods onto healthy nodes or drain the node they share",
            "Verify: the callers' wait around calls into {service} back to baseline",
        ),
    ),
    Playbook(
        "unknown", "a failure of undetermined mechanism",
        (
            _Action("mitigate", "P1", "24 hours",
                    "{revert}; otherwise take the instances that show the change out of rotation (or restart them) "
                    "while the cause is investigated: adding replicas helps only a service short of capacity, "
                    "which nothing here shows"),
            _Action("prevent", "P2", "2 weeks",
                    "Add the telemetry that would have named {named}: per-dependency {missing} metrics for "
                    "{service}"),
            _Action("detect", "P2", "1 week",
                    "Alert on {service} error rate and latency against their baseline band", "SRE"),
            _Action("process", "P2", "2 weeks",
                    "Review the leading hypotheses with the owners of {service} and confirm or refute them"),
        ),
        (
            "Confirm: {service} changed first and most, in what the review says it showed (its errors, its latency, or "
            "the log lines and calls of its requests)",
            "Check recent changes to {service} and to downstream dependencies (deploys, config, traffic)",
            "Mitigate: {revert}, or take its affected instances out of rotation",
            "Verify: error rate and latency back to baseline",
        ),
    ),
)}

#: CPU saturation where nothing shows the demand on the service rising (`hypotheses[].demand_rose` false): the CPU rose
#: at the same traffic, so something else spent it (its own hot loop, a batch job, a neighbour on its node) and
#: scaling out or planning for peak traffic answers a growth nothing measured (every Nezha CPU fault is injected
#: contention)
_CPU_AT_SAME_DEMAND = Playbook(
    "cpu_saturation", "CPU saturation",
    (
        _Action("mitigate", "P0", "24 hours",
                "Find what is spending {whose} CPU (a hot loop in its own code, a batch job, or another workload on "
                "its node) and stop it; until then move its pods to less loaded nodes or raise its CPU limit: "
                "nothing here shows the demand on it rising, so more replicas for traffic are not called for"),
        _Action("prevent", "P1", "2 weeks",
                "Profile {service} and, if its own code spent the CPU, remove that hot path; give it CPU requests "
                "that keep a neighbour on its node from starving it"),
        _CPU_DETECT,
        _Action("process", "P2", "1 month",
                "Review how {service} shares its nodes (CPU requests and limits, co-scheduled workloads) with the "
                "platform team", "SRE"),
    ),
    (
        _CPU_CONFIRM,
        "Check what is spending the CPU, nothing here showing the demand on {service} rising: its own processes (a "
        "hot loop, a batch job) or another workload on its node",
        "Mitigate: stop that work, or move {whose} pods to less loaded nodes or raise its CPU limit while it is found",
        _CPU_VERIFY,
    ),
)

_KIND_KEYWORDS = (
    ("connection_pool_exhaustion", ("pool", "connection")),
    ("cache_miss_storm", ("cache",)),
    ("oom_restart_loop", ("oom", "memory", "restart")),
    ("cpu_saturation", ("cpu", "saturat")),
    ("provider_throttling", ("throttl", "rate_limit", "quota", "429", "provider")),
    ("region_outage", ("region", "zone", "datacenter")),
    ("network_delay", ("network", "packet")),
    ("bad_deploy", ("deploy", "release", "rollout", "config", "version")),
)


def playbook_kind(kind: str | None) -> str:
    """The catalogue entry for a root-cause kind as the analysis spells it ('db_pool_exhaustion' -> pool)."""
    normalized = re.sub(r"[^a-z0-9]+", "_", (kind or "").lower())
    if normalized in _PLAYBOOKS:
        return normalized
    return next((k for k, words in _KIND_KEYWORDS if any(w in normalized for w in words)), "unknown")


def playbook(kind: str | None) -> Playbook:
    return _PLAYBOOKS[playbook_kind(kind)]


def _acting(kind: str | None, demand_rose: bool) -> Playbook:
    """The playbook whose actions and runbook fit the evidence: CPU saturation is scaled out for traffic only where
    the demand on the service rose (`_CPU_AT_SAME_DEMAND` otherwise)."""
    if playbook_kind(kind) == "cpu_saturation" and not demand_rose:
        return _CPU_AT_SAME_DEMAND
    return playbook(kind)


def kind_label(kind: str | None) -> str:
    """A hypothesis' kind in words: the catalogue's label when it knows the mechanism, else the kind as given."""
    if playbook_kind(kind) != "unknown":
        return playbook(kind).label
    return kind.replace("_", " ") if kind and kind != "unknown" else "undetermined"


def mitigations_for(kind: str | None, services: Sequence[str], evidence: list[str] | None = None, *,
                    measured: Collection[str] = (), revert: str = REVERT_IF_ANY,
                    named: str = "the cause", demand_rose: bool = False, logs_read: bool = True) -> list[ActionItem]:
    """Action items for a root cause of `kind` in `services` (one, or several whose teams own them), citing
    `evidence` ids when given. `measured`: what the data already measures of each call ('error', 'latency'); an
    action that asks for telemetry asks only for the rest, and is left out when nothing is missing. `revert`: what
    an undetermined failure's first step says of a change to revert (`REVERT_NONE_SEEN` where the data shows none).
    `named`: what the telemetry an undetermined failure asks for would have named (`its mechanism` where the data
    named the service). `demand_rose`: the demand on the service rose (`hypotheses[].demand_rose`): only then is
    CPU saturation scaled out for traffic. `logs_read`: the period held log lines; where it held none, a kill or restart
    only a log line would show is not said to be absent from the data (`NO_LOGS_TO_SHOW_IT`)."""
    service = listed(services)
    several = len(services) > 1
    missing = " and ".join(m for m in CALL_MEASURES if m not in measured)
    words = {"service": service, "whose": possessive(service), "missing": missing,
             "revert": revert.format(service=service), "named": named,
             "unseen": NONE_SEEN if logs_read else NO_LOGS_TO_SHOW_IT}
    return [
        ActionItem(type=a.type, description=a.description.format(**words),
                   owner=a.owner.format(service=service) + ("s" if several and a.owner.endswith(" team") else ""),
                   priority=a.priority, eta=a.eta,
                   evidence=list(evidence or []))
        for a in _acting(kind, demand_rose).actions if missing or "{missing}" not in a.description
    ]


def runbook_for(kind: str | None, service: str, log_text: Sequence[str] | None = None, *,
                revert: str = REVERT_IF_ANY, demand_rose: bool = False) -> list[str]:
    """The runbook steps for a root cause of `kind` in `service`. `log_text`: the log templates and lines the data
    holds; an example phrase a step quotes is dropped when none of them contains it. `revert`: what an undetermined
    failure's mitigation says of a change to revert, as its action item says it (`mitigations_for`). `demand_rose`:
    as `mitigations_for`'s."""
    said = revert.format(service=service)
    steps = [step.format(service=service, whose=possessive(service), revert=said[:1].lower() + said[1:])
             for step in _acting(kind, demand_rose).runbook]
    if log_text is None:
        return steps
    return [_EXAMPLE_PHRASE.sub(lambda m: m.group(0) if _seen(m.group(1), log_text) else "", step) for step in steps]


#: an example of what the logs say, in a catalogue step: ` ('timeout acquiring connection')`
_EXAMPLE_PHRASE = re.compile(r" \('([^']+)'\)")


def log_text_of(templates: Sequence[dict]) -> list[str]:
    """The log text an analysis' `templates` hold (patterns and sample lines): what a runbook may quote."""
    return [text for t in templates for text in [t.get("template") or "", *(t.get("samples") or [])]]


def _seen(phrase: str, log_text: Sequence[str]) -> bool:
    wanted = phrase.lower()
    return any(wanted in text.lower() for text in log_text)
