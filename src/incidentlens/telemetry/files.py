"""Input files -> DuckDB table functions: path and glob resolution, format detection, one reader per file shape.

Every reader yields VARCHAR columns for text formats (CSV, JSON lines) so that typing is decided in one place
(`views.py`) with TRY_CAST and bad values are counted instead of failing a query halfway through an analysis.
Parquet keeps its own types.
"""

from __future__ import annotations

import csv
import glob
import itertools
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import duckdb

from incidentlens.errors import InputError
from incidentlens.telemetry.apianswers import api_answer_kind
from incidentlens.telemetry.cloudwatch import starts_cloudwatch
from incidentlens.telemetry.columns import (
    CANDIDATES,
    ORIGIN_FILE,
    ORIGIN_LINE,
    json_pointer,
    literal,
    normalise,
    quote,
)
from incidentlens.telemetry.datadog import starts_datadog_logs
from incidentlens.telemetry.fluentbit import starts_fluent_bit
from incidentlens.telemetry.jaeger import starts_jaeger
from incidentlens.telemetry.kubeevents import refuse_unread_events, starts_kube_events
from incidentlens.telemetry.textlogs import (
    GZIP_CUT_SHORT,
    MAX_LINE_BYTES,
    NOT_GZIP,
    UNKNOWN,
    cut_short,
    detect_line_format,
    first_bytes,
    lines_sql,
    not_utf8,
    open_bytes,
    open_text,
    refuse_unread_format,
    refused_line,
    sample_lines,
)
from incidentlens.telemetry.words import counted
from incidentlens.telemetry.zipkin import starts_zipkin

PathLike = str | Path
PathsArg = PathLike | Sequence[PathLike] | None

_FORMATS_BY_SUFFIX = {
    ".csv": "csv", ".tsv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
}
# Plain-text logs, unless they hold JSON lines; any other suffix is sniffed (`_sniff_text`).
_TEXT_SUFFIXES = (".log", ".out", ".err", ".syslog", ".messages")
# Where DuckDB's CSV errors turn from the problem to advice and context.
_DUCKDB_ADVICE = ("Possible", "*", "file =")
_DELIMITERS = (",", "\t", ";", "|")
JSON_FULL_SCHEMA_BYTES = 64 << 20
#: a file with more unreadable records than this share is refused (one error line), not read in part
MAX_UNREADABLE_SHARE = 0.5
_JSON_TABLES = itertools.count()

_FORMAT_NAMES = {"csv": "CSV", "parquet": "Parquet", "jsonl": "JSON lines", "json": "JSON", "text": "text log",
                 "otlp": "OTLP JSON", "jaeger": "Jaeger JSON", "zipkin": "Zipkin JSON",
                 "prometheus": "Prometheus API JSON", "loki": "Loki API JSON",
                 "failed": "failed API answer JSON", "cloudwatch": "CloudWatch Logs JSON",
                 "kubeevents": "Kubernetes events JSON", "datadog": "Datadog Logs API JSON",
                 "fluentbit": "Fluent Bit out_file"}
# A line of Prometheus' text exposition format: `# HELP`/`# TYPE` (or another comment), or a sample:
# `name{label="value",...} value [timestamp in ms]`, or its name among its labels as `promtool tsdb dump` writes it,
# `{__name__="name", label="value"} value timestamp`
_PROMETHEUS_LINE = re.compile(
    r"#.*|(?:[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?|\{[^}]*\})[ \t]+"
    r"(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|[-+]?Inf|NaN)(?:[ \t]+-?\d+)?[ \t]*")
#: Grafana Tempo's answer for a trace, OTLP's resource spans as `batches` (`/api/traces/<id>`) or under `trace`
#: (`/api/v2/traces/<id>`); or an empty one (`{"batches": []}`, `{"trace": {}}`)
TEMPO_TRACE = re.compile(rb'^\s*\{\s*("batches"\s*:\s*\[\s*(\{\s*"(resource|scopeSpans|instrumentationLibrarySpans)"'
                         rb'|\])|"trace"\s*:\s*\{\s*("resourceSpans"|\}))')
# A CSV header's delimiter repeats as often on at least this share of the lines after it.
_CSV_CONSISTENCY = 0.8
# formats read into a table of their events, one a line or a document's (`kubeevents.py`, `datadog.py`,
# `fluentbit.py`)
_READ_AS_EVENTS = ("kubeevents", "datadog", "fluentbit")
# formats of a file read into a table of rows, which is all there is to read them from (no reader takes the file as
# rows): a plain-text log's entries, OTLP, Jaeger and Zipkin spans, a saved CloudWatch answer's events, a saved
# Prometheus or Loki answer's rows (an Arrow table, `table`), and the events above
_READ_INTO_TABLES = ("text", "otlp", "jaeger", "zipkin", "cloudwatch", "table", *_READ_AS_EVENTS)


