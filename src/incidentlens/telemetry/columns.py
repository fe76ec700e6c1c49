"""Which source column plays which canonical role: auto-detection by name, and `--map role=column` overrides.

Names are compared normalised (lower case, letters and digits only), so `service.name`, `service_name` and
`ServiceName` are one candidate, and `Timestamp`, `TimeStamp` and `@timestamp` another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from incidentlens.errors import InputError
from incidentlens.telemetry.logfields import LOKI_LEVEL_LABELS, LOKI_POD_LABELS, LOKI_SERVICE_LABELS


def normalise(name: str) -> str:
    """`Service.Name` -> `servicename`: the form candidate names are compared in."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


#: where a Google Cloud Logging entry holds its message, each in its own entries: text, or a JSON object (read as a
#: structured line, its `message` field the message)
GCP_PAYLOADS = ("textpayload", "jsonpayload")

#: a log file's row carries where it was read: its file, and its 1-based line in it (a CSV record's first line,
#: a JSON line's own) or, where there are no lines to count (a JSON array, Parquet), its row
ORIGIN_FILE, ORIGIN_LINE = "_incidentlens_origin_file", "_incidentlens_origin_line"

# Candidates in order of preference, written normalised.
CANDIDATES: dict[str, tuple[str, ...]] = {
    # journald's JSON export (`journalctl -o json`): __REALTIME_TIMESTAMP, SYSLOG_IDENTIFIER or _SYSTEMD_UNIT, PRIORITY;
    # python-json-logger's `asctime` (`2024-05-01 10:00:00,250`); Azure Monitor's `TimeGenerated` (`TimeGenerated
    # [UTC]` in the portal's CSV export); Serilog's compact JSON (CLEF: `@t`, `@m`/`@mt`, `@l`); a spreadsheet's or
    # export's header naming the zone (`Timestamp (UTC)`, `time_utc`); a Windows event log export's `TimeCreated`
    # (PowerShell's Get-WinEvent | ConvertTo-Json or Export-Csv)
    "time": ("ts", "time", "timestamp", "datetime", "timeunixnano", "eventtime", "date", "realtimetimestamp",
             "asctime", "timegenerated", "timegeneratedutc", "tsutc", "timeutc", "timestamputc", "datetimeutc",
             "timecreated", "t"),
    "service": (
        "service", "servicename", "app", "application", "job", "podname", "pod", "k8spodname", "kubernetespodname",
        "syslogidentifier", "systemdunit",
        # OpenTelemetry's resource attribute as a JSON record nests it: {"resource": {"service.name": ...}}
        "resourceservicename", "resourceattributesservicename",
        # Loki's `logcli query --output=jsonl` nests its stream's labels ({"labels": {"app": ...}, "line": ...}),
        # read as a saved Loki answer's are (`logfields.LOKI_SERVICE_LABELS`, then the pod's)
        *(f"labels{normalise(label)}" for label in (*LOKI_SERVICE_LABELS, *LOKI_POD_LABELS)),
        # Google Cloud Logging's entries (`gcloud logging read --format=json`): their resource's labels, a GKE
        # container's, a Cloud Run service's, a function's, an App Engine module's, else the pod's
        "resourcelabelscontainername", "resourcelabelsservicename", "resourcelabelsfunctionname",
        "resourcelabelsmoduleid", "resourcelabelspodname",
        # a Windows event's source (Get-WinEvent's `ProviderName`: Service Control Manager, an application's name)
        "providername",
    ),
    # a Windows event's level in words (`LevelDisplayName`: Error) before its number (`Level`: 2, `WINDOWS_LEVELS`)
    "level": ("leveldisplayname", "level", "severity", "severitytext", "lvl", "loglevel", "levelname", "priority",
              *(f"labels{normalise(label)}" for label in LOKI_LEVEL_LABELS), "l"),
    # structlog's default key is `event`: last, where no other names the message but logcli's `line`, the raw
    # event of a Splunk search exported as CSV (`_time`, `host`, `source`, `sourcetype`, `_raw`), Azure Monitor's
    # container logs' (ContainerLogV2's `LogMessage`, ContainerLog's `LogEntry`), Google Cloud Logging's payloads and
    # Serilog's compact JSON's rendered message, else its template
    "message": ("message", "msg", "body", "log", "content", "text", "event", "line", "raw", "logmessage", "logentry",
                *GCP_PAYLOADS, "m", "mt"),
    # Grafana's panel CSV with its series as rows: `"Series","Time","Value"`
    "metric": ("metric", "metricname", "name", "series"),
    "value": ("value", "val", "metricvalue"),
    "trace_id": ("traceid",),
    "span_id": ("spanid",),
    "parent_id": ("parentid", "parentspanid", "parentspan"),
    "operation": ("operationname", "operation", "spanname", "name"),
    "start": ("starttimeunixnano", "starttime", "start", "startts", "starttimestamp", "timestamp", "ts", "time"),
    "end": ("endtimeunixnano", "endtime", "end", "endts"),
    "duration": (
        "duration", "durationms", "durationus", "durationmicros", "durationns", "durationnano", "durationnanos",
        "elapsed", "elapsedms",
    ),
    "status": ("status", "statuscode", "otelstatuscode", "error", "iserror", "haserror"),
    # the service on the far side of a client span (OpenTelemetry's `peer.service`; the trace readers' `peer`)
    "peer": ("peer", "peerservice"),
    "kind": ("kind", "type", "eventtype", "event", "category", "action"),
    "description": ("description", "desc", "details", "summary", "message", "msg", "text", "body"),
    # per-call-edge latency (`calls`), as a service mesh reports it (Istio's source_workload/destination_workload and
    # reporter, Linkerd's outbound/inbound)
    "caller": ("caller", "source", "sourceworkload", "sourceservice", "sourceapp", "client"),
    "callee": ("callee", "destination", "destinationworkload", "destinationservice", "destinationapp", "target",
               "server"),
    "side": ("side", "reporter", "direction"),
    "latency": (
        "latencyms", "latency", "latencys", "latencyseconds", "latencyus", "durationms", "durationmilliseconds",
        "durationseconds", "duration", "p50", "value",
    ),
}
ROLES: tuple[str, ...] = tuple(CANDIDATES)

