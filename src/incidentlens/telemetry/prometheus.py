"""Prometheus as a metrics source: discover or query series over a range and return the canonical metrics table.

The result is an arrow table `ts TIMESTAMP (naive UTC), service VARCHAR, metric VARCHAR, value DOUBLE, pod
VARCHAR` that the store registers as the `metrics` view (`pod` from a series' pod label, else its `instance`, the
target it was scraped from; NULL without either: each replica's samples are a series of their own, and its metric keeps
its name). Series are either discovered (every
series carrying a `service`, `app` or `job` label over the range) or given as named PromQL queries
(`--promql NAME=QUERY`).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pyarrow as pa

from incidentlens.errors import InputError, SourceError
from incidentlens.telemetry.apianswers import SERVICE_LABELS, matrix_to_table
from incidentlens.urls import redact_url

# Prometheus refuses a query_range that would return more than 11,000 points per series.
MAX_POINTS_PER_SERIES = 11_000
# The step never goes below one minute by default: finer steps only repeat a 15-60 s scrape through the lookback.
DEFAULT_MIN_STEP_SECONDS = 60
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_QUERY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:./-]*$")


@dataclass(frozen=True)
class PrometheusAuth:
    """Credentials for a Prometheus behind a proxy: a bearer token or basic auth (never printed)."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_options(cls, token: str | None = None, user: str | None = None) -> PrometheusAuth:
        """Take the token from the option or `PROMETHEUS_TOKEN`, the basic-auth password from `PROMETHEUS_PASSWORD`."""
        token = token or os.environ.get("PROMETHEUS_TOKEN") or None
        password = os.environ.get("PROMETHEUS_PASSWORD") if user else None
        if user and password is None:
            raise InputError(f"--prom-user {user}: set the password in the environment variable PROMETHEUS_PASSWORD")
        return cls(token=token, user=user, password=password)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def basic(self) -> httpx.BasicAuth | None:
        return httpx.BasicAuth(self.user, self.password or "") if self.user else None


def parse_promql_options(options: Iterable[str]) -> dict[str, str]:
    """Parse repeated `--promql NAME=QUERY` options into {name: query}."""
    queries: dict[str, str] = {}
    for option in options:
        name, sep, query = option.partition("=")
        name, query = name.strip(), query.strip()
        if not sep or not query or not _QUERY_NAME.match(name):
            raise InputError(f"--promql {option!r}: expected NAME=QUERY, e.g. p95_ms=histogram_quantile(0.95, ...)")
        if name in queries:
            raise InputError(f"--promql {name}: the name is given twice")
        queries[name] = query
    return queries


def choose_step(start: datetime, end: datetime, min_step_seconds: int = DEFAULT_MIN_STEP_SECONDS) -> int:
    """The step in whole seconds that keeps every series of [start, end] under Prometheus's point limit."""
    span = max((end - start).total_seconds(), 1.0)
    return max(int(min_step_seconds), math.ceil(span / (MAX_POINTS_PER_SERIES - 1)))


