"""One source -> the SELECT of a canonical view (metrics, logs, spans, events, calls), validated eagerly.

A small sample decides the column roles, the time format and which text columns are numbers; one aggregate query
over the whole source then validates the time column and counts values that do not fit their column's type. Bad
times are an error naming file, column, row and value; other bad values are kept as NULL and reported as warnings.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from incidentlens.errors import InputError
from incidentlens.telemetry.columns import (
    CANDIDATES,
    GCP_PAYLOADS,
    POD_COLUMNS,
    candidate_columns,
    find_column,
    first_json_value_sql,
    is_pod_column,
    json_object_sql,
    literal,
    normalise,
    quote,
)
from incidentlens.telemetry.files import (
    ORIGIN_FILE,
    ORIGIN_LINE,
    NotAllObjectsError,
    RejectedRows,
    Source,
    error_file,
    is_malformed_csv,
    is_malformed_json,
    locate_first,
    read_error,
    set_aside_bad_json,
    split_malformed,
    with_schema,
)
from incidentlens.telemetry.logfields import (
    ANSI_CODE,
    JSON_LEVEL_FIELDS,
    JSON_MESSAGE_FIELDS,
    LEVEL_KEYS,
    LEVEL_NAMES,
    LEVEL_WORD_PATTERN,
    LOGFMT_LEVEL_PATTERN,
    POD_SUFFIX,
    STATUS_LEVEL_SHARE,
    STATUS_LEVELS,
    WINDOWS_EVENT_COLUMNS,
    WINDOWS_LEVELS,
)
from incidentlens.telemetry.peers import database_sql
from incidentlens.telemetry.timeparse import (
    EARLIEST,
    LATEST,
    TimeFormat,
    checked_if_past_bounds,
    detect_format,
    is_numeric_type,
    other_unit_sql,
    sql_ts,
    to_utc_sql,
    try_cast_text,
    unread_time_hint,
    written_epoch_sql,
    written_iso_sql,
    written_unit,
    year_last_hint,
)
from incidentlens.telemetry.words import counted, counted_words, have

SAMPLE_ROWS = 10_000
# A text column is numeric when more than this share of its non-empty sampled values are numbers (the rest
# become NULL and are counted).
NUMERIC_SHARE = 0.5
# A sampled text value longer than this (in bytes) once trimmed is no number, nor one with a decimal comma
# (`_short_values`).
LONGEST_NUMBER_TEXT = 64
# What a number's cast skips around it (`try_cast_text`): ASCII whitespace (DuckDB's cast) and Unicode spaces (trim),
# though not every mix: ASCII whitespace outside Unicode spaces (`\t\u00a012.5`) it refuses
_NUMBER_PADDING = "\t\n\x0b\x0c\r \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
# Metric values beyond this magnitude are treated like NaN and Infinity: their square (any variance) overflows a
# double, so no statistic can use them; no real gauge or counter comes near it.
MAX_METRIC_MAGNITUDE = 1e150
# No request lasts a day: a span's duration past both this and the spans' whole time range (first start to last) is
# a bad value (1e300, a unit misread), counted and kept as NULL like a negative one.
LONGEST_SPAN_MS = 86_400_000.0
# A text time spelt so is no time (left out and counted, as an empty one is), not a time that does not parse (an
# error): what pandas, Python and spreadsheets write for a missing value.
NO_TIME_SPELLINGS = ("", "null", "none", "nan", "nat", "n/a", "-")
_NO_TIME = ", ".join(literal(spelling) for spelling in NO_TIME_SPELLINGS)
_SAMPLE = "_incidentlens_sample"
# The time unit of a rate written in a column's name (`req/s`, `errors/min`): no `service/metric`
_PER_TIME_UNIT = re.compile(r"(?i)[mµun]?s|sec(ond)?s?|min(ute)?s?|m|h|hrs?|hours?|d|days?")
# A control character a journald string never holds (tab and newline it does), and a character that is none
_CONTROL, _VISIBLE = r"[\x00-\x08\x0b-\x1f\x7f]", r"[^\x00-\x1f\x7f]"
# How deep the fields of a JSON file's nested objects are read (`kubernetes.pod.name`: 3)
NESTED_DEPTH = 3
_LAYER, _LAYER_TIME = "_incidentlens_layer", "_incidentlens_ts"
# The sources whose times are read as the user wrote them, so in `--timezone` where they have no zone; the tables
# other readers make (plain-text logs, OTLP, Jaeger, Zipkin, Prometheus) hold naive UTC already.
_ZONED_FORMATS = ("csv", "json", "jsonl", "parquet")
_FIELD_TABLES = itertools.count()

_LEVEL_MAP = "MAP {" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in LEVEL_NAMES.items()) + "}"
_DURATION_SUFFIXES = {
    "ns": ("nano", "ns"), "us": ("micro", "us"), "ms": ("milli", "ms"), "s": ("sec", "s"),
}
#: what each spelling of a call's side says: the caller's side reports the client latency (Istio's
#: `reporter="source"`, Linkerd's outbound), the callee's the server latency
_SIDES = {"client": "client", "source": "client", "outbound": "client",
          "server": "server", "destination": "server", "inbound": "server"}
_SIDE_MAP = "MAP {" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in _SIDES.items()) + "}"
_ERROR_STATUSES = "'ERROR', 'STATUS_CODE_ERROR', 'TRUE', 'FAIL', 'FAILED', 'FAILURE'"
_OK_STATUSES = "'OK', 'UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_UNSET', 'FALSE', 'SUCCESS'"


#: what an EmptySourceError says of its file
NO_ROWS = "no rows (the file is empty or has only a header)"


class EmptySourceError(InputError):
    """A source with no rows: an error alone, a warning beside files that have rows."""


class UntimedSourceError(InputError):
    """A source with no time column: an error alone, left out with a warning beside files that have one (a glob
    such as `metric/*.csv` that also matches a table of call pairs)."""


@dataclass
class Columns:
    """What the sample says about a source's columns."""

    types: dict[str, str]
    numeric: dict[str, str] = field(default_factory=dict)  # text columns holding numbers -> BIGINT or DOUBLE
    # text columns with numbers written with a comma (`12,5`, `1,000.5`, `_decimal_comma`) -> one of them; not read
    # as numbers
    decimal_comma: dict[str, str] = field(default_factory=dict)

    def comma_hint(self, column: str) -> str:
        """Words for a message about `column` when some of its values are numbers written with a comma, else empty:
        a decimal comma, thousands separators before a decimal point, or either (`1,010`: not guessed)."""
        example = self.decimal_comma.get(column)
        if not example:
            return ""
        if re.fullmatch(r"[-+]?[0-9,]*,[0-9]{3}\.[0-9]+", example):
            return f" (written with thousands separators, e.g. {example!r}: write numbers without them)"
        if re.fullmatch(r"[-+]?[0-9]{1,3}(,[0-9]{3})+", example):
            return (f" (written with a comma, e.g. {example!r}: a decimal comma or a thousands separator, which is "
                    "not guessed: write a decimal point and no separators)")
        return f" (written with a decimal comma, e.g. {example!r}: write a decimal point)"

    def is_number(self, column: str) -> bool:
        return is_numeric_type(self.types[column]) or column in self.numeric

    def number_sql(self, column: str, cast: str | None = None) -> str:
        """The column as a number (TRY_CAST for text)."""
        target = cast or self.numeric.get(column) or self.types[column]
        if is_numeric_type(self.types[column]):
            return f"CAST({quote(column)} AS {target})"
        if target == "BIGINT":
            # TRY_CAST('1.5' AS BIGINT) is 2: only whole numbers may become integers, the rest NULL (counted).
            return f"CASE WHEN {_is_integer_text(column)} THEN {try_cast_text(quote(column), target)} END"
        return try_cast_text(quote(column), target)


@dataclass
class Canonical:
    """A canonical SELECT under construction: named expressions, then the source's other columns."""

    source: Source
    columns: Columns
    exprs: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    checks: dict[str, str] = field(default_factory=dict)  # column -> condition of a value not fitting its type
    nonfinite: dict[str, str] = field(default_factory=dict)  # metric value column -> condition of NaN or +-Infinity
    # a span's duration left NULL: (column, condition, the rows in words), e.g. an end time that does not parse
    bad_durations: list[tuple[str, str, str]] = field(default_factory=list)
    # other values left NULL: (column, condition, the words after the count), e.g. a call's side that is no side
    bad_values: list[tuple[str, str, str]] = field(default_factory=list)
    time_column: str | None = None
    time_sql: str | None = None
    time_format: TimeFormat | None = None
    # the time column (a span's start) and its format as the sample holds them (before `in_zone`), once
    # `_choose_time` found them, or given: a CSV metric day's probe, which decides its value columns, found them on
    # the same sample (`_read_metrics_once`)
    found_time: tuple[str, TimeFormat] | None = None
    rest: dict[str, str] = field(default_factory=dict)
    unnested: set[str] = field(default_factory=set)  # exprs that are lists, one row per element (wide metrics)
    # Helper columns computed once each, in nested SELECTs below the canonical one, for exprs that read them many
    # times (the logs' unwrapped line, its message): inline, DuckDB would compute them again at every use.
    layers: list[dict[str, str]] = field(default_factory=list)
    # fields of JSON objects in a JSON file's columns, dotted (`log.level`) -> the SQL reading them (`_nested_fields`)
    nested: dict[str, str] = field(default_factory=dict)
    zone: str = ""  # the IANA zone a time written without one is read in (`--timezone`); none: UTC
    # columns holding JSON objects in some rows, read by their fields (`service.name`), and by their plain values
    # (`_plain_sql`) where a row has one: `"service": "web"` beside `"service": {"name": "api"}`
    objects: frozenset[str] = frozenset()
    notes: list[str] = field(default_factory=list)  # warnings about the source as a whole, not counted rows

    def column_sql(self, name: str) -> str:
        """A source column, or a nested field, as SQL reads it."""
        return self.nested.get(name) or quote(name)

    def in_zone(self, fmt: TimeFormat) -> TimeFormat:
        """A time column's format reading its times written without a zone in `zone`, where the source is a file
        read as the user wrote it (`_ZONED_FORMATS`)."""
        return replace(fmt, zone=self.zone) if self.source.fmt in _ZONED_FORMATS else fmt

    def computed(self, helpers: dict[str, str]) -> list[str]:
        """The helpers (name -> expr) as columns of a new layer; returns the columns as exprs read them."""
        self.layers.append(helpers)
        return [quote(name) for name in helpers]

    def add_rest(self) -> None:
        """Every source column not consumed by a role, names kept (prefixed `source_` on a clash); text columns
        holding numbers are cast, and their bad values checked."""
        taken = {name.lower() for name in self.exprs}
        for column in self.columns.types:
            if column in self.used or column in _ORIGIN:
                continue
            name = column if column.lower() not in taken else f"source_{column}"
            self.rest[name] = self.columns.number_sql(column) if column in self.columns.numeric else quote(column)
            if column in self.columns.numeric:
                self.checks[column] = _not_a_number(column, self.columns.numeric[column])

    def time_present_sql(self) -> str:
        """The condition of a source row having a time: non-NULL in a typed column, in a text one neither empty nor
        a spelling of none (`NO_TIME_SPELLINGS`)."""
        column = quote(self.time_column)
        if self.time_format.typed:
            return f"{column} IS NOT NULL"
        return f"coalesce(lower(trim(CAST({column} AS VARCHAR))), '') NOT IN ({_NO_TIME})"

    def select_sql(self, keep_missing_times: bool, left_out: list[str]) -> str:
        """The canonical SELECT; `left_out`: the conditions of source rows with a bad time (validated, counted)."""
        items = {**self.exprs, **self.rest}
        # On the source column, not on the canonical time: a filter there would stop DuckDB pushing the caller's
        # time range into a Parquet scan. Where no time is bad (the rule), both leave out the same rows.
        conditions = ([] if keep_missing_times else [self.time_present_sql()]) + [f"NOT ({c})" for c in left_out]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        source = f"{self.source.from_sql}{where}"
        if self.layers:
            source = self._layered_source(source)
            items = {name: quote(_LAYER_TIME) if expr == self.time_sql else expr for name, expr in items.items()}
        body = _aliased(items)
        sql = f"SELECT {body} FROM {source}"
        if not self.unnested:
            return sql
        # Unnested in an outer SELECT: the time (often a regex over text) is then parsed once per source row, not
        # once per metric of the row.
        outer = ", ".join(f"unnest({quote(n)}) AS {quote(n)}" if n in self.unnested else quote(n) for n in items)
        return f"SELECT {outer} FROM ({sql})"

    def _layered_source(self, source: str) -> str:
        """The source under the layers of helper columns. The time is computed in the innermost one, on the source
        column: computed above a layer, a time filter would no longer reach a Parquet scan's row groups."""
        first, *others = self.layers
        source = f"(SELECT *, {self.time_sql} AS {quote(_LAYER_TIME)}, {_aliased(first)} FROM {source}) AS {_LAYER}"
        for layer in others:
            source = f"(SELECT *, {_aliased(layer)} FROM {source}) AS {_LAYER}"
        return source


