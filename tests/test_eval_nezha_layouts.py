"""`eval nezha` and `analyze` on days in Nezha's layout that vary as an unseen day may: several days in one folder,
fault types and pod names not seen before, labels and files missing, empty or cut short. Generated days only."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from cli_process import assert_one_line_error, run_cli
from incidentlens.eval.nezha import evaluate_nezha, null_calibration, read_labels
from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.views import NO_ROWS
from nezha_days import PODS, label, write_day

DAY, OTHER_DAY = "2022-08-22", "2022-08-23"
CART_FAULT = label(f"{DAY} 10:20:30", PODS["cartservice"], "cpu_contention")


@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nezha-day")
    write_day(root, DAY, [CART_FAULT])
    return root


@pytest.fixture
def copy(one_day: Path, tmp_path: Path) -> Path:
    """A copy of the generated day to change."""
    shutil.copytree(one_day, tmp_path / "data")
    return tmp_path / "data"


def _labels(data: Path) -> Path:
    return data / "rca_data" / DAY / f"{DAY}-fault_list.json"


def test_every_day_in_the_folder_is_scored_with_figures_per_day_and_overall(tmp_path: Path):
    write_day(tmp_path, DAY, [CART_FAULT])
    write_day(tmp_path, OTHER_DAY, [label(f"{OTHER_DAY} 10:22:10", PODS["adservice"], "network_delay")])
    summary = evaluate_nezha(tmp_path).summary()
    assert summary["faults"] == 2 and summary["top1_count"] == 2
    assert {day: scores["faults"] for day, scores in summary["by_day"].items()} == {DAY: 1, OTHER_DAY: 1}
    table = run_cli("eval", "nezha", "--data", str(tmp_path))
    assert table.returncode == 0, table.stderr
    rows = [line.split()[:2] for line in table.stdout.splitlines()]
    assert [row for row in rows if row and row[0] in (DAY, OTHER_DAY, "all")] == [[DAY, "1"], [OTHER_DAY, "1"],
                                                                                   ["all", "2"]]


def test_a_fault_type_not_seen_before_is_scored_under_its_own_type(copy: Path):
    _labels(copy).write_text(json.dumps({"10": [{**CART_FAULT, "inject_type": "memory_leak"}]}))
    report = evaluate_nezha(copy)
    assert list(report.by_type()) == ["memory_leak"] and report.faults[0].rank == 1


def test_a_pod_named_without_its_replica_set_is_its_own_service(copy: Path):
    _labels(copy).write_text(json.dumps({"10": [{**CART_FAULT, "inject_pod": "cartservice"}]}))
    score = evaluate_nezha(copy).faults[0]
    assert (score.service, score.rank) == ("cartservice", 1)


def test_an_hour_with_no_faults_adds_none_and_a_list_with_none_at_all_is_refused(copy: Path):
    _labels(copy).write_text(json.dumps({"09": [], "10": [CART_FAULT], "11": []}))
    assert evaluate_nezha(copy).summary()["faults"] == 1
    _labels(copy).write_text(json.dumps({"09": [], "10": []}))
    assert_one_line_error(run_cli("eval", "nezha", "--data", str(copy)), "rca_data", "no faults listed")


def test_one_list_of_faults_without_hours_is_read_too(copy: Path):
    _labels(copy).write_text(json.dumps([CART_FAULT]))
    assert [f.service for f in read_labels(copy).faults] == ["cartservice"]


def test_a_label_that_cannot_be_read_is_set_aside_and_said(copy: Path):
    unnamed = {key: value for key, value in CART_FAULT.items() if key != "inject_type"}
    _labels(copy).write_text(json.dumps({"10": [CART_FAULT, unnamed], "11": None}))
    report = evaluate_nezha(copy)
    assert len(report.faults) == 1
    assert report.set_aside == [f"{DAY}-fault_list.json hour 10 fault 2: no 'inject_type'",
                                f"{DAY}-fault_list.json hour 11: not a list of faults"]
    table = run_cli("eval", "nezha", "--data", str(copy))
    assert table.returncode == 0 and "Traceback" not in table.stderr
    assert f"warning: set aside: {DAY}-fault_list.json hour 10 fault 2: no 'inject_type'" in table.stderr


def test_an_injection_time_with_a_zone_is_read_in_utc(copy: Path):
    _labels(copy).write_text(json.dumps({"18": [{**CART_FAULT, "inject_time": "2022-08-22T18:20:30+08:00"}]}))
    score = evaluate_nezha(copy).faults[0]
    assert (score.inject_time, score.rank, score.note) == ("2022-08-22T10:20:30Z", 1, None)


def test_a_fault_without_log_or_trace_minutes_is_scored_and_says_so(copy: Path):
    for folder in ("log", "trace"):
        for minute in ("10_20", "10_21", "10_22"):
            next((copy / "rca_data" / DAY / folder).glob(f"{minute}_*")).unlink()
    score = evaluate_nezha(copy).faults[0]
    assert score.rank == 1  # from its CPU and the hour of traces before
    assert score.note == "no log file for its minutes; no trace file for its minutes"


def test_a_day_without_metric_files_is_ranked_on_its_logs_and_traces_and_says_so(copy: Path):
    shutil.rmtree(copy / "rca_data" / DAY / "metric")
    score = evaluate_nezha(copy).faults[0]
    assert score.rank == 1 and score.note == "no per-pod metric files (metric/<pod>_metric.csv)"


def test_a_fault_after_the_metrics_end_is_scored_and_says_so(copy: Path):
    for path in (copy / "rca_data" / DAY / "metric").glob("*_metric.csv"):
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:12]))  # 10:00 to 10:10
    score = evaluate_nezha(copy, history=timedelta(minutes=5)).faults[0]  # metrics of 10:15:30 on
    assert score.note == "no metric sample in the hour around it" and score.rank == 1


def test_a_metric_file_without_a_column_keeps_the_others_metrics(copy: Path):
    path = copy / "rca_data" / DAY / "metric" / f"{PODS['adservice']}_metric.csv"
    lines = [line.split(",") for line in path.read_text().splitlines()]
    path.write_text("\n".join(",".join(cells[:4] + cells[5:]) for cells in lines) + "\n")  # no CpuUsageRate(%)
    metrics = load_telemetry(metrics=str(copy / "rca_data" / DAY / "metric" / "*_metric.csv"))
    counts = metrics.fetch("SELECT service, count(DISTINCT metric) AS n FROM metrics GROUP BY ALL").to_pylist()
    assert {row["service"]: row["n"] for row in counts} == {"frontend": 8, "cartservice": 8, "adservice": 7}
    assert evaluate_nezha(copy).faults[0].rank == 1


def test_an_empty_gzip_minute_is_left_out_and_named(copy: Path):
    day = copy / "rca_data" / DAY
    (day / "log" / "10_21_log.csv.gz").write_bytes(b"")  # a stream never written: no gzip header at all
    assert evaluate_nezha(copy).faults[0].note == "unreadable, left out: 10_21_log.csv.gz"
    out = copy / "out"
    result = run_cli("analyze", "--at", "2022-08-22T10:20:30Z", "--onset", "at", "--out", str(out),
                     "--metrics", str(day / "metric" / "*_metric.csv"),
                     "--logs", str(day / "log" / "10_21_log.csv.gz"), "--logs", str(day / "log" / "10_22_log.csv.gz"),
                     "--traces", str(day / "trace" / "10_21_trace.csv.gz"))
    assert result.returncode == 0, result.stderr
    assert f"warning: {day / 'log' / '10_21_log.csv.gz'}: {NO_ROWS}, left out" in result.stderr
    only_empty = run_cli("analyze", "--at", "2022-08-22T10:20:30Z", "--out", str(out),
                         "--logs", str(day / "log" / "10_21_log.csv.gz"))
    assert_one_line_error(only_empty, "10_21_log.csv.gz", "no rows")


def test_the_null_check_counts_the_faults_it_has_no_pseudo_onset_for_and_the_labels_it_set_aside(copy: Path):
    unnamed = {key: value for key, value in CART_FAULT.items() if key != "inject_pod"}
    _labels(copy).write_text(json.dumps({"10": [CART_FAULT, unnamed]}))
    (copy / "rca_data" / DAY / "trace" / "10_20_trace.csv.gz").unlink()  # the minute before the fault's
    found = null_calibration(copy)
    assert (found["faults"], found["runs"]) == (1, 0)
    assert found["set_aside"] == [f"{DAY}-fault_list.json hour 10 fault 2: no 'inject_pod'"]


def test_a_day_folder_without_its_fault_list_is_said_not_scored(copy: Path):
    (copy / "rca_data" / "2022-08-24" / "metric").mkdir(parents=True)  # metrics, but no 2022-08-24-fault_list.json
    labels = read_labels(copy)
    assert len(labels.faults) == 1
    assert labels.set_aside == ["rca_data/2022-08-24: no 2022-08-24-fault_list.json, not scored"]


def test_a_fault_list_saved_with_a_byte_order_mark_is_read(copy: Path):
    _labels(copy).write_text(json.dumps({"10": [CART_FAULT]}), encoding="utf-8-sig")
    assert [f.service for f in read_labels(copy).faults] == ["cartservice"]


def test_gzipped_per_pod_metric_files_are_read_as_plain_ones(copy: Path):
    for path in (copy / "rca_data" / DAY / "metric").glob("*_metric.csv"):
        with gzip.open(f"{path}.gz", "wt") as packed:
            packed.write(path.read_text())
        path.unlink()
    score = evaluate_nezha(copy).faults[0]
    assert score.rank == 1 and score.note is None


def _day(data: Path) -> Path:
    return data / "rca_data" / DAY


def test_minute_files_plain_and_gzipped_in_one_folder_are_read_alike(one_day: Path, copy: Path):
    for folder in ("log", "trace"):
        for packed in sorted((_day(copy) / folder).glob("*.csv.gz"))[::2]:  # every other minute as plain .csv
            packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
            packed.unlink()
    mixed, whole = evaluate_nezha(copy).faults[0], evaluate_nezha(one_day).faults[0]
    assert (mixed.rank, mixed.ranked, mixed.confidences, mixed.note) == (1, whole.ranked, whole.confidences, None)


@pytest.mark.parametrize("absent", [("log",), ("trace",), ("log", "trace")])
def test_a_day_without_its_log_or_trace_folder_is_ranked_on_the_rest_and_says_so(copy: Path, absent: tuple[str]):
    for folder in absent:
        shutil.rmtree(_day(copy) / folder)
    report = evaluate_nezha(copy)
    roles = {"log": "logs", "trace": "traces"}
    assert report.set_aside == [f"{DAY}: no {folder}/ folder, its faults ranked without {roles[folder]}"
                                for folder in absent]
    score = report.faults[0]
    assert score.rank == 1  # from its CPU
    assert score.note == "; ".join(f"no {folder} file for its minutes" for folder in absent)


def test_empty_log_and_trace_folders_leave_each_fault_its_metrics(copy: Path):
    for folder in ("log", "trace"):
        shutil.rmtree(_day(copy) / folder)
        (_day(copy) / folder).mkdir()
    score = evaluate_nezha(copy).faults[0]
    assert (score.rank, score.note) == (1, "no log file for its minutes; no trace file for its minutes")


def test_a_fault_on_a_pod_without_a_metric_file_is_scored_and_says_so(copy: Path):
    _labels(copy).write_text(json.dumps({"10": [{**CART_FAULT, "inject_pod": "redis-cart-5b7d8c8c9f-x2k8q"}]}))
    score = evaluate_nezha(copy).faults[0]
    assert (score.service, score.rank) == ("redis-cart", None)  # nothing of it to rank: not found, and why
    assert score.note == "no metric file for its pod: redis-cart-5b7d8c8c9f-x2k8q (metric/<pod>_metric.csv)"


TWIN = "cartservice-579f59597d-q8zkp"


def _second_replica(day: Path) -> None:
    """A second pod of cartservice: its own metric file (the first pod's rows, named for it, 300 ms later), and every
    other of the first pod's log lines and spans moved to it."""
    first = day / "metric" / f"{PODS['cartservice']}_metric.csv"
    (day / "metric" / f"{TWIN}_metric.csv").write_text(
        first.read_text().replace(PODS["cartservice"], TWIN).replace(".196000455 +0000", ".496000455 +0000"))
    for path in [*(day / "log").glob("*.csv.gz"), *(day / "trace").glob("*.csv.gz")]:
        lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
        pod_lines = [n for n, line in enumerate(lines) if f",{PODS['cartservice']}," in line]
        for n in pod_lines[::2]:
            lines[n] = lines[n].replace(f",{PODS['cartservice']},", f",{TWIN},")
        path.write_bytes(gzip.compress("".join(lines).encode()))


def test_two_replicas_of_a_service_are_that_one_service(copy: Path):
    day = _day(copy)
    _second_replica(day)
    store = load_telemetry(metrics=str(day / "metric" / "*_metric.csv"), logs=str(day / "log" / "10_2*"),
                           traces=str(day / "trace" / "10_2*"))
    for view in ("metrics", "logs", "spans"):
        services = store.fetch(f"SELECT DISTINCT service FROM {view} ORDER BY 1").column("service").to_pylist()
        assert services == ["adservice", "cartservice", "frontend"][view == "logs":], view  # ads log nothing
    score = evaluate_nezha(copy).faults[0]
    assert (score.service, score.rank, score.note) == ("cartservice", 1, None)


def _healthy_replica(day: Path, level: float) -> None:
    """A second pod of cartservice that the fault left alone, running at `level` times the first pod's CPU before
    it (replicas hold their own share of the load): its rows are the fault-free day's, 20 s later."""
    healthy = write_day(day.parent.parent.parent / "healthy", DAY, []) / "metric" / f"{PODS['cartservice']}_metric.csv"
    header, *rows = healthy.read_text().splitlines()
    twin = [header]
    for row in rows:
        time, stamp, _, cpu, rate, *rest = row.split(",")
        twin.append(",".join([time.replace(":28.", ":48."), str(int(stamp) + 20), TWIN,
                              f"{float(cpu) * level:.3f}", f"{float(rate) * level:.3f}", *rest]))
    (day / "metric" / f"{TWIN}_metric.csv").write_text("\n".join(twin) + "\n")


def test_one_faulty_replica_of_two_ranks_its_service_first_from_metrics_alone(copy: Path):
    """Each pod's samples are one series: the faulty pod's CPU is not averaged with, or interleaved between, its
    healthy twin's (at three times its level, the twin's samples alone would hide the rise in one series' spread)."""
    _healthy_replica(_day(copy), level=3.0)
    score = evaluate_nezha(copy, without=["logs", "traces"]).faults[0]
    assert (score.service, score.rank, score.note) == ("cartservice", 1, None)


def test_inject_timestamp_off_by_hours_is_not_used_while_inject_time_has_the_minutes(copy: Path):
    eight_hours_off = str(int(CART_FAULT["inject_timestamp"]) + 8 * 3600)
    _labels(copy).write_text(json.dumps({"10": [{**CART_FAULT, "inject_timestamp": eight_hours_off}]}))
    score = evaluate_nezha(copy).faults[0]
    assert (score.inject_time, score.rank, score.note) == ("2022-08-22T10:20:30Z", 1, None)
    local_time = {**CART_FAULT, "inject_time": "2022-08-22 18:20:30"}  # UTC+8: no minute files then
    _labels(copy).write_text(json.dumps({"18": [local_time]}))
    score = evaluate_nezha(copy).faults[0]
    assert (score.inject_time, score.rank) == ("2022-08-22T10:20:30Z", 1)
    assert score.note == "timed by inject_timestamp: no log or trace minute at inject_time"


def test_data_may_be_given_as_the_rca_data_folder_or_one_day_s_folder(tmp_path: Path):
    write_day(tmp_path, DAY, [CART_FAULT])
    write_day(tmp_path, OTHER_DAY, [label(f"{OTHER_DAY} 10:22:10", PODS["adservice"], "network_delay")])
    assert [f.day for f in evaluate_nezha(tmp_path / "rca_data").faults] == [DAY, OTHER_DAY]
    assert [f.day for f in evaluate_nezha(tmp_path / "rca_data" / OTHER_DAY).faults] == [OTHER_DAY]
    unknown = run_cli("eval", "nezha", "--data", str(tmp_path), "--day", "2022-08-30")
    assert_one_line_error(unknown, "--day 2022-08-30", f"days found: {DAY}, {OTHER_DAY}")


def test_reference_minutes_asked_of_a_dataset_without_construct_data_are_said_missing(copy: Path):
    report = evaluate_nezha(copy, reference=True)
    assert report.faults[0].rank == 1
    assert report.set_aside == [f"{DAY}: no construct_data/{DAY}/ folder, its faults ranked without the reference "
                                "minutes"]


def test_kind_selects_a_fault_type_not_seen_before_and_refuses_a_misspelt_one(copy: Path):
    _labels(copy).write_text(json.dumps({"10": [{**CART_FAULT, "inject_type": "memory"}]}))
    ran = run_cli("eval", "nezha", "--data", str(copy), "--kind", "memory", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["by_type"]["memory"]["top1_count"] == 1
    misspelt = run_cli("eval", "nezha", "--data", str(copy), "--kind", "memory", "--kind", "memroy")
    assert_one_line_error(misspelt, "--kind memroy: no such faults (types: memory)")


def test_malformed_rows_of_a_metric_file_are_set_aside_and_counted_once(copy: Path):
    path = _day(copy) / "metric" / f"{PODS['adservice']}_metric.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[5] = "garbage,row\n"  # too few fields
    path.write_text("".join(lines))
    report = evaluate_nezha(copy)
    assert report.faults[0].rank == 1
    rows = len(lines) - 1  # the header is not counted
    assert report.set_aside == [f"{DAY}: {path}: 1 of {rows} records of {path.name} unreadable (line 6), set aside"]


def test_analyze_on_every_csv_of_a_metric_folder_leaves_out_the_list_of_call_pairs(copy: Path):
    metric = _day(copy) / "metric"
    (metric / "dependency.csv").write_text("Source,Target,Weight\nfrontend,cartservice,1\nfrontend,adservice,1\n")
    for name in ("source_50.csv", "destination_50.csv"):  # the day's per-edge p50 latency, a column per edge
        (metric / name).write_text("time,timestamp,frontend_cartservice,frontend_adservice\n" + "".join(
            f"2022-08-22 10:{m:02d}:28.66 +0000 UTC m=+0.66,{1661162428 + 60 * m},0.004,0.001\n" for m in range(30)))
    result = run_cli("analyze", "--at", "2022-08-22T10:20:30Z", "--onset", "at", "--out", str(copy / "out"),
                     "--metrics", str(metric / "*.csv"), "--traces", str(_day(copy) / "trace" / "*"))
    assert result.returncode == 0, result.stderr
    assert f"warning: {metric / 'dependency.csv'}: no time column" in result.stderr
    top = json.loads((copy / "out" / "analysis.json").read_text())["hypotheses"][0]
    assert top["service"] == "cartservice"


def test_one_minute_file_holding_the_injection_is_scored_as_a_user_who_hands_over_the_alerts_minute(copy: Path):
    # the cart fault at 10:20:30 lies in the file named 10_21 (a file holds the minute before its name)
    report = evaluate_nezha(copy, fault_minutes=(1,), log_history=timedelta(0))
    assert report.summary()["fault_minutes"] == [1]
    ran = run_cli("eval", "nezha", "--data", str(copy), "--fault-minutes", "1", "--log-history", "0", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["fault_minutes"] == [1]
    assert json.loads(ran.stdout)["per_fault"][0]["inject_time"] == report.faults[0].inject_time


def test_the_scores_count_the_root_causes_the_verdict_named_and_those_named_wrong(copy: Path):
    summary = evaluate_nezha(copy).summary()
    assert summary["named"] == 1 and summary["named_wrong"] == 0  # cart, found first at 96%
    assert summary["second_suspects"] == 0  # one fault: no second, independent suspect beside it
    table = run_cli("eval", "nezha", "--data", str(copy))
    assert "a root cause named (the verdict) for 1 of 1 faults, 0 of them the wrong service" in table.stdout


def test_a_ranker_that_gives_no_verdict_counts_no_root_causes_named(copy: Path):
    # the signals ranker orders services and states no verdict: its "named 0, named wrong 0" read as a ranker that
    # never named a root cause, which it cannot do
    report = evaluate_nezha(copy, ranker="signals").to_dict()
    assert (report["named"], report["named_wrong"], report["second_suspects"]) == (None, None, None)
    assert all(scores["named"] is None for scores in report["by_type"].values())
    table = run_cli("eval", "nezha", "--data", str(copy), "--ranker", "signals")
    assert table.returncode == 0, table.stderr
    assert "a root cause named" not in table.stdout


@pytest.mark.parametrize("minutes", ["x", "1,,2", "90"])
def test_fault_minutes_that_are_not_minutes_near_the_injection_are_refused_in_one_line(copy: Path, minutes: str):
    assert_one_line_error(run_cli("eval", "nezha", "--data", str(copy), "--fault-minutes", minutes),
                          f"--fault-minutes {minutes}: expected minutes counted from the injection's")


@pytest.mark.parametrize("minutes", ["0", "-2,-1,0"])
def test_fault_minutes_with_no_file_holding_the_injection_or_after_it_are_refused_in_one_line(copy: Path,
                                                                                                minutes: str):
    # a file holds the minute before its name: 0 is the minute before the injection's, so these files end before
    # the fault began, and every fault was scored on telemetry from before it
    assert_one_line_error(run_cli("eval", "nezha", "--data", str(copy), "--fault-minutes", minutes),
                          f"--fault-minutes {minutes}: none of these files holds the injection or anything after it")


def test_the_null_check_refuses_other_fault_minutes(copy: Path):
    assert_one_line_error(run_cli("eval", "nezha", "--data", str(copy), "--null", "--fault-minutes", "1"),
                          "--null and --fault-minutes")


def test_the_null_check_takes_the_default_fault_minutes_however_written(copy: Path):
    ran = run_cli("eval", "nezha", "--data", str(copy), "--null", "--fault-minutes", "2,1,0,1", "--json")
    assert ran.returncode == 0, ran.stderr
