"""The written review: report.json round-trips, report.md has every section, report.html is self-contained and safe."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from incidentlens.analysis import analyze
from incidentlens.analysis.series import key_series
from incidentlens.analysis.units import three_figures
from incidentlens.errors import InputError
from incidentlens.report import Postmortem, build_postmortem, write_reports
from incidentlens.report.formatting import num, readable_pattern
from incidentlens.report.render_markdown import md_escape
from incidentlens.telemetry import load_telemetry
from test_report_data import END, START, metrics_store, no_incident_analysis, pool_exhaustion_analysis

HOSTILE_LOG_LINE = "Request failed: <script>alert(1)</script> user=<img src=x onerror=alert(2)>"
MARKDOWN_SECTIONS = ["Summary", "Impact", "Root cause", "Trigger", "Hypotheses", "Contributing factors", "Detection",
                     "Response", "Recovery", "Timeline", "Action items", "Lessons learned", "Runbook", "Evidence"]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    analysis = pool_exhaustion_analysis()
    analysis["templates"][0]["samples"].insert(0, HOSTILE_LOG_LINE)  # the line shown
    out = tmp_path_factory.mktemp("report")
    return write_reports(build_postmortem(analysis), out, store=metrics_store())


def test_write_reports_writes_json_markdown_html_and_the_evidence_beside_them(written):
    assert {path.name for path in written.values()} == {"report.json", "report.md", "report.html", "evidence.json"}
    document = json.loads(written["json"].read_text())
    assert Postmortem.model_validate(document).title == document["title"]


def test_the_evidence_appendix_lives_in_evidence_json_and_the_review_lists_ids_and_titles(written):
    evidence = json.loads(written["evidence"].read_text())["evidence"]
    contrast = next(e for e in evidence if e["kind"] == "contrast")
    assert contrast["query"] == "SELECT region, count(*) FROM logs WHERE level = 'ERROR' GROUP BY region"
    assert contrast["data"]
    markdown, html = written["markdown"].read_text(), written["html"].read_text()
    assert "SELECT region, count(*)" not in markdown and "SELECT region, count(*)" not in html
    for item in evidence:  # every id keeps its anchor and title, so a citation still lands somewhere
        assert f'<a id="{item["id"]}"></a>`{item["id"]}`' in markdown
        assert f'<tr id="{item["id"]}">' in html
    assert "[evidence.json](evidence.json)" in markdown and '<a href="evidence.json">' in html


def test_markdown_has_every_section(written):
    markdown = written["markdown"].read_text()
    headings = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert headings == MARKDOWN_SECTIONS
    assert "| P0 | mitigate |" in markdown
    assert "- [ ] Confirm: db-proxy" in markdown


def test_markdown_keeps_log_text_inert(written):
    markdown = written["markdown"].read_text()
    assert f"```text\n{HOSTILE_LOG_LINE}\n```" in markdown  # in a fence, where Markdown renders no HTML
    outside_fences = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    assert "<script>" not in outside_fences


def test_html_is_one_self_contained_file(written):
    html = written["html"].read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, flags=re.IGNORECASE)
    assert not re.search(r"<script\b", html, flags=re.IGNORECASE)
    assert not re.search(r"<link\b|@import|url\(", html, flags=re.IGNORECASE)
    assert "<style>" in html


def test_html_escapes_log_text(written):
    html = written["html"].read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html


def test_html_charts_each_key_metric_with_the_incident_shaded(written):
    html = written["html"].read_text()
    figures = re.findall(r'<figure class="chart">(.*?)</figure>', html, flags=re.DOTALL)
    assert len(figures) == 3
    for figure in figures:
        assert re.search(r'<path class="line" d="M[\d.]+,[\d.]+( L[\d.]+,[\d.]+){50,}"', figure)
        assert '<rect class="shade"' in figure
        assert all(f"mk-{kind}" in figure for kind in ("onset", "recovery", "trigger"))
        assert "mk-peak" not in figure  # the fixture's series carry no peak time: no peak is marked on them


def test_html_header_shows_severity_status_and_duration(written):
    html = written["html"].read_text()
    assert 'class="pill sev sev-SEV2"' in html
    assert "Status: draft" in html and "Duration: 54 minutes" in html


def test_html_of_an_investigation_without_metrics_says_it_read_none_not_to_pass_them(scenario_dir, tmp_path):
    # logs alone: "pass --metrics" would send the reader after metrics the investigation never had
    directory = scenario_dir("seed-tutorial", seed=1, fmt="csv")
    start = json.loads((directory / "truth.json").read_text())["window"]["start"]
    store = load_telemetry(logs=directory / "logs.csv")
    pm = build_postmortem(analyze(store, at=datetime.fromisoformat(start.replace("Z", "")), onset="at"))
    html = write_reports(pm, tmp_path, store=store)["html"].read_text()
    assert "No metric charts: the investigation read no metrics for this period." in html
    assert "Metric charts need the metrics" not in html


def test_html_without_metrics_says_charts_need_them(tmp_path):
    paths = write_reports(build_postmortem(pool_exhaustion_analysis()), tmp_path)
    html = paths["html"].read_text()
    assert "Metric charts need the metrics" in html
    assert '<figure class="chart">' not in html
    assert "<svg" in html  # contributors, templates and timeline come from the analysis alone


def test_no_incident_report_says_so_plainly(tmp_path):
    paths = write_reports(build_postmortem(no_incident_analysis()), tmp_path)
    html, markdown = paths["html"].read_text(), paths["markdown"].read_text()
    assert "No incident detected" in html and "What was checked" in html
    assert "# No incident detected" in markdown and "## What was checked" in markdown
    assert "Robust detector over 6 series" in markdown


def test_key_series_downsamples_in_the_store():
    store = metrics_store()
    series = key_series(store, ["payments/error_ratio", "api-gateway/p95_ms", "nope/none"], (START, END),
                        max_points=18)
    assert [s.name for s in series] == ["payments/error_ratio", "api-gateway/p95_ms"]
    assert all(s.t.size == 18 for s in series)  # 54 one-minute points into 3-minute buckets
    assert series[0].value.max() > 0.1 and (series[0].t[1:] > series[0].t[:-1]).all()


@pytest.mark.parametrize(("untrusted", "inert"), [
    ("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>"),
    ("a | b", "a \\| b"),
    ("see [this](javascript:alert(1))", "see \\[this\\](javascript:alert(1))"),
    ("*bold* and _em_", "\\*bold\\* and \\_em\\_"),
    ("# not a heading", "\\# not a heading"),
    ("1. not a list", "1\\. not a list"),
    ("latency_p95_ms at 2024-05-01 10:12", "latency_p95_ms at 2024-05-01 10:12"),
    ("two\nlines", "two lines"),
])
def test_markdown_escaping_makes_untrusted_text_inert_and_keeps_it_readable(untrusted, inert):
    assert md_escape(untrusted) == inert


def test_no_incident_with_metrics_charts_the_error_and_latency_series_checked(tmp_path):
    paths = write_reports(build_postmortem(no_incident_analysis()), tmp_path, store=metrics_store())
    html = paths["html"].read_text()
    assert "Error and latency series checked" in html
    titles = re.findall(r'<figcaption>(.*?)</figcaption>', html)
    assert titles == ["payments/error_ratio", "api-gateway/p95_ms"]
    assert '<rect class="shade"' not in html  # no incident window to shade


def test_an_evidence_id_that_is_not_an_id_is_refused():
    analysis = pool_exhaustion_analysis()
    analysis["hypotheses"][0]["supporting"].append("x)<img src=x onerror=alert(1)>")
    with pytest.raises(InputError, match=r"^analysis: field '[a-z_.0-9]+': String should match pattern"):
        build_postmortem(analysis)


def test_markdown_escapes_the_template_fields_it_prints(tmp_path):
    analysis = pool_exhaustion_analysis()
    analysis["templates"][0].update(status="<b>new</b>")
    markdown = write_reports(build_postmortem(analysis), tmp_path)["markdown"].read_text()
    assert "**T1** \\<b\\>new\\</b\\> in" in markdown and "<b>" not in markdown


def test_a_malformed_template_count_is_one_line_input_error():
    analysis = pool_exhaustion_analysis()
    analysis["templates"][0]["count_window"] = "lots"
    with pytest.raises(InputError, match=r"^analysis: field 'count_window': Input should be a valid integer"):
        build_postmortem(analysis)


def test_a_template_is_shown_with_its_representative_line_then_its_pattern(tmp_path):
    analysis = pool_exhaustion_analysis()
    analysis["templates"][0]["template"] = "<*>:<*>:<*> WARN Pool TraceID: <*> timeout after <*> ms"
    analysis["templates"][0]["samples"] = ["10:04:35 WARN Pool TraceID: 55b9 timeout after 5000 ms", "second line"]
    written = write_reports(build_postmortem(analysis), tmp_path)
    markdown, html = written["markdown"].read_text(), written["html"].read_text()
    shown = ("```text\n10:04:35 WARN Pool TraceID: 55b9 timeout after 5000 ms\n```\n"
             "Pattern: `WARN Pool timeout after <*> ms`")
    assert shown in markdown
    assert "second line" not in markdown  # one representative line; the rest stay in evidence.json
    assert '<span class="mono">WARN Pool timeout after &lt;*&gt; ms</span>' in html


def test_a_representative_line_of_thousands_of_characters_is_cut_saying_how_much(tmp_path):
    # TrainTicket's order-other service logs a whole ticket list in one line (about 10,000 characters): the review
    # quoted all of it, in the Markdown and the HTML alike
    analysis = pool_exhaustion_analysis()
    tickets = ", ".join(f"Ticket(seatNo={n}, startStation=shanghai, destStation=nanjing)" for n in range(200))
    line = f"18:56:50.657 INFO o.s.OrderOtherServiceImpl#67 [getSoldTickets][Left ticket info][{tickets}]"
    analysis["templates"][0]["samples"] = [line]
    written = write_reports(build_postmortem(analysis), tmp_path)
    markdown, html = written["markdown"].read_text(), written["html"].read_text()
    shown = f"{line[:400]} … ({len(line) - 400:,} more characters in the evidence)"
    assert f"```text\n{shown}\n```" in markdown
    assert f'<pre class="sample" title="a representative line from the data">{shown}</pre>' in html
    assert line[:500] not in markdown + html
    assert line in written["json"].read_text()  # report.json keeps it whole


@pytest.mark.parametrize(("template", "readable"), [
    ("<*>:<*>:<*> WARN o.s.Orders#<*> TraceID: <*> SpanID: <*> [seat from date: <*>-<*>-<*> <*>:<*>:<*>]",
     "WARN o.s.Orders#<*> [seat from date: <*>]"),
    ("db pool exhausted: <*>/<*> connections in use, <*> waiting",
     "db pool exhausted: <*>/<*> connections in use, <*> waiting"),
    ("request_id=<*> user=<*> failed", "user=<*> failed"),
    # OnlineBoutique 13:27: 'Parse catalog successfully' and its kind, mined with their first words masked, read
    # "Pattern: `successfully`": the masked identifiers took the message's masked words with them
    ("TraceID: <*> SpanID: <*> <*> <*> successfully", "<*> successfully"),
    ("TraceID: <*> SpanID: <*> <*> called with userId=<*>", "<*> called with"),
    ("<*> INFO - TraceID: <*> SpanID: <*> Get Ads by Category <*>", "INFO - Get Ads by Category <*>"),
    ("<*>:<*>:<*> Pool TraceID: <*> exhausted", "Pool exhausted"),
    # TrainTicket 11:36: the masking keeps a template's first 200 characters; the quote says it goes on
    ("<*> ERROR o.a.c.c.C.[.[.[.[dispatcherServlet]#<*> TraceID: <*> SpanID: <*> Servlet.service() for servlet "
     "[dispatcherServlet] in context with path [] threw exception [Request processing failed; nested ",
     "ERROR o.a.c.c.C.[.[.[.[dispatcherServlet]#<*> Servlet.service() for servlet [dispatcherServlet] in context "
     "with path [] threw exception [Request processing failed; nested..."),
])
def test_readable_pattern_drops_masked_noise_and_keeps_the_words(template, readable):
    assert readable_pattern(template) == readable


def test_one_value_computed_two_ways_reads_the_same_in_every_section():
    # TrainTicket 08:52: ts-auth-service's p99 baseline read 0.249 s in the impact and 0.248 s in the detection
    # table and the timeline: the impact's median came back as 0.24850000000000003, the detector's as 0.2485
    assert num(0.24850000000000003) == num(0.2485) == three_figures(0.24850000000000003) == three_figures(0.2485)
    assert num(6.479) == "6.48" and three_figures(101.329) == "101"
