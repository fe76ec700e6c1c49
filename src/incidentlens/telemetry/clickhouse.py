"""ClickHouse as a logs source: queries over the canonical `logs` view are pushed down, only their results return.

`--logs clickhouse://user:pass@host:8123/db.table` names a table. Its columns are detected like a file's (time,
service, level, message; `--map role=column` overrides) and exposed by a ClickHouse subquery with the canonical
columns. `ClickHouseLogs.fetch(sql)` takes the analysis's DuckDB SQL over `logs`, rewrites it for ClickHouse
(`dialect.to_clickhouse`), runs it there and returns the result as arrow, shaped exactly as DuckDB would have
shaped it (names and types from running the same SQL over an empty canonical table).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import duckdb
import pyarrow as pa

from incidentlens.errors import IncidentLensError, InputError, SourceError
from incidentlens.telemetry.columns import CANDIDATES, candidate_columns, find_column, is_pod_column, quote
from incidentlens.telemetry.dialect import referenced_tables, to_clickhouse
from incidentlens.telemetry.logfields import (
    JSON_LEVEL_FIELDS,
    JSON_MESSAGE_FIELDS,
    LEVEL_KEYS,
    LEVEL_NAMES,
    LEVEL_WORD_PATTERN,
    LOGFMT_LEVEL_PATTERN,
    POD_SUFFIX,
)
from incidentlens.telemetry.timeparse import EARLIEST, EPOCH_UNITS, LATEST, TimeFormat, other_unit_sql, written_unit
from incidentlens.telemetry.views import SAMPLE_ROWS
from incidentlens.telemetry.words import counted, have
from incidentlens.urls import redact_url

Runner = Callable[[str], pa.Table]

CANONICAL_COLUMNS = ("ts", "service", "level", "message")
GO_TIME_TAIL = r" [A-Za-z]+( m=[-+][0-9.]+)?$"
# The columns the canonical SELECT's subqueries add: the unwrapped line, a JSON line's message and level field.
LINE, MESSAGE, LEVEL_FIELD = "_incidentlens_line", "_incidentlens_message", "_incidentlens_level_field"
_WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where the logs live, parsed from clickhouse://user:pass@host:port/db.table (clickhouses:// for TLS)."""

    host: str
    port: int
    user: str
    password: str
    database: str
    table: str
    secure: bool

    @classmethod
    def parse(cls, url: str) -> ClickHouseTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("clickhouse", "clickhouses"):
            raise InputError(f"{redact(url)}: expected clickhouse://user:pass@host:8123/db.table")
        database, _, table = parts.path.lstrip("/").partition(".")
        if not parts.hostname or not database or not table:
            raise InputError(f"{redact(url)}: expected clickhouse://user:pass@host:8123/db.table")
        secure = parts.scheme == "clickhouses"
        try:
            port = parts.port or (8443 if secure else 8123)
        except ValueError:  # urllib reads the port only when asked: `host:abc`, `host:99999`
            raise InputError(f"{redact(url)}: the port is no number from 1 to 65535") from None
        password = unquote(parts.password) if parts.password else os.environ.get("CLICKHOUSE_PASSWORD", "")
        return cls(
            host=parts.hostname, port=port,
            user=unquote(parts.username or "default"), password=password,
            database=database, table=table, secure=secure,
        )

    @property
    def name(self) -> str:
        """The source as the user should see it: no password."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}.{self.table}"

    @property
    def qualified_table(self) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(self.table)}"


def redact(url: str) -> str:
    """The URL with its password (and any query-string value) replaced, for messages."""
    return redact_url(url)


def string_literal(text: str) -> str:
    """A Python string as a ClickHouse string literal (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def connect_clickhouse_logs(
    url: str, mapping: Mapping[str, str] | None = None, timeout: float = 30.0
) -> ClickHouseLogs:
    """Open the logs table behind a clickhouse:// URL with the official clickhouse-connect client."""
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import ClickHouseError

    target = ClickHouseTarget.parse(url)
    # The driver logs failures before raising them; the error reaches the user once, as our one line.
    logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())
    logging.getLogger("clickhouse_connect").propagate = False
    try:
        client = clickhouse_connect.get_client(
            host=target.host, port=target.port, username=target.user, password=target.password,
            database=target.database, secure=target.secure, connect_timeout=timeout, send_receive_timeout=timeout,
        )
    except ClickHouseError as err:
        raise SourceError(f"ClickHouse {target.name}: {describe_clickhouse_error(err)}") from None

    def run(sql: str) -> pa.Table:
        return client.query_arrow(sql, use_strings=True)

    return ClickHouseLogs(run, target.qualified_table, target.name, mapping)


