"""UTF-16 (and UTF-32) text, as Windows PowerShell 5 writes it (`ConvertTo-Json | Out-File`, `>`): read as its UTF-8
form would be, the file named as given in every message.

Every fixture is written here: the UTF-8 text of a file, then its bytes in the wide encoding with its byte-order mark.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry
from test_windows_events import READ, logs, powershell_5_json

WIDE = [pytest.param(codecs.BOM_UTF16_LE, "utf-16-le", id="utf-16-le"),
        pytest.param(codecs.BOM_UTF16_BE, "utf-16-be", id="utf-16-be"),
        pytest.param(codecs.BOM_UTF32_LE, "utf-32-le", id="utf-32-le")]


def widened(path: Path, mark: bytes, codec: str) -> Path:
    """The file rewritten in `codec` with its byte-order mark, its lines ending as on Windows (CRLF)."""
    text = path.read_text().replace("\n", "\r\n")
    path.write_bytes(mark + text.encode(codec))
    return path


@pytest.mark.parametrize(("mark", "codec"), WIDE)
def test_windows_events_powershell_5_wrote_with_out_file_read_as_their_utf8_form(tmp_path: Path, mark, codec) -> None:
    # `Get-WinEvent -LogName System | ConvertTo-Json | Out-File events.json`: it was "UTF-16 text, which IncidentLens
    # does not read: convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)"
    path = widened(powershell_5_json(tmp_path / "events.json"), mark, codec)

    assert logs(path) == READ


@pytest.mark.parametrize(("name", "header", "line"), [
    ("export.csv", "ts,service,message\n", "2024-05-01T10:0{n}:00Z,api,ERROR upstream reset\n"),
    ("app.log", "", "2024-05-01T10:0{n}:00Z ERROR upstream reset\n"),
    ("app.jsonl", "", '{{"ts": "2024-05-01T10:0{n}:00Z", "service": "api", "message": "ERROR upstream reset"}}\n'),
])
def test_csv_text_and_json_lines_in_utf16_read_as_in_utf8(tmp_path: Path, name: str, header: str, line: str) -> None:
    plain, wide = tmp_path / "plain" / name, tmp_path / "wide" / name
    for path in (plain, wide):
        path.parent.mkdir()
        path.write_text(header + "".join(line.format(n=n) for n in range(3)))
    widened(wide, codecs.BOM_UTF16_LE, "utf-16-le")
    query = "SELECT ts, service, level, message FROM logs"

    store = load_telemetry(logs=wide)

    assert store.fetch(query).to_pylist() == load_telemetry(logs=plain).fetch(query).to_pylist()
    assert store.warnings == []
    assert store.fetch(store.log_origins_sql()).column("file").to_pylist() == [str(wide)] * 3


def test_a_wide_files_bad_rows_and_bytes_are_said_of_the_file_given(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "ts,service,rps\r\n2024-05-01T10:00:00Z,api,1\r\n10h03,api,2\r\n"
                     "2024-05-01T10:02:00Z,api,3\r\n2024-05-01T10:03:00Z,api".encode("utf-16-le")
                     + b"\x00\xd8"  # a lone surrogate: no UTF-16 character
                     + ",4\r\n".encode("utf-16-le"))

    store = load_telemetry(metrics=path)

    assert store.fetch("SELECT count(*) AS n FROM metrics").to_pylist() == [{"n": 3}]
    assert store.warnings == [
        f"{path}: 1 byte sequence(s) that are not UTF-16, the first on line 5, read as U+FFFD (the lines are kept)",
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 2: cannot parse '10h03' as a time "
        "(the column's other values read as ISO-8601 text)"]


def test_a_wide_files_refusal_names_the_file_given(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "when,what\r\n10h03,up\r\n".encode("utf-16-le"))

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)

    assert str(refused.value).startswith(f"{path}: no time column (looked for ts, time, ")
    assert str(refused.value).endswith("; its columns: when, what; use --map time=COLUMN")


def test_a_wide_file_of_a_header_alone_says_it_has_no_rows_of_the_file_given(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "ts,msg\n".encode("utf-16-le"))

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)

    assert str(refused.value) == f"{path}: no rows (the file is empty or has only a header)"
