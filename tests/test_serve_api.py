"""`incidentlens serve`'s HTTP API, in process: Alertmanager intake, manual starts, background investigations,
the read API and the outbound webhooks. The server binary, kill -9 and the real Alertmanager are in
test_serve_process.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fake_openai import FakeOpenAI, replay_planner
from incidentlens.server.app import create_app
from incidentlens.server.notify import message
from incidentlens.server.settings import ServeSettings, build_settings
from incidentlens.server.worker import run_investigation
from serve_helpers import ALERT_TIME, AUTH, TOKEN, alert, notification, wait_for

WEBHOOK = "/api/v1/alerts/alertmanager"


class GatedRunner:
    """Stands in for the investigation: waits until released, then writes a review file (fast tests of the
    server's own behaviour; the real investigation runs in test_an_alert_is_investigated_into_a_review)."""

    def __init__(self, fail: str | None = None) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.jobs: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, settings: ServeSettings, job: dict[str, Any], out: Path) -> list[str]:
        self.jobs.append(job)
        self.started.set()
        assert self.release.wait(30), "the test never released the investigation"
        if self.fail:
            raise RuntimeError(self.fail)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps({"title": "stand-in review", "at": job["at"]}))
        (out / "report.html").write_text("<html><head></head><body><h1>stand-in review</h1></body></html>")
        return [f"stand-in review of the alert at {job['at']}"]


def make_settings(tmp_path: Path, data: Path | None = None, **extra: Any) -> ServeSettings:
    sources = {"metrics": [str(data / "metrics.csv")], "logs": [str(data / "logs.csv")],
               "events": [str(data / "events.csv")]} if data else {"metrics": [str(tmp_path / "none.csv")]}
    return build_settings(None, {**sources, "state": tmp_path / "state", "token": TOKEN, "llm": "offline", **extra})


@pytest.fixture
def runner() -> Iterator[GatedRunner]:
    gated = GatedRunner()
    yield gated
    gated.release.set()


@pytest.fixture
def client(tmp_path: Path, runner: GatedRunner) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path), runner=runner), headers=AUTH) as test_client:
        yield test_client
        runner.release.set()  # let a held investigation end before the server stops


def incidents(client: TestClient) -> list[dict[str, Any]]:
    return client.get("/api/v1/incidents").json()["incidents"]


def test_healthz_is_open_and_every_other_endpoint_needs_the_token(client: TestClient) -> None:
    assert client.get("/healthz", headers={"Authorization": ""}).json()["status"] == "ok"
    for method, path in [("post", WEBHOOK), ("post", "/api/v1/investigations"), ("get", "/api/v1/incidents"),
                         ("get", "/api/v1/incidents/1"), ("get", "/api/v1/incidents/1/review"), ("post", "/mcp")]:
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
            response = client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_firing_group_opens_one_incident_and_repeats_open_no_more(client: TestClient) -> None:
    body = notification("HighErrorRate", [alert("fp-1")])
    first = client.post(WEBHOOK, json=body)
    assert first.status_code == 200 and first.json()["opened"] == [1]
    for _ in range(3):  # Alertmanager re-sends the group every repeat_interval
        assert client.post(WEBHOOK, json=body).json()["opened"] == []
    [incident] = incidents(client)
    assert (incident["status"], incident["alert_count"], incident["notifications"]) == ("firing", 1, 4)
    detail = client.get("/api/v1/incidents/1").json()
    assert detail["alerts"][0]["receipts"] == 4
    assert detail["alerts"][0]["labels"]["service"] == "checkout"
    assert detail["title"] == "HighErrorRate on checkout: checkout 5xx above 5%"
    assert detail["investigation"]["at"] == "2024-05-01T03:10:00.000Z"
    assert detail["investigation"]["service"] == "checkout"


def test_the_investigation_starts_at_the_groups_earliest_alert(client: TestClient) -> None:
    """Alertmanager lists a group's alerts by their labels, not by time: the first to fire is the earliest start."""
    client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1", starts_at="2024-05-01T03:12:00Z"),
                                                             alert("fp-2", service="payments")]))
    investigation = client.get("/api/v1/incidents/1").json()["investigation"]
    assert (investigation["at"], investigation["service"]) == (f"{ALERT_TIME[:-1]}.000Z", "payments")