@dataclass(frozen=True)
class RejectedRows:
    """The records of one file that could not be read and were set aside: (line, reason, text) each, the 1-based
    line of the file the record starts on. A record is a JSON line, or a CSV row, whose quoted values may span lines
    (a stack trace in a message): `records` counts them, not the file's lines."""

    file: str
    records: int
    rows: tuple[tuple[int, str, str], ...]
    # lines lost unlisted: read into an unterminated quote's value (the reader lists only the line it starts on),
    # each counted as a record
    swallowed: int = 0
    unit: str = "line"  # what a row's number counts: a line, or an element of a JSON array

    @property
    def first_line(self) -> int:
        return self.rows[0][0]

    @property
    def unreadable(self) -> int:
        return len(self.rows) + self.swallowed

    def note(self) -> str:
        """`1 of 200 records of logs.jsonl unreadable (line 58)`; of several, `(the first on line 6)`."""
        where = f"{self.unit} {self.first_line}"
        where = where if len(self.rows) == 1 else f"the first on {where}"
        if self.swallowed:
            lines = counted(self.swallowed, 'more line')
            where += f"; {lines} read into an unterminated quote's value, each taken as a record"
        return (f"{self.unreadable:,} of {counted(self.records, 'record')} of {Path(self.file).name} unreadable "
                f"({where})")

    @property
    def listing_name(self) -> str:
        """The file name under `<out>/rejected/`."""
        return f"{Path(self.file).name}.txt"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "records": self.records, "unreadable": self.unreadable,
                "first_line": self.first_line, "note": f"{self.note()}: see rejected/{self.listing_name}"}

    def listing(self) -> str:
        """The text of `<out>/rejected/<file>.txt`: one line per record set aside, its line, reason and text."""
        header = (f"# {self.file}: {self.note()}; each line: the record's {self.unit} number, reason, the record as "
                  "read\n")
        return header + "".join(f"{line}\t{reason}\t{text}\n" for line, reason, text in self.rows)


@dataclass(frozen=True)
class Repeat:
    """A column name given again, in any case: as the reader names the repeat (`message_1`), as the source spells
    both, and where both are (1-based columns; 0 for JSON keys, which have no place)."""

    kept_as: str
    name: str
    first_name: str
    column: int = 0
    first: int = 0

    def describe(self) -> str:
        """`two columns are named 'p95' (columns 3 and 4)`, `two keys are named 'Message' and 'message'`."""
        names = repr(self.name) if self.name == self.first_name else f"{self.first_name!r} and {self.name!r}"
        if not self.column:
            return f"two keys are named {names}"
        return f"two columns are named {names} (columns {self.first} and {self.column})"


@dataclass(frozen=True)
class Source:
    """One relation to canonicalise: files of one format and shape, or an in-database table, named for messages."""

    label: str
    files: tuple[Path, ...] = ()
    fmt: str = "table"
    table: str | None = None
    text_columns: tuple[str, ...] = ()  # columns or JSON fields, all read as VARCHAR (filled by `with_schema`)
    number_columns: frozenset[str] = frozenset()  # CSV: those of them read as DOUBLE instead (metric values)
    delimiter: str = ","
    skip_malformed: bool = False  # CSV: skip (counted) malformed lines instead of failing
    set_aside: tuple[tuple[str, tuple[int, ...]], ...] = ()  # CSV skipping them: each file's lines set aside
    repeated: tuple[Repeat, ...] = ()  # CSV, Parquet, JSON read line by line: names given twice
    skip: int = 0  # CSV: the comment lines (`# ...`) and blank ones above its files' header (`csv_preamble`)

    @property
    def format_name(self) -> str:
        return _FORMAT_NAMES.get(self.fmt, self.fmt)

    @property
    def from_sql(self) -> str:
        """The FROM item reading this source."""
        return self.table or reader_sql(self)

    def for_file(self, path: Path) -> Source:
        """The same reader over one of its files (to locate a bad row)."""
        return replace(self, label=str(path), files=(path,))


def reader_sql(source: Source, extra_options: str = "") -> str:
    """The DuckDB table function reading the source's files; text columns already known skip re-sniffing."""
    file_list = _file_list(source.files)
    columns = "{" + ", ".join(f"{literal(n)}: '{'DOUBLE' if n in source.number_columns else 'VARCHAR'}'"
                              for n in source.text_columns) + "}"
    if source.fmt == "csv" and source.text_columns:
        # Files of one group share a header, so one header read (in `with_schema`) serves every query and file.
        # DuckDB's parallel CSV reader loses good rows after a malformed one, so skipping is single-threaded.
        skipping = ", ignore_errors=true, parallel=false" if source.skip_malformed else ""
        skipping += f", skip={source.skip}" if source.skip else ""
        return (f"read_csv({file_list}, auto_detect=false, header=true, delim={literal(source.delimiter)}, "
                f"quote='\"', escape='\"', columns={columns}{skipping}, {_LINE_SIZE}{extra_options})")
    if source.fmt == "csv":
        skip = f", skip={source.skip}" if source.skip else ""
        return f"read_csv({file_list}, all_varchar=true, header=true{skip}, {_LINE_SIZE})"
    if source.fmt == "parquet":
        return f"read_parquet({file_list}, union_by_name=true)"
    typed = f", columns={columns}" if source.text_columns else ""
    return f"read_json({file_list}, format='{_json_format(source)}', union_by_name=true{typed}{extra_options})"


#: a CSV record may be as long as a plain-text log's line (a stack trace, a payload logged whole); DuckDB's default
#: is 2 MB
_LINE_SIZE = f"max_line_size={MAX_LINE_BYTES}"


def _json_format(source: Source) -> str:
    return "newline_delimited" if source.fmt == "jsonl" else "auto"


def is_malformed_csv(source: Source, err: duckdb.Error) -> bool:
    """True for a CSV structure error (a ragged row, an unterminated quote) that skipping lines could get past."""
    return source.fmt == "csv" and not source.skip_malformed and "CSV Error on Line" in str(err)