_UNREACHABLE = {
    "Connection refused": "connection refused", "Failed to resolve": "cannot resolve the host",
    "Name or service not known": "cannot resolve the host", "timed out": "timed out",
    "Max retries": "no answer after retries",
}


def describe_clickhouse_error(err: BaseException) -> str:
    """One line for a ClickHouse or client error: auth refusals and unreachable servers said plainly."""
    text = " ".join(str(err).split())
    if "AUTHENTICATION_FAILED" in text or "Code: 516" in text or "HTTP 401" in text or "HTTP 403" in text:
        return "authentication refused"
    for symptom, reason in _UNREACHABLE.items():
        if symptom in text:
            return f"unreachable ({reason})"
    code = re.search(r"Code: \d+\. DB::Exception: (.*?)(?: \(\w+\))?(?: \(version [^)]*\))?$", text)
    return (code.group(1) if code else text)[:300]


class ClickHouseLogs:
    """A ClickHouse table seen as the canonical `logs` view; every query is pushed down (a store QueryBackend)."""

    views = frozenset({"logs"})

    def __init__(self, run: Runner, table: str, source: str, mapping: Mapping[str, str] | None = None) -> None:
        self._run_raw = run
        self.table = table
        self.source = source
        self.columns = self._describe()
        self.roles = detect_roles(self.columns, mapping or {}, source)
        self.wrapped, self.structured = self._sample_lines()
        self.time = self._time_reading()
        self.canonical_sql = self._canonical_sql()
        self.warnings = self._check_times()
        self._shape = _empty_canonical_table(
            {name: self.columns[column] for name, column in self.rest_columns().items()}
        )

    def fetch(self, sql: str) -> pa.Table:
        """Run DuckDB SQL over `logs` in ClickHouse; the result has the names and types DuckDB would give it."""
        others = referenced_tables(sql) - {"logs"}
        if others:
            raise InputError(
                f"query reads logs (in ClickHouse {self.source}) together with {', '.join(sorted(others))}: "
                "query the logs on their own"
            )
        expected = self._expected_schema(sql)  # DuckDB-invalid SQL fails here, before a round trip
        return _reshape(self._run(to_clickhouse(sql, {"logs": self.canonical_sql})), expected)

    def _run(self, sql: str) -> pa.Table:
        try:
            return self._run_raw(sql)
        except IncidentLensError:
            raise
        except Exception as err:  # the client boundary: any driver failure becomes one line
            raise SourceError(f"ClickHouse {self.source}: {describe_clickhouse_error(err)}") from None

    def _describe(self) -> dict[str, str]:
        described = self._run(f"DESCRIBE TABLE {self.table}")
        names, types = described.column("name").to_pylist(), described.column("type").to_pylist()
        return dict(zip(names, types, strict=True))

    def _sample_lines(self) -> tuple[bool, bool]:
        """Whether the first SAMPLE_ROWS messages hold container-runtime wrappers, and JSON objects once unwrapped:
        as for files, only then do lines pay for reading them (a ClickHouse `if` copies every string it passes)."""
        raw = f"toString(src.{quote_identifier(self.roles['message'])})"
        sample = f"SELECT {raw} AS raw, {_unwrapped_expr('raw')} AS line FROM {self.table} AS src LIMIT {SAMPLE_ROWS}"
        counts = self._run(f"SELECT countIf({_is_wrapper('raw')}) AS wrapped, "
                           f"countIf({_is_json_object('line')}) AS objects FROM ({sample})").to_pylist()[0]
        return counts["wrapped"] > 0, counts["objects"] > 0

    def _canonical_sql(self) -> str:
        """The canonical SELECT. The unwrapped line and a JSON line's message and level field are computed once
        each, in subqueries: written inline, the level's expression would repeat them and pass ClickHouse's query
        size limit."""
        roles = self.roles
        line = message = f"toString(src.{quote_identifier(roles['message'])})"
        level_field = None
        layers: list[dict[str, str]] = []
        if self.wrapped:
            layers.append({LINE: _unwrapped_expr(line)})
            line = message = f"src.{LINE}"
        if self.structured:
            layers.append({MESSAGE: _message_expr(line), LEVEL_FIELD: _level_field_expr(line)})
            message, level_field = f"src.{MESSAGE}", f"src.{LEVEL_FIELD}"
        select = {
            "ts": self.time.parsed,
            "service": _service_expr(roles.get("service")),
            "level": _level_expr(roles.get("level"), message, level_field, line),
            "message": message,
        }
        for name, column in self.rest_columns().items():
            select[name] = f"src.{quote_identifier(column)}"
        return (f"SELECT {_aliased(select)} FROM {self._layered(layers)} AS src "
                f"WHERE ts IS NOT NULL AND {self.time.valid()}")

    def _layered(self, layers: list[dict[str, str]]) -> str:
        """The table under subqueries adding the helper columns, layer by layer."""
        if not layers:
            return self.table
        # The table's columns by name: `*` would leave out its ALIAS and MATERIALIZED ones.
        source = f"(SELECT {', '.join(f'src.{quote_identifier(c)} AS {quote_identifier(c)}' for c in self.columns)}" \
                 f" FROM {self.table} AS src)"
        for helpers in layers:
            source = f"(SELECT *, {_aliased(helpers)} FROM {source} AS src)"
        return source

    def rest_columns(self) -> dict[str, str]:
        """Every column not consumed by a role, names kept (`source_<name>` on a clash), as for files.

        A pod column stays too: the service is derived from it, the pod itself is worth keeping.
        """
        consumed = {self.roles[role] for role in ("time", "level", "message") if role in self.roles}
        service = self.roles.get("service")
        if service and not is_pod_column(service):
            consumed.add(service)
        return {
            (f"source_{column}" if column.lower() in CANONICAL_COLUMNS else column): column
            for column in self.columns if column not in consumed
        }

    def _time_reading(self) -> _TimeReading:
        column = self.roles["time"]
        quoted = f"src.{quote_identifier(column)}"
        kind = base_type(self.columns[column])
        if kind.startswith("DateTime"):
            # the column itself, its zone set to UTC (for the functions that read one: a truncation to the hour):
            # a conversion (toDateTime64) hid it from a time filter, and ClickHouse read every granule of a table
            # ordered by time, where this reads only the filter's
            return _TimeReading(quoted, f"toTimeZone({quoted}, 'UTC')")
        if kind.startswith("Date"):
            return _TimeReading(quoted, f"toDateTime64({quoted}, 6, 'UTC')")
        if kind.startswith("String"):
            # Go's time.Time.String() (`2023-01-29 08:41:09.85 +0000 UTC m=+0.93`) parses once its tail is cut.
            go_tail = string_literal(GO_TIME_TAIL)
            return _TimeReading(quoted,
                                f"parseDateTime64BestEffortOrNull(replaceRegexpOne({quoted}, {go_tail}, ''), 6, 'UTC')")
        if kind.startswith(("Int", "UInt", "Float", "Decimal")):
            return _epoch_reading(quoted, self._epoch_unit(quoted))
        raise InputError(f"{self.source}: column '{column}' ({self.columns[column]}) cannot be read as a time")

    def _epoch_unit(self, quoted: str) -> str:
        """The epoch unit of the column's median size, as for files (`timeparse.epoch_unit`): from how many values
        lie in each unit's range, an exact median in one pass (ClickHouse's `median` samples). Not the largest
        value's: one value past its unit (a BIGINT's end) would read the whole column in nanoseconds, in 1970."""
        size = f"abs(toFloat64({quoted}))"
        limits = [limit for limit, _ in EPOCH_UNITS[:-1]]
        bucket = f"multiIf({', '.join(f'{size} < {limit:g}, {i}' for i, limit in enumerate(limits))}, {len(limits)})"
        counts = self._run(f"SELECT {bucket} AS unit, count() AS n FROM {self.table} AS src "
                           f"WHERE isFinite(toFloat64({quoted})) GROUP BY unit ORDER BY unit").to_pylist()
        half, seen = sum(row["n"] for row in counts) / 2, 0
        for row in counts:
            seen += row["n"]
            if seen > half:
                return EPOCH_UNITS[row["unit"]][1]
        return "s"  # no number at all: every row is without a time, and the check says so

    def _check_times(self) -> list[str]:
        """One pass: rows without a time, or with one that does not parse, is in another epoch unit than the
        column's or lies outside the years the analysis holds, are left out (the canonical SELECT keeps only rows
        with a time) and counted, as for files; a table where such times are more than half the timed rows is not
        the time format it looks like, an error naming one."""
        column, time = self.roles["time"], self.time
        missing = f"(isNull({time.raw}) OR trimBoth(toString({time.raw})) = '')"
        defects = time.defects(missing)
        counts = self._run(
            f"SELECT count() AS total, countIf({missing}) AS missing"
            + "".join(f", countIf({condition}) AS n{i}, anyIf(toString({time.raw}), {condition}) AS e{i}"
                      for i, (condition, _) in enumerate(defects))
            + f" FROM {self.table} AS src"
        ).to_pylist()[0]
        timed = counts["total"] - counts["missing"]
        found = [(counts[f"n{i}"], says.format(value=counts[f"e{i}"], unit=written_unit(counts[f"e{i}"])))
                 for i, (_, says) in enumerate(defects) if counts[f"n{i}"]]
        unusable = sum(rows for rows, _ in found)
        if 2 * unusable > timed:
            raise InputError(f"{self.source}: column {column!r}: {found[0][1]}; {unusable} of the "
                             f"{counted(timed, 'timed row')} so: not the time format it looks like")
        warnings = [f"{self.source}: column {column!r}: {counted(rows, 'row')} with a bad time left out; one of them: "
                    f"{said}"
                    for rows, said in found]
        if counts["missing"]:
            missing = counts["missing"]
            warnings.append(f"{self.source}: column {column!r}: {counted(missing, 'row')} {have(missing)} no time, "
                            "left out")
        return warnings

    def _expected_schema(self, sql: str) -> pa.Schema:
        try:
            return self._shape.cursor().sql(sql).to_arrow_table().schema
        except duckdb.Error as err:
            raise InputError(f"query over logs: {' '.join(str(err).split())[:300]}") from None


