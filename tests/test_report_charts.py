"""Chart geometry: labels that never print over each other, bars whose labels are whole, values the text agrees with,
markers that mean what they say, units on the axes, a zoomed panel for a short window."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

from incidentlens.analysis import analyze
from incidentlens.analysis.series import MetricSeries
from incidentlens.report import build_postmortem, write_reports
from incidentlens.report.charts import _CHAR_PX, Marker, _stagger, bar_chart, line_chart
from incidentlens.report.formatting import measure, table_value, unit_of
from incidentlens.report.render_html import _markers, render_html
from incidentlens.report.render_markdown import render_markdown
from incidentlens.telemetry import load_telemetry
from test_detection_store import quiet, write_logs, write_long_metrics
from test_report_data import metrics_store, pool_exhaustion_analysis


def _overlap(a: Marker, b: Marker) -> bool:
    return a.row == b.row and a.label and b.label and abs(a.x - b.x) < (len(a.label) + len(b.label)) * _CHAR_PX / 2


def test_close_markers_each_get_their_own_label_row():
    # a deploy, the start a minute later and the peak a few minutes after: all within one label's width
    placed = _stagger([Marker(100.0, "trigger", "trigger"), Marker(104.0, "start", "onset"),
                       Marker(130.0, "peak", "peak")])
    assert [m.row for m in placed] == [0, 1, 2]


def test_a_label_returns_to_the_first_row_once_it_clears_the_last_one_there():
    placed = _stagger([Marker(100.0, "start", "onset"), Marker(110.0, "peak", "peak"),
                       Marker(160.0, "recovery", "recovery")])
    assert [(m.label, m.row) for m in placed] == [("start", 0), ("peak", 1), ("recovery", 0)]


def test_with_every_row_taken_labels_join_instead_of_printing_over_each_other():
    placed = _stagger([Marker(x, label, label) for x, label in
                       [(100.0, "trigger"), (102.0, "start"), (104.0, "peak"), (106.0, "recovery")]])
    labelled = [m for m in placed if m.label]
    assert not any(_overlap(a, b) for i, a in enumerate(labelled) for b in labelled[i + 1:])
    assert any("·" in m.label and "recovery" in m.label for m in labelled)  # "trigger · recovery", on one row
    assert len(placed) == 4  # every marker keeps its line


def test_bar_labels_are_whole_and_wrapped_and_small_shares_read_as_the_text_does():
    long = "error_kind=db_pool_exhausted_while_waiting_for_a_connection_from_the_primary_replica_set_in_eu-west-1"
    chart = bar_chart([(long, 0.27, 0.003), ("service=api-gateway", 0.49, 0.0)])
    first = chart.bars[0]
    assert "".join(first.lines) == long and len(first.lines) >= 2  # wrapped, nothing cut
    assert (first.window_label, first.baseline_label) == ("27%", "0.3%")  # not "0%" where the text says 0.3%
    assert chart.bars[1].y > first.y + 2 * chart.bar_height  # the second row sits below the first one's bars


def test_units_come_from_the_metric_name():
    assert [unit_of(m) for m in ("p95_ms", "PodClientLatencyP99(s)", "latency_seconds", "MemoryUsage(Mi)", "rps",
                                 "CpuUsageRate(%)", "SyscallRead", "NetworkReceiveBytes", "rx_bytes")] == [
        "ms", "s", "s", "Mi", "req/s", "%", None, "bytes", "bytes"]
    assert measure("PodClientLatencyP99(s)", 28.6) == "28.6 s"
    assert measure("NetworkReceiveBytes", 40498.0) == "40,498 bytes"


def test_a_latency_whose_name_states_no_unit_is_written_as_its_raw_value_beside_its_name():
    # a `latency` series with no unit in its name: 906 could be ms, s or a histogram's bucket index; the review says
    # the figure and the series, not a unit the data does not give
    analysis = pool_exhaustion_analysis()
    analysis["impact"]["peak_latency"].update(service="db-proxy", metric="latency", value=906.0, baseline=123.0)
    analysis["detection"]["series"][0].update(series="db-proxy/latency", baseline=123.0, peak=906.0)
    pm = build_postmortem(analysis)
    text = render_markdown(pm)
    assert "latency (db-proxy/latency) peaked at 906 against 123" in pm.impact.narrative.text
    assert "| `db-proxy/latency` | up | 123 | 906 |" in text
    assert not re.search(r"\b(906|123) ?(ms|s|seconds)\b", text)


def test_a_table_writes_an_amount_of_bytes_in_its_binary_multiple():
    # TrainTicket 11:04's detection table: "ts-route-service/NetworkReceiveBytes | up | 4,779 | 40,498": no unit
    assert [table_value("ts-route-service/NetworkReceiveBytes", v) for v in (581.0, 4779.0, 40498.0, 3.5e9)] == [
        "581 bytes", "4.67 KiB", "39.5 KiB", "3.26 GiB"]
    assert table_value("api/p95_ms", 2450.0) == "2,450 ms"
    analysis = pool_exhaustion_analysis()
    analysis["detection"]["series"][0].update(series="db-proxy/NetworkReceiveBytes", baseline=4779.0, peak=40498.0)
    table = render_markdown(build_postmortem(analysis))
    assert "| `db-proxy/NetworkReceiveBytes` | up | 4.67 KiB | 39.5 KiB |" in table


def test_a_fall_is_marked_as_a_trough_and_a_later_onset_as_where_the_series_moved():
    pm = build_postmortem(pool_exhaustion_analysis())
    window = (pm.incident_window.start, pm.incident_window.end)
    falling = pm.detection.series[0].model_copy(update={"direction": "down", "peak_at": window[1],
                                                        "onset": window[0] + dt.timedelta(minutes=5)})
    markers = _markers(pm, falling, window)
    assert "trough" in markers and "peak" not in markers
    assert markers["moved"] == falling.onset and list(markers).count("start") == 1  # one start, never two onsets
    rising = falling.model_copy(update={"direction": "up", "onset": window[0]})
    assert "peak" in _markers(pm, rising, window) and "moved" not in _markers(pm, rising, window)


def test_each_chart_names_its_service_and_unit_and_why_it_was_chosen(tmp_path):
    html = write_reports(build_postmortem(pool_exhaustion_analysis()), tmp_path, store=metrics_store())["html"]
    titles = re.findall(r"<figcaption>(.*?)</figcaption>", html.read_text())
    assert titles and all(re.match(r"(root cause|entry service|moved most): [\w.-]+/\w+", t) for t in titles)
    assert titles[0].startswith("root cause: db-proxy/")
    assert any(t.endswith("(ms)") for t in titles) and any(t.endswith("(%)") for t in titles)
    assert 'class="unit"' in html.read_text() and "time (UTC)" in html.read_text()


def test_a_short_window_gets_a_zoomed_panel():
    start = dt.datetime(2024, 5, 1, 10, 0)
    t = np.array([np.datetime64(start + dt.timedelta(seconds=15 * i)) for i in range(480)], dtype="datetime64[us]")
    series = MetricSeries("svc/p99_ms", t, np.linspace(1, 2, t.size))
    window = (start + dt.timedelta(minutes=60), start + dt.timedelta(minutes=61, seconds=30))
    view = (window[0] - dt.timedelta(minutes=30), window[1] + dt.timedelta(minutes=15))
    wide = line_chart(series, window, view, {"start": window[0]})
    zoomed = line_chart(series, window, (window[0] - dt.timedelta(minutes=3), window[1] + dt.timedelta(minutes=3)),
                        {"start": window[0]})
    assert wide.shade_width < 40 <= zoomed.shade_width  # the hairline becomes a readable band


def test_a_window_found_from_the_logs_alone_says_so_where_the_metric_charts_would_be(tmp_path):
    # a burst of ERROR lines at checkout beside quiet metrics of other services: the window came from the logs'
    # problem lines (detection's fallback), and the charts said "The metrics hold none of the series that moved"
    metrics = write_long_metrics(tmp_path / "m.csv", {f"svc{i}/latency_ms": quiet(i) for i in range(3)})
    logs = write_logs(tmp_path / "logs.csv", {"checkout": (600, 12, 40)})
    store = load_telemetry(metrics=str(metrics), logs=str(logs))
    html = render_html(build_postmortem(analyze(store)), store)
    assert ("No metric series moved: the window was found from the logs, where the WARN/ERROR/FATAL lines per minute "
            "of checkout moved.") in html
    assert "none of the series that moved" not in html
