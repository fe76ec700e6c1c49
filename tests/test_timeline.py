"""Timeline: sorted entries from the data — onsets, deploys, first template lines, error propagation, peak, recovery."""

from __future__ import annotations

from datetime import datetime

import pytest

from duck_store import DuckStore
from incidentlens.analysis.templates import find_templates
from incidentlens.analysis.timeline import ServiceOnset, build_timeline

BASELINE = (datetime(2024, 5, 1, 0, 0), datetime(2024, 5, 1, 1, 45))
WINDOW = (datetime(2024, 5, 1, 2, 0), datetime(2024, 5, 1, 2, 30))
DATA_END = datetime(2024, 5, 1, 2, 59, 59)

# A line a second for 3 h, alternating db / api. From 01:58 db's pool times out; api's upstream errors follow from
# 02:03; both stop at 02:30. A WARN every 10 minutes in each before. A deploy of db at 01:55, a config change on
# api an hour and a half before the window (too early to list).
LOGS = """
    CREATE VIEW logs AS
    SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i) AS ts, service,
           CASE WHEN bad OR i % 600 < 2 THEN CASE WHEN bad THEN 'ERROR' ELSE 'WARN' END ELSE 'INFO' END AS level,
           CASE WHEN bad AND service = 'db' THEN 'pool timeout after ' || (i % 50) || ' ms'
                WHEN bad THEN 'upstream db failed' ELSE 'ok ' || i END AS message
    FROM (SELECT i, ['db', 'api'][i % 2 + 1] AS service,
                 (i % 2 = 0 AND i >= 7080 AND i < 9000) OR (i % 2 = 1 AND i >= 7380 AND i < 9000) AS bad
          FROM range(10800) t(i))
"""
EVENTS = """
    CREATE VIEW events AS
    SELECT * FROM (VALUES (TIMESTAMP '2024-05-01 01:55:00', 'db', 'deploy', 'deploy db v2.3.1'),
                          (TIMESTAMP '2024-05-01 00:30:00', 'api', 'config', 'raise timeout'))
                  AS e(ts, service, kind, description)
"""


@pytest.fixture(scope="module")
def store() -> DuckStore:
    return DuckStore(LOGS, EVENTS)


@pytest.fixture(scope="module")
def timeline(store: DuckStore):
    templates = find_templates(store, WINDOW, BASELINE).templates
    return build_timeline(
        store, WINDOW, BASELINE,
        onsets=[("api/error_ratio", datetime(2024, 5, 1, 2, 4)), ("db/p95_ms", datetime(2024, 5, 1, 2, 1))],
        peak=datetime(2024, 5, 1, 2, 15),
        detection_evidence=["detection-0000abcd"],
        templates=templates,
    )


def test_entries_are_sorted_inside_the_data_and_cite_evidence(timeline) -> None:
    times = [e.t for e in timeline.entries]
    known = {e.id for e in timeline.evidence} | {"detection-0000abcd"}
    template_ids = {e.evidence[0] for e in timeline.entries if "log template" in e.event}

    assert times == sorted(times)
    assert all(datetime(2024, 5, 1) <= t <= DATA_END for t in times)
    assert all(e.evidence and set(e.evidence) <= known | template_ids for e in timeline.entries)


def test_deploy_near_the_window_is_listed_and_the_old_config_change_is_not(timeline) -> None:
    events = [e for e in timeline.entries if e.evidence[0].startswith("event-")]

    assert [(e.t, e.event) for e in events] == [(datetime(2024, 5, 1, 1, 55), "deploy db: deploy db v2.3.1")]


def test_errors_propagate_from_db_to_api(timeline) -> None:
    moves = [(e.t, e.event) for e in timeline.entries if "move" in e.event]

    assert [(t, event.split(" (")[0]) for t, event in moves] == [
        (datetime(2024, 5, 1, 1, 58), "first to move: db"), (datetime(2024, 5, 1, 2, 3, 1), "api moves")]
    assert all("WARN/ERROR lines at" in event for _, event in moves)


def test_given_service_onsets_are_the_ones_listed(store: DuckStore) -> None:
    # the pipeline hands the ranking's onsets in: the timeline cites them, not a rule of its own
    onsets = [ServiceOnset(service="db", t=datetime(2024, 5, 1, 1, 57, 30), sign="db/p95_ms from 20 to 900",
                           evidence=["metric_shift-0000abcd"])]
    timeline = build_timeline(store, WINDOW, BASELINE, data_end=DATA_END, service_onsets=onsets)

    moves = [(e.t, e.event, e.evidence) for e in timeline.entries if "move" in e.event]
    assert moves == [(datetime(2024, 5, 1, 1, 57, 30), "first to move: db (db/p95_ms from 20 to 900)",
                      ["metric_shift-0000abcd"])]


def test_a_service_that_moved_has_one_row_and_only_the_earliest_row_is_first(timeline) -> None:
    # db and api moved (their WARN/ERROR surges): the series detection flagged in them add no row of their own
    services = [e.event for e in timeline.entries if "move" in e.event or "anomal" in e.event]

    assert [event.split(" (")[0] for event in services] == ["first to move: db", "api moves"]


