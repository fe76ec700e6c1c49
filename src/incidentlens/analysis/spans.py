"""Span-derived signals per service: how each service's requests changed, read from traces (and the log lines that
carry a trace id).

Two measures, each one aggregate query over the canonical views:
- **behaviour shift**: per service, the traces it took part in and, per trace, its events: the log templates it
  wrote in that trace (logs with a trace id column), the calls it made to other services (child spans) and the
  operations whose spans carry an error status. A code path cut short by an exception or an early return drops a
  line or a call from every request, or writes a line fewer times in it (each line also counts as its reduced
  fraction of the service's lines in the trace, which a loop over more or fewer items keeps); a failure adds an
  error line or status. A problem (a WARN/ERROR line, an error status) that stops is recovery, not a fault, so only
  its rise counts. Three things keep ordinary variation from passing for a change:
  - *request kinds*: an event's share is compared within each kind of request the service served (its entry
    operations in the trace) and the kinds are pooled by Mantel-Haenszel, so more requests of a kind that always
    calls X is not "calls X more often";
  - *deflected requests*: a request in which the service logged a problem naming a service it calls ("No instances
    available for ts-basic-service") shows that callee's trouble, not the service's own, and is left out (a bug of
    its own that it words as trouble calling a callee is left out too: the rule trusts what the service says), and
    so is a request in which the service had a problem (a WARN/ERROR line, an error status) and a service it called
    in that request failed (an ERROR line, an error status; a WARN is a callee that answered): on the span tree the
    failure came up from the callee (a caller's "Request processing failed" over its callee's exception), as in the
    error-propagation rule of trace-based root cause analysis (the deepest failing span is the origin). Not where
    the callee called the service back in the request: which failure came up from which is not told there;
  - *multiplicity*: the largest of a service's many INFO-line and call shifts is large by chance; its z is
    corrected for the events tested (weighted Bonferroni: half the error budget for its problem events, tested
    one-sided, half for the rest), so one new error line outweighs the largest of fifty wandering INFO lines. A
    service is a candidate when any of its events moves past the uncorrected bar; the correction orders them.
- **own time**: the p90 of the service's spans' exclusive time (duration minus its children's), after against
  before: a starved CPU slows the service's own work, not the calls it waits on. A client span (one whose children
  all run in another service) is left out: its exclusive time is the wait around the call, not the caller's work.
  The shift counts only when the tail test carries it (`tail_z`, Mood's test at the p90: more of its spans after
  than before lie past the p90 of both sides together, past the candidate bar): on a quiet service the p90 is one
  or two spans, and one slow call is not a slower service. A client span that names the service on its far side and
  has nothing traced under it (a call to a database, a cache, an API: its `peer`) has that peer's server span
  inferred under it in the spans view (`telemetry.peers`): it is a client span like the others, and the peer's time
  is the peer's own, a service of its own that is `untraced` (seen from its callers' client spans alone). A span
  with nothing under it and no peer may be a call all the same (a database statement; Nezha's spans say no span
  kind): where the ones that moved each gained about what the wait on the service's calls gained and its other work
  did not slow, its own time rose on its round trips and is that delay (`TraceSignal.round_trips_waited`).
- **wait on its calls**: for each call into the service, the caller's client span's duration minus the service's
  server span's (the time on the network and in queues around the call), median after against before per caller;
  a network delay on the service shows on the calls of every caller into it while its own time stays flat. The
  service's shift is the smallest over its callers (a caller whose own network is slow slows only its own calls),
  or over its callees when that is larger (a delayed caller with no callers of its own: its calls to everyone).
  The shift counts only when the rank test carries it (`rank_test_z`: the Mann-Whitney count of the calls after
  against the calls before, pooled over the edges, past the candidate bar): the median of six calls is three of
  them, and a history with a few slow calls (a GC pause, a retry) puts such calls after the onset too.
  A call with too few samples before the onset (a missing trace minute) is held against the system's typical wait
  (the lower median over all calls in the window; its calls are ranked against the other calls there); and when no
  service's calls changed against their own history, a call whose history itself stands out from the typical wait
  (past the candidate bar) is held against the typical wait: a delay already under way before the onset (an earlier
  incident still going, the same fault injected again) has become the call's own history, but still stands out
  from the other calls. A history like the other calls' is
  no earlier delay, and the call is held against it alone. A change comes first: a delay still going on one service
  must not take the place of the one that began at the alert. A delay on a service's network slows its calls out
  too, so a callee only it calls waits as long: a service whose delayed calls are all among another's is explained
  by that one (parsimony: one delay where it accounts for every slow call).

The call direction (a caller whose callee moved no later is its victim, not its cause) is the ranking's
(`rootcause.py`, with the call graph from the same spans).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from incidentlens.analysis.callmetrics import BEFORE_QUANTILE, MIN_INTERVALS, calls_wait_sql
from incidentlens.analysis.callmetrics import SOURCE as CALL_METRICS
from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.links import span_links
from incidentlens.analysis.masking import masked_sql, masks_relation
from incidentlens.analysis.mechanism import named_service_sql
from incidentlens.analysis.periods import (
    ERROR_LEVELS,
    PROBLEM_LEVELS,
    Span,
    covering,
    in_span,
    iso_z,
    logged_minutes_sql,
    minute_from_sql,
    quote_ident,
    sql_in,
    sql_str,
)
from incidentlens.analysis.templates import DRAIN_SIMILARITY, mine_templates
from incidentlens.analysis.units import three_figures
from incidentlens.analysis.words import possessive
from incidentlens.telemetry import arrays
from incidentlens.telemetry.columns import normalise

#: traces a service needs on each side before its event shares are compared
MIN_TRACES = 3
#: minutes before the onset needed to measure how much an event's share varies between minutes
DISPERSION_MINUTES = 5
#: the median of chi-square with one degree of freedom: a minute's Pearson term when its share varies by chance alone
CHI2_1_MEDIAN = 0.4549364
#: spans a service needs on each side before its own-time p90 is compared
MIN_SPANS = 5
#: the families of events a service's error budget is split over: problem events and the rest
FAMILIES = 2
#: rows of events kept in the evidence
EVIDENCE_ROWS = 20
#: own time's weight against the behaviour z in a service's strength: p90 own time x3.5 (ln 4.5 = 1.5) counts
#: like z 3 (chosen on the Nezha TrainTicket faults: busy services' own time moves up to ~x2.5 by chance)
OWN_TIME_WEIGHT = 2.0
#: the strength that makes a service a root-cause candidate
SIGNIFICANT_STRENGTH = 2.5
#: the wait on a service's calls weighs as its own time does: both are time ratios on the same log scale
WAIT_WEIGHT = OWN_TIME_WEIGHT
#: how far the time a service's leaf spans gained may lie from the time its calls' wait gained, as a factor either
#: way, for the two to be read as one delay on its network; a leaf operation whose median gained less than the wait's
#: gain over it did not move (`TraceSignal.round_trips_waited`)
ROUND_TRIP_FACTOR = 2.0
#: the columns of one call edge's waits, call by call, before and after the onset (spans only; `_rank_test`)
CALL_WAITS = ("waits_before", "waits_after")
#: the sources of waits, finest first: spans measure each call; call metrics, a minute's percentiles
FINEST_FIRST = ("spans", CALL_METRICS)
#: the sources whose waits can be held against the other calls' typical wait (`wait_shifts`): a span's wait is one
#: call's; a minute's wait from call metrics is two histogram percentiles apart, as coarse as the latency is long, so
#: a slow edge stands out from the others by its buckets alone (OnlineBoutique's frontend -> checkoutservice, p50s
#: ~0.25 s apart at 1.5 s, held against the typical wait made checkoutservice a 87-91% network delay in 6 faults of
#: other services): such an edge is held against its own history only, and without one it has no measure
PEER_COMPARABLE = ("spans",)
#: a share of fewer traces than this is said as a count: one trace moves it by five points or more (TrainTicket
#: 11:29's ts-inside-payment-service: "in 14% of its traces after the onset" was 1 of 7)
COUNTED_BELOW = 20


class TraceSignal(BaseModel):
    """One service's behaviour shift and own-time shift between the baseline and the window."""

    service: str
    traces_before: int = 0
    traces_after: int = 0
    behaviour_shift: float = 0.0  # the largest per-trace event z, corrected for the events tested (`adjusted_z`)
    raw_shift: float = 0.0  # the largest z over all its events, before the correction
    event: str | None = None  # the event behind it ("log <template>" or "call <service> <operation>")
    share_before: float | None = None
    share_after: float | None = None
    onset: datetime | None = None  # the first trace in the window that showed the change
    own_p90_before_ms: float | None = None
    own_p90_after_ms: float | None = None
    own_time_shift: float = 0.0  # ln((1 + p90 after) / (1 + p90 before))
    own_tail_z: float = 0.0  # how surely its slowest tenth lies more after the onset than before (`tail_z`)
    #: the share of its spans, before and after, past the p90 of both sides together (one at it counts half): what
    #: its p90's move amounts to, where a slow mode it always had only grew (12.8 -> 75.1 ms, 9% -> 15% past it)
    own_tail_shares: tuple[float, float] | None = None
    own_spans: tuple[int, int] | None = None  # ... of how many spans, before and after
    #: per operation of its spans with nothing under them (database statements) measured on both sides, what its p10
    #: and its median gained after the onset, in ms (`own_time_sql`)
    leaf_gains_ms: list[tuple[float, float]] = []
    #: the p90 of the exclusive time of its spans with something under them (its work apart from the leaf spans),
    #: before and after; None with too few on a side
    work_p90_ms: tuple[float, float] | None = None
    wait_before_ms: float | None = None  # the median wait on calls into the service before (or the system's typical)
    wait_after_ms: float | None = None
    wait_shift: float = 0.0  # ln((1 + wait after) / (1 + wait before)), the smallest over its callers
    wait_baseline: str | None = None  # "history" (its calls before the onset) or "peers" (all calls in the window)
    wait_direction: str | None = None  # "in": the calls into it waited longer; "out": its calls to others did
    wait_explained_by: str | None = None  # the service whose delayed calls include all of its own (a delay there)
    wait_both_ways: bool = False  # the calls into it and its calls to others both waited longer, past the bar
    wait_peers: list[str] = []  # the services at the other end of the calls measured in `wait_direction`
    wait_source: str | None = None  # what measured the wait: "spans", or "call metrics" (`callmetrics.SOURCE`)
    #: how many traced calls (call metrics: minutes) the wait's figures are of, before (None: the typical wait, no
    #: figure of its own) and after
    wait_calls: tuple[int | None, int] | None = None
    wait_z: float | None = None  # how surely its calls after the onset wait longer (`rank_test_z`); None: untested
    last_call: str | None = None  # when `cut_short`: the call its requests without the lost one made last
    last_callee: str | None = None  # ... the service that call went to
    last_call_share: float | None = None  # ... the share of those requests whose last call it was
    last_callee_share: float | None = None  # ... the share of the new cuts that service holds (`cut_callee_share`)
    cut_requests: int = 0  # ... how many such requests after the onset
    cut_evidence: str = ""  # ... the evidence whose query (`last_call_sql`) finds that call
    #: whether it is a dependency nothing traced, known only by its callers' calls to it: every span of it is one
    #: inferred under a client span naming it (`peers.inferred_spans_sql`), so its "own time" is their calls' time
    untraced: bool = False
    evidence: str = ""

    @property
    def own_time(self) -> float:
        """The weighted own-time shift, counted only when the tail test carries it: a p90 over a handful of spans
        is one or two of them, and one slow call is not a slower service."""
        return OWN_TIME_WEIGHT * self.own_time_shift if self.own_tail_z >= SIGNIFICANT_STRENGTH else 0.0

    @property
    def wait(self) -> float:
        """The weighted wait shift, counted only when the rank test carries it (`rank_test_z`): the median of a
        handful of calls is one or two of them. Call metrics give a minute's percentiles, no single calls to test,
        and count as measured."""
        carried = self.wait_z is None or self.wait_z >= SIGNIFICANT_STRENGTH
        return WAIT_WEIGHT * self.wait_shift if carried else 0.0

    @property
    def strength(self) -> float:
        """How far the service's requests changed: the largest of the behaviour z and the weighted own-time and
        wait shifts."""
        return max(self.behaviour_shift, self.own_time, self.wait)

    @property
    def sureness(self) -> float:
        """How surely its changes are past chance, on the candidate bar's scale: the surest of them. A weighted time
        shift is no surer than the test that carries it (the rank test for a wait, the tail test for own time), so a
        median of six calls moved x36 is as sure as the six calls are; an event's share change is its z. The
        surest, not the strongest: a wait just carried beside an event at z 4.9 leaves the service as sure as the
        event alone makes it."""
        wait = self.wait if self.wait_z is None else min(self.wait, self.wait_z)
        return max(self.behaviour_shift, min(self.own_time, self.own_tail_z), wait)

    @property
    def significant(self) -> bool:
        """Whether the service is a root-cause candidate: an event moved by the uncorrected bar, or its own time or
        the wait on its calls did (the correction orders the candidates; the call graph and the other signals weigh
        in on each)."""
        return max(self.raw_shift, self.own_time, self.wait) >= SIGNIFICANT_STRENGTH

    @property
    def cut_short(self) -> bool:
        """Whether the change in its traces is a call fewer of its requests made, and nothing else there (its own
        time, the wait on its calls) passed the candidate bar: a request ends early where it fails, and it fails as
        surely when a callee it called before returned an error or a wrong value, so this says where its requests
        were cut, not that the cut is its own."""
        return (self.event is not None and self.event.startswith("call ") and self.share_before is not None
                and self.share_after is not None and self.share_after < self.share_before
                and max(self.own_time, self.wait) < SIGNIFICANT_STRENGTH)

    @property
    def delayed(self) -> bool:
        """Whether the wait around its calls is its strongest change, past the candidate bar: a network delay. Its
        own time does not count against the wait when that rise is the same delay (`round_trips_waited`)."""
        own_time = 0.0 if self.round_trips_waited else self.own_time
        return self.wait >= SIGNIFICANT_STRENGTH and self.wait >= max(self.behaviour_shift, own_time)

    @property
    def round_trips_waited(self) -> bool:
        """Whether its own time rose by the time its calls waited longer, on its round trips alone: the operations
        of its spans with nothing under them (a database statement: Nezha's spans say no span kind, so such a call
        counts as the service's own time) that moved (`round_trip_gains`) each gained, at its p10 and its median,
        within `ROUND_TRIP_FACTOR` of the wait's gain; its own time's p90 rose no more than that, and its other work
        (the exclusive time of its spans with something under them) did not slow past the bar. A delay on its
        network adds the same time to each round trip, its database's as its callers', whatever a statement usually
        takes, and leaves its work as it was, a leaf span of local work too (Hibernate's `Session.merge`); slower
        work of its own (a starved CPU) stretches its spans unevenly, the slow ones most, leaves the floor of its
        statements where it was (OnlineBoutique's cartservice under CPU contention: its callers waited 23 ms longer,
        a leaf operation's median 98 ms and its p10 0.16 ms) or slows its other work too."""
        moved = self.round_trip_gains
        if not moved or self.work_p90_ms is None or self.wait_after_ms is None or self.wait_before_ms is None:
            return False
        added = self.wait_after_ms - self.wait_before_ms
        own_rise = (self.own_p90_after_ms or 0.0) - (self.own_p90_before_ms or 0.0)
        work_slowed = OWN_TIME_WEIGHT * _longer_by(self.work_p90_ms[1], self.work_p90_ms[0]) >= SIGNIFICANT_STRENGTH
        return (all(floor >= added / ROUND_TRIP_FACTOR and median <= added * ROUND_TRIP_FACTOR
                    for floor, median in moved)
                and own_rise <= added * ROUND_TRIP_FACTOR and not work_slowed)

    @property
    def round_trip_gains(self) -> list[tuple[float, float]]:
        """The gains (p10, median) of its leaf operations that moved: whose median gained at least the wait's gain
        over `ROUND_TRIP_FACTOR`; none while the wait did not gain."""
        if self.wait_after_ms is None or self.wait_before_ms is None or self.wait_after_ms <= self.wait_before_ms:
            return []
        added = self.wait_after_ms - self.wait_before_ms
        return [(floor, median) for floor, median in self.leaf_gains_ms if median >= added / ROUND_TRIP_FACTOR]

    @property
    def measured_in(self) -> str:
        """Where the change `describe` names was seen: "the call metrics" for a wait only they measured, else "the
        traces"."""
        return "the call metrics" if self.delayed and self.wait_source == CALL_METRICS else "the traces"

    @property
    def tells_own_time(self) -> bool:
        """Whether `describe` names its own span time (its p90 before and after) when no wait on its calls counts:
        the own-time shift is the largest of its changes."""
        return (self.own_time_shift > 0 and self.own_time >= max(self.behaviour_shift, self.raw_shift)
                and self.own_p90_after_ms is not None)

    def _on_callees(self) -> str:
        """Which of its calls out a delay was measured on: `on every callee`, or `on its one callee, b` where it
        calls one service, whose own network that one edge could be as well (OnlineBoutique 14:30 without traces:
        recommendationservice "on every callee", its one callee productcatalogservice, the service delayed)."""
        if len(self.wait_peers) == 1:
            return f"on its one callee, {self.wait_peers[0]}"
        return "on every callee"

    def describe(self, network: bool = True) -> str:
        """The change in words: the longer wait on its calls (read as a delay on its network unless `network` is
        False), the slower own work (said not to count when the tail test does not carry it), or the event whose
        share of the traces moved."""
        own_time = self.own_time
        if self.delayed and self.wait_after_ms is not None:
            before = "before" if self.wait_baseline == "history" else "typical of the other calls"
            calls = "its callers waited" if self.wait_direction == "in" else "it waited"
            around = "each call into it beyond its own server time" if self.wait_direction == "in" else (
                f"each of its calls beyond the callee's server time, {self._on_callees()}")
            # both ways: the other direction than the one measured (the larger) waited longer too
            other = "its own calls to others" if self.wait_direction == "in" else "its callers on the calls into it"
            median = " ".join(filter(None, ("median", self._few_calls(1))))
            level = ", ".join(filter(None, (f"{three_figures(self.wait_before_ms)} ms {before}", self._few_calls(0))))
            if self.wait_source == CALL_METRICS:
                minutes = self._minutes(1)
                median = f"median over {minutes} of call metrics, the client side's latency less the server side's"
                if self.wait_baseline == "history":
                    level = (f"at most {three_figures(self.wait_before_ms)} ms in {BEFORE_QUANTILE:.0%} of the "
                             f"{self._minutes(0)} before")
            wait = (f"{calls} {three_figures(self.wait_after_ms)} ms around {around} ({median}; {level})"
                    + (f", and {other} waited longer too" if self.wait_both_ways else ""))
            if own_time > 0 and self.round_trips_waited:
                gains = [three_figures(g) for g in (min(map(min, self.round_trip_gains)),
                                                    max(map(max, self.round_trip_gains)))]
                wait += (f"; its own spans with nothing under them (calls such as database statements) took about "
                         f"as much longer ({' to '.join(dict.fromkeys(gains))} ms at their p10 and median)")
            return f"{wait}: the delay lies between the services, on its network" if network else wait
        if self.tells_own_time:
            whose, spans = ("the time its callers' client spans took on their calls to it (it is untraced)",
                            "those calls") if self.untraced else ("its own span time", "its spans")
            said = self._own_time_words(whose, spans)
            return said if own_time > 0 else (f"{said}, on too few of its spans to count (tail test z "
                                              f"{self.own_tail_z:g}, short of {SIGNIFICANT_STRENGTH:g})")
        if self.event is None or self.share_before is None or self.share_after is None:
            return "its requests changed"
        said = (f"'{_short(self.event, 120)}' in "
                f"{_share_words(self.share_after, self.traces_after, ' of its traces', ' traces')} after the onset, "
                f"{_share_words(self.share_before, self.traces_before)} before")
        if self.cut_short and self.last_call is not None and self.last_call_share is not None:
            said += (f"; of the {self.cut_requests} requests without it that called another service, "
                     f"{self.last_call_share:.0%} called {_short(self.last_call, 120)} last")
        return said


    def own_slowed_words(self) -> str | None:
        """Where the wait is a delay (`delayed`) but its own time rose past the bar too, less than the wait, what its
        own time did: `its own span time p90 from 0.279 to 0.343 ms over 17 spans` (the count where fewer than
        `COUNTED_BELOW`); None where its own time did not count, or rose by its round trips' delay alone
        (`round_trips_waited`): its work kept its pace. OnlineBoutique 14:12's paymentservice "kept its pace" beside
        its own p90 from 0.279 to 0.343 ms, a rise its tail test carried (z 5.4)."""
        if not self.delayed or self.own_time <= 0 or self.round_trips_waited or self.own_p90_after_ms is None:
            return None
        after = (self.own_spans or (0, 0))[1]
        few = f" over {after} span{'s' if after != 1 else ''}" if 0 < after < COUNTED_BELOW else ""
        return (f"its own span time p90 from {three_figures(self.own_p90_before_ms or 0.0)} to "
                f"{three_figures(self.own_p90_after_ms)} ms{few}")

    def _few_calls(self, side: int) -> str:
        """`over 7 calls`: how few traced calls the wait's median of one side (0 before, 1 after) is of, where fewer
        than `COUNTED_BELOW`, as the own-time words count few spans (a median of a handful of calls is one or two of
        them); else nothing."""
        count = self.wait_calls[side] if self.wait_calls else None
        return f"over {count} call{'s' if count != 1 else ''}" if count is not None and count < COUNTED_BELOW else ""

    def _minutes(self, side: int) -> str:
        """`5 minutes`: how many minutes of call metrics the wait's figure of one side (0 before, 1 after) is of;
        `minutes` where not known (an analysis of before the count)."""
        count = self.wait_calls[side] if self.wait_calls else None
        return "minutes" if count is None else f"{count} minute{'s' if count != 1 else ''}"

    def _own_time_words(self, whose: str, spans: str) -> str:
        """Its own span time's p90 before and after, and the share of its spans past the p90 of both sides together;
        where a side holds fewer than `COUNTED_BELOW` spans, the count past it first and the p90 beside it, of how
        few (OnlineBoutique 13:45's emailservice: "its own span time p90 went from 0.618 to 30.4 ms", 3 of its 8
        spans after past the p90 of both sides): `its own span time: 3 of the 8 of its spans after ran past the p90
        of its spans before and after together, 9% of them before (a p90 of 0.618 ms before, 30.4 ms of the 8
        after)`."""
        p90s = (three_figures(self.own_p90_before_ms), three_figures(self.own_p90_after_ms))
        if self.own_tail_shares is None:
            return f"{whose} p90 went from {p90s[0]} to {p90s[1]} ms"
        before, after = self.own_tail_shares
        counts = self.own_spans or (0, 0)
        shares = (_share_words(before, counts[0], " of them", " of them"), _share_words(after, counts[1]))
        if not any(0 < n < COUNTED_BELOW for n in counts):
            return (f"{whose} p90 went from {p90s[0]} to {p90s[1]} ms (past the p90 of {spans} before and after "
                    f"together: {shares[0]} before, {shares[1]} after)")
        of = [f" of the {n}" if 0 < n < COUNTED_BELOW else "" for n in counts]
        past = (f"{_how_many(after, counts[1])} of the {counts[1]} of {spans}" if of[1] else
                f"{after:.0%} of {spans}")
        return (f"{whose}: {past} after ran past the p90 of {spans} before and after together, "
                f"{shares[0]} before (a p90 of {p90s[0]} ms{of[0]} before, {p90s[1]} ms{of[1]} after)")


