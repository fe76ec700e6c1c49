"""The Alertmanager intake under a burst: 1,000 webhooks (100 groups, each re-sent 10 times as Alertmanager does
every repeat_interval, alerts joining as the group grows) from 20 concurrent clients against `incidentlens serve`
on loopback, while investigations of the new incidents run in the same process.

It prints the intake latency (p50/p95/p99/max), throughput, and checks against the server's own API that none was
lost (every notification counted, every alert's receipts add up) and duplicates collapsed (100 incidents, one row
per distinct alert). Investigations keep running during the burst: the intake never waits on them.

    .venv/bin/python benchmarks/bench_serve.py [--webhooks 1000] [--groups 100] [--clients 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from incidentlens.scenarios import generate
from serve_helpers import TOKEN, ServerProcess, alert, notification, source_args

SERVICES = ("checkout", "payments", "inventory", "cache", "api-gateway")


def burst(webhooks: int, groups: int, seed: int = 7) -> tuple[list[dict[str, Any]], Counter]:
    """The notifications in a shuffled order, and how many times each (group, fingerprint) is sent."""
    rng = random.Random(seed)
    sends_per_group = webhooks // groups
    bodies, sent = [], Counter()
    for group in range(groups):
        size = 1 + group % 3  # one to three alerts; the group's later notifications carry all of them
        for repeat in range(sends_per_group):
            alerts = [alert(f"g{group}-a{n}", service=SERVICES[(group + n) % len(SERVICES)])
                      for n in range(min(size, 1 + repeat))]
            bodies.append(notification(f"Burst{group:03d}", alerts))
            sent.update((group, a["fingerprint"]) for a in alerts)
    # repeats of one group stay in order (Alertmanager sends a group's notifications one after another); the groups
    # interleave at random
    order = sorted(range(len(bodies)), key=lambda i: (rng.random() + (i % sends_per_group)))
    return [bodies[i] for i in order], sent


def client_loop(port: int, token: str, work: Queue, latencies: list[tuple[float, float]], errors: list[str]) -> None:
    """One client: a keep-alive connection posting notifications until the work runs out. Plain http.client, so
    the clients' own CPU (on the same two cores as the server) stays small."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        while True:
            try:
                body = work.get_nowait()
            except Empty:
                return
            begun = time.perf_counter()
            try:
                connection.request("POST", "/api/v1/alerts/alertmanager", body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                latencies.append((begun, time.perf_counter() - begun))
                if answer.status != 200:
                    errors.append(f"HTTP {answer.status}")
            except (OSError, http.client.HTTPException) as err:
                errors.append(type(err).__name__)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--clients", type=int, default=20)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work_dir = Path(tmp)
        generate("db-pool-exhaustion", work_dir / "data", seed=1, hours=6, logs=5000)
        bodies, sent = burst(options.webhooks, options.groups)
        server = ServerProcess([*source_args(work_dir / "data"), "--state", str(work_dir / "state"),
                                "--llm", "offline", "--workers", "1"], work_dir / "server.log")
        try:
            work: Queue = Queue()
            for body in bodies:
                work.put(json.dumps(body).encode())
            latencies: list[tuple[float, float]] = []
            errors: list[str] = []
            threads = [threading.Thread(target=client_loop, args=(server.port, TOKEN, work, latencies, errors))
                       for _ in range(options.clients)]
            load_before = os.getloadavg()[0]
            begun = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=600)
            elapsed = time.perf_counter() - begun
            incidents = server.client.get("/api/v1/incidents", params={"limit": 1000}).json()["incidents"]
            investigations = Counter(i["investigation"]["state"] for i in incidents)
            receipts: Counter = Counter()
            for incident in incidents:
                detail = server.client.get(f"/api/v1/incidents/{incident['id']}").json()
                group = int(detail["group_key"].split("Burst")[1][:3])
                receipts.update({(group, a["fingerprint"]): a["receipts"] for a in detail["alerts"]})
        finally:
            server.stop()

    ms = np.array([latency for _, latency in latencies]) * 1000
    slowest = sorted(latencies, key=lambda pair: -pair[1])[:10]
    figures = {
        "webhooks": len(bodies), "groups": options.groups, "clients": options.clients,
        "answered_2xx": len(bodies) - len(errors), "errors": len(errors),
        "seconds": round(elapsed, 2), "per_second": round(len(bodies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1),
        "incidents": len(incidents), "distinct_alerts_sent": len(sent), "alert_rows": len(receipts),
        "notifications_counted": sum(i["notifications"] for i in incidents),
        "receipts_match": receipts == sent,
        "investigations_at_end": dict(investigations),
        "machine_load_1min_before": round(load_before, 1), "cores": os.cpu_count(),
        "slowest_started_at_s": [round(start - begun, 2) for start, _ in slowest],
    }
    print(json.dumps(figures, indent=2))
    lost = figures["notifications_counted"] != len(bodies) or not figures["receipts_match"] or errors
    collapsed = figures["incidents"] == options.groups and figures["alert_rows"] == len(sent)
    verdict = (f"none lost: {not lost}; duplicates collapsed: {collapsed}; p99 {figures['p99_ms']} ms "
               f"({'within' if figures['p99_ms'] <= 100 else 'OVER'} the 100 ms target)")
    print(verdict)
    if lost or not collapsed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