def split_malformed(
    con: duckdb.DuckDBPyConnection, source: Source, err: duckdb.Error, suspects: tuple[Path, ...] = ()
) -> tuple[list[Source], list[RejectedRows]]:
    """The source as parts that read: its clean files as before, the files with malformed records skipping them
    (single-threaded, see `reader_sql`); and the records set aside, per file. `suspects`: the files to look for
    malformed records in (none: every file); the others are taken to read, which the caller must check by reading
    them (the clean part), as the parts are otherwise not those of every file looked at.

    Records set aside are real-world noise, e.g. a log line cut short. A file with more than MAX_UNREADABLE_SHARE of
    its records lost is not the CSV it looks like (an unterminated quote swallows the rest of a file), and that is
    an InputError naming the first bad line. Records are counted, those read and those listed (a quoted value may
    span lines; a blank line is none), and each line a quote left open swallowed as one, since DuckDB lists none of
    them.
    """
    if not_utf8(err):  # the tolerant reader skips such a line unlisted: read from a UTF-8 copy instead
        raise read_error(source, err)
    tolerant = replace(source, skip_malformed=True)
    looked_at = replace(source, files=suspects) if suspects else source
    listed = _rejected_lines(con, replace(looked_at, skip_malformed=True))
    cut = _cut_short(con, looked_at, replace(looked_at, skip_malformed=True), listed)
    rejected = sorted(listed + cut, key=lambda row: (row[0], row[1]))
    if not rejected:
        raise read_error(source, err)
    file, line, reason, _ = rejected[0]
    first = f"{file}: cannot read as CSV: line {line}: {reason}"
    for name, number, why, _ in rejected:
        if not_utf8(why):
            # a line with bytes that are not UTF-8 is kept (read from a UTF-8 copy), not set aside as malformed
            raise InputError(f"{name}: cannot read as CSV: line {number}: {why}")
    bad_files = sorted({Path(path) for path, _, _, _ in rejected})
    set_aside = []
    for path in bad_files:
        # one row per line (DuckDB may report a line twice, once per problem), its first reason
        rows = {int(n): (int(n), str(why), str(text or "")) for name, n, why, text in reversed(rejected)
                if Path(name) == path}
        # a quote open to the end (DuckDB lists no line): the lines after the one it starts on
        swallowed = next((_data_lines(path) + 1 - n for name, n, _, _ in cut if Path(name) == path), 0)
        kept = con.execute(f"SELECT count(*) FROM {tolerant.for_file(path).from_sql}").fetchall()[0][0]
        records = kept + len(rows) + swallowed
        if records - kept > MAX_UNREADABLE_SHARE * records:
            raise InputError(f"{first} ({records - kept:,} of {counted(records, 'record')} unreadable)")
        set_aside.append(RejectedRows(str(path), records, tuple(rows[n] for n in sorted(rows)), swallowed=swallowed))
    clean = tuple(path for path in source.files if path not in bad_files)
    parts = [replace(source, files=clean)] if clean else []
    lines = tuple((rows.file, tuple(line for line, _, _ in rows.rows)) for rows in set_aside)
    # named by its own files: a bad time's row, say, is one of theirs, not of the group's first file
    parts.append(replace(tolerant, label=files_label(bad_files), files=tuple(bad_files), set_aside=lines))
    return parts, set_aside


#: DuckDB's reason for a quote left open, said for the record it skips without listing
UNTERMINATED_QUOTE = "Value with unterminated quote found."


def _cut_short(
    con: duckdb.DuckDBPyConnection, source: Source, tolerant: Source, listed: list[tuple[str, int, str, str]]
) -> list[tuple[str, int, str, str]]:
    """(file, line, reason, text) of each record DuckDB skips without listing it among its rejects: one whose quote
    is left open to the end of its file, as in a last line cut short while the file was written, whether or not
    other records of the file were listed. Looked for in every file with a listed record, and in each of the others
    when they do not read together."""
    with_listed = {Path(name) for name, *_ in listed}
    others = tuple(path for path in source.files if path not in with_listed)
    unread = [path for path in others if not _reads(con, source.for_file(path))] \
        if others and not _reads(con, replace(source, files=others)) else []
    found = []
    for path in [*sorted(with_listed), *unread]:
        after = max((line for name, line, *_ in listed if Path(name) == path), default=0)
        line = _open_quote_line(con, tolerant.for_file(path), after)
        if line:
            found.append((str(path), line, UNTERMINATED_QUOTE, _file_line(path, line)))
    return found


def _reads(con: duckdb.DuckDBPyConnection, source: Source) -> bool:
    try:
        con.execute(f"SELECT count(*) FROM {source.from_sql}").fetchall()
    except duckdb.Error:
        return False
    return True


def _open_quote_line(con: duckdb.DuckDBPyConnection, tolerant: Source, after: int) -> int:
    """The line of the one file of `tolerant` on which a record starts whose quote is left open to its end, or 0.

    A lenient reader reads such a quote's value to the end of the file, so its last record is not the tolerant
    reader's last row, and starts as many lines before the file's last as its values hold line breaks (DuckDB's
    line numbers count records, not a quoted value's lines). A lenient reader that took a stray quote on a listed
    line for an opening one reads from that line to the end as well: a record starting on or before the last line
    listed (`after`) is that one's, not one cut short."""
    lenient = reader_sql(tolerant, ", null_padding=true, strict_mode=false")
    try:
        last = _last_row(con, lenient)
        if last is None or last == _last_row(con, tolerant.from_sql):
            return 0
    except duckdb.Error:
        return 0
    line = _data_lines(tolerant.files[0]) + 1 - sum(str(value).count("\n") for value in last if value)
    return line if line > after else 0


def _last_row(con: duckdb.DuckDBPyConnection, reader: str) -> tuple[object, ...] | None:
    """The last row a reader reads (single-threaded readers keep the file's order)."""
    rows = con.execute(f"SELECT * EXCLUDE (_incidentlens_record) FROM (SELECT row_number() OVER () AS "
                       f"_incidentlens_record, * FROM {reader}) ORDER BY _incidentlens_record DESC LIMIT 1").fetchall()
    return rows[0] if rows else None


def _file_line(path: Path, number: int) -> str:
    """The text of the file's line `number` (1-based, the header is line 1)."""
    with open_text(path) as handle:
        return next(itertools.islice(handle, number - 1, None), "").rstrip("\n")


