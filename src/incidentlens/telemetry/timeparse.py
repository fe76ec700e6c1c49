"""Time columns -> SQL expressions giving a naive UTC `TIMESTAMP`.

Supported: native timestamp types (with or without zone), ISO-8601 text with or without a zone (a `Z` or an
offset is converted to UTC, a naive time is read as UTC, or in the format's `zone`: `--timezone`), Go's
`time.Time.String()` form (`2023-01-29 08:41:09.47 +0000 UTC m=+0.54`), web access-log times
(`01/May/2024:10:00:00 +0200`), year-first slashed dates (`2024/05/01 10:00:00`), RFC 2822 times (`Wed, 01 May 2024
10:00:00 GMT`), Kibana's CSV report times (`May 1, 2024 @ 10:00:00.000`), .NET's JSON dates (`/Date(1714557600000)/`,
Windows PowerShell's ConvertTo-Json), and epoch numbers in seconds, milliseconds, microseconds or nanoseconds, the
unit detected from the magnitude.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import duckdb

from incidentlens.errors import InputError
from incidentlens.telemetry.columns import literal

# Epoch magnitudes: 1e11 s is year 5138, 1e11 ms is 1973, so a value's size says its unit for any real date.
EPOCH_UNITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"), (float("inf"), "ns"))
_MICROS_PER_UNIT = {"s": "* 1000000", "ms": "* 1000", "us": "", "ns": "// 1000"}
# The microseconds a TIMESTAMP holds, 290309 BC to 294247 (past them DuckDB's make_timestamp fails, on a BIGINT's
# ends, +-infinity to it, or makes a time no cast can write)
_TIMESTAMP_MICROS = (-9223372022400000000, 9223372036854775806)
_GO_SUFFIX = r"' ([+-][0-9]{2}:?[0-9]{2}) [A-Za-z]+( m=[-+][0-9.]+)?$'"

# Web server access logs: `01/May/2024:10:00:00 +0000`; and year-first slashed dates, read as UTC.
_CLF = "%d/%b/%Y:%H:%M:%S %z"
_SLASHED = "['%Y/%m/%d %H:%M:%S.%f', '%Y/%m/%d %H:%M:%S', '%Y/%m/%d %H:%M', '%Y/%m/%d']"
# RFC 2822's times (email, HTTP's Date, JavaScript's toUTCString), with their zone; and a Kibana CSV report's (its
# default dateFormat, `MMM D, YYYY @ HH:mm:ss.SSS`), written in the report's zone without it: read as UTC or --timezone
_RFC2822 = "['%a, %d %b %Y %H:%M:%S %z', '%a, %d %b %Y %H:%M:%S %Z', '%d %b %Y %H:%M:%S %z', '%d %b %Y %H:%M:%S %Z']"
_KIBANA = "['%b %d, %Y @ %H:%M:%S.%g', '%b %d, %Y @ %H:%M:%S']"
# .NET's JSON date (`/Date(1714557900123)/`, `/Date(1714557900123+0200)/`), which Windows PowerShell's ConvertTo-Json
# writes: epoch milliseconds (UTC; the offset after them says the writer's zone, not another instant)
_MS_DATE = r"'^\s*/Date\(([-+]?[0-9]{1,15})([+-][0-9]{4})?\)/\s*$'"
# A time written with its zone: an offset or `Z` after the minutes or seconds, or a zone's name (`UTC`,
# `Europe/Berlin`), Java's zone id in brackets after either (`_ZONE_ID`); a naive ISO time never ends in a letter,
# and a date alone (`2024-05-01`) has no offset.
_ZONED_TEXT = r"'(?i)(:[0-9]{2}([.,][0-9]*)?\s*(z|[+-][0-9]{2}(:?[0-9]{2})?)|[a-z])(\[[^\]]*\])?\s*$'"
# Java's ZonedDateTime.toString(): the offset, then the zone's id in brackets (`+02:00[Europe/Berlin]`); the offset
# says the instant, the id is dropped (only after an offset or `Z`: a bracketed id alone is not read).
ZONE_ID = r"([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)\[[^\]]*\]\s*$"
_ZONE_ID = literal(ZONE_ID)
# The times a nanosecond timestamp (the analysis' arrays) holds, in whole years: a time outside is refused at load.
EARLIEST, LATEST = datetime(1678, 1, 1), datetime(2262, 1, 1)
TEMPORAL_TYPES = ("TIMESTAMP", "DATE")
# Zoned instants, e.g. Parquet `timestamp[ms, tz=UTC]`; pandas writes `timestamp[ns, tz=...]`: TIMESTAMPTZ_NS.
ZONED_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")
#: the ways a time column may be written, for the message refusing one
ACCEPTED_FORMATS = ("ISO 8601 such as 2026-12-06 10:00:00 or 2026-12-06T10:00:00+01:00, yyyy/mm/dd hh:mm:ss, epoch "
                    "s/ms/us/ns, Go time strings, access-log times such as 06/Dec/2026:10:00:00 +0000, RFC 2822 "
                    "times such as Sun, 06 Dec 2026 10:00:00 GMT or Kibana's such as Dec 6, 2026 @ 10:00:00.000")
# A date written before its year (`06/12/2026`, `06.12.2026 10:00`, `12-06-26`; Azure's portal export, `12/6/2026,
# 10:00:00.000 AM`): the day may come first or the month.
_ZONE_ABBREVIATION = re.compile(r"[0-9]\s+(?!UTC$|GMT$)([A-Z]{3,5})$")
_YEAR_LAST = re.compile(r"\s*[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}(,?[ T].*)?")
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")


@dataclass(frozen=True)
class TimeFormat:
    """How a column holds times: `native`, `native_tz`, `iso`, `go` or `epoch` (with `unit` and `integer`)."""

    kind: str
    unit: str = ""
    integer: bool = True
    text: bool = True  # epoch numbers written as text (CSV, JSON) rather than a numeric column
    zone: str = ""  # the IANA zone a time written without one is read in (`--timezone`); none: UTC
    checked: bool = False  # a typed epoch column with numbers past its unit's `epoch_bounds`: each value checked

    @property
    def typed(self) -> bool:
        """The column holds times or numbers (Parquet, a database), not text: a missing value is NULL."""
        return self.kind in ("native", "native_tz") or (self.kind == "epoch" and not self.text)

    def describe(self) -> str:
        """How the column's times are written, for messages."""
        if self.kind == "epoch":
            return f"epoch {self.unit}"
        names = {"iso": "ISO-8601 text", "go": "Go time strings", "clf": "access-log times", "slashed": "yyyy/mm/dd",
                 "rfc2822": "RFC 2822 times", "kibana": "Kibana's times", "msdate": ".NET's /Date(ms)/ times"}
        return names.get(self.kind, "timestamps")


