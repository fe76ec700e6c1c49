"""The canonical telemetry store: DuckDB views over the user's files, and `fetch` as the one query path.

Each input (a file, a glob, a list) becomes one or more *sources* (files of one format and header); each source
becomes a canonical view `_<view>_<n>` and the public view (`metrics`, `logs`, `spans`, `events`, `calls`) is their
`UNION ALL BY NAME`. Parquet is read in place (a time filter reaches its row groups); text files (CSV, JSON) are
parsed once, at load, into a table, whatever their size: read in place, every query would parse them again. A
table that outgrows DuckDB's memory limit spills to a private temporary directory (`utc_connection`).

Extension points for other sources:
- `store.add_arrow(view, table, label)` makes a view from an Arrow table (copied into DuckDB, e.g. Prometheus
  query results), canonicalised exactly like a file.
- `store.logs_backend`: a `QueryBackend` (e.g. ClickHouse) that answers queries over the views it lists; `fetch`
  sends a query there when every table it reads is one of those views, otherwise runs it in DuckDB.

`store.hold(sql, label)` keeps a costly relation that several queries read (the masked log messages, the spans
joined to their parents) as a table, computed once per set of sources; `store.hold_table(table, label)` keeps rows
made in Python (each message's log statement) the same way.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import duckdb
import pyarrow as pa

from incidentlens.errors import InputError
from incidentlens.telemetry.apianswers import answer_failure, read_api_answer, read_loki_answer, unread_values
from incidentlens.telemetry.cloudwatch import events_sql as cloudwatch_events_sql
from incidentlens.telemetry.columns import literal, quote
from incidentlens.telemetry.datadog import answer_items_sql, is_answer, other_kind
from incidentlens.telemetry.datadog import events_sql as datadog_events_sql
from incidentlens.telemetry.files import (
    ORIGIN_FILE,
    ORIGIN_LINE,
    PathsArg,
    RejectedRows,
    Source,
    csv_preamble,
    error_file,
    holds_only_comments,
    lines_set_aside,
    read_error,
    resolve_paths,
    scan_json_lines,
    sources_for,
)
from incidentlens.telemetry.fluentbit import NOT_A_RECORD as FLUENT_BIT_NOT_A_RECORD
from incidentlens.telemetry.fluentbit import records_sql as fluent_bit_records_sql
from incidentlens.telemetry.fluentbit import scan_sql as fluent_bit_lines_sql
from incidentlens.telemetry.jaeger import read_jaeger
from incidentlens.telemetry.kubeevents import is_empty_list, is_event_list, list_items_sql, read_kube_events
from incidentlens.telemetry.otlp import OTLP_FIELDS, option_for, otlp_view, read_otlp
from incidentlens.telemetry.peers import inferred_spans_sql
from incidentlens.telemetry.servicenames import (
    NAMED_IN_TWO_CASES,
    SERVICE_COLUMNS,
    case_renames,
    kept_apart,
    renamed_sql,
)
from incidentlens.telemetry.textlogs import (
    UNKNOWN,
    TextLogOptions,
    cut_short,
    first_bytes,
    lines_sql,
    read_from_copy,
    read_text_log,
    refused_line,
    sample_lines,
    utf8_copy,
    wide_text,
)
from incidentlens.telemetry.timeparse import known_zone, year_last_hint
from incidentlens.telemetry.views import NO_ROWS, Built, EmptySourceError, UntimedSourceError, build_select
from incidentlens.telemetry.words import counted, have
from incidentlens.telemetry.zipkin import read_zipkin

VIEWS = ("metrics", "logs", "spans", "events", "calls")
_Read = TypeVar("_Read")  # what a read over UTF-8 copies returns (`TelemetryStore._naming_originals`)
_TEXT_FORMATS = ("csv", "json", "jsonl")
_SPILL_DIRECTORIES = itertools.count()
#: the table of the server spans inferred under calls to an untraced peer, which the spans view reads
INFERRED_SPANS = "_spans_inferred"
#: the table of the spans of every source, each span two of them hold once (made only where there are such spans)
UNIQUE_SPANS = "_spans_unique"
#: the formats read file by file (unnested, parsed or answered each on its own)
_READ_BY_FILE = ("otlp", "jaeger", "zipkin", "prometheus", "loki", "failed", "cloudwatch", "kubeevents", "datadog",
                 "fluentbit")


def _read_apart(view: str, sources: Iterable[Source]) -> Iterator[Source]:
    """The sources, those of a format read file by file one file each: one with no rows is left out (a warning
    beside files with rows, `add_files`) and the files after it still read; it stopped them."""
    for source in sources:
        if source.fmt in _READ_BY_FILE or (source.fmt == "text" and view == "logs"):
            yield from (source.for_file(path) for path in source.files)
        else:
            yield source


#: what an OTLP file holds, by the view it feeds, for the error of one that holds none
_OTLP_ITEMS = {"spans": "spans", "logs": "log records", "metrics": "metric points"}
#: the start of the warning that counts the spans two sources both hold
SPANS_GIVEN_TWICE = "spans given twice"
_TIME_COLUMN = {"metrics": "ts", "logs": "ts", "spans": "start_ts", "events": "ts", "calls": "ts"}


class QueryBackend(Protocol):
    """A remote store answering portable (DuckDB-dialect) SQL over some canonical views, e.g. logs in ClickHouse."""

    views: frozenset[str]

    def fetch(self, sql: str) -> pa.Table: ...


def utc_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose session time zone is UTC (naive ISO times are read as UTC), spilling what outgrows
    its memory limit to a directory of its own under the system's temporary directory (DuckDB's default is `.tmp`
    in the working directory), which DuckDB makes when it first spills and removes when it closes."""
    spill = Path(tempfile.gettempdir()) / f"incidentlens-duckdb-{os.getpid()}-{next(_SPILL_DIRECTORIES)}"
    con = duckdb.connect(":memory:", config={"temp_directory": str(spill)})
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


#: a saved API answer's view, what it holds in words, and its reader, by its format (`files.file_format`)
_API_ANSWERS = {"prometheus": ("metrics", "Prometheus metrics", read_api_answer),
                "loki": ("logs", "Loki log lines", read_loki_answer)}