def _share_words(share: float, count: int, whole: str = "", few: str = "") -> str:
    """`49%` and `whole` (`49% of its traces`), or of fewer than `COUNTED_BELOW` traces (spans) the count and `few`:
    `1 of 7 traces`; `3.5 of 8` (a span at the p90 of both sides counts half)."""
    if 0 < count < COUNTED_BELOW:
        return f"{_how_many(share, count)} of {count}{few}"
    return f"{share:.0%}{whole}"


def _how_many(share: float, count: int) -> str:
    """How many of `count` a `share` is, to the half a span at the p90 of both sides counts as: `3`, `3.5`."""
    return f"{round(share * count * 2) / 2:g}"


def log_trace_column(store: Any) -> str | None:
    """The logs' trace id column (`trace_id`, `TraceID`, `traceId` ...), if the logs have one and can be joined to the
    spans: logs a query backend serves (ClickHouse) are queried there on their own, so their lines are read by the
    log surges and templates, not per trace."""
    backend = getattr(store, "logs_backend", None)
    if not store.has("logs") or (backend is not None and "logs" in backend.views):
        return None
    return next((c for c in store.columns("logs") if normalise(c) == "traceid"), None)


def trace_events_sql(window: Span, baseline: Span, log_trace: str | None, services: Sequence[str],
                     links: str, masks: str, statements: str | None = None,
                     spans_offset: timedelta = timedelta(0)) -> str:
    """Per service and family (problem events, the rest): the event whose share of the service's traces moved most
    within request kinds (Mantel-Haenszel z; with `DISPERSION_MINUTES` or more before the onset, no larger than its
    change against the typical minute there), with the number of events tested in the family.

    `services`: the known service names; a request in which the service logged a problem naming one it calls ("No
    instances available for ts-basic-service"), or had a problem while a service it called in it (and that did not
    call it back) failed, reports that callee's trouble and is left out of its own. `links`:
    the spans joined to their parents (`span_links`). `masks`:
    the relation a log line looks its template up in (`masking.masks_relation` over the two spans; a line it lacks
    is masked on its own), unread when `log_trace` is None."""
    ctes = [*_trace_sides_ctes(window, baseline, log_trace, spans_offset), *_entries_and_calls_ctes(links)]
    if log_trace is not None:
        ctes.append(_log_lines_cte(window, baseline, log_trace, services, masks, statements))
    ctes += [*_problem_ctes(log_trace is not None), *_strata_ctes(log_trace is not None),
             *_event_count_ctes(log_trace is not None), *_dispersion_ctes(), *_scored_ctes()]
    return "WITH " + ", ".join(f"{name} AS ({body}\n)" for name, body in ctes) + _STRONGEST_EVENTS_SQL


