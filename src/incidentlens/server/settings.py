"""`incidentlens serve` settings: the command's options, or a TOML (or YAML) file holding the same settings plus the
outbound notifications. Options given on the command line win over the file.

```toml
host = "0.0.0.0"
port = 8080
state = "/var/lib/incidentlens"
workers = 2            # investigations at once
queue_size = 100       # queued investigations before a manual start is refused (429)
llm = "offline"
public_url = "http://incidentlens.example:8080"   # the link in notifications

[sources]
metrics = ["/data/metrics/*.parquet"]
logs = ["/data/logs/*.parquet"]     # or "clickhouse://reader@ch:8123/prod.logs"
prometheus = "http://prometheus:9090"
timezone = "Europe/Berlin"           # the files' times written without a zone, as --timezone

[[notifications]]
name = "oncall"
kind = "slack"                       # Slack incoming webhook; "json" for the generic form
url_env = "SLACK_WEBHOOK_URL"        # the URL is a secret: read from the environment (or url = "...")
```
The bearer token comes from `--token` or the environment (`INCIDENTLENS_TOKEN`), never from the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from incidentlens.errors import InputError

TOKEN_ENV = "INCIDENTLENS_TOKEN"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sources(_Strict):
    """The telemetry every investigation reads: the same sources as `incidentlens analyze`."""

    metrics: list[str] = Field(default_factory=list)
    logs: list[str] = Field(default_factory=list)
    traces: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    calls: list[str] = Field(default_factory=list, description="per-call-edge latency files, as --calls")
    map: list[str] = Field(default_factory=list, description="ROLE=COLUMN, as --map")
    prometheus: str | None = None
    promql: list[str] = Field(default_factory=list)
    prom_user: str | None = None
    prom_step: int | None = None
    timezone: str | None = Field(default=None, description="IANA zone of the files' times written without one, and "
                                 "of an `at` without one, as --timezone")

    @model_validator(mode="before")
    @classmethod
    def _one_path_is_a_list_of_one(cls, data: Any) -> Any:
        """`metrics = "/data/*.parquet"` reads as the list of that one path, as one `--metrics` does."""
        if not isinstance(data, dict):
            return data
        lists = ("metrics", "logs", "traces", "events", "calls", "map", "promql")
        return {key: [value] if key in lists and isinstance(value, str) else value for key, value in data.items()}

    def given(self) -> bool:
        return bool(self.metrics or self.logs or self.traces or self.events or self.calls or self.prometheus)

    def pulled_per_read(self) -> bool:
        """Sources read from a server rather than from files: Prometheus (pulled around a time) or ClickHouse."""
        return bool(self.prometheus) or any(path.startswith(("clickhouse://", "clickhouses://")) for path in self.logs)

    def file_states(self) -> tuple[tuple[str, int, int, int, int], ...]:
        """Each file the sources name, globs matched now: its path, size, modification time, inode and change time
        (ns; a file copied in with its old modification time, `cp -p` or `rsync -t`, has a new change time); -1s for
        a file gone between the match and the look (opening the sources then says what is missing)."""
        from incidentlens.telemetry.files import resolve_paths

        given = (self.metrics, self.logs, self.traces, self.events, self.calls)
        return tuple(_file_state(path) for paths in given for path in resolve_paths(paths))

    def open(self, at: datetime | None = None) -> Any:
        """A TelemetryStore over these sources, as `incidentlens analyze` opens it (Prometheus pulled around `at`)."""
        from incidentlens.telemetry import parse_mapping
        from incidentlens.telemetry.sources import PrometheusOptions, open_store

        prometheus = PrometheusOptions(url=self.prometheus, promql=tuple(self.promql), user=self.prom_user,
                                       step=self.prom_step) if self.prometheus else None
        return open_store(metrics=self.metrics or None, logs=self.logs or None, traces=self.traces or None,
                          events=self.events or None, mapping=parse_mapping(self.map), prometheus=prometheus, at=at,
                          calls=self.calls or None, timezone=self.timezone)


def _file_state(path: Path) -> tuple[str, int, int, int, int]:
    try:
        status = path.stat()
    except OSError:
        return str(path), -1, -1, -1, -1
    return str(path), status.st_size, status.st_mtime_ns, status.st_ino, status.st_ctime_ns


#: what a URL never holds unescaped: whitespace (two lines of a file read into one variable) and control characters
INSIDE_A_URL_NEVER = re.compile(r"[\s\x00-\x1f\x7f]")


class NotificationTarget(_Strict):
    """An outbound webhook called when a review is done."""

    name: str = "webhook"
    kind: Literal["slack", "json"] = "json"
    url: str | None = None
    url_env: str | None = None

    @model_validator(mode="after")
    def _one_url(self) -> NotificationTarget:
        if not self.url and not self.url_env:
            raise ValueError(f"notification {self.name!r}: give url or url_env")
        return self

    def resolved_url(self) -> str:
        """The URL to post to: `url`, else the environment variable `url_env`, stripped. InputError when it is unset,
        blank or no http(s) URL with a host, naming the notification and where its URL comes from, never the URL (a
        webhook URL is a secret). The check at start (`check_notification`) and every send read it here, so they
        cannot disagree."""
        where = f"notification {self.name!r}"
        given = self.url or os.environ.get(self.url_env or "")
        if given is None:
            raise InputError(f"{where}: environment variable {self.url_env} is not set")
        holder = "its url" if self.url else f"environment variable {self.url_env}"
        url = given.strip()
        if not url:
            raise InputError(f"{where}: {holder} is blank")
        if INSIDE_A_URL_NEVER.search(url):  # urlsplit drops tabs and line breaks and keeps spaces: no check after
            raise InputError(f"{where}: {holder} holds a space, line break or control character")
        if not _web_url(url):
            raise InputError(f"{where}: {holder} is not an http:// or https:// URL with a host")
        return url


class ServeSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    state: Path = Path("incidentlens-state")
    token: str | None = Field(default=None, exclude=True)
    workers: int = Field(default=1, ge=1, le=32)
    queue_size: int = Field(default=100, ge=1)
    llm: str = "auto"
    model: str = "gpt-4o-mini"
    llm_url: str | None = None
    max_steps: int = Field(default=30, ge=1)
    public_url: str | None = None
    sources: Sources = Field(default_factory=Sources)
    notifications: list[NotificationTarget] = Field(default_factory=list)
    notify_attempts: int = Field(default=4, ge=1, le=10)
    notify_backoff_s: float = Field(default=1.0, ge=0)

    def base_url(self) -> str:
        """Where people reach the UI: `public_url`, else the address the server listens on."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{url_host(host)}:{self.port}"