def _rejected_lines(con: duckdb.DuckDBPyConnection, tolerant: Source) -> list[tuple[str, int, str, str]]:
    """(file, line, reason, text) of every line DuckDB rejects, in file and line order."""
    rejects, scans = "_incidentlens_rejects", "_incidentlens_reject_scans"
    options = f", store_rejects=true, rejects_table='{rejects}', rejects_scan='{scans}'"
    try:
        # fetchall, not fetchone: DuckDB writes the rejects tables when the result is fully consumed. Every column
        # counted, not the rows: the reader checks a value's bytes are UTF-8 only in the columns read, so a count of
        # rows skipped such a line unlisted (and the rows read from the file were one short of those counted).
        con.execute(f"SELECT count(COLUMNS(*)) FROM {reader_sql(tolerant, options)}").fetchall()
        # a line listed once per problem (a ragged one as `Found: 5`, `Found: 6`, `Found: 7` columns): the one
        # furthest into it first, which `split_malformed` keeps, the same on every run
        found = con.execute(
            f"SELECT file_path, line, error_message, csv_line, line_byte_position FROM (SELECT DISTINCT "
            f"s.file_path, r.line, r.error_message, r.csv_line, r.line_byte_position, r.byte_position FROM {rejects} r "
            f"JOIN {scans} s USING (scan_id, file_id)) ORDER BY file_path, line, byte_position DESC, error_message"
        ).fetchall()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {scans}")
    # DuckDB numbers records (a quoted value spanning lines is one): each line is numbered as the file's instead
    at = {path: _lines_at(Path(path), [position for name, _, _, _, position in found if name == path])
          for path in {name for name, *_ in found}}
    return [(path, at[path].get(position, line), _reason(reason), str(text or "").strip("\r\n"))
            for path, line, reason, text, position in found]


def _reason(said: str) -> str:
    """DuckDB's reason for rejecting a line, a record past `MAX_LINE_BYTES` in words saying how long it is."""
    size = re.fullmatch(r"Maximum line size of \d+ bytes exceeded\. Actual Size:\s*(\d+) bytes\.", said.strip())
    if size is None:
        return said
    return f"a record of {int(size.group(1)):,} bytes, longer than the {MAX_LINE_BYTES:,} a record may be"


def _lines_at(path: Path, positions: list[int]) -> dict[int, int]:
    """The 1-based line of the (decompressed) file holding each byte offset, in one pass over its bytes."""
    wanted, lines = sorted(set(positions)), {}
    newlines, start, i = 0, 0, 0
    with open_bytes(path) as handle:
        while i < len(wanted) and (chunk := handle.read(1 << 20)):
            cursor = 0
            while i < len(wanted) and wanted[i] < start + len(chunk):
                newlines += chunk.count(b"\n", cursor, wanted[i] - start)
                cursor = wanted[i] - start
                lines[wanted[i]] = newlines + 1
                i += 1
            newlines += chunk.count(b"\n", cursor)
            start += len(chunk)
    return lines


def is_malformed_json(source: Source, err: duckdb.Error) -> bool:
    """True for a JSON-lines parse error that setting the bad lines aside could get past."""
    return source.fmt in ("jsonl", "json") and source.table is None and "JSON" in str(err)


def set_aside_bad_json(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[Source, list[RejectedRows]]:
    """The source's good JSON lines as a table of text columns, and the lines set aside (see `scan_json_lines`)."""
    table = f"_incidentlens_json_{next(_JSON_TABLES)}"
    rejected = scan_json_lines(con, source.files, f"{table}_lines", source.format_name, arrays=source.fmt == "json")
    keys = [k for (k,) in con.execute(
        f"SELECT key FROM (SELECT unnest(json_keys(text)) AS key, line FROM {table}_lines WHERE good) "
        "GROUP BY key ORDER BY min(line), key").fetchall()]
    if not keys:  # no record at all (an empty file): read as it is, to be found empty
        con.execute(f"DROP TABLE {table}_lines")
        return replace(source, text_columns=("json",)), rejected
    names, repeated = unique_names(keys, placed=False)
    fields = ", ".join(f"json_extract_string(text, {literal(json_pointer(k))}) AS {quote(name)}"
                       for k, name in zip(keys, names, strict=True))
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {fields}, file AS {ORIGIN_FILE}, line AS {ORIGIN_LINE} "
                f"FROM {table}_lines WHERE good ORDER BY file, line")
    con.execute(f"DROP TABLE {table}_lines")
    return replace(source, table=table, text_columns=names, repeated=repeated), rejected


def scan_json_lines(con: duckdb.DuckDBPyConnection, files: Sequence[Path], table: str, what: str,
                    arrays: bool = False) -> list[RejectedRows]:
    """Every non-blank line of the files into `table` (file, line, text, good: a JSON object) and the lines that
    are not, per file. Each file is scanned as lines (as a plain-text log is), or, with `arrays`, one that is a JSON
    array as its elements, each numbered as a line (`_elements_sql`); a file with more than MAX_UNREADABLE_SHARE of
    its non-blank lines unreadable is an InputError naming its first bad line."""
    elements = {path for path in files if arrays and _is_json_array(con, path)}
    scans = " UNION ALL ".join(
        f"SELECT {literal(str(path))} AS file, line, text FROM "
        f"({_elements_sql(path) if path in elements else lines_sql(path)}) AS lines "
        "WHERE length(trim(text)) > 0" for path in files)
    is_object = "CASE WHEN json_valid(text) THEN json_type(text) = 'OBJECT' ELSE false END"
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT file, line, text, {is_object} AS good FROM ({scans})")
    except duckdb.InvalidInputException as err:
        file = error_file(err)  # which of the files holds the line
        raise refused_line(err, Path(file) if file else files[0]) or err from None
    reason = "CASE WHEN json_valid(text) THEN 'not a JSON object' ELSE 'not valid JSON' END"
    return lines_set_aside(con, table, files, what, reason, elements)


