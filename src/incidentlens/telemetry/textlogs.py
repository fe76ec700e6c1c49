"""Plain-text log files -> a DuckDB table of log entries: `ts, service, level, message, file, line[, host]`.

The line format is detected per file from a sample of its first lines (`detect_line_format`): the catalogue below
holds ISO-8601/RFC 3339 prefixes (log4j/logback, Python's asctime, Windows CBS...), logfmt, syslog (RFC 3164 and 5424),
Go/klog, Android logcat, Python logging's default, nginx/Apache access and error logs, bracketed and compact times
and epoch seconds. The format that matches most sample lines wins (ties: the more specific, listed first); a file
no format fits still reads, one entry per line with no time.

The whole file is then read by DuckDB in one scan (`read_csv` with one column, no quoting) and every line is
split by the format's regular expression (RE2) in SQL. A line the format does not match (a Java stack trace, a
continuation) belongs to the entry above it: entries are numbered by a running count of matching lines and their
lines joined. `line` is the 1-based line of the file on which the entry starts.

Times without a year (syslog, logcat, klog) take `TextLogOptions.year`, else the year of the file's modification
time; times of day alone take the modification date. The service is `TextLogOptions.service`, else the syslog app
field (a logfmt line's service key, a `kubectl logs --prefix` line's pod), else the file name (a Kubernetes
container log's: its pod's service).
"""

from __future__ import annotations

import codecs
import gzip
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import duckdb

from incidentlens.errors import InputError
from incidentlens.telemetry.columns import json_object_sql, literal, quote
from incidentlens.telemetry.logfields import (
    ANSI_CODE,
    LEVEL_WORD_PATTERN,
    LOKI_LEVEL_LABELS,
    LOKI_POD_LABELS,
    LOKI_SERVICE_LABELS,
    POD_SUFFIX,
    service_of_pod,
)
from incidentlens.telemetry.timeparse import (
    EARLIEST,
    LATEST,
    TimeFormat,
    local_time_sql,
    to_utc_sql,
    utc_naive_sql,
)
from incidentlens.telemetry.words import counted

#: lines read to choose a file's format
SAMPLE_LINES = 2000
#: the longest line a log or JSON-lines file may hold (DuckDB's default): a longer line is an InputError naming it
#: (an OTLP file's is read as a JSON document instead). Not raised: DuckDB's reader of a compressed file takes
#: sixteen times this in one block (1 GiB asked for 16 GiB, and two gzipped log minutes ran out of memory)
MAX_LINE_BYTES = 1 << 24
# A file is binary, not text, when more than this share of its sampled lines hold a NUL byte; a few such lines (a
# binary payload logged in a message) are kept as text
BINARY_SHARE = 0.5
# The binary formats a file may be in that are not read: compressed other than by gzip (which is read), archives,
# and Fluent Bit's `file` output with `Format msgpack` (each record an array of its EventTime, msgpack's fixext 8 of
# type 0, and its map; since Fluent Bit 2.1 that time inside an array with the record's metadata): their magic bytes,
# their name and how to make the file readable.
_UNREAD_FORMATS = tuple((re.compile(magic, re.DOTALL), name, fix) for magic, name, fix in (
    (rb"BZh[1-9]1AY&SY", "bzip2-compressed", "decompress it (bunzip2) or gzip it"),  # BZh alone: ASCII text
    (re.escape(b"\xfd7zXZ\x00"), "xz-compressed", "decompress it (unxz) or gzip it"),
    (re.escape(b"\x28\xb5\x2f\xfd"), "zstd-compressed", "decompress it (unzstd) or gzip it"),
    (re.escape(b"PK\x03\x04"), "a zip archive", "extract it and give its files"),
    (re.escape(b"7z\xbc\xaf\x27\x1c"), "a 7z archive", "extract it and give its files"),
    (rb"\x92\x92?\xd7\x00.{8}[\x80-\x8f\xde\xdf]", "Fluent Bit's msgpack output (its Format msgpack)",
     "leave the file output's Format unset (its default, tag: [time, {record}] lines) or set it to plain (JSON "
     "lines), both of which IncidentLens reads"),
))
# Windows PowerShell 5 writes UTF-16 by default (Out-File, >): its byte-order marks, each with its codec
_WIDE_TEXT = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
              (b"\xfe\xff", "utf-16-be"))


def refuse_unread_format(path: Path, first: bytes) -> None:
    """An InputError when a file's first bytes say it is compressed other than by gzip, or an archive: saying which,
    and how to make it readable (a reader would call it binary, or not UTF-8)."""
    for magic, name, fix in _UNREAD_FORMATS:
        if magic.match(first):
            raise InputError(f"{path}: {name}, which IncidentLens does not read: {fix}")


def wide_text(first: bytes) -> tuple[bytes, str] | None:
    """(byte-order mark, codec) of a file whose first bytes are UTF-16 or UTF-32 text after its byte-order mark (the
    store reads its UTF-8 copy, `utf8_copy`), not any binary file that happens to start with those bytes; else
    None."""
    for mark, codec in _WIDE_TEXT:
        body = first[len(mark):len(mark) + 256]
        width = 4 if "32" in codec else 2  # a line read up to its b"\n" ends mid-character
        text = body[:len(body) - len(body) % width].decode(codec, errors="replace")
        if first.startswith(mark) and text and sum((c.isascii() and c.isprintable()) or c in "\r\n\t"
                                                   for c in text) >= 0.9 * len(text):
            return mark, codec
    return None