@dataclass
class TelemetryStore:
    """Canonical views over the user's telemetry; query them with `fetch(sql)`."""

    con: duckdb.DuckDBPyConnection = field(default_factory=utc_connection)
    paths: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rejected: list[RejectedRows] = field(default_factory=list)  # unreadable lines set aside, per file
    logs_backend: QueryBackend | None = None
    # the IANA zone (`Europe/Berlin`) the files' times written without one are in; none: UTC (`--timezone`)
    timezone: str | None = None
    _parts: dict[str, list[str]] = field(default_factory=dict)
    _source_columns: set[str] = field(default_factory=set)
    _ranges: dict[str, tuple[datetime, datetime]] | None = None
    _held: dict[str, None] = field(default_factory=dict)  # the held tables, least recently asked for first
    _origins: list[str] = field(default_factory=list)  # each logs part's entries with where they were read
    # the logs files whose entries are numbered in read order (`Built.counted`): (the file read, its format), by name
    _counted: dict[str, tuple[Path, str]] = field(default_factory=dict)
    _uncounted: str | None = None  # the table of their uncounted lines, once `log_origins_sql` made it
    _hold_lock: threading.Lock = field(default_factory=threading.Lock)
    # the service names read as another, the names one service is spelt by in two cases (`one_name_per_service`)
    _renames: dict[str, str] = field(default_factory=dict)
    # UTF-8 copies of files that are not (`_as_utf8`): this store's, then those of the stores that read its views
    _scratches: list[tempfile.TemporaryDirectory[str]] = field(default_factory=list)
    # the UTF-8 copies of UTF-16 and UTF-32 files read (`_wide_copies`), each with the file given
    _wide: dict[Path, Path] = field(default_factory=dict)
    # the cursors of the queries running, each with the thread running it; the lock keeps a cursor from being closed
    # while `interrupt_queries` interrupts it (a closed cursor refuses: 'Connection already closed!')
    _running: dict[duckdb.DuckDBPyConnection, int] = field(default_factory=dict)
    _running_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.timezone is not None:
            self.timezone = known_zone(self.con, self.timezone)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the store's database (one per query or thread), its session in UTC."""
        cursor = self.con.cursor()
        cursor.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
        return cursor

    @property
    def reads_concurrently(self) -> bool:
        """Whether queries may run from several threads at once: each on a cursor of its own, unless a view is
        pushed down to a `logs_backend` (a ClickHouse client's session takes one query at a time)."""
        return self.logs_backend is None

    def has(self, view: str) -> bool:
        return view in self._parts or (self.logs_backend is not None and view in self.logs_backend.views)

    @property
    def views(self) -> list[str]:
        """The canonical views present, in the usual order."""
        return [view for view in VIEWS if self.has(view)]

    def columns(self, view: str) -> list[str]:
        """The view's column names: canonical first, then the source's other columns."""
        if not self.has(view):
            raise InputError(f"no {view} loaded")
        return self.fetch(f"SELECT * FROM {view} LIMIT 0").column_names

    def fetch(self, sql: str) -> pa.Table:
        """Run a query over the canonical views and return its result (pushed down to `logs_backend` if it can)."""
        if self.logs_backend is not None and _tables_read(sql) <= self.logs_backend.views:
            return self.logs_backend.fetch(sql)
        with self._query_cursor() as cursor:
            return cursor.sql(sql).to_arrow_table()

    @contextmanager
    def _query_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one query, known to `interrupt_queries` while it runs, closed after."""
        cursor = self.cursor()
        with self._running_lock:
            self._running[cursor] = threading.get_ident()
        try:
            yield cursor
        finally:
            with self._running_lock:
                del self._running[cursor]
                cursor.close()

    def interrupt_queries(self, thread: int) -> None:
        """Interrupt the query `thread` (a `threading.get_ident()`) runs on this store's cursors, if any, from any
        thread: it raises where it runs. Ctrl-C reaches the main thread's query alone; one run beside it
        (`pipeline.explain_window`) went on to its end. Another thread's queries run on: a server's calls read one
        store at once, and one call's error is not another's."""
        with self._running_lock:
            for cursor, runner in self._running.items():
                if runner == thread:
                    cursor.interrupt()

    def hold(self, sql: str, label: str) -> str:
        """The name of a table holding the result of `sql` (a DuckDB query over the views), computed on the first
        call and reused by every later one until a source is added: for a costly relation that several queries join
        (the masked log messages, the spans joined to their parents), so that each does not compute it again. The
        name is `label` and a hash of the query (`span_links_1f3a9c0d`), so the same query is held once and a query
        that reads the table says what it holds."""
        name = f"{label}_{hashlib.sha1(sql.encode()).hexdigest()[:8]}"
        return self._held_as(name, lambda cursor: cursor.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}"))

    def hold_table(self, table: pa.Table, label: str) -> str:
        """The name of a table holding `table` (rows made in Python, such as each log message's statement), copied
        into DuckDB on the first call and reused like `hold`'s, named by `label` and a hash of the rows. Copied from
        Arrow, not written as a VALUES list: parsing one costs ~50 us a row, seconds for a busy hour's messages."""
        rows = "\x1e".join("\x1f".join(map(str, column.to_pylist())) for column in table.columns)
        name = f"{label}_{hashlib.sha1(f'{table.column_names}{rows}'.encode()).hexdigest()[:8]}"

        def create(cursor: duckdb.DuckDBPyConnection) -> None:
            cursor.register("_incidentlens_held", table)
            cursor.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _incidentlens_held")

        return self._held_as(name, create)

    def _held_as(self, name: str, create: Callable[[duckdb.DuckDBPyConnection], object]) -> str:
        """`name`, the held table `create(cursor)` makes on the first call; asked for again, it is moved to the end
        of `_held`, the last to be released (`release_held`)."""
        with self._hold_lock:
            if name in self._held:
                del self._held[name]
            else:
                with self._query_cursor() as cursor:
                    create(cursor)
            self._held[name] = None
        return name

    def release_held(self, keep: int) -> list[str]:
        """Drop the held tables but the `keep` asked for last, and return their names: a long-running server explains
        window after window, each holding relations of its own (a window's masked messages: ~130 MB of a Nezha day),
        and kept them all. Only while no query that may read one runs: its name is in the query's text."""
        with self._hold_lock:
            dropped = list(self._held)[:max(0, len(self._held) - keep)]
            cursor = self.cursor()
            try:
                for name in dropped:
                    cursor.execute(f"DROP TABLE IF EXISTS {name}")
                    del self._held[name]
            finally:
                cursor.close()
        return dropped

    def time_range(self) -> tuple[datetime, datetime] | None:
        """(first, last) time over every view, naive UTC; None when the store is empty."""
        ranges = self.view_ranges().values()
        return (min(lo for lo, _ in ranges), max(hi for _, hi in ranges)) if ranges else None

    def view_ranges(self) -> dict[str, tuple[datetime, datetime]]:
        """(first, last) time of each view that has rows, naive UTC (computed once per set of sources)."""
        if self._ranges is None:
            ranges: dict[str, tuple[datetime, datetime]] = {}
            for view in self.views:
                time = _TIME_COLUMN[view]
                row = self.fetch(f"SELECT min({time}) AS lo, max({time}) AS hi FROM {view}").to_pylist()[0]
                if row["lo"] is not None:
                    ranges[view] = (row["lo"], row["hi"])
            self._ranges = ranges
        return dict(self._ranges)

    def add_files(self, view: str, paths: PathsArg, mapping: dict[str, str] | None = None,
                  text: TextLogOptions | None = None) -> None:
        """Add files (a path, a glob, or a list of them) to a canonical view; `text` says what plain-text logs
        cannot (the year of year-less times, the service)."""
        files = resolve_paths(paths)
        # a file of no bytes (a gzip stream never written) is as empty as a CSV file with only a header, and one of
        # comment lines alone (a scrape of no sample) holds no data either
        blank = [path for path in files if not path.stat().st_size]
        commented = [path for path in files if path not in blank and holds_only_comments(path)]
        empty: list[InputError] = [EmptySourceError(f"{path}: {NO_ROWS}") for path in blank]
        empty += [EmptySourceError(f"{path}: no data: its lines are all comments (#)") for path in commented]
        blank += commented
        given = [path for path in files if path not in blank]
        wide = self._wide_copies(given)
        originals = {copy: path for path, copy in wide.items()}
        unread = self._naming_originals(originals, lambda: self._read_files(view, [wide.get(p, p) for p in given],
                                                                             mapping, text))
        empty += [type(err)(_named(originals, str(err))) for err in unread]
        if empty and not self.has(view):
            raise empty[0]
        if view == "spans" and self.has(view):
            self._remake_spans_view()
        # An empty file beside others with rows (a quiet minute's log file), or a table with no time beside time
        # series (a list of call pairs matched by `metric/*.csv`), is left out, not fatal.
        self.warnings.extend(f"{err}, left out" for err in empty)
        self.paths.extend(f for f in files if f not in self.paths)

    def _wide_copies(self, files: list[Path]) -> dict[Path, Path]:
        """Each file of UTF-16 or UTF-32 text (`wide_text`: Windows PowerShell 5's `Out-File` and `>` write UTF-16)
        -> its UTF-8 copy (`_as_utf8`, streamed), which is read instead, named as the file in every message."""
        wide = {path: self._as_utf8(path) for path in files if wide_text(first_bytes(path, 1 << 10))}
        self._wide.update({copy: path for path, copy in wide.items()})
        return wide

    def _read_files(self, view: str, files: list[Path], mapping: dict[str, str] | None,
                    text: TextLogOptions | None) -> list[InputError]:
        """Read the files into the view, each by its format's reader; the errors of those with no rows (or no time
        column), which are warnings beside files that have them."""
        empty: list[InputError] = []
        for source in _read_apart(view, sources_for(files)):
            try:
                if source.fmt == "text":
                    self._add_text_logs(view, source, text)
                elif source.fmt == "otlp":
                    self._add_otlp(view, source)
                elif source.fmt in ("jaeger", "zipkin"):
                    self._add_trace_export(view, source)
                elif source.fmt in ("prometheus", "loki", "failed"):
                    self._add_api_answers(view, source)
                elif source.fmt == "cloudwatch":
                    self._add_cloudwatch(view, source, mapping or {})
                elif source.fmt == "kubeevents":
                    self._add_kube_events(view, source)
                elif source.fmt == "datadog":
                    self._add_datadog(view, source, mapping or {})
                elif source.fmt == "fluentbit":
                    self._add_fluent_bit(view, source, mapping or {})
                else:
                    self._add_source(view, source, mapping or {})
            except (EmptySourceError, UntimedSourceError) as err:
                empty.append(err)
        return empty

    def _take_views(self, reader: TelemetryStore) -> None:
        """Take in the views `reader` read into this store's database (`_add_views_at_once`): what they hold, where
        their rows came from, its warnings and lines set aside."""
        self._parts.update(reader._parts)
        self._origins.extend(reader._origins)
        self._counted.update(reader._counted)
        self._source_columns.update(reader._source_columns)
        self._scratches.extend(reader._scratches)
        self.warnings.extend(reader.warnings)
        self.rejected.extend(reader.rejected)
        self.paths.extend(path for path in reader.paths if path not in self.paths)
        self._ranges = None

    def add_arrow(self, view: str, table: pa.Table, label: str, mapping: dict[str, str] | None = None,
                  file: Path | None = None) -> None:
        """Add an Arrow table (e.g. a Prometheus query result) to a canonical view; `label` names it in messages,
        `file` the file it was read from (a saved answer), which its log entries' places name."""
        name = f"_{view}_arrow_{len(self._parts.get(view, []))}"
        self.con.register("_incidentlens_arrow", table)
        try:
            self.con.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS SELECT * FROM _incidentlens_arrow")
        finally:
            self.con.unregister("_incidentlens_arrow")
        self._add_source(view, Source(label, (file,) if file else (), table=quote(name)), mapping or {})
        if view == "spans":
            self._remake_spans_view()

    def _add_text_logs(self, view: str, source: Source, options: TextLogOptions | None) -> None:
        """Each plain-text log file parsed into a table of entries (see `textlogs`), then canonicalised."""
        if view != "logs":
            # Only logs have plain-text lines: anything else is read as the CSV it must be (and errors say so).
            self._add_source(view, replace(source, fmt="csv"), {})
            return
        for path in source.files:
            table = f"_logs_text_{len(self._parts.get(view, []))}"
            try:
                fmt = read_text_log(self.con, path, table, options, label=self._wide.get(path),
                                    zone=self.timezone or "")
            except (duckdb.Error, InputError) as err:
                if not read_from_copy(err, [path]):
                    raise
                fmt = read_text_log(self.con, self._as_utf8(path), table, options, label=path,
                                    zone=self.timezone or "")
            entries, untimed = self.con.execute(
                f"SELECT count(*), count(*) FILTER (ts IS NULL) FROM {quote(table)}").fetchone()
            if fmt is UNKNOWN:
                # a line led by `06/12/2026 10:00:00`: which is the day is not guessed, as in a time column
                first = next((line for line in sample_lines(path, 20) if line.strip()), "")
                said = year_last_hint(first)
                hint = f"; {said}" if said else ""
                self.warnings.append(f"{path}: line format not recognised: one entry per line, with no time "
                                     f"(templates work; time-based analysis has no times from it){hint}")
            elif untimed:
                self.warnings.append(f"{path}: {untimed:,} of {counted(entries, 'entry', 'entries')} ({fmt.name}) "
                                     f"{have(untimed)} no time that parses: "
                                     "kept, left out of time-based analysis")
            self._add_source(view, Source(str(path), (path,), fmt="text", table=quote(table)), {})

    def _add_otlp(self, view: str, source: Source) -> None:
        """Each OTLP JSON file unnested into a table of its view's canonical columns, then canonicalised."""
        for path in source.files:
            holds = otlp_view(path)
            if holds != view:
                raise InputError(f"{path}: holds OpenTelemetry {holds} ({OTLP_FIELDS[holds]}): pass it with "
                                 f"{option_for(holds)}")
            table = f"_{view}_otlp_{len(self._parts.get(view, []))}"
            self.rejected.extend(self._read_otlp(path, view, table))
            if not self.con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]:
                raise EmptySourceError(f"{path}: no {_OTLP_ITEMS[view]} in it")
            self._add_source(view, Source(str(path), (path,), fmt="otlp", table=quote(table)), {})

    def _read_otlp(self, path: Path, view: str, table: str) -> list[RejectedRows]:
        """One OTLP JSON file unnested into `table`; its lines set aside. A gzip stream cut short is read up to the
        cut, from its UTF-8 copy (`_as_utf8`), whose warning says so."""
        try:
            return read_otlp(self.con, path, view, table)
        except duckdb.Error as err:
            if not read_from_copy(err, [path]):
                raise
        copy = self._as_utf8(path)
        rows = self._naming_originals({copy: path}, lambda: read_otlp(self.con, copy, view, table))
        return [replace(lines, file=str(path)) for lines in rows]

    def _add_trace_export(self, view: str, source: Source) -> None:
        """Each Jaeger or Zipkin JSON export unnested into a table of spans, then canonicalised."""
        name, read = {"jaeger": ("Jaeger", read_jaeger), "zipkin": ("Zipkin", read_zipkin)}[source.fmt]
        for path in source.files:
            if view != "spans":
                raise InputError(f"{path}: holds {name} traces: pass it with --traces")
            table = f"_spans_{source.fmt}_{len(self._parts.get(view, []))}"
            read(self.con, path, table)
            self._add_source(view, Source(str(path), (path,), fmt=source.fmt, table=quote(table)), {})

    def _add_api_answers(self, view: str, source: Source) -> None:
        """Each saved `query_range` answer: Prometheus' read as `--prometheus` reads the server's, Loki's log
        lines as a logs file's."""
        if source.fmt == "failed":
            raise answer_failure(source.files[0])
        holds, what, read = _API_ANSWERS[source.fmt]
        for path in source.files:
            if view != holds:
                raise InputError(f"{path}: holds {what}: pass it with {option_for(holds)}")
            table = read(path)
            if source.fmt == "prometheus":
                self.warnings.extend(unread_values(path, table))
            self.add_arrow(view, table, label=str(path), file=path)

    def _add_cloudwatch(self, view: str, source: Source, mapping: dict[str, str]) -> None:
        """Each saved CloudWatch Logs answer: its `events`, each a log line (`timestamp` in ms, `message`,
        `logStreamName` kept beside them), read as a JSON lines file's records are (`cloudwatch.py`)."""
        for path in source.files:
            if view != "logs":
                raise InputError(f"{path}: holds CloudWatch log events: pass it with --logs")
            table = quote(f"_logs_cloudwatch_{len(self._parts.get(view, []))}")
            try:
                self.con.execute(f"CREATE OR REPLACE TABLE {table} AS {cloudwatch_events_sql(self.con, path)}")
            except duckdb.Error as err:
                raise read_error(replace(source, label=str(path)), err) from None
            self._add_source(view, Source(str(path), (path,), fmt="cloudwatch", table=table), mapping)

    def _add_kube_events(self, view: str, source: Source) -> None:
        """Each file of Kubernetes events (`kubectl get events -o json`, or one a line), its events log lines
        (`kubeevents.py`); those with no time left out and counted, the lines that are no JSON object set aside."""
        for path in source.files:
            if is_empty_list(path):
                raise EmptySourceError(f"{path}: no items in it (kubectl's List of nothing)")
            if view != "logs":
                raise InputError(f"{path}: holds Kubernetes events, read as log lines: pass it with --logs")
            table = f"_logs_kube_{len(self._parts.get(view, []))}"
            items = list_items_sql(path) if is_event_list(path) else None
            untimed = self._read_json_items(source, path, table, items, "Kubernetes events",
                                            partial(read_kube_events, self.con))
            if untimed is not None:
                self.warnings.append(untimed.note(path))
            if not self.con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]:
                raise EmptySourceError(f"{path}: no events with a time in it" if untimed else f"{path}: {NO_ROWS}")
            self._add_source(view, Source(str(path), (path,), fmt="kubeevents", table=quote(table)), {})

    def _add_datadog(self, view: str, source: Source, mapping: dict[str, str]) -> None:
        """Each saved Datadog Logs API answer (or its events one a line), its events log lines (`datadog.py`) read as
        a JSON lines file's records are; the lines that are no JSON object set aside."""
        for path in source.files:
            if view != "logs":
                raise InputError(f"{path}: holds Datadog log events: pass it with --logs")
            table = f"_logs_datadog_{len(self._parts.get(view, []))}"
            items = answer_items_sql(path) if is_answer(path) else None
            self._read_json_items(source, path, table, items, "Datadog log events",
                                  partial(self._create_datadog_events, path))
            if not self.con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]:
                raise EmptySourceError(f"{path}: no log events in it (its query matched none)")
            self._add_source(view, Source(str(path), (path,), fmt="datadog", table=quote(table)), mapping)

    def _create_datadog_events(self, path: Path, items: str, table: str, by_line: bool) -> None:
        """The log events `items` selects into `table`; an InputError where one is of another type (the Events API's
        answer is alike in shape)."""
        kind = other_kind(self.con, items)
        if kind is not None:
            raise InputError(f"{path}: a Datadog answer holding items of type {kind!r}, not log events (type 'log')")
        self.con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS {datadog_events_sql(items, by_line)}")

    def _add_fluent_bit(self, view: str, source: Source, mapping: dict[str, str]) -> None:
        """Each file of Fluent Bit's `out_file` lines, its records log lines (`fluentbit.py`) read as a JSON lines
        file's records are; the lines that are no record set aside. A file its reader refuses for bytes that are not
        UTF-8, or a gzip stream cut short, is read from its UTF-8 copy (`_as_utf8`), as a plain-text log is."""
        for path in source.files:
            if view != "logs":
                raise InputError(f"{path}: holds Fluent Bit log records: pass it with --logs")
            name = f"_logs_fluentbit_{len(self._parts.get(view, []))}"
            try:
                self._read_fluent_bit(path, name, source)
            except InputError as err:
                if not read_from_copy(err, [path]):
                    raise
                copy = self._as_utf8(path)
                self._naming_originals({copy: path}, partial(self._read_fluent_bit, copy, name, source))
            if not self.con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]:
                raise EmptySourceError(f"{path}: {NO_ROWS}")
            self._add_source(view, Source(str(path), (path,), fmt="fluentbit", table=quote(name)), mapping)

    def _read_fluent_bit(self, path: Path, name: str, source: Source) -> None:
        """One file of Fluent Bit's `out_file` lines into the table `name`, the lines that are no record set aside; a
        DuckDB error the one-line error naming the file."""
        table, lines = quote(name), quote(f"{name}_lines")
        try:
            self.con.execute(f"CREATE OR REPLACE TABLE {lines} AS SELECT {literal(str(path))} AS file, * "
                             f"FROM ({fluent_bit_lines_sql(path)})")
            self.rejected.extend(lines_set_aside(self.con, lines, [path], source.format_name,
                                                 literal(FLUENT_BIT_NOT_A_RECORD)))
            self.con.execute(f"CREATE OR REPLACE TABLE {table} AS {fluent_bit_records_sql(lines)}")
        except duckdb.Error as err:
            raise refused_line(err, path) or read_error(replace(source, label=str(path)), err) from None
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {lines}")

    def _read_json_items(self, source: Source, path: Path, table: str, items: str | None, what: str,
                         read: Callable[[str, str, bool], _Read]) -> _Read:
        """`read(items, table, by_line)`, `items` the SELECT of a file's records (`item`, each one's JSON): as given
        for a document holding them, else (None) each line of the file that is a JSON object, with its file `line`
        (`by_line`), the others set aside (`scan_json_lines`, as `what`); a DuckDB error is the one-line error naming
        the file."""
        lines = quote(f"{table}_lines")
        try:
            by_line = items is None
            if by_line:
                self.rejected.extend(scan_json_lines(self.con, [path], lines, what))
                items = f"SELECT CAST(text AS JSON) AS item, line FROM {lines} WHERE good ORDER BY line"
            return read(items, table, by_line)
        except duckdb.Error as err:
            raise read_error(replace(source, label=str(path)), err) from None
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {lines}")

    def _drop_tables(self, prefix: str) -> None:
        """Drop the tables whose names start with `prefix` (a source's raw rows, once selected from)."""
        names = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, ?)", [prefix]).fetchall()
        for (name,) in names:
            self.con.execute(f"DROP TABLE {quote(name)}")

    def _as_utf8(self, path: Path) -> Path:
        """`path` as UTF-8 text, its bytes that are not UTF-8 replaced by U+FFFD and counted in a warning: a reader
        refuses the whole file for one such line (Latin-1 text, a binary payload in a log message), which would
        lose every other line of it; so too for a gzip stream cut short, whose lines before the cut are read (the
        warning says how many). The copy lives as long as the store."""
        if not self._scratches:
            self._scratches.append(tempfile.TemporaryDirectory(prefix="incidentlens-utf8-"))
        copy = utf8_copy(path, Path(self._scratches[0].name))
        self.warnings.extend(copy.notes(path))
        return copy.path

    def _naming_originals(self, copies: dict[Path, Path], read: Callable[[], _Read]) -> _Read:
        """`read()` over UTF-8 copies, its warnings, lines set aside and errors naming each copy's original file,
        not the temporary copy."""
        def named(text: str) -> str:
            return _named(copies, text)

        warned, set_aside = len(self.warnings), len(self.rejected)
        try:
            return read()
        except InputError as err:
            raise type(err)(named(str(err))) from None
        finally:
            self.warnings[warned:] = [named(warning) for warning in self.warnings[warned:]]
            self.rejected[set_aside:] = [replace(rows, file=named(rows.file)) for rows in self.rejected[set_aside:]]

    def check_mapping(self, mapping: dict[str, str]) -> None:
        """Every `--map role=column` must name a column of some loaded source (a typo is not silently ignored)."""
        known = {c.lower() for c in self._source_columns}
        for role, column in mapping.items():
            if column.lower() not in known:
                raise InputError(f"--map {role}={column}: no column {column!r} in {', '.join(map(str, self.paths))}")

    def _add_source(self, view: str, source: Source, mapping: dict[str, str]) -> None:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; views are {', '.join(VIEWS)}")
        raw = f"_{view}_raw" if _is_text(source) else None

        def build(read: Source) -> list[Built]:
            return build_select(self.con, read, view, mapping, self.warnings, raw_table=raw, rejected=self.rejected,
                                zone=self.timezone or "")

        copies = self._wide_originals(source.files)
        try:
            try:
                selects = build(source)
            except (InputError, duckdb.Error) as err:
                if not (raw and read_from_copy(err, source.files)):
                    raise
                copies, selects = self._from_copies(source, build, err)
                copies = {copy: self._wide.get(read, read) for copy, read in copies.items()}
            parts = self._parts.setdefault(view, [])
            numbered: list[tuple[str, Built]] = []  # the logs parts whose rows say their file and line
            copied = 0  # spans rows that repeat another of the source's, kept once (`_kept_rows`)
            for built in selects:
                self._source_columns.update(built.columns)
                part = f"_{view}_{len(parts)}"
                rows = built.sql
                if raw:
                    rows = f"SELECT * FROM {quote(f'{part}_rows')}"
                    self.con.execute(f"CREATE OR REPLACE TABLE {quote(f'{part}_rows')} AS {_kept_rows(view, built)}")
                    if view == "spans":
                        copied += self._rows_copied(built, quote(f"{part}_rows"))
                    if view == "logs" and built.origin:
                        numbered.append((quote(f"{part}_rows"), built))
                kept = (ORIGIN_LINE,) if built.origin_file else (ORIGIN_FILE, ORIGIN_LINE)
                hidden = f" EXCLUDE ({', '.join(map(quote, kept))})" if built.origin else ""
                self.con.execute(f"CREATE OR REPLACE VIEW {quote(part)} AS SELECT *{hidden} FROM ({rows})")
                if view == "logs":
                    self._origins.append(_origin_sql(part, rows, built, source.fmt == "text", copies))
                    self._counted.update({str(copies.get(Path(read), read)): (Path(read), source.fmt)
                                          for read in built.counted})
                parts.append(part)
            if len(source.files) > 1 and numbered:
                self._drop_copies(numbered, [str(path) for path in copies or source.files], source.label, copies)
            if copied:
                self.warnings.append(f"{source.label}: {counted(copied, 'span')} written twice (the same trace, span, "
                                     "times and attributes; overlapping files or a retried export), counted once")
        finally:
            if raw:
                self._drop_tables(raw)
        self._ranges = None
        self._held.clear()  # held results read the views as they were: the next hold computes them again
        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {self._union(view)}")
        if view == "logs":
            self.con.execute(f"CREATE OR REPLACE VIEW {LOG_ORIGINS} AS {' UNION ALL BY NAME '.join(self._origins)}")
            self._uncounted = None

    def _from_copies(self, source: Source, build: Callable[[Source], list[Built]],
                     err: InputError | duckdb.Error) -> tuple[dict[Path, Path], list[Built]]:
        """A text source its reader refused (`err`: bytes that are not UTF-8, a gzip stream cut short) read from its
        files' UTF-8 copies (`_as_utf8`): (each copy -> its file, the parts read). A JSON file cut short whose lines
        before the cut are no JSON lines (a document, an array: no record before its end) is refused with `err`, which
        says it is cut short, and none of its copies' warnings."""
        said = len(self.warnings)
        copies = {self._as_utf8(path): path for path in source.files}
        try:
            return copies, self._naming_originals(copies, lambda: build(replace(source, files=tuple(copies))))
        except (InputError, duckdb.Error):
            if source.fmt != "json" or not cut_short(err):
                raise
            del self.warnings[said:]
            raise err from None

    def _wide_originals(self, files: Sequence[Path]) -> dict[Path, Path]:
        """Each of the files -> the file given, where one is a UTF-8 copy of a wide one (`_wide_copies`); else none."""
        if not any(path in self._wide for path in files):
            return {}
        return {path: self._wide.get(path, path) for path in files}

    def _rows_copied(self, built: Built, kept: str) -> int:
        """How many of a part's rows (`built`) its kept table (`kept`, `_kept_rows`) holds once for twice or more."""
        given = self.con.execute(f"SELECT count(*) FROM ({built.sql})").fetchone()[0]
        return given - self.con.execute(f"SELECT count(*) FROM {kept}").fetchone()[0]

    def _union(self, view: str, renamed: bool = True) -> str:
        """The SELECT of a view's rows: its parts' together, their service names read as `one_name_per_service`
        decided unless not `renamed`."""
        rows = " UNION ALL BY NAME ".join(f"SELECT * FROM {quote(p)}" for p in self._parts[view])
        return renamed_sql(rows, self._service_columns(view), self._renames) if renamed and self._renames else rows

    def _service_columns(self, view: str) -> list[str]:
        """The columns of `view`'s parts that name a service (`SERVICE_COLUMNS`)."""
        rows = self._union(view, renamed=False)
        present = {row[0] for row in self.con.execute(f"DESCRIBE {rows}").fetchall()}
        return [column for column in SERVICE_COLUMNS.get(view, ()) if column in present]

    def one_name_per_service(self) -> None:
        """Read the names that differ only in case (`Frontend`, `frontend`) as one service's, the lower-case one, in
        every view (`servicenames`), and say so in a warning; a later call decides again over the views as they are
        then. The views a `logs_backend` answers keep their names (a query there runs as written): a name the others
        spell in another case is read as theirs, and names they spell in two cases are said to stay apart."""
        names: set[str] = set()
        for view in self._parts:
            columns = ", ".join(map(quote, self._service_columns(view)))
            if columns:  # one scan of the view for all its columns that name a service
                names.update(row[0] for row in self.con.execute(
                    f"SELECT DISTINCT name FROM (SELECT unnest([{columns}]) AS name "
                    f"FROM ({self._union(view, renamed=False)})) WHERE name IS NOT NULL").fetchall())
        kept = self._backend_services() if names else []
        renames = case_renames(names, kept)
        self.warnings[:] = [w for w in self.warnings if not w.startswith(NAMED_IN_TWO_CASES)]
        if renames:
            said = ", ".join(f"{name} as {renamed}" for name, renamed in renames.items())
            self.warnings.append(f"{NAMED_IN_TWO_CASES}, read as one service's: {said}")
        self.warnings.extend(f"{NAMED_IN_TWO_CASES} in the logs in ClickHouse, kept apart (a query there runs as "
                             f"written): {', '.join(spelt)}" for spelt in kept_apart(kept))
        if renames == self._renames:
            return
        self._renames = renames
        for view in self._parts:
            self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {self._union(view)}")
        if "spans" in self._parts:
            self._remake_spans_view()
        self._ranges = None
        self._held.clear()

    def _backend_services(self) -> list[str]:
        """The service names of the logs a `logs_backend` answers (none without one)."""
        if self.logs_backend is None or "logs" not in self.logs_backend.views:
            return []
        named = self.logs_backend.fetch("SELECT DISTINCT service FROM logs WHERE service IS NOT NULL")
        return [str(name) for name in named.column("service").to_pylist()]

    def _remake_spans_view(self) -> None:
        """The spans view made again, once all the view's sources of a load are read: each span two sources hold
        once (`_unique_spans`), and under each call to a peer with nothing traced under it the server span inferred
        there (`peers.inferred_spans_sql`), made once into a table (not again at every query). Inferred after each
        source (an OTLP, Jaeger or Zipkin file is one) over all read so far, forty OTLP files of 3,000 spans took 21 s
        of CPU to load instead of 7."""
        unique = self._unique_spans()
        spans = unique or self._union("spans")
        self.con.execute(f"DROP TABLE IF EXISTS {INFERRED_SPANS}")
        if self.con.execute(f"SELECT 1 FROM ({spans}) WHERE peer IS NOT NULL LIMIT 1").fetchall():
            self.con.execute(f"CREATE TABLE {INFERRED_SPANS} AS {inferred_spans_sql(f'({spans})')}")
            self.con.execute(f"CREATE OR REPLACE VIEW spans AS {spans} UNION ALL BY NAME "
                             f"SELECT * FROM {INFERRED_SPANS}")
        elif unique:
            self.con.execute(f"CREATE OR REPLACE VIEW spans AS {unique}")

    def _unique_spans(self) -> str | None:
        """The SELECT of the spans of every source read with each span two sources hold (the same row in two OTLP,
        Jaeger or Zipkin files, as a collector's retried or overlapping exports write it) once, as `_kept_rows` keeps
        one source's, made into a table and counted in a warning; None where no span is given twice. Kept twice,
        each of its children would join both copies, and a span inferred under it would be inferred twice."""
        spans = self._union("spans")
        self.con.execute(f"DROP TABLE IF EXISTS {UNIQUE_SPANS}")
        self.warnings[:] = [w for w in self.warnings if not w.startswith(SPANS_GIVEN_TWICE)]
        if len(self._parts["spans"]) < 2:
            return None
        # a span given twice gives its trace and span id twice: where none is, no row is looked at whole
        given, ids = self.con.execute(f"SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM ({spans})").fetchone()
        if given == ids:
            return None
        self.con.execute(f"CREATE TABLE {UNIQUE_SPANS} AS SELECT DISTINCT * FROM ({spans})")
        unique = self.con.execute(f"SELECT count(*) FROM {UNIQUE_SPANS}").fetchone()[0]
        if given == unique:  # ids given twice, each time with other times or attributes: not one span written twice
            self.con.execute(f"DROP TABLE {UNIQUE_SPANS}")
            return None
        self.warnings.append(f"{SPANS_GIVEN_TWICE}: {counted(given - unique, 'span')} another trace file holds too "
                             "(the same trace, span, times and attributes), counted once")
        return f"SELECT * FROM {UNIQUE_SPANS}"

    def _drop_copies(self, parts: list[tuple[str, Built]], files: list[str], label: str,
                     copies: dict[Path, Path]) -> None:
        """Drop from the rows of a logs source (`parts`: each part's table and select, its files with malformed lines
        read apart from the others, `views.build_select`) the lines a later file (of `files`, in the order read)
        copies from an earlier one: an export re-run over a stretch already written (Nezha's TrainTicket day writes
        one log minute into two files), which counted twice would log that stretch twice as much. A later file
        copies an earlier one when, of its lines at the times both files have lines at, most are the earlier file's
        (the same time, fields and message); its lines that are, are dropped. Files that only share a line here and
        there (two pods' files with no pod column, each writing the same health check in the same second) copy
        nothing: each keeps its lines, as a file keeps a line it repeats (a service may write one line twice at
        once). The warning names each UTF-8 copy read (`copies`) as its original file."""
        plain = " UNION ALL ".join(f"SELECT {_file_sql(built)} AS file, ts FROM {table}" for table, built in parts)
        spans = f"SELECT file, min(ts) AS first, max(ts) AS last FROM ({plain}) GROUP BY file"
        if not self.con.execute(f"SELECT count(*) FROM ({spans}) AS a JOIN ({spans}) AS b ON a.file < b.file "
                                "AND a.first <= b.last AND b.first <= a.last").fetchone()[0]:
            return  # files one after another (a minute each, a day each) hold no line twice
        # the lines at times some other file has lines at: all a copy can be. A line is known by its file and line
        # there, not the table's rowid: a source's column may be named so
        keyed, shared = "_incidentlens_keyed", "_incidentlens_shared"
        order = f"[{', '.join(map(literal, files))}]"  # an earlier file is one read first
        lines = " UNION ALL ".join(
            f"SELECT {p} AS p, {quote(ORIGIN_LINE)} AS line, {_file_sql(built)} AS file, ts, hash({content}) AS h "
            f"FROM {table} WHERE ts IN (SELECT ts FROM {shared})"
            for p, (table, built), content in self._contents(parts))
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {shared} AS SELECT ts FROM ({plain}) GROUP BY ts "
            "HAVING count(DISTINCT file) > 1")
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {keyed} AS SELECT *, dense_rank() OVER (ORDER BY list_position({order}, "
            f"file), p, file) AS place FROM ({lines})")
        try:
            pairs = self._copied_pairs(keyed)
            for p, (table, built) in enumerate(parts if pairs else []):
                self.con.execute(f"DELETE FROM {table} USING _incidentlens_copies AS c WHERE c.p = {p} AND c.line = "
                                 f"{table}.{quote(ORIGIN_LINE)} AND c.later = {_file_sql(built)}")
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {keyed}; DROP TABLE IF EXISTS {shared}; "
                             "DROP TABLE IF EXISTS _incidentlens_copied; DROP TABLE IF EXISTS _incidentlens_copies; "
                             "DROP TABLE IF EXISTS _incidentlens_sets; DROP TABLE IF EXISTS _incidentlens_matches")
        if pairs:
            named = {str(copy): str(original) for copy, original in copies.items()}
            listed = "; ".join(f"{n:,} of {named.get(later, later)} already in {named.get(earlier, earlier)}"
                               for later, earlier, n in pairs[:3])
            more = f"; and {counted(len(pairs) - 3, 'more file')}" if len(pairs) > 3 else ""
            self.warnings.append(f"{label}: {sum(n for *_, n in pairs):,} log lines a later file copied from "
                                 f"an earlier one (the same time, fields and message: files whose times overlap), "
                                 f"counted once: {listed}{more}")

    def _contents(self, parts: list[tuple[str, Built]]) -> list[tuple[int, tuple[str, Built], str]]:
        """(index, part, the columns a line's content is hashed from) of each part (`_drop_copies`): every column
        but where it was read, in one order; a column a part lacks is NULL there, and one the parts read as types
        of their own is compared as text (a file's column of numbers and another's of words)."""
        described = [{name: kind for name, kind, *_ in self.con.execute(f"DESCRIBE {table}").fetchall()
                      if name not in (ORIGIN_FILE, ORIGIN_LINE)} for table, _ in parts]
        names = list(dict.fromkeys(name for columns in described for name in columns))
        kinds = {name: {columns.get(name) for columns in described} for name in names}

        def column(name: str, columns: dict[str, str]) -> str:
            if len(kinds[name]) == 1:
                return quote(name)
            return f"CAST({quote(name)} AS VARCHAR)" if name in columns else "CAST(NULL AS VARCHAR)"

        return [(p, part, ", ".join(column(name, columns) for name in names))
                for p, (part, columns) in enumerate(zip(parts, described, strict=True))]

    def _copied_pairs(self, keyed: str) -> list[tuple[str, str, int]]:
        """(later file, earlier file, lines copied) of each pair where the later copies the earlier (`_drop_copies`):
        of the later's lines at times both have lines at, more than half are the earlier's. Registers the pairs as
        `_incidentlens_copied`, and the lines copied as `_incidentlens_copies` (`_incidentlens_sets` and
        `_incidentlens_matches` on the way)."""
        times = f"SELECT file, place, ts, count(*) AS n FROM {keyed} GROUP BY ALL"
        # each file's lines summed over the times the same files have lines at (`files`: which), and a pair's
        # shared lines over those sums, not joined time by time: per-pod files with a line every second share
        # their files at every time (50 files of 20k seconds: 24.5M rows joined, 4.5 s; one set of files here)
        sets = f"SELECT ts, dense_rank() OVER (ORDER BY list(place ORDER BY place)) AS files FROM ({times}) GROUP BY ts"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE _incidentlens_sets AS SELECT t.file, t.place, s.files, "
                         f"sum(t.n) AS n FROM ({times}) AS t JOIN ({sets}) AS s USING (ts) GROUP BY ALL")
        shared = ("SELECT a.file AS earlier, b.file AS later, sum(b.n) AS shared FROM _incidentlens_sets AS a "
                  "JOIN _incidentlens_sets AS b ON a.files = b.files AND a.place < b.place GROUP BY ALL")
        # each line matched with every earlier file holding it (the same time and content), once for both uses
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE _incidentlens_matches AS {_matches_sql(keyed)}")
        matched = "SELECT earlier, later, count(*) AS matched FROM _incidentlens_matches GROUP BY ALL"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE _incidentlens_copied AS SELECT earlier, later FROM ({shared}) "
                         f"JOIN ({matched}) USING (earlier, later) WHERE 2 * matched > shared")
        self.con.execute("CREATE OR REPLACE TEMP TABLE _incidentlens_copies AS SELECT m.p, m.line, m.place, m.later, "
                         "arg_min(m.earlier, m.earlier_place) AS earlier FROM _incidentlens_matches AS m JOIN "
                         "_incidentlens_copied AS c USING (earlier, later) GROUP BY m.p, m.line, m.place, m.later")
        return self.con.execute("SELECT later, earlier, count(*) AS n FROM _incidentlens_copies GROUP BY ALL "
                                "ORDER BY min(place)").fetchall()

    def log_origins_sql(self) -> str | None:
        """`SELECT file, line, message`: every entry of the logs view (in its parts' order) with the file it was
        read from and its line there (1-based; a CSV record's first line, a Parquet or JSON-array row's number, a saved
        answer's entry's number),
        NULL for an entry not read from a file here; None when no logs were loaded here (ClickHouse holds them).

        A CSV or JSON-lines file's entries are numbered as read, which skips blank lines uncounted: a file that has
        them is scanned for them here, for the one command that asks (`templates`), not at every load."""
        if not self._origins:
            return None
        origins = (f"SELECT CAST({quote(ORIGIN_FILE)} AS VARCHAR) AS file, CAST({quote(ORIGIN_LINE)} AS BIGINT) AS "
                   f"line, message FROM {LOG_ORIGINS}")
        if self._uncounted is None:
            self._uncounted = _uncounted_lines(self.con, self._counted, self.rejected)
        return _moved_past_uncounted(origins, self._uncounted) if self._uncounted else origins