#: of `trace_events_sql`'s scored events, per service and family, the one that moved most
_STRONGEST_EVENTS_SQL = """
SELECT service, event, problem, hits_before, hits_after, traces_before, traces_after, share_before, share_after,
       -- the change shows from the first trace with a new event, or from the first trace that lacks a lost one
       CASE WHEN z > 0 THEN first_hit_after ELSE first_trace_after END AS onset, z, tested,
       max(abs(z)) OVER (PARTITION BY service) AS largest_z
FROM scored
-- a problem that stops is recovery, not a fault
WHERE NOT (problem AND z < 0)
QUALIFY row_number() OVER (PARTITION BY service, problem ORDER BY abs(z) DESC, event) = 1
ORDER BY abs(z) DESC, service, problem DESC"""


def _trace_sides_ctes(window: Span, baseline: Span, log_trace: str | None,
                      spans_offset: timedelta) -> list[tuple[str, str]]:
    """`trace_events_sql`'s traces (each one's start) and their sides: after the onset or before it, whether the
    trace began while logs were being written (`_logged_sql`; any, without log lines joined to traces), and its
    minute from the onset."""
    logged = _logged_sql(window, baseline, log_trace, spans_offset) if log_trace is not None else "TRUE"
    # the traces' starts are on the spans' clock (`span_clock_offset`), the log lines' on the logs' own
    on_spans, before_on_spans = _moved(window, spans_offset), _moved(baseline, spans_offset)
    return [
        ("traces", "\n    SELECT trace_id, min(start_ts) AS started FROM spans GROUP BY trace_id"),
        ("sides", f"""
    SELECT trace_id, started, {in_span('started', on_spans)} AS after, {logged} AS logged,
           {minute_from_sql('started', on_spans[0])} AS minute FROM traces
    WHERE {in_span('started', on_spans)} OR {in_span('started', before_on_spans)}"""),
    ]


def _entries_and_calls_ctes(links: str) -> list[tuple[str, str]]:
    """`trace_events_sql`'s entries (the operations by which each service was entered in each trace) and calls
    (caller, callee, trace and the callee's operation), from the spans joined to their parents (`links`)."""
    return [
        ("entries", f"""
    -- the operations by which each service was entered in each trace (a span whose parent is another service's)
    SELECT DISTINCT service, trace_id, operation FROM {links}
    WHERE service IS NOT NULL AND parent_service IS DISTINCT FROM service"""),
        ("calls", f"""
    SELECT parent_service AS caller, service AS callee, trace_id, operation FROM {links}
    WHERE service <> parent_service"""),
    ]


def _log_lines_cte(window: Span, baseline: Span, log_trace: str, services: Sequence[str], masks: str,
                   statements: str | None) -> tuple[str, str]:
    """`trace_events_sql`'s log lines of traced requests from the baseline's start to the window's end: per line its
    service, trace, template (its log statement's where `statements` is given, else its mask's), whether it is a
    problem (WARN and worse) or a failure (ERROR and worse), and the service a problem line names (`services`)."""
    template = f"coalesce(masks.masked, {masked_sql()})"
    statement_join = ""
    if statements is not None:
        template = f"coalesce(statements.template, {template})"
        statement_join = f"\n    LEFT JOIN {statements} AS statements ON masks.masked = statements.masked"
    problem = f"level IN {sql_in(PROBLEM_LEVELS)}"
    named = f"CASE WHEN {problem} THEN {named_service_sql(services)} END" if services else "NULL"
    return ("log_lines", f"""
    SELECT service, {quote_ident(log_trace)} AS trace_id, {template} AS template,
           {problem} AS problem, level IN {sql_in(ERROR_LEVELS)} AS failed, {named} AS named
    FROM logs LEFT JOIN {masks} AS masks ON logs.message = masks.raw{statement_join}
    WHERE {quote_ident(log_trace)} IS NOT NULL AND service IS NOT NULL
      AND ({in_span('ts', (baseline[0], window[1]))})""")


def _problem_ctes(with_lines: bool) -> list[tuple[str, str]]:
    """`trace_events_sql`'s requests in which each service had a problem, failed, or reported a callee's trouble
    (deflected); by error statuses, and by log lines where they are joined to traces (`with_lines`)."""
    failures = "SELECT DISTINCT service, trace_id FROM spans WHERE is_error AND service IS NOT NULL"
    problems = failures
    deflected = "SELECT NULL AS service, NULL AS trace_id WHERE FALSE"
    if with_lines:
        problems += "\n    UNION SELECT DISTINCT service, trace_id FROM log_lines WHERE problem"
        failures += "\n    UNION SELECT DISTINCT service, trace_id FROM log_lines WHERE failed"
        deflected = ("SELECT DISTINCT service, trace_id FROM log_lines\n"
                     "    WHERE problem AND (service, named) IN (SELECT caller, callee FROM calls)")
    return [
        ("problems", f"""
    -- the requests in which each service had a problem: a WARN/ERROR line, an error status
    {problems}"""),
        ("failures", f"""
    -- the requests in which each service failed: an ERROR line, an error status (a WARN is a service that answered:
    -- a callee's routine warning is no failure its caller's error came up from)
    {failures}"""),
        ("deflected", f"""
    -- requests in which the service logged a problem naming a service it calls ("No instances available for X"),
    -- or had a problem where a service it called failed: it reports X's trouble there, so these requests do not
    -- show its own behaviour. Not where X called it back in the request: which of the two failures came up from
    -- the other, services alone do not tell, and each keeps its own
    {deflected}
    UNION SELECT DISTINCT mine.service, mine.trace_id FROM problems AS mine
    JOIN calls ON calls.caller = mine.service AND calls.trace_id = mine.trace_id
    JOIN failures AS theirs ON theirs.service = calls.callee AND theirs.trace_id = mine.trace_id
    ANTI JOIN calls AS back ON back.caller = calls.callee AND back.callee = calls.caller
        AND back.trace_id = calls.trace_id"""),
    ]


