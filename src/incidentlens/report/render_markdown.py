"""The incident review as Markdown for a code review or a wiki: headings, tables, queries in code blocks.

Text from the data is escaped for Markdown (`md` filter: no stray tables, links, emphasis or raw HTML), log lines and
queries go in fences longer than any backtick run inside them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from incidentlens.report import formatting as fmt
from incidentlens.report.build import duration_label, executive_summary, root_cause_label, source_lines, suspicion
from incidentlens.report.playbooks import kind_label
from incidentlens.report.schema import EVIDENCE_FILE, EVIDENCE_ID_PATTERN, Postmortem
from incidentlens.report.severity import users_label

# What can start markup inline: emphasis, code, links, raw HTML, table cells, strikethrough. Parentheses only matter
# after a "]" (escaped) and intraword underscores never emphasise, so `latency_p95_ms` stays readable.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~]|(?<!\w)_|_(?!\w)|&(?=#?\w+;))")
# What GitHub-flavoured renderers turn into a link without any markup: `scheme://...`, `www....` and `name@host`.
# Such a word from the data goes in a code span, which no renderer links (backslash escapes do not stop them all).
_MD_AUTOLINK = re.compile(r"[A-Za-z][\w+.-]*://\S+|\b[Ww]{3}\.\S+|[\w.+-]+@[\w-]+\.[\w.-]+")
_MD_BLOCK_START = re.compile(r"^(\d+(?=[.)]\s)|)([.)]|[#+\-=>](?=\s|$))")


def render_markdown(pm: Postmortem) -> str:
    env = Environment(loader=PackageLoader("incidentlens.report", "templates"), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(md=md_escape, code=md_code, fence=md_fence, to_json=lambda data: json.dumps(data, indent=2))
    env.tests["evidence_id"] = lambda value: isinstance(value, str) and re.fullmatch(EVIDENCE_ID_PATTERN, value)
    env.globals.update(when=fmt.when, pct=fmt.pct, num=fmt.num, measure=fmt.measure, minutes=fmt.minutes,
                       table_value=fmt.table_value, kind_label=kind_label, sample_line=fmt.sample_line,
                       readable_pattern=fmt.readable_pattern, series_name=fmt.series_name, users_label=users_label,
                       template_counts=fmt.template_counts, error_rate_name=fmt.error_rate_name,
                       names_service=fmt.names_service)
    text = env.get_template("report.md.j2").render(
        pm=pm,
        evidence_file=EVIDENCE_FILE,
        headline=executive_summary(pm),
        duration_label=duration_label(pm),
        sources=source_lines(pm),
        suspected=suspicion(pm.root_cause) if pm.root_cause else None,
        root_cause_label=root_cause_label(pm) if pm.root_cause else "",
    )
    return re.sub(r"\n{3,}", "\n\n", text)


def md_escape(value: Any) -> str:
    """Untrusted text as inert Markdown: special characters backslash-escaped, newlines folded, bare URLs and
    addresses not clickable."""
    text, parts, start = " ".join(str(value).split()), [], 0
    for link in _MD_AUTOLINK.finditer(text):
        parts += [_MD_SPECIAL.sub(r"\\\1", text[start:link.start()]), md_code(link.group(0))]
        start = link.end()
    text = "".join([*parts, _MD_SPECIAL.sub(r"\\\1", text[start:])])
    return _MD_BLOCK_START.sub(r"\1\\\2", text)  # a heading, list or quote marker at the start, made literal


def md_code(value: Any) -> str:
    """Inline code that survives backticks in the value."""
    text = " ".join(str(value).split())
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_fence(value: Any, lang: str = "") -> str:
    """A fenced block longer than any backtick run in the value."""
    text = str(value)
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{lang}\n{text}\n{fence}"