def detect_roles(columns: Mapping[str, str], mapping: Mapping[str, str], source: str) -> dict[str, str]:
    """The column for each role, chosen as for files: `--map` first, then the candidates in order of preference."""
    names = list(columns)
    for role, column in mapping.items():
        if role in ("time", "service", "level", "message") and column not in columns:
            raise InputError(
                f"{source}: column {column!r} (mapped to {role}) is not in the table (columns: {', '.join(names)})"
            )
    roles: dict[str, str] = {}
    times = [c for c in candidate_columns(names, "time", dict(mapping)) if _can_be_time(columns[c])]
    message = find_column(names, "message", dict(mapping), exclude=times[:1])
    for role, found in (("time", times[0] if times else None), ("message", message)):
        if found is None:
            raise InputError(
                f"{source}: no {role} column (looked for {', '.join(CANDIDATES[role])}; columns: {', '.join(names)}); "
                f"use --map {role}=COLUMN"
            )
        roles[role] = found
    level = find_column(names, "level", dict(mapping), exclude=roles.values())
    service = find_column(names, "service", dict(mapping), exclude=[*roles.values(), *([level] if level else [])])
    roles.update({role: column for role, column in (("level", level), ("service", service)) if column})
    return roles


def _can_be_time(clickhouse_type: str) -> bool:
    return base_type(clickhouse_type).startswith(("DateTime", "Date", "String", "Int", "UInt", "Float", "Decimal"))


