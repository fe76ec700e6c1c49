"""The incident review: schema, grounding check, builder and renderers (see docs/architecture.md, "Report").

The names below load on first use, so `incidentlens.report.formatting` (which `detect`'s table uses for durations)
does not bring the builders and the template engine into a command that renders no review."""

from importlib import import_module
from typing import Any

_HOMES = {
    "ActionItem": "schema",
    "Postmortem": "schema",
    "build_postmortem": "build",
    "check_grounding": "grounding",
    "executive_summary": "build",
    "mitigations_for": "playbooks",
    "postmortem_json_schema": "schema",
    "read_analysis": "build",
    "runbook_checklist": "build",
    "write_reports": "write",
}
__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'incidentlens.report' has no attribute {name!r}")
    return getattr(import_module(f"incidentlens.report.{_HOMES[name]}"), name)