#: the logs view with where each entry was read, for `incidentlens templates` (`log_origins_sql`)
LOG_ORIGINS = "_logs_origins"


def _named(copies: dict[Path, Path], text: str) -> str:
    """`text` naming each copy's original file (`copies`: copy -> original), not the temporary copy: the path, then
    the name alone (`1 of 3 lines of a.jsonl`)."""
    for copy, original in copies.items():
        text = text.replace(str(copy), str(original)).replace(copy.name, original.name)
    return text


def _origin_sql(part: str, rows: str, built: Built, text: bool, copies: dict[Path, Path]) -> str:
    """A logs part's entries with where they were read: a file source's hidden columns (of one file, its name; a
    UTF-8 copy's named as its original), a plain-text log's own file and line, else none (NULL)."""
    named = {str(copy): str(original) for copy, original in copies.items()}
    if built.origin and built.origin_file:
        one = literal(named.get(built.origin_file, built.origin_file))
        return f"SELECT *, {one} AS {quote(ORIGIN_FILE)} FROM ({rows})"
    if built.origin and named:
        cases = " ".join(f"WHEN {literal(copy)} THEN {literal(original)}" for copy, original in named.items())
        renamed = f"CASE {quote(ORIGIN_FILE)} {cases} ELSE {quote(ORIGIN_FILE)} END AS {quote(ORIGIN_FILE)}"
        return f"SELECT * REPLACE ({renamed}) FROM ({rows})"
    if built.origin:
        return f"SELECT * FROM ({rows})"
    if text:
        return f'SELECT *, "file" AS {quote(ORIGIN_FILE)}, "line" AS {quote(ORIGIN_LINE)} FROM {quote(part)}'
    # written, not left to the union by name: a store whose only logs are these (a saved Loki answer) has no other;
    # a saved answer's entries (Loki, CloudWatch, OTLP) are of its file, numbered in the order it gives them
    file, line = ((literal(named.get(built.origin_file, built.origin_file)), "row_number() OVER ()")
                  if built.origin_file else ("NULL", "NULL"))
    return (f"SELECT *, CAST({file} AS VARCHAR) AS {quote(ORIGIN_FILE)}, CAST({line} AS BIGINT) AS "
            f"{quote(ORIGIN_LINE)} FROM {quote(part)}")


