"""Bad rows are set aside, never a whole file refused for a few: each unreadable line is listed with its number and
reason under <out>/rejected/, counted in analysis.json and the review, and said on stderr; a mostly unreadable file
is still one error line and exit code 2."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

from cli_helpers import incidentlens
from incidentlens.report import build_postmortem
from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.textlogs import utf8_copy


def logs_with_one_cut_line(tmp_path: Path) -> Path:
    lines = [json.dumps({"ts": f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z", "service": "api", "msg": f"req {i}"})
             for i in range(200)]
    lines[57] = '{"ts": "2024-05-01T10:00:57Z", "service": "api", "msg": "cut sh'
    path = tmp_path / "logs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def set_aside_by_analyze(logs: Path, out: Path) -> tuple[list[str], Path]:
    """`analyze --logs` through the CLI, which must succeed: its stderr lines, and where it listed the lines set
    aside."""
    result = incidentlens("analyze", "--logs", str(logs), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines(), out / "rejected" / f"{logs.name}.txt"


def test_analyze_sets_the_line_aside_lists_it_and_counts_it(tmp_path: Path) -> None:
    logs = logs_with_one_cut_line(tmp_path)
    out = tmp_path / "out"

    stderr, listing = set_aside_by_analyze(logs, out)

    assert stderr == [f"warning: 1 of 200 records of logs.jsonl unreadable (line 58), set aside: see {listing}"]
    assert listing.read_text().splitlines()[1:] == ['58\tnot valid JSON\t{"ts": "2024-05-01T10:00:57Z", '
                                                    '"service": "api", "msg": "cut sh']
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["data_quality"] == [{
        "file": str(logs), "records": 200, "unreadable": 1, "first_line": 58,
        "note": "1 of 200 records of logs.jsonl unreadable (line 58): see rejected/logs.jsonl.txt"}]
    review = build_postmortem(analysis)
    assert review.data_quality == ["1 of 200 records of logs.jsonl unreadable (line 58): see rejected/logs.jsonl.txt"]


def test_the_review_of_a_found_incident_says_which_lines_were_set_aside(tmp_path: Path) -> None:
    day = tmp_path / "day"
    generated = incidentlens("generate", "--scenario", "seed-tutorial", "--hours", "3", "--format", "jsonl",
                             "--out", str(day))
    assert generated.returncode == 0, generated.stderr
    with (day / "logs.jsonl").open("a") as logs:
        logs.write('{"ts": "2024-05-01T10:00:57Z", "service": "api", "msg": "cut sh\n')
    out = tmp_path / "out"

    result = incidentlens("analyze", "--metrics", str(day / "metrics.jsonl"), "--logs", str(day / "logs.jsonl"),
                          "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert incidentlens("report", "--analysis", str(out / "analysis.json"), "--out", str(out)).returncode == 0

    assert json.loads((out / "analysis.json").read_text())["detected"]
    markdown, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "## Data quality" in markdown and "records of logs.jsonl unreadable" in markdown
    assert '<section id="data-quality">' in page and "records of logs.jsonl unreadable" in page


def test_a_command_without_out_still_says_it_on_one_stderr_line(tmp_path: Path) -> None:
    logs = logs_with_one_cut_line(tmp_path)

    result = incidentlens("sql", "SELECT count(*) AS n FROM logs", "--logs", str(logs), "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [[199]]
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        "warning: 1 of 200 records of logs.jsonl unreadable (line 58), set aside"]


def test_a_mostly_garbage_file_is_one_error_line_and_exit_code_2(tmp_path: Path) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text('{"ts": "2024-05-01T10:00:00Z", "msg": "ok"}\n' + "\x1b[31mnot json at all\n" * 9)

    result = incidentlens("analyze", "--logs", str(logs), "--out", str(tmp_path / "out"))

    assert result.returncode == 2
    assert result.stderr == (f"error: {logs}: cannot read as JSON lines: 9 of 10 lines unreadable "
                             "(line 2: not valid JSON)\n")


def test_a_log_line_with_bytes_that_are_not_utf8_is_kept_whatever_the_format(tmp_path: Path) -> None:
    # one Latin-1 word or binary payload made DuckDB refuse the whole file (CSV) or crash the run (text, JSON lines)
    bad = "caf\xe9 \xff".encode("latin-1")
    files = {
        "api.log": b"2024-05-01 10:00:00 INFO ok\n2024-05-01 10:01:00 ERROR " + bad
                   + b"\n2024-05-01 10:02:00 INFO ok\n",
        "logs.csv": b"ts,service,level,message\n2024-05-01T10:00:00Z,api,INFO,ok\n"
                    b"2024-05-01T10:01:00Z,api,ERROR," + bad + b"\n2024-05-01T10:02:00Z,api,INFO,ok\n",
        "logs.jsonl": b'{"ts": "2024-05-01T10:00:00Z", "service": "api", "msg": "ok"}\n'
                      b'{"ts": "2024-05-01T10:01:00Z", "service": "api", "msg": "' + bad + b'"}\n',
    }
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        out = tmp_path / f"out-{name}"

        result = incidentlens("analyze", "--logs", str(path), "--out", str(out))

        assert result.returncode == 0, result.stderr
        line = 2 if name != "logs.csv" else 3
        assert (f"warning: {path}: 2 byte sequence(s) that are not UTF-8, the first on line {line}, read as U+FFFD "
                "(the lines are kept)") in result.stderr
        assert "Traceback" not in result.stderr


def test_a_file_read_through_its_utf8_copy_is_named_by_its_own_name_in_what_was_set_aside(tmp_path: Path) -> None:
    # the listing, the warning and data_quality named the temporary copy (`tmpq2x8-logs.jsonl`, under /tmp)
    logs = logs_with_one_cut_line(tmp_path)
    logs.write_bytes(logs.read_bytes().replace(b"req 3", "caf\xe9".encode("latin-1")))
    out = tmp_path / "out"

    stderr, listing = set_aside_by_analyze(logs, out)

    assert stderr[1:] == [f"warning: 1 of 200 records of logs.jsonl unreadable (line 58), set aside: see {listing}"]
    assert listing.read_text().splitlines()[0].startswith(f"# {logs}: 1 of 200 records of logs.jsonl unreadable")
    assert json.loads((out / "analysis.json").read_text())["data_quality"][0]["file"] == str(logs)


def test_a_mostly_garbage_file_read_through_its_utf8_copy_is_named_in_the_error(tmp_path: Path) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_bytes('{"ts": "2024-05-01T10:00:00Z", "msg": "caf\xe9"}\nnot json\nnor this\n'.encode("latin-1"))

    result = incidentlens("analyze", "--logs", str(logs), "--out", str(tmp_path / "out"))

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (f"error: {logs}: cannot read as JSON lines: 2 of 3 lines unreadable "
                                              "(line 2: not valid JSON)")


def test_a_csv_line_not_utf8_beside_a_malformed_one_is_kept_and_only_the_malformed_one_set_aside(
        tmp_path: Path) -> None:
    # the Latin-1 line was set aside as "Invalid unicode" with the cut one; with only those two, "no rows"
    logs = tmp_path / "logs.csv"
    logs.write_bytes(b"ts,service,level,message\n2024-05-01T10:00:00Z,api,ERROR,caf\xe9 down\n"
                     b"2024-05-01T10:00:30Z,api,INFO,ok\n2024-05-01T10:01:00Z,api,INFO,\"cut sh\n")
    out = tmp_path / "out"

    stderr, listing = set_aside_by_analyze(logs, out)

    assert stderr == [f"warning: {logs}: 1 byte sequence(s) that are not UTF-8, the first on line 2, read as U+FFFD "
                      "(the lines are kept)",
                      f"warning: 1 of 3 records of logs.csv unreadable (line 4), set aside: see {listing}"]
    assert listing.read_text().splitlines()[1:] == ['4\tValue with unterminated quote found.\t'
                                                    '2024-05-01T10:01:00Z,api,INFO,"cut sh']


def test_a_csv_line_not_utf8_after_a_malformed_one_is_kept_not_dropped_uncounted(tmp_path: Path) -> None:
    # the reader skipping malformed lines checked the bytes of none of the columns a count of rows reads: the
    # Latin-1 line was neither listed nor kept (2 of 4 entries, 1 set aside), and `templates` ended in a traceback
    logs = tmp_path / "logs.csv"
    logs.write_bytes(b"ts,service,level,message\n2024-05-01T10:00:00Z,api,INFO,ok\n"
                     b"2024-05-01T10:00:30Z,api,INFO,too,many,fields\n2024-05-01T10:01:00Z,api,ERROR,caf\xe9 down\n"
                     b"2024-05-01T10:01:30Z,api,INFO,ok\n")
    out = tmp_path / "out"

    result = incidentlens("templates", "--logs", str(logs), "--out", str(out))

    assert result.returncode == 0, result.stderr
    listing = out / "rejected" / "logs.csv.txt"
    assert result.stderr.splitlines() == [
        f"warning: {logs}: 1 byte sequence(s) that are not UTF-8, the first on line 4, read as U+FFFD (the lines are "
        "kept)", f"warning: 1 of 4 records of logs.csv unreadable (line 3), set aside: see {listing}"]
    assert "2 templates over 3 entries" in result.stdout
    assert listing.read_text().splitlines()[1:] == [
        "3\tExpected Number of Columns: 4 Found: 6\t2024-05-01T10:00:30Z,api,INFO,too,many,fields"]


def test_a_utf8_copy_keeps_a_character_cut_by_a_chunk_boundary_and_counts_what_it_replaced(tmp_path: Path) -> None:
    path = tmp_path / "big.log.gz"
    text = "a" * ((1 << 20) - 1) + "é\n" + "line two \udcff ok\n"  # é straddles the first 1 MiB read
    with gzip.open(path, "wb") as handle:
        handle.write(text.encode("utf-8", errors="surrogateescape"))

    copy = utf8_copy(path, tmp_path)

    assert copy.path.read_text(encoding="utf-8") == text.replace("\udcff", "\ufffd")
    assert (copy.replaced, copy.first_line) == (1, 2)


def test_a_utf8_copy_of_a_highly_compressed_file_holds_a_few_mib_at_a_time(tmp_path: Path) -> None:
    # one line repeated: 32 MiB in under 100 KiB of gzip, which was unzipped into memory at once
    path = tmp_path / "heartbeat.log.gz"
    text = b"2024-05-01 10:00:00 INFO heartbeat ok\n" * ((32 << 20) // 38) + b"caf\xe9\n"
    path.write_bytes(gzip.compress(text, 1))

    tracemalloc.start()
    try:
        copy = utf8_copy(path, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 16 << 20
    assert copy.path.stat().st_size == len(text) + 2  # the Latin-1 byte as U+FFFD, three bytes
    assert copy.replaced == 1


def test_utf8_copies_of_files_named_alike_never_overwrite_each_other_or_a_file_in_the_folder(
        tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "1-app.log").write_text("someone else's\n")  # numbering copies by the folder's size would take this
    copies = []
    for day in ("mon", "tue"):
        (tmp_path / day).mkdir()
        (tmp_path / day / "app.log").write_bytes(f"{day} caf\xe9\n".encode("latin-1"))
        copies.append(utf8_copy(tmp_path / day / "app.log", scratch))
    assert [c.path.read_text(encoding="utf-8") for c in copies] == ["mon caf\ufffd\n", "tue caf\ufffd\n"]
    assert all(c.path.parent == scratch and c.path.name.endswith("-app.log") for c in copies)
    assert (scratch / "1-app.log").read_text() == "someone else's\n"


def test_json_lines_that_are_not_objects_are_set_aside_not_the_whole_file_refused(tmp_path: Path) -> None:
    lines = [json.dumps({"ts": f"2024-05-01T10:00:{i:02d}Z", "service": "api", "msg": f"req {i}"})
             for i in range(50)]
    lines[5], lines[9] = "[1, 2]", "42"
    logs = tmp_path / "logs.jsonl"
    logs.write_text("\n".join(lines) + "\n")

    stderr, listing = set_aside_by_analyze(logs, tmp_path / "out")

    # "(line 6)" read as if line 6 were the only one
    assert stderr == [f"warning: 2 of 50 records of logs.jsonl unreadable (the first on line 6), set aside: see "
                      f"{listing}"]
    assert listing.read_text().splitlines()[1:] == ["6\tnot a JSON object\t[1, 2]", "10\tnot a JSON object\t42"]


def test_a_ragged_csv_line_is_said_on_one_stderr_line(tmp_path: Path) -> None:
    rows = [f"2024-05-01T10:00:{i:02d}Z,api,req {i}" for i in range(50)]
    rows[8] = "2024-05-01T10:00:08Z,api,req 8,extra"
    logs = tmp_path / "logs.csv"
    logs.write_text("ts,service,msg\n" + "\n".join(rows) + "\n")

    stderr, listing = set_aside_by_analyze(logs, tmp_path / "out")

    # a second line, 'malformed lines set aside; the first: ...', said the same again
    assert stderr == [f"warning: 1 of 50 records of logs.csv unreadable (line 10), set aside: see {listing}"]
    assert listing.read_text().splitlines()[1].startswith("10\tExpected Number of Columns: 3 Found: 4")


def test_a_bad_time_in_json_lines_with_a_line_set_aside_is_named_by_its_file_line(tmp_path: Path) -> None:
    # the first bad time was looked for by reading the file again, strictly: a traceback on the cut line
    logs = logs_with_one_cut_line(tmp_path)
    lines = logs.read_text().splitlines()
    lines[80] = json.dumps({"ts": "yesterday", "service": "api", "msg": "req 80"})
    lines[90] = json.dumps({"ts": None, "service": "api", "msg": "req 90"})
    logs.write_text("\n".join(lines) + "\n")

    stderr, listing = set_aside_by_analyze(logs, tmp_path / "out")

    assert stderr == [
        f"warning: {logs}: column 'ts': 1 row with a bad time left out; the first, row 81: cannot parse "
        "'yesterday' as a time (the column's other values read as ISO-8601 text)",
        f"warning: {logs}: column 'ts': 1 row has no time, left out; the first, row 91",
        f"warning: 1 of 200 records of logs.jsonl unreadable (line 58), set aside: see {listing}",
    ]


def test_a_bad_time_in_the_second_of_two_json_lines_files_with_lines_set_aside_names_that_file(
        tmp_path: Path) -> None:
    first = logs_with_one_cut_line(tmp_path)
    second = tmp_path / "logs2.jsonl"
    lines = first.read_text().replace("2024-05-01T10:", "2024-05-01T11:").splitlines()
    lines[120] = json.dumps({"ts": "yesterday", "service": "api", "msg": "req 120"})
    second.write_text("\n".join(lines) + "\n")

    result = incidentlens("analyze", "--logs", str(tmp_path / "logs*.jsonl"), "--out", str(tmp_path / "out"))

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"warning: {first} (and 1 more): column 'ts': 1 row with a bad time left out; the first, {second} row 121: "
        "cannot parse 'yesterday' as a time (the column's other values read as ISO-8601 text)")


def test_a_bad_time_after_a_csv_line_set_aside_is_named_by_its_own_row(tmp_path: Path) -> None:
    # the rows were counted past the lines set aside as if these were not there: 'row 20' named the row before
    rows = [f"2024-05-01T10:00:{i:02d}Z,api,req {i}" for i in range(50)]
    rows[8], rows[9] = "2024-05-01T10:00:08Z,api,req 8,extra", "2024-05-01T10:00:09Z,api,req 9,extra"
    rows[20], rows[30] = "yesterday,api,req 20", ",api,req 30"
    logs = tmp_path / "logs.csv"
    logs.write_text("ts,service,msg\n" + "\n".join(rows) + "\n")

    stderr, listing = set_aside_by_analyze(logs, tmp_path / "out")

    assert stderr == [
        f"warning: {logs}: column 'ts': 1 row with a bad time left out; the first, row 21: cannot parse "
        "'yesterday' as a time (the column's other values read as ISO-8601 text)",
        f"warning: {logs}: column 'ts': 1 row has no time, left out; the first, row 31",
        f"warning: 2 of 50 records of logs.csv unreadable (the first on line 10), set aside: see {listing}",
    ]


def test_a_bad_time_in_the_second_of_two_csv_files_with_a_line_set_aside_names_that_file(tmp_path: Path) -> None:
    # 'a.csv (and 1 more): ...; the first, row 3': a.csv has two rows, and b.csv went unnamed
    header = "ts,service,msg\n"
    (tmp_path / "a.csv").write_text(header + "2024-05-01T10:00:00Z,api,a\n2024-05-01T10:00:01Z,api,b\n")
    second = tmp_path / "b.csv"
    second.write_text(header + "2024-05-01T10:00:02Z,api,c\n2024-05-01T10:00:03Z,api,d,extra\n"
                               "yesterday,api,e\n2024-05-01T10:00:04Z,api,f\n")

    store = load_telemetry(logs=str(tmp_path / "*.csv"))

    assert store.warnings[0] == (f"{second}: column 'ts': 1 row with a bad time left out; the first, row 3: cannot "
                                 "parse 'yesterday' as a time (the column's other values read as ISO-8601 text)")
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 4}]


def test_elements_of_a_json_array_that_are_not_objects_are_set_aside_by_their_number(tmp_path: Path) -> None:
    # the whole file was refused, '1 of 1 lines unreadable (line 1: not a JSON object)', or pretty-printed '248 of
    # 248 lines unreadable (line 1: not valid JSON)', of a file of valid JSON with one element of another kind
    records: list[object] = [{"ts": f"2024-05-01T10:00:{i:02d}Z", "service": "api", "msg": f"req {i}"}
                             for i in range(50)]
    records[5], records[9] = 42, [1, 2]
    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps(records, indent=2))

    stderr, listing = set_aside_by_analyze(logs, tmp_path / "out")

    assert stderr == [f"warning: 2 of 50 records of logs.json unreadable (the first on element 6), set aside: see "
                      f"{listing}"]
    assert listing.read_text().splitlines()[1:] == ["6\tnot a JSON object\t42", "10\tnot a JSON object\t[1,2]"]
