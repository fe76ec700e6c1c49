"""`incidentlens report` and the review of a real analysis of a generated incident, end to end."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from cli_process import run_cli
from incidentlens.cli import app
from incidentlens.errors import InputError
from incidentlens.report import build_postmortem, check_grounding, write_reports
from test_report_data import metrics_table, no_incident_analysis, pool_exhaustion_analysis

runner = CliRunner()


@pytest.fixture
def analysis_file(tmp_path: Path) -> Path:
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps(pool_exhaustion_analysis()))
    return path


def test_report_command_writes_the_review_and_prints_the_summary(analysis_file, tmp_path):
    metrics = tmp_path / "metrics.csv"
    pacsv.write_csv(metrics_table(), metrics)
    result = runner.invoke(app, ["report", "--analysis", str(analysis_file), "--metrics", str(metrics),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("SEV2 (draft): Database connection pool exhaustion in db-proxy")
    assert "[ ] Confirm: db-proxy" in result.output
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('<figure class="chart">') == 3


def test_report_command_given_another_day_s_metrics_says_so_instead_of_that_nothing_could_be_seen(
        analysis_file, tmp_path):
    # the charts said "No metric samples in the window: the metrics cannot show whether anything moved in it",
    # beside a root cause the analysis read from its metrics
    table = metrics_table()
    metrics = tmp_path / "metrics.csv"
    pacsv.write_csv(table.set_column(0, "ts", pc.add(table["ts"], pa.scalar(365 * 86_400_000_000,
                                                                             pa.duration("us")))), metrics)
    result = run_cli("report", "--analysis", str(analysis_file), "--metrics", str(metrics),
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    says = ("The metrics given run 2025-05-01 06:00 UTC to 2025-05-01 13:59 UTC, none of it near the incident "
            "(2024-05-01 10:12 UTC to 2024-05-01 11:06 UTC): no chart of them can show it.")
    assert result.stderr == f"warning: {says} Are they the metrics the analysis read?\n"
    assert says in (tmp_path / "out" / "report.html").read_text()


def test_report_command_without_metrics_still_writes_every_file(analysis_file, tmp_path):
    result = runner.invoke(app, ["report", "--analysis", str(analysis_file), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["evidence.json", "report.html", "report.json",
                                                                   "report.md"]


def test_a_bad_analysis_file_is_one_line_and_exit_code_2(tmp_path):
    bad = tmp_path / "analysis.json"
    bad.write_text('{"detected": true,')
    completed = subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", "report", "--analysis", str(bad),
         "--out", str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        f"error: {bad}: line 1 column 19: not valid JSON (Expecting property name enclosed in double quotes)"]


def test_an_analysis_file_as_windows_powershell_or_gzip_wrote_it_is_read(analysis_file, tmp_path):
    # `incidentlens analyze --json > analysis.json` in Windows PowerShell 5 writes UTF-16; a kept review is often
    # gzipped: each was a UnicodeDecodeError traceback
    text = analysis_file.read_text()
    wide, packed = tmp_path / "wide.json", tmp_path / "analysis.json.gz"
    wide.write_bytes(text.encode("utf-16"))
    packed.write_bytes(gzip.compress(text.encode()))
    for n, given in enumerate((wide, packed)):
        result = runner.invoke(app, ["report", "--analysis", str(given), "--out", str(tmp_path / f"out{n}")])
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("written", "says"), [
    (b'{"detected": "\xff"}', "not UTF-8 text (byte 0xff at offset 14)"),
    (b'\xff\xfe{"detected": false}', "not UTF-16 text, though it opens with UTF-16's byte-order mark")])
def test_an_analysis_file_that_is_not_text_is_one_line(tmp_path, written, says):
    bad = tmp_path / "analysis.json"
    bad.write_bytes(written)
    result = run_cli("report", "--analysis", str(bad), "--out", str(tmp_path / "out"))
    assert (result.returncode, result.stderr.splitlines()) == (2, [f"error: {bad}: {says}"])


def test_the_folder_analyze_wrote_is_answered_with_its_analysis_file(analysis_file, tmp_path):
    # `report --analysis review/` after `analyze --out review/`: it was 'cannot read (Is a directory)'
    result = run_cli("report", "--analysis", str(tmp_path), "--out", str(tmp_path / "out"))
    assert (result.returncode, result.stderr.splitlines()) == (
        2, [f"error: {tmp_path}: is a directory; give the analysis.json in it ({analysis_file})"])


def test_a_malformed_analysis_names_the_field():
    analysis = pool_exhaustion_analysis()
    analysis["incident_window"]["start"] = "last tuesday"
    with pytest.raises(InputError, match=r"^analysis\.json: field 'start': Input should be a valid datetime"):
        build_postmortem(analysis, source="analysis.json")


@pytest.mark.parametrize(("confidence", "message"), [
    (float("nan"), "Input should be a finite number"), (1e308, "Input should be less than or equal to 1")])
def test_a_confidence_that_is_no_share_names_the_field(confidence: float, message: str) -> None:
    # an edited analysis.json: the review printed 'nan%' or 'inf%' (and numpy's overflow warning on stderr)
    analysis = pool_exhaustion_analysis()
    analysis["hypotheses"][0]["confidence"] = confidence
    with pytest.raises(InputError, match=rf"^analysis\.json: field 'confidence': {message}"):
        build_postmortem(analysis, source="analysis.json")


def test_detected_must_be_true_or_false() -> None:
    analysis = pool_exhaustion_analysis()
    analysis["detected"] = "no"  # a non-empty string: it was read as true, and a review written
    with pytest.raises(InputError, match=r"^analysis\.json: field 'detected': expected true or false, not 'no'$"):
        build_postmortem(analysis, source="analysis.json")


def test_a_change_off_the_failing_path_is_not_called_the_trigger():
    analysis = pool_exhaustion_analysis()
    analysis["trigger"].update(service="search", description="deploy search v3.29.0")
    pm = build_postmortem(analysis)
    assert not pm.trigger.on_failing_path
    assert "set off" not in pm.summary.text and "search" not in pm.title
    assert not any(a.owner == "search team" for a in pm.action_items)


def test_no_incident_report_from_the_command(tmp_path):
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps(no_incident_analysis()))
    result = runner.invoke(app, ["report", "--analysis", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0
    assert result.output.startswith("No incident detected: no series left its baseline band")


@pytest.mark.slow
def test_review_of_a_real_analysis_of_a_generated_pool_exhaustion(scenario_dir, tmp_path):
    from incidentlens.analysis import analyze
    from incidentlens.telemetry import load_telemetry

    data = scenario_dir("db-pool-exhaustion")
    truth = json.loads((data / "truth.json").read_text())
    store = load_telemetry(metrics=data / "metrics.csv", logs=data / "logs.csv",
                           events=data / "events.csv" if (data / "events.csv").exists() else None)
    analysis = analyze(store).to_dict()
    pm = build_postmortem(analysis)
    assert pm.root_cause.service == truth["root_cause"]["service"]
    assert pm.root_cause.kind == truth["root_cause"]["kind"]
    assert {a.type for a in pm.action_items} == {"mitigate", "prevent", "detect", "process"}
    assert pm.grounding.issues == [] and pm.grounding.statements >= 20
    assert check_grounding(pm.summary.text, analysis) == []
    paths = write_reports(pm, tmp_path, store=store)
    html = paths["html"].read_text()
    assert html.count('<figure class="chart">') >= 3
    assert "No incident detected" not in html


def test_evidence_cited_but_not_in_the_analysis_is_named_not_linked(tmp_path):
    # an edited analysis.json: the review linked to anchors its evidence section never wrote
    analysis = pool_exhaustion_analysis()
    gone = {"metric_shift-d39457bc", "template-c67c60e6"}
    analysis["evidence"] = [e for e in analysis["evidence"] if e["id"] not in gone]
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps(analysis))
    completed = run_cli("report", "--analysis", str(path), "--out", str(tmp_path / "out"))
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        f"warning: {path}: 2 evidence ids cited but not present: metric_shift-d39457bc, template-c67c60e6"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    for missing in gone:
        assert f"(#{missing})" not in markdown and f'href="#{missing}"' not in html
        assert f"`{missing}` _(missing)_" in markdown and f"{missing} (missing)" in html
    assert "(#impact-7ddefa3c)" in markdown and 'href="#impact-7ddefa3c"' in html  # what is held stays linked
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["grounding"]["missing_evidence"] == ["metric_shift-d39457bc", "template-c67c60e6"]