def base_type(clickhouse_type: str) -> str:
    """`LowCardinality(Nullable(String))` -> `String`."""
    while match := _WRAPPERS.match(clickhouse_type):
        clickhouse_type = match.group(1)
    return clickhouse_type


def _service_expr(column: str | None) -> str:
    if column is None:
        return "'global'"
    text = f"toString(src.{quote_identifier(column)})"
    return f"replaceRegexpOne({text}, {string_literal(POD_SUFFIX)}, '')" if is_pod_column(column) else text


def _epoch_reading(quoted: str, unit: str) -> _TimeReading:
    """Epoch numbers in `unit`: a value whose size says another unit, or outside the years, is no time (checked on
    the number: ClickHouse clamps a time past its range to the range's end)."""
    number = f"toFloat64({quoted})"
    parsed = {
        "s": f"toDateTime64({number}, 6, 'UTC')",
        "ms": f"toDateTime64(fromUnixTimestamp64Milli(toInt64({quoted}), 'UTC'), 6, 'UTC')",
        "us": f"toDateTime64(fromUnixTimestamp64Micro(toInt64({quoted}), 'UTC'), 6, 'UTC')",
        "ns": f"toDateTime64(fromUnixTimestamp64Nano(toInt64({quoted}), 'UTC'), 6, 'UTC')",
    }[unit]
    seconds = f"{number} / {_PER_SECOND[unit]:g}"
    inside = f"({seconds} >= {_epoch_seconds(EARLIEST)} AND {seconds} < {_epoch_seconds(LATEST)})"
    other = other_unit_sql(quoted, TimeFormat("epoch", unit, text=False))
    return _TimeReading(quoted, f"if(isFinite({number}), {parsed}, NULL)", inside, other, unit)


