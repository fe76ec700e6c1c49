"""`incidentlens serve` as it runs in production, in a subprocess: `kill -9` during investigations and a restart on
the same --state, and Debian's real `prometheus-alertmanager` delivering alerts to it."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_helpers import (
    TOKEN,
    ServerProcess,
    alert,
    free_port,
    notification,
    running_server,
    source_args,
    terminate,
    wait_for,
)

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(scenario_dir) -> Path:
    return scenario_dir("db-pool-exhaustion", hours=6, logs=5000)


def investigation_processes(server_pid: int) -> list[int]:
    """The server's children that run an investigation (spawned interpreters, not multiprocessing's tracker)."""
    found = []
    children = " ".join(task.read_text() for task in Path(f"/proc/{server_pid}/task").glob("*/children"))
    for pid in children.split():  # each thread lists the children it started
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in command:
                found.append(int(pid))
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status  # a zombie has ended; only its exit status waits to be collected


def states(server) -> dict[int, str]:
    return {i["id"]: i["investigation"]["state"] for i in server.client.get("/api/v1/incidents").json()["incidents"]}


def test_kill_9_loses_no_accepted_alert_and_unfinished_investigations_resume(data: Path, tmp_path: Path) -> None:
    args = [*source_args(data), "--state", str(tmp_path / "state"), "--llm", "offline", "--workers", "1"]
    log = tmp_path / "server.log"
    server = ServerProcess(args, log)
    try:
        # 15 notifications: 3 groups of two alerts, each group sent 5 times (Alertmanager's repeats)
        for round_number in range(5):
            for group in range(3):
                alerts = [alert(f"g{group}-a"), alert(f"g{group}-b", service="payments")][: 1 + (round_number > 0)]
                answer = server.client.post("/api/v1/alerts/alertmanager", json=notification(f"Group{group}", alerts))
                assert answer.status_code == 200
        wait_for(lambda: "running" in states(server).values(), timeout=30, interval=0.05)
        children = wait_for(lambda: investigation_processes(server.process.pid), timeout=30, interval=0.05)
    finally:
        server.kill9()  # right after the last 2xx, with an investigation running and two queued
    wait_for(lambda: not any(alive(pid) for pid in children), timeout=10)  # the orphaned child ended itself

    with running_server(args, log) as again:
        incidents = again.client.get("/api/v1/incidents").json()["incidents"]
        assert len(incidents) == 3
        assert all(i["alert_count"] == 2 and i["notifications"] == 5 for i in incidents)
        first = again.client.get("/api/v1/incidents/1").json()
        assert [a["receipts"] for a in first["alerts"]] == [5, 4]
        wait_for(lambda: set(states(again).values()) == {"done"}, timeout=240, interval=0.5)
        attempts = {i: again.client.get(f"/api/v1/incidents/{i}").json()["investigation"]["attempts"]
                    for i in range(1, 4)}
        assert attempts[1] == 2 and set(attempts.values()) <= {1, 2}  # the killed one ran again
        review = again.client.get("/api/v1/incidents/1/review").json()
    assert review["root_cause"]["service"] == "db-proxy"


ALERTMANAGER_CONFIG = """
route:
  receiver: incidentlens
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: incidentlens
    webhook_configs:
      - url: http://127.0.0.1:{port}/api/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


@contextlib.contextmanager
def alertmanager(config: str, workdir: Path) -> Iterator[str]:
    """Alertmanager on a loopback port, clustering off (no gossip port)."""
    port = free_port()
    (workdir / "alertmanager.yml").write_text(config)
    log = (workdir / "alertmanager.log").open("wb")
    process = subprocess.Popen([ALERTMANAGER, f"--config.file={workdir / 'alertmanager.yml'}",
                                f"--storage.path={workdir / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
                                "--cluster.listen-address=", "--log.level=warn"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert process.poll() is None, (workdir / "alertmanager.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            return False

        wait_for(ready, timeout=30)
        yield url
    finally:
        terminate(process)
        log.close()


@pytest.mark.alertmanager
@pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager not installed "
                                                 "(scripts/install-system-deps.sh installs the Debian package)")
def test_the_real_alertmanager_delivers_alerts_that_open_and_close_an_incident(data: Path, tmp_path: Path) -> None:
    args = [*source_args(data), "--state", str(tmp_path / "state"), "--llm", "offline"]
    with running_server(args, tmp_path / "server.log") as server:
        config = ALERTMANAGER_CONFIG.format(port=server.port, token=TOKEN)
        with alertmanager(config, tmp_path) as am:
            fired = [{"labels": {"alertname": "HighErrorRate", "service": service, "severity": "page"},
                      "annotations": {"summary": f"{service} 5xx above 5%"}, "startsAt": "2024-05-01T03:10:00Z"}
                     for service in ("checkout", "payments")]
            assert httpx.post(f"{am}/api/v2/alerts", json=fired, timeout=10).status_code == 200
            fingerprints = {a["fingerprint"] for a in httpx.get(f"{am}/api/v2/alerts", timeout=10).json()}

            incident = wait_for(lambda: _incident_with(server, 2), timeout=30)
            assert incident["title"].startswith("HighErrorRate on ")
            assert incident["status"] == "firing" and incident["receiver"] == "incidentlens"
            assert {a["fingerprint"] for a in incident["alerts"]} == fingerprints
            assert incident["investigation"]["at"] == "2024-05-01T03:10:00.000Z"

            resolved = [{**a, "endsAt": "2024-05-01T04:20:00Z"} for a in fired]
            assert httpx.post(f"{am}/api/v2/alerts", json=resolved, timeout=10).status_code == 200
            closed = wait_for(lambda: _resolved(server), timeout=30)
        assert len(server.client.get("/api/v1/incidents").json()["incidents"]) == 1
        assert {a["status"] for a in closed["alerts"]} == {"resolved"}
        wait_for(lambda: server.client.get("/api/v1/incidents/1/review").status_code == 200, timeout=120)
        assert server.client.get("/api/v1/incidents/1/review").json()["root_cause"]["service"] == "db-proxy"


def _incident_with(server, alerts: int) -> dict | None:
    answer = server.client.get("/api/v1/incidents/1")
    if answer.status_code != 200 or len(answer.json()["alerts"]) < alerts:
        return None
    return answer.json()


def _resolved(server) -> dict | None:
    incident = server.client.get("/api/v1/incidents/1").json()
    return incident if incident["status"] == "resolved" else None


def test_sigterm_stops_the_server_cleanly(data: Path, tmp_path: Path) -> None:
    args = [*source_args(data), "--state", str(tmp_path / "state"), "--llm", "offline"]
    server = ServerProcess(args, tmp_path / "server.log")
    begun = time.monotonic()
    server.stop()
    # uvicorn shuts down, then re-raises the signal it caught: the exit status says "terminated by SIGTERM"
    assert server.process.returncode in (0, -signal.SIGTERM) and time.monotonic() - begun < 15
    assert "Traceback" not in (tmp_path / "server.log").read_text()