def test_alerts_join_their_group_and_the_incident_closes_when_all_resolve(client: TestClient) -> None:
    client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1")]))
    client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1"), alert("fp-2", service="payments")]))
    client.post(WEBHOOK, json=notification("DiskFull", [alert("fp-9", alertname="DiskFull", service="db")]))
    assert [(i["id"], i["alert_count"]) for i in incidents(client)] == [(2, 1), (1, 2)]

    resolved_one = notification("HighErrorRate", [alert("fp-1", status="resolved", ends_at="2024-05-01T04:20:00Z"),
                                                  alert("fp-2", service="payments")])
    client.post(WEBHOOK, json=resolved_one)
    detail = client.get("/api/v1/incidents/1").json()
    assert [a["status"] for a in detail["alerts"]] == ["resolved", "firing"]
    assert detail["alerts"][0]["ends_at"] == "2024-05-01T04:20:00.000Z"
    assert detail["status"] == "firing" and detail["resolved_at"] is None

    all_resolved = notification("HighErrorRate", [alert("fp-1", status="resolved"),
                                                  alert("fp-2", status="resolved", service="payments")])
    client.post(WEBHOOK, json=all_resolved)
    assert client.get("/api/v1/incidents/1").json()["status"] == "resolved"
    client.post(WEBHOOK, json=all_resolved)  # a repeat of the resolved notification
    client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1")]))  # a late firing repeat: same start
    assert client.get("/api/v1/incidents/1").json()["status"] == "resolved"
    assert len(incidents(client)) == 2

    refired = notification("HighErrorRate", [alert("fp-1", starts_at="2024-05-01T09:00:00Z")])
    assert client.post(WEBHOOK, json=refired).json()["opened"] == [3]  # a new episode: a new incident


def test_a_late_repeat_of_a_closed_episode_leaves_the_groups_next_episode_firing(client: TestClient) -> None:
    """An HA Alertmanager pair or a retried delivery can bring the old episode's `resolved` after the group fired
    again: it belongs to the old incident (same fingerprint and start), not to the new one firing."""
    resolved = notification("HighErrorRate", [alert("fp-1", status="resolved", ends_at="2024-05-01T04:20:00Z")])
    client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1")]))
    client.post(WEBHOOK, json=resolved)
    client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1", starts_at="2024-05-01T06:00:00Z")]))
    client.post(WEBHOOK, json=resolved)  # late
    assert [(i["id"], i["status"]) for i in incidents(client)] == [(2, "firing"), (1, "resolved")]
    [again] = client.get("/api/v1/incidents/2").json()["alerts"]
    assert (again["status"], again["starts_at"]) == ("firing", "2024-05-01T06:00:00.000Z")


def test_an_incident_id_past_sqlites_integers_is_not_found(client: TestClient) -> None:
    huge = 10**30
    for path in (f"/api/v1/incidents/{huge}", f"/api/v1/incidents/{huge}/review", f"/incidents/{huge}",
                 f"/incidents/{huge}/report.json"):
        assert client.get(path).status_code == 404, path


def test_alert_times_without_a_zone_are_utc(client: TestClient) -> None:
    client.post(WEBHOOK, json=notification("G", [alert("fp", starts_at="2024-05-01T03:10:00",
                                                     ends_at="2024-05-01T04:20:00")]))
    [stored] = client.get("/api/v1/incidents/1").json()["alerts"]
    assert (stored["starts_at"], stored["ends_at"]) == ("2024-05-01T03:10:00.000Z", "2024-05-01T04:20:00.000Z")


def test_a_group_still_firing_keeps_its_incident_open_when_the_alerts_shown_resolved(client: TestClient) -> None:
    """With `max_alerts`, Alertmanager shows the first alerts by labels: those shown can all be resolved while the
    group, past the truncation, still fires (its `status`)."""
    client.post(WEBHOOK, json=notification("Flood", [alert("fp-1")], truncated=3))
    shown_resolved = notification("Flood", [alert("fp-1", status="resolved")], truncated=3)
    client.post(WEBHOOK, json={**shown_resolved, "status": "firing"})
    assert client.get("/api/v1/incidents/1").json()["status"] == "firing"
    client.post(WEBHOOK, json=shown_resolved)
    assert client.get("/api/v1/incidents/1").json()["status"] == "resolved"


