"""A real Prometheus for the tests: canonical metrics backfilled into a TSDB, served on a free loopback port.

The metrics are written as OpenMetrics text by one DuckDB COPY (no Python loop over points), turned into TSDB
blocks by `promtool tsdb create-blocks-from openmetrics`, and served by `/usr/bin/prometheus` with no scrape
targets. Backfilled data is hours or days old, so the server runs with a long `--storage.tsdb.retention.time`:
time retention drops blocks that end more than the retention before the newest data, and must not eat them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pytest

# bcrypt of "test", the example from prometheus.io's basic-auth guide (no bcrypt module needed to test auth).
TEST_PASSWORD = "test"
TEST_PASSWORD_BCRYPT = "$2b$12$hNf2lSsxfm0.i4a.1kVpSOVyBCfIB51VRjgBUyv6kdnyTlgWj81Ay"


@dataclass(frozen=True)
class PromServer:
    url: str
    data_dir: Path


def require_prometheus() -> tuple[str, str]:
    """The prometheus and promtool binaries, or skip the test with the reason."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        pytest.skip("prometheus/promtool not installed (scripts/install-system-deps.sh installs the Debian package)")
    return prometheus, promtool


def write_openmetrics(metrics: pa.Table | duckdb.DuckDBPyRelation, path: Path) -> Path:
    """Write canonical metrics (ts, service, metric, value) as OpenMetrics gauges labelled by service."""
    con = duckdb.connect()
    con.register("canonical", metrics)
    con.sql(
        f"""
        COPY (
          WITH samples AS (
            SELECT regexp_replace(metric, '[^A-Za-z0-9_:]', '_', 'g') AS name, service, ts, value
            FROM canonical WHERE value IS NOT NULL AND isfinite(value)
          ),
          lines AS (
            SELECT name, 0 AS part, NULL AS service, NULL::TIMESTAMP AS ts, '# TYPE ' || name || ' gauge' AS line
            FROM (SELECT DISTINCT name FROM samples)
            UNION ALL
            SELECT name, 1, service, ts,
                   name || '{{service="' || service || '"}} ' || value::VARCHAR || ' ' || epoch(ts)::VARCHAR
            FROM samples
            UNION ALL
            SELECT '~', 2, NULL, NULL, '# EOF'
          )
          SELECT line FROM lines ORDER BY name, part, service, ts
        ) TO '{path}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '')
        """
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def prometheus_serving(
    metrics: pa.Table | duckdb.DuckDBPyRelation, workdir: Path, basic_auth_user: str | None = None
) -> Iterator[PromServer]:
    """Backfill `metrics` into a fresh TSDB under workdir and serve it until the block exits."""
    prometheus, promtool = require_prometheus()
    data_dir = workdir / "tsdb"
    data_dir.mkdir(parents=True, exist_ok=True)
    openmetrics = write_openmetrics(metrics, workdir / "metrics.om")
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(data_dir)],
        check=True, capture_output=True, text=True,
    )
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    command = [
        prometheus, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
    ]
    if basic_auth_user:
        web_config = workdir / "web.yml"
        web_config.write_text(f"basic_auth_users:\n  {basic_auth_user}: '{TEST_PASSWORD_BCRYPT}'\n")
        command.append(f"--web.config.file={web_config}")
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process, workdir / "prometheus.log")
        yield PromServer(url=url, data_dir=data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            # /-/ready is not behind basic auth: it is the readiness probe.
            if httpx.get(f"{url}/-/ready", timeout=1.0).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"prometheus not ready after {timeout} s: {log_path.read_text()[-2000:]}")
