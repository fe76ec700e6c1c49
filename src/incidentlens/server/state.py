"""The server's state: one SQLite file in `--state DIR` (incidents, alerts, investigations, deliveries) plus the
review files under `DIR/reviews/<incident id>/`.

Every write is one transaction committed before the caller answers, so an accepted alert survives a `kill -9`
(WAL journal: a committed transaction is in the log file, which the next open replays). One connection serves
all threads behind a lock: the writes are a few rows each, far cheaper than the HTTP around them.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from incidentlens.errors import InputError

DB_NAME = "incidentlens.sqlite"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
MAX_ID = 2**63 - 1  # SQLite's largest INTEGER: a larger id in a URL is no incident, not an OverflowError

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    group_key TEXT,                 -- Alertmanager's groupKey; NULL for a manual investigation
    title TEXT NOT NULL,
    status TEXT NOT NULL,           -- firing | resolved (alerts); open (a manual start)
    source TEXT NOT NULL,           -- alertmanager | manual
    receiver TEXT,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    resolved_at TEXT,
    truncated_alerts INTEGER NOT NULL DEFAULT 0,  -- the largest truncatedAlerts any notification reported
    notifications INTEGER NOT NULL DEFAULT 0      -- webhook notifications received for it (repeats included)
);
CREATE INDEX IF NOT EXISTS incidents_group ON incidents(group_key, status);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,           -- firing | resolved (alerts); open (a manual start)
    alertname TEXT,
    service TEXT,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    first_received TEXT NOT NULL,
    last_received TEXT NOT NULL,
    receipts INTEGER NOT NULL DEFAULT 1,
    UNIQUE (incident_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS alerts_fingerprint ON alerts(fingerprint);
CREATE TABLE IF NOT EXISTS investigations (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL UNIQUE REFERENCES incidents(id),
    state TEXT NOT NULL,            -- queued | running | done | failed
    at TEXT NOT NULL,               -- the alert time handed to the investigation (--at)
    service TEXT,                   -- the alert's service label: a hint, not a conclusion
    reason TEXT,                    -- why it failed
    attempts INTEGER NOT NULL DEFAULT 0,
    queued_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    review_dir TEXT,
    summary TEXT                    -- the executive summary lines, JSON
);
CREATE INDEX IF NOT EXISTS investigations_state ON investigations(state, id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    target TEXT NOT NULL,           -- the notification's name
    kind TEXT NOT NULL,             -- slack | json
    state TEXT NOT NULL,            -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at TEXT NOT NULL
);
"""