def _uncounted_lines(con: duckdb.DuckDBPyConnection, counted: dict[str, tuple[Path, str]],
                     rejected: list[RejectedRows]) -> str:
    """The name of a table of the lines the readers skipped uncounted in `counted` (by file name: the file read and
    its format): blank lines, in a CSV file those outside a quoted value (an even number of quotes before them on
    the lines read: a record set aside is skipped whole, its quotes with it), with, in a file that has any, the
    records set aside from it, which its numbering counted already (`views._count_skipped_lines`); the j-th such
    line of its file is line `skipped`. '' when no file has a blank line."""
    # a table from query parameters, not a registered pyarrow table: building one from Python values imports pandas
    con.execute("CREATE OR REPLACE TEMP TABLE _incidentlens_set_aside AS "
                "SELECT unnest($files::VARCHAR[]) AS file, unnest($skipped::BIGINT[]) AS skipped",
                {"files": [r.file for r in rejected if r.file in counted for _ in r.rows],
                 "skipped": [line for r in rejected if r.file in counted for line, _, _ in r.rows]})
    try:
        return _blank_lines(con, counted)
    finally:
        con.execute("DROP TABLE _incidentlens_set_aside")


def _blank_lines(con: duckdb.DuckDBPyConnection, counted: dict[str, tuple[Path, str]]) -> str:
    """`_uncounted_lines` with the records set aside in the table `_incidentlens_set_aside` (file, skipped)."""
    table = "_incidentlens_uncounted"
    scans = []
    for name, (path, fmt) in counted.items():
        if fmt == "jsonl":
            blank = f"SELECT line FROM ({lines_sql(path)}) WHERE text IS NULL OR trim(text) = ''"
        else:
            read = f"line NOT IN (SELECT skipped FROM _incidentlens_set_aside WHERE file = {literal(name)})"
            quotes = (f"sum(CASE WHEN {read} THEN length(text) - length(replace(text, '\"', '')) END) OVER "
                      "(ORDER BY line ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)")
            header = csv_preamble(path)[0] + 1  # below the comment lines its reader skipped, blank ones too
            blank = (f"SELECT line FROM (SELECT line, text, coalesce({quotes}, 0) AS quotes FROM ({lines_sql(path)})) "
                     f"WHERE text IS NULL AND quotes % 2 = 0 AND line > {header}")
        scans.append(f"SELECT {literal(name)} AS file, line AS skipped, false AS set_aside FROM ({blank})")
    if not scans:
        return ""
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {' UNION ALL '.join(scans)}")
    except duckdb.InvalidInputException as err:  # a record past what a line may be, set aside at the load
        file = error_file(err)
        raise (refused_line(err, Path(file)) if file else None) or err from None
    if not con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]:
        return ""
    con.execute(f"INSERT INTO {table} SELECT file, skipped, true FROM _incidentlens_set_aside "
                f"WHERE file IN (SELECT file FROM {table})")
    return table


