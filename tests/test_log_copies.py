"""A log file that copies a stretch of an earlier one (an export re-run over it) adds no lines: those it copied are
counted once, and said so. Files that only share a line here and there keep every line."""

from __future__ import annotations

from pathlib import Path

from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.store import TelemetryStore


def _minute_file(path: Path, minutes: range, extra: list[str] | None = None) -> Path:
    """`ts,service,level,message` lines every 10 s over `minutes` of 10:00, then `extra` lines."""
    lines = [f"2024-05-01T10:{m:02d}:{s:02d}Z,api,INFO,served request {m}.{s}"
             for m in minutes for s in range(0, 60, 10)]
    path.write_text("ts,service,level,message\n" + "\n".join([*lines, *(extra or [])]) + "\n")
    return path


def _copied(store: TelemetryStore) -> list[str]:
    return [w for w in store.warnings if "copied" in w]


def _six_copied(first: Path, second: Path) -> str:
    """The warning for `second` copying the 6 lines of a minute `first` holds too."""
    return (f"{first} (and 1 more): 6 log lines a later file copied from an earlier one (the same time, fields and "
            f"message: files whose times overlap), counted once: 6 of {second} already in {first}")


def test_lines_a_later_file_copies_from_an_earlier_one_are_counted_once_and_said(tmp_path: Path) -> None:
    # minute files as Nezha writes them: the second repeats the first's last minute, line for line
    first = _minute_file(tmp_path / "10_00_log.csv", range(0, 2))
    second = _minute_file(tmp_path / "10_01_log.csv", range(1, 3))

    store = load_telemetry(logs=[first, second])

    assert store.fetch("SELECT count(*) AS n FROM logs")["n"][0].as_py() == 18  # 3 minutes of 6 lines
    assert _copied(store) == [_six_copied(first, second)]
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
    assert not _copied(store)


def test_two_pods_files_that_share_a_health_check_each_keep_every_line(tmp_path: Path) -> None:
    # per-pod files with no pod column: at each second both log a request of their own, and at some the same check
    def pod(name: str) -> Path:
        lines = [f"2024-05-01T10:00:{s:02d}Z,api,INFO,{'GET /health 200' if s % 20 == 0 else f'served {name} {s}'}"
                 for s in range(0, 60, 5)]
        return write_lines(tmp_path / f"{name}.csv", lines)

    store = load_telemetry(logs=[pod("a"), pod("b")])

    assert store.fetch("SELECT count(*) AS n FROM logs")["n"][0].as_py() == 24
    assert not _copied(store)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("ts,service,level,message\n" + "\n".join(lines) + "\n")
    return path


def test_the_copies_of_files_read_as_utf8_are_named_as_their_originals(tmp_path: Path) -> None:
    # a Latin-1 byte in the first file: both are read from UTF-8 copies, which the warning must not name
    first = _minute_file(tmp_path / "10_00_log.csv", range(0, 2))
    first.write_bytes(first.read_bytes() + b"2024-05-01T10:00:05Z,api,INFO,caf\xe9\n")
    second = _minute_file(tmp_path / "10_01_log.csv", range(1, 3))

    store = load_telemetry(logs=[first, second])

    assert store.fetch("SELECT count(*) AS n FROM logs")["n"][0].as_py() == 19
    assert _copied(store) == [_six_copied(first, second)]


def test_a_copy_of_a_file_with_a_line_set_aside_is_found_all_the_same(tmp_path: Path) -> None:
    # a file with a malformed line is read apart from the clean ones (skipping it): its copy is still a copy
    first = _minute_file(tmp_path / "10_00_log.csv", range(0, 2),
                         extra=["2024-05-01T10:01:55Z,api,INFO,served,one field too many"])
    second = _minute_file(tmp_path / "10_01_log.csv", range(1, 3))

    store = load_telemetry(logs=[first, second])

    assert store.fetch("SELECT count(*) AS n FROM logs")["n"][0].as_py() == 18
    assert _copied(store) == [_six_copied(first, second)]
    origins = store.fetch(f"SELECT file, line FROM ({store.log_origins_sql()}) WHERE message = 'served request 1.0'")
    assert origins.to_pylist() == [{"file": str(first), "line": 8}]


def test_a_column_named_rowid_does_not_stand_for_the_lines_dropped(tmp_path: Path) -> None:
    # an export of a database table with its `rowid`: every line's is 7, and a copied line's 7 was every line's
    def export(name: str, minutes: range) -> Path:
        lines = [f"2024-05-01T10:{m:02d}:{s:02d}Z,api,INFO,served {m}.{s},7" for m in minutes for s in range(0, 60, 10)]
        path = tmp_path / name
        path.write_text("ts,service,level,message,rowid\n" + "\n".join(lines) + "\n")
        return path

    store = load_telemetry(logs=[export("a.csv", range(0, 2)), export("b.csv", range(1, 3))])

    assert store.fetch("SELECT count(*) AS n FROM logs")["n"][0].as_py() == 18
    copied = next(w for w in store.warnings if "copied" in w)
    assert copied.endswith(f"6 of {tmp_path / 'b.csv'} already in {tmp_path / 'a.csv'}")