_PER_SECOND = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _epoch_seconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class _TimeReading:
    """How the time column becomes a time: `parsed` (NULL where it does not parse), with, for epoch numbers, the
    condition of a value in the years the analysis holds (`inside`; else the parsed time's) and of one whose size
    says another unit than the column's `unit` (`other_unit`)."""

    raw: str
    parsed: str
    inside: str = ""
    other_unit: str | None = None
    unit: str = ""

    def inside_sql(self) -> str:
        return self.inside or (f"({self.parsed} >= toDateTime64({string_literal(str(EARLIEST))}, 6, 'UTC') AND "
                               f"{self.parsed} < toDateTime64({string_literal(str(LATEST))}, 6, 'UTC'))")

    def valid(self) -> str:
        """The condition of a row whose parsed time is one (`defects`): in the canonical SELECT's WHERE, not a
        NULL time in its column, which would hide the column from a time filter as a conversion does."""
        return f"coalesce({self.inside_sql()}{self._same_unit()}, false)"

    def defects(self, missing: str) -> list[tuple[str, str]]:
        """(condition, words with `{value}` and `{unit}`) of each kind of bad time, a row under the first it is:
        one that does not parse, is in another unit, or lies outside the years."""
        bad = f"(NOT {missing} AND isNull({self.parsed}))"
        found = [(bad, "cannot parse {value!r} as a time")]
        if self.other_unit:
            other = f"(NOT {missing} AND NOT {bad} AND coalesce({self.other_unit}, false))"
            found.append((other, f"{{value!r}} is epoch {{unit}} by its size, the column read as epoch {self.unit}"))
        outside = f"(NOT {missing} AND NOT {bad}{self._same_unit()} AND NOT coalesce({self.inside_sql()}, false))"
        found.append((outside, f"{{value!r}} is a time outside the years {EARLIEST.year}-{LATEST.year - 1}"))
        return found

    def _same_unit(self) -> str:
        return f" AND NOT coalesce({self.other_unit}, false)" if self.other_unit else ""


def _aliased(exprs: Mapping[str, str]) -> str:
    return ", ".join(f"{expr} AS {quote_identifier(name)}" for name, expr in exprs.items())


def _is_wrapper(text: str) -> str:
    """A container runtime's JSON line (`{"log": "...\\n", "stream": ...}`): its `log` a string (ECS's `log` object
    is no wrapper)."""
    return f"{_is_json_object(text)} AND JSONType({text}, 'log') = 'String'"


def _unwrapped_expr(text: str) -> str:
    """The line, unwrapped from a container runtime's JSON line."""
    log = f"replaceRegexpOne(JSONExtractString({text}, 'log'), {string_literal(chr(10) + '+$')}, '')"
    return f"if({_is_wrapper(text)}, {log}, {text})"


def _is_json_object(text: str) -> str:
    return f"(startsWith({text}, '{{') AND isValidJSON({text}))"


def _first_json_field(text: str, fields: tuple[tuple[str, ...], ...]) -> str:
    """The first of the fields present and not empty, as text (a number as written), else NULL: as the file views
    read it."""
    values = (f"nullIf(JSONExtractString({text}, {', '.join(string_literal(key) for key in keys)}), '')"
              for keys in fields)
    return f"coalesce({', '.join(values)})"