def _moved_past_uncounted(origins: str, table: str) -> str:
    """`origins` with each entry's line moved past the uncounted lines before it (`_uncounted_lines`). Numbered
    as read, an entry's line is its place among the lines counted, the header's included, moved past
    the records set aside: a set-aside line at L moved every entry numbered past L - i, the i-th of them, by i;
    undone first (the entries numbered past L, of which i are). The j-th uncounted line at P has P - j counted
    lines before it, so it precedes every entry whose place is past that: the last such moves it by j."""
    nth = "row_number() OVER (PARTITION BY file ORDER BY skipped)"
    set_aside = f"SELECT file, skipped, {nth} AS moved FROM {table} WHERE set_aside"
    uncounted = (f"SELECT file, max(moved) AS moved, place FROM (SELECT file, {nth} AS moved, skipped - {nth} AS place "
                 f"FROM {table}) GROUP BY file, place")
    numbered = f"SELECT *, row_number() OVER () AS _incidentlens_entry FROM ({origins})"
    placed = (f"SELECT o.*, o.line - coalesce(s.moved, 0) AS place FROM ({numbered}) AS o "
              f"ASOF LEFT JOIN ({set_aside}) AS s ON o.file = s.file AND o.line > s.skipped")
    return (f"SELECT o.file, o.place + coalesce(u.moved, 0) AS line, o.message FROM ({placed}) AS o "
            f"ASOF LEFT JOIN ({uncounted}) AS u ON o.file = u.file AND o.place > u.place "
            "ORDER BY o._incidentlens_entry")


