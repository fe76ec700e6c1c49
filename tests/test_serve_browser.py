"""The server's UI in headless Chromium, against `incidentlens serve` in a subprocess: the browser is sent to log in,
logs in once with the token, sees the incidents, and an incident page opened while its investigation runs
refreshes by itself until the review appears embedded. Set INCIDENTLENS_UPDATE_SCREENSHOT=1 to refresh the
README's screenshots docs/images/serve-incidents.png and docs/images/serve-incident.png."""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serve_helpers import TOKEN, alert, notification, running_server, source_args, wait_for
from test_browser import CHROMIUM, DevTools

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="headless chromium not installed (scripts/install-system-deps.sh "
                                                "installs the Debian package)"),
]


class Tab:
    """One browser tab driven over the DevTools protocol."""

    def __init__(self, browser: DevTools) -> None:
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=self.session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=self.session)

    def go(self, url: str) -> None:
        self.browser.send("Page.navigate", {"url": url}, session=self.session)
        self.settle()

    def settle(self) -> None:
        """Wait until the document (after any redirect or form post) has loaded."""
        wait_for(lambda: self._eval_quietly("document.readyState") == "complete", timeout=30, interval=0.1)

    def evaluate(self, expression: str) -> Any:
        return self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                 session=self.session)["result"].get("value")

    def _eval_quietly(self, expression: str) -> Any:
        with contextlib.suppress(RuntimeError, TimeoutError):
            return self.evaluate(expression)
        return None

    def frame_text(self) -> str:
        """The text of the sandboxed review frame. Chromium runs a sandboxed frame in a process of its own (a
        target of type iframe): attach to it and read its document there."""
        frames = [t for t in self.browser.send("Target.getTargets")["targetInfos"]
                  if t["type"] == "iframe" and t["url"] == "about:srcdoc"]
        assert len(frames) == 1, frames
        session = self.browser.send("Target.attachToTarget", {"targetId": frames[0]["targetId"],
                                                              "flatten": True})["sessionId"]
        reply = self.browser.send("Runtime.evaluate", {"expression": "document.body.innerText",
                                                       "returnByValue": True}, session=session)
        return reply["result"]["value"]

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.browser.events if e["method"] == "Runtime.exceptionThrown"
                or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]

    def screenshot(self, path: Path, max_height: int) -> None:
        height = self.evaluate("document.documentElement.scrollHeight")
        shot = self.browser.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, max_height), "scale": 1}},
            session=self.session)
        path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def tab(tmp_path: Path) -> Iterator[Tab]:
    browser = DevTools(tmp_path / "profile")
    try:
        yield Tab(browser)
    finally:
        browser.close()


def test_a_browser_logs_in_once_and_watches_an_investigation_finish(scenario_dir, tmp_path: Path, tab: Tab) -> None:
    data = scenario_dir("db-pool-exhaustion", hours=6, logs=5000)
    args = [*source_args(data), "--state", str(tmp_path / "state"), "--llm", "offline", "--workers", "1"]
    with running_server(args, tmp_path / "server.log") as server:
        hook = "/api/v1/alerts/alertmanager"
        server.client.post(hook, json=notification("HighErrorRate", [
            alert("fp-1"), alert("fp-2", service="payments")], truncated=0))
        tab.go(f"{server.url}/incidents/1")
        assert tab.evaluate("location.pathname") == "/login"  # no session yet
        tab.evaluate(f"document.querySelector('#token').value = {TOKEN!r}; document.querySelector('form').submit()")
        tab.settle()
        assert tab.evaluate("location.pathname") == "/incidents/1"
        # read between the page's self-reloads (every 3 s): mid-reload the document has no badge yet
        badge = "document.querySelector('#investigation-state .badge')?.textContent"
        state = wait_for(lambda: tab._eval_quietly(badge), timeout=10, interval=0.1)
        assert state in ("queued", "running")  # the page was opened before the review existed ...

        began = time.monotonic()  # ... and reloads itself every 3 s until it does
        wait_for(lambda: tab._eval_quietly("!!document.querySelector('iframe.review')"), timeout=120, interval=0.5)
        tab.settle()
        assert time.monotonic() - began < 120
        review = tab.frame_text()
        assert "Database connection pool exhaustion in db-proxy" in review
        assert tab.evaluate("document.querySelector('iframe.review').getBoundingClientRect().height") > 1000
        assert tab.evaluate("document.querySelector('#investigation-state .badge').textContent") == "done"

        # more incidents for the list: a second group, resolved, and a manual start
        server.client.post(hook, json=notification("DiskAlmostFull", [
            alert("fp-9", alertname="DiskAlmostFull", service="db", starts_at="2024-05-01T01:00:00Z")]))
        server.client.post(hook, json=notification("DiskAlmostFull", [
            alert("fp-9", status="resolved", alertname="DiskAlmostFull", service="db",
                  starts_at="2024-05-01T01:00:00Z", ends_at="2024-05-01T01:20:00Z")]))
        server.client.post("/api/v1/investigations", json={"at": "2024-05-01T03:30:00Z", "service": "payments"})
        tab.go(f"{server.url}/")  # the cookie is kept: no second log-in
        assert tab.evaluate("location.pathname") == "/"
        rows = tab.evaluate("[...document.querySelectorAll('#incidents tbody tr')].map(r => r.innerText)")
        assert len(rows) == 3 and "HighErrorRate on checkout" in rows[2] and "resolved" in rows[1]
        assert not tab.errors(), tab.errors()  # no CSP violation, no script error

        if os.environ.get("INCIDENTLENS_UPDATE_SCREENSHOT"):
            wait_for(lambda: all(i["investigation"]["state"] == "done" for i in
                                 server.client.get("/api/v1/incidents").json()["incidents"]), timeout=120)
            tab.go(f"{server.url}/")
            tab.screenshot(IMAGES / "serve-incidents.png", max_height=420)
            tab.go(f"{server.url}/incidents/1")
            tab.screenshot(IMAGES / "serve-incident.png", max_height=1500)