# logfmt's pairs before a key, walked from the line's start, so that `level=debug` inside a quoted value (`msg="log
# level=debug"`) is none
_LOGFMT_BEFORE = r'^(?:[\w.@/-]+=(?:"(?:[^"\\]|\\.)*"|\S*)\s+)*?'
# logfmt's keys for an entry's parts, each a regex whose first non-empty group is the value (quoted or bare)
_LOGFMT_VALUE = r'="((?:[^"\\]|\\.)*)"|=([^\s"]+)'
LOGFMT_KEYS = {
    part: rf"{_LOGFMT_BEFORE}(?:{keys})(?:{_LOGFMT_VALUE})"
    for part, keys in (("level", "level|lvl|severity"), ("message", "msg|message"),
                       ("app", "service|service\\.name|app|application"))
}
#: a format is taken when it matches this share of the sample's non-blank lines (or the first line and a few)
MIN_FORMAT_SHARE = 0.3
MIN_SHARE_FROM_FIRST_LINE = 0.05
#: a level word at the same field of this share of the sample's messages, within the first fields, ends a header
HEADER_SHARE = 0.8
MAX_HEADER_FIELDS = 8

_LEVELS = r"(?i:TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|ERR|CRITICAL|CRIT|FATAL|SEVERE|ALERT|EMERG|PANIC)"
_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?"
# A logger: a dotted (or $- or /-joined) name such as `org.example.Api`, `dfs.DataNode$PacketResponder` or
# `chrome.exe`, with an optional process qualifier (`[123]`, `*64`). A bare word is not taken: `payments: timeout`
# keeps its first word in the message.
_LOGGER = r"[\w$][\w$-]*(?:[.$/][\w$-]+)+(?:\[\d+\]| \*\d+)?"
# After a time: separators, an optional pid, level (bare or bracketed), [thread], then a logger followed by a colon
# or a dash, or by a bracketed context (`[req-... - - -]`, an MDC); the rest is the message.
_TAIL = (
    r"[\s,|]*(?:-\s+)?(?:(?:\d+)\s+)?"
    rf"(?:[\[<]?(?P<level>{_LEVELS})[\]>]?(?:[\s:|,]+|\s*-\s+))?"
    r"(?:\[(?:(?:[^\[\]]|\[[^\]]*\])*)\]\s*(?:-\s+)?)?"
    rf"(?:(?P<logger>{_LOGGER})\s+\[(?:[^\]]*)\]\s+|(?P<logger_>{_LOGGER})(?:\s*:\s+|\s+-\s+))?"
)
_SYSLOG_APP = r"(?:(?P<app>[^\s:\[]+)(?:\[(?:\d+)\])?: )?"
# A label of a Loki stream as logcli writes its label set (`{app="payments", pod="payments-7d9f-x2x9q"}`)
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'


@dataclass(frozen=True)
class LineFormat:
    """One line format: a regular expression (valid in Python and RE2) matching a line's header, whose named
    groups give the entry's parts (`ts`, `level`, `app`, `pri`, `host`, `logger`); the rest of the line is the
    message. The header alone is matched (no trailing `.*`), so the cost does not grow with the line. `times` are
    the formats tried on `ts` (strptime patterns; `iso`; `epoch`): a pattern without a year takes the year given or
    the file's, one without a day the file's date. `status`: a regular expression giving an HTTP status from the
    message (access logs: the level follows from it). `keyed`: the line is logfmt's key=value pairs, its level,
    message and service read by their keys (`LOGFMT_KEYS`) wherever they stand."""

    name: str
    header: str
    times: tuple[str, ...] = ()
    status: str | None = None
    keyed: bool = False  # key=value pairs (logfmt): level, message and service are keys anywhere in the line
    # its `tag` group is P on a line the writer split (CRI's 16 KiB buffer): the next line goes on with it, joined
    # with nothing between, as `kubectl logs` shows it
    partial: bool = False

    @property
    def pattern(self) -> str:
        """The header as group `head` (its length is where the message starts), its parts inside."""
        return f"^(?P<head>{self.header.removeprefix('^')})"

    @property
    def groups(self) -> list[str]:
        index = re.compile(self.pattern).groupindex
        return sorted(index, key=index.__getitem__)

    @property
    def key_group(self) -> str:
        """A group that is non-empty exactly when a line matches (the line starts an entry)."""
        return "ts" if "ts" in self.groups else "level"


