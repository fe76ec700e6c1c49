"""Pre-masking of log messages in SQL: the variable parts of a line (ids, addresses, numbers) become `<*>`.

Masking in the database lets it GROUP BY the masked text, so Drain3 only ever sees distinct masked messages.
One regular expression with alternatives, applied in one pass (RE2 in DuckDB and ClickHouse alike).
"""

from __future__ import annotations

import re

from incidentlens.analysis.periods import quote_ident

#: what a variable becomes; Drain3's own parameter token, so Drain treats it as a wildcard
MASK = "<*>"
#: longer messages are masked and grouped on their first characters (stack traces differ in their tails)
MAX_MESSAGE_CHARS = 1000

_UUID = r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
_IPV4 = r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
_HEX_PREFIXED = r"\b0x[0-9a-fA-F]+\b"
# lower-case hex words holding both a digit and a letter (commit shas, pod suffixes, span ids)
_HEX_WORD = r"\b[0-9a-f]*(?:[0-9][0-9a-f]*[a-f]|[a-f][0-9a-f]*[0-9])[0-9a-f]*\b"
# ids with a short type prefix: ch_1d0296468c3deb0c, pm_2f87, ord_cd3c (not p95_ms: its prefix holds a digit)
_PREFIXED_ID = r"\b[a-zA-Z]{1,5}_\w*\d\w*\b"
# numbers and versions with an optional unit: 42, 1.5s, 120ms, v2.3.1
_NUMBER = r"\b[vV]?\d+(?:\.\d+)*(?:[a-zA-Z]+\b)?"

VARIABLE_PATTERN = "|".join((_UUID, _IPV4, _HEX_PREFIXED, _HEX_WORD, _PREFIXED_ID, _NUMBER))
_VARIABLE = re.compile(VARIABLE_PATTERN)


def masked_sql(column: str = "message") -> str:
    """SQL expression: the column's text with every variable replaced by `<*>`."""
    return f"regexp_replace(substr({quote_ident(column)}, 1, {MAX_MESSAGE_CHARS}), '{VARIABLE_PATTERN}', '{MASK}', 'g')"


def mask(text: str) -> str:
    """The same masking in Python, for one line (tests and single messages; bulk work runs in SQL)."""
    return _VARIABLE.sub(MASK, text[:MAX_MESSAGE_CHARS])
