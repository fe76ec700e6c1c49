"""A URL or an address in log text is data: report.md shows it in a code span, which no Markdown renderer (GitHub's
included) turns into a link, however it autolinks bare text."""

from __future__ import annotations

import re

import pytest

from incidentlens.report import build_postmortem, write_reports
from incidentlens.report.render_markdown import md_escape
from test_report_data import pool_exhaustion_analysis


@pytest.mark.parametrize(("untrusted", "inert"), [
    ("callback to http://evil.example/reset?u=1 failed", "callback to `http://evil.example/reset?u=1` failed"),
    ("see www.evil.example now", "see `www.evil.example` now"),
    ("mail ops@corp.example", "mail `ops@corp.example`"),
    ("HTTPS://x.y/`a`", "`` HTTPS://x.y/`a` ``"),
    ("ftp://h/x and *bold*", "`ftp://h/x` and \\*bold\\*"),
    ("no link in latency_p95_ms", "no link in latency_p95_ms"),
])
def test_bare_urls_and_addresses_become_code_spans(untrusted: str, inert: str) -> None:
    assert md_escape(untrusted) == inert


def test_a_template_with_a_url_is_not_clickable_in_the_review(tmp_path) -> None:
    analysis = pool_exhaustion_analysis()
    analysis["templates"][0]["template"] = "webhook http://evil.example/pay?to=me failed for www.evil.example"
    markdown = write_reports(build_postmortem(analysis), tmp_path)["markdown"].read_text()
    prose = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)  # fenced blocks are never linked
    bare = re.sub(r"(`+).*?\1", "", prose)  # nor are code spans
    assert "evil.example" in prose
    assert "evil.example" not in bare