FORMATS: tuple[LineFormat, ...] = (
    LineFormat(
        "syslog-rfc5424",
        rf"^<(?P<pri>\d{{1,3}})>\d{{1,2}} (?P<ts>{_ISO}|-) (?P<host>\S+) (?P<app>\S+) \S+ \S+ "
        r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+) ?",
        ("iso",),
    ),
    LineFormat(
        "syslog-rfc3164",
        rf"^(?:<(?P<pri>\d{{1,3}})>)?(?P<ts>[A-Z][a-z]{{2}} +\d{{1,2}} \d{{2}}:\d{{2}}:\d{{2}}) (?P<host>\S+) "
        rf"{_SYSLOG_APP}",
        ("%b %d %H:%M:%S",),
    ),
    LineFormat(
        "klog",
        r"^(?P<level>[IWEF])(?P<ts>\d{4} \d{2}:\d{2}:\d{2}\.\d+) +(?:\d+) (?P<logger>[^\]\s]+)\] ",
        ("%m%d %H:%M:%S.%f",),
    ),
    LineFormat(
        "android-logcat",
        r"^(?P<ts>\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) +(?:\d+) +\d+ (?P<level>[VDIWEFA]) "
        r"(?:(?P<logger>[^:]*?)\s*: )?",
        ("%m-%d %H:%M:%S.%f",),
    ),
    LineFormat(
        "access-log",
        r"^(?P<host>\S+) \S+ \S+ \[(?P<ts>\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] ",
        ("%d/%b/%Y:%H:%M:%S %z",),
        status=r'^"(?:[^"\\]|\\.)*" (\d{3}) ',
    ),
    LineFormat(
        "python-asctime",
        rf"^(?P<ts>{_ISO}) - (?P<logger>\S+) - (?P<level>{_LEVELS}) - ",
        ("iso",),
    ),
    # Kubernetes node logs (CRI: containerd, CRI-O): time, stream, full or partial line tag, the container's line
    LineFormat("cri", rf"^(?P<ts>{_ISO}) (?:stdout|stderr) (?P<tag>[FP]) ", ("iso",), partial=True),
    # Loki's `logcli query` (its default output): time, the stream's labels padded to a width, the line; the
    # labels name the service and level as a saved Loki answer's do
    LineFormat("logcli", rf"^(?P<ts>{_ISO}) (?P<labels>\{{(?:{_LABEL}(?:, {_LABEL})*)?\}}) +", ("iso",)),
    # logfmt (Go's slog TextHandler, logrus, go-kit, Grafana, Heroku): the time is the value of a time key
    LineFormat("logfmt", rf'{_LOGFMT_BEFORE}(?:time|ts|t|timestamp)="?(?P<ts>{_ISO})"?',
               ("iso",), keyed=True),
    # `kubectl logs --prefix --timestamps` (of several pods at once): the pod names the service
    LineFormat("kubectl-prefix", rf"^\[pod/(?P<pod>[^/\]\s]+)/[^\]\s]*\] (?P<ts>{_ISO}){_TAIL}", ("iso",)),
    # `docker compose logs` (with --timestamps, or of services whose lines begin with one): the container's name
    # (its service, `payments-1` and Compose v1's `payments_1` without the replica's number) padded to a width
    LineFormat("docker-compose", rf"^(?P<app>[A-Za-z0-9][\w.-]*?)(?:[-_][0-9]+)? *\| (?P<ts>{_ISO}){_TAIL}",
               ("iso",)),
    LineFormat("iso-8601", rf"^(?P<ts>{_ISO}){_TAIL}", ("iso",)),
    # one field before the time: a host or file name that collectors put first
    LineFormat("field-then-iso-8601", rf"^\S+ (?P<ts>{_ISO}){_TAIL}", ("iso",)),
    LineFormat(
        "slashed-date",
        rf"^(?P<ts>\d{{2,4}}/\d{{2}}/\d{{2}}[ T]\d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d+)?){_TAIL}",
        # two-digit years first: %Y would read `17/06/09` as the year 17
        ("%y/%m/%d %H:%M:%S.%f", "%y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S"),
    ),
    LineFormat(
        "bracketed-time",
        rf"^\[(?P<ts>[^\]]{{8,40}})\]{_TAIL}",
        ("iso", "%a %b %d %H:%M:%S %Y", "%a %b %d %H:%M:%S.%f %Y", "%d/%b/%Y:%H:%M:%S %z", "%d/%b/%Y:%H:%M:%S",
         "%m.%d %H:%M:%S", "%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%H:%M:%S.%f", "%H:%M:%S"),
    ),
    LineFormat(
        "compact-date",
        rf"^(?P<ts>\d{{6}}(?:\d{{2}})?[ -]\d{{6}}|\d{{8}}-\d{{1,2}}:\d{{1,2}}:\d{{1,2}}(?::\d{{1,3}})?){_TAIL}",
        ("%y%m%d %H%M%S", "%Y%m%d %H%M%S", "%Y%m%d-%H%M%S", "%Y%m%d-%H:%M:%S:%g", "%Y%m%d-%H:%M:%S"),
    ),
    LineFormat("epoch-seconds", rf"^(?:\S+ ){{0,4}}?(?P<ts>1\d{{9}}(?:\.\d{{1,9}})?)\b{_TAIL}", ("epoch",)),
    LineFormat(
        "time-of-day",
        rf"^(?P<ts>\d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d{{1,6}})?){_TAIL}",
        ("%H:%M:%S.%f", "%H:%M:%S"),
    ),
    LineFormat("python-logging", r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):(?P<logger>[^:\s]*):"),
)
UNKNOWN = LineFormat("unknown", "")


@dataclass(frozen=True)
class TextLogOptions:
    """What a plain-text log cannot say itself: the year of year-less times, the service of every entry."""

    year: int | None = None
    service: str | None = None

    def __post_init__(self) -> None:
        if self.year is not None and not EARLIEST.year <= self.year < LATEST.year:
            raise InputError(f"--year {self.year}: must be from {EARLIEST.year} to {LATEST.year - 1} (the years a "
                             "time stamp of the analysis holds)")


def detect_line_format(lines: list[str]) -> LineFormat:
    """The format matching most of the sample's non-blank lines (the first listed on a tie), else UNKNOWN."""
    sample = [line for line in lines if line.strip()]
    if not sample:
        return UNKNOWN
    best, best_count = UNKNOWN, 0
    for fmt in FORMATS:
        compiled = re.compile(fmt.pattern)
        count = sum(1 for line in sample if compiled.match(line))
        if count > best_count:
            best, best_count = fmt, count
    share = best_count / len(sample)
    first_matches = best is not UNKNOWN and re.match(best.pattern, sample[0]) is not None
    if share >= MIN_FORMAT_SHARE or (first_matches and share >= MIN_SHARE_FROM_FIRST_LINE):
        return best
    return UNKNOWN