def test_services_that_moved_at_the_same_time_are_none_of_them_first(store: DuckStore) -> None:
    # TrainTicket 10:56:45 with its one minute file: three services' host metrics moved at the one sample at 10:57:09,
    # and the timeline called the first in alphabetical order "first to move"
    at = datetime(2024, 5, 1, 1, 58)
    onsets = [ServiceOnset(service=name, t=at, sign=f"{name}/cpu up", evidence=["metric_shift-0000abcd"])
              for name in ("cancel", "order", "route")]
    timeline = build_timeline(store, WINDOW, BASELINE, data_end=DATA_END, service_onsets=onsets)

    moves = [e.event for e in timeline.entries if "move" in e.event]
    assert moves == ["cancel moves (cancel/cpu up)", "order moves (order/cpu up)", "route moves (route/cpu up)"]


def test_flagged_series_are_one_row_per_service_that_did_not_move(store: DuckStore) -> None:
    onsets = [("cache/hit_ratio", datetime(2024, 5, 1, 1, 57)), ("db/p95_ms", datetime(2024, 5, 1, 2, 1)),
              ("cache/evictions", datetime(2024, 5, 1, 2, 2)), ("api/error_ratio", datetime(2024, 5, 1, 2, 4))]
    moves = [ServiceOnset(service="db", t=datetime(2024, 5, 1, 1, 58), sign="db/p95_ms from 20 to 900",
                          evidence=["metric_shift-0000abcd"])]

    timeline = build_timeline(store, WINDOW, BASELINE, onsets=onsets, data_end=DATA_END, service_onsets=moves)

    rows = [(e.t, e.event) for e in timeline.entries if "move" in e.event or "anomal" in e.event]
    assert rows == [(datetime(2024, 5, 1, 1, 57), "first anomalous point: cache/hit_ratio"),
                    (datetime(2024, 5, 1, 1, 58), "db moves (db/p95_ms from 20 to 900)"),
                    (datetime(2024, 5, 1, 2, 4), "api/error_ratio becomes anomalous")]


def test_detection_template_peak_and_recovery(store: DuckStore, timeline) -> None:
    flagged = build_timeline(store, WINDOW, BASELINE, service_onsets=[], data_end=DATA_END,
                             onsets=[("api/error_ratio", datetime(2024, 5, 1, 2, 4)),
                                     ("db/p95_ms", datetime(2024, 5, 1, 2, 1))])
    events = {e.event: e.t for e in timeline.entries} | {e.event: e.t for e in flagged.entries}

    assert events["first anomalous point: db/p95_ms"] == datetime(2024, 5, 1, 2, 1)
    assert events["api/error_ratio becomes anomalous"] == datetime(2024, 5, 1, 2, 4)
    assert events["peak of the incident"] == datetime(2024, 5, 1, 2, 15)
    assert events["recovery: signals back within baseline"] == WINDOW[1]
    pool = next(e for e in timeline.entries if "pool timeout after <*>" in e.event)
    assert pool.t == datetime(2024, 5, 1, 1, 58)  # before the detected window, after the baseline
    assert "new log template, db" in pool.event


def test_to_list_is_the_analysis_json_block(timeline) -> None:
    first = timeline.to_list()[0]

    assert set(first) == {"t", "event", "evidence"}
    assert first["t"] == "2024-05-01T01:55:00Z"


def test_an_incident_running_to_the_end_of_the_data_has_no_recovery(store: DuckStore) -> None:
    timeline = build_timeline(store, WINDOW, BASELINE, data_end=WINDOW[1])

    last = timeline.entries[-1]
    assert (last.t, last.event) == (WINDOW[1], "end of data: incident still ongoing")
    assert not any(e.event.startswith("recovery") for e in timeline.entries)
    assert last.evidence == [timeline.evidence[0].id]  # no detection given: the window itself is the evidence


def test_bad_deploy_scenario_shows_the_deploy_before_the_first_errors(scenario_dir) -> None:
    import json

    from incidentlens.scenarios import list_scenarios
    from incidentlens.telemetry import load_telemetry

    if "bad-deploy" not in dict(list_scenarios()):
        pytest.skip("the bad-deploy scenario is not in this build")
    directory = scenario_dir("bad-deploy")
    truth = json.loads((directory / "truth.json").read_text())
    start, end = (datetime.fromisoformat(truth["window"][k].rstrip("Z")) for k in ("start", "end"))
    store = load_telemetry(logs=directory / "logs.csv", events=directory / "events.csv")
    baseline = (start - (end - start) * 2, start)
    templates = find_templates(store, (start, end), baseline).templates

    timeline = build_timeline(store, (start, end), baseline, templates=templates)

    data_start, data_end = store.time_range()
    times = [e.t for e in timeline.entries]
    assert times == sorted(times) and data_start <= times[0] and times[-1] <= data_end
    assert all(e.evidence for e in timeline.entries)
    deploy = next(e for e in timeline.entries if e.event.startswith("deploy " + truth["root_cause"]["service"]))
    first_errors = next(e for e in timeline.entries if e.event.startswith("first to move"))
    assert deploy.t == datetime.fromisoformat(truth["trigger"]["t"].rstrip("Z")) <= first_errors.t
    assert truth["root_cause"]["service"] in first_errors.event
