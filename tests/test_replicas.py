"""A service with several pods (replicas): each pod's samples are one series, and the service, the unit a hypothesis
names, is read by its most changed pod. Generated metrics only."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from incidentlens.analysis import analyze
from incidentlens.analysis.impact import estimate_impact
from incidentlens.analysis.shifts import metric_shifts
from incidentlens.report import build_postmortem
from incidentlens.report.render_html import _line_charts, _strongest_series
from incidentlens.telemetry import load_telemetry

START = datetime(2024, 5, 1, 10, 0)
ONSET = START + timedelta(minutes=50)
MINUTES = 60
# Replicas run at their own levels (one holds more connections than the other): read as one series, their
# samples alternate between the two levels.
CART = ("cart-7d4b9c6f5d-a1b2c", "cart-7d4b9c6f5d-x9y8z")
PODS = {CART[0]: 20.0, CART[1]: 45.0, "ads-5f6585d649-fnmft": 30.0, "web-579b9bff58-t2dbm": 25.0}


def _write(path: Path, pods: dict[str, float], surge: dict[str, float]) -> Path:
    """One row per pod and minute (`ts,pod,cpu,memory`), each pod sampled at its own second; `surge`: a pod's CPU
    times that factor from ONSET on."""
    rng = np.random.default_rng(7)
    lines = ["ts,pod,cpu,memory"]
    for n, (pod, level) in enumerate(pods.items()):
        for minute in range(MINUTES):
            at = START + timedelta(minutes=minute, seconds=5 + 20 * n)
            factor = surge.get(pod, 1.0) if at >= ONSET else 1.0
            cpu = level * factor * (1 + rng.normal(0, 0.04))
            memory = 300 * (1 + rng.normal(0, 0.01)) * (1.08 if pod.startswith("ads") and at >= ONSET else 1.0)
            lines.append(f"{at:%Y-%m-%d %H:%M:%S},{pod},{cpu:.3f},{memory:.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _ranked(path: Path) -> list[str]:
    result = analyze(load_telemetry(metrics=str(path)), at=ONSET, onset="at")
    return [h.service for h in result.hypotheses]


def test_one_replica_s_cpu_surge_ranks_its_service_first_and_the_evidence_names_the_pod(tmp_path: Path):
    path = _write(tmp_path / "metrics.csv", PODS, surge={CART[0]: 1.8})
    assert _ranked(path)[0] == "cart"
    store = load_telemetry(metrics=str(path))
    shifts, evidence = metric_shifts(store, (ONSET, START + timedelta(minutes=MINUTES)), (START, ONSET))
    cpu = next(s for s in shifts if s.series == "cart/cpu")
    assert (cpu.pod, cpu.pods, cpu.direction) == (CART[0], 2, "up")
    cart = next(e for e in evidence if e.data.get("service") == "cart")
    assert f"cpu up {cpu.shift:.1f}σ on pod {CART[0]}" in cart.title


def test_a_replica_started_since_the_baseline_is_held_against_its_service_s(tmp_path: Path):
    # a rollout at the onset: cart's pods are replaced by one new pod that runs at three times their CPU; it has no
    # baseline of its own, so its samples are scored against both old pods' together
    path = _write(tmp_path / "metrics.csv", PODS, surge={})
    new_pod = "cart-5c8d7e6f4a-n3w4p"
    rows = [line for line in path.read_text().splitlines()[1:]
            if not (line.split(",")[1] in CART and line.split(",")[0] >= f"{ONSET:%Y-%m-%d %H:%M:%S}")]
    rows += [f"{ONSET + timedelta(minutes=m, seconds=30):%Y-%m-%d %H:%M:%S},{new_pod},{96 + m % 3},300"
             for m in range(MINUTES - 50)]
    path.write_text("ts,pod,cpu,memory\n" + "\n".join(rows) + "\n")
    store = load_telemetry(metrics=str(path))
    shifts, _ = metric_shifts(store, (ONSET, START + timedelta(minutes=MINUTES)), (START, ONSET))
    cpu = next(s for s in shifts if s.series == "cart/cpu")
    assert (cpu.pod, cpu.direction) == (new_pod, "up") and cpu.significant
    assert _ranked(path)[0] == "cart"


def test_the_review_names_the_service_and_charts_the_pod_that_moved(tmp_path: Path):
    """The hypothesis names the service; the moved series says its pod, and its chart is of that pod's samples
    (the baseline and markers drawn on it are that pod's)."""
    store = load_telemetry(metrics=str(_write(tmp_path / "metrics.csv", PODS, surge={CART[0]: 1.8})))
    pm = build_postmortem(analyze(store, at=ONSET, onset="at"))
    assert pm.root_cause is None or pm.root_cause.service == "cart"
    assert pm.hypotheses[0].service == "cart"
    cpu = next(s for s in pm.detection.series if s.series == "cart/cpu")
    assert cpu.pod == CART[0]
    assert all(s.pod is None for s in pm.detection.series if not s.series.startswith("cart/"))
    charts, _ = _line_charts(pm, store)
    chart = next(c for c in charts if "cart/cpu" in c.title)
    assert f"cart/cpu on pod {CART[0]}" in chart.title
    assert f"cart/cpu on pod {CART[0]}" in pm.detection.narrative.text
    assert pm.grounding.issues == []  # a pod's name states no number


def test_an_alert_minutes_into_one_replica_s_surge_ranks_its_service_first(tmp_path: Path):
    """The onset detected at an alert time: detection too reads each pod's samples as one series."""
    path = _write(tmp_path / "metrics.csv", PODS, surge={CART[0]: 1.8})
    result = analyze(load_telemetry(metrics=str(path)), at=ONSET + timedelta(minutes=5), onset="detect")
    assert result.hypotheses[0].service == "cart"


def test_a_change_of_the_whole_service_moves_every_pod_and_still_shows(tmp_path: Path):
    path = _write(tmp_path / "metrics.csv", PODS, surge={CART[0]: 1.8, CART[1]: 1.8})
    assert _ranked(path)[0] == "cart"


@pytest.mark.parametrize("column", ["service", "pod"])
def test_one_pod_per_service_reads_as_before_and_names_no_pod(tmp_path: Path, column: str):
    """A pod column of one pod per service gives the same series and shifts as a service column."""
    pods = {pod: level for pod, level in PODS.items() if pod != CART[1]}
    path = _write(tmp_path / "metrics.csv", pods, surge={CART[0]: 1.8})
    if column == "service":
        text = path.read_text()
        for pod in pods:
            text = text.replace(pod, pod.split("-")[0])
        path.write_text(text.replace("ts,pod,", "ts,service,"))
    store = load_telemetry(metrics=str(path))
    shifts, evidence = metric_shifts(store, (ONSET, START + timedelta(minutes=MINUTES)), (START, ONSET))
    assert all(s.pods == 1 and s.on_pod == "" for s in shifts)
    assert "on pod" not in " ".join(e.title for e in evidence)
    assert _ranked(path)[0] == "cart"


def test_a_service_s_requests_are_its_pods_together(tmp_path: Path):
    """Two replicas of the front door, each serving 10 requests a second: 20 a second, not their mean."""
    lines = ["ts,pod,requests_per_s,error_ratio"]
    for minute in range(MINUTES):
        for n, pod in enumerate(("web-579b9bff58-t2dbm", "web-579b9bff58-q8zkp")):
            at = START + timedelta(minutes=minute, seconds=5 + 20 * n)
            lines.append(f"{at:%Y-%m-%d %H:%M:%S},{pod},10,{0.2 if at >= ONSET and n == 0 else 0.01}")
    (tmp_path / "metrics.csv").write_text("\n".join(lines) + "\n")
    store = load_telemetry(metrics=str(tmp_path / "metrics.csv"))
    impact = estimate_impact(store, (ONSET, START + timedelta(minutes=MINUTES)), (START, ONSET)).impact
    assert impact.requests_total == 20 * 10 * 60  # ten minutes of both pods
    assert impact.requests_failed == round((0.2 + 0.01) * 10 * 10 * 60)


def test_a_pod_that_replaced_another_mid_window_counts_for_the_minutes_it_served(tmp_path: Path):
    """A rollout: the front door's old pod serves 10 requests a second until 4 minutes after the onset, the new one
    from then on. Ten minutes of 10 a second, not twice that (each pod's mean over the window, summed)."""
    pods = ("web-579b9bff58-t2dbm", "web-6c9d8e7f5a-n3w4p")
    lines = ["ts,pod,requests_per_s,error_ratio"]
    for minute in range(MINUTES):
        at = START + timedelta(minutes=minute, seconds=5)
        pod = pods[0] if at < ONSET + timedelta(minutes=4) else pods[1]
        lines.append(f"{at:%Y-%m-%d %H:%M:%S},{pod},10,{0.2 if at >= ONSET else 0.01}")
    (tmp_path / "metrics.csv").write_text("\n".join(lines) + "\n")
    store = load_telemetry(metrics=str(tmp_path / "metrics.csv"))
    impact = estimate_impact(store, (ONSET, START + timedelta(minutes=MINUTES)), (START, ONSET)).impact
    assert impact.requests_total == 10 * 10 * 60
    assert impact.requests_failed == round(0.2 * 10 * 10 * 60)


def test_each_replica_s_incident_is_a_window_of_its_own(tmp_path: Path):
    # cart's pod a is slow tenfold from 10:00 to 10:08, its pod b threefold from 10:40 to 10:50: two incidents, each
    # named by the pod that had it, and an alert at 10:42 is about the second (a twin's larger incident an hour
    # earlier does not hide it)
    from incidentlens.analysis.detection import detect

    rng = np.random.default_rng(4)
    start = datetime(2026, 1, 1, 9, 0)
    lines = ["ts,service,pod,metric,value"]
    slow = {"a": (10, start + timedelta(minutes=60), start + timedelta(minutes=68)),
            "b": (3, start + timedelta(minutes=100), start + timedelta(minutes=110))}
    for service in ("cart", "frontend"):
        for pod in ("a", "b"):
            for minute in range(120):
                at = start + timedelta(minutes=minute)
                factor, since, until = slow[pod] if service == "cart" else (1, at, at)
                value = 100 * (1 + 0.03 * rng.standard_normal()) * (factor if since <= at < until else 1)
                lines.append(f"{at:%Y-%m-%d %H:%M:%S},{service},{service}-7d4b9c6f5d-{pod}1b2c,latency_ms,{value:.3f}")
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(lines) + "\n")
    found = detect(load_telemetry(metrics=str(path)), at=start + timedelta(minutes=102))
    spans = sorted((w.start.strftime("%H:%M"), w.series[0].pod) for w in found.windows)
    assert spans == [("10:00", "cart-7d4b9c6f5d-a1b2c"), ("10:40", "cart-7d4b9c6f5d-b1b2c")]
    assert found.window.start.strftime("%H:%M") == "10:40" and found.window.series[0].series == "cart/latency_ms"