def lines_set_aside(con: duckdb.DuckDBPyConnection, table: str, files: Sequence[Path], what: str, reason_sql: str,
                    elements: Collection[Path] = ()) -> list[RejectedRows]:
    """Per file, the lines of `table` (`file`, `line`, `text`, `good`) that are not good, each with its reason
    (`reason_sql`, over `text`); `elements`: the files whose lines are a JSON array's elements. A file with more than
    MAX_UNREADABLE_SHARE of its lines not good is an InputError naming its first, read as `what`."""
    rejected = []
    for path in files:
        total, bad = con.execute(f"SELECT count(*), count(*) FILTER (NOT good) FROM {table} "
                                 f"WHERE file = {literal(str(path))}").fetchone()
        if not bad:
            continue
        rows = con.execute(f"SELECT line, {reason_sql}, text FROM {table} WHERE file = {literal(str(path))} "
                           "AND NOT good ORDER BY line").fetchall()
        unit = "element" if path in elements else "line"
        if bad > MAX_UNREADABLE_SHARE * total:
            line, reason, _ = rows[0]
            raise InputError(f"{path}: cannot read as {what}: {bad} of {total} {unit}s unreadable ({unit} {line}: "
                             f"{reason})")
        rejected.append(RejectedRows(str(path), int(total), tuple((int(n), r, t) for n, r, t in rows), unit=unit))
    return rejected


