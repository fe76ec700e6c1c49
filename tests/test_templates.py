"""Log templates: Drain3 over pre-masked messages finds the patterns that are new or surging in the incident."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
import pytest

from duck_store import DuckStore
from incidentlens.analysis.masking import mask, masked_sql
from incidentlens.analysis.templates import find_templates

BASELINE = (datetime(2024, 5, 1, 0, 0), datetime(2024, 5, 1, 2, 0))
WINDOW = (datetime(2024, 5, 1, 2, 0), datetime(2024, 5, 1, 2, 30))


@pytest.fixture(scope="module")
def pool_exhaustion() -> DuckStore:
    """2.5 h, a line a second. From 02:05 db-proxy times out on its pool and api's upstream errors surge."""
    con = duckdb.connect()
    con.execute("""
        CREATE VIEW logs AS
        SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i) AS ts,
               CASE WHEN kind IN ('pool', 'query') THEN 'db-proxy' ELSE 'api' END AS service,
               CASE WHEN kind IN ('pool', 'upstream') THEN 'ERROR' ELSE 'INFO' END AS level,
               CASE kind
                   WHEN 'pool' THEN 'Timeout acquiring connection from pool main after ' || (5000 + i % 7) || ' ms'
                   WHEN 'upstream' THEN 'upstream db-proxy failed with 503 for request ' || uuid()::VARCHAR
                   WHEN 'query' THEN 'query ok rows=' || (i % 40) || ' in ' || (i % 90) || 'ms'
                   ELSE 'GET /api/orders/' || (i * 7919 % 100000) || ' 200 from 10.0.' || (i % 9) || '.'
                        || (i % 250) || ' in ' || (i % 120) || 'ms'
               END AS message
        FROM (
            SELECT i, CASE WHEN i >= 7500 AND i % 4 = 0 THEN 'pool'
                           WHEN i >= 7560 AND i % 4 = 1 THEN 'upstream'
                           WHEN i % 997 = 0 THEN 'upstream'
                           WHEN i % 2 = 0 THEN 'query' ELSE 'request' END AS kind
            FROM range(9000) t(i)
        )
    """)
    return DuckStore(con=con)


def test_new_pool_timeout_template_comes_first_from_the_root_service(pool_exhaustion: DuckStore) -> None:
    result = find_templates(pool_exhaustion, WINDOW, BASELINE)

    top = result.templates[0]
    # a number with its unit is one value
    assert top.template == "Timeout acquiring connection from pool main after <*>"
    assert top.status == "new"
    assert top.count_baseline == 0
    assert top.count_window == 375  # i in [7500, 9000) with i % 4 == 0
    assert top.services == ["db-proxy"]
    assert top.first_seen == top.first_seen_overall == datetime(2024, 5, 1, 2, 5)
    assert top.rate_ratio is None
    assert 2 <= len(top.samples) <= 3
    assert all(s.startswith("Timeout acquiring connection from pool main after 50") for s in top.samples)


def test_upstream_errors_surge_against_their_baseline_rate(pool_exhaustion: DuckStore) -> None:
    result = find_templates(pool_exhaustion, WINDOW, BASELINE)

    upstream = next(t for t in result.templates if t.template.startswith("upstream db-proxy failed"))
    assert upstream.status == "surging"
    assert upstream.count_baseline == 8  # i % 997 == 0 below 7200, all odd kinds aside: 0, 997, ..., 6979
    assert upstream.rate_ratio == pytest.approx(upstream.count_window / (upstream.count_baseline / 4))
    assert upstream.first_seen == datetime(2024, 5, 1, 2, 6, 1)
    assert upstream.services == ["api"]


def test_steady_templates_are_not_reported(pool_exhaustion: DuckStore) -> None:
    result = find_templates(pool_exhaustion, WINDOW, BASELINE)

    assert {t.template.split()[0] for t in result.templates} == {"Timeout", "upstream"}
    assert result.templates_mined <= 6
    assert result.distinct_masked < 20, "masking in SQL collapses ids, addresses and numbers"


def test_template_evidence_reruns_and_its_sample_query_returns_real_lines(pool_exhaustion: DuckStore) -> None:
    result = find_templates(pool_exhaustion, WINDOW, BASELINE)
    top = result.templates[0]
    evidence = next(e for e in result.evidence if e.id == top.evidence)

    rerun = pool_exhaustion.fetch(evidence.query).to_pylist()
    assert sum(r["n"] for r in rerun if r["period"] == "window" and r["masked"].startswith("Timeout")) == 375
    samples = pool_exhaustion.fetch(evidence.data["sample_query"]).to_pylist()
    assert samples[0]["message"] == top.samples[0]
    assert result.model_dump(mode="json")["templates"][0]["first_seen"] == "2024-05-01T02:05:00Z"