def unread_time_hint(value: object) -> str:
    """Words for a time no format reads: the formats that are read (after `year_last_hint`'s or
    `zone_abbreviation_hint`'s words, if any)."""
    said = [words for words in (year_last_hint(value), zone_abbreviation_hint(value),
                                f"times are read as {ACCEPTED_FORMATS}") if words]
    return f" ({'; '.join(said)})"


def zone_abbreviation_hint(value: object) -> str:
    """For a time ending in a zone's abbreviation other than UTC's and GMT's (`PDT`, `CEST`, `IST`), which several
    zones share, so that none is guessed."""
    found = _ZONE_ABBREVIATION.search(str(value))
    if not found:
        return ""
    return (f"a zone's abbreviation ({found.group(1)}) may be several zones' and is not guessed: write its offset "
            "instead, e.g. 2026-12-06 10:00:00+01:00")


def year_last_hint(value: object) -> str:
    """For a date written day and month (or month and day) before the year, that which is which is not guessed."""
    if not _YEAR_LAST.fullmatch(str(value)):
        return ""
    return ("the day and month of a date written before its year could be either way round and are not guessed: "
            "write the year first")


def epoch_unit(magnitude: float) -> str:
    """The epoch unit (s, ms, us, ns) of a typical absolute value."""
    return next(unit for limit, unit in EPOCH_UNITS if magnitude < limit)


def written_unit(value: object) -> str:
    """The epoch unit a written number's size says (empty for a value that is no finite number)."""
    try:
        number = abs(float(str(value)))
    except ValueError:
        return ""
    return epoch_unit(number) if math.isfinite(number) else ""


