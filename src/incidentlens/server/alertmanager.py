"""Alertmanager's webhook payload (version 4) and how it becomes incidents.

An incident is one Alertmanager group (`groupKey`) while any of its alerts fires. Alertmanager re-sends the group
every `repeat_interval`: a repeat finds the open incident and updates its alerts (deduplicated by `fingerprint`),
it never opens a new one. `resolved` closes an alert; when every alert of the incident is resolved, the incident
is. A group that fires again after its incident closed opens a new incident (a new episode, a new investigation);
a late repeat of an episode already closed updates that episode and reopens nothing.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from incidentlens.server.state import StateDB, now_iso

# Label names that carry the service, in the order they are looked for.
SERVICE_LABELS = ("service", "service_name", "app", "application")
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)  # Alertmanager's endsAt for an alert with no end yet


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    fingerprint: str = Field(min_length=1)
    generator_url: str | None = Field(default=None, alias="generatorURL")

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is UTC's (Alertmanager always sends one; a hand-written sender may not)."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @field_validator("starts_at")
    @classmethod
    def _has_start(cls, value: datetime) -> datetime:
        if value <= ZERO_TIME:
            raise ValueError("the zero time (0001-01-01) is no start: an alert needs the time it began firing")
        return value

    @property
    def service(self) -> str | None:
        return next((self.labels[name] for name in SERVICE_LABELS if self.labels.get(name)), None)


class Notification(BaseModel):
    """The webhook body Alertmanager POSTs (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str = "4"
    group_key: str = Field(alias="groupKey", min_length=1)
    status: Literal["firing", "resolved"]
    receiver: str | None = None
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    alerts: list[Alert] = Field(min_length=1)

    @field_validator("version")
    @classmethod
    def _version_4(cls, value: str) -> str:
        if value != "4":
            raise ValueError(f"webhook payload version {value!r} is not supported (Alertmanager sends version 4)")
        return value


#: the largest webhook body read: 5,000 alerts with their labels and annotations are about 12 MB
MAX_BODY_BYTES = 64 * 2**20


class PayloadError(ValueError):
    """A body that is not an Alertmanager notification; the message says why, for the 400/422 answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_notification(body: bytes) -> Notification:
    """The request body as a Notification; PayloadError(400) for bad JSON, (422) for a wrong shape."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PayloadError(400, f"the body is not JSON: {err}") from None
    except RecursionError:  # the decoder recurses per bracket: thousands deep ends the interpreter's stack
        raise PayloadError(400, "the body is not JSON this server reads: nested too deeply") from None
    if not isinstance(data, dict):
        raise PayloadError(422, "the body must be a JSON object (Alertmanager's webhook payload)")
    try:
        return Notification.model_validate(data)
    except ValidationError as err:
        raise PayloadError(422, "; ".join(_describe(error) for error in err.errors()[:5])) from None


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


def _iso(moment: datetime | None) -> str | None:
    if moment is None or moment <= ZERO_TIME:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def ingest(state: StateDB, note: Notification) -> dict[str, Any]:
    """Record one notification in one transaction; returns what happened (for the 2xx answer and the logs)."""
    stamp = now_iso()
    opened: list[int] = []
    touched: set[int] = set()
    with state.transaction() as con:
        open_id = _open_incident(con, note.group_key)
        # Earliest first: a new incident's investigation starts at the first alert to fire, and Alertmanager lists a
        # group's alerts by their labels, not by time.
        for alert in sorted(note.alerts, key=lambda alert: alert.starts_at):
            incident_id, closed = _known_episode(con, note.group_key, alert)
            if incident_id is None:
                if open_id is None:
                    open_id = _new_incident(state, con, note, alert, stamp)
                    opened.append(open_id)
                incident_id = open_id
            _upsert_alert(con, incident_id, alert, stamp, keep_status=closed)
            touched.add(incident_id)
        for incident_id in touched:
            _refresh_incident(con, incident_id, note, stamp)
    return {"accepted": len(note.alerts), "incidents": sorted(touched), "opened": opened,
            "truncated_alerts": note.truncated_alerts}


def _open_incident(con: sqlite3.Connection, group_key: str) -> int | None:
    row = con.execute("SELECT id FROM incidents WHERE group_key = ? AND status = 'firing' ORDER BY id DESC LIMIT 1",
                      (group_key,)).fetchone()
    return None if row is None else int(row[0])


def _known_episode(con: sqlite3.Connection, group_key: str, alert: Alert) -> tuple[int | None, bool]:
    """The incident already holding this alert's episode, and whether it is closed: one with the same fingerprint
    and start (a late repeat into a closed one reopens nothing), else the group's open incident with the
    fingerprint (the alert fired again while the group kept firing). The start decides first: an old episode's
    late `resolved` must not close the alert of the group's next episode."""
    starts_at = _iso(alert.starts_at)
    row = con.execute(
        "SELECT i.id, i.status = 'resolved' FROM alerts a JOIN incidents i ON i.id = a.incident_id "
        "WHERE a.fingerprint = ? AND i.group_key = ? AND (i.status = 'firing' OR a.starts_at = ?) "
        "ORDER BY a.starts_at = ? DESC, i.status = 'firing' DESC, i.id DESC LIMIT 1",
        (alert.fingerprint, group_key, starts_at, starts_at)).fetchone()
    return (None, False) if row is None else (int(row[0]), bool(row[1]))


def _new_incident(state: StateDB, con: sqlite3.Connection, note: Notification, alert: Alert, stamp: str) -> int:
    name = note.common_labels.get("alertname") or alert.labels.get("alertname") or "alert"
    service = alert.service
    summary = note.common_annotations.get("summary") or alert.annotations.get("summary")
    title = f"{name} on {service}" if service else name
    if summary:
        title = f"{title}: {summary}"
    incident_id = int(con.execute(
        "INSERT INTO incidents (group_key, title, status, source, receiver, opened_at, updated_at) VALUES "
        "(?, ?, 'firing', 'alertmanager', ?, ?, ?)", (note.group_key, title[:300], note.receiver, stamp, stamp)
    ).lastrowid)
    state.add_investigation(con, incident_id, _iso(alert.starts_at) or stamp, service)
    return incident_id


def _upsert_alert(con: sqlite3.Connection, incident_id: int, alert: Alert, stamp: str, keep_status: bool) -> None:
    """Insert the alert or update its row; `keep_status`: a late repeat into a closed incident keeps it resolved."""
    con.execute(
        "INSERT INTO alerts (incident_id, fingerprint, status, alertname, service, labels, annotations, starts_at, "
        "ends_at, first_received, last_received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (incident_id, fingerprint) DO UPDATE SET "
        "status = CASE WHEN ? AND alerts.status = 'resolved' THEN 'resolved' ELSE excluded.status END, "
        "labels = excluded.labels, annotations = excluded.annotations, starts_at = excluded.starts_at, "
        "ends_at = excluded.ends_at, last_received = excluded.last_received, receipts = receipts + 1",
        (incident_id, alert.fingerprint, alert.status, alert.labels.get("alertname"), alert.service,
         json.dumps(alert.labels, sort_keys=True), json.dumps(alert.annotations, sort_keys=True),
         _iso(alert.starts_at), _iso(alert.ends_at), stamp, stamp, keep_status))


def _refresh_incident(con: sqlite3.Connection, incident_id: int, note: Notification, stamp: str) -> None:
    """Count the notification, keep the largest truncation seen, and close the incident when nothing fires."""
    firing = con.execute("SELECT count(*) FROM alerts WHERE incident_id = ? AND status = 'firing'",
                         (incident_id,)).fetchone()[0]
    con.execute("UPDATE incidents SET notifications = notifications + 1, updated_at = ?, "
                "truncated_alerts = max(truncated_alerts, ?) WHERE id = ?", (stamp, note.truncated_alerts, incident_id))
    # A closed incident stays closed: the group's next firing is a new incident. With alerts left out (`max_alerts`)
    # those shown can all be resolved while the group still fires: its status says so.
    if not firing and (note.status == "resolved" or not note.truncated_alerts):
        con.execute("UPDATE incidents SET status = 'resolved', resolved_at = coalesce(resolved_at, ?) WHERE id = ?",
                    (stamp, incident_id))