def _aliased(exprs: dict[str, str]) -> str:
    return ", ".join(f"{expr} AS {quote(name)}" for name, expr in exprs.items())


@dataclass(frozen=True)
class Built:
    """A source's canonical SELECT and the names of its source columns."""

    sql: str
    columns: tuple[str, ...]
    origin: bool = False  # its rows say where they were read (`ORIGIN_FILE`, `ORIGIN_LINE`), hidden from the view
    origin_file: str | None = None  # the one file its rows were read from, where they do not say it
    # the CSV and JSON-lines files whose rows were numbered in the order read: their readers skip blank lines
    # uncounted (`TelemetryStore.log_origins_sql` counts them)
    counted: tuple[str, ...] = ()


def build_select(
    con: duckdb.DuckDBPyConnection, source: Source, view: str, mapping: dict[str, str], warnings: list[str],
    raw_table: str | None = None, rejected: list[RejectedRows] | None = None, zone: str = "",
) -> list[Built]:
    """The validated canonical SELECT of `source` as view `view` (in parts when some of its CSV files have
    malformed lines); warnings about kept bad values are appended, and unreadable lines set aside to `rejected`.

    `raw_table`: read the files once into tables of that name (`<raw_table>`, `<raw_table>_1`, ...), and sample,
    validate and select from them instead of parsing the files for each step (a CSV metrics source is sampled from
    its files, which decides the columns read as numbers: `_read_metrics_once`); the caller drops them. `zone`: the
    IANA zone its times written without one are in (none: UTC)."""
    set_aside = rejected if rejected is not None else []
    try:
        source = with_schema(con, source)
    except NotAllObjectsError:
        source = _without_bad_json(con, source, warnings, set_aside)
    except duckdb.Error as err:
        if not is_malformed_json(source, err):
            raise read_error(source, err) from None
        source = _without_bad_json(con, source, warnings, set_aside)
    try:
        return [_build(con, source, view, mapping, warnings, raw_table, zone)]
    except _Malformed as malformed:
        if malformed.source.fmt != "csv":
            clean = _without_bad_json(con, malformed.source, warnings, set_aside)
            return [_build(con, clean, view, mapping, warnings, zone=zone)]
        named = _file_named(malformed.source, malformed.error) if raw_table else None
        if named is not None:
            said = len(warnings)
            try:
                return _built_past_malformed(con, malformed, view, mapping, warnings, raw_table, set_aside, zone,
                                             suspects=(named,))
            except duckdb.InterruptException:
                raise
            except (_Malformed, InputError, duckdb.Error):
                del warnings[said:]  # the other files hold malformed lines too: each file is looked at
        return _built_past_malformed(con, malformed, view, mapping, warnings, raw_table, set_aside, zone)


def _built_past_malformed(
    con: duckdb.DuckDBPyConnection, malformed: _Malformed, view: str, mapping: dict[str, str], warnings: list[str],
    raw_table: str | None, set_aside: list[RejectedRows], zone: str, suspects: tuple[Path, ...] = (),
) -> list[Built]:
    """`build_select`'s parts of a CSV source with malformed lines: its clean files, and its files with malformed
    lines, which skip them (`split_malformed`, which looks for them in `suspects` alone, if given: the clean part's
    strict read then checks the other files hold none, and raises if one does)."""
    parts, lines = split_malformed(con, malformed.source, malformed.error, suspects)
    built = [_build(con, part, view, mapping, warnings, raw_table and f"{raw_table}_{i}", zone)
             for i, part in enumerate(parts, 1)]
    if view == "logs" and raw_table:  # the last part reads the files with the lines set aside
        _count_skipped_lines(con, quote(f"{raw_table}_{len(parts)}"), lines)
    _set_aside(lines, warnings, set_aside)
    return built


def _file_named(source: Source, error: duckdb.Error) -> Path | None:
    """The file of several of `source`'s that a reader's `error` names (`file = <path>`), if it names one: where a
    malformed line stopped the read. Looked for there first, the files' lines are not all read twice more, by a
    tolerant reader listing the lines it skips and by a strict one (~0.4 s CPU of an hour of Nezha log minutes
    with one such line)."""
    said = error_file(error)
    return next((path for path in source.files if str(path) == said), None) if len(source.files) > 1 else None


def _read_once(con: duckdb.DuckDBPyConnection, source: Source, table: str | None, numbered: bool = False) -> Source:
    """The source's rows as read into `table` (None: the source as it is, read on every query); `numbered`: each
    row with its file and its number in it (`_numbered_sql`)."""
    if table is None:
        return source
    rows = _numbered_sql(con, source) if numbered else f"SELECT * FROM {source.from_sql}"
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS {rows}")
    except duckdb.Error as err:
        raise _read_failure(source, err) from None
    if numbered and source.fmt == "csv":
        _count_spanned_lines(con, quote(table))
    return replace(source, table=quote(table))


_ORIGIN = (ORIGIN_FILE, ORIGIN_LINE)


def _has_lines(con: duckdb.DuckDBPyConnection, source: Source) -> bool:
    """The source is a table whose rows carry their own file lines (`set_aside_bad_json`)."""
    return source.table is not None and ORIGIN_LINE in _columns_of(con, source.table)


def _numbered_sql(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    """The SELECT of the source's rows in file order, each with its line (`ORIGIN_LINE`) and, of several files,
    its file (`ORIGIN_FILE`; of one, the view names it: a column of one value costs memory in every row), numbered
    as read (DuckDB keeps the files' order; a CSV record on the line after the header and the records before it,
    `_count_spanned_lines` adds the lines their quoted values span). A table that has them (the good lines of a JSON
    file with bad ones, `set_aside_bad_json`) keeps its own."""
    if _has_lines(con, source):
        return f"SELECT * FROM {source.table}"
    first = 1 + source.skip if source.fmt == "csv" else 0  # a CSV file's header line, below its comment lines
    if len(source.files) == 1:
        return f"SELECT *, CAST(row_number() OVER () + {first} AS INTEGER) AS {ORIGIN_LINE} FROM {source.from_sql}"
    if source.fmt == "csv" and source.text_columns:
        return _numbered_each_sql(source, first)
    read = f"SELECT *, filename AS {ORIGIN_FILE}, row_number() OVER () AS _incidentlens_read FROM {source.from_sql}"
    # the window over each file's rows gives them back in another order: sorted back to the files' own
    line = f"_incidentlens_read - min(_incidentlens_read) OVER (PARTITION BY {ORIGIN_FILE}) + {first + 1}"
    return (f"SELECT * EXCLUDE (_incidentlens_read), CAST({line} AS INTEGER) AS {ORIGIN_LINE} FROM ({read}) "
            "ORDER BY _incidentlens_read")


def _numbered_each_sql(source: Source, first: int) -> str:
    """`_numbered_sql` of several CSV files of one header: each file numbered by a read of its own, the reads in
    one UNION ALL, which DuckDB runs at once on its threads (one window over every file's rows, partitioned by
    file, ran on one: an hour's 24 log minute files 0.53 s, 0.38 s so), then put back in the files' order."""
    reads = " UNION ALL ".join(
        f"SELECT *, {literal(str(path))} AS {ORIGIN_FILE}, {k} AS _incidentlens_file, "
        f"CAST(row_number() OVER () + {first} AS INTEGER) AS {ORIGIN_LINE} FROM {source.for_file(path).from_sql}"
        for k, path in enumerate(source.files))
    return f"SELECT * EXCLUDE (_incidentlens_file) FROM ({reads}) ORDER BY _incidentlens_file, {ORIGIN_LINE}"


def _count_spanned_lines(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """A CSV record whose quoted values span lines (a stack trace in a message) moves every later record of its
    file down by the newlines in them: the lines of `table` (`_numbered_sql`) moved so, in one pass when any value
    holds a newline (one cheap scan says whether any does)."""
    types = _column_types(con, table)
    texts = [quote(c) for c, kind in types if kind == "VARCHAR" and c not in _ORIGIN]
    if not texts or not con.execute(
            f"SELECT bool_or({' OR '.join(f'contains({c}, chr(10))' for c in texts)}) FROM {table}").fetchone()[0]:
        return
    newlines = " + ".join(f"coalesce(length({c}) - length(replace({c}, chr(10), '')), 0)" for c in texts)
    files = f"{ORIGIN_FILE}, " if ORIGIN_FILE in dict(types) else ""  # several files: each its own lines
    partition = f"PARTITION BY {files[:-2]} " if files else ""
    before = (f"coalesce(sum({newlines}) OVER ({partition}ORDER BY {ORIGIN_LINE} "
              "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)")
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * REPLACE ({ORIGIN_LINE} + {before} AS {ORIGIN_LINE}) "
                f"FROM {table} ORDER BY {files}{ORIGIN_LINE}")


def _count_skipped_lines(con: duckdb.DuckDBPyConnection, table: str, rejected: list[RejectedRows]) -> None:
    """The lines of `table` (`_numbered_sql`, read past malformed lines) moved down by the lines set aside before
    each: a set-aside line L, the i-th of its file, has L - i good lines before it, so it precedes every good line
    numbered past that (an ASOF join finds the last such, whose i is the shift)."""
    before: dict[tuple[str, int], int] = {}
    for rows in rejected:
        for i, (line, _, _) in enumerate(rows.rows, 1):
            before[(rows.file, line - i)] = i  # lines set aside one after another: the last of them counts
    several = ORIGIN_FILE in _columns_of(con, table)  # else the one file all the lines set aside are of
    same_file, files = (f"t.{ORIGIN_FILE} = s.file AND ", f"t.{ORIGIN_FILE}, ") if several else ("", "")
    # the shifts as query parameters, not a registered pyarrow table: building one from Python values imports
    # pandas (~0.35 s of a CLI run whose log files hold a malformed line)
    skipped = ("(SELECT unnest($files::VARCHAR[]) AS file, unnest($good::BIGINT[]) AS good, "
               "unnest($shift::BIGINT[]) AS shift)")
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT t.* REPLACE "
                f"(t.{ORIGIN_LINE} + coalesce(s.shift, 0) AS {ORIGIN_LINE}) "
                f"FROM {table} AS t ASOF LEFT JOIN {skipped} AS s "
                f"ON {same_file}t.{ORIGIN_LINE} > s.good ORDER BY {files}t.{ORIGIN_LINE}",
                {"files": [file for file, _ in before], "good": [good for _, good in before],
                 "shift": list(before.values())})


def _column_types(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(row[0], str(row[1]).upper()) for row in con.execute(f"DESCRIBE {table}").fetchall()]


def _columns_of(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, ...]:
    return tuple(name for name, _ in _column_types(con, table))