class PrometheusClient:
    """A small HTTP API client: timeouts, retries with backoff on connect errors and 5xx, one-line errors."""

    def __init__(
        self,
        url: str,
        auth: PrometheusAuth | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--prometheus {redact_url(url)}: expected an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.shown_url = redact_url(self.url)  # what messages print
        self.retries = retries
        self.backoff = backoff
        auth = auth or PrometheusAuth()
        try:
            self._http = httpx.Client(
                base_url=self.url, headers=auth.headers(), auth=auth.basic(), timeout=timeout, transport=transport
            )
        except httpx.InvalidURL as err:  # `host:abc`: a port that is no number
            raise InputError(f"--prometheus {self.shown_url}: not a URL ({err})") from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def api(self, path: str, params: Mapping[str, Any] | list[tuple[str, Any]], method: str = "POST") -> Any:
        """Call /api/v1/<path> (POST is form-encoded, so long selectors fit) and return the `data` field."""
        response = self._request_with_retries(method, path, params)
        if response.status_code in (401, 403):
            raise SourceError(f"Prometheus at {self.shown_url}: authentication refused (HTTP {response.status_code})")
        try:
            body = response.json()
        except ValueError:
            raise SourceError(
                f"Prometheus at {self.shown_url}: /api/v1/{path} answered HTTP {response.status_code} without JSON"
            ) from None
        if body.get("status") != "success":
            message = str(body.get("error") or f"HTTP {response.status_code}").replace("\n", " ")
            raise SourceError(f"Prometheus at {self.shown_url}: {path} failed: {message}")
        return body.get("data")

    def _request_with_retries(
        self, method: str, path: str, params: Mapping[str, Any] | list[tuple[str, Any]]
    ) -> httpx.Response:
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                if method == "GET":
                    response = self._http.get(f"/api/v1/{path}", params=urlencode(params))
                else:
                    response = self._http.post(f"/api/v1/{path}", content=urlencode(params), headers=_FORM)
            except httpx.TransportError as err:
                last_problem = f"unreachable ({type(err).__name__}: {err})".replace("\n", " ")
                continue
            if response.status_code not in RETRYABLE_STATUS:
                return response
            last_problem = f"HTTP {response.status_code}"
        raise SourceError(f"Prometheus at {self.shown_url}: {last_problem} after {self.retries + 1} attempts")

    def series(self, matchers: Iterable[str], start: datetime, end: datetime) -> list[dict[str, str]]:
        params = [("match[]", m) for m in matchers] + [("start", _unix(start)), ("end", _unix(end))]
        return list(self.api("series", params) or [])

    def metric_types(self) -> dict[str, str]:
        """{metric name: counter|gauge|histogram|...} as the scrape targets declared them (empty when unknown)."""
        metadata = self.api("metadata", {}, method="GET") or {}
        return {name: entries[0].get("type", "unknown") for name, entries in metadata.items() if entries}

    def query_range(self, query: str, start: datetime, end: datetime, step: int) -> list[dict[str, Any]]:
        data = self.api("query_range", {"query": query, "start": _unix(start), "end": _unix(end), "step": step})
        if data.get("resultType") != "matrix":
            raise SourceError(f"Prometheus at {self.shown_url}: query {query!r} returned a {data.get('resultType')}")
        return list(data.get("result") or [])


def fetch_metrics(
    client: PrometheusClient,
    start: datetime,
    end: datetime,
    queries: Mapping[str, str] | None = None,
    discover: bool = True,
    step: int | None = None,
    max_series: int = 5000,
) -> pa.Table:
    """Pull discovered series and named queries over [start, end] into the canonical metrics table.

    Discovered gauges keep their name; counters (declared so by the targets' metadata, else named `*_total`)
    become per-second rates named `<name>:rate`; histogram buckets are skipped (ask for a quantile with --promql).
    Named queries give metric = NAME; their service is the series' service/app/job label, else `global`.
    """
    if end <= start:
        raise InputError(f"Prometheus range: start {start:%Y-%m-%d %H:%M:%S} is not before end {end:%Y-%m-%d %H:%M:%S}")
    step = step or choose_step(start, end)
    # Evaluate on a grid of whole steps (as dashboards do) so points land on round times like a file's rows.
    start = datetime.fromtimestamp(_unix(start) // step * step, UTC).replace(tzinfo=None)
    planned = discovered_queries(client, start, end, step, max_series) if discover else {}
    planned.update(queries or {})
    if not planned:
        raise SourceError(
            f"Prometheus at {client.url}: no series with a service, app or job label between "
            f"{start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC (give --promql NAME=QUERY or another range)"
        )
    tables = [
        matrix_to_table(client.query_range(query, start, end, step), name) for name, query in planned.items()
    ]
    return pa.concat_tables(tables).combine_chunks()


def discovered_queries(
    client: PrometheusClient, start: datetime, end: datetime, step: int, max_series: int
) -> dict[str, str]:
    """One query per metric name among the series that carry a service label: {metric_name: promql}."""
    matchers = [f'{{{label}!=""}}' for label in SERVICE_LABELS]
    series = client.series(matchers, start, end)
    if len(series) > max_series:
        raise SourceError(
            f"Prometheus at {client.url}: {len(series)} series carry a service/app/job label over the range, "
            f"more than --prom-max-series {max_series}; name the ones to read with --promql NAME=QUERY"
        )
    names = sorted({s["__name__"] for s in series if "__name__" in s})
    declared = client.metric_types()
    rate_window = f"{max(4 * step, 300)}s"
    plan: dict[str, str] = {}
    for name in names:
        kind = declared.get(name) or ("counter" if name.endswith("_total") else "gauge")
        if name.endswith("_bucket") or kind == "histogram":
            continue  # histogram buckets: ask for a quantile explicitly with --promql
        if kind == "counter":
            plan[f"{name}:rate"] = f"rate({name}[{rate_window}])"
        else:
            plan[name] = name
    return plan


def _unix(moment: datetime) -> float:
    """Naive datetimes are UTC (the store's convention)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.timestamp()