def now_iso() -> str:
    """The current time as ISO-8601 UTC with a Z (millisecond precision)."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class StateDB:
    """The SQLite state file: thread-safe, each public method one transaction."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "reviews").mkdir(exist_ok=True)
        except OSError as err:
            raise InputError(f"--state {self.dir}: cannot create the state directory ({err.strerror})") from err
        self.path = self.dir / DB_NAME
        try:
            self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._con.row_factory = sqlite3.Row
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process crash
            # No checkpoint inside an intake's commit (its fsync stalled every request behind it): `checkpoint()`
            # runs on a connection of its own, from the worker pool's maintenance thread.
            self._con.execute("PRAGMA wal_autocheckpoint=0")
            self._con.execute("PRAGMA foreign_keys=ON")
            self._con.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:
            raise InputError(f"--state {self.path}: not a usable SQLite state file ({err})") from err
        self._lock = threading.RLock()

    @classmethod
    def existing(cls, state_dir: Path) -> StateDB:
        """The state a server keeps in `state_dir`, for a reader (`incidentlens mcp --state`): InputError when there
        is none, rather than a new empty one made in a mistyped directory that then lists no incidents."""
        if not (Path(state_dir) / DB_NAME).is_file():
            raise InputError(f"--state {state_dir}: no IncidentLens state here ({DB_NAME} not found); give the "
                             "directory `incidentlens serve --state` uses")
        return cls(state_dir)

    def checkpoint(self) -> None:
        """Copy the log's committed pages into the database file. PASSIVE, on a connection of its own: it never
        blocks a writer, and a reader only keeps it from finishing (the next call goes on)."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=1)) as con:
            con.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on an exception."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._con.execute(sql, params).fetchall()]

    def review_dir(self, incident_id: int) -> Path:
        return self.dir / "reviews" / str(incident_id)

    # --- investigations -------------------------------------------------------------------------------------
    def add_investigation(self, con: sqlite3.Connection, incident_id: int, at: str, service: str | None) -> None:
        """Queue the incident's investigation (inside the caller's transaction)."""
        con.execute("INSERT INTO investigations (incident_id, state, at, service, queued_at) VALUES (?, ?, ?, ?, ?)",
                    (incident_id, QUEUED, at, service, now_iso()))

    def open_manual_incident(self, at: str, service: str | None) -> int:
        """A manual investigation: an incident of its own, its investigation queued."""
        title = f"Manual investigation at {at}" + (f" ({service})" if service else "")
        with self.transaction() as con:
            stamp = now_iso()
            incident_id = con.execute(
                "INSERT INTO incidents (title, status, source, opened_at, updated_at) VALUES (?, 'open', "
                "'manual', ?, ?)", (title, stamp, stamp)).lastrowid
            self.add_investigation(con, incident_id, at, service)
        return int(incident_id)

    def count_queued(self) -> int:
        return int(self.query("SELECT count(*) AS n FROM investigations WHERE state = ?", (QUEUED,))[0]["n"])

    def requeue_unfinished(self) -> int:
        """After a restart: investigations left running by a killed process go back to the queue."""
        with self.transaction() as con:
            return con.execute("UPDATE investigations SET state = ?, started_at = NULL WHERE state = ?",
                               (QUEUED, RUNNING)).rowcount

    def claim_next(self) -> dict[str, Any] | None:
        """Take the oldest queued investigation and mark it running; None when the queue is empty."""
        with self.transaction() as con:
            row = con.execute("SELECT * FROM investigations WHERE state = ? ORDER BY id LIMIT 1", (QUEUED,)).fetchone()
            if row is None:
                return None
            con.execute("UPDATE investigations SET state = ?, started_at = ?, attempts = attempts + 1 WHERE id = ?",
                        (RUNNING, now_iso(), row["id"]))
        return {**dict(row), "state": RUNNING}

    def finish(self, investigation_id: int, review_dir: Path, summary: list[str],
               targets: list[tuple[str, str]]) -> None:
        """Done: the review is on disk; the deliveries to send are recorded in the same transaction."""
        with self.transaction() as con:
            con.execute("UPDATE investigations SET state = ?, finished_at = ?, review_dir = ?, summary = ?, "
                        "reason = NULL WHERE id = ?", (DONE, now_iso(), str(review_dir), json.dumps(summary),
                                                       investigation_id))
            incident_id = con.execute("SELECT incident_id FROM investigations WHERE id = ?",
                                      (investigation_id,)).fetchone()[0]
            con.executemany("INSERT INTO deliveries (incident_id, target, kind, state, updated_at) VALUES "
                            "(?, ?, ?, 'pending', ?)", [(incident_id, name, kind, now_iso()) for name, kind in targets])

    def fail(self, investigation_id: int, reason: str) -> None:
        with self.transaction() as con:
            con.execute("UPDATE investigations SET state = ?, finished_at = ?, reason = ? WHERE id = ?",
                        (FAILED, now_iso(), reason, investigation_id))

    # --- deliveries ------------------------------------------------------------------------------------------
    def pending_deliveries(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM deliveries WHERE state = 'pending' ORDER BY id")

    def record_delivery(self, delivery_id: int, state: str, attempts: int, error: str | None) -> None:
        with self.transaction() as con:
            con.execute("UPDATE deliveries SET state = ?, attempts = ?, last_error = ?, updated_at = ? WHERE id = ?",
                        (state, attempts, error, now_iso(), delivery_id))

    # --- reads -----------------------------------------------------------------------------------------------
    def list_incidents(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT i.*, (SELECT count(*) FROM alerts a WHERE a.incident_id = i.id) AS alert_count, "
            "(SELECT count(*) FROM alerts a WHERE a.incident_id = i.id AND a.status = 'firing') AS firing_count, "
            "v.state AS investigation_state, v.reason AS investigation_reason "
            "FROM incidents i LEFT JOIN investigations v ON v.incident_id = i.id ORDER BY i.id DESC LIMIT ?",
            (limit,))
        return [_incident_row(row) for row in rows]

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        if not 0 < incident_id <= MAX_ID:
            return None
        rows = self.query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        if not rows:
            return None
        incident = _incident_row(rows[0])
        incident["alerts"] = [_alert_row(row) for row in self.query(
            "SELECT * FROM alerts WHERE incident_id = ? ORDER BY id", (incident_id,))]
        investigation = self.query("SELECT * FROM investigations WHERE incident_id = ?", (incident_id,))
        incident["investigation"] = _investigation_row(investigation[0]) if investigation else None
        incident["deliveries"] = self.query(
            "SELECT target, kind, state, attempts, last_error, updated_at FROM deliveries WHERE incident_id = ? "
            "ORDER BY id", (incident_id,))
        return incident

    def review_path(self, incident_id: int, name: str) -> Path | None:
        """A finished review's file (report.json, report.html, report.md), None until the review is done."""
        if not 0 < incident_id <= MAX_ID:
            return None
        rows = self.query("SELECT review_dir FROM investigations WHERE incident_id = ? AND state = ?",
                          (incident_id, DONE))
        if not rows:
            return None
        path = Path(rows[0]["review_dir"]) / name
        return path if path.is_file() else None


def _incident_row(row: dict[str, Any]) -> dict[str, Any]:
    incident = {key: row[key] for key in ("id", "title", "status", "source", "group_key", "receiver", "opened_at",
                                          "updated_at", "resolved_at", "truncated_alerts", "notifications")}
    if "alert_count" in row:
        incident["alert_count"] = row["alert_count"]
        incident["firing_count"] = row["firing_count"]
        incident["investigation"] = {"state": row["investigation_state"], "reason": row["investigation_reason"]}
    return incident


def _alert_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**{key: row[key] for key in ("fingerprint", "status", "alertname", "service", "starts_at", "ends_at",
                                         "first_received", "last_received", "receipts")},
            "labels": json.loads(row["labels"]), "annotations": json.loads(row["annotations"])}


def _investigation_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**{key: row[key] for key in ("state", "at", "service", "reason", "attempts", "queued_at", "started_at",
                                         "finished_at")},
            "summary": json.loads(row["summary"]) if row["summary"] else None}
