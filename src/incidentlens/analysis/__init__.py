"""The evidence engine: pure functions over the telemetry store that return results carrying evidence.

`analyze(store, at=None, detector="robust") -> AnalysisResult` runs it end to end (see pipeline.py). The names are
loaded lazily so that importing one analysis module does not import them all.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnalysisResult", "analyze"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from incidentlens.analysis import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'incidentlens.analysis' has no attribute {name!r}")