def read_text_log(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, options: TextLogOptions | None = None,
    label: Path | None = None, zone: str = "",
) -> LineFormat:
    """Parse one plain-text log file into the DuckDB table `table`; returns the format it was read as. `label`: the
    file the user gave, when `path` is a copy of it (its `file` column, and the service a file name says); `zone`:
    the IANA zone of its times written without one (none: UTC).

    One scan splits every non-blank line into its header fields and message (`{table}_lines`, only the columns
    used); the entries are then built from it and the line table dropped."""
    options, named = options or TextLogOptions(), label or path
    sample = sample_lines(path)
    coloured = any(re.search(ANSI_CODE, line) for line in sample)
    sample = [re.sub(ANSI_CODE, "", line) for line in sample] if coloured else sample
    # a W3C extended log's directives (`#Software:`, `#Fields:`, ...), at its top and again at each restart, are
    # headers, not entries: the format is detected from its entries
    fmt = _w3c_extended(sample, detect_line_format(_without_directives(sample)))
    lines = f"{table}_lines"
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(lines)} AS {_split_lines_sql(path, fmt, sample, coloured)}")
    except duckdb.InvalidInputException as err:
        raise refused_line(err, named) or err from None
    if fmt.partial:
        _continue_split_lines(con, lines)
    has_continuations = con.execute(f"SELECT count(*) FILTER (NOT start) FROM {quote(lines)}").fetchone()[0] > 0
    columns = {
        "ts": _time_sql(con, lines, fmt, named, options, zone) if fmt.times else "CAST(NULL AS TIMESTAMP)",
        "service": _service_sql(fmt, named, options),
        "level": _level_sql(fmt),
        "message": "message",
        "logger": "logger",
        "file": literal(str(named)),
        "line": "line",
        "host": "host",
    }
    if not {"logger", "logger_"} & set(fmt.groups):
        del columns["logger"]
    if "host" not in fmt.groups:
        del columns["host"]
    select = ", ".join(f"{expr} AS {quote(name)}" for name, expr in columns.items())
    entries = _entries_sql(lines, has_continuations, "''" if fmt.partial else "chr(10)")
    con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT {select} FROM ({entries}) AS entries "
                "ORDER BY line")
    con.execute(f"DROP TABLE {quote(lines)}")
    return fmt


def _w3c_extended(sample: list[str], fmt: LineFormat) -> LineFormat:
    """A W3C extended log (IIS's: `#Fields: date time ... sc-status ...` above lines `2024-05-01 10:00:00 ... 503
    ...`) read as ISO-8601 lines whose level follows from the status its `#Fields:` directive places, counted from
    the line's end (the header before the message may take more than the date and time), as an access log's;
    any other format as it is."""
    fields = next((line.split()[1:] for line in sample if line.startswith("#Fields:")), [])
    if fmt.name != "iso-8601" or fields[:2] != ["date", "time"] or "sc-status" not in fields:
        return fmt
    after = len(fields) - 1 - fields.index("sc-status")
    return replace(fmt, name="w3c-extended", status=rf"(?:^|\s)(\d{{3}})(?:\s+\S+){{{after}}}\s*$")


def _without_directives(sample: list[str]) -> list[str]:
    """The sample without a W3C extended log's directives (`#Version: 1.0`), where it has a `#Fields:` one."""
    if not any(line.startswith("#Fields:") for line in sample):
        return sample
    return [line for line in sample if not line.startswith("#")]


def _continue_split_lines(con: duckdb.DuckDBPyConnection, lines: str) -> None:
    """Each line after one its writer split (tagged P, `LineFormat.partial`) made a continuation of it: no entry
    of its own, its message (after its own header) joined to that line's. Where no line is split (the rule: a line
    past 16 KiB), nothing more is read."""
    table = quote(lines)
    if not con.execute(f"SELECT bool_or(tag = 'P') FROM {table}").fetchone()[0]:
        return
    con.execute(f"UPDATE {table} SET start = false WHERE line IN (SELECT line FROM (SELECT line, lag(tag) OVER "
                f"(ORDER BY line) AS before FROM {table}) AS tagged WHERE before = 'P')")


