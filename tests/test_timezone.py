"""`--timezone NAME`: a file's times written without a zone are that zone's wall clock (its summer time included),
a time with an offset or `Z` keeps it, and a zone that is none is one error line with exit code 2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_helpers import incidentlens
from incidentlens.analysis.detection import parse_time
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry, views

LOGS = """ts,service,message
2026-12-06 10:00:00,api,winter wall clock
2026-07-06 10:00:00,api,summer wall clock
2026-12-06T10:00:00Z,api,zulu
2026-12-06T10:00:00+05:30,api,offset
2026/12/06 10:00:00,api,slashed
"""


def times(store: object, view: str = "logs", column: str = "ts") -> list[str]:
    return [str(row["t"]) for row in store.fetch(f"SELECT {column} AS t FROM {view}").to_pylist()]


def test_naive_times_are_the_zones_wall_clock_and_a_written_zone_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    path.write_text(LOGS)
    assert times(load_telemetry(logs=path, timezone="Europe/Berlin")) == [
        "2026-12-06 09:00:00", "2026-07-06 08:00:00", "2026-12-06 10:00:00", "2026-12-06 04:30:00",
        "2026-12-06 09:00:00"]
    # without the option, as before: a time without a zone is UTC
    assert times(load_telemetry(logs=path)) == [
        "2026-12-06 10:00:00", "2026-07-06 10:00:00", "2026-12-06 10:00:00", "2026-12-06 04:30:00",
        "2026-12-06 10:00:00"]


def test_a_kibana_reports_times_are_the_zones_wall_clock(tmp_path: Path) -> None:
    # Kibana writes a CSV report's times in the zone it was made in, without the zone
    path = tmp_path / "logs.csv"
    path.write_text('"@timestamp",message\n"Dec 6, 2026 @ 10:00:00.000",winter\n"Jul 6, 2026 @ 10:00:00.000",summer\n')
    assert times(load_telemetry(logs=path, timezone="Europe/Berlin")) == ["2026-12-06 09:00:00", "2026-07-06 08:00:00"]


def test_a_parquet_timestamp_without_zone_and_a_plain_text_log_are_read_in_the_zone_too(tmp_path: Path) -> None:
    parquet = tmp_path / "metrics.parquet"
    pq.write_table(pa.table({"ts": pa.array([dt.datetime(2026, 12, 6, 10)], pa.timestamp("ms")), "rps": [1.0]}),
                   parquet)
    log = tmp_path / "app.log"
    log.write_text("2026-12-06 10:00:00,123 INFO local line\n2026-12-06T10:00:01Z INFO zulu line\n")
    store = load_telemetry(metrics=parquet, logs=log, timezone="America/New_York")
    assert times(store, "metrics") == ["2026-12-06 15:00:00"]
    assert times(store) == ["2026-12-06 15:00:00.123000", "2026-12-06 10:00:01"]


def test_a_zone_is_named_as_iana_names_it_in_any_case(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    path.write_text(LOGS)
    assert load_telemetry(logs=path, timezone="europe/berlin").timezone == "Europe/Berlin"


def test_a_zone_that_is_none_is_refused_before_any_file_is_read(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^--timezone 'Europe/Berln': no such time zone \(did you mean "
                                         r"Europe/Berlin"):
        load_telemetry(logs=tmp_path / "not-even-there.csv", timezone="Europe/Berln")


def test_at_without_an_offset_is_the_zones_wall_clock_too_and_with_one_keeps_it() -> None:
    assert parse_time("2026-12-06 11:30", zone="Europe/Berlin") == dt.datetime(2026, 12, 6, 10, 30)
    assert parse_time("2026-12-06T11:30:00Z", zone="Europe/Berlin") == dt.datetime(2026, 12, 6, 11, 30)
    assert parse_time("2026-12-06 11:30") == dt.datetime(2026, 12, 6, 11, 30)


def test_the_cli_reads_local_times_in_the_zone_given(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    path.write_text(LOGS)
    result = incidentlens("sql", "SELECT min(ts) AS first FROM logs", "--logs", str(path), "--timezone",
                          "Europe/Berlin", "--json")
    assert result.returncode == 0, result.stderr
    assert '"2026-07-06T08:00:00' in result.stdout


def test_a_metric_day_longer_than_its_sample_reads_its_naive_times_in_the_zone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a CSV metric day past the sample is probed for its value columns first (`views._read_metrics_once`), and the
    # time the probe found is reused: in the zone given, not as the probe, which knows none, would read it
    monkeypatch.setattr(views, "SAMPLE_ROWS", 5)
    path = tmp_path / "metrics.csv"
    path.write_text("time,service,p95_ms\n" + "".join(f"2026-12-06 10:{m:02d}:00,api,{m}\n" for m in range(20)))
    ts = times(load_telemetry(metrics=path, timezone="Europe/Berlin"), "metrics")
    assert (ts[0], ts[-1], len(ts)) == ("2026-12-06 09:00:00", "2026-12-06 09:19:00", 20)


def test_analyze_at_a_local_alert_time_starts_the_window_where_the_files_local_times_say(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("ts,service,metric,value\n" + "".join(
        f"2026-12-06 {10 + m // 60:02d}:{m % 60:02d}:00,api,p95_ms,{100 + m % 5 + (400 if m >= 90 else 0)}\n"
        for m in range(100)))
    result = incidentlens("analyze", "--metrics", str(path), "--timezone", "Europe/Berlin", "--at",
                          "2026-12-06 11:30", "--onset", "at", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    assert '"start": "2026-12-06T10:30:00Z"' in result.stdout


@pytest.mark.parametrize("command", ["detect --metrics", "analyze --out OUT --logs", "templates --out OUT --logs",
                                     "mcp --logs", "serve --port 0 --state OUT --logs"])
def test_an_unknown_zone_is_one_error_line_and_exit_code_2(tmp_path: Path, command: str) -> None:
    path = tmp_path / "logs.csv"
    path.write_text(LOGS)
    args = [str(tmp_path / "out") if word == "OUT" else word for word in command.split()]
    result = incidentlens(*args, str(path), "--timezone", "Mars/Olympus")
    assert (result.returncode, result.stderr) == (
        2, "error: --timezone 'Mars/Olympus': no such time zone; give an IANA name such as Europe/Berlin, "
           "America/New_York or UTC\n")


def test_report_refuses_an_unknown_zone_though_it_is_given_no_file_to_read_in_it(tmp_path: Path) -> None:
    result = incidentlens("report", "--analysis", str(tmp_path / "analysis.json"), "--out", str(tmp_path / "out"),
                          "--timezone", "Europe/Berln")
    assert result.returncode == 2 and result.stderr.startswith("error: --timezone 'Europe/Berln': no such time zone")
    assert len(result.stderr.splitlines()) == 1


def test_serve_and_mcp_read_the_files_in_the_zone_of_their_sources(tmp_path: Path) -> None:
    """`timezone` under `[sources]` in serve.toml (or `--timezone`): each investigation, the MCP tools and the check
    at start read the files as `analyze --timezone` does, and a manual start's alert time without an offset too."""
    from incidentlens.cli import _refuse_unreadable_sources
    from incidentlens.server.app import _parse_at
    from incidentlens.server.settings import build_settings

    logs = tmp_path / "logs.csv"
    logs.write_text(LOGS)
    config = tmp_path / "serve.toml"
    config.write_text(f'[sources]\nlogs = "{logs}"\ntimezone = "Europe/Berlin"\n')
    sources = build_settings(config, {}).sources
    assert times(sources.open())[:2] == ["2026-12-06 09:00:00", "2026-07-06 08:00:00"]
    assert times(_refuse_unreadable_sources(sources).store)[:2] == ["2026-12-06 09:00:00", "2026-07-06 08:00:00"]
    assert _parse_at("2026-12-06 10:00", sources.timezone) == "2026-12-06T09:00:00Z"


