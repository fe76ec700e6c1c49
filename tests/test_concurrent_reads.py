"""Reading at once what does not depend on each other: the views of a load, and the traces beside the logs in an
analysis. Either way the store and the analysis must hold exactly what reading one thing after another gives."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from incidentlens.analysis import analyze, pipeline
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.store import TelemetryStore
from test_spans import AT, _system


def _flawed_files(tmp_path: Path) -> dict[str, Path]:
    """A metrics file with a value that is no number, a logs file with a Latin-1 byte (read through a UTF-8 copy)
    and a cut line (set aside), and a traces file: each view with something to warn about or set aside."""
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n" + "".join(
        f"2024-05-01T10:{m:02d}:00Z,api,latency_ms,{'n/a' if m == 7 else 20 + m}\n" for m in range(30)))
    logs = tmp_path / "logs.csv"
    logs.write_bytes(b"ts,service,level,message\n" + b"".join(
        f"2024-05-01T10:{m:02d}:30Z,api,INFO,served {m}\n".encode() for m in range(30))
        + b"2024-05-01T10:30:00Z,api,ERROR,caf\xe9 down\n2024-05-01T10:31:00Z,api,INFO,\"cut sh\n")
    traces = tmp_path / "spans.jsonl"
    traces.write_text("".join(json.dumps({
        "trace_id": f"t{m}", "span_id": f"s{m}", "service": "api", "operation": "GET /",
        "start_ts": f"2024-05-01T10:{m:02d}:10Z", "duration_ms": 12.5}) + "\n" for m in range(30)))
    return {"metrics": metrics, "logs": logs, "spans": traces}


def _one_after_another(files: dict[str, Path]) -> TelemetryStore:
    store = TelemetryStore()
    for view, path in files.items():
        store.add_files(view, path)
    return store


def _held(store: TelemetryStore) -> dict[str, object]:
    """Everything a later step reads of a store: its views' rows (in no order: a view has none, the spans' are
    distinct rows), warnings, lines set aside and the logs' origins."""
    views = {view: sorted(map(repr, store.fetch(f"SELECT * FROM {view}").to_pylist())) for view in store.views}
    origins = store.fetch(f"SELECT * FROM ({store.log_origins_sql()}) ORDER BY file, line").to_pylist()
    return {"views": views, "warnings": store.warnings, "rejected": store.rejected, "origins": origins,
            "paths": store.paths}


def test_views_read_at_once_hold_what_reading_them_one_after_another_holds(tmp_path: Path) -> None:
    files = _flawed_files(tmp_path)

    at_once = load_telemetry(metrics=files["metrics"], logs=files["logs"], traces=files["spans"])

    held = _held(at_once)
    assert held == _held(_one_after_another(files))
    # each view had its say, in the order the views are read: metrics' value before the logs' byte and cut line
    assert [w.split(":", 1)[0] for w in at_once.warnings] == [str(files["metrics"])] + [str(files["logs"])] * 2
    assert [r.file for r in at_once.rejected] == [str(files["logs"])]


def test_the_first_error_is_the_first_views_as_read_one_after_another(tmp_path: Path) -> None:
    metrics, logs = tmp_path / "metrics.csv", tmp_path / "logs.csv"
    metrics.write_text("service,value\napi,1\n")
    logs.write_text("service,message\napi,hello\n")

    with pytest.raises(InputError, match=r"metrics\.csv"):
        load_telemetry(metrics=metrics, logs=logs)