def _strata_ctes(with_lines: bool) -> list[tuple[str, str]]:
    """`trace_events_sql`'s request kinds (per service and trace, not deflected), the strata (the kinds seen on both
    sides, per scope: every trace, and with log lines (`with_lines`) the logged ones) and their traces per service
    (units)."""
    # the scopes events are counted over: every trace, and the logged ones when log lines are events
    scopes = "(VALUES (FALSE), (TRUE))" if with_lines else "(VALUES (FALSE))"
    return [
        ("kinds", """
    -- the kind of request the service served in the trace: its entry operations
    SELECT service, trace_id, string_agg(DISTINCT coalesce(operation, ''), ' + ' ORDER BY coalesce(operation, ''))
           AS kind
    FROM entries ANTI JOIN deflected USING (service, trace_id) GROUP BY service, trace_id"""),
        ("strata", f"""
    -- request kinds seen on both sides: a kind that only one side has says nothing about a change. Log lines are
    -- counted only over the traces that began while the logs were being written (`logs_only`): a trace from a
    -- minute no log file covers did not lack the line, it went unlogged
    SELECT service, kind, logs_only, count(*) FILTER (WHERE NOT after) AS n_before,
           count(*) FILTER (WHERE after) AS n_after, min(started) FILTER (WHERE after) AS first_trace_after
    FROM kinds JOIN sides USING (trace_id) CROSS JOIN {scopes} AS scopes(logs_only)
    WHERE logged OR NOT logs_only
    GROUP BY service, kind, logs_only
    HAVING count(*) FILTER (WHERE NOT after) > 0 AND count(*) FILTER (WHERE after) > 0"""),
        ("units", """
    SELECT service, logs_only, sum(n_before) AS traces_before, sum(n_after) AS traces_after,
           min(first_trace_after) AS first_trace_after
    FROM strata GROUP BY service, logs_only"""),
    ]


def _event_selects(with_lines: bool) -> list[str]:
    """The events of each service's traces, one SELECT a family: the calls it made, its operations' error statuses,
    and with log lines (`with_lines`) each line's template and its share of the service's lines in the trace."""
    events = [
        "SELECT DISTINCT caller AS service, trace_id, 'call ' || callee || ' ' || operation AS event, "
        "FALSE AS problem, FALSE AS variant, FALSE AS logs_only FROM calls",
        "SELECT DISTINCT service, trace_id, 'error ' || operation AS event, TRUE AS problem, FALSE AS variant, "
        "FALSE AS logs_only\n    FROM spans WHERE is_error AND service IS NOT NULL",
    ]
    if with_lines:
        events.append("SELECT DISTINCT service, trace_id, 'log ' || template AS event, problem, FALSE AS variant, "
                      "TRUE AS logs_only FROM log_lines")
        # the line's share of the service's lines in one request, as a reduced fraction: a loop cut short writes
        # it less often though still once; a loop that runs more or fewer times keeps the fraction. A variant of
        # its line's event, not an event of its own when the tests are counted
        events.append(
            "SELECT service, trace_id, 'log ' || template || ' (' || (hits // gcd(hits, lines_in_trace)) || '/' || "
            "(lines_in_trace // gcd(hits, lines_in_trace)) || ' of its lines in the trace)' AS event, problem, "
            "TRUE AS variant, TRUE AS logs_only\n"
            "    FROM (SELECT service, trace_id, template, count(*) AS hits, bool_or(problem) AS problem, "
            "sum(count(*)) OVER (PARTITION BY service, trace_id)::BIGINT AS lines_in_trace\n"
            "    FROM log_lines GROUP BY service, trace_id, template)"
        )
    return events


def _event_count_ctes(with_lines: bool) -> list[tuple[str, str]]:
    """`trace_events_sql`'s events (`_event_selects`), their hits per kind and side (counted), and per service and
    event pooled over the kinds (stratified: Mantel-Haenszel's excess and variance)."""
    union = "\n    UNION ALL ".join(_event_selects(with_lines))
    return [
        ("events", f"\n    {union}"),
        ("counted", """
    SELECT service, kind, event, logs_only, bool_or(problem) AS problem, bool_or(variant) AS variant,
           count(*) FILTER (WHERE NOT after) AS hits_before, count(*) FILTER (WHERE after) AS hits_after,
           min(started) FILTER (WHERE after) AS first_hit_after
    FROM (SELECT DISTINCT * FROM events) JOIN kinds USING (service, trace_id) JOIN sides USING (trace_id)
    WHERE logged OR NOT logs_only
    GROUP BY service, kind, event, logs_only"""),
        ("stratified", """
    -- Mantel-Haenszel: within each request kind, the hits after against what the kind's pooled share predicts
    -- (strata hold two requests or more: one on each side). The doubles are added kind by kind in one order: in the
    -- order the threads reach them, their last bits, and the evidence id, would vary from run to run
    SELECT service, event, logs_only, bool_or(problem) AS problem, bool_or(variant) AS variant,
           sum(hits_before) AS hits_before, sum(hits_after) AS hits_after, min(first_hit_after) AS first_hit_after,
           sum(hits_after - hits * n_after / n ORDER BY kind) AS excess,
           sum(hits * (n - hits) * n_before * n_after / (n * n * (n - 1)) ORDER BY kind) AS variance
    FROM (SELECT *, hits_before + hits_after AS hits, n_before + n_after AS n FROM counted JOIN strata
          USING (service, kind, logs_only))
    GROUP BY service, event, logs_only"""),
    ]


def _dispersion_ctes() -> list[tuple[str, str]]:
    """`trace_events_sql`'s minutes before the onset (each service's traces and each event's hits in them) and, per
    event seen in `DISPERSION_MINUTES` or more, its share in a typical minute and how overdispersed it is."""
    return [
        ("minute_traces", f"""
    -- each service's traces per minute before the onset, per scope, of the request kinds seen on both sides (as the
    -- share after: a kind the onset's minutes lack would move the typical share away from what they hold)
    SELECT service, logs_only, minute, count(*) AS n
    FROM kinds JOIN sides USING (trace_id) JOIN strata USING (service, kind)
    WHERE NOT after AND (logged OR NOT logs_only)
    GROUP BY service, logs_only, minute HAVING count(*) >= {MIN_TRACES}"""),
        ("minute_hits", """
    SELECT service, event, logs_only, minute, count(*) AS hits
    FROM (SELECT DISTINCT service, trace_id, event, logs_only FROM events) JOIN kinds USING (service, trace_id)
    JOIN sides USING (trace_id) JOIN strata USING (service, kind, logs_only)
    WHERE NOT after AND (logged OR NOT logs_only)
    GROUP BY service, event, logs_only, minute"""),
        ("per_minute", """
    SELECT service, event, logs_only, n, coalesce(hits, 0) AS hits,
           median(coalesce(hits, 0) / n) OVER per_event AS p
    FROM (SELECT DISTINCT service, event, logs_only FROM stratified) JOIN minute_traces USING (service, logs_only)
    LEFT JOIN minute_hits USING (service, event, logs_only, minute)
    WINDOW per_event AS (PARTITION BY service, event, logs_only)"""),
        ("dispersion", f"""
    -- the event's share in a typical minute before the onset (the median over those minutes: an earlier incident in
    -- a few of them does not move it), and how much more the share varied from minute to minute than chance alone
    -- makes it vary (quasi-binomial: the median Pearson term over the minutes, by that of chi-square with one
    -- degree of freedom). A request mix that drifts from minute to minute is not a change at the onset, however
    -- many traces an hour of baseline holds
    SELECT service, event, logs_only, any_value(p) AS typical,
           coalesce(median(power(hits - n * p, 2) / nullif(n * p * (1 - p), 0)) / {CHI2_1_MEDIAN}, 1) AS phi
    FROM per_minute
    GROUP BY service, event, logs_only HAVING count(*) >= {DISPERSION_MINUTES}"""),
    ]


def _scored_ctes() -> list[tuple[str, str]]:
    """`trace_events_sql`'s tests of each event with `MIN_TRACES` on both sides (tested: its pooled z, and the
    midpoint of its share after and its typical share) and their scores (scored: the z that holds against both, and
    the events tested per service and family)."""
    return [
        ("tested", f"""
    SELECT *, hits_after / traces_after AS share_after,
           CASE WHEN variance > 0 THEN excess / sqrt(variance * greatest(coalesce(phi, 1), 1)) ELSE 0 END AS z_pooled,
           (hits_after / traces_after + typical) / 2 AS midpoint
    FROM stratified JOIN units USING (service, logs_only) LEFT JOIN dispersion USING (service, event, logs_only)
    WHERE traces_before >= {MIN_TRACES} AND traces_after >= {MIN_TRACES}"""),
        ("scored", """
    SELECT service, event, problem, hits_before, hits_after, traces_before, traces_after, first_hit_after,
           first_trace_after, hits_before / traces_before AS share_before, share_after,
           -- the change must hold against the baseline pooled (within request kinds) and against its typical minute
           CASE WHEN typical IS NULL THEN z_pooled
                WHEN z_pooled > 0 THEN least(z_pooled, greatest(z_typical, 0))
                ELSE greatest(z_pooled, least(z_typical, 0)) END AS z,
           count(*) FILTER (WHERE NOT variant) OVER (PARTITION BY service, problem) AS tested
    FROM (SELECT *, coalesce((share_after - typical)
                             / nullif(sqrt(greatest(phi, 1) * midpoint * (1 - midpoint) / traces_after), 0), 0)
                    AS z_typical FROM tested)"""),
    ]


def _moved(span: Span, offset: timedelta) -> Span:
    return span[0] + offset, span[1] + offset