def _read_metrics_once(
    con: duckdb.DuckDBPyConnection, source: Source, table: str, columns: Columns, mapping: dict[str, str],
    whole: bool,
) -> tuple[Source, Columns, tuple[str, TimeFormat] | None]:
    """A CSV metrics source read into `table` (sampled from its files), its metric value columns as DOUBLE, and
    the time column and format the sample was found to hold (None: to be looked for again).

    The CSV reader takes a value as a number exactly as TRY_CAST does, or fails; then the source is read as text
    as any other, and the values that are no number are counted. Parsing each value once, as it is read, saves
    casting it again in every later pass (the validation, the canonical rows). `whole`: the sample holds every
    row, and is kept as the rows instead (as text: casting that few costs less than reading them again)."""
    if whole:
        con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT * FROM {_SAMPLE}")
        return replace(source, table=quote(table)), columns, None
    probe = Canonical(source, columns)
    try:
        _metrics(con, probe, mapping)
        values = frozenset(probe.nonfinite)  # the metric value columns: each has its check of NaN and Infinity
    except InputError:
        values = frozenset()  # raised again, from the same sample, by the canonical select
    if values:
        try:
            # in time order (the probe's time: `_metrics` chose one, or raised): a day of per-pod files is each
            # pod's day after another's, so every block of the canonical rows spans the day; ordered, a query of an
            # hour reads the blocks of that hour alone
            con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT * FROM "
                        f"{replace(source, number_columns=values).from_sql} ORDER BY {probe.time_sql}")
            numeric = {name: cast for name, cast in columns.numeric.items() if name not in values}
            typed = Columns({**columns.types, **dict.fromkeys(values, "DOUBLE")}, numeric)
            # the probe's time, found on the same sample (its time candidates are no value column: the same text)
            return replace(source, table=quote(table)), typed, probe.found_time
        except duckdb.Error:
            pass  # a value that is no number, or a malformed line: the text read counts or reports it
    return _read_once(con, source, table), columns, None


def _without_bad_json(
    con: duckdb.DuckDBPyConnection, source: Source, warnings: list[str], rejected: list[RejectedRows]
) -> Source:
    clean, lines = set_aside_bad_json(con, source)
    _set_aside(lines, warnings, rejected)
    return clean


def _set_aside(lines: list[RejectedRows], warnings: list[str], rejected: list[RejectedRows]) -> None:
    """Each file's lines set aside, listed, and counted in one warning (which the CLI says with the listing)."""
    rejected.extend(lines)
    warnings.extend(f"{r.file}: {r.note()}, set aside" for r in lines)


class _Malformed(Exception):
    """A CSV structure error or a bad JSON line: setting lines aside may get past it."""

    def __init__(self, source: Source, error: duckdb.Error) -> None:
        super().__init__(source.label)
        self.source, self.error = source, error


def _build(
    con: duckdb.DuckDBPyConnection, source: Source, view: str, mapping: dict[str, str], warnings: list[str],
    raw_table: str | None = None, zone: str = "",
) -> Built:
    numbered = view == "logs" and bool(source.files)
    objects: frozenset[str] = frozenset()
    in_order = numbered and raw_table is not None and source.fmt in ("csv", "jsonl") and not _has_lines(con, source)
    if raw_table is not None and view == "metrics" and source.fmt == "csv" and not source.skip_malformed:
        whole = _sample(con, source) < SAMPLE_ROWS  # from the files: it decides which columns to read as numbers
        source, columns, time = _read_metrics_once(con, source, raw_table, _profile(con, source), mapping, whole)
    else:
        source = _read_once(con, source, raw_table, numbered=numbered)
        _sample(con, source)
        if view != "logs":  # the logs view reads a structured line's fields by its own rules (`_logs`)
            source, objects = _fields_as_columns(con, source, raw_table)
        columns, time = _profile(con, source), None
    canonical = Canonical(source, columns, zone=zone, found_time=time, objects=objects)
    {"metrics": _metrics, "logs": _logs, "spans": _spans, "events": _events, "calls": _calls}[view](
        con, canonical, mapping)
    canonical.add_rest()
    warnings.extend(canonical.notes)
    _check_repeats(canonical, warnings)
    warnings.extend(f"{source.label}: column {name!r}: read as text, not as numbers{columns.comma_hint(name)}"
                    for name in columns.decimal_comma if not columns.is_number(name))
    missing, bad_times = _validate(con, canonical, warnings)
    con.execute(f"DROP TABLE IF EXISTS {_SAMPLE}")
    # A plain-text log keeps its entries without a time (an unknown line format): templates still read them.
    keep = missing == 0 or source.fmt == "text"
    sql = canonical.select_sql(keep_missing_times=keep, left_out=bad_times)
    one_file = str(source.files[0]) if ORIGIN_FILE not in canonical.exprs and source.files else None
    return Built(sql, tuple(name for name in columns.types if name not in _ORIGIN),
                 origin=ORIGIN_LINE in canonical.exprs, origin_file=one_file,
                 counted=tuple(map(str, source.files)) if in_order else ())


def _fields_as_columns(
    con: duckdb.DuckDBPyConnection, source: Source, raw_table: str | None
) -> tuple[Source, frozenset[str]]:
    """A JSON source whose records hold objects (`{"service": {"name": "api"}, "metric": {"name": "p95_ms",
    "value": 12}}`, OpenTelemetry's `{"resource": {"service.name": "api"}}`) as a table with a column per field,
    named by its dotted path (`service.name`, `metric.value`, `resource.service.name`) and found by it as a column
    of that name would be, the objects themselves left out (`service` holding `{"name": ...}` is no service name);
    as the logs view reads the same fields (`_nested_fields`). A column holding a plain value in some rows
    (`"service": "web"`) stays, with those values alone: returned beside the source (`Canonical.objects`). Other
    sources, and JSON without objects, as they are; the table is `<raw_table>_fields` (dropped with the raw table),
    and the sample is taken again from it. A time is not looked for in objects (as for logs): a bad one's row is
    found again in the files, which have no column of its name."""
    if source.fmt not in ("json", "jsonl"):
        return source, frozenset()
    types = {row[0]: row[1] for row in con.execute(f"DESCRIBE {_SAMPLE}").fetchall()}
    times = {*CANDIDATES["time"], *CANDIDATES["start"], *CANDIDATES["end"]}
    fields = {name: sql for name, sql in _nested_fields(con, source.fmt, types, exclude=set()).items()
              if normalise(name) not in times}
    if not fields:
        return source, frozenset()
    objects = sorted({name.split(".", 1)[0] for name in fields})
    table = quote(f"{raw_table}_fields" if raw_table else f"_incidentlens_fields_{next(_FIELD_TABLES)}")
    plain = {name: _plain_sql(name) for name in objects}
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * REPLACE ({_aliased(plain)}), "
                f"{_aliased(fields)} FROM {source.from_sql}")
    # over every row, not the sample's: a plain value first written past it is kept too
    held = con.execute(f"SELECT {', '.join(f'count({quote(name)})' for name in objects)} FROM {table}").fetchone()
    only_objects = [name for name, count in zip(objects, held, strict=True) if not count]
    for name in only_objects:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {quote(name)}")
    flat = replace(source, table=table)
    _sample(con, flat)
    return flat, frozenset(objects) - set(only_objects)


def _check_repeats(c: Canonical, warnings: list[str]) -> None:
    """A CSV header or Parquet schema giving a name twice: an InputError when either column is read for a role
    (time, service, a metric, ...: which one is meant cannot be told), else a warning saying what the repeat is kept
    as."""
    # names are compared in lower case, as DuckDB does (the first `Message` and a repeated `message`)
    read = " ".join([*c.exprs.values(), *(expr for layer in c.layers for expr in layer.values())]).lower()
    for repeat in c.source.repeated:
        where = f"{c.source.label}: {repeat.describe()}"
        if quote(repeat.kept_as).lower() in read or quote(repeat.name).lower() in read:
            raise InputError(f"{where}, and IncidentLens reads one: rename one")
        warnings.append(f"{where}: the second is kept as {repeat.kept_as!r}")


def _sample(con: duckdb.DuckDBPyConnection, source: Source) -> int:
    """The source's first `SAMPLE_ROWS` rows as the sample table; returns how many there are."""
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_SAMPLE} AS SELECT * FROM {source.from_sql} LIMIT {SAMPLE_ROWS}")
    except duckdb.Error as err:
        raise _read_failure(source, err) from None
    rows = con.execute(f"SELECT count(*) FROM {_SAMPLE}").fetchone()[0]
    if rows == 0:
        raise EmptySourceError(f"{source.label}: {NO_ROWS}")
    return rows


def _read_failure(source: Source, err: duckdb.Error) -> Exception:
    if is_malformed_csv(source, err) or is_malformed_json(source, err):
        return _Malformed(source, err)
    return read_error(source, err)


def _profile(con: duckdb.DuckDBPyConnection, source: Source) -> Columns:
    """Column types; for text formats, which VARCHAR columns hold numbers (decided on the sample)."""
    types = {row[0]: row[1] for row in con.execute(f"DESCRIBE {_SAMPLE}").fetchall()}
    columns = Columns(types)
    if source.fmt not in ("csv", "json", "jsonl"):
        return columns
    text = [c for c, t in types.items() if t.upper() == "VARCHAR"]
    if not text:
        return columns
    aggregates = ", ".join(_number_counts(c) for c in text)
    counts = con.execute(f"SELECT {aggregates} FROM ({_short_values(text)})").fetchone()
    for i, column in enumerate(text):
        nonempty, doubles, bigints, commas, example = counts[5 * i: 5 * i + 5]
        if nonempty and doubles > NUMERIC_SHARE * nonempty:
            columns.numeric[column] = "BIGINT" if bigints == doubles else "DOUBLE"
        if commas and doubles + commas > NUMERIC_SHARE * nonempty:
            columns.decimal_comma[column] = example
    return columns


def _number_counts(column: str) -> str:
    """The aggregates `_profile` reads of a text column over `_short_values`: its non-empty values, those that are
    numbers, integers, numbers with a decimal comma, and the least of those."""
    written, short = quote(column), _short(column)
    return (f"count({written}) - count({quote(short)}) + count(nullif(trim({quote(short)}), '')), "
            f"count({try_cast_text(quote(short), 'DOUBLE')}), count(*) FILTER ({_is_integer_text(short)}), "
            f"count(*) FILTER ({_decimal_comma(short)}), min(trim({quote(short)})) FILTER ({_decimal_comma(short)})")


def _short_values(columns: list[str]) -> str:
    """The sample's text columns, each beside its values of at most `LONGEST_NUMBER_TEXT` bytes (`_short`; a
    longer one NULL there): a log message's column then costs its length once, not a cast and three regular
    expressions (DuckDB evaluates a CASE branch on its own rows only). A longer value starting or ending with what
    a number's cast skips (`_NUMBER_PADDING`: spaces, tabs, no-break spaces) is kept whole where it is no longer
    once trimmed of that (a fixed-width export's padded cell: blank, or a right-aligned number): counted as it is
    written, the profile takes for a number what the cast will read as one, and no other (a mix of tabs outside
    no-break spaces the cast refuses). Testing every long value so would cost a message column most of what the
    length saves."""
    return (f"SELECT {', '.join(quote(c) for c in columns)}, "
            + ", ".join(f"{_short_sql(quote(c))} AS {quote(_short(c))}" for c in columns)
            + f" FROM {_SAMPLE}")


def _short_sql(value: str) -> str:
    padding = literal(_NUMBER_PADDING)
    trimmed = f"trim({value}, {padding})"
    # two anchored patterns, each cheap on a long message: one `^...|...$` cost ~6x as much, and `value[-1]` more
    # than the test of a space at either end did
    either_end = [literal(f"^[{_NUMBER_PADDING}]"), literal(f"[{_NUMBER_PADDING}]$")]
    padded = "(" + " OR ".join(f"regexp_matches({value}, {end})" for end in either_end) + ")"
    return (f"CASE WHEN strlen({value}) <= {LONGEST_NUMBER_TEXT} THEN {value} "
            f"WHEN {padded} AND strlen({trimmed}) <= {LONGEST_NUMBER_TEXT} THEN {value} END")


def _short(column: str) -> str:
    return f"_incidentlens_short {column}"


