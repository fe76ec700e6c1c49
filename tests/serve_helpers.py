"""Helpers for the `incidentlens serve` tests: Alertmanager payloads, a server in a subprocess, bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

TOKEN = "test-token-5f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The db-pool-exhaustion scenario's incident starts at 03:04 on this day (its truth.json); alerts fire a bit later.
ALERT_TIME = "2024-05-01T03:10:00Z"


def alert(fingerprint: str, status: str = "firing", service: str = "checkout", starts_at: str = ALERT_TIME,
          alertname: str = "HighErrorRate", ends_at: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    """One alert as Alertmanager's webhook carries it."""
    return {"status": status, "labels": {"alertname": alertname, "service": service, "severity": "page"},
            "annotations": {"summary": f"{service} 5xx above 5%"}, "startsAt": starts_at, "endsAt": ends_at,
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": fingerprint}


def notification(group: str, alerts: list[dict[str, Any]], truncated: int = 0) -> dict[str, Any]:
    """Alertmanager's webhook payload, version 4."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{group}"}}', "truncatedAlerts": truncated,
            "status": status, "receiver": "incidentlens", "groupLabels": {"alertname": group},
            "commonLabels": {"alertname": group}, "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093", "alerts": alerts}


def wait_for(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def source_args(data: Path) -> list[str]:
    return ["--metrics", str(data / "metrics.csv"), "--logs", str(data / "logs.csv"),
            "--events", str(data / "events.csv")]


def terminate(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class ServerProcess:
    """`incidentlens serve` on a loopback port in a subprocess, as a user starts it."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-c", "from incidentlens.cli import main; main()", "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), *args]
        environment = {**os.environ, "INCIDENTLENS_TOKEN": TOKEN, "HAYSTACK_TELEMETRY_ENABLED": "false",
                       **(env or {})}
        environment.pop("OPENAI_API_KEY", None)
        self._log = log.open("ab")
        self.process = subprocess.Popen(command, env=environment, stdout=self._log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, headers=AUTH, timeout=10.0)
        wait_for(self._healthy, timeout=60)

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited with {self.process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            return self.client.get("/healthz").status_code == 200
        return False

    def kill9(self) -> None:
        """SIGKILL: no shutdown handler runs, as when the machine or the OOM killer stops it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.close()

    def stop(self) -> None:
        terminate(self.process)
        self.close()

    def close(self) -> None:
        self.client.close()
        self._log.close()


@contextlib.contextmanager
def running_server(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    server = ServerProcess(args, log, env)
    try:
        yield server
    finally:
        server.stop()
