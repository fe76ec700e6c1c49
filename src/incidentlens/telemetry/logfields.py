"""How a log's level, message and service are read and normalised: one definition for every logs source (files
read by DuckDB, a ClickHouse table, plain-text files, the Nezha labels), so each gives the same `logs` view.

Each source writes these rules in its own SQL dialect; the words, spellings and pattern live here only.
"""

from __future__ import annotations

import re

LEVEL_ALIASES = {
    "WARNING": "WARN", "ERR": "ERROR", "CRITICAL": "FATAL", "CRIT": "FATAL", "PANIC": "FATAL", "EMERG": "FATAL",
    "EMERGENCY": "FATAL", "ALERT": "FATAL", "NOTICE": "INFO", "INFORMATION": "INFO", "DBG": "DEBUG",
    "SEVERE": "ERROR", "FINE": "DEBUG", "FINER": "TRACE", "FINEST": "TRACE",
    # Serilog and .NET (Verbose, Information), zap's development panic
    "VERBOSE": "TRACE", "DPANIC": "ERROR",
    # log15 (Grafana's logfmt lines: lvl=eror, lvl=dbug)
    "EROR": "ERROR", "DBUG": "DEBUG",
    # one-letter levels: klog (I, W, E, F), Android logcat (V, D, I, W, E, F, A)
    "V": "TRACE", "D": "DEBUG", "I": "INFO", "W": "WARN", "E": "ERROR", "F": "FATAL", "A": "FATAL",
}
# pino/bunyan levels, then syslog severities.
NUMERIC_LEVELS = {
    "10": "TRACE", "20": "DEBUG", "30": "INFO", "40": "WARN", "50": "ERROR", "60": "FATAL",
    "0": "FATAL", "1": "FATAL", "2": "FATAL", "3": "ERROR", "4": "WARN", "5": "INFO", "6": "INFO", "7": "DEBUG",
}
# A Windows event's `Level` number (Get-WinEvent's: 1 Critical, 2 Error, 3 Warning, 4 Information, 5 Verbose; 0 is
# LogAlways, said as Information), read so where the export has no `LevelDisplayName`: not the syslog scale above
WINDOWS_LEVELS = {"0": "INFO", "1": "FATAL", "2": "ERROR", "3": "WARN", "4": "INFO", "5": "TRACE"}
#: the columns that say a file is a Windows event log export (normalised)
WINDOWS_EVENT_COLUMNS = frozenset({"timecreated", "providername"})
# A log export's `Status` column (Datadog's: emergency, alert, critical, error, warn, notice, info, debug, ok) is its
# level where no level column is found and its sampled values are these words (not an HTTP status, 200 or 503; not a
# one-letter code)
STATUS_LEVELS = frozenset({"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OK",
                           *(word for word in LEVEL_ALIASES if len(word) > 1)})
STATUS_LEVEL_SHARE = 0.9
# Every spelling (upper-cased, trimmed) that is not already a canonical level -> its canonical level; any other
# non-empty value is kept upper-cased, an empty one is NULL.
LEVEL_NAMES = {**LEVEL_ALIASES, **NUMERIC_LEVELS}

# Without a level column, the level is read from the message: its first level word, else a logfmt/JSON-ish
# `level=...`, looked for only in messages holding one of LEVEL_KEYS (a cheap test: lines without a level word cost
# one regex).
LEVEL_WORDS = "TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|PANIC"
LEVEL_WORD_PATTERN = rf"\b({LEVEL_WORDS})\b"
LOGFMT_LEVEL_PATTERN = r'(?i)\blevel[=:]\s*"?([a-z]+)'
LEVEL_KEYS = ("level", "LEVEL", "Level")

# A structured log line: a JSON object, the default of Go (logrus, zap, zerolog, slog), Node (pino, bunyan,
# winston), Python (structlog, python-json-logger), .NET (Serilog compact, ILogger's JSON console), Java (logstash
# encoder, ECS) and journald. Its message is the first of these fields present and not empty (none: the line is kept
# whole), its level the first of those (a number such as pino's 30 as written), normalised as a level column is; a
# plain-text line (and a JSON line with no level field) is read for level words as above. Each field is a key path:
# ("log", "level") is nested, ("log.level",) one dotted key.
JSON_MESSAGE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("message",), ("msg",), ("@message",), ("event",), ("@m",), ("@mt",), ("body",), ("Body",), ("Message",),
    ("MESSAGE",), ("RenderedMessage",), ("textPayload",),
)
JSON_LEVEL_FIELDS: tuple[tuple[str, ...], ...] = (
    ("level",), ("severity",), ("lvl",), ("levelname",), ("log.level",), ("log", "level"), ("@l",),
    ("severity_text",), ("SeverityText",), ("loglevel",), ("log_level",), ("LogLevel",), ("Level",), ("Severity",),
    ("PRIORITY",),
)

# A terminal's escape sequence (colour, bold: ESC [ parameters letter), which a coloured logger writes around its
# level word (`\x1b[31mERROR\x1b[0m`), or the JSON escape of its ESC (`\u001b[31m`) in a JSON line not yet read
# (a JSON logger's line inside a container's): dropped from a line, so its level word and template read as shown
ANSI_CODE = "(\x1b|" + r"\\u001[bB])\[[0-9;]*[A-Za-z]"

#: labels naming a Loki stream's service, best first (Grafana Alloy and Promtail's, then Kubernetes'), else its pod's
LOKI_SERVICE_LABELS = ("service_name", "service", "app", "application", "job", "container")
LOKI_POD_LABELS = ("pod",)
LOKI_LEVEL_LABELS = ("level", "detected_level", "severity")

# A Kubernetes pod name's replica-set (`-866bd68c97-xcqfx`) or StatefulSet (`-0`) suffix: dropped, the rest is the
# service (`ts-contacts-service-866bd68c97-xcqfx` -> `ts-contacts-service`). RE2 and ClickHouse's re2 agree on it.
POD_SUFFIX = r"-([a-z0-9]{6,10}-[a-z0-9]{5}|[0-9]+)$"
# A ReplicaSet's name is its Deployment's with the pod-template hash after it (`cart-7d9f8b6c5d`): the replica-set
# part of POD_SUFFIX alone.
REPLICA_SET_SUFFIX = r"-[a-z0-9]{6,10}$"


def service_of_pod(pod: str) -> str:
    """The service a pod name belongs to, as the logs view names it."""
    return re.sub(POD_SUFFIX, "", pod)