def _split_lines_sql(path: Path, fmt: LineFormat, sample: list[str], coloured: bool) -> str:
    """Every non-blank line: its number, whether it starts an entry, its header fields (text as written) and its
    message (the rest of the line after the header; the whole line for a continuation); `coloured`: without the
    terminal colour codes (`logfields.ANSI_CODE`) the sample's lines hold."""
    groups = fmt.groups
    extract = f"regexp_extract(text, {literal(fmt.pattern)}, [{', '.join(literal(g) for g in groups)}])"
    # Blank lines are no entries (a stack trace's blank line is dropped from its entry too), nor a W3C extended
    # log's directives (`_w3c_extended`).
    entry = "length(trim(text)) > 0" + (" AND NOT starts_with(text, '#')" if fmt.name == "w3c-extended" else "")
    split = (f"SELECT line, text, g, substr(text, length(g.head) + 1) AS rest FROM (SELECT line, text, "
             f"{extract} AS g FROM ({_plain_lines_sql(path) if coloured else lines_sql(path)}) AS raw "
             f"WHERE {entry}) AS split")
    msg, level = "rest", "nullif(g.level, '')" if "level" in groups else "NULL"
    header = _level_field_position(fmt, sample)
    if header is not None:
        # Header fields up to a level word at a fixed position (`... RAS KERNEL INFO msg`) are no message.
        fields = rf"^((?:\S+\s+){{{header}}}[\[<]?({_LEVELS})[\]>]?(?:\s+|$))"
        split = f"SELECT *, regexp_extract(rest, {literal(fields)}, ['head', 'level']) AS h FROM ({split}) AS s"
        msg = "CASE WHEN h.level <> '' THEN substr(rest, length(h.head) + 1) ELSE rest END"
        level = f"coalesce(nullif(h.level, ''), {level})"
    pairs = {}
    if fmt.keyed:
        values = ", ".join(f"regexp_extract(text, {literal(pattern)}, ['quoted', 'bare']) AS kv_{part}"
                           for part, pattern in LOGFMT_KEYS.items())
        split = f"SELECT *, {values} FROM ({split}) AS keyed"
        pairs = {part: f"coalesce(nullif(kv_{part}.quoted, ''), nullif(kv_{part}.bare, ''))" for part in LOGFMT_KEYS}
        # a backslash-escaped quote inside a quoted value is a quote
        msg = f"coalesce(replace({pairs['message']}, '\\\"', '\"'), {msg})"
        level = f"coalesce({pairs['level']}, {level})"
    start = "true" if fmt is UNKNOWN else f"g.{fmt.key_group} <> ''"
    loggers = [f"nullif(g.{name}, '')" for name in ("logger", "logger_") if name in groups]
    fields = {
        "ts": "g.ts" if "ts" in groups else "NULL",
        "lvl": level,
        "logger": f"coalesce({', '.join(loggers)})" if loggers else "NULL",
        **{name: f"nullif(g.{name}, '')" for name in ("app", "host", "pri", "pod", "labels") if name in groups},
        **({"app": pairs["app"]} if fmt.keyed else {}),
        **({"tag": "g.tag"} if fmt.partial else {}),
    }
    columns = ", ".join(f"{expr} AS {name}" for name, expr in fields.items())
    return (f"SELECT line, {start} AS start, {columns}, CASE WHEN {start} THEN {msg} ELSE text END AS msg "
            f"FROM ({split}) AS parts")


def _level_field_position(fmt: LineFormat, sample: list[str]) -> int | None:
    """k when most sample messages hold a level word as their (k+1)-th field, k >= 1 (header fields before it),
    and the format has no level of its own there; else None."""
    compiled = re.compile(fmt.pattern)
    level_word = re.compile(rf"[\[<]?{_LEVELS}[\]>]?")
    positions: list[int] = []
    for line in sample:
        match = compiled.match(line)
        # A JSON line's words are no header fields: its level is a field of the object.
        if match is None or match.groupdict().get("level") or line[match.end():].startswith("{"):
            continue
        fields = line[match.end():].split()[:MAX_HEADER_FIELDS + 1]
        positions.append(next((k for k, f in enumerate(fields) if level_word.fullmatch(f)), -1))
    if not positions:
        return None
    position = max(set(positions), key=positions.count)
    return position if position >= 1 and positions.count(position) >= HEADER_SHARE * len(positions) else None


def sample_lines(path: Path, count: int = SAMPLE_LINES) -> list[str]:
    """The first `count` lines of a (possibly gzipped) text file, or of a gzip stream cut short before them, those
    before the cut (its reader reads up to the cut and says so); binary content, or no line before the cut, is an
    InputError."""
    raw: list[bytes] = []
    try:
        with open_bytes(path) as handle:
            while len(raw) < count:
                raw.append(handle.readline(1 << 16))
    except gzip.BadGzipFile:  # after its first member: it starts as gzip (`open_bytes`)
        raise trailing_garbage(path) from None
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err}") from None
    except EOFError:
        if not raw:
            raise InputError(f"{path}: cannot read: {GZIP_CUT_SHORT}") from None
    nul, read = [number for number, line in enumerate(raw, 1) if b"\x00" in line], sum(1 for line in raw if line)
    refuse_unread_format(path, raw[0])
    if len(nul) > BINARY_SHARE * read:
        raise InputError(f"{path}: line {nul[0]}: not text ({len(nul)} of the first {counted(read, 'line')} "
                         f"{'holds' if len(nul) == 1 else 'hold'} a NUL byte): "
                         "a binary file?")
    return [line.decode("utf-8", errors="replace").rstrip("\r\n") for line in raw if line]


def lines_sql(path: Path) -> str:
    """`SELECT line, text`: every line of the file with its 1-based number; a blank line is NULL (kept, so numbers
    stay right). A line past `MAX_LINE_BYTES` fails the query (`refused_line`)."""
    # One VARCHAR column, no quote or escape character, a delimiter that text does not hold: each line is a row.
    reader = (f"read_csv({literal(str(path))}, columns={{'text': 'VARCHAR'}}, header=false, auto_detect=false, "
              "delim='\\x01', quote='', escape='', strict_mode=false, null_padding=true, "
              f"max_line_size={MAX_LINE_BYTES})")
    return f"SELECT row_number() OVER () AS line, text FROM {reader}"


def _plain_lines_sql(path: Path) -> str:
    """`lines_sql` without terminal colour codes (`logfields.ANSI_CODE`)."""
    return f"SELECT line, regexp_replace(text, {literal(ANSI_CODE)}, '', 'g') AS text FROM ({lines_sql(path)})"


def refused_line(err: duckdb.Error, path: Path) -> InputError | None:
    """The one-line error for a line of `path` longer than `MAX_LINE_BYTES` (`lines_sql`), None for another error."""
    said = str(err)
    if "Maximum line size" not in said:
        return None
    line = re.search(r"Error on Line: (\d+)", said)
    size = re.search(r"Actual Size:\s*(\d+)", said)
    where = f"line {line.group(1)}" if line else "a line"
    how_long = f" ({int(size.group(1)):,} bytes)" if size else ""
    return InputError(f"{path}: {where} is longer than the {MAX_LINE_BYTES:,} bytes a line may be{how_long}")