def _message_expr(line: str) -> str:
    """A JSON line's message field (logfields.JSON_MESSAGE_FIELDS), else the line itself."""
    return f"if({_is_json_object(line)}, coalesce({_first_json_field(line, JSON_MESSAGE_FIELDS)}, {line}), {line})"


def _level_field_expr(line: str) -> str:
    """A JSON line's level field (logfields.JSON_LEVEL_FIELDS) as written; NULL for other lines."""
    return f"if({_is_json_object(line)}, {_first_json_field(line, JSON_LEVEL_FIELDS)}, NULL)"


def _level_expr(column: str | None, message: str, level_field: str | None, line: str) -> str:
    """Upper-cased, normalised level (WARNING->WARN, ERR->ERROR, CRITICAL->FATAL), read exactly as the file views
    read it: the level column; else (and where it is empty, for a JSON line) a JSON line's level field, else the
    first level word of its message, else a `level=` in a message naming one (logfields)."""
    word = f"nullIf(extract({message}, {string_literal(LEVEL_WORD_PATTERN)}), '')"
    keys = "[" + ", ".join(string_literal(key) for key in LEVEL_KEYS) + "]"
    logfmt = f"nullIf(extract({message}, {string_literal(LOGFMT_LEVEL_PATTERN)}), '')"
    logfmt = f"if(multiSearchAny({message}, {keys}), {logfmt}, NULL)"
    said = _normalised_level(f"coalesce({level_field or 'NULL'}, {word}, {logfmt})")
    if column is None:
        return said
    declared = _normalised_level(f"toString(src.{quote_identifier(column)})")
    if level_field is None:
        return declared
    return f"coalesce({declared}, if({_is_json_object(line)}, {said}, NULL))"


def _normalised_level(text: str) -> str:
    """The level as the file views normalise it (logfields.LEVEL_NAMES: aliases and pino/syslog numbers)."""
    upper = f"upper(trimBoth({text}))"
    names = " ".join(f"WHEN {string_literal(name)} THEN {string_literal(level)}" for name, level in LEVEL_NAMES.items())
    return f"CASE {upper} {names} WHEN '' THEN NULL ELSE {upper} END"


_DUCKDB_TYPES = (("DateTime", "TIMESTAMP"), ("Date", "DATE"), ("Int", "BIGINT"), ("UInt", "BIGINT"),
                 ("Float", "DOUBLE"), ("Decimal", "DOUBLE"), ("Bool", "BOOLEAN"))


def _empty_canonical_table(rest: Mapping[str, str]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding an empty `logs` table with the canonical columns, to learn result shapes."""
    rest = [f"{quote(name)} {_duckdb_type(kind)}" for name, kind in rest.items()]
    shape = duckdb.connect()
    definition = ", ".join(["ts TIMESTAMP", "service VARCHAR", "level VARCHAR", "message VARCHAR", *rest])
    shape.execute(f"CREATE TABLE logs ({definition})")
    return shape


def _duckdb_type(clickhouse_type: str) -> str:
    kind = base_type(clickhouse_type)
    return next((duck for prefix, duck in _DUCKDB_TYPES if kind.startswith(prefix)), "VARCHAR")


def _reshape(result: pa.Table, expected: pa.Schema) -> pa.Table:
    """Give ClickHouse's answer DuckDB's column names and types (UInt64 counts, zoned times, ...)."""
    if result.num_columns != len(expected):
        raise SourceError(f"ClickHouse returned {result.num_columns} columns where {len(expected)} were expected")
    columns = [_cast(result.column(i), field.type) for i, field in enumerate(expected)]
    return pa.Table.from_arrays(columns, schema=expected)


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        # Zoned UTC instants: the store's times are naive UTC, and the stored integers already are.
        column = column.cast(pa.timestamp(column.type.unit))
    if pa.types.is_timestamp(target) and pa.types.is_integer(column.type):
        # ClickHouse's DateTime (whole seconds) can arrive as its raw UInt32 count of seconds since the epoch.
        column = column.cast(pa.int64()).cast(pa.timestamp("s"))
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return column.cast(target, safe=False)