def test_without_a_pod_column_an_instance_column_tells_the_replicas_apart(tmp_path: Path):
    path = _write(tmp_path / "metrics.csv", PODS, surge={CART[0]: 1.8})
    lines = path.read_text().splitlines()
    rows = ["ts,service,instance,cpu,memory"] + [
        f"{ts},{pod.rsplit('-', 2)[0]},10.0.0.{n}:8080,{cpu},{memory}"
        for n, (ts, pod, cpu, memory) in ((list(PODS).index(line.split(",")[1]), line.split(","))
                                          for line in lines[1:])]
    path.write_text("\n".join(rows) + "\n")
    store = load_telemetry(metrics=str(path))
    shifts, _ = metric_shifts(store, (ONSET, START + timedelta(minutes=MINUTES)), (START, ONSET))
    cpu = next(s for s in shifts if s.series == "cart/cpu")
    assert (cpu.pod, cpu.pods, cpu.direction) == ("10.0.0.0:8080", 2, "up")
    assert _ranked(path)[0] == "cart"


def test_a_service_s_strongest_series_is_charted_on_the_pod_that_moved(tmp_path: Path):
    # the root cause's chart when none of its series crossed the detection's bar: the series that shifted most, on
    # the pod that moved, not the two pods' average
    path = _write(tmp_path / "metrics.csv", PODS, surge={CART[0]: 1.8})
    pm = SimpleNamespace(incident_window=SimpleNamespace(start=ONSET, end=START + timedelta(minutes=MINUTES)),
                         baseline_window=SimpleNamespace(start=START, end=ONSET))
    assert _strongest_series(load_telemetry(metrics=str(path)), "cart", pm)[0] == ("cart/cpu", CART[0])