def _stopped_by_ctrl_c_within(seconds: float, call: Callable[[], object]) -> None:
    """`call()`, during which Ctrl-C is pressed, raises it within `seconds`, leaving no reading thread behind."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threads, started = set(threading.enumerate()), time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - started < seconds
    assert not [thread for thread in set(threading.enumerate()) - threads if thread.name.startswith("ThreadPool")]


def test_ctrl_c_during_a_load_stops_every_views_read_and_is_raised_as_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _flawed_files(tmp_path)
    read = TelemetryStore.add_files

    def add_files(self: TelemetryStore, view: str, *args: object) -> None:
        if view == "logs":  # Ctrl-C pressed while the logs are read: a long query (~5 s uninterrupted), then the rest
            self.con.execute("SET threads = 1")
            threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()
            self.con.execute("SELECT count(*) FROM range(500_000_000) AS t(i) WHERE i % 7 = 3").fetchall()
        read(self, view, *args)

    monkeypatch.setattr(TelemetryStore, "add_files", add_files)
    # the logs' read was interrupted, not waited for (nor its connection closed under it: 'connection is busy')
    _stopped_by_ctrl_c_within(3, lambda: load_telemetry(metrics=files["metrics"], logs=files["logs"],
                                                        traces=files["spans"]))


def test_an_analysis_reading_the_traces_beside_the_logs_says_what_one_after_another_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spans, logs = _system(tmp_path)
    beside = analyze(load_telemetry(traces=spans, logs=logs), at=AT, onset="at").model_dump(mode="json")

    monkeypatch.setattr(TelemetryStore, "reads_concurrently", property(lambda store: False))
    after = analyze(load_telemetry(traces=spans, logs=logs), at=AT, onset="at").model_dump(mode="json")

    assert beside["hypotheses"] and beside == after


def test_ctrl_c_during_an_analysis_stops_the_traces_reads_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spans, logs = _system(tmp_path)
    store = load_telemetry(traces=spans, logs=logs)
    traces_read = pipeline.trace_signals

    def slow_trace_signals(store: TelemetryStore, *args: object) -> object:
        # reads that would take ~5 s each, one after another, as the traces' many queries run
        for _ in range(3):
            store.fetch("SELECT count(*) FROM range(600_000_000) AS t(i) WHERE i % 7 = 3")
        return traces_read(store, *args)

    def log_counts_then_ctrl_c(*args: object) -> object:
        threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()
        time.sleep(2)  # Ctrl-C pressed while the main thread works beside the traces' reads
        raise AssertionError("Ctrl-C did not arrive")

    monkeypatch.setattr(pipeline, "trace_signals", slow_trace_signals)
    monkeypatch.setattr(pipeline, "fetch_log_counts", log_counts_then_ctrl_c)
    # the traces' reads were interrupted one after another, not waited for
    _stopped_by_ctrl_c_within(3, lambda: analyze(store, at=AT, onset="at"))


def test_an_analysis_stopped_by_an_error_leaves_another_calls_query_on_the_store_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a server's calls read one store at once: one analysis failing interrupts its own traces' reads, not a query
    # another call runs on the same store
    spans, logs = _system(tmp_path)
    store = load_telemetry(traces=spans, logs=logs)
    slow = "SELECT count(*) AS n FROM range(150_000_000) AS t(i) WHERE i % 7 = 3"
    answers: list[object] = []
    other = threading.Thread(target=lambda: answers.append(store.fetch(slow)["n"][0].as_py()))

    def slow_trace_signals(store: TelemetryStore, *args: object) -> object:
        store.fetch(slow)
        raise AssertionError("the traces' read was not interrupted")

    def log_counts_failing(*args: object) -> object:
        time.sleep(0.3)  # both slow queries running
        raise RuntimeError("the logs could not be read")

    monkeypatch.setattr(pipeline, "trace_signals", slow_trace_signals)
    monkeypatch.setattr(pipeline, "fetch_log_counts", log_counts_failing)
    other.start()
    try:
        with pytest.raises(RuntimeError, match="the logs could not be read"):
            analyze(store, at=AT, onset="at")
    finally:
        other.join()
    assert answers == [150_000_000 // 7 + (150_000_000 % 7 > 3)]


def test_interrupting_a_threads_queries_as_they_end_is_no_error() -> None:
    # a query's cursor is closed as it ends: an interrupt reaching for it just then must not fail on a closed cursor
    store = TelemetryStore()
    interrupted: list[Exception] = []

    def many_queries() -> None:
        for _ in range(300):
            try:
                store.fetch("SELECT 1")
            except duckdb.InterruptException as err:
                interrupted.append(err)

    reader = threading.Thread(target=many_queries)
    reader.start()
    while reader.is_alive():
        store.interrupt_queries(reader.ident or 0)
    reader.join()
    assert interrupted  # the interrupts did reach queries


def test_log_files_read_at_once_keep_each_entrys_own_file_and_line(tmp_path: Path) -> None:
    # three minute files: the second with a stack trace in a quoted message (two lines, one record), the third with
    # a line of too many fields (set aside): every entry is found at the line it starts on in its own file
    files = []
    for k in range(3):
        lines = ["ts,service,level,message"]
        for i in range(4):
            trace = "\nat Stack.trace" if (k, i) == (1, 1) else ""
            lines.append(f'2024-05-01T10:0{k}:{10 * i:02d}Z,api,INFO,"msg f{k} r{i}{trace}"')
        if k == 2:
            lines.insert(2, "2024-05-01T10:02:05Z,api,INFO,too,many,fields")
        path = tmp_path / f"logs-{k}.csv"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)

    store = load_telemetry(logs=files)

    origins = store.fetch(f"SELECT file, line, message FROM ({store.log_origins_sql()})").to_pylist()
    found = {row["message"].split("\n")[0]: (Path(row["file"]).name, row["line"]) for row in origins}
    expected = {}
    for path in files:
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if "msg" in text:
                expected[text.split('"')[1]] = (path.name, number)
    assert found == expected and len(expected) == 12
    assert [(r.file, [row[0] for row in r.rows]) for r in store.rejected] == [(str(files[2]), [3])]
