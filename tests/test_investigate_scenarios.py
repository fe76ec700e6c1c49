"""`investigate --llm offline` on every generated scenario: the whole team runs, in order, with no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from incidentlens.agents import investigate
from incidentlens.scenarios import list_scenarios
from incidentlens.telemetry import load_telemetry

SCENARIOS = [name for name, _ in list_scenarios()]
TEAM_ORDER = ["profiler_specialist", "propose_mitigations", "postmortem_writer_specialist"]


def no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("the offline investigation opened a network connection")


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_offline_team_runs_coordinator_tools_profiler_mitigations_writer(scenario: str, scenario_dir, tmp_path: Path,
                                                                         monkeypatch):
    folder = scenario_dir(scenario)
    truth = json.loads((folder / "truth.json").read_text())
    store = load_telemetry(metrics=folder / "metrics.csv", logs=folder / "logs.csv",
                           events=folder / "events.csv" if (folder / "events.csv").exists() else None)
    monkeypatch.setattr("socket.socket.connect", no_network)
    result = investigate(store, llm="offline", trace_path=tmp_path / "trace.jsonl")

    lines = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    called = [line["tool"] for line in lines if line["agent"] == "coordinator" and line["tool"]]
    assert called[:2] == ["load_inputs", "detect_incident_window"]
    assert [tool for tool in called if tool in TEAM_ORDER] == TEAM_ORDER
    assert {line["agent"] for line in lines} == {"coordinator", *TEAM_ORDER[::2]}
    assert result.exit_reason == "text" and result.answer
    assert result.postmortem.detected == (truth["window"] is not None)
    if truth["window"] is not None:
        assert "rank_root_causes" in called and "sql_investigate" in called
        assert result.postmortem.hypotheses, "a detected incident gets ranked hypotheses"