def test_each_message_is_masked_once_however_many_queries_read_the_masks(pool_exhaustion: DuckStore) -> None:
    store = DuckStore(con=pool_exhaustion.con)  # nothing held yet
    find_templates(store, WINDOW, BASELINE)
    find_templates(store, WINDOW, BASELINE)

    # the costly masking runs once, into a held table; each count joins it, and one query counts the minutes the
    # logs cover
    masking, counts, minutes, again, _ = store.queries
    assert masking.startswith("SELECT message AS raw") and "regexp_replace" in masking
    assert counts == again and "LEFT JOIN masked_messages_0 AS masks" in counts
    assert "regexp_replace" not in minutes


def api_errors(start: str, message: str, seconds: str) -> DuckStore:
    """A logs view of one ERROR line of `api`, `message` and a number, at each of the `seconds` (a SQL relation of
    one column) after `start`."""
    con = duckdb.connect()
    con.execute(f"""
        CREATE VIEW logs AS
        SELECT TIMESTAMP '{start}' + to_seconds(i) AS ts, 'api' AS service, 'ERROR' AS level,
               '{message} ' || i AS message
        FROM ({seconds}) t(i)
    """)
    return DuckStore(con=con)


def test_a_steady_template_is_not_surging_when_the_logs_cover_only_the_end_of_the_baseline() -> None:
    # the metrics give a two-hour baseline, but the log files begin at 01:55 (the few files around an alert): the
    # lines a minute stay as they were, and the rate before is per minute logged, not per minute of the baseline
    logs = api_errors("2024-05-01 01:55:00", "No contacts according to contactsId", "SELECT * FROM range(0, 900, 10)")
    assert find_templates(logs, WINDOW, BASELINE).templates == []


def test_a_steady_template_is_not_surging_when_the_log_files_begin_seconds_before_the_onset() -> None:
    # a line every second from 01:59:45, when the first log file begins, to 02:02: the baseline's logs cover 15 s,
    # not the whole minute before the onset (counted as one, the steady line read as surging x4)
    logs = api_errors("2024-05-01 01:59:45", "No contacts according to contactsId", "SELECT * FROM range(0, 135)")
    window = (datetime(2024, 5, 1, 2, 0), datetime(2024, 5, 1, 2, 2))
    assert find_templates(logs, window, BASELINE).templates == []


def test_a_window_that_ends_seconds_into_a_minute_counts_those_seconds_not_the_minute() -> None:
    # a retry logged once a minute for two hours, then every 15 s from the onset at 02:00, the window to 02:02:10
    # (the logs run on after it): 9 lines in 2 min 10 s, four times the rate before. Counted as three whole minutes
    # the window's rate would look three times the baseline's and no surge
    logs = api_errors("2024-05-01 00:00:00", "Retrying charge for order",
                      "SELECT * FROM range(0, 7200, 60) UNION ALL SELECT * FROM range(7200, 7330, 15) "
                      "UNION ALL SELECT 7400")
    window = (datetime(2024, 5, 1, 2, 0), datetime(2024, 5, 1, 2, 2, 10))
    [retry] = find_templates(logs, window, BASELINE).templates
    assert (retry.status, retry.count_window, retry.count_baseline) == ("surging", 9, 120)
    assert retry.rate_ratio == pytest.approx(9 / (2 + 10 / 60), abs=0.01)


def test_a_window_that_runs_on_past_the_logs_counts_them_to_their_last_line() -> None:
    # the window of a known onset takes in a metric sample just after the logs end (02:02:00 here, the window to
    # 02:02:10): the 10 s after the last line hold no line to lack, and counting them would thin the window's rate
    logs = api_errors("2024-05-01 00:00:00", "Retrying charge for order",
                      "SELECT * FROM range(0, 7200, 60) UNION ALL SELECT * FROM range(7200, 7321, 15)")
    window = (datetime(2024, 5, 1, 2, 0), datetime(2024, 5, 1, 2, 2, 10))
    [retry] = find_templates(logs, window, BASELINE).templates
    assert (retry.status, retry.count_window, retry.count_baseline) == ("surging", 9, 120)
    assert retry.rate_ratio == pytest.approx(9 / (2 + 1 / 60), abs=0.01)


