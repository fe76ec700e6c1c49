"""Fluent Bit's `file` output in its default format (`out_file`: `tag: [time, {record}]` a line) read as logs.

Every fixture is written here as Fluent Bit's `file` output writes its lines: `%s: [%f, %s]`, the tag, the time in
epoch seconds and the record as JSON.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry
from test_telemetry_cli import incidentlens

T0 = datetime(2023, 11, 14, 22, 13, 20)
POD_TAG = "kube.var.log.containers.payments-7d9f8b6c5d-x2x9q_shop_payments-0a1b2c.log"


def out_file_line(tag: str, at: datetime, record: dict[str, object], nanoseconds: bool = False) -> str:
    """One record as Fluent Bit's `file` output writes it in its default format: its time with six decimals (`%f`),
    or nine (its nanoseconds, as Fluent Bit 2 and later write it, and `\r\n` after it on Windows)."""
    seconds = at.replace(tzinfo=UTC).timestamp()
    written = f"{int(seconds)}.{round(seconds % 1 * 1e6):06d}000" if nanoseconds else f"{seconds:f}"
    return f"{tag}: [{written}, {json.dumps(record, separators=(',', ':'))}]" + ("\r\n" if nanoseconds else "\n")


def test_out_file_lines_are_read_as_log_lines_by_their_time_record_and_tag(tmp_path: Path) -> None:
    # it was "line format not recognised: one entry per line, with no time"
    path = tmp_path / "tail.0"  # the file is named by its tag where `File` is not set
    path.write_text(
        out_file_line(POD_TAG, T0 + timedelta(microseconds=123456), {"log": "connected to db\n", "stream": "stdout"})
        + out_file_line(POD_TAG, T0 + timedelta(seconds=1), {"log": "ERROR timeout talking to db\n"}, nanoseconds=True)
        + out_file_line("app.cart", T0 + timedelta(seconds=2), {"message": "cart full", "level": "warning"})
        + out_file_line("tail.0", T0 + timedelta(seconds=3), {"log": '{"msg": "card declined", "level": "error"}',
                                                              "kubernetes": {"pod_name": "checkout-0"}}))

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT ts, service, level, message, tag FROM logs ORDER BY ts").to_pylist() == [
        {"ts": T0 + timedelta(microseconds=123456), "service": "payments", "level": None, "message": "connected to db",
         "tag": POD_TAG},
        {"ts": T0 + timedelta(seconds=1), "service": "payments", "level": "ERROR",
         "message": "ERROR timeout talking to db", "tag": POD_TAG},
        {"ts": T0 + timedelta(seconds=2), "service": "app.cart", "level": "WARN", "message": "cart full",
         "tag": "app.cart"},
        {"ts": T0 + timedelta(seconds=3), "service": "checkout", "level": "ERROR", "message": "card declined",
         "tag": "tail.0"}]
    assert (store.warnings, store.rejected) == ([], [])


def test_a_line_that_is_no_record_is_set_aside_counted_and_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    records = [out_file_line("app.cart", T0 + timedelta(seconds=n), {"log": f"order {n} placed"}) for n in range(4)]
    path.write_text(records[0] + "[2023/11/14 22:13:20] [ info] [engine] started\n" + "".join(records[1:])
                    + 'app.cart: [1700000005.000000, {"log": "cut sh\n')

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 4}]
    [rejected] = store.rejected
    assert rejected.note() == "2 of 6 records of app.log unreadable (the first on line 2)"
    assert [line for line, *_ in rejected.rows] == [2, 6]


def test_a_bad_time_is_left_out_and_named_by_its_file_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    lines = [out_file_line("app.cart", T0 + timedelta(seconds=n), {"log": "order placed"}) for n in range(4)]
    lines[2] = lines[2].replace(f"{T0.replace(tzinfo=UTC).timestamp() + 2:f}", "99999999999999999999.000000")
    path.write_text(lines[0] + "\n" + "".join(lines[1:]))  # a blank line: the bad time's is the file's 4th

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 3}]
    assert store.warnings == [f"{path}: column 'time': 1 row with a bad time left out; the first, row 4: cannot "
                              "parse '99999999999999999999.000000' as a time (the column's other values read as "
                              "epoch s)"]


def test_a_file_mostly_of_other_lines_is_refused_in_one_line_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(out_file_line("app.cart", T0, {"log": "order placed"}) + "not a record\n" * 3)

    completed = incidentlens("analyze", "--logs", str(path), "--out", str(tmp_path / "out"))

    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"error: {path}: cannot read as Fluent Bit out_file: 3 of 4 lines unreadable (line 2: not a Fluent Bit "
        "out_file record (tag: [time, {record}]))"]


def test_out_file_lines_given_as_metrics_are_refused_saying_where_they_belong(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(out_file_line("app.cart", T0, {"log": "order placed"}))
    with pytest.raises(InputError) as refused:
        load_telemetry(metrics=path)
    assert str(refused.value) == f"{path}: holds Fluent Bit log records: pass it with --logs"


def test_bytes_that_are_not_utf8_are_read_as_u_fffd_and_counted(tmp_path: Path) -> None:
    # the whole file was refused: "Invalid unicode (byte sequence mismatch) detected"
    path = tmp_path / "app.log"
    path.write_bytes(out_file_line("app.cart", T0, {"log": "order placed"}).encode()
                     + out_file_line("app.cart", T0, {"log": "caf\u00e9 closed"}).encode().replace(b"\\u00e9", b"\xe9"))

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT message FROM logs ORDER BY message").column("message").to_pylist() == [
        "caf\ufffd closed", "order placed"]
    assert store.warnings == [f"{path}: 1 byte sequence(s) that are not UTF-8, the first on line 2, read as U+FFFD "
                              "(the lines are kept)"]


@pytest.mark.parametrize("metadata", [False, True], ids=["before 2.1", "2.1 on, with each record's metadata"])
def test_the_msgpack_format_is_refused_naming_the_format_to_set(tmp_path: Path, metadata: bool) -> None:
    # `Format msgpack`: each record [EventTime, {record}] (msgpack's fixext 8 of type 0, seconds and nanoseconds),
    # since Fluent Bit 2.1 [[EventTime, {metadata}], {record}]; it was "line 1: not text ...: a binary file?"
    time = b"\xd7\x00" + struct.pack(">II", 1700000000, 123456789)
    record = b"\x81\xa3log\xacorder placed"  # {"log": "order placed"}
    path = tmp_path / "app.cart"
    path.write_bytes((b"\x92" + (b"\x92" + time + b"\x80" if metadata else time) + record) * 20)

    completed = incidentlens("templates", "--logs", str(path), "--out", str(tmp_path / "out"))

    assert (completed.returncode, completed.stderr.splitlines()) == (2, [
        f"error: {path}: Fluent Bit's msgpack output (its Format msgpack), which IncidentLens does not read: leave "
        "the file output's Format unset (its default, tag: [time, {record}] lines) or set it to plain (JSON lines), "
        "both of which IncidentLens reads"])