def _first_lines_sql(log_trace: str, span: Span) -> str:
    """Each trace's first log line's time in `span` (`trace_id`, `first`), on the logs' clock."""
    trace = quote_ident(log_trace)
    return (f"SELECT {trace} AS trace_id, min(ts) AS first FROM logs WHERE {trace} IS NOT NULL AND "
            f"{in_span('ts', span)} GROUP BY {trace}")


def _logged_sql(window: Span, baseline: Span, log_trace: str, spans_offset: timedelta = timedelta(0)) -> str:
    """SQL over a trace's `started`: true when the trace began while logs were being written, in a minute (counted
    from the window's start, as the log rates count them) in which any line was logged, and between the logs' first
    and last line, on the logs' clock: a trace's start moved by the median lag of the traces' first lines after
    their starts (a log clock 10 s ahead of the spans' puts every line 10 s after its request began, and the
    requests of the logs' last 10 s wrote lines no file holds). Logs that cover less than the traces (a file for
    the alert's minute beside an hour of spans) say nothing about the traces of the minutes they miss."""
    logged = logged_minutes_sql(window, baseline)
    span = covering(window, baseline)
    lag = (f"SELECT median(epoch(first) - epoch(started)) FROM ({_first_lines_sql(log_trace, span)}) AS f "
           "JOIN traces USING (trace_id)")
    moved = f"(started + to_microseconds(CAST(1e6 * coalesce(({lag}), 0) AS BIGINT)))"
    return (f"({moved} >= (SELECT min(first_line) FROM ({logged})) AND "
            f"{moved} <= (SELECT max(ts) FROM logs WHERE {in_span('ts', span)}) AND "
            f"{minute_from_sql('started', window[0] + spans_offset)} IN (SELECT minute FROM ({logged})))")


def adjusted_z(z: float, tested: int, one_sided: bool = False) -> float:
    """The event's z after a weighted Bonferroni correction, as the z whose two-sided p-value is the corrected one:
    half the error budget for a service's problem events (error lines and statuses; only their rise counts, so
    their test is one-sided), half for the rest, each half split over the events tested in it. The largest of many
    shifting INFO lines and calls is expected to be large by chance; one error line is not."""
    z = max(z, 0.0) if one_sided else abs(z)
    # the corrected p over the two-sided p of the corrected z: FAMILIES x tests, a one-sided test's tail counted once
    inflation = FAMILIES * max(tested, 1) * (1 if one_sided else 2) / 2
    tail = 0.5 * math.erfc(z / math.sqrt(2))
    if tail == 0.0:  # beyond double precision: ln p ~ -z^2/2, so the inflation shifts z^2 by 2 ln(inflation)
        return math.sqrt(max(z * z - 2 * math.log(inflation), 0.0))
    corrected = 2 * tail * inflation
    return 0.0 if corrected >= 1.0 else -NormalDist().inv_cdf(corrected / 2)


def own_time_sql(window: Span, baseline: Span) -> str:
    """Per service: p90 of its spans' exclusive time (duration minus the direct children's) before and after, and
    how many spans on each side ran past the p90 of both sides together (`tail_z`; one at it counts half); client
    spans (every child in another service) are the wait on a call, not the service's work, and are left out. And
    what its spans with nothing under them gained after the onset (`leaf_gains`: per operation of such spans with
    `MIN_SPANS` on each side, how much its p10 and its median grew, in ms; NULL without one): a database statement
    or a call to something untraced is such a span, and a delay on the service's network adds its time to each
    (`TraceSignal.round_trips_waited`); and the p90 of its other spans' exclusive time
    before and after (`work_p90_before`, `work_p90_after`; NULL with fewer than `MIN_SPANS` on a side)."""
    return f"""WITH own AS (
    SELECT parent.service, parent.operation, {in_span('parent.start_ts', window)} AS after,
           -- the children's time summed in whole nanoseconds: a sum of doubles depends on the order the threads
           -- add them in, and its last bits moved a p90 across a rounding (1.02 or 1.021 ms, run to run)
           greatest(parent.duration_ms - coalesce(sum(round(child.duration_ms * 1e6)::BIGINT), 0) / 1e6, 0) AS own_ms,
           count(child.span_id) = 0 AS leaf,
           count(child.span_id) > 0 AND bool_and(child.service IS DISTINCT FROM parent.service) AS client
    FROM spans AS parent
    LEFT JOIN spans AS child ON child.trace_id = parent.trace_id AND child.parent_id = parent.span_id
    WHERE parent.service IS NOT NULL
      AND ({in_span('parent.start_ts', window)} OR {in_span('parent.start_ts', baseline)})
    GROUP BY parent.trace_id, parent.span_id, parent.service, parent.operation, parent.start_ts, parent.duration_ms
    HAVING NOT client
), pooled AS (
    -- the cut is the p90 of both sides together (Mood's quantile test), not of the side before: a cut from the
    -- side before puts a tenth of it past by construction, however far past it the slow calls after run
    SELECT service, quantile_cont(own_ms, 0.9) AS p90 FROM own GROUP BY service
), placed AS (
    -- a span at the p90 counts half past it (as a tie in a rank test): with coarse timings most of a quiet
    -- service's spans can sit on it, and counting them as not past would make one slow call look like a new tail
    SELECT own.*, CASE WHEN own_ms > p90 THEN 1.0 WHEN own_ms = p90 THEN 0.5 ELSE 0.0 END::DOUBLE AS past
    FROM own JOIN pooled USING (service)
), leaves AS (
    -- a leaf span's exclusive time is its duration; per operation, what its p10 and median gained
    SELECT service, operation,
           quantile_cont(own_ms, 0.1) FILTER (WHERE after) - quantile_cont(own_ms, 0.1) FILTER (WHERE NOT after)
               AS floor_gain,
           quantile_cont(own_ms, 0.5) FILTER (WHERE after) - quantile_cont(own_ms, 0.5) FILTER (WHERE NOT after)
               AS median_gain
    FROM own WHERE leaf GROUP BY service, operation
    HAVING count(*) FILTER (WHERE after) >= {MIN_SPANS} AND count(*) FILTER (WHERE NOT after) >= {MIN_SPANS}
), gained AS (
    SELECT service, list([floor_gain, median_gain] ORDER BY operation) AS leaf_gains FROM leaves GROUP BY service
), work AS (
    -- its own time apart from those spans: the exclusive time of its spans with something under them
    SELECT service, quantile_cont(own_ms, 0.9) FILTER (WHERE NOT after) AS work_p90_before,
           quantile_cont(own_ms, 0.9) FILTER (WHERE after) AS work_p90_after
    FROM own WHERE NOT leaf GROUP BY service
    HAVING count(*) FILTER (WHERE after) >= {MIN_SPANS} AND count(*) FILTER (WHERE NOT after) >= {MIN_SPANS}
)
SELECT times.*, gained.leaf_gains, work.work_p90_before, work.work_p90_after
FROM (
    SELECT service, quantile_cont(own_ms, 0.9) FILTER (WHERE NOT after) AS p90_before,
           quantile_cont(own_ms, 0.9) FILTER (WHERE after) AS p90_after,
           count(*) FILTER (WHERE NOT after) AS spans_before, count(*) FILTER (WHERE after) AS spans_after,
           sum(past) FILTER (WHERE NOT after) AS tail_before, sum(past) FILTER (WHERE after) AS tail_after
    FROM placed GROUP BY service
    HAVING count(*) FILTER (WHERE after) >= {MIN_SPANS} AND count(*) FILTER (WHERE NOT after) >= {MIN_SPANS}
) AS times LEFT JOIN gained USING (service) LEFT JOIN work USING (service)
ORDER BY service"""


def tail_z(tail_before: float, spans_before: int, tail_after: float, spans_after: int) -> float:
    """The two-proportion z of spans past the p90 of both sides together, after against before: positive when the
    slowest tenth of the service's spans lies more after the onset than before, as sure as the counts on both sides
    allow (a p90 over a handful of spans is one or two of them). Only a tenth of all spans lie past that cut, so z
    has a ceiling: with as many spans on each side, it passes the candidate bar only from about 26 a side."""
    pooled = (tail_before + tail_after) / (spans_before + spans_after)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / spans_before + 1 / spans_after))
    if spread == 0:
        return 0.0
    return (tail_after / spans_after - tail_before / spans_before) / spread


def wait_sql(window: Span, baseline: Span, links: str) -> str:
    """Per call edge (caller, callee): the median wait around the calls (the caller's span minus the callee's server
    span under it) before and after, with the number of calls on each side, the first call after, whether the
    calls before are enough (`MIN_SPANS`) to be its history, and each call's wait on each side (`CALL_WAITS`, for
    the rank test); `links`: the spans joined to their parents (`span_links`)."""
    return f"""WITH edge_calls AS (
    SELECT parent_service AS caller, service AS callee, {in_span('parent_start', window)} AS after,
           parent_start AS start_ts, greatest(parent_ms - duration_ms, 0) AS wait_ms
    FROM {links}
    WHERE service <> parent_service AND ({in_span('parent_start', window)} OR {in_span('parent_start', baseline)})
      -- a call whose span or its parent's has no duration (the loader's NULL: negative, not finite) has no wait to
      -- measure; greatest() skips a NULL, so it would count as a call that waited 0 ms
      AND parent_ms IS NOT NULL AND duration_ms IS NOT NULL
)
SELECT caller, callee, count(*) FILTER (WHERE NOT after) AS calls_before, count(*) FILTER (WHERE after) AS calls_after,
       median(wait_ms) FILTER (WHERE NOT after) AS wait_before, median(wait_ms) FILTER (WHERE after) AS wait_after,
       min(start_ts) FILTER (WHERE after) AS first_after, count(*) FILTER (WHERE NOT after) >= {MIN_SPANS} AS history,
       'spans' AS source, list(wait_ms) FILTER (WHERE NOT after) AS {CALL_WAITS[0]},
       list(wait_ms) FILTER (WHERE after) AS {CALL_WAITS[1]}
FROM edge_calls GROUP BY caller, callee HAVING count(*) FILTER (WHERE after) >= {MIN_SPANS}
ORDER BY callee, caller"""


def traced_edges_sql(window: Span, links: str) -> str:
    """The call edges (caller, callee) with a span in the window; `links`: the spans joined to their parents."""
    return f"""SELECT DISTINCT parent_service AS caller, service AS callee FROM {links}
WHERE service <> parent_service AND {in_span('parent_start', window)}"""