def test_masking_in_sql_matches_masking_in_python() -> None:
    lines = [
        "request 3f2a1b4c-1d2e-4f5a-9b8c-123456789abc from 10.0.3.17:8080 took 1.5s",
        "pod ts-contacts-service-866bd68c97-xcqfx restarted, addr 0x7ffe12, sha a3f9c2e",
        "deploy v2.3.1 done, p95_ms=610.5 for user42",
        "18:45:08.130 INFO t.s.TravelServiceImpl#372 TraceID: fb4cfd3ae1e4 [getTickets][calculate time: 175]",
        "refund for Order#4711 queued",
    ]
    con = duckdb.connect()
    con.register("messages", pa.table({"message": lines}))
    in_sql = con.sql(f"SELECT {masked_sql('message')} AS m FROM messages").fetchall()

    assert [m for (m,) in in_sql] == [mask(line) for line in lines]
    assert mask(lines[0]) == "request <*> from <*> took <*>"
    assert mask(lines[1]) == "pod <*> restarted, addr <*>, sha <*>"
    assert mask(lines[2]) == "deploy <*> done, <*>=<*> for <*>"
    assert mask(lines[3]) == "<*> INFO t.s.TravelServiceImpl#<*> TraceID: <*> [getTickets][calculate time: <*>]"
    assert mask(lines[4]) == "refund for Order#<*> queued"


def test_a_line_that_dumps_a_growing_list_stays_one_line_as_the_list_grows() -> None:
    # TrainTicket's seat service lists the tickets sold so far: as the hour goes on, the line gets longer
    def sold(count: int) -> str:
        tickets = ", ".join(f"Ticket(seatNo={1000 + i}, startStation=shanghai, destStation=nanjing)"
                            for i in range(count))
        return f"INFO s.s.SeatServiceImpl#166 [getLeftTicketOfInterval][Get Order tickets result][{tickets}]"

    lines = [sold(count) for count in (3, 12, 40)]
    con = duckdb.connect()
    con.register("messages", pa.table({"message": lines}))
    in_sql = {m for (m,) in con.sql(f"SELECT {masked_sql('message')} AS m FROM messages").fetchall()}
    assert in_sql == {mask(line) for line in lines} and len(in_sql) == 1


def test_masking_holds_on_real_log_values() -> None:
    """Embedded times, ids, quantities, addresses, paths and quoted values are variables; a value of several
    tokens is one variable, so its length does not split a template."""
    assert mask("2024-05-01T10:00:17Z GET /api/orders/42?x=1 from 10.0.0.7:443 user=\"bob smith\"") == \
        "<*> GET <*> from <*> user=<*>"
    assert mask("conn close, 0 bytes sent, 1288 bytes (1.25 KB) received, lifetime <1 sec") == \
        "conn close, <*> sent, <*> received, lifetime <*>"
    assert mask("trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7 pod api-7f9c8d6b5-x2x9q") == \
        "trace <*> span <*> pod <*>"
    assert mask("connection from 84.102.20.2 () at Sun Jul 10 03:55:15 2005") == "connection from <*> at <*>"
    assert mask("table 'users' not found\n  at Db.query(Db.java:42)") == "table <*> not found"


def test_db_pool_scenario_has_a_new_pool_timeout_template_from_the_root_service(scenario_dir) -> None:
    import json

    from incidentlens.scenarios import list_scenarios
    from incidentlens.telemetry import load_telemetry

    if "db-pool-exhaustion" not in dict(list_scenarios()):
        pytest.skip("the db-pool-exhaustion scenario is not in this build")
    directory = scenario_dir("db-pool-exhaustion")
    truth = json.loads((directory / "truth.json").read_text())
    start, end = (datetime.fromisoformat(truth["window"][k].rstrip("Z")) for k in ("start", "end"))
    store = load_telemetry(logs=directory / "logs.csv")

    templates = find_templates(store, (start, end), (start - (end - start) * 2, start)).templates

    pool = [t for t in templates if "pool" in t.template.lower() and t.status == "new"]
    assert pool, [t.template for t in templates]
    assert all(t.services[0] == truth["root_cause"]["service"] for t in pool)
    assert min(t.first_seen_overall for t in pool) >= start


def test_in_a_cascade_the_cause_comes_first_though_its_callers_log_more() -> None:
    con = duckdb.connect()
    con.execute("""
        CREATE VIEW logs AS
        SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i) AS ts,
               CASE WHEN kind = 'pool' THEN 'db' ELSE 'api' END AS service,
               CASE WHEN kind = 'ok' THEN 'INFO' ELSE 'ERROR' END AS level,
               CASE kind WHEN 'pool' THEN 'pool exhausted after ' || i || ' ms'
                         WHEN 'upstream' THEN 'upstream db failed after ' || i || ' ms' ELSE 'ok' END AS message
        FROM (SELECT i, CASE WHEN i >= 7500 AND i % 4 = 0 THEN 'pool'
                             WHEN i >= 7620 AND i % 2 = 1 THEN 'upstream' ELSE 'ok' END AS kind
              FROM range(9000) t(i))
    """)
    templates = find_templates(DuckStore(con=con), WINDOW, BASELINE).templates

    assert [(t.services[0], t.count_window) for t in templates] == [("db", 375), ("api", 690)]
