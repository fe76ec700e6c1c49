"""The incident review: schema, grounding check, builder and renderers (see docs/architecture.md, "Report")."""

from incidentlens.report.build import build_postmortem, executive_summary, read_analysis, runbook_checklist
from incidentlens.report.grounding import check_grounding
from incidentlens.report.playbooks import mitigations_for
from incidentlens.report.schema import ActionItem, Postmortem, postmortem_json_schema
from incidentlens.report.write import write_reports

__all__ = [
    "ActionItem",
    "Postmortem",
    "build_postmortem",
    "check_grounding",
    "executive_summary",
    "mitigations_for",
    "postmortem_json_schema",
    "read_analysis",
    "runbook_checklist",
    "write_reports",
]