def epoch_bounds(unit: str) -> tuple[int, int]:
    """The least and greatest integer epoch number in `unit` that `to_utc_sql` turns into a time (its microseconds
    in a BIGINT and in what a TIMESTAMP holds); nanoseconds are divided, so any BIGINT is one."""
    if unit == "ns":
        return -(2**63), 2**63 - 1
    per = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
    low, high = _TIMESTAMP_MICROS
    return -(-low // per), high // per


def checked_if_past_bounds(
    con: duckdb.DuckDBPyConnection, from_sql: str, column_sql: str, fmt: TimeFormat
) -> TimeFormat:
    """A typed integer epoch column (Parquet) `checked` when any value of the whole source is past its unit's
    `epoch_bounds` (10**19 among seconds, nanoseconds among milliseconds): each value is then NULL past them, a
    time that does not parse, as in a CSV file, not an overflow failing the whole read. Where every value is
    within them (the rule), unchecked: its scans are the cheapest and a time filter prunes a Parquet file's row
    groups. The least and greatest value come from a Parquet file's statistics, without reading the column."""
    if fmt.kind != "epoch" or fmt.text or not fmt.integer:
        return fmt
    least, greatest = con.execute(f"SELECT min({column_sql}), max({column_sql}) FROM {from_sql}").fetchone()
    low, high = epoch_bounds(fmt.unit)
    return fmt if least is None or (low <= least and greatest <= high) else replace(fmt, checked=True)


def is_numeric_type(sql_type: str) -> bool:
    return sql_type.upper().startswith(NUMERIC_TYPES)


def is_integer_type(sql_type: str) -> bool:
    upper = sql_type.upper()
    return is_numeric_type(upper) and not upper.startswith(("FLOAT", "DOUBLE", "DECIMAL", "REAL"))


def try_cast_text(text_sql: str, sql_type: str) -> str:
    """TRY_CAST of a text column, spaces around the value allowed: the text as it is first (DuckDB's cast skips
    ASCII whitespace itself), then trimmed (trim also strips Unicode spaces) where that fails, so the trim, most of
    the cost of reading a day of metric files, runs on the few values that need it; the value is the trimmed cast's
    either way. No bare cast of the column is left at the top: DuckDB 2.0 pushes one into read_csv as a strict
    CAST, which fails the whole query on the first bad value (duckdb/duckdb#23818)."""
    return f"coalesce(TRY_CAST({text_sql} AS {sql_type}), TRY_CAST(trim({text_sql}) AS {sql_type}))"


def _iso_cast(text_sql: str, sql_type: str) -> str:
    """`try_cast_text` of ISO-8601 text; where it fails, a comma before the fraction read as a point (ISO 8601
    allows either, and Python's asctime and log4j write `10:00:00,250`, which DuckDB's cast refuses). COALESCE
    casts again only the values the first casts left NULL; `trim(replace(...))`, not `replace(trim(...))`, whose
    `trim` DuckDB would compute once for every value as a subexpression shared with `try_cast_text`'s (5M ISO times:
    1.2 CPU-s, not 0.39 as without this cast). Last, Java's ZonedDateTime text with its zone id dropped (`_ZONE_ID`),
    tried on the values the casts before left NULL (of the text as it is: an expression the arms shared, such as
    the point's `trim(replace(...))`, DuckDB computes for every value, 3.5x the CPU over 5M times)."""
    return (f"coalesce({try_cast_text(text_sql, sql_type)}, "
            f"TRY_CAST(trim(replace({text_sql}, ',', '.')) AS {sql_type}), "
            f"TRY_CAST(regexp_replace({text_sql}, {_ZONE_ID}, '\\1') AS {sql_type}))")


def without_zone_id(text: str) -> str:
    """A time the user typed without the zone id Java writes after its offset (`ZONE_ID`), as a column's is read."""
    return re.sub(ZONE_ID, r"\1", text.strip())


def to_utc_sql(column_sql: str, fmt: TimeFormat) -> str:
    """A SQL expression turning `column_sql` into a naive UTC TIMESTAMP (NULL where it does not parse)."""
    if fmt.kind == "native_tz":
        return utc_naive_sql(f"CAST({column_sql} AS TIMESTAMPTZ)")
    if fmt.kind == "native":
        return local_time_sql(f"CAST({column_sql} AS TIMESTAMP)", fmt.zone)
    if fmt.kind == "iso":
        return f"coalesce({_iso_sql(column_sql, fmt.zone)}, {_epoch_among_iso_sql(column_sql)})"
    if fmt.kind == "clf":
        return utc_naive_sql(f"try_strptime(trim({column_sql}), '{_CLF}')")
    if fmt.kind == "slashed":
        return local_time_sql(f"try_strptime(trim({column_sql}), {_SLASHED})", fmt.zone)
    if fmt.kind == "rfc2822":
        return utc_naive_sql(f"try_strptime(trim({column_sql}), {_RFC2822})")
    if fmt.kind == "kibana":
        return local_time_sql(f"try_strptime(trim({column_sql}), {_KIBANA})", fmt.zone)
    if fmt.kind == "msdate":
        millis = f"TRY_CAST(regexp_extract({column_sql}, {_MS_DATE}, 1) AS BIGINT)"
        return f"make_timestamp({millis} * 1000)"
    if fmt.kind == "go":
        stripped = f"regexp_replace({column_sql}, {_GO_SUFFIX}, '\\1')"
        return utc_naive_sql(try_cast_text(stripped, "TIMESTAMPTZ"))
    if fmt.text:
        return f"coalesce({_epoch_sql(column_sql, fmt)}, {_iso_among_epoch_sql(column_sql, fmt.zone)})"
    return _epoch_sql(column_sql, fmt)


def _iso_sql(column_sql: str, zone: str, cast: Callable[[str, str], str] = _iso_cast) -> str:
    """ISO-8601 text as a naive UTC TIMESTAMP, each value cast by `cast(text, type)`: with a `zone`, each value by
    what it says (with an offset or `Z`, that instant; without, the zone's wall clock)."""
    if not zone:
        return utc_naive_sql(cast(column_sql, "TIMESTAMPTZ"))
    return (f"CASE WHEN regexp_matches({column_sql}, {_ZONED_TEXT}) "
            f"THEN {utc_naive_sql(cast(column_sql, 'TIMESTAMPTZ'))} "
            f"ELSE {local_time_sql(cast(column_sql, 'TIMESTAMP'), zone)} END")


def _iso_among_epoch_sql(text_sql: str, zone: str) -> str:
    """ISO-8601 text among epoch numbers (a column two writers filled, one with `2024-05-01T10:00:00Z`), tried only
    on the values the numbers' casts left NULL, by a plain cast of the text as it is: no expression shared with
    theirs (`try_cast_text`'s trim), which DuckDB would compute for every value (5M epoch-ms times: 0.25 CPU-s without
    this arm, 0.26 with it, 0.72 with `_iso_cast`'s casts)."""
    return _iso_sql(text_sql, zone, cast=lambda text, sql_type: f"TRY_CAST({text} AS {sql_type})")


def _epoch_sql(column_sql: str, fmt: TimeFormat) -> str:
    """Epoch numbers in the format's unit as a naive UTC TIMESTAMP."""
    scale = _MICROS_PER_UNIT[fmt.unit]
    number_type = "BIGINT" if fmt.integer else "DOUBLE"
    number = try_cast_text(column_sql, number_type) if fmt.text else f"CAST({column_sql} AS {number_type})"
    # A written value too large for its unit (9e15 among seconds, a BIGINT's end among microseconds) is NULL, an
    # unparseable time, not an overflow failing the whole read. (A typed column's values are checked only where one
    # is past its unit's bounds: `checked_if_past_bounds`.)
    if fmt.integer and fmt.text and scale.startswith("*"):
        return f"make_timestamp(TRY_CAST(CAST({number} AS HUGEINT) {scale} AS BIGINT))"
    if fmt.integer and fmt.text and fmt.unit == "us":
        return micros_time_sql(number, text_sql=column_sql)
    if fmt.integer and fmt.checked:
        low, high = epoch_bounds(fmt.unit)
        return f"make_timestamp(CASE WHEN {column_sql} BETWEEN {low} AND {high} THEN {number} {scale} END)"
    if fmt.integer:
        return f"make_timestamp({number} {scale})"
    return f"make_timestamp(TRY_CAST(round({number} {scale}) AS BIGINT))"


def _epoch_among_iso_sql(text_sql: str) -> str:
    """An epoch number among ISO-8601 text (a column two writers filled, one with `1714557600123`), in the unit its
    own size says (`EPOCH_UNITS`, as `--at` reads one); 10 digits or more (2001 on, in seconds), so neither a
    basic-form date (`20240501`) nor a small counter is one. Tried only on the values the ISO casts left NULL, and
    of the text as it is (no expression shared with theirs: `_iso_cast`), so ISO times cost what they did (5M times
    0.45 CPU-s before and after)."""
    number = f"TRY_CAST({text_sql} AS BIGINT)"
    scaled = " ".join(f"WHEN abs({number}) < {limit:g} THEN {number} {_MICROS_PER_UNIT[unit]}"
                      for limit, unit in EPOCH_UNITS[:-1])
    micros = f"CASE {scaled} ELSE {number} {_MICROS_PER_UNIT['ns']} END"
    return f"CASE WHEN {written_epoch_sql(text_sql)} THEN make_timestamp({micros}) END"


def written_epoch_sql(text_sql: str) -> str:
    """The condition of text that is an epoch number `_epoch_among_iso_sql` reads among ISO-8601 times."""
    return f"regexp_full_match({text_sql}, '\\s*[-+]?[0-9]{{10,19}}\\s*')"


def written_iso_sql(text_sql: str) -> str:
    """The condition of text that is an ISO-8601 time `to_utc_sql` reads among epoch numbers."""
    return f"({try_cast_text(text_sql, 'DOUBLE')} IS NULL AND {_iso_among_epoch_sql(text_sql, '')} IS NOT NULL)"


def micros_time_sql(micros_sql: str, text_sql: str | None = None) -> str:
    """Epoch microseconds (a BIGINT) as a TIMESTAMP, NULL past what one holds (`_TIMESTAMP_MICROS`): a BIGINT's end
    is +-infinity to `make_timestamp`, which fails the whole query on it, naming no row. `text_sql`: the text the
    number was cast from; one under 18 bytes is converted untested, as it is no BIGINT's end (the shortest that is:
    `0x7FFFFFFFFFFFFFFF`), so a time filter casts it once (DuckDB casts a CASE's tested value again in a filter:
    with every value tested, a time filter on a text column took ~2.5x as long)."""
    low, high = _TIMESTAMP_MICROS
    short = f"WHEN strlen({text_sql}) < 18 THEN {micros_sql} " if text_sql else ""
    return f"make_timestamp(CASE {short}WHEN {micros_sql} BETWEEN {low} AND {high} THEN {micros_sql} END)"


def other_unit_sql(column_sql: str, fmt: TimeFormat) -> str | None:
    """For an epoch column, the condition of a value whose size says another unit than the column's (seconds among
    milliseconds): read in the column's unit it would land decades away. None for other formats. Values below 1e8
    say no unit (`_epoch_format`) and are read in the column's."""
    if fmt.kind != "epoch":
        return None
    number = try_cast_text(column_sql, "DOUBLE") if fmt.text else f"CAST({column_sql} AS DOUBLE)"
    limits = [0.0, *(limit for limit, _ in EPOCH_UNITS)]
    index = next(i for i, (_, unit) in enumerate(EPOCH_UNITS) if unit == fmt.unit)
    low, high = limits[index], limits[index + 1]
    inside = f"abs({number}) >= {low:g}" + ("" if high == float("inf") else f" AND abs({number}) < {high:g}")
    return f"abs({number}) >= 1e8 AND NOT ({inside})"


def utc_naive_sql(instant_sql: str) -> str:
    """A TIMESTAMPTZ expression as the naive UTC TIMESTAMP of the same instant, whatever the session's zone.

    Not `timezone('UTC', x)`: DuckDB cannot push a filter on that into a Parquet scan, so `ts >= TIMESTAMP '...'`
    over a view read every row group (0.76 CPU-s for an hour of a 10M-row file against 0.04 s); it can through
    `make_timestamp(epoch_us(x))`, which also costs ~20x less a row than the ICU zone conversion.
    """
    return f"make_timestamp(epoch_us({instant_sql}))"


def local_time_sql(naive_sql: str, zone: str) -> str:
    """A naive TIMESTAMP expression read as the wall clock of `zone` (an IANA name), as naive UTC; as it is for no
    zone. (DuckDB's ICU `timezone(zone, ts)`: ~20x the cost of a cast a row, and a time filter no longer reaches
    a Parquet scan, so only for a `--timezone` given.)"""
    if not zone:
        return naive_sql
    return utc_naive_sql(f"timezone({literal(zone)}, {naive_sql})")


def known_zone(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """`name` as DuckDB's time zones spell it (an IANA name: `Europe/Berlin`, any case), else an InputError."""
    import difflib

    names = [zone for (zone,) in con.execute("SELECT name FROM pg_timezone_names()").fetchall()]
    found = next((zone for zone in names if zone.lower() == name.strip().lower()), None)
    if found is None:
        close = difflib.get_close_matches(name.strip(), names, n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise InputError(f"--timezone {name!r}: no such time zone{hint}; give an IANA name such as Europe/Berlin, "
                         "America/New_York or UTC")
    return found


def checked_zone(name: str) -> str:
    """`known_zone` where no store is open: a zone given to a command that may read no file in it."""
    with duckdb.connect() as con:
        return known_zone(con, name)


def wall_clock_utc(moment: datetime, zone: str) -> datetime:
    """A naive `moment` read as the wall clock of `zone` (an IANA name, checked: `known_zone`), as naive UTC; a
    moment with a zone, as its UTC. For a time the user types (`--at`) beside files read in that zone."""
    if moment.tzinfo is not None or not zone:
        return naive_utc(moment)
    with duckdb.connect() as con:
        found = known_zone(con, zone)
        return con.execute("SELECT make_timestamp(epoch_us(timezone(?, ?::TIMESTAMP)))", [found, moment]).fetchone()[0]


def detect_format(
    con: duckdb.DuckDBPyConnection, table: str, column_sql: str, sql_type: str
) -> tuple[TimeFormat | None, float]:
    """The best format for the column in `table` (a sample) and the share of its non-empty values it parses."""
    upper = sql_type.upper()
    if upper.startswith(ZONED_TYPES):
        return TimeFormat("native_tz"), 1.0
    if upper.startswith(TEMPORAL_TYPES):
        return TimeFormat("native"), 1.0
    if is_numeric_type(upper):
        fmt = _epoch_format(con, table, column_sql, integer=is_integer_type(upper), text=False)
        return fmt, 1.0 if fmt else 0.0
    if not upper.startswith("VARCHAR"):
        return None, 0.0
    present = f"nullif(trim({column_sql}), '')"
    integers = f"count(*) FILTER (regexp_full_match({present}, '[-+]?[0-9]+'))"
    nonempty, as_bigint, as_double = con.execute(
        f"SELECT count({present}), {integers}, count({try_cast_text(present, 'DOUBLE')}) FROM {table}"
    ).fetchone()
    if nonempty == 0:
        return None, 0.0
    if as_double > nonempty / 2:
        fmt = _epoch_format(con, table, try_cast_text(present, "DOUBLE"), integer=as_bigint == as_double, text=True)
        return fmt, as_double / nonempty if fmt else 0.0
    best: tuple[TimeFormat | None, float] = (None, 0.0)
    for fmt in (TimeFormat(kind) for kind in ("iso", "go", "clf", "slashed", "rfc2822", "kibana", "msdate")):
        parsed = con.execute(f"SELECT count({to_utc_sql(present, fmt)}) FROM {table}").fetchone()[0]
        if parsed / nonempty > best[1]:
            best = (fmt, parsed / nonempty)
        if parsed == nonempty:
            break  # no later format can parse more (the slashed formats' strptime is the costliest to try)
    return best


def _epoch_format(
    con: duckdb.DuckDBPyConnection, table: str, number_sql: str, integer: bool, text: bool
) -> TimeFormat | None:
    magnitude = con.execute(f"SELECT median(abs(CAST({number_sql} AS DOUBLE))) FROM {table}").fetchone()[0]
    if magnitude is None or magnitude < 1e8:
        # Below 1e8 s (1973) a number is more likely a counter than a time.
        return None
    return TimeFormat("epoch", epoch_unit(magnitude), integer, text)


def naive_utc(moment: datetime) -> datetime:
    """A datetime as naive UTC, the store's times: one with a zone converted, a naive one taken as UTC already."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def sql_ts(moment: datetime) -> str:
    """A datetime as a portable SQL literal, `TIMESTAMP '2024-05-01 10:00:00'`, in UTC (naive means UTC)."""
    return f"TIMESTAMP '{naive_utc(moment).isoformat(sep=' ')}'"
