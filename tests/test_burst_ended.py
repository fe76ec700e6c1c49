"""A WARN/ERROR burst that ended within the window examined, against one still under way at its end: the hypothesis
and the review say which, and an ended burst is not written up as an incident still going on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from incidentlens.analysis import analyze
from incidentlens.report import build_postmortem
from incidentlens.report.render_markdown import render_markdown
from incidentlens.telemetry import load_telemetry

START = datetime(2024, 5, 1, 9, 0)
AT = datetime(2024, 5, 1, 10, 0)  # the known start: inventory's errors begin here
SERVICES = ("inventory", "checkout", "search")


def _store(tmp_path: Path, burst_minutes: float, logs_minutes: float):
    """An hour of three services' INFO lines (one every 2 s each) and a WARN line each every 5 minutes (their usual
    rate), to `logs_minutes` after AT; inventory writes an ERROR line every 3 s for `burst_minutes` from AT."""
    end = AT + timedelta(minutes=logs_minutes)
    ticks = np.arange(np.datetime64(START, "ms"), np.datetime64(end, "ms"), np.timedelta64(2000, "ms"))
    warn = (ticks - np.datetime64(START, "ms")) % np.timedelta64(300_000, "ms") == np.timedelta64(0, "ms")
    burst = np.arange(np.datetime64(AT, "ms"), np.datetime64(AT + timedelta(minutes=burst_minutes), "ms"),
                      np.timedelta64(3000, "ms"))
    ts = np.concatenate([np.tile(ticks, len(SERVICES)), burst])
    service = np.concatenate([np.repeat(SERVICES, len(ticks)), np.full(len(burst), "inventory")])
    level = np.concatenate([np.where(np.tile(warn, len(SERVICES)), "WARN", "INFO"), np.full(len(burst), "ERROR")])
    message = np.where(level == "ERROR", "Stock lookup failed for sku 42", "request served")
    path = tmp_path / "logs.parquet"
    pq.write_table(pa.table({"ts": ts, "service": service, "level": level, "message": message}), path)
    return load_telemetry(logs=[path])


def _analysis(tmp_path: Path, burst_minutes: float, logs_minutes: float):
    return analyze(_store(tmp_path, burst_minutes, logs_minutes), at=AT, onset="at")


def test_a_burst_over_minutes_before_the_window_ends_is_said_to_have_ended(tmp_path: Path):
    # two minutes of errors, then four of the usual lines to the logs' end
    result = _analysis(tmp_path, burst_minutes=2, logs_minutes=6)
    top = result.hypotheses[0]
    assert top.service == "inventory"
    assert top.ended is not None and top.ended.end == AT + timedelta(minutes=2)
    assert "from 10:00:00 to 10:02:00 UTC, back to usual since (4 min to the window's end): a burst that ended" \
        in top.mechanism
    surge = next(e for e in result.evidence if e.title.startswith("WARN/ERROR log surge"))
    assert surge.data["services"][0]["ended"] == "2024-05-01T10:02:00Z"


def test_the_review_of_a_burst_that_ended_says_so_and_claims_nothing_ongoing(tmp_path: Path):
    pm = build_postmortem(_analysis(tmp_path, burst_minutes=2, logs_minutes=6))
    ended = datetime(2024, 5, 1, 10, 2, tzinfo=UTC)
    assert pm.title.endswith(": a burst that ended at 2024-05-01 10:02 UTC")
    assert "inventory degraded in a burst that ended at 2024-05-01 10:02 UTC" in pm.summary.text
    assert "was a burst that ended: what was measured here is not an impact still under way" \
        in pm.impact.narrative.text
    assert pm.recovery.recovered_at == ended and pm.recovery.time_to_recover_minutes == 2
    assert "back at their usual rate at 2024-05-01 10:02 UTC" in pm.recovery.narrative.text
    back = next(e for e in pm.timeline if e.t == ended)
    assert back.phase == "recovery" and "back at their usual rate (a burst that ended)" in back.event
    assert not any("recovery not assessed" in e.event for e in pm.timeline)
    # nothing is still under way to stop: the actions are a step less urgent than the severity alone calls for
    urgent = {"SEV1": "P1", "SEV2": "P1", "SEV3": "P2", "SEV4": "P3"}[pm.severity]
    assert min(a.priority for a in pm.action_items) == urgent
    assert pm.grounding.issues == []


def test_a_burst_under_way_at_the_window_s_end_is_not_said_to_have_ended(tmp_path: Path):
    # the same errors, running to the logs' end
    result = _analysis(tmp_path, burst_minutes=6, logs_minutes=6)
    assert result.hypotheses[0].service == "inventory" and result.hypotheses[0].ended is None
    pm = build_postmortem(result)
    assert "ended" not in render_markdown(pm)
    assert pm.recovery.recovered_at is None
    assert min(a.priority for a in pm.action_items) == {"SEV1": "P0", "SEV2": "P0", "SEV3": "P1",
                                                         "SEV4": "P2"}[pm.severity]


def test_a_pause_shorter_than_the_burst_is_not_an_end(tmp_path: Path):
    # four minutes of errors, then two quiet ones before the logs end: as likely a lull as an end
    result = _analysis(tmp_path, burst_minutes=4, logs_minutes=6)
    assert result.hypotheses[0].service == "inventory" and result.hypotheses[0].ended is None


def test_one_quiet_minute_is_not_an_end(tmp_path: Path):
    # a minute of errors and one quiet minute to the logs' end
    result = _analysis(tmp_path, burst_minutes=1, logs_minutes=2)
    assert result.hypotheses[0].ended is None
