"""Plain-text logs read as a user has them: the line format is detected per file, continuation lines join the entry
above, year-less times take --year or the file's year, and templates are mined from every entry."""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import os
import zipfile
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_helpers import incidentlens
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.textlogs import TextLogOptions, detect_line_format, file_service

JAVA_LOG = """2024-05-01 10:00:00,120 INFO  [main] com.shop.Checkout - order 1 placed
2024-05-01 10:00:01,250 ERROR [pool-1-thread-3] com.shop.Payments - payment failed for order 2
java.lang.IllegalStateException: gateway timeout after 3000 ms
\tat com.shop.Payments.charge(Payments.java:42)
\tat com.shop.Checkout.run(Checkout.java:17)

2024-05-01 10:00:02,003 WARN  [main] com.shop.Checkout - retrying order 2 (ERROR above)
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def entries(store, columns: str = "ts, service, level, message, line") -> list[dict]:
    return store.fetch(f"SELECT {columns} FROM logs ORDER BY line").to_pylist()


def test_an_iso_prefixed_app_log_reads_without_options(tmp_path: Path) -> None:
    log = write(tmp_path / "app.log", "2024-05-01T10:00:17Z ERROR payments timeout after 3000ms\n"
                                      "2024-05-01T10:00:18.5+02:00 INFO payments recovered\n")

    rows = entries(load_telemetry(logs=log))

    assert rows == [
        {"ts": datetime(2024, 5, 1, 10, 0, 17), "service": "app", "level": "ERROR",
         "message": "payments timeout after 3000ms", "line": 1},
        {"ts": datetime(2024, 5, 1, 8, 0, 18, 500000), "service": "app", "level": "INFO",
         "message": "payments recovered", "line": 2},
    ]


@pytest.mark.parametrize(("text", "service"), [
    # Go's slog TextHandler (a zone offset: read in UTC)
    ('time=2024-05-01T12:00:00.000+02:00 level=INFO msg="server started" port=8080\n'
     'time=2024-05-01T12:00:01.500+02:00 level=ERROR msg="query \\"users\\" timed out" service=api\n', "api"),
    # logrus' text formatter
    ('time="2024-05-01T10:00:00Z" level=info msg="server started" port=8080\n'
     'time="2024-05-01T10:00:01.5Z" level=error msg="query \\"users\\" timed out" service=api\n', "api"),
    # go-kit: the level before the time; Grafana (log15): t=, lvl=, its `eror`
    ('level=info ts=2024-05-01T10:00:00Z caller=main.go:42 msg="server started"\n'
     'level=error ts=2024-05-01T10:00:01.5Z caller=db.go:7 msg="query \\"users\\" timed out" app=api\n', "api"),
    ('t=2024-05-01T10:00:00+0000 lvl=info msg="server started" logger=server\n'
     't=2024-05-01T10:00:01.5+0000 lvl=eror msg="query \\"users\\" timed out" logger=tsdb\n', "service"),
], ids=["slog", "logrus", "go-kit", "grafana"])
def test_logfmt_lines_read_their_time_level_message_and_service_by_key(tmp_path: Path, text: str,
                                                                       service: str) -> None:
    # read as an unknown format they had no time, no level and the whole line as message
    rows = entries(load_telemetry(logs=write(tmp_path / "service.log", text)))

    assert rows == [
        {"ts": datetime(2024, 5, 1, 10, 0), "service": "service", "level": "INFO", "message": "server started",
         "line": 1},
        {"ts": datetime(2024, 5, 1, 10, 0, 1, 500000), "service": service, "level": "ERROR",
         "message": 'query "users" timed out', "line": 2},
    ]


def test_a_logfmt_key_inside_a_quoted_value_is_part_of_the_value(tmp_path: Path) -> None:
    # the level and service were read from the message's words: DEBUG, service 'auth'
    text = ('time=2024-05-01T10:00:00Z msg="log level=debug for service=auth" level=info service=api\n'
            'time=2024-05-01T10:00:01Z level=error msg="db down" service=api\n')

    rows = entries(load_telemetry(logs=write(tmp_path / "service.log", text)))

    assert [(row["service"], row["level"], row["message"]) for row in rows] == [
        ("api", "INFO", "log level=debug for service=auth"), ("api", "ERROR", "db down")]


def test_kubectl_logs_of_several_pods_with_prefix_and_timestamps_name_each_pods_service(tmp_path: Path) -> None:
    # `kubectl logs -l app=shop --prefix --timestamps`: the file's name was every line's service
    log = write(tmp_path / "shop.log",
                "[pod/payments-7d9f8b6c5d-x2x9q/app] 2024-05-01T10:00:00.123456789Z ERROR card declined\n"
                "[pod/cart-0/app] 2024-05-01T10:00:01.000000000Z INFO cart saved\n")

    assert entries(load_telemetry(logs=log), "ts, service, level, message") == [
        {"ts": datetime(2024, 5, 1, 10, 0, 0, 123456), "service": "payments", "level": "ERROR",
         "message": "card declined"},
        {"ts": datetime(2024, 5, 1, 10, 0, 1), "service": "cart", "level": "INFO", "message": "cart saved"},
    ]


def test_logcli_output_names_each_lines_service_and_level_by_its_streams_labels(tmp_path: Path) -> None:
    # `logcli query '{namespace="shop"}' > shop.log`: the file's name was every line's service, and the labels
    # were the start of every message
    log = write(tmp_path / "shop.log",
                '2024-05-01T12:00:00+02:00 {app="payments", namespace="shop"}                  card declined\n'
                '2024-05-01T12:00:01+02:00 {detected_level="warn", pod="cart-7d9f8b6c5d-x2x9q"} cart slow\n'
                '2024-05-01T12:00:02+02:00 {}                                                   no labels left\n')

    assert entries(load_telemetry(logs=log), "ts, service, level, message") == [
        {"ts": datetime(2024, 5, 1, 10, 0, 0), "service": "payments", "level": None, "message": "card declined"},
        {"ts": datetime(2024, 5, 1, 10, 0, 1), "service": "cart", "level": "WARN", "message": "cart slow"},
        {"ts": datetime(2024, 5, 1, 10, 0, 2), "service": "shop", "level": None, "message": "no labels left"},
    ]


def test_a_stack_trace_joins_its_entry_which_counts_once_with_the_level_of_its_first_line(tmp_path: Path) -> None:
    store = load_telemetry(logs=write(tmp_path / "shop.log", JAVA_LOG))

    rows = entries(store, "level, message, logger, line")

    assert [row["line"] for row in rows] == [1, 2, 7]
    failed = rows[1]
    assert failed["level"] == "ERROR" and failed["logger"] == "com.shop.Payments"
    assert failed["message"].splitlines() == [
        "payment failed for order 2", "java.lang.IllegalStateException: gateway timeout after 3000 ms",
        "\tat com.shop.Payments.charge(Payments.java:42)", "\tat com.shop.Checkout.run(Checkout.java:17)"]
    assert rows[2]["level"] == "WARN", "the level word of the line, not a later ERROR in the text"


def test_a_log_file_of_blank_lines_is_left_out_and_the_files_after_it_read(tmp_path: Path) -> None:
    # `--logs 'logs/*.log'` with a file of blank lines first: it stopped the load, the entries after it unread
    write(tmp_path / "a.log", "\n\n")
    write(tmp_path / "b.log", "2024-05-01T10:00:17Z ERROR payments timeout after 3000ms\n")

    store = load_telemetry(logs=str(tmp_path / "*.log"))

    assert entries(store, "service, message") == [{"service": "b", "message": "payments timeout after 3000ms"}]
    assert f"{tmp_path / 'a.log'}: no rows (the file is empty or has only a header), left out" in store.warnings


def test_an_iis_log_takes_each_lines_level_from_the_status_its_fields_directive_places(tmp_path: Path) -> None:
    # W3C extended format: a 500 was a line with no level, so no error surge could show
    log = write(tmp_path / "u_ex240501.log",
                "#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n"
                "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port c-ip sc-status time-taken\r\n"
                "2024-05-01 10:00:00 10.0.0.5 GET /api/orders - 443 10.0.0.9 200 15\r\n"
                "2024-05-01 10:00:01 10.0.0.5 POST /api/pay - 443 10.0.0.9 503 3012\r\n")

    rows = entries(load_telemetry(logs=log), "ts, level")

    assert rows == [{"ts": datetime(2024, 5, 1, 10, 0), "level": "INFO"},
                    {"ts": datetime(2024, 5, 1, 10, 0, 1), "level": "ERROR"}]


def test_an_iis_logs_directives_are_its_headers_not_entries(tmp_path: Path) -> None:
    # IIS writes its directives again at each restart: they were entries with no time, counted in a warning, and a
    # short file of them was 'line format not recognised'
    directives = ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2024-05-01 10:00:00\n"
                  "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port c-ip sc-status time-taken\n")
    log = write(tmp_path / "u_ex240501.log",
                directives + "2024-05-01 10:00:00 10.0.0.5 GET /api/orders - 443 10.0.0.9 200 15\n"
                + directives + "2024-05-01 11:00:01 10.0.0.5 POST /api/pay - 443 10.0.0.9 503 3012\n")

    store = load_telemetry(logs=log)

    assert entries(store, "line, level, message") == [
        {"line": 5, "level": "INFO", "message": "10.0.0.5 GET /api/orders - 443 10.0.0.9 200 15"},
        {"line": 10, "level": "ERROR", "message": "10.0.0.5 POST /api/pay - 443 10.0.0.9 503 3012"}]
    assert store.warnings == []


def test_docker_compose_logs_name_each_containers_service(tmp_path: Path) -> None:
    # `docker compose logs --timestamps > stack.log`: it was "line format not recognised", no line with a time
    log = write(tmp_path / "stack.log",
                "payments-1      | 2024-05-01T10:00:00.123456789Z ERROR card declined\n"
                "order-worker_2  | 2024-05-01T10:00:01.000000000Z INFO order saved\n")

    assert entries(load_telemetry(logs=log), "ts, service, level, message") == [
        {"ts": datetime(2024, 5, 1, 10, 0, 0, 123456), "service": "payments", "level": "ERROR",
         "message": "card declined"},
        {"ts": datetime(2024, 5, 1, 10, 0, 1), "service": "order-worker", "level": "INFO", "message": "order saved"},
    ]


def test_a_kubernetes_node_log_line_split_by_its_runtime_is_one_entry_as_kubectl_logs_shows_it(
    tmp_path: Path
) -> None:
    # containerd writes a line past 16 KiB in parts tagged P, the last F: each part was an entry of its own, the
    # second with no level
    log = write(tmp_path / "0.log", "2024-05-01T10:00:00.100000000Z stdout F INFO order 1 placed\n"
                                    "2024-05-01T10:00:01.200000000Z stderr P ERROR payment failed: cart=[sku-1, \n"
                                    "2024-05-01T10:00:01.200000000Z stderr F sku-2]\n"
                                    "2024-05-01T10:00:02.300000000Z stdout F INFO order 3 placed\n")

    assert entries(load_telemetry(logs=log), "level, message, line") == [
        {"level": "INFO", "message": "INFO order 1 placed", "line": 1},
        {"level": "ERROR", "message": "ERROR payment failed: cart=[sku-1, sku-2]", "line": 2},
        {"level": "INFO", "message": "INFO order 3 placed", "line": 4},
    ]


def test_syslog_takes_its_service_from_the_app_field_and_its_year_from_the_option(tmp_path: Path) -> None:
    log = write(tmp_path / "messages", "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure\n"
                                       "<11>Jun  3 09:00:00 web nginx: upstream timed out\n")

    store = load_telemetry(logs=log, text=TextLogOptions(year=2023))

    assert entries(store, "ts, service, level, host, message") == [
        {"ts": datetime(2023, 6, 14, 15, 16, 1), "service": "sshd(pam_unix)", "level": None, "host": "combo",
         "message": "authentication failure"},
        {"ts": datetime(2023, 6, 3, 9, 0), "service": "nginx", "level": "ERROR", "host": "web",
         "message": "upstream timed out"},
    ]


def test_year_less_times_take_the_files_modification_year_and_service_can_be_given(tmp_path: Path) -> None:
    log = write(tmp_path / "device.txt", "03-17 16:13:38.811  1702  2395 D WindowManager: freezing display\n"
                                         "03-17 16:13:39.001  1702  2395 E AndroidRuntime: FATAL EXCEPTION: main\n")
    os.utime(log, (datetime(2021, 4, 1).timestamp(),) * 2)

    store = load_telemetry(logs=log, text=TextLogOptions(service="phone"))

    assert entries(store, "ts, service, level, logger") == [
        {"ts": datetime(2021, 3, 17, 16, 13, 38, 811000), "service": "phone", "level": "DEBUG",
         "logger": "WindowManager"},
        {"ts": datetime(2021, 3, 17, 16, 13, 39, 1000), "service": "phone", "level": "ERROR",
         "logger": "AndroidRuntime"},
    ]


@pytest.mark.parametrize(("line", "expected"), [
    ('<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM su root failed',
     {"ts": datetime(2003, 10, 11, 22, 14, 15, 3000), "service": "su", "level": "FATAL",
      "message": "BOM su root failed"}),
    ("I0102 15:04:05.000123   12345 controller.go:42] Synced pod web-0",
     {"ts": datetime(2024, 1, 2, 15, 4, 5, 123), "service": "k", "level": "INFO", "message": "Synced pod web-0"}),
    ("ERROR:payments.gateway:card declined",
     {"ts": None, "service": "k", "level": "ERROR", "message": "card declined"}),
    ('10.0.0.7 - bob [01/May/2024:10:00:00 +0200] "GET /api/orders/42 HTTP/1.1" 503 120 "-" "curl/8"',
     {"ts": datetime(2024, 5, 1, 8, 0), "service": "k", "level": "ERROR",
      "message": '"GET /api/orders/42 HTTP/1.1" 503 120 "-" "curl/8"'}),
    ("2024/05/01 10:00:00 [error] 7#7: *1 connect() failed (111: Connection refused)",
     {"ts": datetime(2024, 5, 1, 10, 0), "service": "k", "level": "ERROR",
      "message": "7#7: *1 connect() failed (111: Connection refused)"}),
    ("[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
     {"ts": datetime(2005, 12, 4, 4, 47, 44), "service": "k", "level": "ERROR",
      "message": "mod_jk child workerEnv in error state 6"}),
    ("1714557600 WARN disk almost full",
     {"ts": datetime(2024, 5, 1, 10, 0), "service": "k", "level": "WARN", "message": "disk almost full"}),
    ("2024-05-01 10:00:00,123 - payments - INFO - charged",
     {"ts": datetime(2024, 5, 1, 10, 0, 0, 123000), "service": "k", "level": "INFO", "message": "charged"}),
    ("- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO "
     "instruction cache parity error corrected",
     {"ts": datetime(2005, 6, 3, 22, 42, 50), "service": "k", "level": "INFO",
      "message": "instruction cache parity error corrected"}),
    ("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
     {"ts": datetime(2008, 11, 9, 20, 36, 15), "service": "k", "level": "INFO",
      "message": "PacketResponder 1 terminating"}),
])
def test_each_common_line_format_reads_its_time_level_and_message(tmp_path: Path, line: str, expected: dict) -> None:
    log = write(tmp_path / "k.log", line + "\n")

    rows = entries(load_telemetry(logs=log, text=TextLogOptions(year=2024)), "ts, service, level, message")

    assert rows == [expected]


def test_an_unknown_format_still_reads_one_entry_per_line_with_no_time(tmp_path: Path) -> None:
    log = write(tmp_path / "notes.log", "something happened\nsomething else happened\n\nERROR it broke\n")

    store = load_telemetry(logs=log)

    assert entries(store, "ts, level, message, line") == [
        {"ts": None, "level": None, "message": "something happened", "line": 1},
        {"ts": None, "level": None, "message": "something else happened", "line": 2},
        {"ts": None, "level": "ERROR", "message": "ERROR it broke", "line": 4},
    ]
    assert any("line format not recognised" in w for w in store.warnings)
    assert store.time_range() is None


def test_gzip_and_globs_read_as_for_csv(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "api.log.1.gz", "wt") as handle:
        handle.write("2024-05-01T10:00:00Z INFO old line\n")
    write(tmp_path / "api.log", "2024-05-01T11:00:00Z INFO new line\n")

    store = load_telemetry(logs=str(tmp_path / "api.log*"))

    assert store.fetch("SELECT service, message FROM logs ORDER BY ts").to_pylist() == [
        {"service": "api", "message": "old line"}, {"service": "api", "message": "new line"}]


def test_a_csv_with_a_header_is_still_a_csv_whatever_its_suffix(tmp_path: Path) -> None:
    log = write(tmp_path / "export.txt", "time,service,message\n2024-05-01T10:00:00Z,api,hello\n")

    store = load_telemetry(logs=log)

    assert store.fetch("SELECT service, message FROM logs").to_pylist() == [{"service": "api", "message": "hello"}]


def test_a_csv_whose_quoted_messages_hold_its_delimiter_is_still_a_csv_whatever_its_suffix(tmp_path: Path) -> None:
    # most of its lines had more commas than its header, so it was read as a plain-text log in silence: every line's
    # service the file's name, its level and message one string of fields
    rows = [["time", "service", "level", "message"],
            ["2024-05-01T10:00:00Z", "api", "INFO", "GET /cart, 200, 12 ms"],
            ["2024-05-01T10:00:01Z", "api", "ERROR", "upstream db, pool exhausted, gave up"],
            ["2024-05-01T10:00:02Z", "web", "INFO", "hello"]]
    log = tmp_path / "export.txt"
    with log.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)

    store = load_telemetry(logs=log)

    assert store.fetch("SELECT service, level, message FROM logs ORDER BY ts").to_pylist() == [
        {"service": service, "level": level, "message": message} for _, service, level, message in rows[1:]]


def test_a_text_file_whose_quote_stays_open_past_the_csv_modules_field_limit_reads_as_text(tmp_path: Path) -> None:
    log = write(tmp_path / "notes.txt", "note,kind\n" + '"' + "x" * 60_000 + "\n" + "y" * 60_000 + "\n" + "z" * 20_000
                + "\n")

    assert load_telemetry(logs=log).fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 4}]


def test_format_detection_tolerates_continuations_and_needs_a_real_share() -> None:
    assert detect_line_format(JAVA_LOG.splitlines()).name == "iso-8601"
    assert detect_line_format(["free text", "more text", "1714557600 once"]).name == "epoch-seconds"
    assert detect_line_format(["free text"] * 20 + ["1714557600 once"]).name == "unknown"
    assert file_service(Path("/var/log/payments.log.1.gz")) == "payments"


def test_templates_command_writes_templates_and_the_line_each_entry_starts_on(tmp_path: Path) -> None:
    log = write(tmp_path / "shop.log", JAVA_LOG + "2024-05-01 10:00:03,000 INFO  [main] com.shop.Checkout - order "
                                                  "3 placed\n")

    result = incidentlens("templates", "--logs", str(log), "--out", str(tmp_path / "out"))

    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out" / "templates.csv") as handle:
        templates = {row["template"]: int(row["count"]) for row in csv.DictReader(handle)}
    assert templates["order <*> placed"] == 2
    with open(tmp_path / "out" / "lines.csv") as handle:
        lines = list(csv.DictReader(handle))
    assert [int(row["line"]) for row in lines] == [1, 2, 7, 8]
    assert lines[0]["file"] == str(log) and lines[0]["template_id"] == lines[3]["template_id"]


def test_templates_command_gives_csv_json_and_parquet_entries_their_file_and_line(tmp_path: Path) -> None:
    # a CSV record on the line after the header and the lines the records before it span; a line set aside is
    # counted too: "order 2 placed" is on line 6, after a message of two lines and one cut short
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs / "a.csv", 'ts,service,message\n'
                          '2024-05-01T10:00:00Z,shop,order 1 placed\n'
                          '2024-05-01T10:00:01Z,shop,"payment failed\n  at Gateway.charge"\n'
                          '2024-05-01T10:00:02Z,shop,"cut "short" here\n'
                          '2024-05-01T10:00:03Z,shop,order 2 placed\n')
    write(logs / "b.jsonl", '{"ts": "2024-05-01T10:00:04Z", "message": "order 3 placed"}\n'
                            'not json\n'
                            '{"ts": "2024-05-01T10:00:05Z", "message": "order 4 placed"}\n')
    pq.write_table(pa.table({"ts": ["2024-05-01T10:00:06Z", "2024-05-01T10:00:07Z"],
                             "message": ["order 5 placed", "order 6 placed"]}), logs / "c.parquet")

    result = incidentlens("templates", "--logs", str(logs / "*"), "--out", str(tmp_path / "out"))

    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out" / "lines.csv") as handle:
        lines = [(Path(row["file"]).name, int(row["line"])) for row in csv.DictReader(handle)]
    assert lines == [("a.csv", 2), ("a.csv", 3), ("a.csv", 6), ("b.jsonl", 1), ("b.jsonl", 3),
                     ("c.parquet", 1), ("c.parquet", 2)]
    # where an entry was read is kept out of the logs view, which the analysis contrasts column by column
    assert "file" not in load_telemetry(logs=str(logs / "*")).columns("logs")


def test_templates_command_counts_blank_lines_in_the_line_each_entry_starts_on(tmp_path: Path) -> None:
    # the readers skip a blank line without counting it: "order 2 placed" was on line 4 (and every entry after a
    # blank line one line short), "order 4 placed" on line 2; a blank line inside a quoted value is the value's
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs / "a.csv", 'ts,service,message\n'
                          '2024-05-01T10:00:00Z,shop,order 1 placed\n'
                          '\n'
                          '2024-05-01T10:00:01Z,shop,"cut "short" here\n'
                          '2024-05-01T10:00:02Z,shop,"payment failed\n\n  at Gateway.charge"\n'
                          '\n'
                          '\n'
                          '2024-05-01T10:00:03Z,shop,order 2 placed\n')
    write(logs / "b.jsonl", '{"ts": "2024-05-01T10:00:04Z", "message": "order 3 placed"}\n'
                            '\n'
                            '{"ts": "2024-05-01T10:00:05Z", "message": "order 4 placed"}\n')

    result = incidentlens("templates", "--logs", str(logs / "*"), "--out", str(tmp_path / "out"))

    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out" / "lines.csv") as handle:
        lines = [(Path(row["file"]).name, int(row["line"])) for row in csv.DictReader(handle)]
    assert lines == [("a.csv", 2), ("a.csv", 5), ("a.csv", 10), ("b.jsonl", 1), ("b.jsonl", 3)]


def test_templates_command_says_how_many_entries_had_no_message_to_mine(tmp_path: Path) -> None:
    # "1 template over 4 entries" while the template counted 3: a JSON line without its message has none
    lines = [f'{{"ts": "2024-05-01T10:00:0{i}Z", "msg": "order {i} placed"}}' for i in range(3)]
    log = write(tmp_path / "shop.jsonl", "\n".join([*lines, '{"ts": "2024-05-01T10:00:09Z"}']) + "\n")

    result = incidentlens("templates", "--logs", str(log), "--out", str(tmp_path / "out"))

    assert result.returncode == 0, result.stderr
    assert "1 template over 4 entries; 1 with no message, so no template\n" in result.stdout


def test_templates_command_writes_its_counts_with_thousands_separators_and_the_right_plural(tmp_path: Path) -> None:
    log = write(tmp_path / "shop.log", "".join(f"2024-05-01 10:{i // 60 % 60:02d}:{i % 60:02d},000 INFO  [main] "
                                               f"com.shop.Checkout - order {i} placed\n" for i in range(1200)))

    result = incidentlens("templates", "--logs", str(log), "--out", str(tmp_path / "out"))

    assert result.returncode == 0, result.stderr
    assert "1 template over 1,200 entries" in result.stdout


def test_loghub_systems_read_without_options_and_group_like_the_ground_truth(datasets: Path) -> None:
    from incidentlens.eval.templates import evaluate_templates

    report = evaluate_templates(datasets / "loghub-2k", systems=["Apache", "HDFS"])

    assert {s.system: s.lines for s in report.systems} == {"Apache": 2000, "HDFS": 2000}
    assert all(s.grouping_accuracy > 0.95 for s in report.systems)


@pytest.mark.parametrize("similarity", [2.0, -1.0, 0.0, float("nan")])
def test_a_drain_similarity_that_is_no_share_is_refused_before_any_system_is_read(tmp_path: Path,
                                                                                  similarity: float) -> None:
    # it ran on every system and scored whatever Drain made of a threshold no share of tokens can meet
    from incidentlens.eval.templates import evaluate_templates

    with pytest.raises(InputError, match=r"^--similarity [-a-z0-9.]+: Drain's similarity threshold must be above 0 "
                                         r"and at most 1$"):
        evaluate_templates(tmp_path, similarity=similarity)


def test_journald_json_export_reads_without_options(tmp_path: Path) -> None:
    import json

    records = [{"__REALTIME_TIMESTAMP": "1714557600123456", "_HOSTNAME": "web-1", "SYSLOG_IDENTIFIER": "nginx",
                "_SYSTEMD_UNIT": "nginx.service", "PRIORITY": "3", "_PID": "812", "MESSAGE": "upstream timed out"},
               {"__REALTIME_TIMESTAMP": "1714557601000000", "_HOSTNAME": "web-1", "SYSLOG_IDENTIFIER": "sshd",
                "PRIORITY": "6", "MESSAGE": "Accepted publickey for deploy"}]
    log = write(tmp_path / "journal.json", "".join(json.dumps(r) + "\n" for r in records))

    store = load_telemetry(logs=log)

    assert store.fetch("SELECT ts, service, level, message FROM logs ORDER BY ts").to_pylist() == [
        {"ts": datetime(2024, 5, 1, 10, 0, 0, 123456), "service": "nginx", "level": "ERROR",
         "message": "upstream timed out"},
        {"ts": datetime(2024, 5, 1, 10, 0, 1), "service": "sshd", "level": "INFO",
         "message": "Accepted publickey for deploy"}]


def test_a_journald_message_exported_as_bytes_reads_as_its_text(tmp_path: Path) -> None:
    # journalctl -o json writes a MESSAGE holding control characters (a coloured line) or bytes that are not UTF-8
    # as an array of its bytes: it was the message "[27,91,51,49,109,...]"
    coloured = "\x1b[31mpayment failed\x1b[0m for café".encode()
    records = [{"__REALTIME_TIMESTAMP": "1714557600000000", "SYSLOG_IDENTIFIER": "pay", "PRIORITY": "3",
                "MESSAGE": list(coloured)},
               {"__REALTIME_TIMESTAMP": "1714557601000000", "SYSLOG_IDENTIFIER": "pay", "PRIORITY": "6",
                "MESSAGE": "[1, 2] is a list in plain text"},
               {"__REALTIME_TIMESTAMP": "1714557602000000", "SYSLOG_IDENTIFIER": "pay", "PRIORITY": "6",
                "MESSAGE": list(b"\xff\xfe not UTF-8")}]
    log = write(tmp_path / "journal.json", "".join(json.dumps(r) + "\n" for r in records))

    messages = load_telemetry(logs=log).fetch("SELECT message FROM logs ORDER BY ts").to_pylist()

    assert messages == [{"message": "payment failed for café"}, {"message": "[1, 2] is a list in plain text"},
                        {"message": json.dumps(list(b"\xff\xfe not UTF-8"), separators=(",", ":"))}]


def test_a_json_message_written_as_a_list_of_small_numbers_stays_as_written(tmp_path: Path) -> None:
    # read into a text column, the string "[1,2,3]" is alike to journald's array of bytes: it was read as the
    # bytes 1, 2 and 3; journald writes an array only for bytes holding a control character, beside visible text
    records = [{"ts": "2024-05-01T10:00:00Z", "service": "api", "message": text}
               for text in ("[1,2,3]", "[1, 2, 3]", "[72,105]")]
    log = write(tmp_path / "app.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    messages = load_telemetry(logs=log).fetch("SELECT message FROM logs ORDER BY ts").to_pylist()

    assert [m["message"] for m in messages] == ["[1,2,3]", "[1, 2, 3]", "[72,105]"]


def test_a_log_line_holding_a_nul_byte_is_kept_not_the_whole_file_refused(tmp_path: Path) -> None:
    # a binary payload logged in one message: the file was refused as binary ("line 51: not text (a NUL byte)")
    path = tmp_path / "app.log"
    lines = [f"2024-05-01T10:{m:02d}:00Z INFO api request {m} served".encode() for m in range(50)]
    path.write_bytes(b"\n".join([*lines, b"2024-05-01T10:50:00Z ERROR api payload \x00\x01 rejected"]) + b"\n")
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT count(*) AS n, count(*) FILTER (level = 'ERROR') AS errors FROM logs").to_pylist() == [
        {"n": 51, "errors": 1}]


def test_a_binary_file_given_as_logs_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "core.log"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\n" * 3 + b"2024-05-01T10:00:00Z INFO api text\n")
    with pytest.raises(InputError, match=r"core\.log: line 1: not text \(3 of the first 4 lines hold a NUL byte\): "
                                         r"a binary file\?$"):
        load_telemetry(logs=path)


@pytest.mark.parametrize(("compress", "name", "says"), [
    (lambda data: bz2.compress(data), "app.log.bz2", "bzip2-compressed, which IncidentLens does not read: decompress "
                                                      "it (bunzip2) or gzip it"),
    (lambda data: lzma.compress(data), "app.log.xz", "xz-compressed, which IncidentLens does not read: decompress it "
                                                     "(unxz) or gzip it"),
], ids=["bzip2", "xz"])
def test_a_file_compressed_other_than_gzip_is_named_with_how_to_read_it(tmp_path: Path, compress, name, says) -> None:
    # was "line 1: not text (1 of the first 1 lines hold a NUL byte): a binary file?"
    path = tmp_path / name
    path.write_bytes(compress(b"2024-05-01T10:00:00Z INFO api request served\n" * 50))
    for given in ({"logs": path}, {"metrics": path}):
        with pytest.raises(InputError) as caught:
            load_telemetry(**given)
        assert str(caught.value) == f"{path}: {says}"


def test_a_json_lines_file_compressed_is_named_as_a_csv_is(tmp_path: Path) -> None:
    # was "cannot read as JSON lines: 3 of 3 lines unreadable (line 1: not valid JSON)"
    path = tmp_path / "logs.jsonl"
    path.write_bytes(bz2.compress(b'{"ts": "2024-05-01T10:00:00Z", "service": "api", "message": "up"}\n' * 20))
    with pytest.raises(InputError) as caught:
        load_telemetry(logs=path)
    assert str(caught.value) == (f"{path}: bzip2-compressed, which IncidentLens does not read: decompress it "
                                 "(bunzip2) or gzip it")


def test_a_bzip2_file_named_csv_is_named_as_compressed_and_a_header_spelt_alike_is_not(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_bytes(bz2.compress(b"ts,rps\n2024-05-01T10:00:00Z,1\n"))
    with pytest.raises(InputError, match=r"metrics\.csv: bzip2-compressed, which IncidentLens does not read"):
        load_telemetry(metrics=path)
    path.write_text("BZh1,ts\n1,2024-05-01T10:00:00Z\n")  # "BZh" alone is no bzip2 header
    assert load_telemetry(metrics=path).fetch("SELECT count(*) AS n FROM metrics").to_pylist() == [{"n": 1}]


def test_a_zip_archive_is_named_as_one(tmp_path: Path) -> None:
    path = tmp_path / "logs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.log", "2024-05-01T10:00:00Z INFO api request served\n")
    with pytest.raises(InputError, match=r"logs\.zip: a zip archive, which IncidentLens does not read: extract it "
                                         r"and give its files$"):
        load_telemetry(logs=path)


def test_a_log_line_dated_outside_the_years_held_is_left_out_naming_its_file_line(tmp_path: Path) -> None:
    # locating it read the .log file again with the JSON reader: a DuckDB traceback
    path = write(tmp_path / "app.log", "2024-05-01T10:00:00Z INFO api up\n"
                                       "  a continuation\n1500-01-01T00:00:00Z INFO api old\n"
                                       "2024-05-01T10:01:00Z INFO api still up\n")
    store = load_telemetry(logs=path)
    assert store.warnings == [f"{path}: column 'ts': 1 row with a bad time left out; the first, row 3: "
                              "'1500-01-01 00:00:00' is a time outside the years 1678-2261"]
    assert [m for (m,) in store.con.execute("SELECT message FROM logs ORDER BY ts").fetchall()] == [
        "api up\n  a continuation", "api still up"]


@pytest.mark.parametrize("year", [0, 1, 2262, -5])
def test_a_year_no_time_stamp_can_hold_is_refused(year: int) -> None:
    # 0 was taken for no year (the file's), 1 and 2262 crashed, -5 left every entry without a time
    with pytest.raises(InputError, match=rf"^--year {year}: must be from 1678 to 2261"):
        TextLogOptions(year=year)


def test_a_coloured_log_reads_its_level_words_without_the_colour_codes(tmp_path: Path) -> None:
    # a logger writing to a terminal (or told to force colour) wraps its level in escape codes; they read as part of
    # the message, and no line had a level: an ERROR surge could not show
    path = tmp_path / "api.log"
    path.write_text("2024-05-01 10:00:00 \x1b[32mINFO\x1b[0m api: request served\n"
                    "2024-05-01 10:00:01 \x1b[1;31mERROR\x1b[0m api: request failed: db timeout\n")

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT level, message FROM logs ORDER BY line").to_pylist() == [
        {"level": "INFO", "message": "api: request served"},
        {"level": "ERROR", "message": "api: request failed: db timeout"}]
