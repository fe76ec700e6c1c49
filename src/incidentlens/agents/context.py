"""The investigation context the tools act on: the loaded store and the evidence gathered so far.

The evidence engine runs on first use and is cached (detection alone for `detect_incident_window`, the pipeline's
full `analyze` for the tools that read its findings), each once, whichever agent or tool asks first; tools run in
threads, so each is guarded by its own lock. Every piece of evidence the agents' own tools produce (SQL they ran) is
kept in the ledger, in the order found, and ends up in the report: evidence is never lost, even when a model wanders.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.sql_sandbox import SqlSandbox

Span = tuple[datetime, datetime]


class InvestigationContext:
    def __init__(self, store: Any, at: datetime | None = None, detector: str = "robust") -> None:
        self.store = store
        self.at = at
        self.detector = detector
        self.ledger: dict[str, Evidence] = {}
        self.narrative: dict[str, str] = {}
        self.mitigation_plan: list[dict[str, Any]] = []
        self.hypothesis_tests: list[dict[str, Any]] = []
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
        return self.once("sandbox", lambda: SqlSandbox(self.store))

    def close(self) -> None:
        if "sandbox" in self._cache:
            self._cache["sandbox"].close()

    # --- the evidence engine's steps, in pipeline order -----------------------------------------------------------
    def detection(self) -> Any:
        def run() -> Any:
            from incidentlens.analysis.detection import detect

            result = detect(self.store, at=self.at, detector=self.detector)
            self.record(result.evidence)
            return result

        return self.once(f"detection@{self.at}", run)

    def window(self) -> Span | None:
        detection = self.detection()
        if not detection.detected or detection.window is None:
            return None
        return detection.window.start, detection.window.end

    def baseline(self) -> tuple[Span | None, str]:
        def run() -> tuple[Span | None, str]:
            from incidentlens.analysis.pipeline import choose_baseline

            window = self.window()
            if window is None:
                return None, "no incident window"
            first_anomalous = min(s.onset for s in self.detection().window.series)
            return choose_baseline(self.store, window, first_anomalous)

        return self.once(f"baseline@{self.at}", run)

    def spans(self) -> tuple[Span, Span] | None:
        """(incident window, baseline) when both exist, else None."""
        window, (baseline, _) = self.window(), self.baseline()
        return (window, baseline) if window is not None and baseline is not None else None

    def step(self, name: str, compute: Callable[[Any, Span, Span], tuple[Any, list[Evidence]]]) -> Any:
        """An evidence-engine step over (store, window, baseline), run once; its evidence goes to the ledger."""

        def run() -> Any:
            window, baseline = self.spans()
            result, items = compute(self.store, window, baseline)
            self.record(list(items))
            return result

        return self.once(f"{name}@{self.at}", run)

    def findings(self) -> Any:
        """The evidence engine's analysis (the pipeline's own assembly), computed once per `at`."""

        def run() -> Any:
            from incidentlens.analysis.pipeline import analyze

            return analyze(self.store, at=self.at, detector=self.detector)

        return self.once(f"analysis@{self.at}", run)

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