def _decimal_comma(column: str) -> str:
    """The condition of a value that is a number written with a comma: a decimal comma (`12,5`, `-0,25`; `1.234,5`)
    or thousands separators before a decimal point (`1,000.5`)."""
    return (f"regexp_full_match(trim({quote(column)}), "
            "'[-+]?(([0-9]{1,3}(\\.[0-9]{3})+|[0-9]*),[0-9]+|[0-9]{1,3}(,[0-9]{3})+\\.[0-9]+)')")


def _count_object_values(c: Canonical, value: str, fields: list[str], series: bool = False) -> None:
    """Count the rows whose value column holds a JSON object (read by its fields, `fields`; in the wide form,
    `series`, each a series of its own), not a number: kept as NULL, which of its fields is the value not being
    known."""
    held = " OR ".join(f"{quote(field)} IS NOT NULL" for field in fields) or "false"
    hint = f" (its fields{', series of their own' if series else ''}: {', '.join(fields)})" if fields else ""
    c.bad_values.append((value, f"{quote(value)} IS NULL AND ({held})",
                         f"rows holding a JSON object, not a number, kept as NULL{hint}"))


def _not_a_number(column: str, cast: str) -> str:
    present = f"nullif(trim({quote(column)}), '') IS NOT NULL"
    if cast == "BIGINT":
        return f"{present} AND NOT {_is_integer_text(column)}"
    return f"{present} AND {try_cast_text(quote(column), cast)} IS NULL"


def _is_integer_text(column: str) -> str:
    return f"regexp_full_match(trim({quote(column)}), '[-+]?[0-9]{{1,18}}')"


def _windows_time_hint(column: str) -> str:
    """For a Windows event export's `TimeCreated` written in the exporter's local, zoneless words (Export-Csv's
    `5/1/2024 10:05:00 AM`): how to export it with its offset."""
    if normalise(column) != "timecreated":
        return ""
    return ("; a Windows event export's TimeCreated is written in its machine's local words, without a zone: export "
            "it with its offset, e.g. Get-WinEvent ... | Select-Object @{n='TimeCreated';e={$_.TimeCreated."
            "ToString('o')}}, * -ExcludeProperty TimeCreated | Export-Csv events.csv")


def _why_not_epoch(value: str) -> str:
    """Why a column of small numbers (a step index 1, 2, 3, ...) is not read as epoch times, for its message."""
    try:
        small = abs(float(value)) < 1e8
    except ValueError:
        small = False
    if not small:
        return ""
    return " (a number under 1e8 is read as a counter or a step index, not as epoch seconds: write the times)"


def _is_search_answer(names: list[str]) -> bool:
    """The columns are those of an Elasticsearch or OpenSearch `_search` answer saved whole (`took`, `hits`, ...)."""
    return {"took", "hits"} <= {name.lower() for name in names}


def _records_under(con: duckdb.DuckDBPyConnection, c: Canonical, names: list[str]) -> str | None:
    """The column of a JSON file holding its records, a list of objects in every sampled row (`{"logs": [{...},
    ...]}`, kubectl's `{"items": [...]}`), else None."""
    if c.source.fmt not in ("json", "jsonl") or not c.source.files:
        return None
    texts = [name for name in names if c.columns.types[name] == "VARCHAR"]
    lists = [f"count(*) FILTER (CASE WHEN json_valid({quote(name)}) THEN json_type({quote(name)}) = 'ARRAY' AND "
             f"json_type({quote(name)}, '$[0]') = 'OBJECT' END)" for name in texts]
    if not lists:
        return None
    total, *counts = con.execute(f"SELECT count(*), {', '.join(lists)} FROM {_SAMPLE}").fetchone()
    return next((name for name, count in zip(texts, counts, strict=True) if count == total), None)


def _time_inside(con: duckdb.DuckDBPyConnection, c: Canonical, names: list[str], role: str) -> tuple[str, str] | None:
    """(column, key): a JSON file's column holding an object in every sampled row, each with the same key `role` is
    looked for by (an Elasticsearch dump's `_source.@timestamp`, Datadog's `attributes.timestamp`), else None."""
    if c.source.fmt not in ("json", "jsonl") or not c.source.files:
        return None
    wanted = ", ".join(literal(name) for name in CANDIDATES[role])
    for name in (name for name in names if c.columns.types[name] in ("VARCHAR", "JSON")):
        column = quote(name)
        normalised = "regexp_replace(lower(k), '[^a-z0-9]', '', 'g')"  # as `columns.normalise`
        key = f"list_filter(json_keys({column}), lambda k: {normalised} IN ({wanted}))[1]"
        found = f"CASE WHEN json_valid({column}) AND json_type({column}) = 'OBJECT' THEN {key} END"
        total, timed, keys = con.execute(
            f"SELECT count(*), count({found}), list_distinct(list({found})) FROM {_SAMPLE}").fetchone()
        if total and timed == total and len(keys) == 1:
            return name, keys[0]
    return None


def _choose_time(con: duckdb.DuckDBPyConnection, c: Canonical, role: str, mapping: dict[str, str]) -> None:
    """Pick the first time candidate that parses the whole sample (else the one parsing most) and its format (as
    found already, if it was: `Canonical.found_time`)."""
    if c.found_time is None:
        c.found_time = _found_time(con, c, role, mapping)
    column, fmt = c.found_time
    c.time_column, c.time_format = column, _checked(con, c.source, column, c.in_zone(fmt))
    c.time_sql = to_utc_sql(quote(column), c.time_format)
    c.used.add(column)
    _other_forms_said(con, c)


def _other_forms_said(con: duckdb.DuckDBPyConnection, c: Canonical) -> None:
    """A time column of one form in which some rows hold the other (two writers of one file): epoch numbers among
    ISO-8601 text, read by their size's unit, or ISO-8601 text among epoch numbers (`timeparse.to_utc_sql`), are
    counted in a warning, where the sample holds one: the user may want to check them. (Counted where the sample
    holds none, each row of every ISO column paid a regex scan: 5M times 0.36 CPU-s, most of what reading them
    costs.)"""
    text = _as_text(quote(c.time_column))
    if c.time_format.kind == "iso":
        other, words = written_epoch_sql(text), ("rows holding an epoch number among its ISO-8601 times, read in the "
                                                 "unit its size says (seconds, ms, us or ns)")
    elif c.time_format.kind == "epoch" and c.time_format.text:
        other, words = written_iso_sql(text), "rows holding ISO-8601 text among its epoch numbers, read as such"
    else:
        return
    if con.execute(f"SELECT count(*) FILTER ({other}) FROM {_SAMPLE}").fetchone()[0]:
        c.bad_values.append((c.time_column, other, words))


def _found_time(con: duckdb.DuckDBPyConnection, c: Canonical, role: str,
                mapping: dict[str, str]) -> tuple[str, TimeFormat]:
    """`_choose_time`'s column and format, from the sample; an InputError where none parses."""
    names = [name for name in c.columns.types if name not in _ORIGIN]  # the file's own: not where rows were read
    candidates = candidate_columns(names, role, mapping)
    if not candidates and role in mapping:
        # the column the user named is not there: "use --map time=COLUMN" would tell them to do what they did
        raise UntimedSourceError(f"{c.source.label}: no column {mapping[role]!r} (--map {role}={mapping[role]}); "
                                 f"its columns: {', '.join(names)}")
    if not candidates:
        looked = ", ".join(CANDIDATES[role])
        # the file's own columns, so the one to map can be picked from the line itself
        shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        records, inside = _records_under(con, c, names), _time_inside(con, c, names, role)
        # --map cannot name a field of the records a list holds (`{"logs": [{"ts": ...}, ...]}`), nor one inside an
        # object (`{"_source": {"@timestamp": ...}}`)
        advice = f"use --map {role}=COLUMN"
        if _is_search_answer(names):
            advice = ("an Elasticsearch or OpenSearch _search answer: its records sit in hits.hits, each under "
                      "_source: give them one a line, e.g. jq -c '.hits.hits[]._source' "
                      f"{c.source.files[0]} > records.jsonl")
        elif records:
            advice = (f"its records sit under {records!r}, a list: give them one a line, e.g. jq -c '.{records}[]' "
                      f"{c.source.files[0]} > records.jsonl")
        elif inside:
            advice = (f"its time, {inside[1]!r}, sits inside {inside[0]!r}, an object: lift its fields into each "
                      f"record, e.g. jq -c '. + .{inside[0]}' {c.source.files[0]} > records.jsonl")
        raise UntimedSourceError(f"{c.source.label}: no time column (looked for {looked}); its columns: {shown}; "
                                 f"{advice}")
    best: tuple[str, TimeFormat | None, float] = (candidates[0], None, 0.0)
    for column in candidates:
        fmt, share = detect_format(con, _SAMPLE, quote(column), c.columns.types[column])
        if fmt is not None and share == 1.0:
            best = (column, fmt, share)
            break
        if fmt is not None and share > best[2]:
            best = (column, fmt, share)
    column, fmt, _ = best
    if fmt is None:
        present = f"nullif(trim(CAST({quote(column)} AS VARCHAR)), '') IS NOT NULL"
        file, row, value = locate_first(con, c.source, present, quote(column))
        if value is None:
            raise InputError(f"{c.source.label}: column {column!r}: no time values (every row is empty)")
        why = _why_not_epoch(value) or unread_time_hint(value)
        raise InputError(f"{file}: column {column!r} row {row}: cannot parse {value!r} as a time{why}"
                         f"{_windows_time_hint(column)}")
    return column, fmt


def _checked(con: duckdb.DuckDBPyConnection, source: Source, column: str, fmt: TimeFormat) -> TimeFormat:
    """A time column's format, checking each value where some are past its epoch unit's bounds
    (`checked_if_past_bounds`)."""
    try:
        return checked_if_past_bounds(con, source.from_sql, quote(column), fmt)
    except duckdb.Error as err:
        raise _read_failure(source, err) from None


def _service_sql(c: Canonical, mapping: dict[str, str], exclude: tuple[str, ...] = ()) -> str:
    """The service of a row: its service column's (a pod column's without the replica suffix), else 'global'.
    The columns holding JSON objects (`Canonical.objects`) are read by their fields, and by their rows of a plain
    value (a `"service": "web"` beside `"service": {"name": "api"}`, read by `service.name`) where the column chosen
    has none."""
    column = find_column([*c.columns.types, *c.nested], "service", mapping, (*exclude, *c.objects))
    plain = find_column(sorted(c.objects), "service", mapping, exclude)
    if column is None and plain is None:
        return "'global'"
    parts = [f"CAST({c.column_sql(name)} AS VARCHAR)" if name == column else _plain_sql(name)
             for name in (column, plain) if name is not None]
    text = parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
    if column is not None and is_pod_column(column):
        return f"regexp_replace({text}, {literal(POD_SUFFIX)}, '')"
    c.used.update(name for name in (column, plain) if name is not None)
    return text


#: what a row of a trace export lacks whose reader found no service (NULL), for the warning counting them
_NO_SERVICE = {"jaeger": "spans with no process (no serviceName)", "zipkin": "spans with no localEndpoint.serviceName",
               "otlp": "rows whose resource has no service.name"}


def _unnamed_filed_as_global(c: Canonical) -> None:
    """A trace export's rows that name no service (a Jaeger span without its process) filed under `global`, as a
    file's rows without a service column are, and counted in a warning: not taken for a service's own."""
    if c.source.fmt in _NO_SERVICE:
        service = c.exprs["service"]
        c.bad_values.append(("service", f"({service}) IS NULL", f"{_NO_SERVICE[c.source.fmt]}, filed under "
                                                                  "service 'global'"))
        c.exprs["service"] = f"coalesce({service}, 'global')"


