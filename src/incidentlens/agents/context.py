"""The investigation context the tools act on: the loaded store and the evidence gathered so far.

The evidence engine (the pipeline's `analyze`) runs on first use and is cached, as are the single steps tools re-run
for detail, each once, whichever agent or tool asks first; tools run in threads, so each is guarded by its own
lock. Every piece of evidence the agents' own tools produce (SQL they ran) is kept in the ledger, in the order
found, and ends up in the report: evidence is never lost, even when a model wanders.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from incidentlens.analysis.anchored import check_onset
from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.sql_sandbox import Budget, SqlSandbox

Span = tuple[datetime, datetime]

#: rows a model's query may bring back (it should aggregate; the cut is said)
SQL_ROW_CAP = 50
#: and bytes: a result is read by a model, within its context window
SQL_RESULT_BYTES = 16_000


class InvestigationContext:
    """`onset` is how the engine finds the incident's start (`analysis.anchored.ONSETS`): "detect" it near `at`, or
    trust `at` as the known start ("at": an alert, an injection, a page). It is the user's choice and stays fixed
    for the whole investigation; in "at" mode `at` is fixed too."""

    def __init__(self, store: Any, at: datetime | None = None, detector: str = "robust",
                 onset: str = "detect", sensitivity: str | None = None) -> None:
        check_onset(onset, at)
        self.store = store
        self.at = at
        self.alert_at = at  # the user's: only it is taken as the start where nothing can be detected there
        self.detector = detector
        self.onset = onset
        self.sensitivity = sensitivity
        self.ledger: dict[str, Evidence] = {}
        self.narrative: dict[str, str] = {}
        self.draft_attempts = 0
        self.generated_by: dict[str, Any] = {"llm": "offline", "model": None, "degraded": False}
        self._cache: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # --- evidence -------------------------------------------------------------------------------------------------
    def record(self, items: list[Evidence]) -> list[str]:
        """Keep `items` in the ledger (each id once) and return their ids."""
        with self._guard:
            for item in items:
                self.ledger.setdefault(item.id, item)
        return [item.id for item in items]

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """The cached value of step `key`, computing it the first time (one thread computes, the others wait)."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._cache:
                self._cache[key] = compute()
            return self._cache[key]

    @property
    def sandbox(self) -> SqlSandbox:
        budget = Budget(row_cap=SQL_ROW_CAP, result_bytes=SQL_RESULT_BYTES)
        return self.once("sandbox", lambda: SqlSandbox(self.store, budget=budget))

    def close(self) -> None:
        if "sandbox" in self._cache:
            self._cache["sandbox"].close()

    # --- the evidence engine -------------------------------------------------------------------------------------
    @property
    def onset_known(self) -> bool:
        """Whether the incident's start was given (`onset="at"`) rather than detected."""
        return self.onset == "at"

    def look_near(self, at: datetime) -> bool:
        """Look for the incident near `at` (a model's pick); refused, returning False, when the start was given: the
        user's known start is not the model's to move or to switch back to detection."""
        if self.onset_known:
            return False
        self.at = at
        return True

    def spans(self) -> tuple[Span, Span] | None:
        """(incident window, baseline) as the engine chose them, or None when it found no incident."""
        # the spans the analysis used, not its written ones (to the second): a step re-run over those would give
        # its evidence again under new ids
        return self.findings().spans

    def step(self, name: str, compute: Callable[[Any, Span, Span], tuple[Any, list[Evidence]]]) -> Any:
        """An evidence-engine step over (store, window, baseline), run once; its evidence goes to the ledger."""

        def run() -> Any:
            window, baseline = self.spans()
            result, items = compute(self.store, window, baseline)
            self.record(list(items))
            return result

        return self.once(f"{name}@{self._key}", run)

    def findings(self) -> Any:
        """The evidence engine's analysis (the pipeline's own assembly: detection, baseline, ranking, timeline...),
        computed once per `at`; the tools read their findings from it and re-run single steps for detail."""

        def run() -> Any:
            from incidentlens.analysis.pipeline import analyze

            return analyze(self.store, at=self.at, detector=self.detector, onset=self.onset,
                           sensitivity=self.sensitivity, start_at_alert=self.at == self.alert_at)

        return self.once(f"analysis@{self._key}", run)

    @property
    def _key(self) -> str:
        return f"{self.onset}:{self.at}"

    def evidence(self, ids: list[str]) -> list[Evidence]:
        """The evidence items with these ids, from the analysis or the ledger, in the order asked."""
        known = {e.id: e for e in self.findings().evidence} | self.ledger
        return [known[i] for i in ids if i in known]

    def analysis(self) -> Any:
        """The analysis the report is built from, with every piece of evidence the agents gathered beyond it (SQL
        they ran) added to its evidence."""
        result = self.findings().model_copy(deep=True)
        known = {e.id for e in result.evidence}
        result.evidence.extend(e for e in list(self.ledger.values()) if e.id not in known)
        return result