def url_host(host: str) -> str:
    """A host as a URL writes it: an IPv6 address in brackets (`[::1]`)."""
    return f"[{host}]" if ":" in host else host


def read_config(path: Path) -> dict[str, Any]:
    """A TOML file (or YAML, `.yaml`/`.yml`) as a dict; InputError naming the file when it cannot be read."""
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"{path}: cannot read the config file ({err.strerror})") from err
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # PyYAML comes with haystack-ai

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise InputError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"{path}: not valid TOML ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the config must be a table of settings")
    if "token" in data:
        raise InputError(f"{path}: keep the token out of files: pass --token or set {TOKEN_ENV}")
    return data


def build_settings(config: Path | None, overrides: dict[str, Any]) -> ServeSettings:
    """The file's settings with the command line's on top (options left unset are None and do not override)."""
    data = read_config(config) if config else {}
    sources = dict(data.get("sources") or {})
    for key in list(overrides):
        if key in Sources.model_fields:
            value = overrides.pop(key)
            if value:
                sources[key] = value
    data.update({key: value for key, value in overrides.items() if value is not None})
    data["sources"] = sources
    if not data.get("token"):
        data["token"] = os.environ.get(TOKEN_ENV) or None
    try:
        return ServeSettings.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{config or 'serve options'}: {where}: {first['msg']}") from None


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_serve_settings(settings: ServeSettings) -> None:
    """Refuse to start a server that could not investigate, or that would be open beyond this machine."""
    if not settings.sources.given():
        raise InputError("serve: no telemetry given: pass --metrics/--logs/--traces files, --prometheus URL or "
                         "--logs clickhouse://... (or [sources] in --config)")
    if settings.llm not in ("auto", "offline") or settings.llm_url:  # else no brain to check, nor Haystack to load
        from incidentlens.agents.brains import parse_llm_url, resolve_brain

        # A brain or URL no investigation could use (no key, no URL, a misspelt name): refused now, not at every
        # alert.
        resolve_brain(settings.llm, settings.model, settings.llm_url)
        if settings.llm_url:
            parse_llm_url(settings.llm_url)
    if settings.token is None and settings.host not in LOOPBACK:
        raise InputError(f"serve: --host {settings.host} without a token: pass --token or set {TOKEN_ENV}")
    names = [target.name for target in settings.notifications]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:  # deliveries find their target by name: the second would post to the first's URL
        raise InputError(f"serve: notification {twice!r} is named twice: give each notification a name of its own")
    for target in settings.notifications:
        check_notification(target)


def check_notification(target: NotificationTarget) -> None:
    """Refuse at start a notification no delivery could send (found otherwise at the first review, and only in the
    state DB), by resolving its URL as every send does."""
    try:
        target.resolved_url()
    except InputError as err:
        raise InputError(f"serve: {err}") from None


def _web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port_readable = parts.port is None or parts.port >= 0  # reading the port raises on one that is no number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port_readable