def test_truncated_alerts_are_recorded(client: TestClient) -> None:
    client.post(WEBHOOK, json=notification("Flood", [alert("fp-1")], truncated=37))
    client.post(WEBHOOK, json=notification("Flood", [alert("fp-1")], truncated=12))
    assert client.get("/api/v1/incidents/1").json()["truncated_alerts"] == 37


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{not json", 400, "not JSON"),
    (b"[1, 2]", 422, "JSON object"),
    (json.dumps({"status": "firing", "alerts": [alert("fp")]}).encode(), 422, "groupKey"),
    (json.dumps(notification("G", [])).encode(), 422, "alerts"),
    (json.dumps({**notification("G", [alert("fp")]), "version": "3"}).encode(), 422, "version '3'"),
    (json.dumps(notification("G", [{**alert("fp"), "startsAt": "yesterday"}])).encode(), 422, "alerts.0.startsAt"),
    (json.dumps(notification("G", [{**alert("fp"), "labels": {"n": 1}}])).encode(), 422, "alerts.0.labels.n"),
    (json.dumps(notification("G", [{**alert("fp"), "fingerprint": ""}])).encode(), 422, "fingerprint"),
    (json.dumps({**notification("G", [alert("fp")]), "status": "pending"}).encode(), 422, "status"),
    (b"\xff\xfe", 400, "not JSON"),
    (b'{"a": ' * 100_000, 400, "nested too deeply"),
    (json.dumps(notification("G", [{**alert("fp"), "startsAt": "0001-01-01T00:00:00Z"}])).encode(), 422,
     "alerts.0.startsAt"),
])
def test_a_malformed_body_gets_400_or_422_with_the_reason(client: TestClient, body: bytes, status: int,
                                                          reason: str) -> None:
    response = client.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert incidents(client) == []


def test_a_body_past_the_cap_gets_413_before_it_is_read_whole(client: TestClient,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("incidentlens.server.app.MAX_BODY_BYTES", 1000)
    body = json.dumps(notification("Big", [alert(f"fp-{i}") for i in range(40)])).encode()
    response = client.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "the body is over" in response.json()["detail"]
    chunked = client.post(WEBHOOK, content=iter([body[:600], body[600:]]),  # no Content-Length: counted as read
                          headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert incidents(client) == []


def test_a_manual_start_queues_an_investigation_and_a_full_queue_says_429(tmp_path: Path,
                                                                         runner: GatedRunner) -> None:
    settings = make_settings(tmp_path, queue_size=2)
    with TestClient(create_app(settings, runner=runner), headers=AUTH) as client:
        started = client.post("/api/v1/investigations", json={"at": "2024-05-01T05:10:00+02:00", "service": "db"})
        assert started.status_code == 202 and started.json()["incident_id"] == 1
        assert runner.started.wait(10)  # the first runs; the next two wait in the queue
        assert runner.jobs[0]["at"] == "2024-05-01T03:10:00Z" and runner.jobs[0]["service"] == "db"
        for _ in range(2):
            assert client.post("/api/v1/investigations", json={"at": ALERT_TIME}).status_code == 202
        full = client.post("/api/v1/investigations", json={"at": ALERT_TIME})
        assert full.status_code == 429 and "queue is full (2 queued)" in full.json()["detail"]
        assert client.post("/api/v1/investigations", json={"at": "soon"}).status_code == 422
        assert "at" in client.post("/api/v1/investigations", json={}).json()["detail"]
        runner.release.set()
        wait_for(lambda: all(i["investigation"]["state"] == "done" for i in incidents(client)))
        assert client.get("/api/v1/incidents/1").json()["title"] == "Manual investigation at 2024-05-01T03:10:00Z (db)"


def test_the_intake_never_waits_on_an_investigation(client: TestClient, runner: GatedRunner) -> None:
    client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1")]))
    assert runner.started.wait(10)
    assert client.get("/api/v1/incidents/1").json()["investigation"]["state"] == "running"
    assert client.get("/api/v1/incidents/1/review").status_code == 404
    begun = time.perf_counter()
    for number in range(20):  # the only worker is busy: every intake still answers at once
        assert client.post(WEBHOOK, json=notification(f"Group{number}", [alert(f"fp-{number}")])).status_code == 200
    assert time.perf_counter() - begun < 2.0
    assert {i["investigation"]["state"] for i in incidents(client)} == {"running", "queued"}
    assert "running" in client.get("/api/v1/incidents/1/review").json()["detail"]
    runner.release.set()
    wait_for(lambda: client.get("/api/v1/incidents/1/review").status_code == 200)
    assert client.get("/api/v1/incidents/1/review").json()["title"] == "stand-in review"


def test_a_failed_investigation_is_recorded_with_its_reason(tmp_path: Path) -> None:
    runner = GatedRunner(fail="ClickHouse refused the query")
    runner.release.set()
    with TestClient(create_app(make_settings(tmp_path), runner=runner), headers=AUTH) as client:
        client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1")]))
        state = wait_for(lambda: client.get("/api/v1/incidents/1").json()["investigation"]["state"] == "failed")
        assert state
        detail = client.get("/api/v1/incidents/1").json()["investigation"]
        assert detail["reason"] == "RuntimeError: ClickHouse refused the query"
        assert client.get("/api/v1/incidents/1/review").status_code == 404


def test_missing_telemetry_fails_the_investigation_naming_the_file(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path)), headers=AUTH) as client:  # the real investigation
        client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1")]))
        wait_for(lambda: client.get("/api/v1/incidents/1").json()["investigation"]["state"] == "failed")
        assert "none.csv" in client.get("/api/v1/incidents/1").json()["investigation"]["reason"]