def _pod_column(c: Canonical, mapping: dict[str, str]) -> str | None:
    """The column naming the pod a metric row is of: the service column when it holds pod names, else a pod column
    beside it (`pod`, `pod_name`, `k8s.pod.name`, ...), else an `instance` column; None when the source names none."""
    names = list(c.columns.types)
    service = find_column(names, "service", mapping)
    if service is not None and is_pod_column(service) and not c.columns.is_number(service):
        return service
    pods = [n for n in names if normalise(n) in POD_COLUMNS and not c.columns.is_number(n)]
    # a scrape target (`instance`) tells replicas apart where nothing names a pod, as in Prometheus
    return next(iter(pods), None) or next((n for n in names if normalise(n) == "instance"
                                          and not c.columns.is_number(n)), None)


def _metrics(con: duckdb.DuckDBPyConnection, c: Canonical, mapping: dict[str, str]) -> None:
    _choose_time(con, c, "time", mapping)
    names = list(c.columns.types)
    c.exprs["ts"] = c.time_sql
    c.exprs["service"] = _service_sql(c, mapping)
    _unnamed_filed_as_global(c)
    pod = _pod_column(c, mapping)
    _metric_values(con, c, mapping, names)
    # Each pod's samples stay apart (the analysis reads one series per pod), while the service stays the unit.
    c.exprs["pod"] = f"CAST({quote(pod)} AS VARCHAR)" if pod else "CAST(NULL AS VARCHAR)"
    c.used.update({pod} if pod and normalise(pod) != "instance" else set())  # an instance column stays too


def _metric_values(con: duckdb.DuckDBPyConnection, c: Canonical, mapping: dict[str, str], names: list[str]) -> None:
    """The metric and value expressions: long form (a metric and a value column), else wide (unpivoted). A metric
    column holding JSON objects in some rows (`Canonical.objects`) is read by their fields, else its plain value."""
    plain = find_column(sorted(c.objects), "metric", mapping)
    metric = find_column(names, "metric", mapping, exclude=c.objects) or plain
    value = find_column(names, "value", mapping)
    if metric and value and c.columns.is_number(value) and not c.columns.is_number(metric):
        named = [f"CAST({quote(name)} AS VARCHAR)" for name in dict.fromkeys((metric, plain)) if name]
        c.exprs["metric"] = named[0] if len(named) == 1 else f"coalesce({', '.join(named)})"
        c.exprs["value"] = _finite_value(c, value)
        c.used.update({metric, value, plain} - {None})
        if value in c.columns.numeric:
            c.checks[value] = _not_a_number(value, "DOUBLE")
        if value in c.objects:
            _count_object_values(c, value, [name for name in names if name.startswith(f"{value}.")])
        return
    if metric and not value and not c.columns.is_number(metric):
        _refuse_object_values(c, names)
    if value and mapping.get("value", "").lower() == value.lower() and not c.columns.is_number(value):
        # the user's value column, read as no number: not a wide form that would leave it out unsaid
        raise InputError(f"{c.source.label}: --map value={mapping['value']}: {_no_numbers(con, value)[2:]}"
                         f"{c.columns.comma_hint(value)}; the value column is the long form's numbers (beside "
                         "--map metric=COLUMN)")
    time_like = set(candidate_columns(names, "time"))
    service_like = set(candidate_columns(names, "service", mapping))
    wide = [n for n in names if c.columns.is_number(n) and n not in time_like | service_like | c.used]
    if not wide:
        commas = "".join(f"; column {n!r} is no number{c.columns.comma_hint(n)}" for n in c.columns.decimal_comma)
        if metric and value and value not in c.columns.decimal_comma:
            commas += _no_numbers(con, value)
        commas += "".join(f"; {words}" for words in _with_units(con, c, names, time_like | service_like)[:1])
        raise InputError(
            f"{c.source.label}: no metric columns: expected numeric columns (wide form) or metric and value "
            f"columns (long form); use --map metric=COLUMN --map value=COLUMN{commas}"
        )
    c.exprs["metric"] = "[" + ", ".join(literal(n) for n in wide) + "]"
    c.exprs["value"] = "[" + ", ".join(_finite_value(c, n) for n in wide) + "]"
    c.unnested.update({"metric", "value"})
    parts = [_service_and_metric(n) for n in wide]
    if c.exprs["service"] == "'global'" and any(service != "global" for service, _ in parts):
        # a column per series named as `detect` names one, `payments/p95_ms`: that service's metric
        c.exprs["service"] = "[" + ", ".join(literal(service) for service, _ in parts) + "]"
        c.exprs["metric"] = "[" + ", ".join(literal(metric) for _, metric in parts) + "]"
        c.unnested.add("service")
    c.used.update(wide)
    c.notes.extend(f"{c.source.label}: {words}" for words in _with_units(con, c, names, time_like | service_like))
    for column in wide:
        if column in c.columns.numeric:
            c.checks[column] = _not_a_number(column, "DOUBLE")
        if column in c.objects:  # its object's fields are series of their own (`p95_ms.avg`)
            _count_object_values(c, column, [name for name in names if name.startswith(f"{column}.")], series=True)


def _refuse_object_values(c: Canonical, names: list[str]) -> None:
    """An InputError for a long-form file (a metric column) whose value column holds a JSON object in every row
    (`"value": {"avg": 12, "max": 30}`): read wide, each of the object's fields became one series of every metric's
    values (`value.avg`), the metric column left aside. Which field is the value is not known: the user says."""
    fields = [name for name in names if "." in name and normalise(name.split(".", 1)[0]) in CANDIDATES["value"]]
    if fields:
        column = fields[0].split(".", 1)[0]
        raise InputError(f"{c.source.label}: column {column!r} holds a JSON object, not a number, in every row (its "
                         f"fields: {', '.join(fields)}): say which field is the value, e.g. --map value={fields[0]}")


def _service_and_metric(column: str) -> tuple[str, str]:
    """A wide column's service and metric: `payments/p95_ms` -> (payments, p95_ms), as `detect` names a series; a
    rate's unit (`req/s`, `errors/min`, `MB/sec`) or a name without an inner slash -> (global, the column)."""
    if "/" not in column.strip("/"):
        return "global", column
    service, metric = column.split("/", 1)
    return ("global", column) if _PER_TIME_UNIT.fullmatch(metric.strip()) else (service, metric)


def _wide_edges_hint(c: Canonical, names: list[str]) -> str:
    """Words for a calls file laid out wide, a numeric column per edge (`frontend_adservice`, as Nezha's
    source_50.csv): it needs the long layout, one row per edge and time. Nothing where a column besides the times
    holds text: a long layout whose caller column has a name of its own (`from_svc`) needs only `--map`, its
    `latency_ms` and `status_code` no edges."""
    times = set(candidate_columns(names, "time")) | {c.time_column}
    edges = [n for n in names if "_" in n.strip("_") and c.columns.is_number(n)]
    if len(edges) < 2 or any(not c.columns.is_number(n) for n in names if n not in times):
        return ""
    return (f"; its columns {edges[0]!r}, {edges[1]!r}, ... look like one per call edge: write a row per time and "
            "edge instead (time, caller, callee, side, latency)")


def _no_numbers(con: duckdb.DuckDBPyConnection, column: str) -> str:
    """Words for the error about a long form's value column that holds no numbers: its first value in the sample
    that is none, with its row."""
    first = con.execute(
        f"SELECT row, value FROM (SELECT row_number() OVER () AS row, trim(CAST({quote(column)} AS VARCHAR)) AS value"
        f" FROM {_SAMPLE}) WHERE value <> '' AND TRY_CAST(value AS DOUBLE) IS NULL LIMIT 1"
    ).fetchone()
    where = f" (row {first[0]}: {first[1]!r})" if first else ""
    return f"; column {column!r} holds no numbers{where}"


#: a number written with its unit (`52 ms`, `12.5%`, `1.2 GiB`, `3 req/s`), as a dashboard's formatted export writes
#: values: a unit of time, a share, a size, a rate or a thousand's suffix (`1.2 K`), not any word (`200 OK`)
_WITH_UNIT = (r"(?i)[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*(ns|µs|us|ms|s|sec|m|min|h|hours?|d|days?|%|"
              r"percent|[kmgtp]?i?b|bytes|[kmgt]?bps|[kmgt]?(bit|b)/s|k|mil|bil|req/s|rps|ops/s|iops|/s|/sec|/min|"
              r"cps|[kmg]?hz)")


def _with_units(con: duckdb.DuckDBPyConnection, c: Canonical, names: list[str], roles: set[str]) -> list[str]:
    """Words about each text column of a metrics file, outside the roles and those read, that holds numbers written
    with a unit (`52 ms`: Grafana's CSV with "Formatted data" on): no number, so no wide form's metric."""
    said = []
    for column in (n for n in names if n not in roles | c.used and not c.columns.is_number(n)):
        first = con.execute(
            f"SELECT value FROM (SELECT trim(CAST({quote(column)} AS VARCHAR)) AS value FROM {_SAMPLE}) "
            f"WHERE regexp_full_match(value, {literal(_WITH_UNIT)}) LIMIT 1").fetchone()
        if first:
            said.append(f"column {column!r} holds numbers written with a unit ({first[0]!r}), not read as a "
                        "metric: export the values without units (Grafana: Formatted data off)")
    return said


def _finite_value(c: Canonical, column: str) -> str:
    """A metric value column as DOUBLE with NaN, +-Infinity and magnitudes past MAX_METRIC_MAGNITUDE left out
    (NULL, counted): no fit, chart or impact figure can use them, and one would swamp every mean and scale it
    touches. (DuckDB orders NaN above every number, so the comparison also leaves NaN out.)"""
    number = c.columns.number_sql(column, "DOUBLE")
    usable = f"abs({number}) <= {MAX_METRIC_MAGNITUDE:g}"
    c.nonfinite[column] = f"NOT ({usable})"
    return f"CASE WHEN {usable} THEN {number} END"


def _logs(con: duckdb.DuckDBPyConnection, c: Canonical, mapping: dict[str, str]) -> None:
    _choose_time(con, c, "time", mapping)
    origin = _origin(c)  # first: a Parquet row's number is read in the layer over the files
    names = list(c.columns.types)
    message = find_column(names, "message", mapping, exclude=c.used)
    if message is None:
        looked = ", ".join(CANDIDATES["message"])
        raise InputError(f"{c.source.label}: no message column (looked for {looked}); use --map message=COLUMN")
    payloads = _payloads(c, names, message)
    written = f"coalesce({', '.join(map(quote, payloads))})" if payloads else quote(message)
    # a JSON line without the field, an empty CSV cell, Loki's null line: kept, and counted (templates skip them)
    c.bad_values.append((message, f"{written} IS NULL", "rows empty or absent, kept with no message"))
    line = _unwrapped_sql(con, written)
    if c.source.fmt in ("json", "jsonl"):  # a JSON array, not text that looks like one
        line = _bytes_decoded_sql(con, line)
    line = _colours_dropped_sql(con, _line_break_dropped_sql(con, line))
    structured = _sample_holds_json_objects(con, line)
    if line != _as_text(quote(message)):
        [line] = c.computed({"_incidentlens_line": line})
    message_sql, level_field = line, None
    if structured:
        message_sql, level_field = c.computed({"_incidentlens_message": _json_message_sql(line),
                                               "_incidentlens_level_field": _json_level_sql(line)})
    said = _said_level_sql(message_sql, level_field)
    c.used.update(payloads)
    c.nested = _nested_fields(con, c.source.fmt, c.columns.types, exclude=c.used | {message})
    # a column holding objects is read by its fields (`service.name`), not as JSON text (`{"name": "payments"}`)
    objects = c.objects = frozenset(name.split(".", 1)[0] for name in c.nested)
    level = find_column([*names, *c.nested], "level", mapping, exclude=c.used | {message} | objects)
    # ... and where such a column holds a plain value in a row (`"level": "ERROR"` beside one `"level": {...}`), by
    # that value: left out, every line's level was lost with the one object's
    plain_level = find_column(sorted(objects), "level", mapping, exclude=c.used | {message})
    if level is None and plain_level is None:
        level = _status_level(con, c, names, exclude=c.used | {message})
    levels = [_level_sql(sql) for sql in (level and c.column_sql(level), plain_level and _plain_sql(plain_level))
              if sql]
    if level is not None and _is_windows_level(names, level):
        levels[0] = _windows_level_sql(c.column_sql(level))
    c.exprs["ts"] = c.time_sql
    c.exprs["service"] = _service_sql(c, mapping, exclude=(message,))
    logger = _logger_column(c, names) if c.exprs["service"] == "'global'" else None
    if logger is not None:
        c.exprs["service"] = f"coalesce(nullif(trim({_logger_sql(c, logger)}), ''), 'global')"
        c.used.add(logger)
    elif c.exprs["service"] == "'global'" and (container := _container_sql(c)):
        c.exprs["service"] = container
    _unnamed_filed_as_global(c)
    c.exprs["level"] = f"coalesce({', '.join(levels)})" if levels else said
    if levels and structured:
        # A level column comes first; a JSON line whose column is empty still has its own.
        c.exprs["level"] = f"coalesce({c.exprs['level']}, CASE WHEN {json_object_sql(line)} THEN {said} END)"
    elif plain_level:  # a row whose level column holds an object has the level its message says
        c.exprs["level"] = f"coalesce({c.exprs['level']}, {said})"
    c.exprs["message"] = message_sql
    c.exprs.update(origin)
    c.used.update({message} | ({level} if level else set()) | ({plain_level} if plain_level else set()))