def test_a_wall_clock_the_zone_skips_is_read_an_hour_on_and_one_it_passes_twice_as_the_second(tmp_path: Path) -> None:
    """Berlin's summer time: 02:30 on 29 March 2026 is no time there (read as 03:30 CEST), 02:30 on 25 October is
    two (read as the second, CET); the files and `--at` agree."""
    path = tmp_path / "logs.csv"
    path.write_text("ts,service,message\n2026-03-29 02:30:00,api,skipped\n2026-10-25 02:30:00,api,twice\n")
    assert times(load_telemetry(logs=path, timezone="Europe/Berlin")) == ["2026-03-29 01:30:00",
                                                                            "2026-10-25 01:30:00"]
    assert parse_time("2026-03-29 02:30", zone="Europe/Berlin") == dt.datetime(2026, 3, 29, 1, 30)
    assert parse_time("2026-10-25 02:30", zone="Europe/Berlin") == dt.datetime(2026, 10, 25, 1, 30)


def test_a_time_with_a_decimal_comma_is_the_zones_wall_clock_too(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    path.write_text('ts,message\n"2026-12-06 10:00:00,250",naive\n"2026-12-06 10:00:00,250Z",zoned\n')
    assert times(load_telemetry(logs=path, timezone="Europe/Berlin")) == [
        "2026-12-06 09:00:00.250000", "2026-12-06 10:00:00.250000"]


def test_javas_zoned_date_time_is_read_by_its_offset_its_bracketed_zone_id_dropped(tmp_path: Path) -> None:
    # ZonedDateTime.toString(), as a Java service's JSON or CSV export writes it; it was 'cannot parse ... as a time'
    path = tmp_path / "logs.csv"
    path.write_text("ts,message\n2024-05-01T10:05:00.123+02:00[Europe/Berlin],summer\n"
                    "2024-12-01T10:05:00Z[UTC],zulu\n2024-12-01T10:05:00-05:00[America/New_York] ,trailing space\n")
    expected = ["2024-05-01 08:05:00.123000", "2024-12-01 10:05:00", "2024-12-01 15:05:00"]
    assert times(load_telemetry(logs=path)) == expected
    # the offset says the instant in any --timezone: the zone given is for times written without one
    assert times(load_telemetry(logs=path, timezone="Asia/Tokyo")) == expected


def test_epoch_numbers_among_iso_times_are_read_by_their_size_and_counted(tmp_path: Path) -> None:
    # two writers of one file: the epoch rows were left out as times that do not parse
    path = tmp_path / "logs.csv"
    path.write_text("ts,message\n2024-05-01T10:00:00Z,iso\n1714557660123,ms\n1714557720,seconds\n"
                    "2024-05-01T10:03:00Z,iso\n2024-05-01T10:04:00Z,iso\n2024-05-01T10:05:00Z,iso\n123456,a counter\n")
    expected = ["2024-05-01 10:00:00", "2024-05-01 10:01:00.123000", "2024-05-01 10:02:00", "2024-05-01 10:03:00",
                "2024-05-01 10:04:00", "2024-05-01 10:05:00"]
    for zone in ("", "Asia/Tokyo"):  # an epoch number is UTC whatever the zone of the text's naive times
        store = load_telemetry(logs=path, timezone=zone or None)
        assert times(store) == expected
        assert store.warnings == [
            f"{path}: column 'ts': 1 row with a bad time left out; the first, row 7: cannot parse '123456' as a "
            "time (the column's other values read as ISO-8601 text)",
            f"{path}: column 'ts': 2 rows holding an epoch number among its ISO-8601 times, read in the unit its "
            "size says (seconds, ms, us or ns)"]


def test_iso_times_among_epoch_numbers_are_read_as_iso_and_counted(tmp_path: Path) -> None:
    # two writers of one file, the other way round: the ISO rows were left out as times that do not parse
    path = tmp_path / "logs.jsonl"
    path.write_text('{"ts": 1714557600123, "message": "ms"}\n{"ts": "2024-05-01T10:01:00Z", "message": "iso"}\n'
                    '{"ts": "2024-05-01 12:02:00", "message": "naive"}\n{"ts": 1714557780000, "message": "ms"}\n'
                    '{"ts": "garbage", "message": "none"}\n{"ts": 1714557900000, "message": "ms"}\n'
                    '{"ts": 1714557960000, "message": "ms"}\n')
    for zone, naive in (("", "2024-05-01 12:02:00"), ("Asia/Tokyo", "2024-05-01 03:02:00")):
        store = load_telemetry(logs=path, timezone=zone or None)
        assert times(store) == ["2024-05-01 10:00:00.123000", "2024-05-01 10:01:00", naive, "2024-05-01 10:03:00",
                                "2024-05-01 10:05:00", "2024-05-01 10:06:00"]
        assert store.warnings == [
            f"{path}: column 'ts': 1 row with a bad time left out; the first, row 5: cannot parse 'garbage' as a "
            "time (the column's other values read as epoch ms)",
            f"{path}: column 'ts': 2 rows holding ISO-8601 text among its epoch numbers, read as such"]


def test_at_takes_javas_zoned_date_time_as_a_column_does() -> None:
    # an alert from a Java service: it was 'cannot parse as a time (use ISO-8601, ...)'
    assert parse_time("2024-05-01T10:05:00.123+02:00[Europe/Berlin]") == dt.datetime(2024, 5, 1, 8, 5, 0, 123000)
    assert parse_time("2024-05-01T10:05:00Z[UTC]", zone="Asia/Tokyo") == dt.datetime(2024, 5, 1, 10, 5)
