"""report.html in a real browser: headless Chromium opens it from disk, offline, and draws every chart.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages separated by NUL
on file descriptors 3 and 4), so the test needs no extra Python package and no browser download. Set
INCIDENTLENS_UPDATE_SCREENSHOT=1 to refresh docs/images/report.png from the screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from incidentlens.report import build_postmortem, write_reports
from test_report_data import metrics_store, pool_exhaustion_analysis

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "report.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-pipe",
         "--hide-scrollbars", "--mute-audio", "about:blank"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless chromium not installed (scripts/install-system-deps.sh "
                                                "installs the Debian package)"),
]

CHARTS_JS = """
(() => [...document.querySelectorAll('svg')].map(svg => {
  const box = svg.getBoundingClientRect();
  const shapes = [...svg.querySelectorAll('path, rect, circle')].filter(el => {
    const b = el.getBBox(); return b.width > 0 || b.height > 0;
  });
  return {label: svg.getAttribute('aria-label'), width: box.width, height: box.height, shapes: shapes.length,
          paths: [...svg.querySelectorAll('path')].filter(p => p.getTotalLength() > 0).length};
}))()
"""


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        def wire_fds() -> None:  # in the child: Chromium reads commands on fd 3 and writes replies on fd 4
            commands, replies = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w))
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        # close_fds=False: the child keeps only inheritable fds, which are stdio and the two dup2 made
        self.process = subprocess.Popen([CHROMIUM, f"--user-data-dir={profile}", *FLAGS], preexec_fn=wire_fds,
                                        close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == self._next_id, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        seen = next((e for e in self.events if e.get("method") == method), None)
        return seen or self._wait(lambda m: m.get("method") == method, timeout)

    def _wait(self, wanted, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return message
            readable, _, _ = select.select([self._from_chrome], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                break
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the debugging pipe")
            self._buffer += chunk
        raise TimeoutError("no reply from chromium")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory):
    """report.html loaded in headless Chromium: the browser, its page session, and the report's URL."""
    out = tmp_path_factory.mktemp("browser")
    analysis = pool_exhaustion_analysis()
    analysis["templates"][0]["samples"].append("Request failed: <script>alert(1)</script>")
    html = write_reports(build_postmortem(analysis), out / "report", store=metrics_store())["html"]
    browser = DevTools(out / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False}, session=session)
        url = html.resolve().as_uri()
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_event("Page.loadEventFired")
        yield browser, session, url, out
    finally:
        browser.close()


def test_the_page_loads_offline_with_no_console_errors(opened):
    browser, session, url, _ = opened
    browser.send("Runtime.evaluate", {"expression": "1"}, session=session)  # flush pending events
    errors = [e for e in browser.events if e["method"] in ("Runtime.exceptionThrown",)
              or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []
    requested = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"]
    assert requested == [url]  # the report itself, nothing else: no fonts, no scripts, no images


def test_the_log_line_stays_text(opened):
    browser, session, _, _ = opened
    result = browser.send("Runtime.evaluate", {"expression": "document.scripts.length", "returnByValue": True},
                          session=session)
    assert result["result"]["value"] == 0
    shown = browser.send("Runtime.evaluate", {"expression": "document.body.innerText.includes('<script>alert(1)')",
                                              "returnByValue": True}, session=session)
    assert shown["result"]["value"] is True


def test_every_chart_renders_with_size_and_shapes(opened):
    browser, session, _, _ = opened
    charts = browser.send("Runtime.evaluate", {"expression": CHARTS_JS, "returnByValue": True},
                          session=session)["result"]["value"]
    labels = [c["label"] for c in charts]
    assert labels.count("top contributors") == 1 and labels.count("timeline") == 1
    assert sum(1 for label in labels if label.endswith("over time")) == 3
    for chart in charts:
        assert chart["width"] > 200 and chart["height"] > 40, chart
        assert chart["shapes"] >= 2, chart
    assert all(c["paths"] >= 2 for c in charts if c["label"].endswith("over time"))


def test_screenshot(opened):
    browser, session, _, out = opened
    height = browser.send("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                               "returnByValue": True}, session=session)["result"]["value"]
    shot = browser.send("Page.captureScreenshot",
                        {"format": "png", "captureBeyondViewport": True,
                         "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, 2000), "scale": 1}},
                        session=session)
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG") and 20_000 < len(png) < 500_000
    (out / "report.png").write_bytes(png)
    if os.environ.get("INCIDENTLENS_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(png)