def _is_json_array(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """The file is one JSON array (of whatever elements): read as its elements, not its lines."""
    try:
        con.execute(f"SELECT count(*) FROM read_json_objects({literal(str(path))}, format='array')").fetchone()
    except duckdb.Error:
        return False
    return True


def _elements_sql(path: Path) -> str:
    """`SELECT line, text`: each element of a JSON array file, numbered from 1 as a JSON array's rows are, its text
    minified (a pretty-printed element on one line of the listing)."""
    return (f"SELECT row_number() OVER () AS line, CAST(json(json) AS VARCHAR) AS text "
            f"FROM read_json_objects({literal(str(path))}, format='array')")


def _data_lines(path: Path) -> int:
    """Lines after the header (a final line without a newline counts), read in chunks."""
    newlines, last = 0, b"\n"
    with open_bytes(path) as handle:
        while chunk := handle.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return newlines - 1 + (last != b"\n")


def resolve_paths(paths: PathsArg) -> list[Path]:
    """Expand globs; every plain path must exist and every glob must match, else InputError naming it. A file of
    the very name given is that file, whatever characters its name has (`logs [1].csv`)."""
    if paths is None:
        return []
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    resolved: list[Path] = []
    for item in items:
        text = str(item)
        if glob.has_magic(text) and not Path(text).is_file():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise InputError(f"{text}: no file matches this pattern")
            resolved.extend(matches)
        elif Path(text).is_dir():
            raise InputError(f"{text}: is a directory; give a file or a glob such as '{Path(text) / '*.csv'}'")
        elif not Path(text).is_file():
            raise InputError(f"{text}: no such file")
        else:
            resolved.append(Path(text))
    return list(dict.fromkeys(resolved))


def file_format(path: Path) -> str:
    """csv, parquet, jsonl, json or text (a plain-text log), from the suffix (ignoring .gz and rotation numbers)
    or, failing that, from the first bytes and lines; fluentbit for Fluent Bit's `out_file` lines, whatever the
    name but a CSV or Parquet one (its output file is named by its tag: `tail.0`,
    `kube.var.log.containers.<pod>_....log`)."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and (suffixes[-1] in (".gz", ".gzip") or suffixes[-1][1:].isdigit()):
        suffixes = suffixes[:-1]
    fmt = _FORMATS_BY_SUFFIX.get(suffixes[-1]) if suffixes else None
    if fmt in ("csv", "parquet"):
        return fmt
    head = first_bytes(path, 1024)
    if starts_fluent_bit(head):
        return "fluentbit"
    if fmt:
        return _json_kind(path, fmt)
    if head[:4] == b"PAR1":
        return "parquet"
    if head.lstrip()[:1] == b"{":
        return _json_kind(path, "jsonl")
    if suffixes and suffixes[-1] in _TEXT_SUFFIXES:
        return "text"
    return _sniff_text(path)


def _json_kind(path: Path, fmt: str) -> str:
    """otlp, jaeger, zipkin, prometheus, loki, cloudwatch, kubeevents or datadog for a JSON file read by its own
    reader (`otlp.py`, `jaeger.py`, `zipkin.py`, `apianswers.read_api_answer`, `apianswers.read_loki_answer`, the
    store's CloudWatch reader, `kubeevents.py`, `datadog.py`), else `fmt`."""
    if _starts_otlp(path):
        return "otlp"
    head = first_bytes(path, 1024)
    if starts_zipkin(head):
        return "zipkin"
    if starts_cloudwatch(head):
        return "cloudwatch"
    if starts_kube_events(head):
        return "kubeevents"
    if starts_datadog_logs(head):
        return "datadog"
    return api_answer_kind(head) or ("jaeger" if starts_jaeger(head) else fmt)


def _starts_otlp(path: Path) -> bool:
    """The file opens with an OTLP document (`{"resourceSpans": ...`), or Tempo's answer holding one (`TEMPO_TRACE`):
    read by `otlp.py`, not as JSON records."""
    head = first_bytes(path, 256)
    return re.match(rb'\s*\{\s*"resource(Spans|Logs|Metrics)"', head) is not None or bool(TEMPO_TRACE.match(head))


def _sniff_text(path: Path) -> str:
    """csv when the first line reads as a header (no log line format fits it) whose delimiter recurs as often on
    the next lines, outside quotes (a quoted message may hold it); else text (a plain-text log)."""
    lines = [line for line in sample_lines(path, 50) if line.strip()]
    if not lines or detect_line_format(lines[:1]) is not UNKNOWN:
        return "text"
    delimiter = max(_DELIMITERS, key=lines[0].count)
    fields = lines[0].count(delimiter)
    rest = lines[1:]
    try:
        consistent = sum(1 for record in csv.reader(rest, delimiter=delimiter) if len(record) == fields + 1)
    except csv.Error:  # a quote left open over the sample, past the csv module's field limit: no CSV of it
        consistent = 0
    if fields and (not rest or consistent >= _CSV_CONSISTENCY * len(rest)):
        return "csv"
    return "text"


def sources_for(files: Iterable[Path]) -> list[Source]:
    """Group files by format and (for CSV) header line: each group is read by one DuckDB table function."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for path in files:
        fmt = file_format(path)
        if fmt in ("json", "jsonl"):
            # as a CSV's first line is checked (`csv_preamble`): not 'N of N lines unreadable: not valid JSON'
            refuse_unread_format(path, first_bytes(path, 1 << 10))
        if fmt in ("csv", "text", "jsonl"):  # a `promtool tsdb dump` line opens with a brace
            refuse_prometheus_text(path)
        if fmt in ("csv", "text"):
            refuse_unread_events(path)
        shape = csv_preamble(path) if fmt == "csv" else (0, "")
        groups.setdefault((fmt, shape), []).append(path)
    return [_source(fmt, paths, skip) for (fmt, (skip, _)), paths in groups.items()]


def refuse_prometheus_text(path: Path) -> None:
    """An InputError for a file in Prometheus' text exposition format (a scrape, `/federate`, `promtool tsdb
    dump`): every sampled line a sample (`name{labels} value [ms]`) or a `# HELP`/`# TYPE` comment, and a label
    set or comment among them, so that no log line of two words is taken for one."""
    try:
        lines = [line for line in sample_lines(path, 50) if line.strip()]
    except InputError:  # not text: its reader says so
        return
    if lines and all(_PROMETHEUS_LINE.fullmatch(line) for line in lines) and any(
            line.startswith("#") or "{" in line for line in lines):
        raise InputError(f"{path}: Prometheus text exposition format, which IncidentLens does not read: give "
                         "the server (--prometheus URL), a saved /api/v1/query_range answer, or CSV with columns "
                         "ts,service,metric,value")


def _source(fmt: str, paths: list[Path], skip: int) -> Source:
    return Source(files_label(paths), tuple(paths), fmt, skip=skip)


def files_label(paths: Sequence[Path]) -> str:
    """How warnings and errors name a source of `paths`: `a.csv`, `a.csv (and 2 more)`."""
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more)"


def with_schema(con: duckdb.DuckDBPyConnection, source: Source) -> Source:
    """CSV and JSON readers with every column as VARCHAR (typing happens later, with TRY_CAST and counts)."""
    if source.table is not None:
        return source
    if source.fmt == "csv":
        skip, header = csv_preamble(source.files[0])
        if re.fullmatch(r"sep=.", header, flags=re.IGNORECASE):
            raise InputError(f"{source.label}: line 1 {header!r} is Excel's delimiter hint, not a header: delete that "
                             "line")
        delimiter, names, repeated = csv_header(header)
        return replace(source, delimiter=delimiter, text_columns=names, repeated=repeated, skip=skip)
    if source.fmt in ("json", "jsonl"):
        # DuckDB finds JSON fields in the first 20,480 records; a field first seen later would be left out, so
        # inputs small enough to scan in about a second are scanned whole.
        whole = sum(path.stat().st_size for path in source.files) <= JSON_FULL_SCHEMA_BYTES
        reader = reader_sql(source, ", sample_size=-1" if whole else "")
        described = [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
        if [name for name, _ in described] == ["json"]:
            # DuckDB reads records that are not all objects (an array or a number on a line) as one `json` column,
            # typed JSON, or BIGINT[] when every line is an array of numbers (objects of one key `json` are
            # scanned as lines too, and kept whole)
            raise NotAllObjectsError(f"{source.label}: a JSON record that is not an object")
        names = tuple(name for name, _ in described)
        _check_keys_alike(con, source, names)
        return replace(source, text_columns=names)
    if source.fmt == "parquet":
        return replace(source, repeated=_parquet_repeats(source.files[0]))
    return source


def _parquet_repeats(path: Path) -> tuple[Repeat, ...]:
    """The column names a Parquet file gives twice (see `unique_names`), from its footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return unique_names(pq.read_schema(path).names)[1]
    except (OSError, pa.ArrowException):
        return ()  # an unreadable file: DuckDB's reader says what is wrong with it


def _check_keys_alike(con: duckdb.DuckDBPyConnection, source: Source, names: Sequence[str]) -> None:
    """JSON keys that differ only in case (`Message`, `message`) are one column to DuckDB's reader: it names the
    second `message_1`, a key no record has, and reads its values as NULL. A name so suffixed sends for the records'
    own keys (in the first 20,480 records); two alike send the source to be read line by line (`KeysAlikeError`)."""
    lowered = {name.lower() for name in names}
    if not any(re.sub(r"_\d+$", "", name).lower() in lowered - {name.lower()} for name in names):
        return
    keys = [key for (key,) in con.execute(
        f"SELECT DISTINCT unnest(json_keys(json)) FROM (SELECT json FROM read_json_objects("
        f"{_file_list(source.files)}, format='{_json_format(source)}') LIMIT 20480)").fetchall()]
    _, repeated = unique_names(keys, placed=False)
    if repeated and source.fmt == "json":  # a JSON document, not lines: no reading it line by line
        raise InputError(f"{source.label}: {repeated[0].describe()}, which its reader takes for one: rename one")
    if repeated:
        raise KeysAlikeError(f"{source.label}: {repeated[0].describe()}")


class NotAllObjectsError(Exception):
    """JSON records that are not all objects: set the others aside as a bad line is (`set_aside_bad_json`)."""


class KeysAlikeError(NotAllObjectsError):
    """JSON keys that differ only in case: read line by line as well (`set_aside_bad_json`), where each is a column
    of its own, a repeat as `files.unique_names` names it (`Source.repeated`)."""


def error_file(err: duckdb.Error) -> str | None:
    """The file a DuckDB reader's error names (its `file = <path>` line), if it names one."""
    return next((line.split("=", 1)[1].strip() for line in str(err).splitlines()
                 if line.strip().startswith("file =")), None)


def read_error(source: Source, err: duckdb.Error) -> InputError:
    """A DuckDB reader failure as one line naming the file (and, for CSV, the line and what was wrong with it)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    file = error_file(err) or source.label
    reason = re.sub(r"^[A-Za-z ]*Error: ", "", lines[0]) if lines else type(err).__name__
    csv_line = re.match(r"CSV Error on Line: (\d+)", reason)
    if csv_line:
        # The reason is the last line before DuckDB's advice (the quoted original line may span many lines).
        before_advice = list(itertools.takewhile(lambda line: not line.startswith(_DUCKDB_ADVICE), lines[1:]))
        detail = before_advice[-1] if before_advice else ""
        reason = f"line {csv_line.group(1)}: {detail}" if detail else f"line {csv_line.group(1)}"
    # DuckDB's words about gzip name the file again, and not what happened to it
    if cut_short(reason):
        reason = GZIP_CUT_SHORT
    elif "not a GZIP stream" in reason:
        reason = NOT_GZIP
    elif "maximum_object_size" in reason and source.fmt == "jsonl" and (long := _longest_line(source.files)):
        file, reason = long
    return InputError(f"{file}: cannot read as {source.format_name}: {reason}")


def _longest_line(files: Sequence[Path]) -> tuple[str, str] | None:
    """(file, words) of the longest line of `files`, for DuckDB's JSON reader's refusal of a record past its
    maximum_object_size, which names neither (it reads some such lines, so which one it stopped at is not known);
    None where a file cannot be read. Read in chunks of at most `MAX_LINE_BYTES`."""
    longest = (0, "", 0)  # size, file, line
    for path in files:
        try:
            with open_bytes(path) as handle:
                number, size = 1, 0
                while chunk := handle.readline(MAX_LINE_BYTES):
                    size += len(chunk.removesuffix(b"\n"))
                    longest = max(longest, (size, str(path), number))
                    if chunk.endswith(b"\n"):
                        number, size = number + 1, 0
        except (OSError, EOFError):
            return None
    size, file, number = longest
    return file, (f"line {number:,} holds {size:,} bytes, more than the JSON reader takes in one record "
                  f"({MAX_LINE_BYTES:,} bytes): shorten it")


def locate_first(
    con: duckdb.DuckDBPyConnection, source: Source, condition_sql: str, value_sql: str
) -> tuple[str, int, object]:
    """(file, 1-based data row, value) of the first row matching `condition_sql`; the error path, so it rescans
    the files (not a table the rows were read into), but for a table that is all there is to read
    (`_READ_INTO_TABLES`: no reader takes the file as rows; an event's bad time was 'Referenced column "ts" not
    found', a traceback): there a text entry's row is its file line, a saved answer's its number in the order the
    answer gives them; nor for JSON rows that carry their file and line, as the good lines of a JSON file with bad
    ones do (`set_aside_bad_json`: the file itself reads only so), or their line (its number in the List or answer,
    `_READ_AS_EVENTS`: a reader of JSON records would read the file's document, not its events)."""
    names = [name for name, *_ in con.execute(f"DESCRIBE SELECT * FROM {source.table}").fetchall()] \
        if source.table else []
    if (source.fmt in ("json", "jsonl") and ORIGIN_FILE in names) or (source.fmt in _READ_AS_EVENTS
                                                                         and ORIGIN_LINE in names):
        return _locate_first_line(con, source, condition_sql, value_sql)
    if source.files and source.fmt not in _READ_INTO_TABLES:
        source = replace(source, table=None)
    candidates = [source] if len(source.files) <= 1 else [source.for_file(path) for path in source.files]
    if len(source.files) > 1:
        # DuckDB's virtual `filename` column names the file, unless a source column of that name hides it.
        hit = con.execute(f"SELECT filename FROM {source.from_sql} WHERE {condition_sql} LIMIT 1").fetchone()
        if hit and Path(hit[0]) in source.files:
            candidates = [source.for_file(Path(hit[0]))]
    number = "line" if source.fmt == "text" else "row_number() OVER ()"
    for single in candidates:
        row = con.execute(
            f"SELECT rn, value FROM (SELECT {number} AS rn, {value_sql} AS value, * "
            f"FROM {single.from_sql}) WHERE {condition_sql} ORDER BY rn LIMIT 1"
        ).fetchone()
        if row:
            skipped = dict(source.set_aside).get(str(single.files[0]), ()) if source.set_aside else ()
            number = _record_number(row[0], skipped, source.skip)
            # a typed time as it reads, not as Python's repr (`datetime.datetime(1500, 1, 1, 0, 0)`)
            return single.label, number, str(row[1]) if isinstance(row[1], datetime) else row[1]
    return source.label, 0, None


def _record_number(read: int, set_aside: Sequence[int], skip: int = 0) -> int:
    """The record number of a CSV file's `read`-th record read past the lines `set_aside`, which its reader skipped
    uncounted: the i-th of them, line L (the header line `skip` + 1, below the comment lines skipped), has
    L - i - 1 - `skip` records read before it (where no quoted value before it spans lines)."""
    return read + sum(1 for i, line in enumerate(sorted(set_aside), 1) if read >= line - i - skip)


def _locate_first_line(
    con: duckdb.DuckDBPyConnection, source: Source, condition_sql: str, value_sql: str
) -> tuple[str, int, object]:
    """`locate_first` in a table of rows that carry their file and line (`ORIGIN_FILE`, `ORIGIN_LINE`): the first
    file holding a match, and its line there."""
    names = [name for name, *_ in con.execute(f"DESCRIBE SELECT * FROM {source.table}").fetchall()]
    file = ORIGIN_FILE if ORIGIN_FILE in names else literal(source.label)  # of one file, its name
    row = con.execute(
        f"SELECT {file}, {ORIGIN_LINE}, {value_sql} FROM {source.table} WHERE {condition_sql} "
        f"ORDER BY list_position({_file_list(source.files)}, {file}), {ORIGIN_LINE} LIMIT 1").fetchone()
    if not row:
        return source.label, 0, None
    file, line, value = row
    label = source.label if len(source.files) <= 1 else file
    return label, line, str(value) if isinstance(value, datetime) else value


def csv_header(line: str) -> tuple[str, tuple[str, ...], tuple[Repeat, ...]]:
    """(delimiter, column names, repeats) of a CSV header line; blank names become `column<i>` (see
    `unique_names` for repeats)."""
    delimiter = max(_DELIMITERS, key=line.count)
    fields = next(csv.reader([line.lstrip("\ufeff")], delimiter=delimiter), [])
    names, repeated = unique_names([field.strip() or f"column{i}" for i, field in enumerate(fields)])
    return delimiter, names, repeated


def unique_names(fields: Sequence[str], placed: bool = True) -> tuple[tuple[str, ...], tuple[Repeat, ...]]:
    """The names as a reader takes them, and the repeats: a name given again (in any case) gets `_<n>`, as DuckDB
    names it (`placed`: the repeats say their columns)."""
    names: list[str] = []
    repeated = []
    for i, name in enumerate(fields):
        lowered = [known.lower() for known in names]
        kept_as, n = name, 0
        while kept_as.lower() in lowered:
            n += 1
            kept_as = f"{name}_{n}"
        if n:
            first = lowered.index(name.lower())
            repeated.append(Repeat(kept_as, name, fields[first], *((i + 1, first + 1) if placed else ())))
        names.append(kept_as)
    return tuple(names), tuple(repeated)


def _file_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(literal(str(p)) for p in paths) + "]"


def csv_preamble(path: Path) -> tuple[int, str]:
    """(lines above the header, the header line) of a CSV file: the comment lines (`# exported by ...`) above it
    are skipped, with blank lines among them, unless the last comment names more of the columns IncidentLens looks
    for than the line after it (numpy's `savetxt(header=...)` writes `# ts,value` above its numbers: as before,
    that line is the header, its first name `# ts`). Binary or non-UTF-8 content is an InputError."""
    lines = _leading_lines(path)
    above = next((i for i, line in enumerate(lines) if not _is_preamble(line)), None)
    if not _is_comment(lines[0]) or above is None:
        return 0, lines[0]
    last = max(i for i in range(above) if lines[i])
    if _known_names(lines[last].lstrip("\ufeff#")) > _known_names(lines[above]):
        return last, lines[last]
    return above, lines[above]


#: at most this many comment and blank lines are skipped above a CSV header
MAX_PREAMBLE_LINES = 1000
_KNOWN_NAMES = frozenset(name for names in CANDIDATES.values() for name in names)


def holds_only_comments(path: Path) -> bool:
    """Whether a (possibly gzipped) file's lines are all `#` comments or blank, one comment at least: no data (a
    Prometheus scrape of no sample, a CSV whose rows were all commented out). Reads up to its first other line;
    a file that cannot be read is left to its reader to name."""
    seen, starts = False, True  # a comment seen; the next bytes start a line
    try:
        with open_bytes(path) as handle:
            while raw := handle.readline(1 << 16):
                text = raw.removeprefix(b"\xef\xbb\xbf").strip() if starts else b"#"
                if text and not text.startswith(b"#"):
                    return False
                seen, starts = seen or bool(text), raw.endswith(b"\n")
    except (OSError, EOFError):
        return False
    return seen


def _is_comment(line: str) -> bool:
    return line.lstrip("\ufeff").startswith("#")


def _is_preamble(line: str) -> bool:
    return not line or _is_comment(line)


def _known_names(line: str) -> int:
    """How many of a header line's names are those of a role (`columns.CANDIDATES`)."""
    return sum(1 for name in csv_header(line)[1] if normalise(name) in _KNOWN_NAMES)


def _leading_lines(path: Path) -> list[str]:
    """The first line of a (possibly gzipped) text file and, where it is a comment (`#`), the lines after it up to
    the first that is neither a comment nor blank (at most MAX_PREAMBLE_LINES), or up to a gzip stream's cut; each
    stripped. Binary or non-UTF-8 content, or a cut before the first line ends, is an InputError."""
    lines: list[str] = []
    try:
        with open_bytes(path) as handle:
            raw = handle.readline(1 << 16)
            refuse_unread_format(path, raw)
            while True:
                lines.append(_decoded(path, len(lines) + 1, raw))
                if not _is_comment(lines[0]) or not _is_preamble(lines[-1]) or len(lines) > MAX_PREAMBLE_LINES:
                    return lines
                raw = handle.readline(1 << 16)
                if not raw:
                    return lines
    except EOFError:
        if not lines:  # a gzip stream cut short before its first line ends: nothing to read
            raise InputError(f"{path}: cannot read: {GZIP_CUT_SHORT}") from None
        return lines  # the comment lines before the cut: its reader reads up to the cut and says so
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err}") from None


def _decoded(path: Path, number: int, raw: bytes) -> str:
    try:
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"{path}: cannot read as CSV: line {number}: not UTF-8 text (a binary file or another "
                         "encoding)") from None
