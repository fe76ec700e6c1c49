"""Pre-masking of log messages in SQL: the variable parts of a line (ids, addresses, numbers) become `<*>`.

Masking in the database lets it GROUP BY the masked text, so Drain3 only ever sees distinct masked messages.
One regular expression with alternatives, applied in one pass (RE2 in DuckDB and ClickHouse alike). It is the
costly part of every query that templates lines, so the analysis masks each distinct message of a span once
(`masks_relation`) and its queries join the lines to that.
"""

from __future__ import annotations

import re
from typing import Any

from incidentlens.analysis.periods import Span, in_span, quote_ident

#: what a variable becomes; Drain3's own parameter token, so Drain treats it as a wildcard
MASK = "<*>"
#: longer messages are masked and grouped on their first characters (stack traces differ in their tails)
MAX_MESSAGE_CHARS = 1000
#: a masked line is its statement by its first characters: what a log statement writes as fixed text comes first,
#: and a dump of data after it (a list of sold tickets that grows by the hour) must not make each length a line of
#: its own. Loghub-2k's eight systems group as without it, Android a little better (`incidentlens eval templates`)
MAX_TEMPLATE_CHARS = 200

_UUID = r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
# an embedded time (an application's own prefix, a date, a time of day), before the numbers inside it
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIMESTAMP = (r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
              r"|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"
              rf"|\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +)?{_MONTH} +\d{{1,2}}\b")
_URL = r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+"
# a path of two or more segments: /var/lib/x, /api/orders/42
_PATH = r"(?:\B|\b)/[\w.@%+~-]+(?:/[\w.@%+~-]*)+(?:\?[^\s\"'<>]*)?"
# host:port (a name or IPv4) and bare IPv4 addresses
_HOST_PORT = r"\b(?:[a-zA-Z0-9-]+\.)+[a-zA-Z0-9-]+:\d+\b"
_IPV4 = r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
# host names: a generic top-level domain, or a country code after two dots (`proxy.cse.cuhk.edu.hk`); a Java
# package starts with its domain (`com.example.Api`) and a file name ends in its extension, neither is taken
_HOSTNAME = (r"\b(?:[a-zA-Z0-9-]+\.)+(?:com|net|org|edu|gov|mil|int|io|info|biz|local|internal)\b"
             r"|\b[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+){2,}\.[a-z]{2}\b")
# a boolean is a value: `overlap:false`, `enabled=True`
_BOOLEAN = r"\b(?:true|false|True|False|TRUE|FALSE)\b"
# a quoted value: key="..." (masked first, keeping its key) and any single-quoted text ("table 'users' not found")
KEYED_QUOTE = r'([=:]\s*)"[^"]*"'
_QUOTED = r"""'[^'\s][^']*'"""
_HEX_PREFIXED = r"\b0x[0-9a-fA-F]+\b"
# lower-case hex words holding both a digit and a letter (commit shas, pod suffixes, span ids)
_HEX_WORD = r"\b[0-9a-f]*(?:[0-9][0-9a-f]*[a-f]|[a-f][0-9a-f]*[0-9])[0-9a-f]*\b"
# ids with a short type prefix: ch_1d0296468c3deb0c, pm_2f87, ord_cd3c (not p95_ms: its prefix holds a digit)
_PREFIXED_ID = r"\b[a-zA-Z]{1,5}_\w*\d\w*\b"
# a number with its unit, as one value: 1288 bytes, 1.25 KB, <1 sec, 120ms, 99.5%
_QUANTITY = (r"[<>~]?\b\d+(?:[.,]\d+)*\s?(?:[KMGTP]i?B|[kKMGT]b|bytes?|ms|us|ns|sec|secs|seconds?|mins?|minutes?"
             r"|hours?|days?|s|h|m)\b|\b\d+(?:\.\d+)?%")
# any other token holding a digit is a value (numbers, versions, blk_-42, node R02-M1, HTTP/1.1, host-10-1):
# the token runs to whitespace, a bracket, a quote or a separator that starts a new field (`uid=0` -> `uid=<*>`,
# `FoodServiceImpl#372` -> `FoodServiceImpl#<*>`: the code location's class stays)
_DIGIT_TOKEN = r"""[^\s()\[\]{}<>"',;=:|#@]*\d[^\s()\[\]{}<>"',;=:|#@]*"""

VARIABLE_PATTERN = "|".join((_UUID, _TIMESTAMP, _URL, _PATH, _HOST_PORT, _IPV4, _HOSTNAME, _BOOLEAN, _QUOTED,
                             _HEX_PREFIXED, _HEX_WORD, _PREFIXED_ID, _QUANTITY, _DIGIT_TOKEN))
_VARIABLE = re.compile(VARIABLE_PATTERN)
_KEYED_QUOTE = re.compile(KEYED_QUOTE)
# masks side by side (separated by spaces or punctuation only) are one variable: `1288 bytes (1.25 KB)` and
# `0 bytes` both read `<*>` (an empty value beside one, `()`, joins it too), so a value's length in tokens does
# not split a template
ADJACENT_MASKS = r"<\*>(?:[\s:/.,;_-]*(?:[(\[{]?<\*>[)\]}]?|\(\)|\[\]|\{\}))+"
_ADJACENT = re.compile(ADJACENT_MASKS)


def masked_sql(column: str = "message") -> str:
    """SQL expression: the first line of the column's text with every variable replaced by `<*>` (a multi-line
    entry, e.g. a stack trace, is templated by its first line)."""
    # regexp_replace, not split_part: ClickHouse has no split_part (masking is pushed down there too)
    first_line = f"regexp_replace(substr({quote_ident(column)}, 1, {MAX_MESSAGE_CHARS}), '(?s)[\\r\\n].*', '')"
    quoted = f"regexp_replace({first_line}, {_literal(KEYED_QUOTE)}, '\\1{MASK}', 'g')"
    variables = f"regexp_replace({quoted}, {_literal(VARIABLE_PATTERN)}, '{MASK}', 'g')"
    return f"substr(regexp_replace({variables}, {_literal(ADJACENT_MASKS)}, '{MASK}', 'g'), 1, {MAX_TEMPLATE_CHARS})"


def masks_relation(store: Any, span: Span) -> str:
    """A relation `(raw, masked)`: each distinct message of the logs within `span` with its masked text, for a query
    to join its lines to (`LEFT JOIN <it> AS masks ON message = masks.raw`). In DuckDB it is computed once per store
    and span and held as a table (`store.hold`) that the templates and the per-trace events both join; for logs a
    query backend serves (ClickHouse) it is the subquery itself, pushed down with the query that reads it."""
    sql = (f"SELECT message AS raw, {masked_sql('message')} AS masked FROM (SELECT DISTINCT message FROM logs "
           f"WHERE message IS NOT NULL AND {in_span('ts', span)}) AS m")
    backend = getattr(store, "logs_backend", None)
    if backend is not None and "logs" in backend.views:
        return f"({sql})"
    return str(store.hold(sql, "masked_messages"))


def mask(text: str) -> str:
    """The same masking in Python, for one line (tests and single messages; bulk work runs in SQL)."""
    first_line = re.sub(r"(?s)[\r\n].*", "", text[:MAX_MESSAGE_CHARS], count=1)
    quoted = _KEYED_QUOTE.sub(rf"\1{MASK}", first_line)
    return _ADJACENT.sub(MASK, _VARIABLE.sub(MASK, quoted))[:MAX_TEMPLATE_CHARS]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
