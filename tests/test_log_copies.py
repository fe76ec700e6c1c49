"""A log line written to two files (exports whose times overlap) is one line: counted once, and said so."""

from __future__ import annotations

from pathlib import Path

from incidentlens.telemetry import load_telemetry


def _minute_file(path: Path, minutes: range, extra: list[str] | None = None) -> Path:
    """`ts,service,level,message` lines every 10 s over `minutes` of 10:00, then `extra` lines."""
    lines = [f"2024-05-01T10:{m:02d}:{s:02d}Z,api,INFO,served request {m}.{s}"
             for m in minutes for s in range(0, 60, 10)]
    path.write_text("ts,service,level,message\n" + "\n".join([*lines, *(extra or [])]) + "\n")
    return path


def test_lines_a_later_file_holds_again_are_counted_once_and_said(tmp_path: Path) -> None:
    # minute files as Nezha writes them: the second repeats the first's last minute, line for line
    first = _minute_file(tmp_path / "10_00_log.csv", range(0, 2))
    second = _minute_file(tmp_path / "10_01_log.csv", range(1, 3))

    store = load_telemetry(logs=[first, second])

    assert store.fetch("SELECT count(*) AS n FROM logs")["n"][0].as_py() == 18  # 3 minutes of 6 lines
    assert [w for w in store.warnings if "held again" in w] == [
        f"{first} (and 1 more): 6 log lines a later file held again (the same time, fields and message: files whose "
        f"times overlap), counted once: 6 of {second} already in {first}"]
    # the line kept is the first file's, at its own line there
    origins = store.fetch(f"SELECT file, line FROM ({store.log_origins_sql()}) WHERE message = 'served request 1.0'")
    assert origins.to_pylist() == [{"file": str(first), "line": 8}]


def test_a_line_repeated_within_one_file_or_changed_in_another_is_kept(tmp_path: Path) -> None:
    # a service may write one line twice at once; a line of the same time with another message is another line
    twice = "2024-05-01T10:01:30Z,api,ERROR,connection refused"
    first = _minute_file(tmp_path / "a.csv", range(0, 2), extra=[twice, twice])
    second = _minute_file(tmp_path / "b.csv", range(3, 4), extra=["2024-05-01T10:01:30Z,api,ERROR,connection reset"])

    store = load_telemetry(logs=[first, second])

    assert store.fetch("SELECT count(*) AS n FROM logs")["n"][0].as_py() == 12 + 2 + 6 + 1
    assert not [w for w in store.warnings if "held again" in w]