def _is_windows_level(names: list[str], level: str) -> bool:
    """The level column is a Windows event's `Level` number (`logfields.WINDOWS_LEVELS`): its name `Level` in an
    export with `TimeCreated` and `ProviderName` (which has no `LevelDisplayName`, else that is the level)."""
    return normalise(level) == "level" and {normalise(name) for name in names} >= WINDOWS_EVENT_COLUMNS


def _windows_level_sql(level_sql: str) -> str:
    """A Windows event's `Level` number as its level (2 ERROR, 4 INFO); any other value as a level column's is."""
    windows = "MAP {" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in WINDOWS_LEVELS.items()) + "}"
    return f"coalesce({windows}[trim(CAST({level_sql} AS VARCHAR))], {_level_sql(level_sql)})"


def _status_level(con: duckdb.DuckDBPyConnection, c: Canonical, names: list[str], exclude: set[str]) -> str | None:
    """A `Status` text column whose sampled values are level words (`logfields.STATUS_LEVELS`: Datadog's export),
    the level of a log with no level column; else None (an HTTP status: 200, 503)."""
    status = next((name for name in names if normalise(name) == "status" and name not in exclude
                   and not c.columns.is_number(name)), None)
    if status is None:
        return None
    upper = f"nullif(upper(trim(CAST({quote(status)} AS VARCHAR))), '')"
    words = ", ".join(literal(word) for word in sorted(STATUS_LEVELS))
    present, levels = con.execute(f"SELECT count({upper}), count(*) FILTER ({upper} IN ({words})) "
                                  f"FROM {_SAMPLE}").fetchone()
    return status if present and levels >= STATUS_LEVEL_SHARE * present else None


#: the log Docker's json-file driver writes of a container: `/var/lib/docker/containers/<id>/<id>-json.log`, rotated
#: `<id>-json.log.1`, compressed `<id>-json.log.1.gz`; the id's first 12 digits are the id `docker ps` shows
_DOCKER_JSON_LOG = r"([0-9a-f]{12})[0-9a-f]{52}-json\.log(?:\.\d+)?(?:\.gz)?$"


def _container_sql(c: Canonical) -> str | None:
    """The service of a Docker json-file log's lines, which name none: their container's short id, from their file's
    name (each row's, of several files); None where a file is not named so."""
    if not c.source.files or not all(re.search(_DOCKER_JSON_LOG, path.name) for path in c.source.files):
        return None
    if ORIGIN_FILE in c.columns.types:
        return f"regexp_extract({quote(ORIGIN_FILE)}, {literal(_DOCKER_JSON_LOG)}, 1)"
    return literal(re.search(_DOCKER_JSON_LOG, c.source.files[0].name).group(1))


def _payloads(c: Canonical, names: list[str], message: str) -> list[str]:
    """The columns of a Google Cloud Logging entry's message where the message column is one of them and another is
    there too (`textPayload` in some entries, `jsonPayload` in others): each entry's, read from whichever it has;
    else none (the message column alone)."""
    by_key = {normalise(name): name for name in names}
    payloads = [by_key[key] for key in GCP_PAYLOADS if key in by_key]
    return payloads if message in payloads and len(payloads) > 1 else []


#: a logger's name, the service of a log line where no column names one (`payments.api`): structlog's `logger`,
#: logstash's `logger_name`, ECS's `log.logger` (a field of its `log` object, or a dotted key), Serilog's
#: `SourceContext`
_LOGGER_KEYS = ("logger", "loggername", "loglogger", "sourcecontext")


def _logger_column(c: Canonical, names: list[str]) -> str | None:
    """The column (or nested field) naming a log line's logger, if any: `logger`, `logger_name`, `log.logger`, or
    python-json-logger's `name` beside its `levelname` (the standard library's record attributes: no other `name`,
    a user's, say)."""
    by_key = {normalise(name): name for name in reversed([*names, *c.nested]) if name not in c.used}
    column = next((by_key[key] for key in _LOGGER_KEYS if key in by_key), None)
    return column or (by_key.get("name") if "levelname" in by_key else None)


def _logger_sql(c: Canonical, logger: str) -> str:
    """A logger column's name as text: of one holding JSON objects in some lines (`Canonical.objects`), their `name`
    field (`{"name": "payments.api"}`), else its plain value, not the object's JSON text."""
    if logger not in c.objects:
        return f"CAST({c.column_sql(logger)} AS VARCHAR)"
    named = f"{logger}.name"
    return f"coalesce({c.column_sql(named)}, {_plain_sql(logger)})" if named in c.nested else _plain_sql(logger)


def _plain_sql(column: str) -> str:
    """A column that holds JSON objects in some rows (read by their fields, `_nested_fields`) where it holds a plain
    value; NULL where it holds an object."""
    text = f"CAST({quote(column)} AS VARCHAR)"
    return f"CASE WHEN NOT {json_object_sql(text)} THEN {text} END"


def _nested_fields(
    con: duckdb.DuckDBPyConnection, fmt: str, types: dict[str, str], exclude: set[str]
) -> dict[str, str]:
    """The fields of the JSON objects a JSON file's records hold (ECS's `{"log": {"level": "error"}, "service":
    {"name": "payments"}, ...}`), up to `NESTED_DEPTH` deep, by their dotted names (`log.level`, `service.name`, as
    a dotted key is named) -> the SQL reading each as text; from the sample's keys. A name a column has is kept
    for the column; the columns in `exclude` (the time, the message: a structured line is read by its own rules)
    are not looked into."""
    if fmt not in ("json", "jsonl"):
        return {}
    taken = {name.lower() for name in types}
    # (column, keys) of values that may be objects: every text column, then the fields found to hold objects
    parents = {name: (name, ()) for name, kind in types.items() if kind.upper() == "VARCHAR" and name not in exclude}
    fields: dict[str, str] = {}
    for _ in range(NESTED_DEPTH):
        if not parents:
            break
        reads = {name: _json_field_sql("json_extract", column, keys) for name, (column, keys) in parents.items()}
        keys_sql = " UNION ALL ".join(
            # the CASE inside: outside, DuckDB ran json_keys on a string beside the objects (`"web"`) and failed
            f"SELECT {literal(name)} AS parent, unnest(json_keys(CASE WHEN "
            f"{json_object_sql(f'CAST({sql} AS VARCHAR)')} THEN {sql} END)) AS key FROM {_SAMPLE}"
            for name, sql in reads.items())
        found = con.execute(f"SELECT DISTINCT parent, key FROM ({keys_sql}) ORDER BY ALL").fetchall()
        children = {}
        for parent, key in found:
            column, keys = parents[parent]
            dotted = f"{parent}.{key}"
            if dotted.lower() not in taken and '"' not in key and "\\" not in key:  # as a JSON path quotes it
                fields[dotted] = _json_field_sql("json_extract_string", column, (*keys, key))
                children[dotted] = (column, (*keys, key))
        parents = children
    return fields


def _json_field_sql(function: str, column: str, keys: tuple[str, ...]) -> str:
    """`json_extract_string("log", '$."level"')`: a field of the JSON in a column (the column itself for no keys);
    NULL in a row whose column holds no JSON (a string beside the objects: `"web"`, where others hold `{"name":
    "api"}`), which json_extract would fail the whole query on."""
    if not keys:
        return quote(column)
    path = "$." + ".".join(f'"{key}"' for key in keys)
    return f"{function}(CASE WHEN json_valid({quote(column)}) THEN {quote(column)} END, {literal(path)})"


def _origin(c: Canonical) -> dict[str, str]:
    """Where an entry read from a CSV, JSON or Parquet file was read (`ORIGIN_FILE`, `ORIGIN_LINE`), as a
    plain-text log's entries have their `file` and `line`: a text file's rows carry theirs from the read
    (`_numbered_sql`); a Parquet row is numbered in its file by the reader (`file_row_number`, 1-based here), in the
    layer over the files, where the reader's columns are. The store keeps them out of the public view (the file is
    no attribute of the entry's service, so not a contrast dimension): `TelemetryStore.log_origins_sql`."""
    if ORIGIN_LINE in c.columns.types:  # of one file, the store names it (`Built.origin_file`)
        return {name: quote(name) for name in _ORIGIN if name in c.columns.types}
    if c.source.fmt == "parquet" and c.source.files and c.source.table is None:
        one = literal(str(c.source.files[0])) if len(c.source.files) == 1 else "filename"
        file, line = c.computed({ORIGIN_FILE: one, ORIGIN_LINE: "file_row_number + 1"})
        return {ORIGIN_FILE: file, ORIGIN_LINE: line}
    return {}


def _said_level_sql(message_sql: str, level_field_sql: str | None) -> str:
    """The level a line says: a JSON line's level field, else a level word of its message (logfields)."""
    words = _text_level_sql(message_sql)
    if level_field_sql is None:
        return _level_sql(words)
    # CASE, not coalesce: only a CASE is lazy, so the words are looked for only in lines without a level field.
    return _level_sql(f"CASE WHEN {level_field_sql} IS NULL THEN {words} ELSE {level_field_sql} END")


def _unwrapped_sql(con: duckdb.DuckDBPyConnection, column_sql: str) -> str:
    """The line as text; container-runtime JSON lines (`{"log": "...\\n", ...}`) unwrapped when the sample has
    them, objects whose `log` is a string (ECS's `{"log": {"level": ...}, "message": ...}` is no wrapper).

    Per line, the wrapper is not told from such an object again: that would cost a third of the unwrapping, for
    a column mixing both. The trailing newline goes with regexp_replace: DuckDB's rtrim(text, characters) costs
    ~2 us a row.
    """
    text = _as_text(column_sql)
    is_json = json_object_sql(text)
    # CASE, not AND: only CASE guards the JSON functions from invalid JSON.
    wrapper = f"CASE WHEN {is_json} THEN json_type({text}, '$.log') = 'VARCHAR' END"
    if not con.execute(f"SELECT count(*) FILTER ({wrapper}) FROM {_SAMPLE}").fetchone()[0]:
        return text
    log_field = f"json_extract_string({text}, '$.log')"
    return f"CASE WHEN {is_json} THEN coalesce(regexp_replace({log_field}, '\\r?\\n$', ''), {text}) ELSE {text} END"


def _line_break_dropped_sql(con: duckdb.DuckDBPyConnection, text_sql: str) -> str:
    """The line without the line break a container runtime's json-file driver leaves at the end of its `log`
    (`{"log": "card declined\\n", "stream": "stderr", ...}`, read as is or shipped by Fluent Bit), when the sample
    has one; as `_unwrapped_sql` drops it from such a line inside a column."""
    if not con.execute(f"SELECT count(*) FILTER (ends_with({text_sql}, chr(10))) FROM {_SAMPLE}").fetchone()[0]:
        return text_sql
    return f"regexp_replace({text_sql}, '\\r?\\n$', '')"


