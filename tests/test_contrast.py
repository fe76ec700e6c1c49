"""Contrast analysis: which log values and which metrics set the incident apart from the baseline."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
import pytest

from duck_store import DuckStore
from incidentlens.analysis.contrast import contrast_logs, two_proportion_p
from incidentlens.analysis.shifts import NOISE_FLOOR, metric_shifts
from incidentlens.errors import InputError

START = datetime(2024, 5, 1, 0, 0)
BASELINE = (START, datetime(2024, 5, 1, 2, 0))
WINDOW = (datetime(2024, 5, 1, 2, 0), datetime(2024, 5, 1, 2, 30))


@pytest.fixture
def region_outage() -> DuckStore:
    """2.5 h of one line a second across 3 services x 3 regions; from 02:00 eu-west lines fail."""
    con = duckdb.connect()
    con.execute("""
        CREATE VIEW logs AS
        SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i) AS ts,
               ['api', 'db', 'web'][i % 3 + 1] AS service,
               CASE WHEN region = 'eu-west' AND i >= 7200 THEN 'ERROR'
                    WHEN i % 50 = 0 THEN 'ERROR' ELSE 'INFO' END AS level,
               'request ' || i || ' done' AS message,
               region,
               'u' || (i % 997) AS user_id,
               uuid()::VARCHAR AS trace_id,
               's' || (i % 4000) AS session,
               (i % 300) * 1.5 AS latency_ms,
               200 + (i % 2) AS status
        FROM (SELECT i, ['eu-west', 'us-east', 'ap-south'][(i // 3) % 3 + 1] AS region FROM range(9000) t(i))
    """)
    con.execute("""
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod,
               TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, service, metric,
               CASE WHEN service = 'db' AND metric = 'p95_ms' AND i >= 120 THEN 900 + i % 7
                    WHEN metric = 'p95_ms' THEN 100 + i % 9 ELSE 50 + i % 5 END AS value
        FROM range(150) t(i), (VALUES ('api'), ('db'), ('web')) s(service), (VALUES ('p95_ms'), ('rps')) m(metric)
    """)
    return DuckStore(con=con)


def test_region_outage_ranks_the_failing_region_first(region_outage: DuckStore) -> None:
    result = contrast_logs(region_outage, WINDOW, BASELINE)

    top = result.contributors[0]
    assert (top.dimension, top.value) == ("region", "eu-west")
    assert top.window_share > 0.9
    assert 0.25 < top.baseline_share < 0.42
    assert top.lift == pytest.approx(top.window_share / top.baseline_share)
    assert top.p_value < 1e-12
    assert all(c.dimension != "service" for c in result.contributors), "services are spread evenly"


def test_dimensions_are_discovered_and_ids_skipped(region_outage: DuckStore) -> None:
    result = contrast_logs(region_outage, WINDOW, BASELINE)

    assert set(result.dimensions) == {"service", "region", "status"}
    assert {"user_id", "trace_id", "session", "latency_ms"} <= set(result.skipped)
    assert result.skipped["trace_id"] == "named like an id"
    assert "an id, not a category" in result.skipped["session"]


def test_contributor_evidence_reruns_to_the_same_counts(region_outage: DuckStore) -> None:
    result = contrast_logs(region_outage, WINDOW, BASELINE)
    top = result.contributors[0]
    evidence = next(e for e in result.evidence if e.id == top.evidence)

    rows = region_outage.fetch(evidence.query).to_pylist()
    window_errors = sum(r["n"] for r in rows if r["g__region"] == 0 and r["period"] == "window"
                        and r["problem"] == 1 and r["region"] == "eu-west")
    assert window_errors == top.window_count == evidence.data["window_count"]
    assert "ERROR" in evidence.data["window_population"]


def test_logs_are_scanned_twice_at_most(region_outage: DuckStore) -> None:
    contrast_logs(region_outage, WINDOW, BASELINE)

    scans = [q for q in region_outage.queries if "FROM logs WHERE" in q]
    assert len(scans) == 2, "one cardinality pass and one GROUPING SETS pass"


def test_metric_shift_finds_the_latency_jump(region_outage: DuckStore) -> None:
    shifts, _ = metric_shifts(region_outage, WINDOW, BASELINE)

    top = shifts[0]
    assert top.series == "db/p95_ms"
    assert top.direction == "up"
    assert top.window_median > 900
    assert top.shift > 50
    assert len(shifts) == 6
    assert all(abs(s.shift) < 3 for s in shifts[1:])


def test_flat_baseline_does_not_explode() -> None:
    con = duckdb.connect()
    con.execute("""
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod,
               TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, 'svc' AS service, 'cpu' AS metric,
               CASE WHEN i >= 120 THEN 51.0 ELSE 50.0 END AS value
        FROM range(150) t(i)
    """)
    shift = metric_shifts(DuckStore(con=con), WINDOW, BASELINE)[0][0]

    # no spread at all in the baseline: the noise floor (a fraction of the baseline median) is the scale
    assert shift.shift == pytest.approx(1 / (NOISE_FLOOR * 50))
    assert not shift.significant


def test_a_shift_starts_at_its_first_run_of_three_points_or_of_what_its_series_has_left() -> None:
    # `a` rises for the last two minutes of the data (a run its end cuts short still counts); `b` has one stray point
    # past the bar, then a run from 02:10; `c` has one point past the bar at its very end, beside `b`'s in the
    # order of the query: runs are not read across series
    con = duckdb.connect()
    con.execute("""
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod, TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, service,
               'cpu' AS metric,
               CASE WHEN (service = 'a' AND i >= 148) OR (service = 'b' AND (i = 121 OR i BETWEEN 130 AND 132))
                         OR (service = 'c' AND i = 149) THEN 80.0
                    ELSE 50.0 + i % 3 END AS value
        FROM range(150) t(i), (VALUES ('a'), ('b'), ('c')) s(service)
    """)
    shifts = {s.service: s for s in metric_shifts(DuckStore(con=con), WINDOW, BASELINE)[0]}

    assert shifts["a"].onset == datetime(2024, 5, 1, 2, 28)
    assert shifts["b"].onset == datetime(2024, 5, 1, 2, 10)
    assert shifts["c"].onset == datetime(2024, 5, 1, 2, 29)


def test_contributors_and_moved_series_cite_evidence_that_is_returned(region_outage: DuckStore) -> None:
    logs = contrast_logs(region_outage, WINDOW, BASELINE)
    shifts, shift_evidence = metric_shifts(region_outage, WINDOW, BASELINE)
    moved = [s for s in shifts if s.significant]

    cited = {c.evidence for c in logs.contributors} | {s.evidence for s in moved}
    assert logs.contributors and moved
    assert cited <= {e.id for e in logs.evidence + shift_evidence}
    assert moved[0].model_dump(mode="json")["peak_at"].endswith("Z")


def test_two_proportion_test_matches_the_textbook() -> None:
    # 60/100 vs 40/100: pooled p = 0.5, se = sqrt(0.5 * 0.5 * 0.02) = 0.0707, z = 2.828, one-sided p = 0.00234
    p = two_proportion_p(pa.array([60.0]).to_numpy(), 100, pa.array([40.0]).to_numpy(), 100)
    assert p[0] == pytest.approx(0.00234, rel=1e-2)


def test_reversed_window_is_refused(region_outage: DuckStore) -> None:
    with pytest.raises(InputError, match="incident window"):
        contrast_logs(region_outage, (WINDOW[1], WINDOW[0]), BASELINE)


def test_region_outage_scenario_ranks_its_region_first(scenario_dir) -> None:
    import json

    from incidentlens.scenarios import list_scenarios
    from incidentlens.telemetry import load_telemetry

    if "region-outage" not in dict(list_scenarios()):
        pytest.skip("the region-outage scenario is not in this build")
    directory = scenario_dir("region-outage")
    truth = json.loads((directory / "truth.json").read_text())
    start, end = (datetime.fromisoformat(truth["window"][k].rstrip("Z")) for k in ("start", "end"))
    store = load_telemetry(metrics=directory / "metrics.csv", logs=directory / "logs.csv")

    top = contrast_logs(store, (start, end), (start - (end - start) * 2, start)).contributors[0]

    assert (top.dimension, top.value) == ("region", truth["root_cause"]["region"])


def test_a_value_naming_the_same_lines_as_a_higher_one_says_so() -> None:
    con = duckdb.connect()
    con.execute("""
        CREATE VIEW logs AS
        SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i) AS ts, service,
               CASE WHEN service = 'db' THEN 'v7' ELSE 'v1' END AS version,
               CASE WHEN (service = 'db' AND i >= 7200) OR i % 50 = 0 THEN 'ERROR' ELSE 'INFO' END AS level,
               'line' AS message
        FROM (SELECT i, ['api', 'db', 'web'][i % 3 + 1] AS service FROM range(9000) t(i))
    """)
    contributors = contrast_logs(DuckStore(con=con), WINDOW, BASELINE).contributors

    assert [(c.dimension, c.value, c.same_lines_as) for c in contributors] == [
        ("service", "db", None), ("version", "v7", "service=db")]
