"""The server-rendered UI: log in once with the token (a cookie), or send the bearer header; the incidents list;
an incident page that refreshes while its investigation runs and embeds the review when it is done. The same
pages in headless Chromium are in test_serve_browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from incidentlens.server.app import COOKIE, create_app
from serve_helpers import AUTH, TOKEN, alert, notification, wait_for
from test_serve_api import GatedRunner, make_settings

HTML = {"Accept": "text/html"}


@pytest.fixture
def runner() -> GatedRunner:
    return GatedRunner()


@pytest.fixture
def browser(tmp_path: Path, runner: GatedRunner) -> Iterator[TestClient]:
    """A client with no token, as a browser first arrives."""
    with TestClient(create_app(make_settings(tmp_path), runner=runner)) as client:
        client.post("/api/v1/alerts/alertmanager", headers=AUTH, json=notification("HighErrorRate", [
            alert("fp-1"), {**alert("fp-2", service="payments"), "labels": {
                "alertname": "HighErrorRate", "service": "payments", "pod": "<script>alert(1)</script>"}}]))
        yield client
        runner.release.set()


def test_a_browser_is_sent_to_log_in_and_then_keeps_a_session(browser: TestClient) -> None:
    first = browser.get("/incidents/1", headers=HTML, follow_redirects=False)
    assert (first.status_code, first.headers["location"]) == (303, "/login?next=/incidents/1")
    assert 'name="token"' in browser.get("/login").text

    wrong = browser.post("/login", data={"token": "guess", "next": "/incidents/1"}, follow_redirects=False)
    assert wrong.headers["location"].startswith("/login?failed=1")
    assert COOKIE not in browser.cookies
    assert "That token is not right" in browser.get(wrong.headers["location"]).text

    right = browser.post("/login", data={"token": TOKEN, "next": "/incidents/1"}, follow_redirects=False)
    assert (right.status_code, right.headers["location"]) == (303, "/incidents/1")
    assert TOKEN not in right.headers["set-cookie"] and "HttpOnly" in right.headers["set-cookie"]
    assert "HighErrorRate on checkout" in browser.get("/incidents/1", headers=HTML).text
    assert browser.get("/api/v1/incidents").status_code == 401  # the API takes the bearer token only

    browser.post("/logout")
    assert browser.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_login_never_redirects_off_the_server(browser: TestClient) -> None:
    response = browser.post("/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_ui_pages_take_the_bearer_header(browser: TestClient) -> None:
    page = browser.get("/", headers=AUTH)
    assert page.status_code == 200 and "HighErrorRate on checkout" in page.text
    assert browser.get("/", headers={"Accept": "application/json"}).status_code == 401


def test_the_incident_page_refreshes_while_running_and_embeds_the_review_when_done(browser: TestClient,
                                                                                   runner: GatedRunner) -> None:
    assert runner.started.wait(10)
    running = browser.get("/incidents/1", headers=AUTH).text
    assert '<meta http-equiv="refresh" content="3">' in running
    assert "this page refreshes every 3 s" in running and "<iframe" not in running
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in running and "<script>" not in running  # labels are data

    runner.release.set()
    wait_for(lambda: browser.get("/api/v1/incidents/1", headers=AUTH).json()["investigation"]["state"] == "done")
    done = browser.get("/incidents/1", headers=AUTH)
    assert 'http-equiv="refresh"' not in done.text
    frame = ('<iframe class="review" title="incident review" sandbox="allow-top-navigation-by-user-activation" '
             'srcdoc="&lt;html&gt;&lt;head&gt;&lt;base href=&#34;/incidents/1/&#34; target=&#34;_top&#34;&gt;')
    assert frame in done.text  # the review's own links (evidence.json) point at this incident's files
    assert "script-src" not in done.headers["content-security-policy"]  # no script runs on these pages
    assert browser.get("/incidents/1/report.md", headers=AUTH).status_code == 404  # the stand-in wrote none
    assert browser.get("/incidents/1/secrets.txt", headers=AUTH).status_code == 404  # only the review's files
    assert "stand-in review" in browser.get("/incidents/1/report.html", headers=AUTH).text


def test_the_list_shows_every_incident_with_its_state(browser: TestClient) -> None:
    browser.post("/api/v1/investigations", headers=AUTH, json={"at": "2024-05-01T03:30:00Z", "service": "db"})
    page = browser.get("/", headers=AUTH).text
    assert page.index("Manual investigation at 2024-05-01T03:30:00Z (db)") < page.index("HighErrorRate on checkout")
    assert "2 firing / 2" in page and '<span class="badge queued">queued</span>' in page
    assert browser.get("/incidents/99", headers=AUTH).status_code == 404