def _colours_dropped_sql(con: duckdb.DuckDBPyConnection, text_sql: str) -> str:
    """The line without the terminal colour codes a coloured logger writes (`\x1b[31mERROR\x1b[0m`, kept by a
    container's log; JSON-escaped in a JSON line), when the sample holds one: its level word is then read, and its
    template mined, as shown."""
    if not con.execute(f"SELECT count(*) FILTER (regexp_matches({text_sql}, {literal(ANSI_CODE)})) "
                       f"FROM {_SAMPLE}").fetchone()[0]:
        return text_sql
    return f"regexp_replace({text_sql}, {literal(ANSI_CODE)}, '', 'g')"


def _bytes_decoded_sql(con: duckdb.DuckDBPyConnection, text_sql: str) -> str:
    """The line with journald's byte arrays decoded, when the sample has them: `journalctl -o json` writes a
    MESSAGE that holds control characters or is not UTF-8 as a JSON array of its bytes (`[27,91,51,49,109,...]`, an
    application's coloured line), read as UTF-8 text without its colour codes; an array that is no such text stays
    as written. Read into a text column, an array is text like a message written `[1,2,3]`, so only bytes journald
    would write as an array are decoded: a control character among them (else it writes the string), and text
    beside the colour codes (`[1,2,3]` is none)."""
    is_array = f"(starts_with({text_sql}, '[') AND json_valid({text_sql}))"
    hex_text = (f"list_aggregate(list_transform(CAST(CAST({text_sql} AS JSON) AS UTINYINT[]), "
                "lambda b: printf('%02x', b)), 'string_agg', '')")
    raw = f"try(decode(unhex({hex_text})))"
    text = f"regexp_replace({raw}, {literal(ANSI_CODE)}, '', 'g')"
    decoded = (f"CASE WHEN regexp_matches({raw}, {literal(_CONTROL)}) AND regexp_matches({text}, {literal(_VISIBLE)}) "
               f"THEN {text} END")
    if not con.execute(f"SELECT count(*) FILTER (CASE WHEN {is_array} THEN {decoded} IS NOT NULL END) "
                       f"FROM {_SAMPLE}").fetchone()[0]:
        return text_sql
    return f"CASE WHEN {is_array} THEN coalesce({decoded}, {text_sql}) ELSE {text_sql} END"


def _as_text(column_sql: str) -> str:
    return f"CAST({column_sql} AS VARCHAR)"


def _sample_holds_json_objects(con: duckdb.DuckDBPyConnection, line_sql: str) -> bool:
    """Whether any sampled line is a JSON object: only then do lines pay for the structured-log reading."""
    holds = f"CASE WHEN {json_object_sql(line_sql)} THEN true END"
    return con.execute(f"SELECT count({holds}) FROM {_SAMPLE}").fetchone()[0] > 0


def _json_message_sql(line_sql: str) -> str:
    """A JSON line's message field (JSON_MESSAGE_FIELDS), else the line itself."""
    field_value = first_json_value_sql(line_sql, JSON_MESSAGE_FIELDS)
    return f"CASE WHEN {json_object_sql(line_sql)} THEN coalesce({field_value}, {line_sql}) ELSE {line_sql} END"


def _json_level_sql(line_sql: str) -> str:
    """A JSON line's level field (JSON_LEVEL_FIELDS: text, or a number such as pino's 30), as written; NULL for
    other lines."""
    return f"CASE WHEN {json_object_sql(line_sql)} THEN {first_json_value_sql(line_sql, JSON_LEVEL_FIELDS)} END"


def _level_sql(text_sql: str) -> str:
    """Upper-cased, normalised level: WARNING->WARN, ERR->ERROR, CRITICAL/FATAL/PANIC->FATAL; numbers read on the
    pino/bunyan scale (10 TRACE ... 60 FATAL) or the syslog one (0 EMERG ... 7 DEBUG).

    A MAP lookup, not a CASE: DuckDB expands `CASE x WHEN ...` into one copy of x per branch.
    """
    upper = f"upper(trim(CAST({text_sql} AS VARCHAR)))"
    return f"coalesce({_LEVEL_MAP}[{upper}], nullif({upper}, ''))"


def _text_level_sql(message_sql: str) -> str:
    """The level word in a message (`16:42:22.382 INFO  t.s.Travel...`, `level=error`) as written, else NULL.

    RE2 stops at the leftmost match, so the usual early level word costs little. The logfmt pattern runs only on
    messages containing `level` (a CASE is lazy, a coalesce is not), keeping the no-level-word case at one regex.
    """
    word = f"nullif(regexp_extract({message_sql}, {literal(LEVEL_WORD_PATTERN)}, 1), '')"
    says_level = " OR ".join(f"contains({message_sql}, {literal(key)})" for key in LEVEL_KEYS)
    logfmt = f"nullif(regexp_extract({message_sql}, {literal(LOGFMT_LEVEL_PATTERN)}, 1), '')"
    return f"coalesce({word}, CASE WHEN {says_level} THEN {logfmt} END)"


def _spans(con: duckdb.DuckDBPyConnection, c: Canonical, mapping: dict[str, str]) -> None:
    names = list(c.columns.types)
    required = {}
    for role in ("trace_id", "span_id"):
        required[role] = find_column(names, role, mapping)
        if required[role] is None:
            looked = ", ".join(CANDIDATES[role])
            raise InputError(f"{c.source.label}: no {role} column (looked for {looked}); use --map {role}=COLUMN")
    c.used.update(required.values())
    _choose_time(con, c, "start", mapping)
    parent = find_column(names, "parent_id", mapping, exclude=c.used)
    operation = find_column(names, "operation", mapping, exclude=c.used)
    c.exprs["trace_id"] = f"CAST({quote(required['trace_id'])} AS VARCHAR)"
    c.exprs["span_id"] = f"CAST({quote(required['span_id'])} AS VARCHAR)"
    c.exprs["parent_id"] = _parent_sql(parent) if parent else "CAST(NULL AS VARCHAR)"
    c.exprs["service"] = _service_sql(c, mapping, exclude=tuple(c.used))
    _unnamed_filed_as_global(c)
    for role, words in (("trace_id", "spans with no trace ID, kept (in no trace)"),
                        ("span_id", "spans with no span ID, kept (no span can name such a span its parent)")):
        written = f"nullif(trim(CAST({quote(required[role])} AS VARCHAR)), '')"
        c.bad_values.append((required[role], f"{written} IS NULL", words))
    c.exprs["operation"] = f"CAST({quote(operation)} AS VARCHAR)" if operation else "CAST(NULL AS VARCHAR)"
    c.exprs["start_ts"] = c.time_sql
    c.exprs["duration_ms"] = _duration_sql(con, c, mapping)
    status = find_column(names, "status", mapping, exclude=c.used)
    c.exprs["is_error"] = _is_error_sql(status) if status else "CAST(NULL AS BOOLEAN)"
    peer = find_column(names, "peer", mapping, exclude=c.used)
    c.exprs["peer"] = _peer_sql(peer, [name for name in names if name not in c.used])
    c.exprs["inferred"] = "false"  # a span read; the store adds those inferred under calls to a peer
    c.used.update(x for x in (parent, operation, status, peer) if x)


def _peer_sql(peer: str | None, names: list[str]) -> str:
    """A span's peer from its file's columns: its peer column (`peer.service`, `peer`), else the database its
    `db.system.name`/`db.system` column names, with `db.namespace`/`db.name` where there is one (`postgresql orders`:
    `peers.peer_sql`'s rule; a database span is a client span), else NULL. The database columns stay in the view."""
    def text(column: str | None) -> str | None:
        return f"nullif(trim(CAST({quote(column)} AS VARCHAR)), '')" if column else None

    by_key = {normalise(name): name for name in reversed(names)}  # the first of names alike
    database = text(by_key.get("dbsystemname") or by_key.get("dbsystem"))
    namespace = text(by_key.get("dbnamespace") or by_key.get("dbname"))
    named = [text(peer), database and database_sql(database, namespace)]
    present = [sql for sql in named if sql]
    if not present:
        return "CAST(NULL AS VARCHAR)"
    kind = by_key.get("spankind") or by_key.get("kind")
    if kind is None:
        return f"coalesce({', '.join(present)})"
    # a span its kind column says is no call (a server span naming its caller, as Jaeger's clients once tagged
    # it) names no peer: one inferred under it would make its own work its caller's
    written = f"replace(lower(trim(CAST({quote(kind)} AS VARCHAR))), 'span_kind_', '')"
    return f"CASE WHEN {written} IN {_NOT_CALLING_KINDS} THEN NULL ELSE coalesce({', '.join(present)}) END"


#: span kinds whose far side is no service the span calls, as words and as OTLP's numbers (internal, server, consumer)
_NOT_CALLING_KINDS = "('internal', 'server', 'consumer', '1', '2', '5')"


def _parent_sql(column: str) -> str:
    text = f"trim(CAST({quote(column)} AS VARCHAR))"
    return f"CASE WHEN lower({text}) IN ('', 'root', 'null', 'none') OR regexp_full_match({text}, '0+') " \
           f"THEN NULL ELSE {text} END"


def duration_unit(column: str, bare: str = "us") -> str:
    """The unit of a duration column by its name's suffix; a name without one is `bare`: a span's `duration` is
    microseconds (Zipkin, Jaeger, Nezha)."""
    suffix = re.sub(r"^(duration|elapsed|latency|took)", "", normalise(column))
    for unit, spellings in _DURATION_SUFFIXES.items():
        if suffix.startswith(spellings):
            return unit
    return bare


#: the span files whose readers compute each span's duration (`otlp.py`, `jaeger.py`, `zipkin.py`)
_TRACE_EXPORTS = ("otlp", "jaeger", "zipkin")


def _duration_sql(con: duckdb.DuckDBPyConnection, c: Canonical, mapping: dict[str, str]) -> str:
    names = list(c.columns.types)
    duration = find_column(names, "duration", mapping, exclude=c.used)
    if duration is not None and c.columns.is_number(duration):
        c.used.add(duration)
        if duration in c.columns.numeric:
            c.checks[duration] = _not_a_number(duration, "DOUBLE")
        if c.source.fmt in _TRACE_EXPORTS:  # its reader made the duration of fields every span has: one without
            c.bad_durations.append((duration, f"{quote(duration)} IS NULL", "with no duration (its end time or "
                                                                            "duration missing, or not a number)"))
        per_ms = {"ns": 1e6, "us": 1e3, "ms": 1.0, "s": 1e-3}[duration_unit(duration)]
        return _plausible(con, c, duration, f"{c.columns.number_sql(duration, 'DOUBLE')} / {per_ms}")
    end = find_column(names, "end", mapping, exclude=c.used)
    if end is not None and c.time_format is not None:
        fmt, _ = detect_format(con, _SAMPLE, quote(end), c.columns.types[end])
        if fmt is not None:
            ended = to_utc_sql(quote(end), _checked(con, c.source, end, c.in_zone(fmt)))
            c.bad_durations.append((end, f"nullif(trim(CAST({quote(end)} AS VARCHAR)), '') IS NOT NULL "
                                         f"AND ({ended}) IS NULL", "whose time does not parse"))
            return _plausible(con, c, end, f"epoch_us({ended} - {c.time_sql}) / 1000.0")
    return "CAST(NULL AS DOUBLE)"


def _plausible(con: duckdb.DuckDBPyConnection, c: Canonical, column: str, duration_sql: str) -> str:
    """A span's duration, NULL where it is negative (an end before the start, a clock stepped back), not finite,
    or longer than a day and the spans' whole time range (`LONGEST_SPAN_MS`); each kind counted."""
    longest = max(_start_range_ms(con, c), LONGEST_SPAN_MS)
    c.bad_durations.append((column, f"({duration_sql}) < 0", "with a negative duration (an end before the start)"))
    # NOT (d <= longest): DuckDB orders NaN above every number, so NaN and Infinity are counted here too
    c.bad_durations.append((column, f"NOT (({duration_sql}) <= {longest!r})",
                            f"with a duration not finite or past {longest / 3_600_000:g} h (longer than a day and "
                            "the spans' whole time range)"))
    return f"CASE WHEN ({duration_sql}) BETWEEN 0 AND {longest!r} THEN {duration_sql} END"