def _entries_sql(lines: str, has_continuations: bool, joiner: str) -> str:
    """One row per entry: its first line's number and fields, and its message (continuation lines joined by
    `joiner`, SQL).

    Continuation lines are few: each finds the entry it belongs to by an ASOF join on the line number (the last
    starting line at or before it), is joined to its entry's other continuations, and the entries take them in one
    hash join; no window or GROUP BY runs over every line."""
    table = quote(lines)
    if not has_continuations:
        return f"SELECT * EXCLUDE (start, msg), msg AS message FROM {table}"
    continued = f"""
        SELECT starts.line AS entry, string_agg(rest.msg, {joiner} ORDER BY rest.line) AS more
        FROM (SELECT line, msg FROM {table} WHERE NOT start) AS rest
        ASOF JOIN (SELECT line FROM {table} WHERE start) AS starts ON rest.line >= starts.line
        GROUP BY starts.line"""
    # Lines before the first entry have no entry above them: each is an entry of its own.
    orphans = f"""
        SELECT * EXCLUDE (start, msg), msg AS message FROM {table}
        WHERE NOT start AND line < (SELECT coalesce(min(line), 9223372036854775807) FROM {table} WHERE start)"""
    return f"""
        SELECT starts.* EXCLUDE (start, msg),
               CASE WHEN more IS NULL THEN msg ELSE msg || {joiner} || more END AS message
        FROM (SELECT * FROM {table} WHERE start) AS starts LEFT JOIN ({continued}) AS c ON starts.line = c.entry
        UNION ALL BY NAME {orphans}"""


def _time_sql(con: duckdb.DuckDBPyConnection, table: str, fmt: LineFormat, path: Path,
              options: TextLogOptions, zone: str) -> str:
    """The entry's time as naive UTC: the candidate time format that parses most of the file's first times."""
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    year = modified.year if options.year is None else options.year
    ts = "replace(ts, ',', '.')"
    candidates = [_parse_sql(ts, pattern, year, modified, zone) for pattern in fmt.times]
    if len(candidates) == 1:
        return candidates[0]
    sample = f"(SELECT ts FROM {quote(table)} WHERE start LIMIT {SAMPLE_LINES})"
    counts = con.execute(f"SELECT {', '.join(f'count({c})' for c in candidates)} FROM {sample}").fetchone()
    return candidates[max(range(len(candidates)), key=lambda i: counts[i])]


def _parse_sql(ts: str, pattern: str, year: int, modified: datetime, zone: str) -> str:
    if pattern == "iso":
        return to_utc_sql(ts, TimeFormat("iso", zone=zone)) if zone else utc_naive_sql(f"TRY_CAST({ts} AS TIMESTAMPTZ)")
    if pattern == "epoch":
        return f"make_timestamp(CAST(round(TRY_CAST({ts} AS DOUBLE) * 1000000) AS BIGINT))"
    if "%d" not in pattern:
        ts, pattern = f"{literal(modified.strftime('%Y-%m-%d '))} || {ts}", f"%Y-%m-%d {pattern}"
    elif "%Y" not in pattern and "%y" not in pattern:
        ts, pattern = f"'{year} ' || {ts}", f"%Y {pattern}"
    parsed = f"try_strptime({ts}, {literal(pattern)})"
    return utc_naive_sql(parsed) if "%z" in pattern else local_time_sql(parsed, zone)


def _service_sql(fmt: LineFormat, path: Path, options: TextLogOptions) -> str:
    if options.service:
        return literal(options.service)
    by_file = literal(file_service(path))
    if "pod" in fmt.groups:
        return f"coalesce(regexp_replace(pod, {literal(POD_SUFFIX)}, ''), {by_file})"
    if "labels" in fmt.groups:
        named = [_label_sql(label) for label in LOKI_SERVICE_LABELS]
        pods = [f"regexp_replace({_label_sql(label)}, {literal(POD_SUFFIX)}, '')" for label in LOKI_POD_LABELS]
        return f"coalesce({', '.join([*named, *pods, by_file])})"
    return f"coalesce(app, {by_file})" if "app" in fmt.groups or fmt.keyed else by_file


def _label_sql(label: str) -> str:
    """A label's value in a logcli line's label set (`labels`), NULL where it has none (or it is empty)."""
    pattern = "[{ ]" + label + r'="((?:[^"\\]|\\.)*)"'
    return f"nullif(regexp_extract(labels, {literal(pattern)}, 1), '')"


def file_service(path: Path) -> str:
    """`/var/log/payments.log.1.gz` -> `payments`: the file name without its log, rotation and gzip suffixes.

    A Kubernetes node's container log names its pod, whose service it is (`service_of_pod`):
    `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` and `/var/log/pods/<namespace>_<pod>_<uid>/
    <container>/0.log`."""
    if match := re.fullmatch(r"([^_]+)_[^_]+_.+-[0-9a-f]{64}\.log", path.name):
        return service_of_pod(match.group(1))
    if len(path.parts) >= 3 and (match := re.fullmatch(r"[^_]+_([^_]+)_[0-9a-f-]{36}", path.parts[-3])):
        return service_of_pod(match.group(1))
    name = path.name
    previous = None
    while name != previous:
        previous = name
        name = re.sub(r"(?i)\.(gz|gzip|log|txt|out|err|\d+)$", "", name)
    return name or path.name