def load_telemetry(
    metrics: PathsArg = None,
    logs: PathsArg = None,
    traces: PathsArg = None,
    events: PathsArg = None,
    mapping: dict[str, str] | None = None,
    text: TextLogOptions | None = None,
    calls: PathsArg = None,
    timezone: str | None = None,
) -> TelemetryStore:
    """Files -> a TelemetryStore with canonical views; each argument is a path, a glob, or a list of them (`calls`:
    per-call-edge latency per interval, as a service mesh reports it; `timezone`: the IANA zone of the times written
    without one, which are otherwise UTC).

    Validates eagerly: a missing or unreadable file, no time column or an unparseable time raise InputError now.
    """
    inputs = {"metrics": metrics, "logs": logs, "spans": traces, "events": events, "calls": calls}
    if all(paths is None or (isinstance(paths, Sequence) and not isinstance(paths, str) and not paths)
           for paths in inputs.values()):
        raise InputError("no telemetry given: pass metrics and/or logs files")
    store = TelemetryStore(timezone=timezone)
    _add_views_at_once(store, {view: paths for view, paths in inputs.items() if paths is not None}, mapping, text)
    store.check_mapping(mapping or {})
    store.one_name_per_service()
    return store


def _add_views_at_once(store: TelemetryStore, files: dict[str, PathsArg], mapping: dict[str, str] | None,
                       text: TextLogOptions | None) -> None:
    """`store.add_files` for each view of a new store, the views read at once: each by a store of its own, on a
    cursor of `store`'s database, in a thread of its own, then taken in, in view order, so the warnings, the lines
    set aside and the first error are those of reading one view after another. DuckDB reads without holding the GIL,
    and much of a view's read uses one core (a gzip stream, rows numbered in file order, the Python between queries):
    read one after another, a day's metrics, an hour's logs and its traces kept the second core idle."""
    readers = {view: TelemetryStore(con=store.con.cursor(), timezone=store.timezone) for view in files}
    reads: list[tuple[Future[None], duckdb.DuckDBPyConnection]] = []
    try:
        with ThreadPoolExecutor(max_workers=len(files) or 1) as pool:
            try:
                for view, paths in files.items():
                    reads.append((pool.submit(readers[view].add_files, view, paths, mapping, text), readers[view].con))
                for read, _ in reads:
                    read.result()
            finally:
                _stop_reads(reads)
    finally:
        for reader in readers.values():
            reader.con.close()
            store._take_views(reader)


