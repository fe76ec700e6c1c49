"""Write the review to disk: report.json (the schema's document), report.md, report.html and evidence.json.

The evidence appendix (every query and its data) lives in `evidence.json` beside the review; the Markdown and HTML
list each item's id, kind and title and link to it, so they stay readable on a large incident.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from incidentlens.outfiles import output_dir, write_text
from incidentlens.report.render_html import render_html
from incidentlens.report.render_markdown import render_markdown
from incidentlens.report.schema import EVIDENCE_FILE, Postmortem


def write_reports(pm: Postmortem, out_dir: str | Path, store: Any = None) -> dict[str, Path]:
    """Write report.json, report.md, report.html and evidence.json into `out_dir` (created if missing); charts
    need `store`."""
    out = output_dir(out_dir)
    documents = {
        "json": ("report.json", json.dumps(pm.to_dict(), indent=2) + "\n"),
        "markdown": ("report.md", render_markdown(pm)),
        "html": ("report.html", render_html(pm, store)),
        "evidence": (EVIDENCE_FILE, json.dumps(evidence_document(pm), indent=2) + "\n"),
    }
    paths = {}
    for key, (name, text) in documents.items():
        paths[key] = write_text(out / name, text)
    return paths


def evidence_document(pm: Postmortem) -> dict[str, Any]:
    """evidence.json: the review it belongs to, its grounding verdict and every evidence item with query and data."""
    return {"title": pm.title, "schema_version": pm.schema_version,
            "grounding": pm.grounding.model_dump(mode="json"),
            "evidence": [item.model_dump(mode="json") for item in pm.evidence]}
