"""Write the review to disk: report.json (the schema's document), report.md and report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from incidentlens.errors import InputError
from incidentlens.report.render_html import render_html
from incidentlens.report.render_markdown import render_markdown
from incidentlens.report.schema import Postmortem


def write_reports(pm: Postmortem, out_dir: str | Path, store: Any = None) -> dict[str, Path]:
    """Write report.json, report.md and report.html into `out_dir` (created if missing); charts need `store`."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create the output directory ({err.strerror})") from err
    documents = {
        "json": ("report.json", json.dumps(pm.to_dict(), indent=2) + "\n"),
        "markdown": ("report.md", render_markdown(pm)),
        "html": ("report.html", render_html(pm, store)),
    }
    paths = {}
    for key, (name, text) in documents.items():
        paths[key] = out / name
        paths[key].write_text(text, encoding="utf-8")
    return paths