def _stop_reads(reads: list[tuple[Future[None], duckdb.DuckDBPyConnection]]) -> None:
    """Interrupt each read still running, on its connection, until it ends: after a view's error, which the later
    views' cannot change, or Ctrl-C (which only the main thread hears; waited for, a load went on to its end, and
    its connections were closed while in use). An interrupt stops the query running, not the next: a read runs many."""
    while running := [con for read, con in reads if not read.done()]:
        for con in running:
            con.interrupt()
        wait([read for read, _ in reads], timeout=0.05)


def _matches_sql(keyed: str) -> str:
    """(part, line, place, later, earlier, earlier_place) of each line of `keyed` (`TelemetryStore._drop_copies`)
    with each earlier file that holds a line of the same time and content."""
    return (f"SELECT b.p, b.line, b.place, b.file AS later, a.file AS earlier, a.place AS earlier_place FROM {keyed} "
            f"AS b JOIN (SELECT DISTINCT file, place, ts, h FROM {keyed}) AS a ON a.ts = b.ts AND a.h = b.h "
            "AND a.place < b.place")


def _file_sql(built: Built) -> str:
    """The file a logs part's row was read from: its column, or the part's one file."""
    return literal(built.origin_file) if built.origin_file else quote(ORIGIN_FILE)


def _kept_rows(view: str, built: Built) -> str:
    """The SELECT of the rows a text source keeps: a span written twice (the same row in two files, as Nezha's
    overlapping minute files and a collector's retried export hold it) is one span. Kept twice, each of its children
    would join both copies, its calls counted four times and its children's time taken twice from its own."""
    return f"SELECT DISTINCT * FROM ({built.sql})" if view == "spans" else built.sql


def _is_text(source: Source) -> bool:
    """Whether a source is text files (CSV, JSON), which are parsed once, at load, into a table."""
    return source.fmt in _TEXT_FORMATS and bool(source.files)


def _tables_read(sql: str) -> set[str]:
    """The tables and views a query reads (CTE names excluded); unparseable SQL reads 'everything'. (Only a store
    with a `logs_backend` asks: sqlglot is imported here, not at every start-up.)"""
    import sqlglot
    import sqlglot.expressions as exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return {"*"}
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {table.name for table in tree.find_all(exp.Table)} - ctes or {"*"}