def _start_range_ms(con: duckdb.DuckDBPyConnection, c: Canonical) -> float:
    """Milliseconds from the source's first span start to its last (times outside the years held are left to
    `_validate`, which names them)."""
    inside = f"NOT ({_outside_sql('t')})"
    try:
        first, last = con.execute(f"SELECT min(t) FILTER ({inside}), max(t) FILTER ({inside}) "
                                  f"FROM (SELECT {c.time_sql} AS t FROM {c.source.from_sql})").fetchone()
    except duckdb.Error as err:
        raise _read_failure(c.source, err) from None
    return (last - first).total_seconds() * 1000.0 if first is not None else 0.0


def _is_error_sql(column: str) -> str:
    text = f"upper(trim(CAST({quote(column)} AS VARCHAR)))"
    code = f"TRY_CAST({text} AS INTEGER)"
    if normalise(column) in ("error", "iserror", "haserror"):
        return f"TRY_CAST({text} AS BOOLEAN)"
    # OpenTelemetry's numeric status 2 is ERROR; a number >= 500 is an HTTP server error.
    return (f"CASE WHEN {text} IN ({_ERROR_STATUSES}) THEN true WHEN {text} IN ({_OK_STATUSES}) THEN false "
            f"WHEN {code} IS NOT NULL THEN {code} = 2 OR {code} >= 500 ELSE NULL END")


def _calls(con: duckdb.DuckDBPyConnection, c: Canonical, mapping: dict[str, str]) -> None:
    """Per-call-edge latency per interval, long form: time, caller, callee, side (client|server) and latency."""
    _choose_time(con, c, "time", mapping)
    names = list(c.columns.types)
    found: dict[str, str] = {}
    for role in ("caller", "callee", "side", "latency"):
        column = find_column(names, role, mapping, exclude=c.used | set(found.values()))
        if column is None or (role == "latency" and not c.columns.is_number(column)):
            looked = ", ".join(CANDIDATES[role])
            what = "numeric latency" if role == "latency" else role
            raise InputError(f"{c.source.label}: no {what} column (looked for {looked}); use --map {role}=COLUMN"
                             f"{_wide_edges_hint(c, names) if role == 'caller' else ''}")
        found[role] = column
    c.used.update(found.values())
    c.exprs["ts"] = c.time_sql
    c.exprs["caller"] = f"CAST({quote(found['caller'])} AS VARCHAR)"
    c.exprs["callee"] = f"CAST({quote(found['callee'])} AS VARCHAR)"
    said = f"lower(trim(CAST({quote(found['side'])} AS VARCHAR)))"
    c.exprs["side"] = f"{_SIDE_MAP}[{said}]"
    c.bad_values.append((found["side"], f"nullif({said}, '') IS NOT NULL AND {_SIDE_MAP}[{said}] IS NULL",
                         f"rows whose side is none of {', '.join(_SIDES)}, kept as NULL (not used)"))
    latency = found["latency"]
    if latency in c.columns.numeric:
        c.checks[latency] = _not_a_number(latency, "DOUBLE")
    # a latency named without a unit is in milliseconds, Istio's (istio_request_duration_milliseconds)
    per_ms = {"ns": 1e6, "us": 1e3, "ms": 1.0, "s": 1e-3}[duration_unit(latency, bare="ms")]
    value = f"{c.columns.number_sql(latency, 'DOUBLE')} / {per_ms}"
    c.bad_values.append((latency, f"NOT (({value}) BETWEEN 0 AND {LONGEST_SPAN_MS!r})",
                         f"rows with a latency negative, not finite or past {LONGEST_SPAN_MS / 3_600_000:g} h, "
                         "kept as NULL"))
    c.exprs["latency_ms"] = f"CASE WHEN ({value}) BETWEEN 0 AND {LONGEST_SPAN_MS!r} THEN {value} END"


def _events(con: duckdb.DuckDBPyConnection, c: Canonical, mapping: dict[str, str]) -> None:
    _choose_time(con, c, "time", mapping)
    names = list(c.columns.types)
    c.exprs["ts"] = c.time_sql
    c.exprs["service"] = _service_sql(c, mapping)
    missing = []
    for role in ("kind", "description"):
        column = find_column(names, role, mapping, exclude=c.used)
        c.exprs[role] = f"CAST({quote(column)} AS VARCHAR)" if column else "CAST(NULL AS VARCHAR)"
        if column:
            c.used.add(column)
        else:
            missing.append(role)
    if missing:
        # an event without them is `event` on the timeline: the file's own columns, to map the one meant
        looked = "; ".join(f"{role}: {', '.join(CANDIDATES[role])}" for role in missing)
        others = [name for name in names if name not in c.used and name not in _ORIGIN]
        # no --map to advise where no column is left to name
        hint = (f"; its other columns: {', '.join(others)}; use {' '.join(f'--map {role}=COLUMN' for role in missing)}"
                if others else " (the file has no other column to map)")
        c.notes.append(f"{c.source.label}: no {' or '.join(missing)} column (looked for {looked}): its events are "
                       f"read without {'either' if len(missing) > 1 else 'one'}{hint}")


@dataclass(frozen=True)
class _TimeDefect:
    """Rows whose time is present but unusable: its condition, how many, and the words for one of them."""

    condition: str
    rows: int
    says: str  # e.g. "cannot parse {value!r} as a time" with {value} for the first such row's value


def _validate(con: duckdb.DuckDBPyConnection, c: Canonical, warnings: list[str]) -> tuple[int, list[str]]:
    """One pass over the whole source: rows without a time, and rows whose time does not parse, is in another
    epoch unit than the column's or lies outside what the analysis can hold, are left out and counted in a warning
    naming the first (a whole file is refused only when such rows are more than half its timed rows: then it is
    not the format it looks like); other bad values become warnings. Returns the rows without a time and the
    conditions of the rows left out for a bad one."""
    column = quote(c.time_column)
    unit_differs = other_unit_sql(column, c.time_format) or "false"
    bad_time, other_unit, outside = _time_defects(c.time_sql, c.time_present_sql(), unit_differs)
    # counted over the rows with their time parsed and its presence decided once, not once for each condition
    timed = (f"(SELECT *, {c.time_sql} AS {_PARSED}, {c.time_present_sql()} AS {_PRESENT} "
             f"FROM {c.source.from_sql})")
    counted_bad, counted_other, counted_outside = _time_defects(_PARSED, _PRESENT, unit_differs)
    # each kept-but-bad value: its condition, its column, and the warning's words after the count; counted among
    # the rows kept (a row left out for its time is counted there, not again for its value)
    not_finite = f"rows not finite (NaN, Infinity or beyond +-{MAX_METRIC_MAGNITUDE:g}), kept as NULL"
    value_checks = [(condition, name, f"rows not numeric{c.columns.comma_hint(name)}, kept as NULL")
               for name, condition in c.checks.items()]
    value_checks += [(condition, name, not_finite) for name, condition in c.nonfinite.items()]
    value_checks += [(condition, name, f"rows {rows}, their duration kept as NULL")
                for name, condition, rows in c.bad_durations]
    value_checks += [(condition, name, words) for name, condition, words in c.bad_values]
    counters = "".join(f", count(*) FILTER ({condition})" for condition, _, _ in value_checks)
    try:
        total, bad, missing, out_of_range, mixed, *bad_values = con.execute(
            f"SELECT count(*), count(*) FILTER ({counted_bad}), count(*) FILTER (NOT {_PRESENT}), "
            f"count(*) FILTER ({counted_outside}), count(*) FILTER ({counted_other}){counters} FROM {timed}"
        ).fetchone()
        untimed = missing if c.source.fmt != "text" else 0  # a plain-text log keeps its untimed entries
        if any(bad_values) and bad + out_of_range + mixed + untimed:
            # counted again among the rows kept, in a second scan only here: in the first, the time parsed once
            # more for each value's count made loading a day of Nezha's metrics 70% slower
            kept = f"NOT coalesce(({counted_bad}) OR ({counted_other}) OR ({counted_outside}), false)"
            kept += f" AND {_PRESENT}" if untimed else ""
            bad_values = con.execute("SELECT " + ", ".join(
                f"count(*) FILTER ({kept} AND ({condition}))" for condition, _, _ in value_checks
            ) + f" FROM {timed}").fetchone()
    except duckdb.Error as err:
        raise _read_failure(c.source, err) from None
    if total == 0:
        raise EmptySourceError(f"{c.source.label}: {NO_ROWS}")
    defects = [
        _TimeDefect(bad_time, bad, f"cannot parse {{value!r}} as a time ({{year_last}}the column's other values "
                                   f"read as {c.time_format.describe()})"),
        _TimeDefect(other_unit, mixed, f"{{value!r}} is epoch {{unit}} by its size, the column read as "
                                       f"{c.time_format.describe()}"),
        _TimeDefect(outside, out_of_range, f"{{value!r}} is a time outside the years {EARLIEST.year}-"
                                           f"{LATEST.year - 1}{{year_last_note}}"),
    ]
    defects = [defect for defect in defects if defect.rows]
    unusable = sum(defect.rows for defect in defects)
    for defect in defects:
        file, row, value = locate_first(con, c.source, defect.condition, column)
        year_last = year_last_hint(value)  # `06/12/2026`, and `12-06-26`, read as the year 12
        said = defect.says.format(value=value, unit=written_unit(value), year_last=year_last and f"{year_last}; ",
                                  year_last_note=year_last and f" ({year_last})")
        if str(value).strip().lower() == c.time_column.lower():  # `cat a.csv b.csv > all.csv`
            said = f"{value!r}, the header again (files joined end to end, as cat does?)"
        if 2 * unusable > total - missing:
            raise InputError(f"{file}: column {c.time_column!r} row {row}: {said}; {unusable:,} of the "
                             f"{counted(total - missing, 'timed row')} so: not the time format it looks like")
        first = f"row {row}" if file == c.source.label else f"{file} row {row}"
        warnings.append(f"{c.source.label}: column {c.time_column!r}: {counted(defect.rows, 'row')} with a bad time "
                        f"left out; the first, {first}: {said}")
    if missing and c.source.fmt != "text":
        file, row, _ = locate_first(con, c.source, f"NOT ({c.time_present_sql()})", column)
        first = f"row {row}" if file == c.source.label else f"{file} row {row}"
        warnings.append(f"{c.source.label}: column {c.time_column!r}: {counted(missing, 'row')} {have(missing)} no "
                        f"time, left out; the first, {first}")
    warnings.extend(f"{c.source.label}: column {name!r}: {counted_words(count, words)}"
                    for (_, name, words), count in zip(value_checks, bad_values, strict=True) if count)
    return missing, [defect.condition for defect in defects]


_PARSED, _PRESENT = quote("_incidentlens_parsed_time"), quote("_incidentlens_time_present")


def _time_defects(time_sql: str, present_sql: str, unit_differs: str) -> tuple[str, str, str]:
    """The conditions of a row whose time does not parse, is in another epoch unit than the column's, or lies
    outside the years the analysis holds, over its parsed time and whether it has one (a value too large for any
    unit does not parse, and one in another unit often lands outside the years: each row is under the first of the
    three that it is)."""
    bad_time = f"{present_sql} AND ({time_sql}) IS NULL"
    other_unit = f"({present_sql} AND NOT ({bad_time}) AND coalesce({unit_differs}, false))"
    outside = f"{present_sql} AND ({time_sql}) IS NOT NULL AND NOT {other_unit} AND {_outside_sql(time_sql)}"
    return bad_time, other_unit, outside


def _outside_sql(time_sql: str) -> str:
    """The condition of a parsed time outside what a nanosecond timestamp holds (the analysis' arrays)."""
    return f"NOT (({time_sql}) >= {sql_ts(EARLIEST)} AND ({time_sql}) < {sql_ts(LATEST)})"