def test_an_alert_is_investigated_into_a_review(tmp_path: Path, scenario_dir,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The real investigation, with a model served over HTTP (the offline planner behind a fake OpenAI server), so
    the coordinator's brief can be read: it carries the alert's time and its service label as a lead."""
    data = scenario_dir("db-pool-exhaustion", hours=6, logs=5000)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI(replay_planner) as fake:
        settings = make_settings(tmp_path, data, llm="openai-compatible", model="scripted", llm_url=fake.url)
        with TestClient(create_app(settings), headers=AUTH) as client:
            client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1", service="checkout")]))
            wait_for(lambda: client.get("/api/v1/incidents/1").json()["investigation"]["state"] in ("done", "failed"),
                     timeout=120)
            investigation = client.get("/api/v1/incidents/1").json()["investigation"]
            assert investigation["state"] == "done", investigation["reason"]
            review = client.get("/api/v1/incidents/1/review").json()
    brief = fake.requests[0]["messages"][-1]["content"]
    assert "near 2024-05-01T03:10:00Z" in brief
    assert "The alert names the service 'checkout': a lead to test" in brief
    truth = json.loads((data / "truth.json").read_text())
    assert review["root_cause"]["service"] == truth["root_cause"]["service"] == "db-proxy"
    assert investigation["summary"][0].endswith("Database connection pool exhaustion in db-proxy")
    files = settings.state / "reviews" / "1"
    assert {path.name for path in files.iterdir()} >= {"report.json", "report.md", "report.html", "trace.jsonl"}


def test_an_alert_after_the_data_says_so_in_the_summary(tmp_path: Path, scenario_dir,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A review of the window nearest an alert days after the data (an export lagging the alerts) reads like the
    alert's own unless the summary's first line says so: the API, the UI and Slack show that summary."""
    import incidentlens.agents
    import incidentlens.report

    monkeypatch.setattr(incidentlens.agents, "investigate", lambda store, **_: SimpleNamespace(postmortem={}))
    monkeypatch.setattr(incidentlens.report, "write_reports", lambda *_, **__: None)
    monkeypatch.setattr(incidentlens.report, "executive_summary", lambda _: ["SEV2 (draft): the nearest incident"])
    settings = make_settings(tmp_path, scenario_dir("db-pool-exhaustion", hours=6, logs=5000))
    inside = run_investigation(settings, {"at": ALERT_TIME}, tmp_path / "inside")
    later = run_investigation(settings, {"at": "2024-05-09T03:10:00Z"}, tmp_path / "later")
    assert inside == ["SEV2 (draft): the nearest incident"]
    assert later[0].startswith("Note: the alert time 2024-05-09T03:10:00Z lies outside the data "
                               "(2024-05-01T00:00:00Z .. ")
    assert later[1:] == inside


class Receiver:
    """A webhook receiver on loopback that fails the first `failures` requests with 500."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(500 if len(receiver.bodies) <= receiver.failures else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_done_review_is_posted_to_slack_and_json_webhooks_with_retries(tmp_path: Path, runner: GatedRunner,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    slack, generic, down = Receiver(failures=2), Receiver(failures=0), Receiver(failures=99)
    monkeypatch.setenv("TEST_SLACK_URL", slack.url)
    notifications = [{"name": "oncall", "kind": "slack", "url_env": "TEST_SLACK_URL"},
                     {"name": "pager", "kind": "json", "url": generic.url},
                     {"name": "broken", "kind": "json", "url": down.url}]
    settings = make_settings(tmp_path, notifications=notifications, notify_backoff_s=0.05, notify_attempts=3,
                             public_url="https://lens.example")
    runner.release.set()
    try:
        with TestClient(create_app(settings, runner=runner), headers=AUTH) as client:
            client.post(WEBHOOK, json=notification("HighErrorRate", [alert("fp-1")]))
            wait_for(lambda: all(d["state"] != "pending" for d in
                                 client.get("/api/v1/incidents/1").json()["deliveries"] or [{"state": "pending"}]))
            deliveries = {d["target"]: d for d in client.get("/api/v1/incidents/1").json()["deliveries"]}
            review = client.get("/api/v1/incidents/1/review")
    finally:
        for receiver in (slack, generic, down):
            receiver.close()
    assert (deliveries["oncall"]["state"], deliveries["oncall"]["attempts"]) == ("delivered", 3)
    assert (deliveries["pager"]["state"], deliveries["pager"]["attempts"]) == ("delivered", 1)
    assert deliveries["broken"] | {"updated_at": None} == {"target": "broken", "kind": "json", "state": "failed",
                                                             "attempts": 3, "last_error": "HTTP 500",
                                                             "updated_at": None}
    assert review.status_code == 200  # a failed delivery never loses the review
    text = slack.bodies[-1]["text"]
    assert text.startswith("*IncidentLens review: HighErrorRate on checkout")
    assert "stand-in review of the alert at 2024-05-01T03:10:00.000Z" in text
    assert "<https://lens.example/incidents/1|Open the review>" in text
    body = generic.bodies[0]
    assert body["event"] == "review.done" and body["incident"]["id"] == 1
    assert body["link"] == "https://lens.example/incidents/1"
    assert body["review_json"] == "https://lens.example/api/v1/incidents/1/review"


def test_workers_set_how_many_investigations_run_at_once(tmp_path: Path, runner: GatedRunner) -> None:
    with TestClient(create_app(make_settings(tmp_path, workers=2), runner=runner), headers=AUTH) as client:
        for number in range(3):
            client.post(WEBHOOK, json=notification(f"Group{number}", [alert(f"fp-{number}")]))
        wait_for(lambda: len(runner.jobs) == 2)
        time.sleep(0.5)  # a third worker, if there were one, would have taken the third by now
        assert sorted(i["investigation"]["state"] for i in incidents(client)) == ["queued", "running", "running"]
        runner.release.set()
        wait_for(lambda: {i["investigation"]["state"] for i in incidents(client)} == {"done"})
    assert len(runner.jobs) == 3


def test_slack_text_from_alerts_is_escaped_as_slack_asks() -> None:
    """An annotation's `<`, `>` and `&` are Slack's control characters: `<!channel>` in a summary would page the
    whole channel, `<x|y>` would make a link. Only the review's own link stays one."""
    incident = {"id": 1, "title": "HighLatency on checkout: p95 > 2s for <!channel> & <http://evil.example|docs>"}
    text = message("slack", incident, ["latency < 5 s & rising"], "https://lens.example/incidents/1")["text"]
    assert text == ("*IncidentLens review: HighLatency on checkout: p95 &gt; 2s for &lt;!channel&gt; &amp; "
                    "&lt;http://evil.example|docs&gt;*\nlatency &lt; 5 s &amp; rising\n"
                    "<https://lens.example/incidents/1|Open the review>")
