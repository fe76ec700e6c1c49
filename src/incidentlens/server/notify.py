"""Outbound notifications when a review is done: Slack's incoming-webhook JSON or a generic JSON form.

Each delivery is a row in the state DB written together with the finished review, so a failed or interrupted
delivery never loses the review: it is retried with exponential backoff, and what finally happened (delivered, or
failed with the last error) is recorded. The error never carries the URL (a Slack webhook URL is a secret).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx

from incidentlens.server.settings import NotificationTarget, ServeSettings
from incidentlens.server.state import StateDB

logger = logging.getLogger(__name__)


def message(kind: str, incident: dict[str, Any], summary: list[str], link: str) -> dict[str, Any]:
    """The POST body: Slack's `{"text": ...}` (mrkdwn) or the generic form with every field separate."""
    if kind == "slack":
        title, lines = _slack_escaped(incident["title"]), "\n".join(_slack_escaped(line) for line in summary[:10])
        return {"text": f"*IncidentLens review: {title}*\n{lines}\n<{link}|Open the review>"}
    return {"event": "review.done", "incident": {key: incident.get(key) for key in (
            "id", "title", "status", "source", "group_key", "opened_at", "resolved_at")},
            "summary": summary, "link": link, "review_json": f"{link.rsplit('/incidents/', 1)[0]}/api/v1/incidents/"
                                                             f"{incident['id']}/review"}


def _slack_escaped(text: str) -> str:
    """Text from alerts and reviews as Slack shows it literally: `&`, `<`, `>` are its control characters (a
    `<!channel>` in an annotation would notify the whole channel)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def deliver(state: StateDB, settings: ServeSettings, delivery: dict[str, Any], stop: threading.Event) -> str:
    """Send one pending delivery with retries; record and return its final state (delivered or failed)."""
    target = _target(settings, delivery["target"])
    incident = state.get_incident(delivery["incident_id"])
    attempts, error = int(delivery["attempts"]), "no such notification in the settings"
    if target is not None and incident is not None:
        summary = (incident.get("investigation") or {}).get("summary") or []
        body = message(target.kind, incident, summary, f"{settings.base_url()}/incidents/{incident['id']}")
        for attempt in range(settings.notify_attempts):
            if attempt and stop.wait(settings.notify_backoff_s * 2 ** (attempt - 1)):
                break  # shutting down: the delivery stays pending and resumes after the restart
            attempts += 1
            error = _post(target, body)
            if error is None:
                state.record_delivery(delivery["id"], "delivered", attempts, None)
                return "delivered"
            state.record_delivery(delivery["id"], "pending", attempts, error)
        if stop.is_set():
            return "pending"
    logger.warning("notification %s for incident %s failed: %s", delivery["target"], delivery["incident_id"], error)
    state.record_delivery(delivery["id"], "failed", attempts, error)
    return "failed"


def _target(settings: ServeSettings, name: str) -> NotificationTarget | None:
    return next((target for target in settings.notifications if target.name == name), None)


def _post(target: NotificationTarget, body: dict[str, Any]) -> str | None:
    """None when the receiver took it (2xx), else the reason, without the URL."""
    try:
        response = httpx.post(target.resolved_url(), json=body, timeout=10.0)
    except httpx.HTTPError as err:
        return f"{type(err).__name__}"
    except Exception as err:  # a bad URL or a missing environment variable: recorded, never raised
        return f"{type(err).__name__}: {err}"
    if response.is_success:
        return None
    return f"HTTP {response.status_code}"