def _level_sql(fmt: LineFormat) -> str:
    """The level: the format's level field, syslog's priority or an access log's status, else the first level
    word of the entry's first line; an entry that is a JSON object has its level field instead (the logs view
    reads it with its message field, as for every source)."""
    fields = ["lvl"]
    if "labels" in fmt.groups:  # Loki's detected_level says `unknown` where it found none
        fields += [f"nullif({_label_sql(label)}, 'unknown')" for label in LOKI_LEVEL_LABELS]
    if "pri" in fmt.groups:
        fields.append("CAST(TRY_CAST(pri AS INTEGER) % 8 AS VARCHAR)")
    if fmt.status:
        status = f"TRY_CAST(regexp_extract(message, {literal(fmt.status)}, 1) AS INTEGER)"
        fields.append(f"CASE WHEN {status} >= 500 THEN 'ERROR' WHEN {status} >= 400 THEN 'WARN' "
                      f"WHEN {status} IS NOT NULL THEN 'INFO' END")
    return f"coalesce({', '.join([*fields, said_level_sql('message')])})"


def said_level_sql(message_sql: str) -> str:
    """The first level word of a message's first line; NULL for a message that is a JSON object (the logs view reads
    its level field with its message field, as for every source)."""
    first_line = f"split_part({message_sql}, chr(10), 1)"
    word = f"nullif(regexp_extract({first_line}, {literal(LEVEL_WORD_PATTERN)}, 1), '')"
    return f"CASE WHEN NOT {json_object_sql(message_sql)} THEN {word} END"


#: how DuckDB's readers say a file holds bytes that are not UTF-8 (CSV, JSON)
_NOT_UTF8 = ("Invalid unicode", "invalid UTF-8")


#: what IncidentLens says of a gzip stream that ends before its end marker
GZIP_CUT_SHORT = "the gzip stream ends early: the file is cut short (a copy or download that did not finish?)"
# ... and DuckDB's words for it
_CUT_SHORT = ("Unexpected end of GZIP stream", GZIP_CUT_SHORT)


def cut_short(err: Exception | str) -> bool:
    """Whether a reader failed on a gzip stream cut short (a copy that did not finish, a log rotated mid-write)."""
    return any(marker in str(err) for marker in _CUT_SHORT)


#: what IncidentLens says of a file named .gz whose bytes are no gzip stream
NOT_GZIP = "not gzip data, though its name ends in .gz (a plain file renamed?)"
# ... and DuckDB's words for it, which it says too of a gzip stream followed by bytes that are none (zero padding)
_NOT_GZIP = ("not a GZIP stream", NOT_GZIP)


def read_from_copy(err: Exception | str, files: Iterable[Path]) -> bool:
    """Whether a reader's failure on `files` is one their UTF-8 copies (`utf8_copy`) read past: bytes that are not
    UTF-8, a gzip stream cut short, or one followed by bytes that are no gzip stream (zero padding: DuckDB reads
    them as the next stream's header and calls the file no gzip data)."""
    past_end = any(marker in str(err) for marker in _NOT_GZIP) and any(map(is_gzip, files))
    return not_utf8(err) or cut_short(err) or past_end


def not_utf8(err: Exception | str) -> bool:
    """Whether a reader failed (or rejected a line) on bytes that are not UTF-8: a Latin-1 name, a binary payload
    in one log line."""
    return any(marker in str(err) for marker in _NOT_UTF8)


@dataclass(frozen=True)
class Utf8Copy:
    """A text file rewritten as UTF-8: where, from which encoding (`encoding`: UTF-8, or UTF-16 or UTF-32 after a
    byte-order mark), and what was replaced (`replaced` byte sequences, the first on `first_line`, 1-based); of a
    gzip stream cut short, `lines` whole lines kept (`cut`), and whether part of the next was read (`partial`), left
    out."""

    path: Path
    replaced: int
    first_line: int
    cut: bool = False
    lines: int = 0
    partial: bool = False
    padding: int = 0  # zero bytes after the end of a gzip stream, not read
    encoding: str = "UTF-8"

    def notes(self, original: Path) -> list[str]:
        """The warnings about the copy of `original`: bytes replaced, a stream cut short, zero padding after it."""
        said = [f"{original}: {self.replaced} byte sequence(s) that are not {self.encoding}, the first on line "
                f"{self.first_line}, read as U+FFFD (the lines are kept)"] if self.replaced else []
        if self.padding:
            said.append(f"{original}: {self.padding:,} zero bytes after the end of its gzip stream (padding) "
                        "ignored, as gzip -d ignores them")
        if self.cut:
            left_out = f"; the start of line {self.lines + 1:,}, cut off, left out" if self.partial else ""
            said.append(f"{original}: {GZIP_CUT_SHORT}: its first {counted(self.lines, 'line')} read{left_out}")
        return said