def wait_shifts(edges: list[dict[str, Any]], directions: Sequence[str] = ("in", "out"),
                peers: str = "lower", parsimony: bool = True) -> dict[str, dict[str, Any]]:
    """Per service, the wait shift of its calls. Each call edge is held against its own calls before the onset (when
    it has enough of them, its `history`; else against the system's typical wait, the lower median over the edges):
    a delay that began at the onset. Only when no service's calls changed so, an edge whose history itself, or a
    quarter of it (`_upper_quartile`), stands out from the typical wait past the bar is held against the typical
    wait: a delay already under way before the onset (an earlier incident still going, a fault injected again) has
    become its history, or part of it, but still stands out from the other calls (an ordinary history is no such
    delay: a call that waited as the others did is held against it alone); an alert is about what changed, so a
    delay that did comes first. (The typical wait: `PEER_COMPARABLE`
    edges only.) A delay on a service's network slows every edge into it (or, when it is a caller only, every edge
    out of it), so a service scores the smallest shift over its callers' edges, or over its callees' when that is
    larger. The delay slows its calls out too, so a callee it alone calls waits as long: the service whose delayed
    calls, in and out, include all of another's explains that one (`_explain_by_parsimony`). (`directions`, `peers`
    — "missing" for the typical wait only on edges with no history, "never" for none — and `parsimony` are for
    ablations.)"""
    if not edges:
        return {}
    comparable = sorted(e["wait_after"] for e in edges if e["source"] in PEER_COMPARABLE)
    typical = float(comparable[(len(comparable) - 1) // 2]) if comparable else 0.0  # the lower median
    window_calls = _window_calls(edges)
    changed: dict[tuple[str, str], dict[str, Any]] = {}
    lowered: dict[tuple[str, str], dict[str, Any]] = {}
    for edge in edges:
        history, peered = bool(edge["history"]), edge["source"] in PEER_COMPARABLE
        if not history and (peers == "never" or not peered):
            continue
        key = (edge["caller"], edge["callee"])
        own = np.sort(np.asarray(edge.get(CALL_WAITS[0]) or [], dtype=float))
        changed[key] = (_edge_wait(edge, float(edge["wait_before"]), "history", own) if history
                        else _edge_wait(edge, typical, "peers", window_calls))
        delayed_before = history and peered and _past_bar(_longer_by(_upper_quartile(own, edge), typical))
        lowered[key] = (_edge_wait(edge, typical, "peers", window_calls) if delayed_before
                        else changed[key])
    per_service = _per_service(changed, directions)
    if peers == "lower" and not any(_carried(wait) for wait in per_service.values()):
        changed = lowered
        per_service = _per_service(lowered, directions)
    if parsimony:
        _explain_by_parsimony(per_service, {key for key, wait in changed.items() if _delayed(wait)})
    return per_service


def _upper_quartile(history: np.ndarray, edge: dict[str, Any]) -> float:
    """The wait a quarter of an edge's calls before the onset outlasted: a delay under way for part of its history
    (the same service injected again, its history half clean and half delayed, whose median lies between the two)
    shows in it as it does not in the median; the median where the source measured no single calls."""
    return float(np.quantile(history, 0.75)) if history.size else float(edge["wait_before"])


def _window_calls(edges: list[dict[str, Any]]) -> np.ndarray:
    """The waits of every call in the window on the edges the typical wait is taken over, sorted once: an edge held
    against the typical wait is ranked against the other edges' calls among them (`_rank_test`)."""
    calls = [np.asarray(e.get(CALL_WAITS[1]) or [], dtype=float) for e in edges if e["source"] in PEER_COMPARABLE]
    return np.sort(np.concatenate(calls)) if calls else np.array([])


def _edge_wait(edge: dict[str, Any], before: float, baseline: str, reference: np.ndarray) -> dict[str, Any]:
    after = float(edge["wait_after"])
    return {"shift": _longer_by(after, before), "before": before, "after": after, "baseline": baseline,
            "onset": edge["first_after"], "source": edge["source"], "calls": _calls(edge, baseline),
            "test": _rank_test(edge.get(CALL_WAITS[1]), reference, among=baseline == "peers")}


def _calls(edge: dict[str, Any], baseline: str) -> tuple[int | None, int] | None:
    """How many traced calls (call metrics: minutes) an edge's figures are of, before and after; before None where
    the edge is held against the typical wait (`peers`), which is no figure of its own calls. None where the edge
    does not say."""
    unit = "calls" if "calls_after" in edge else "minutes"
    if f"{unit}_after" not in edge:
        return None
    return (int(edge[f"{unit}_before"]) if baseline == "history" else None), int(edge[f"{unit}_after"])


def _rank_test(after_ms: Any, reference: np.ndarray, among: bool = False) -> tuple[float, float] | None:
    """One call edge's part of the rank test: how far the Mann-Whitney count of its calls after the onset (each call
    after counted against each call of `reference` it outlasted, a tie half) exceeds what chance gives, and that
    count's variance. `reference`: its own calls before the onset, sorted, or when it is held against the typical
    wait (`among`), the window's calls (`_window_calls`), its own among them: those are taken out (against each
    other its calls outlast exactly half the pairs), which leaves it ranked against the other edges' calls without
    sorting them again for each edge. A rank test reads how far the calls moved, not only to which side of a median:
    six calls past every call before are sure, as six calls past half of them are not. None without calls to test
    (call metrics give a minute's percentiles)."""
    if after_ms is None:
        return None
    after = np.asarray(after_ms, dtype=float)
    n_after = after.size
    n_ref = reference.size - (n_after if among else 0)
    if n_ref <= 0:
        return 0.0, 0.0
    below = np.searchsorted(reference, after, side="left")
    at_or_below = np.searchsorted(reference, after, side="right")
    outlasted = float(below.sum() + 0.5 * (at_or_below - below).sum()) - (n_after * n_after / 2 if among else 0.0)
    return outlasted - n_after * n_ref / 2, n_after * n_ref * (n_after + n_ref + 1) / 12


def rank_test_z(waits: Sequence[dict[str, Any]]) -> float | None:
    """How surely the calls of these edges waited longer after the onset than their reference: their rank tests
    (`_rank_test`) pooled over the edges as strata (the sum of the excesses over the root of the sum of the
    variances). None when a source measured no single calls."""
    tests = [wait["test"] for wait in waits]
    if any(test is None for test in tests):
        return None
    variance = sum(v for _, v in tests)
    return sum(excess for excess, _ in tests) / math.sqrt(variance) if variance > 0 else 0.0


def _longer_by(after_ms: float, before_ms: float) -> float:
    """How much longer one time is than another, on the log scale the bar is set on: ln((1 + after) / (1 + before))."""
    return math.log1p(after_ms) - math.log1p(before_ms)


def _past_bar(shift: float) -> bool:
    return WAIT_WEIGHT * shift >= SIGNIFICANT_STRENGTH


def _delayed(wait: dict[str, Any]) -> bool:
    return _past_bar(wait["shift"])


def _carried(wait: dict[str, Any]) -> bool:
    """A service's wait delayed past the bar, and its rank test carrying it (or none possible: call metrics)."""
    return _past_bar(_counted(wait)[0])


def _per_service(waits: dict[tuple[str, str], dict[str, Any]], directions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per service, the smallest edge shift into it, or out of it when that counts for more (`_counted`), with the
    rank test over the direction's edges (`z`, `rank_test_z`); `both_ways` when each direction alone is delayed
    and carried (a delay on its network slows its calls both ways). Each direction's edges are those of the finest
    source that measures any (`FINEST_FIRST`): the smallest shift over edges of unlike precision would be set by the
    coarser one's noise."""
    edges: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for (caller, callee), wait in waits.items():
        for service, direction, other in ((callee, "in", caller), (caller, "out", callee)):
            if direction in directions:
                edges.setdefault((service, direction), []).append((other, wait))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for (service, direction), mine in edges.items():
        finest = min(FINEST_FIRST.index(wait["source"]) for _, wait in mine)
        measured = [(other, wait) for other, wait in mine if FINEST_FIRST.index(wait["source"]) == finest]
        smallest = min((wait for _, wait in measured), key=lambda wait: wait["shift"])
        found[(service, direction)] = {**smallest, "direction": direction,
                                       "z": rank_test_z([wait for _, wait in measured]),
                                       "peers": sorted({other for other, _ in measured})}
    per_service: dict[str, dict[str, Any]] = {}
    for (service, _), wait in sorted(found.items(), key=lambda item: item[0][1]):  # "in" before "out"
        if service not in per_service or _counted(wait) > _counted(per_service[service]):
            per_service[service] = wait
    for service, wait in per_service.items():
        wait["both_ways"] = all((service, d) in found and _carried(found[(service, d)]) for d in ("in", "out"))
    return per_service


def _counted(wait: dict[str, Any]) -> tuple[float, float]:
    """What a direction's wait counts for: its shift where the rank test carries it, else nothing (its shift
    breaks the tie)."""
    untested_or_carried = wait["z"] is None or wait["z"] >= SIGNIFICANT_STRENGTH
    return (wait["shift"] if untested_or_carried else 0.0), wait["shift"]


def _explain_by_parsimony(per_service: dict[str, dict[str, Any]], delayed: set[tuple[str, str]]) -> None:
    """A delay on a service's network slows its calls both ways, so the callee it alone calls waits too: a service
    whose delayed calls are all among another's (a strict subset) is explained by that one, and its wait no longer
    counts (`explained_by` says by whom)."""
    touching = {service: {edge for edge in delayed if service in edge} for service in per_service}
    for service, wait in per_service.items():
        mine = touching[service]
        if not mine or not _carried(wait):
            continue
        wider = next((other for other, theirs in touching.items() if other != service and mine < theirs), None)
        if wider is not None:
            wait["shift"], wait["explained_by"] = 0.0, wider


def trace_signals(store: Any, window: Span, baseline: Span) -> tuple[dict[str, TraceSignal], list[Evidence]]:
    """Each traced service's behaviour and own-time shift, with one `trace` evidence for each measure; and the wait
    around its calls, from the spans or, on the edges they do not show, from call metrics (`callmetrics`). The spans
    are read on their own clock where it is off the logs' (`span_clock_offset`): their window and baseline moved by
    the offset, and the onsets they give moved back, to meet the logs' and metrics' in the precedence tests."""
    signals: dict[str, TraceSignal] = {}
    evidence: list[Evidence] = []
    waits: list[tuple[list[dict[str, Any]], str]] = []  # (edges, the query) of each source of waits
    traced: set[tuple[str, str]] = set()
    on_spans = window, baseline
    untraced = untraced_services(store) if store.has("spans") else []
    span_edges: list[dict[str, Any]] = []
    if store.has("spans"):
        offset = span_clock_offset(store, window, baseline)
        on_spans = _moved(window, offset), _moved(baseline, offset)
        links = span_links(store)
        evidence = _span_signals(store, window, baseline, links, signals, offset, untraced)
        for signal in signals.values():
            signal.onset = signal.onset and signal.onset - offset
        edges_sql = wait_sql(*on_spans, links)
        edges = span_edges = store.fetch(edges_sql).to_pylist()
        for edge in edges:
            edge["first_after"] = edge["first_after"] and edge["first_after"] - offset
        waits.append((edges, edges_sql))
        traced = {(row["caller"], row["callee"])
                  for row in store.fetch(traced_edges_sql(on_spans[0], links)).to_pylist()}
    if store.has("calls"):
        # An edge with spans in the window is theirs, measured call by call (or, with too few calls, not at all):
        # a minute's wait from call metrics is the difference of two histogram percentiles, far coarser. Call
        # metrics fill the edges no span shows.
        calls_sql = calls_wait_sql(window, baseline)
        waits.append(([e for e in store.fetch(calls_sql).to_pylist() if (e["caller"], e["callee"]) not in traced],
                      calls_sql))
    # the wait around a call into an untraced service is 0 by construction (its span was inferred as long as the
    # call), not measured: counted, it made 0 ms the typical wait every other call stood out from, and it set the
    # smallest wait on its callers' calls out
    _add_waits(signals, [edge for edges, _ in waits for edge in edges if edge["callee"] not in untraced])
    for service in untraced:
        if service in signals:
            signals[service].untraced = True
            signals[service].onset = signals[service].onset or _first_call(service, span_edges)
    cuts = [cut for signal in signals.values() if (cut := _where_cut(store, *on_spans, signal)) is not None]
    for edges, sql in waits:
        evidence.extend(_wait_evidence(signals, edges, sql))
    return signals, evidence + cuts


def _first_call(service: str, edges: list[dict[str, Any]]) -> datetime | None:
    """The first call into `service` after the onset, over `edges` (`wait_sql`'s): a callee's onset where nothing
    else gave one, as `_add_waits` gives a traced callee's."""
    return min((e["first_after"] for e in edges if e["callee"] == service and e["first_after"]), default=None)


def untraced_services(store: Any) -> list[str]:
    """The services whose spans were inferred under client spans naming them (`peers.inferred_spans_sql`, which
    infers none for a peer with spans of its own): dependencies nothing traced, seen from their callers' client spans
    alone. Answered from the column's statistics where no span names a peer, the usual case."""
    return [row["service"] for row in store.fetch(
        "SELECT DISTINCT service FROM spans WHERE inferred ORDER BY service").to_pylist()]


def span_clock_offset(store: Any, window: Span, baseline: Span) -> timedelta:
    """How far the spans' clock runs ahead of the logs' (zero where it does not, or the logs carry no trace ids): the
    median lag of a trace's first log line after its first span's start, where that lag is impossible on one clock:
    before the request began, or past its usual length (the median trace's, first span start to last span end). On
    one clock the first line comes within the request (the shared TrainTicket day: 7 ms, p10-p90 5-14 ms); a
    tracer's clock 30 s ahead makes it -30 s. Returned as the time to add to the logs' clock for the spans'."""
    log_trace = log_trace_column(store)
    if log_trace is None:
        return timedelta(0)
    row = store.fetch(f"""WITH firsts AS (
    {_first_lines_sql(log_trace, covering(window, baseline))}
), traces AS (
    SELECT trace_id, min(start_ts) AS started,
           max(start_ts + to_microseconds(CAST(1000 * coalesce(duration_ms, 0) AS BIGINT))) AS ended
    FROM spans GROUP BY trace_id
)
SELECT median(epoch(first) - epoch(started)) AS lag, median(epoch(ended) - epoch(started)) AS usual
FROM firsts JOIN traces USING (trace_id)""").to_pylist()[0]
    lag, usual = row["lag"], row["usual"]
    if lag is None or 0 <= lag <= max(usual or 0.0, 0.0):
        return timedelta(0)
    return -timedelta(seconds=lag)


def _span_signals(store: Any, window: Span, baseline: Span, links: str, signals: dict[str, TraceSignal],
                  offset: timedelta = timedelta(0), untraced: Collection[str] = ()) -> list[Evidence]:
    """Each traced service's behaviour and own-time shift into `signals`; returns their evidence. `window` and
    `baseline` on the logs' clock, the spans read `offset` later (`span_clock_offset`); `untraced`: the services
    whose spans were inferred under their callers' calls (`untraced_services`), whose time is those calls'."""
    services = store.fetch("SELECT DISTINCT service FROM spans WHERE service IS NOT NULL").column(0).to_pylist()
    log_trace = log_trace_column(store)
    masks = masks_relation(store, covering(window, baseline)) if log_trace is not None else ""
    statements = statements_relation(store, masks, covering(window, baseline)) if log_trace is not None else None
    events_sql = trace_events_sql(window, baseline, log_trace, services, links, masks, statements, offset)
    rows = store.fetch(events_sql).to_pylist()
    for row in rows:
        row["adjusted_z"] = round(adjusted_z(float(row["z"]), int(row["tested"]), one_sided=row["problem"]), 3)
    events = _most_surprising_per_service(rows)
    signals.update({row["service"]: _behaviour(row) for row in events})
    times_sql = own_time_sql(_moved(window, offset), _moved(baseline, offset))
    times = store.fetch(times_sql).to_pylist()
    for row in times:
        s = signals.setdefault(row["service"], TraceSignal(service=row["service"]))
        s.own_p90_before_ms = round(float(row["p90_before"]), 3)
        s.own_p90_after_ms = round(float(row["p90_after"]), 3)
        s.own_time_shift = round(_longer_by(s.own_p90_after_ms, s.own_p90_before_ms), 4)
        s.own_tail_z = round(tail_z(row["tail_before"], row["spans_before"], row["tail_after"], row["spans_after"]), 3)
        s.own_tail_shares = (round(row["tail_before"] / row["spans_before"], 3),
                             round(row["tail_after"] / row["spans_after"], 3))
        s.own_spans = (int(row["spans_before"]), int(row["spans_after"]))
        s.leaf_gains_ms = [(round(float(floor), 3), round(float(median), 3))
                           for floor, median in row["leaf_gains"] or []]
        if row["work_p90_before"] is not None:
            s.work_p90_ms = (round(float(row["work_p90_before"]), 3), round(float(row["work_p90_after"]), 3))
        s.untraced = s.service in untraced
    return _evidence(signals, events, events_sql, times, times_sql)


def _add_waits(signals: dict[str, TraceSignal], edges: list[dict[str, Any]]) -> None:
    """The wait shift of each service's calls (`wait_shifts`, over the edges of every source at once) into its
    signal; a service known by no other measure gets a signal carrying only the wait."""
    for service, wait in wait_shifts(edges).items():
        s = signals.setdefault(service, TraceSignal(service=service))
        s.wait_before_ms, s.wait_after_ms = round(wait["before"], 3), round(wait["after"], 3)
        s.wait_shift, s.wait_baseline, s.wait_direction = round(wait["shift"], 4), wait["baseline"], wait["direction"]
        s.wait_explained_by, s.wait_both_ways = wait.get("explained_by"), wait["both_ways"]
        s.wait_peers = list(wait.get("peers") or [])
        s.wait_source, s.wait_z = wait["source"], None if wait["z"] is None else round(wait["z"], 3)
        s.wait_calls = wait["calls"]
        if s.onset is None or s.wait > s.behaviour_shift:
            s.onset = wait["onset"]


def statements_relation(store: Any, masks: str, span: Span) -> str | None:
    """A table `(masked, template)`: each masked message of the span with its log statement, Drain's template over
    the near-identical masked messages (`DRAIN_SIMILARITY`) of one level, so that a value the masking keeps (a train
    type) does not split one statement into an event per value. A statement writes at one level: Drain at this
    similarity would merge a WARN line with the INFO line beside it in the code ("[verifyCode][Get image code warn]
    [Code not found]"), an error that appears into a line that was always there."""
    counted = store.fetch(
        "SELECT masked, first(level ORDER BY n DESC, level) AS level, sum(n) AS n FROM (\n"
        f"    SELECT masks.masked, coalesce(upper(level), '') AS level, count(*) AS n FROM logs JOIN {masks} AS masks "
        f"ON logs.message = masks.raw WHERE {in_span('ts', span)} GROUP BY ALL)\n"
        "GROUP BY masked ORDER BY masked")  # one order, so one query text and one evidence id per input
    if counted.num_rows == 0:
        return None
    levels = arrays.texts(counted["level"])
    weights = arrays.floats(counted["n"])
    template: list[str] = [""] * counted.num_rows
    for level in sorted(set(levels)):
        mine = np.flatnonzero(levels == level)
        template_of, templates = mine_templates(counted["masked"].take(arrays.int64_array(mine)), weights[mine],
                                                similarity=DRAIN_SIMILARITY)
        for row, t in zip(mine, template_of, strict=True):
            template[row] = templates[t]
    rows = pa.table({"masked": counted["masked"], "template": arrays.string_array(template)})
    return str(store.hold_table(rows, "log_statements"))


def _where_cut(store: Any, window: Span, baseline: Span, signal: TraceSignal) -> Evidence | None:
    """For a service whose requests were cut short (`TraceSignal.cut_short`): the call its requests after the onset
    without the lost call made last (where they were cut), into the signal, with the share of the requests newly
    without it that newly end after that call's service (`cut_callee_share`), and the evidence whose query finds it
    (the behaviour evidence's query does not, so its rows do not carry it)."""
    if not signal.cut_short or signal.event is None:
        return None
    sql = last_call_sql(window, baseline, signal.service, signal.event)
    found = store.fetch(sql).to_pylist()
    if not found:
        return None
    row = found[0]
    last_call: str = row["last_call"]
    requests, cut_requests = int(row["requests"]), int(row["cut_requests"])
    share = round(requests / cut_requests, 4)
    signal.last_call, signal.last_callee = last_call, row["callee"]
    signal.cut_requests, signal.last_call_share = cut_requests, share
    signal.last_callee_share = round(cut_callee_share(row), 4)
    item = Evidence.make("trace", f"where {possessive(signal.service)} requests without {_short(signal.event)} were "
                                  f"cut: after {_short(last_call)} ({share:.0%} of {cut_requests})", sql,
                         {"service": signal.service, "lost_call": signal.event, "last_call": last_call,
                          "requests": requests, "cut_requests": cut_requests, "last_call_share": share,
                          "callee_share_of_the_new_cuts": signal.last_callee_share})
    signal.cut_evidence = item.id
    return item


def cut_callee_share(row: dict[str, Any]) -> float:
    """Of a service's requests newly without a call, the share that newly end after the callee `last_call_sql` found
    (per request, after the onset less before it): where the new cuts happened, not the requests that never made
    that call (their last call was elsewhere before too). All the requests without it when none did before."""
    after, before = int(row["traces_after"]), int(row["traces_before"])
    def rate(count: str) -> float:
        return int(row[count]) / after - (int(row[f"{count}_before"]) / before if before else 0.0)
    new_cuts = rate("cut_requests")
    if new_cuts <= 0:
        return int(row["callee_requests"]) / int(row["cut_requests"])
    return min(1.0, max(0.0, rate("callee_requests") / new_cuts))


def last_call_sql(window: Span, baseline: Span, service: str, event: str) -> str:
    """The call (callee and operation) that `service`'s requests begun in the window without the call `event` made
    last, with how many such requests there were and how many called that callee last (by any operation), each
    after the onset and before it (the baseline's requests), and how many requests that called another service
    each period holds: where a request that ends early was cut. The callee whose share of the requests grew the
    most comes first, then its commonest call."""
    return f"""WITH begun AS (
    SELECT trace_id, {in_span('min(start_ts)', window)} AS after FROM spans GROUP BY trace_id
    HAVING {in_span('min(start_ts)', window)} OR {in_span('min(start_ts)', baseline)}
), calls AS (
    SELECT parent.trace_id, begun.after, child.service AS callee,
           coalesce(child.service || ' ' || child.operation, child.service) AS call, child.start_ts
    FROM begun JOIN spans AS parent ON parent.trace_id = begun.trace_id
    JOIN spans AS child ON child.trace_id = parent.trace_id AND child.parent_id = parent.span_id
    WHERE parent.service = {sql_str(service)} AND child.service <> parent.service
), requests AS (
    SELECT trace_id, bool_or(after) AS after, NOT bool_or('call ' || call = {sql_str(event)}) AS cut
    FROM calls GROUP BY trace_id
), last AS (
    SELECT callee, call, requests.after FROM calls JOIN requests USING (trace_id) WHERE cut
    QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY start_ts DESC, call) = 1
), counted AS (
    SELECT callee, call AS last_call, count(*) FILTER (WHERE after) AS requests,
           sum(count(*) FILTER (WHERE after)) OVER () AS cut_requests,
           sum(count(*) FILTER (WHERE after)) OVER (PARTITION BY callee) AS callee_requests,
           sum(count(*) FILTER (WHERE NOT after)) OVER () AS cut_requests_before,
           sum(count(*) FILTER (WHERE NOT after)) OVER (PARTITION BY callee) AS callee_requests_before
    FROM last GROUP BY callee, last_call
), totals AS (
    SELECT count(*) FILTER (WHERE after) AS traces_after, count(*) FILTER (WHERE NOT after) AS traces_before
    FROM requests
)
SELECT counted.*, traces_after, traces_before FROM counted, totals WHERE requests > 0
ORDER BY callee_requests / traces_after - coalesce(callee_requests_before / nullif(traces_before, 0), 0) DESC,
         requests DESC, last_call LIMIT 1"""


def _most_surprising_per_service(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per service, the row of the family (problem events, the rest) whose event is the more surprising after the
    correction (on a tie, the problem events'); most surprising service first."""
    chosen: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (-r["adjusted_z"], r["service"], not r["problem"])):
        chosen.setdefault(row["service"], row)
    return list(chosen.values())


def _behaviour(row: dict[str, Any]) -> TraceSignal:
    return TraceSignal(
        service=row["service"], traces_before=row["traces_before"], traces_after=row["traces_after"],
        behaviour_shift=row["adjusted_z"], raw_shift=round(float(row["largest_z"]), 3), event=row["event"],
        share_before=round(float(row["share_before"]), 4), share_after=round(float(row["share_after"]), 4),
        onset=row["onset"],
    )


def _evidence(signals: dict[str, TraceSignal], events: list[dict[str, Any]], events_sql: str,
              times: list[dict[str, Any]], times_sql: str) -> list[Evidence]:
    tails = {row["service"]: {"spans_past_pooled_p90": [row["tail_before"], row["tail_after"]],
                              "spans": [row["spans_before"], row["spans_after"]]} for row in times}
    items: list[Evidence] = []
    if events:
        rows = [{k: _json_value(v) for k, v in row.items()} for row in events[:EVIDENCE_ROWS]]
        top = events[0]
        item = Evidence.make(
            "trace",
            f"behaviour shift by service (per-trace events): {top['service']} z {top['adjusted_z']:.1f} on "
            f"{_short(top['event'])}",
            events_sql, {"rule": "per service and family (problem events, the rest), the event whose share of its "
                                 "traces moved most within request kinds (Mantel-Haenszel z); adjusted_z corrects it "
                                 "for the events tested (weighted Bonferroni); a problem line that stops is not "
                                 "counted; requests reporting a callee's trouble are left out", "services": rows,
                         "cut": max(0, len(events) - EVIDENCE_ROWS)},
        )
        items.append(item)
        for row in events:
            signals[row["service"]].evidence = item.id
    # the shifts the tail test carries first: the summary names the largest that counts, not one that did not
    slowed = sorted((s for s in signals.values() if s.own_p90_after_ms is not None),
                    key=lambda s: (s.own_time <= 0, -s.own_time_shift))
    if slowed:
        top = slowed[0]
        counted = "" if top.own_time > 0 else ", not carried by the tail test"
        whose = f"{top.service} (untraced: its callers' calls to it)" if top.untraced else top.service
        item = Evidence.make(
            "trace", f"own span time p90 by service: {whose} {top.own_p90_before_ms:g} -> "
                     f"{top.own_p90_after_ms:g} ms{counted}", times_sql,
            {"rule": "per service, the p90 of its spans' exclusive time after against before (client spans left "
                     "out); the shift counts only when more of its spans after than before ran past the p90 of both "
                     "sides together (spans_past_pooled_p90 of spans, before and after; one at it counts half): a "
                     f"two-proportion z (tail_z) of at least {SIGNIFICANT_STRENGTH:g}; leaf_gains_ms: per "
                     "operation of its spans with nothing under them, what its p10 and its median gained; "
                     "work_p90_ms: the p90 of its other spans' exclusive time, before and after",
             "services": [{"service": s.service, **({"untraced": True} if s.untraced else {}),
                           "p90_before_ms": s.own_p90_before_ms, "p90_after_ms": s.own_p90_after_ms,
                           "shift": s.own_time_shift,
                           **tails.get(s.service, {}), "share_past_pooled_p90": list(s.own_tail_shares or []),
                           "tail_z": s.own_tail_z, "counted": s.own_time > 0,
                           "leaf_gains_ms": [list(g) for g in s.leaf_gains_ms],
                           "work_p90_ms": list(s.work_p90_ms or [])}
                          for s in slowed[:EVIDENCE_ROWS]], "cut": max(0, len(slowed) - EVIDENCE_ROWS)},
        )
        items.append(item)
        for s in slowed:
            # the evidence cited is the one holding what `describe` says: its own span time's p90, not an event
            # whose share did not move (OnlineBoutique 12:27: "12.8 to 75.1 ms" cited a behaviour shift of z 0.0)
            if s.tells_own_time or not s.evidence:
                s.evidence = item.id
    return items


#: per source of waits: the evidence's kind, how its title names the wait, and its rule's words for the edges' wait
_WAIT_WORDS = {
    "spans": ("trace", "caller's span minus the callee's server span",
              "the median wait (caller's span minus the callee's server span), after against the calls before (the "
              "system's typical wait, the lower median over the edges, when an edge has too few), and against the "
              "lower of the two only when no service's calls changed so); a service's shift counts when the "
              "rank test over its edges carries it (rank_test_z: per edge, the Mann-Whitney count of its calls "
              "after against its calls before, or against the other edges' calls when held against the typical "
              "wait; pooled over the edges)"),
    CALL_METRICS: ("calls", "per-minute call metrics, the client side's latency less the server side's",
                   "the wait of each minute (the client side's latency less the server side's in that minute, each "
                   "side's median over the minute), their median after against their p90 before; an edge with "
                   f"fewer than {MIN_INTERVALS} minutes on either side has no measure, and none is held against the "
                   "other edges' typical wait (a slow edge's percentiles are coarse); an edge with spans in the "
                   "window is theirs"),
}


def _wait_evidence(signals: dict[str, TraceSignal], edges: list[dict[str, Any]], sql: str) -> list[Evidence]:
    """The evidence of the waits one source measured (`edges`, from the query `sql`), cited by the services whose
    wait it gave."""
    source = edges[0]["source"] if edges else None
    # the waits that count first: the headline names a service whose wait the rank test carries
    waited = sorted((s for s in signals.values() if s.wait_after_ms is not None and s.wait_source == source),
                    key=lambda s: (-s.wait, -s.wait_shift))
    if not waited:
        return []
    top = waited[0]
    kind, measured, rule = _WAIT_WORDS[source]
    item = Evidence.make(
        kind, f"wait around calls by service: {top.service} {top.wait_before_ms:g} -> {top.wait_after_ms:g} ms "
              f"(median, {measured})", sql,
        {"rule": f"per call edge, {rule}; a service's shift is the smallest over the edges into it, or over the "
                 "edges out of it when it counts for more (of the finest source that measures them); a service "
                 "whose delayed calls are all among another's is explained by that one (explained_by); both_ways: "
                 "the edges into it and out of it were each delayed",
         "services": [{"service": s.service, "wait_before_ms": s.wait_before_ms, "wait_after_ms": s.wait_after_ms,
                       "shift": s.wait_shift, "baseline": s.wait_baseline, "direction": s.wait_direction,
                       "explained_by": s.wait_explained_by, "both_ways": s.wait_both_ways,
                       "rank_test_z": s.wait_z, "counted": s.wait > 0}
                      for s in waited[:EVIDENCE_ROWS]],
         "edges": [{k: _json_value(v) for k, v in e.items() if k not in CALL_WAITS} for e in edges[:EVIDENCE_ROWS]],
         "cut": max(0, len(edges) - EVIDENCE_ROWS)},
    )
    for s in waited:
        if s.wait >= max(s.behaviour_shift, s.own_time) or not s.evidence:
            s.evidence = item.id
    return [item]


def _json_value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return iso_z(value) if isinstance(value, datetime) else value


def _short(event: str, width: int = 80) -> str:
    return event if len(event) <= width else event[: width - 3] + "..."