# Columns holding a Kubernetes pod name: the service is the pod name without its replica-set/StatefulSet suffix.
POD_COLUMNS = frozenset({"podname", "pod", "k8spodname", "kubernetespodname", "resourcelabelspodname",
                         *(f"labels{label}" for label in LOKI_POD_LABELS)})


def quote(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A Python string as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_object_sql(text_sql: str) -> str:
    """DuckDB's condition of a text being a JSON object (a structured log line, a container runtime's wrapper)."""
    return f"(starts_with({text_sql}, '{{') AND json_valid({text_sql}))"


def _json_paths(fields: tuple[tuple[str, ...], ...]) -> str:
    """logfields' key paths as a DuckDB list of JSON paths (`$."log"."level"`, `$."log.level"`)."""
    return "[" + ", ".join(literal("$." + ".".join(f'"{key}"' for key in keys)) for keys in fields) + "]"


def first_json_value_sql(line_sql: str, fields: tuple[tuple[str, ...], ...]) -> str:
    """The first of the fields present and not empty, as text (a number as written); NULL when none is.

    One parse of the line for every field (a list of paths)."""
    values = f"json_extract_string({line_sql}, {_json_paths(fields)})"
    return f"list_filter({values}, lambda v: v <> '')[1]"


def json_pointer(key: str) -> str:
    """A JSON object's key as a JSON pointer (`/key`), which any key can be written as (`$."key"` cannot hold `"`)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def find_column(
    columns: Sequence[str], role: str, mapping: dict[str, str] | None = None, exclude: Iterable[str] = ()
) -> str | None:
    """The source column for `role`: the `--map` override if it names a column here, else the best candidate."""
    matches = candidate_columns(columns, role, mapping, exclude)
    return matches[0] if matches else None


def candidate_columns(
    columns: Sequence[str], role: str, mapping: dict[str, str] | None = None, exclude: Iterable[str] = ()
) -> list[str]:
    """Every column that could play `role`, best first; a `--map` override present here is the only candidate."""
    mapped = (mapping or {}).get(role)
    if mapped is not None:
        exact = [c for c in columns if c == mapped] or [c for c in columns if c.lower() == mapped.lower()]
        if exact:
            return exact[:1]
    excluded = set(exclude)
    by_key: dict[str, list[str]] = {}
    for column in columns:
        if column not in excluded:
            by_key.setdefault(normalise(column), []).append(column)
    return [column for key in CANDIDATES[role] for column in by_key.get(key, [])]


def is_pod_column(column: str) -> bool:
    """True when the column holds Kubernetes pod names (by its name)."""
    key = normalise(column)
    return key in POD_COLUMNS or "pod" in key


def parse_mapping(items: Iterable[str] | None) -> dict[str, str]:
    """`["time=when", "message=text"]` (the CLI's repeated `--map role=column`) -> `{"time": "when", ...}`."""
    mapping: dict[str, str] = {}
    for item in items or ():
        role, sep, column = item.partition("=")
        role, column = role.strip(), column.strip()
        if not sep or not role or not column:
            raise InputError(f"--map {item!r}: expected role=column, e.g. --map time=when")
        if role not in CANDIDATES:
            raise InputError(f"--map {item!r}: unknown role {role!r}; roles are {', '.join(ROLES)}")
        if mapping.get(role, column) != column:
            raise InputError(f"--map {item!r}: role {role!r} is already mapped to {mapping[role]!r}; "
                             "one column per role")
        mapping[role] = column
    return mapping
