"""One entry point for every telemetry source the CLI accepts: files, Prometheus, ClickHouse.

```python
store = open_store(logs="clickhouse://reader@ch:8123/prod.app_logs", prometheus="http://prom:9090",
                   promql=["p95_ms=histogram_quantile(0.95, sum by (service, le) (rate(http_bucket[5m])))"])
```
Files load as with `load_telemetry`; a `clickhouse://` logs URL becomes the store's `logs_backend` (queries over
`logs` are pushed down); Prometheus series are pulled over the range and added to the `metrics` view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from incidentlens.errors import InputError
from incidentlens.telemetry.files import PathsArg
from incidentlens.telemetry.store import TelemetryStore, load_telemetry
from incidentlens.telemetry.textlogs import TextLogOptions
from incidentlens.telemetry.timeparse import naive_utc
from incidentlens.urls import redact_url

CLICKHOUSE_SCHEMES = ("clickhouse://", "clickhouses://")
# With neither --prom-start nor other telemetry to take the range from, pull this much before the end.
DEFAULT_PROMETHEUS_HOURS = 24


@dataclass(frozen=True)
class PrometheusOptions:
    """The CLI's --prometheus/--prom-*/--promql options."""

    url: str
    promql: Sequence[str] = field(default_factory=tuple)
    token: str | None = None
    user: str | None = None
    start: str | None = None
    end: str | None = None
    step: int | None = None
    discover: bool = True


def open_store(
    metrics: PathsArg = None,
    logs: PathsArg = None,
    traces: PathsArg = None,
    events: PathsArg = None,
    mapping: dict[str, str] | None = None,
    prometheus: PrometheusOptions | None = None,
    at: datetime | None = None,
    text: TextLogOptions | None = None,
    calls: PathsArg = None,
    timezone: str | None = None,
) -> TelemetryStore:
    """Files, a `clickhouse://` logs URL and a Prometheus server -> one TelemetryStore; `text` is what plain-text
    logs cannot say (the year of year-less times, the service); `calls`: per-call-edge latency files; `timezone`:
    the IANA zone of the files' times written without one (none: UTC)."""
    clickhouse_url, log_files = split_clickhouse(logs)
    has_files = any(_given(p) for p in (metrics, log_files, traces, events, calls))
    if has_files:
        store = load_telemetry(metrics=metrics, logs=log_files, traces=traces, events=events, mapping=mapping,
                               text=text, calls=calls, timezone=timezone)
    elif clickhouse_url or prometheus:
        store = TelemetryStore(timezone=timezone)  # a zone that is none is refused even with no file to read
    else:
        raise InputError("no telemetry given: pass metrics/logs files, --prometheus URL or --logs clickhouse://...")
    if clickhouse_url:
        from incidentlens.telemetry.clickhouse import connect_clickhouse_logs

        backend = connect_clickhouse_logs(clickhouse_url, mapping=_log_roles(mapping))
        store.logs_backend = backend
        store.warnings.extend(backend.warnings)
    if prometheus:
        add_prometheus_metrics(store, prometheus, at)
    if clickhouse_url or prometheus:
        store.one_name_per_service()  # again: over the Prometheus series too, and the logs in ClickHouse
    return store


def split_clickhouse(logs: PathsArg) -> tuple[str | None, PathsArg]:
    """Separate a clickhouse:// URL from log files (only one of the two kinds may be given)."""
    if logs is None:
        return None, None
    items = list(logs) if isinstance(logs, Sequence) and not isinstance(logs, str) else [logs]
    urls = [str(item) for item in items if str(item).startswith(CLICKHOUSE_SCHEMES)]
    if not urls:
        return None, logs
    if len(items) > 1:
        raise InputError("--logs clickhouse://...: give the ClickHouse table alone, not with other log files")
    return urls[0], None


def add_prometheus_metrics(store: TelemetryStore, options: PrometheusOptions, at: datetime | None) -> None:
    """Pull the Prometheus series over the range and add them to the store's `metrics` view."""
    from incidentlens.telemetry.prometheus import (
        PrometheusAuth,
        PrometheusClient,
        fetch_metrics,
        parse_promql_options,
    )

    queries = parse_promql_options(options.promql)
    start, end = prometheus_range(store, options, at)
    with PrometheusClient(options.url, PrometheusAuth.from_options(options.token, options.user)) as client:
        table = fetch_metrics(client, start, end, queries=queries, discover=options.discover, step=options.step)
    store.add_arrow("metrics", table, label=f"Prometheus {redact_url(options.url)}")


def prometheus_range(
    store: TelemetryStore, options: PrometheusOptions, at: datetime | None
) -> tuple[datetime, datetime]:
    """--prom-start/--prom-end, else the range of the other telemetry, else the 24 h up to an hour after --at/now."""
    start = parse_utc(options.start, "--prom-start") if options.start else None
    end = parse_utc(options.end, "--prom-end") if options.end else None
    if start is None or end is None:
        loaded = store.time_range() if store.views else None
        if loaded:
            start, end = start or loaded[0], end or loaded[1]
    if end is None:
        end = at + timedelta(hours=1) if at else datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    if start is None:
        start = end - timedelta(hours=DEFAULT_PROMETHEUS_HOURS)
    return start, end


def parse_utc(text: str, option: str) -> datetime:
    """An ISO-8601 time (a zone is converted, none means UTC) as naive UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        example = "2024-05-01T16:00:00Z"
        raise InputError(f"{option} {text!r}: cannot parse as a time (use ISO-8601, e.g. {example})") from None
    return naive_utc(moment)


def _given(paths: PathsArg) -> bool:
    if paths is None:
        return False
    return bool(paths) if isinstance(paths, Sequence) and not isinstance(paths, str) else True


def _log_roles(mapping: dict[str, str] | None) -> dict[str, str]:
    return {role: column for role, column in (mapping or {}).items() if role in ("time", "service", "level", "message")}