def utf8_copy(path: Path, folder: Path) -> Utf8Copy:
    """`path` (gzipped or not; UTF-8, or UTF-16 or UTF-32 after a byte-order mark: `wide_text`) as plain UTF-8 text
    in `folder`, each byte sequence that is not of its encoding replaced by U+FFFD, so a reader that refuses the file
    reads every line of it; of a gzip stream cut short, its whole lines before the cut (a reader refuses the whole
    file). Streams in 1 MiB chunks, each written up to its last line break."""
    # a name of its own (mkstemp creates it, so no other copy or file in `folder` is overwritten), ending as the
    # file's name does
    handle, target = tempfile.mkstemp(suffix=f"-{path.name.removesuffix('.gz')}", dir=folder)
    mark, codec = wide_text(first_bytes(path, 1 << 10)) or (b"", "utf-8")
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    replaced, first_line, newlines = 0, 0, 0
    chunks, pending = _Chunks(path), []  # pending: the text after the last line break written
    with open(handle, "w", encoding="utf-8", newline="") as out:
        skip = len(mark)  # the byte-order mark, not read as text
        for chunk in chunks:
            chunk, skip = chunk[skip:], max(skip - len(chunk), 0)
            text, bad, at = _decode_replacing(decoder, chunk)
            if bad and not replaced:
                first_line = newlines + text.count("\n", 0, at) + 1
            replaced += bad
            newlines += text.count("\n")
            end = text.rfind("\n") + 1
            if end:
                out.write("".join(pending) + text[:end])
                pending = []
            pending.append(text[end:])
        encoding = codec.rsplit("-", 1)[0].upper() if mark else "UTF-8"  # utf-16-le -> UTF-16
        if chunks.cut:
            return Utf8Copy(Path(target), replaced, first_line, cut=True, lines=newlines, partial=any(pending),
                            encoding=encoding)
        text, bad, _ = _decode_replacing(decoder, b"", final=True)
        replaced, first_line = replaced + bad, first_line or (newlines + 1 if bad else 0)
        out.write("".join(pending) + text)
    return Utf8Copy(Path(target), replaced, first_line, padding=chunks.padding, encoding=encoding)


class _Chunks:
    """A file's bytes in chunks, gunzipped (each of its members) where it is gzipped; `cut`, once read: its gzip
    stream ended before its end marker, the chunks holding what it held up to there (Python's gzip reader raises
    there, losing the chunk it was reading); `padding`: the zero bytes after its last member (a tape or rotation
    tool's block padding), not read. Other bytes there, that are no gzip member, are an InputError."""

    def __init__(self, path: Path) -> None:
        self.path, self.cut, self.padding = path, False, 0

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as raw:
            if not is_gzip(self.path):
                while chunk := raw.read(1 << 20):
                    yield chunk
                return
            unzip = zlib.decompressobj(wbits=31)
            while data := raw.read(1 << 20):
                while data:
                    if unzip.eof and not _GZIP_MAGIC.startswith(data[:2]):
                        self.padding = self._padding(data, raw)
                        return
                    if unzip.eof:  # the next member of a gzip file written in parts (`cat a.gz b.gz`)
                        unzip = zlib.decompressobj(wbits=31)
                    # at most 1 MiB at a time, as Python's gzip reader gave: 1 MiB of gzip holds 20 MiB of
                    # typical log lines, and 400 MiB of one line repeated
                    yield unzip.decompress(data, 1 << 20)
                    data = unzip.unused_data if unzip.eof else unzip.unconsumed_tail
            yield unzip.flush()  # what zlib held back at the last call's limit
            self.cut = not unzip.eof


    def _padding(self, data: bytes, raw: IO[bytes]) -> int:
        """How many bytes follow the end of the gzip stream (`data`, then the rest of `raw`), all of them zero."""
        count = 0
        while data:
            if data.count(0) != len(data):
                raise trailing_garbage(self.path)
            count += len(data)
            data = raw.read(1 << 20)
        return count


_GZIP_MAGIC = b"\x1f\x8b"


def trailing_garbage(path: Path) -> InputError:
    """The error for a gzip file whose stream is followed by bytes that are neither zero padding nor gzip data."""
    return InputError(f"{path}: cannot read: bytes after the end of its gzip stream are not gzip data (trailing "
                      "garbage, which gzip -d ignores with a warning): cut them off, or give the file gunzipped")


def _decode_replacing(decoder: codecs.IncrementalDecoder, chunk: bytes,
                      final: bool = False) -> tuple[str, int, int]:
    """(text, byte sequences replaced, where in the text the first is): `chunk` decoded, resuming after each bad
    sequence with U+FFFD in its place."""
    parts, bad, first = [], 0, 0
    while True:
        try:
            parts.append(decoder.decode(chunk, final))
            return "".join(parts), bad, first
        except UnicodeDecodeError as err:
            # the decoder's own buffered bytes come first: an offset before 0 is the previous chunk's tail
            end = err.end - len(err.object) + len(chunk)
            parts.append(err.object[:err.start].decode(err.encoding) + "\ufffd")
            first = first if bad else sum(map(len, parts)) - 1
            bad += 1
            decoder.reset()
            chunk = chunk[max(end, 0):]


def is_gzip(path: Path) -> bool:
    """The file starts with gzip's magic bytes."""
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def first_bytes(path: Path, count: int) -> bytes:
    """A (possibly gzipped) file's first `count` bytes; of a gzip stream cut short before them, or followed by bytes
    that are no gzip data, those before (its reader reads up to there and says so: `read` asked past it raised, and
    lost what it had read); nothing before is an InputError."""
    head = b""
    try:
        with open_bytes(path) as handle:
            while len(head) < count and (chunk := handle.read1(count - len(head))):
                head += chunk
    except EOFError:
        if not head:  # nothing before the cut (in its gzip header, say) to read
            raise InputError(f"{path}: cannot read: {GZIP_CUT_SHORT}") from None
    except OSError as err:
        if not head:
            raise InputError(f"{path}: cannot read: {err}") from None
    return head


def open_bytes(path: Path) -> IO[bytes]:
    """`path` opened to read its bytes, gunzipped as read when it is gzipped (`is_gzip`, whatever its name)."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def open_text(path: Path) -> IO[str]:
    """`path` (gzipped or not) opened to read as UTF-8 text, each byte sequence that is not UTF-8 replaced."""
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")
