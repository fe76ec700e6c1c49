"""Score root-cause ranking on Nezha's fault days (TrainTicket, OnlineBoutique: any day in that layout).

The layout: `rca_data/<day>/<day>-fault_list.json` (the labels), `rca_data/<day>/{log,trace}/HH_MM_*.csv` (one
minute each; gzipped `.csv.gz` as in the shared copy, or plain `.csv` as in Nezha's repository) and
`rca_data/<day>/metric/<pod>_metric.csv` (one row per minute per pod; pods are named
`<service>-<replicaset>-<id>`), with fault-free reference minutes in `construct_data/<day>/`.
For each fault the telemetry around its `inject_time` is loaded as a user would give it: the three one-minute log
and trace files that cover it (`HH_MM_*` holds about [HH:MM-1min, HH:MM)), optionally the day's fault-free
reference minute (`construct_data/`) when it lies before them, and the per-pod metrics of the hour before through a
few minutes after (cut once from the day's per-pod files into a canonical Parquet file in a scratch directory). Then
`analyze(store, at=inject_time, onset="at")` ranks the services, the injection time taken as the incident's known
start; the labelled root cause is the injected pod without its replica-set suffix. Scores: top-1, top-3, per fault
type, and seconds per fault.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from incidentlens.analysis.periods import PROBLEM_LEVELS, in_span, sql_in
from incidentlens.errors import InputError
from incidentlens.eval.calibration import Calibration, calibration
from incidentlens.telemetry import TelemetryStore, load_telemetry, naive_utc, sql_ts
from incidentlens.telemetry.columns import literal
from incidentlens.telemetry.logfields import service_of_pod

# The paper's figures per system (45 TrainTicket faults on two days, 56 OnlineBoutique faults on two), for the table.
PAPER = {"trainticket": {"top1": 0.867, "top3": 0.978}, "onlineboutique": {"top1": 0.929, "top3": 0.964}}
LABELS_SUFFIX = "-fault_list.json"
#: the shared TrainTicket day, for callers that name it (`rca_dir(data, fault.day)` serves any day)
DAY = "2023-01-29"
POD_METRIC_SUFFIX = "_metric.csv"  # gzipped too (`_metric.csv.gz`), as the log and trace minutes may be
# Log/trace files are one minute each and named for the minute they end at: HH_MM holds [HH:MM-1, HH:MM), so the
# files of the injection's minute and the next two cover a minute before it to two minutes after.
FILE_MINUTES_FROM_INJECTION = (0, 1, 2)
#: (source, folder, the minute file's kind): `log/HH_MM_log.csv.gz`, `trace/HH_MM_trace.csv`, ...
ROLES = (("logs", "log", "_log"), ("traces", "trace", "_trace"))
#: a minute's file is `HH_MM_log` / `HH_MM_trace` with one of these, gzipped first (when a minute has both, that one)
MINUTE_FILE_SUFFIXES = (".csv.gz", ".csv")
#: the sources a run can leave out (`--without`), to score the ranking on what a user without them has
SOURCES = ("metrics", "logs", "traces", "calls")
#: the day's per-call-edge p50 latency (seconds), one column `<caller>_<callee>` per edge and a row per minute, as the
#: caller's side measured it and as the callee's did; `dependency.csv` (`Source,Target,...`) lists the call pairs,
#: which split the column names (a service name may itself hold `_`)
CALL_LATENCY_FILES = (("client", "source_50.csv"), ("server", "destination_50.csv"))
CALL_PAIRS_FILE = "dependency.csv"
METRIC_HISTORY = timedelta(minutes=60)
#: the day's log and trace files of this long before the fault's own are given too (earlier faults' minutes
#: included), as a user with a log store has the hour before an alert
LOG_HISTORY = timedelta(minutes=60)
METRIC_FUTURE = timedelta(minutes=5)


@dataclass(frozen=True)
class Ranking:
    """Services, most likely root cause first, and why the list is empty or short (if it is)."""

    services: list[str]
    note: str | None = None
    confidences: list[float] = field(default_factory=list)  # each service's stated confidence, when the ranker has one
    mechanisms: list[str] = field(default_factory=list)  # each service's mechanism (kind), when the ranker names one
    verdict: str | None = None  # "root_cause" (the first service named) or "inconclusive"; None: the ranker gives none
    second: str | None = None  # a second, independent suspect the verdict names beside the first (`verdict.second`)


Ranker = Callable[[TelemetryStore, datetime], Ranking]


@dataclass(frozen=True)
class NezhaFault:
    """One labelled injection."""

    inject_time: datetime
    clock: str  # the label field `inject_time` was read from: "inject_time", or "inject_timestamp" (`injection_time`)
    pod: str
    service: str
    kind: str
    day: str = ""


@dataclass
class FaultScore:
    """How one fault was ranked."""

    inject_time: str
    service: str
    kind: str
    day: str
    ranked: list[str]
    rank: int | None
    seconds: float
    note: str | None = None
    confidences: list[float] = field(default_factory=list)
    mechanism: str | None = None  # the kind named for the injected service, when it is ranked and the ranker names one
    verdict: str | None = None  # the review's verdict (`Ranking.verdict`): a root cause named, or inconclusive
    second: str | None = None  # a second, independent suspect named beside the first (`Ranking.second`)


@dataclass
class NezhaReport:
    """Top-1/top-3 overall and per fault type, time per fault, and each fault's ranking."""

    ranker: str
    faults: list[FaultScore] = field(default_factory=list)
    without: list[str] = field(default_factory=list)  # the sources left out
    alert_after: float | None = None  # seconds after each injection of the alert time, when analysed as an alert
    fault_minutes: list[int] = field(default_factory=lambda: list(FILE_MINUTES_FROM_INJECTION))  # its own files
    set_aside: list[str] = field(default_factory=list)  # labels that could not be read, metric data left out: why

    def summary(self) -> dict[str, Any]:
        return {"ranker": self.ranker, "without": self.without, "alert_after": self.alert_after,
                "fault_minutes": self.fault_minutes,
                **_scores(self.faults, self.verdicts), "by_type": self.by_type(),
                "by_day": self.by_day(), "paper": PAPER, "calibration": self.calibration().model_dump(),
                "notes": self.note_counts(), "set_aside": self.set_aside}

    def note_counts(self) -> dict[str, int]:
        """How many faults were scored with each kind of note (what a fault lacked, how it was timed)."""
        return dict(Counter(part.split(":")[0] for f in self.faults if f.note for part in f.note.split("; ")))

    def calibration(self) -> Calibration:
        """Of the hypotheses stated at about X% confidence, the share naming the injected service."""
        return calibration((confidence, service == f.service) for f in self.faults
                           for confidence, service in zip(f.confidences, f.ranked, strict=False))

    @property
    def verdicts(self) -> bool:
        """Whether the ranker states a verdict, so that the root causes it named can be counted."""
        return self.ranker in VERDICT_RANKERS

    def by_day(self) -> dict[str, dict[str, Any]]:
        days = sorted({f.day for f in self.faults})
        return {day: _scores([f for f in self.faults if f.day == day], self.verdicts) for day in days}

    def by_type(self) -> dict[str, dict[str, Any]]:
        kinds = sorted({f.kind for f in self.faults})
        return {kind: _scores([f for f in self.faults if f.kind == kind], self.verdicts) for kind in kinds}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "per_fault": [asdict(f) for f in self.faults]}


def _scores(faults: Sequence[FaultScore], verdicts: bool) -> dict[str, Any]:
    """Top-1/top-3, time per fault, the root causes the verdict named (None when the ranker states no verdict:
    `verdicts`) and the mechanisms named."""
    count = len(faults)
    top1 = sum(1 for f in faults if f.rank == 1)
    top3 = sum(1 for f in faults if f.rank is not None and f.rank <= 3)
    seconds = [f.seconds for f in faults]
    return {
        "faults": count,
        "top1": top1 / count if count else 0.0,
        "top3": top3 / count if count else 0.0,
        "top1_count": top1,
        "top3_count": top3,
        "mean_seconds": sum(seconds) / count if count else 0.0,
        "max_seconds": max(seconds, default=0.0),
        # the answers a reader acts on: a root cause the verdict named, and how many of those were another service
        "named": sum(1 for f in faults if f.verdict == "root_cause") if verdicts else None,
        "named_wrong": sum(1 for f in faults if f.verdict == "root_cause" and f.rank != 1) if verdicts else None,
        # a second, independent suspect named beside the first: on a day of one fault at a time, a false one
        "second_suspects": sum(1 for f in faults if f.second) if verdicts else None,
        # the mechanism named for the injected service where it was ranked first (does a CPU fault read as one?)
        "mechanisms": dict(sorted(Counter(f.mechanism for f in faults if f.rank == 1 and f.mechanism).items())),
    }


def find_days(data: Path) -> list[str]:
    """The days under `data/rca_data` that carry a fault list, in order."""
    root = data / "rca_data"
    days = sorted(p.name for p in root.glob("*") if (p / f"{p.name}{LABELS_SUFFIX}").is_file()) if root.is_dir() else []
    if not days:
        raise InputError(f"{root}/<day>/<day>{LABELS_SUFFIX}: not found (--data should be a Nezha dataset directory "
                         "such as nezha-trainticket or nezha-onlineboutique)")
    return days


def dataset_dir(data: Path, day: str | None = None) -> tuple[Path, str | None]:
    """The dataset directory (the one holding `rca_data/`) and the day to score, for `data` given as that directory,
    as its `rca_data/` folder, or as one day's folder (`rca_data/<day>/`: that day alone)."""
    if (data / "rca_data").is_dir() or not data.is_dir():
        return data, day
    if data.name == "rca_data":
        return data.parent, day
    if data.parent.name == "rca_data" and (data / f"{data.name}{LABELS_SUFFIX}").is_file():
        if day and day != data.name:
            raise InputError(f"--day {day}: --data {data} is the folder of day {data.name} alone")
        return data.parent.parent, data.name
    return data, day


def _unlabelled_days(data: Path) -> list[str]:
    """The folders under `data/rca_data` with no fault list of their own name (a day that cannot be scored)."""
    folders = (path for path in (data / "rca_data").iterdir() if path.is_dir())
    return sorted(path.name for path in folders if not (path / f"{path.name}{LABELS_SUFFIX}").is_file())


def rca_dir(data: Path, day: str) -> Path:
    """Where one day's labels, metrics, logs and traces are."""
    return data / "rca_data" / day


def load_faults(data: Path, day: str | None = None) -> list[NezhaFault]:
    """The labelled faults of `day` (every day found when None) in time order (`read_labels`)."""
    return read_labels(data, day).faults


@dataclass
class Labels:
    """The labelled faults in time order, and each label set aside (unreadable), with its file and why."""

    faults: list[NezhaFault] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)


def read_labels(data: Path, day: str | None = None) -> Labels:
    """The labelled faults of `day` (every day found when None) in time order, each at its `inject_time` (UTC on
    the shared days; on one TrainTicket day `inject_timestamp` is ~8 h off it), or at `inject_timestamp` when only
    that time has the fault's own log or trace minute (`injection_time`). A label that cannot be read (a field
    missing, a time that does not parse) is set aside and said, not the whole file; a file that is not a fault
    list (`{"HH": [fault, ...]}`, or one list of faults) is an InputError."""
    days = [day] if day else find_days(data)
    labels = Labels(set_aside=[] if day else [f"rca_data/{name}: no {name}{LABELS_SUFFIX}, not scored"
                                              for name in _unlabelled_days(data)])
    for name in days:
        day_dir = rca_dir(data, name)
        path = day_dir / f"{name}{LABELS_SUFFIX}"
        if not path.is_file():
            raise InputError(f"{path}: not found (--day {name}: days found: {', '.join(find_days(data))})")
        try:
            listed = json.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark, as some editors write
        except (ValueError, OSError) as err:
            raise InputError(f"{path}: not a Nezha fault list ({type(err).__name__}: {err})") from None
        if not isinstance(listed, dict | list):
            raise InputError(f"{path}: not a Nezha fault list (expected {{\"HH\": [fault, ...]}})")
        for hour, items in listed.items() if isinstance(listed, dict) else [("", listed)]:
            _read_hour(labels, path, hour, items, day_dir)
    labels.faults.sort(key=lambda f: f.inject_time)
    return labels


def _read_hour(labels: Labels, path: Path, hour: str, items: Any, day_dir: Path) -> None:
    """One hour's faults into `labels`; a fault that cannot be read is set aside, with why."""
    where = f"{path.name}{f' hour {hour}' if hour else ''}"
    if not isinstance(items, list):
        labels.set_aside.append(f"{where}: not a list of faults")
        return
    for number, item in enumerate(items, start=1):
        try:
            pod = str(item["inject_pod"])
            labels.faults.append(NezhaFault(*injection_time(item, day_dir), pod, service_of_pod(pod),
                                            str(item["inject_type"]), day_dir.name))
        except KeyError as err:
            labels.set_aside.append(f"{where} fault {number}: no {err}")
        except (ValueError, TypeError, OverflowError) as err:
            labels.set_aside.append(f"{where} fault {number}: {type(err).__name__}: {err}")


def injection_time(item: dict[str, Any], day_dir: Path) -> tuple[datetime, str]:
    """When a labelled fault was injected, and which label field says so. `inject_time` unless none of the log and
    trace files a fault then would be given exists while one of `inject_timestamp`'s (read as UTC) does: the two
    disagree by hours on some days, and the minute files, named in UTC, show which clock the day's labels keep.
    A time with a zone (`2022-08-22T10:40:30Z`) is taken in UTC."""
    stated = naive_utc(datetime.fromisoformat(str(item["inject_time"])))
    if "inject_timestamp" not in item or _has_minute_files(day_dir, stated):
        return stated, "inject_time"
    stamped = datetime.fromtimestamp(float(item["inject_timestamp"]), tz=UTC).replace(tzinfo=None)
    return (stamped, "inject_timestamp") if _has_minute_files(day_dir, stamped) else (stated, "inject_time")


def _has_minute_files(day_dir: Path, moment: datetime) -> bool:
    """Whether a log or trace file of its own minutes (`fault_files`) would be given to a fault injected then."""
    return any(files_around(day_dir, moment).values())


def fault_files(day_dir: Path, fault: NezhaFault,
                minutes: Sequence[int] = FILE_MINUTES_FROM_INJECTION) -> dict[str, list[Path]]:
    """The log and trace files that cover the fault: the minute before it to two minutes after (`minutes`: which
    of the files, counted from the injection's minute)."""
    return files_around(day_dir, fault.inject_time, minutes)


def files_around(day_dir: Path, moment: datetime,
                 minutes: Sequence[int] = FILE_MINUTES_FROM_INJECTION) -> dict[str, list[Path]]:
    """The log and trace files of `minutes` counted from the minute of `moment`."""
    minute = moment.replace(second=0, microsecond=0)
    names = [f"{minute + timedelta(minutes=k):%H_%M}" for k in minutes]
    files = {role: [minute_file(day_dir / folder, f"{name}{kind}") for name in names] for role, folder, kind in ROLES}
    return {role: [p for p in paths if p is not None] for role, paths in files.items()}


def minute_file(folder: Path, stem: str) -> Path | None:
    """The file of one minute (`HH_MM_log`, `HH_MM_trace`) in whichever of MINUTE_FILE_SUFFIXES it has."""
    return next((folder / f"{stem}{suffix}" for suffix in MINUTE_FILE_SUFFIXES
                 if (folder / f"{stem}{suffix}").is_file()), None)


def reference_files(reference_dir: Path, fault: NezhaFault, first: int = 0) -> dict[str, list[Path]]:
    """The fault-free log and trace minutes of the same day (`construct_data/`) that end before the fault's own
    files begin (`first`: its first file, counted from the injection's minute): more history for the baseline, the
    way a user keeps yesterday's or the last hour's telemetry."""
    begins = own_files_begin(fault, first)
    return {role: [path for path, ends in _minute_files(reference_dir / folder, kind, fault.inject_time)
                   if ends <= begins]
            for role, folder, kind in ROLES}


def own_files_begin(fault: NezhaFault, first: int = 0) -> datetime:
    """When the fault's own files begin, the first of them `first` minutes from the injection's (a file holds the
    minute before the one it is named for)."""
    return fault.inject_time.replace(second=0, microsecond=0) + timedelta(minutes=first - 1)


def fault_inputs(day_dir: Path, fault: NezhaFault, minutes: Sequence[int] = FILE_MINUTES_FROM_INJECTION,
                 reference: bool = False, history: timedelta = LOG_HISTORY) -> dict[str, list[Path]]:
    """The fault's log and trace files (`fault_files`), after the day's files of `history` before them (earlier
    faults' minutes and all) and the day's fault-free reference minutes when `reference` (a user who keeps some
    quiet telemetry of the same day)."""
    files = fault_files(day_dir, fault, minutes)
    earlier = earlier_files(day_dir, fault, history, first=min(minutes))
    quiet = (reference_files(day_dir.parent.parent / "construct_data" / day_dir.name, fault, first=min(minutes))
             if reference else {})
    return {role: _unique_paths([*quiet.get(role, []), *earlier[role], *paths]) for role, paths in files.items()}


def earlier_files(day_dir: Path, fault: NezhaFault, history: timedelta, first: int = 0) -> dict[str, list[Path]]:
    """The day's log and trace files that end within `history` before the fault's own files begin (`first`: its
    first file, counted from the injection's minute)."""
    begins = own_files_begin(fault, first)
    return {role: [path for path, ends in _minute_files(day_dir / folder, kind, fault.inject_time)
                   if begins - history < ends <= begins]
            for role, folder, kind in ROLES}


def _minute_files(folder: Path, kind: str, day: datetime) -> list[tuple[Path, datetime]]:
    """The folder's `HH_MM<kind>` files (`_log`, `_trace`, in any of MINUTE_FILE_SUFFIXES) with the minute each
    ends at, in time order; one file per minute."""
    stems = sorted({path.name.removesuffix(suffix).removesuffix(kind) for suffix in MINUTE_FILE_SUFFIXES
                    for path in folder.glob(f"*{kind}{suffix}")})
    named = ((minute_file(folder, f"{stem}{kind}"), _file_minute(stem, day)) for stem in stems)
    return [(path, ends) for path, ends in named if path is not None and ends is not None]


def _unique_paths(paths: list[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def _file_minute(name: str, day: datetime) -> datetime | None:
    """`HH_MM` -> that minute of the fault's day (the file holds the minute before it); None for other names."""
    try:
        hour, minute = (int(part) for part in name.split("_"))
        return day.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        return None


class MetricsCut:
    """The day's per-pod metrics read once; `around(fault)` writes the fault's slice as canonical Parquet. A day
    without per-pod metric files has none to give (`missing` says so): its faults are ranked on the rest."""

    def __init__(self, day_dir: Path, scratch: Path, history: timedelta = METRIC_HISTORY) -> None:
        folder = day_dir / "metric"
        pods = sorted(path for suffix in ("", ".gz") for path in folder.glob(f"*{POD_METRIC_SUFFIX}{suffix}"))
        scratch.mkdir(parents=True, exist_ok=True)
        self.scratch = scratch
        self.history = history
        self.day: Path | None = None
        self.missing = None if pods else f"no per-pod metric files (metric/<pod>{POD_METRIC_SUFFIX})"
        self.warnings: list[str] = []  # what the day's metric files had that was left out (an empty file, NaNs)
        #: how many pods of each service have a metric file (`<pod>_metric.csv`: its pod name's service)
        self.pods = Counter(service_of_pod(path.name.split(POD_METRIC_SUFFIX)[0]) for path in pods)
        if not pods:
            return
        self.day = scratch / "metrics-day.parquet"
        store = load_telemetry(metrics=[str(p) for p in pods])
        self.warnings = list(store.warnings)  # unreadable lines set aside are among them, counted per file
        store.cursor().execute(
            f"COPY (SELECT ts, service, metric, value, pod FROM metrics ORDER BY ts) TO '{self.day}' (FORMAT parquet)"
        )

    def around(self, moment: datetime) -> Path | None:
        """The metrics of `history` before `moment` to a few minutes after; None when the day has none there."""
        return None if self.day is None else _slice_around(self.day, self.scratch / f"metrics-{moment:%H%M%S}.parquet",
                                                          moment, self.history)


class CallsCut:
    """The day's per-edge call latency (`CALL_LATENCY_FILES`) turned once into the long `calls` table (time, caller,
    callee, side, latency); `around(moment)` writes the fault's slice as MetricsCut does. A day without those files
    has none (`day` None)."""

    def __init__(self, day_dir: Path, scratch: Path, history: timedelta = METRIC_HISTORY) -> None:
        folder = day_dir / "metric"
        files = [(side, folder / name) for side, name in CALL_LATENCY_FILES]
        pairs = folder / CALL_PAIRS_FILE
        self.scratch, self.history = scratch, history
        self.day: Path | None = None
        self.warnings: list[str] = []  # the columns naming no call pair, left out
        if not all(path.is_file() for path in (pairs, *(path for _, path in files))):
            return
        scratch.mkdir(parents=True, exist_ok=True)
        self.day = scratch / "calls-day.parquet"
        con = duckdb.connect()
        try:
            self._write_day(con, pairs, files)
        except duckdb.Error as err:  # a file not in the layout: the day's faults are ranked without call metrics
            self.day = None
            self.warnings.append(f"{folder}: call latency files not read ({' '.join(str(err).split())[:160]}), "
                                 "left out")
        finally:
            con.close()

    def _write_day(self, con: duckdb.DuckDBPyConnection, pairs: Path, files: list[tuple[str, Path]]) -> None:
        """Unpivot each side's file, its column names split into caller and callee by the listed pairs."""
        con.execute(f"CREATE TABLE pairs AS SELECT DISTINCT Source || '_' || Target AS edge, Source AS caller, "
                    f"Target AS callee FROM read_csv({literal(str(pairs))}, all_varchar = true)")
        known = {row[0] for row in con.execute("SELECT edge FROM pairs").fetchall()}
        sides = []
        for side, path in files:
            wide = f"read_csv({literal(str(path))}, all_varchar = true)"
            names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {wide}").fetchall()]
            unknown = [name for name in names if name not in known | {"time", "timestamp"}]
            if unknown:
                self.warnings.append(f"{path}: {len(unknown)} column(s) naming no call pair of {CALL_PAIRS_FILE} "
                                     f"({', '.join(unknown[:3])}), left out")
            # the epoch seconds of `timestamp`, not `time` (Go's time.String(), with a monotonic clock reading)
            sides.append(f"""SELECT ts, caller, callee, {literal(side)} AS side, latency_s FROM (
    UNPIVOT (SELECT make_timestamp(CAST("timestamp" AS BIGINT) * 1000000) AS ts,
                    TRY_CAST(COLUMNS(* EXCLUDE (time, "timestamp")) AS DOUBLE) FROM {wide})
    ON COLUMNS(* EXCLUDE (ts)) INTO NAME edge VALUE latency_s) JOIN pairs USING (edge)""")
        con.execute(f"COPY ({' UNION ALL '.join(sides)} ORDER BY ts) TO {literal(str(self.day))} (FORMAT parquet)")

    def around(self, moment: datetime) -> Path | None:
        """The calls of `history` before `moment` to a few minutes after; None when the day has none there."""
        return None if self.day is None else _slice_around(self.day, self.scratch / f"calls-{moment:%H%M%S}.parquet",
                                                          moment, self.history)


def _slice_around(day: Path, path: Path, moment: datetime, history: timedelta) -> Path | None:
    """The rows of a day's canonical Parquet (a `ts` column) from `history` before `moment` to `METRIC_FUTURE` after
    it, written to `path`; None when there are none."""
    around = in_span("ts", (moment - history, moment + METRIC_FUTURE))
    con = duckdb.connect()
    try:
        con.execute(f"COPY (SELECT * FROM {literal(str(day))} WHERE {around}) "
                    f"TO {literal(str(path))} (FORMAT parquet)")
        rows = con.execute(f"SELECT count(*) FROM {literal(str(path))}").fetchone()
    finally:
        con.close()
    return path if rows and rows[0] else None


def analysis_ranker(store: TelemetryStore, at: datetime, onset: str = "at") -> Ranking:
    """The services in the order `analyze` ranks them as root cause, `at` the incident's known start (its top
    three hypotheses: a service ranked lower counts as not found); `onset="detect"`: `at` an alert time, the
    incident detected at it (`analyze --at T` without `--onset at`)."""
    from incidentlens.analysis import analyze

    result = analyze(store, at=at, onset=onset)
    return Ranking(_unique(h.service for h in result.hypotheses), note=result.reason,
                   confidences=[h.confidence for h in result.hypotheses],
                   mechanisms=[h.kind for h in result.hypotheses],
                   verdict=result.verdict.status if result.verdict else None,
                   second=result.verdict.second if result.verdict else None)


def signals_ranker(store: TelemetryStore, at: datetime) -> Ranking:
    """Rank services by generic before/after contrasts around a known injection time, fused by reciprocal rank.

    Five families, each from the canonical views only (nothing Nezha-specific): error/warn lines of templates not
    seen before `at`; the shift of the service's log-template mix (total variation distance); the most surprising
    template count (one that vanishes or appears while the service's other templates keep their pace); the shift
    of its spans' exclusive time (duration minus children, p90); and CPU saturation (robust z of `*cpu*` metrics
    against the half hour before). A service's score is the sum over families of 1 / (2 + its 0-based rank).
    """
    families = [
        _new_error_templates(store, at) if store.has("logs") else {},
        _template_shift(store, at) if store.has("logs") else {},
        _template_surprise(store, at) if store.has("logs") else {},
        _exclusive_latency_shift(store, at) if store.has("spans") else {},
        _cpu_saturation(store, at) if store.has("metrics") else {},
    ]
    ranked = fused_ranking(families)
    return Ranking(ranked, note=None if ranked else "no logs, spans or cpu metrics around the injection")


def fused_ranking(families: list[dict[str, float]]) -> list[str]:
    """The services by reciprocal-rank fusion of each family's scores (1 / (2 + the 0-based rank) summed over the
    families), scores equal to 9 decimals tied and ties in name order: a sum's last bit follows the order DuckDB
    added its terms in (0.5, 0.5000000000000001, 0.49999999999999994), which differs from run to run."""
    fused: dict[str, float] = {}
    for scores in families:
        for position, service in enumerate(sorted(scores, key=lambda s: (-round(scores[s], 9), s))):
            fused[service] = fused.get(service, 0.0) + 1.0 / (2 + position)
    return sorted(fused, key=lambda s: (-round(fused[s], 9), s))


def _by_service(store: TelemetryStore, sql: str) -> dict[str, float]:
    table = store.fetch(sql)
    return {s: v for s, v in zip(table.column("service").to_pylist(), table.column("score").to_pylist(),
                                 strict=True) if s is not None and v is not None}


def _new_error_templates(store: TelemetryStore, at: datetime) -> dict[str, float]:
    from incidentlens.analysis.masking import masked_sql

    return _by_service(store, f"""
        WITH lines AS (
            SELECT service, ts >= {sql_ts(at)} AS after, level IN {sql_in(PROBLEM_LEVELS)} AS problem,
                   {masked_sql()} AS template
            FROM logs
        )
        SELECT service, count(*)::DOUBLE AS score FROM lines
        WHERE after AND problem AND template NOT IN (SELECT template FROM lines WHERE NOT after)
        GROUP BY service""")


def _template_counts_sql(at: datetime) -> str:
    """Each service's masked templates with their line counts before and after `at`."""
    from incidentlens.analysis.masking import masked_sql

    return f"""
            SELECT service, {masked_sql()} AS template, count(*) FILTER (WHERE ts < {sql_ts(at)}) AS before,
                   count(*) FILTER (WHERE ts >= {sql_ts(at)}) AS after
            FROM logs GROUP BY ALL"""


def _template_shift(store: TelemetryStore, at: datetime) -> dict[str, float]:
    """Total variation distance between a service's template mix before and after, damped below 20 lines before."""
    return _by_service(store, f"""
        WITH counts AS ({_template_counts_sql(at)}
        ),
        shares AS (
            SELECT service, sum(before) OVER (PARTITION BY service) AS lines_before,
                   before / nullif(sum(before) OVER (PARTITION BY service), 0) AS p,
                   after / nullif(sum(after) OVER (PARTITION BY service), 0) AS q
            FROM counts
        )
        SELECT service, 0.5 * sum(abs(coalesce(p, 0) - coalesce(q, 0))) * least(1.0, max(lines_before) / 20.0) AS score
        FROM shares GROUP BY service HAVING max(lines_before) > 0""")


def _template_surprise(store: TelemetryStore, at: datetime) -> dict[str, float]:
    """Largest Poisson-like surprise of one template's count after `at`, against what the pace of the service's
    other templates predicts: a line that stops being logged (an exception cutting a code path short) or starts."""
    return _by_service(store, f"""
        WITH counts AS ({_template_counts_sql(at)}
        ),
        paced AS (
            SELECT service, before, after,
                   before * (sum(after) OVER (PARTITION BY service) - after + 1.0)
                          / (sum(before) OVER (PARTITION BY service) - before + 1.0) AS expected,
                   sum(before) OVER (PARTITION BY service) AS service_before
            FROM counts
        )
        SELECT service, max(abs(after - expected) / sqrt(expected + 1)) AS score
        FROM paced WHERE service_before > 0 GROUP BY service""")


def _exclusive_latency_shift(store: TelemetryStore, at: datetime) -> dict[str, float]:
    """log ratio of p90 exclusive span time after/before, for services with enough spans on both sides."""
    return _by_service(store, f"""
        WITH exclusive AS (
            SELECT parent.service, parent.start_ts >= {sql_ts(at)} AS after,
                   greatest(parent.duration_ms - coalesce(sum(child.duration_ms), 0), 0) AS own_ms
            FROM spans AS parent
            LEFT JOIN spans AS child ON child.trace_id = parent.trace_id AND child.parent_id = parent.span_id
            GROUP BY parent.trace_id, parent.span_id, parent.service, parent.start_ts, parent.duration_ms
        )
        SELECT service, ln(1 + quantile_cont(own_ms, 0.9) FILTER (WHERE after))
                        - ln(1 + quantile_cont(own_ms, 0.9) FILTER (WHERE NOT after)) AS score
        FROM exclusive GROUP BY service
        HAVING count(*) FILTER (WHERE after) > 5 AND count(*) FILTER (WHERE NOT after) > 2""")


def _cpu_saturation(store: TelemetryStore, at: datetime) -> dict[str, float]:
    """Largest robust z of a cpu metric in the 3 minutes from `at` against the 30 minutes before."""
    return _by_service(store, f"""
        WITH cpu AS (SELECT service, metric, ts, value FROM metrics WHERE metric ILIKE '%cpu%' AND NOT isnan(value)),
        before AS (
            SELECT service, metric, median(value) AS level, mad(value) AS spread FROM cpu
            WHERE {in_span('ts', (at - timedelta(minutes=30), at))} GROUP BY ALL
        ),
        after AS (
            SELECT service, metric, max(value) AS peak FROM cpu
            WHERE {in_span('ts', (at, at + timedelta(minutes=3)))} GROUP BY ALL
        )
        SELECT service, max((peak - level) / (spread + 1e-3 * abs(level) + 1e-9)) AS score
        FROM before JOIN after USING (service, metric) GROUP BY service""")


RANKERS: dict[str, Ranker] = {"analysis": analysis_ranker, "signals": signals_ranker}
#: the rankers that state a verdict (a root cause named, or inconclusive): the others' scores count none named
VERDICT_RANKERS = ("analysis",)

#: the null check's pseudo-onset: this long before each injection's minute, where no fault is labelled yet
NULL_LEAD = timedelta(seconds=30)


@dataclass
class NullRun:
    """The span signals at a pseudo-onset before one fault: what passed the candidate bar where no fault is labelled."""

    pseudo_onset: str
    candidates: list[str]
    largest_corrected_z: float
    top: str | None = None  # the analysis' best hypothesis there (`analyze --at T --onset at`): a false lead
    confidence: float = 0.0  # ... the confidence it states (0 when it names none)
    verdict: str | None = None  # ... and the verdict: `root_cause` there names a service where no fault is labelled
    # the service injected next, 30-90 s after the pseudo-onset: a fault's effects can begin before its
    # label (TrainTicket's 09:21:39 wrong return: ts-basic-service's "Get Route By Ids Failed" from 09:20:40 on), so
    # a lead naming it may be that fault seen early, not chance
    injected_next: str = ""

    @property
    def names_injected_next(self) -> bool:
        return self.verdict == "root_cause" and self.top == self.injected_next


def null_calibration(data: Path, limit: int | None = None, day: str | None = None, reference: bool = False,
                     progress: Callable[[int, int, NullRun], None] | None = None,
                     log_history: timedelta = LOG_HISTORY, without: Sequence[str] = ()) -> dict[str, Any]:
    """False leads of the span signals: for each fault, a pseudo-onset `NULL_LEAD` before its injection minute, the
    logs and traces up to that minute (`log_history` of the day's files before it, the day's reference minute when
    `reference`, and the minute before the fault; no logs when `without` names them), and the services
    whose span signals (events, own time, the wait on their calls) make them candidates there. Fewer is better; none
    would be perfect. Each run's analysis at the pseudo-onset (`analyze --at T --onset at` on those logs and traces)
    gives the confidence it states in its best hypothesis, a false lead unless the fault showed before its label
    (`NullRun.injected_next`): how sure the tool is of chance."""
    from incidentlens.analysis import analyze
    from incidentlens.analysis.anchored import known_periods
    from incidentlens.analysis.spans import trace_signals

    _check_sources(without)
    if "traces" in without:
        raise InputError("--null --without traces: the check reads the span signals, which need the traces")
    data, day = dataset_dir(data, day)
    runs: list[NullRun] = []
    labels = read_labels(data, day)
    faults = labels.faults[:limit]
    for number, fault in enumerate(faults, start=1):
        # the files up to the injection's minute
        if not fault_files(rca_dir(data, fault.day), fault, minutes=(0,))["traces"]:
            continue  # no trace minute reaches the pseudo-onset
        inputs = _leave_out(fault_inputs(rca_dir(data, fault.day), fault, minutes=(0,), reference=reference,
                                         history=log_history), without)
        store, _ = fault_store(inputs)
        at = fault.inject_time.replace(second=0, microsecond=0) - NULL_LEAD
        window, baseline, _ = known_periods(store, at)
        signals, _ = trace_signals(store, window, baseline)
        result = analyze(store, at=at, onset="at")
        top = result.hypotheses[0] if result.hypotheses else None
        runs.append(NullRun(
            pseudo_onset=at.isoformat() + "Z",
            candidates=sorted(name for name, s in signals.items() if s.significant),
            largest_corrected_z=round(max((s.behaviour_shift for s in signals.values()), default=0.0), 3),
            top=top.service if top else None, confidence=top.confidence if top else 0.0,
            verdict=result.verdict.status if result.verdict else None, injected_next=fault.service,
        ))
        if progress:
            progress(number, len(faults), runs[-1])
    count = len(runs)
    return {
        "faults": len(faults),  # a fault with no trace minute at its pseudo-onset has no run
        "set_aside": labels.set_aside,
        "runs": count,
        "mean_candidates": sum(len(r.candidates) for r in runs) / count if count else 0.0,
        "runs_with_any": sum(1 for r in runs if r.candidates),
        "mean_largest_corrected_z": sum(r.largest_corrected_z for r in runs) / count if count else 0.0,
        "stated": null_confidences(runs),
        "per_run": [asdict(r) for r in runs],
    }


def null_confidences(runs: Sequence[NullRun]) -> dict[str, Any]:
    """How sure the analysis is of chance: the mean confidence its best hypothesis states at the pseudo-onsets (no
    hypothesis states 0), how many name a root cause there, and how many state at least 50%, 70% and 90%; each
    count also without the runs naming the service injected next (`NullRun.injected_next`)."""
    count = len(runs)
    other = [r for r in runs if not r.names_injected_next]
    return {"mean_confidence": round(sum(r.confidence for r in runs) / count, 4) if count else 0.0,
            "root_cause_named": sum(1 for r in runs if r.verdict == "root_cause"),
            "at_least": _at_least(runs),
            "naming_the_service_injected_next": count - len(other),
            "others_root_cause_named": sum(1 for r in other if r.verdict == "root_cause"),
            "others_at_least": _at_least(other)}


def _at_least(runs: Sequence[NullRun]) -> dict[str, int]:
    return {f"{bar:.0%}": sum(1 for r in runs if r.confidence >= bar) for bar in (0.5, 0.7, 0.9)}


def evaluate_nezha(
    data: Path,
    ranker: str = "analysis",
    kinds: Sequence[str] | None = None,
    limit: int | None = None,
    progress: Callable[[int, int, FaultScore], None] | None = None,
    day: str | None = None,
    reference: bool = False,
    history: timedelta = METRIC_HISTORY,
    log_history: timedelta = LOG_HISTORY,
    without: Sequence[str] = (),
    alert_after: timedelta | None = None,
    fault_minutes: Sequence[int] = FILE_MINUTES_FROM_INJECTION,
) -> NezhaReport:
    """Rank every fault's services and score against the labels: the faults of `day` (every day found when None),
    with the day's fault-free reference minutes as extra history when `reference`, `history` of metrics before
    each fault (a day's worth: every metric sample of the day before the fault, earlier faults included) and
    `log_history` of the day's log and trace files before the fault's own (zero: its own three minutes alone), and
    none of the sources in `without` (`SOURCES`). `alert_after`: analyse each fault as an alert this long after the
    injection, the incident detected at it (`analyze --at T`, as the Alertmanager service runs it), not at the
    injection time as its known start. `fault_minutes`: which of the fault's own minute files, counted from the
    injection's minute (`fault_files`; (1,): the one file that holds the injection, as a user who hands over the
    minute of the alert)."""
    if ranker not in RANKERS:
        raise InputError(f"--ranker {ranker}: expected one of {', '.join(RANKERS)}")
    rank = RANKERS[ranker]
    if alert_after is not None:
        if ranker != "analysis":
            raise InputError("--alert-after: only with --ranker analysis (the signals ranker detects nothing)")
        rank = functools.partial(_at_alert, delay=alert_after)
    _check_sources(without)
    data, day = dataset_dir(data, day)
    labels = read_labels(data, day)
    faults = [f for f in labels.faults if not kinds or f.kind in kinds][:limit]
    if not labels.faults:
        raise InputError(f"{data / 'rca_data'}: no faults listed in {'--day ' + day if day else 'any day'}'s "
                         f"<day>{LABELS_SUFFIX}{'; ' + labels.set_aside[0] if labels.set_aside else ''}")
    types = sorted({f.kind for f in labels.faults})
    unknown = [kind for kind in kinds or [] if kind not in types]  # a misspelt type is said, not scored as none
    if unknown or not faults:
        raise InputError(f"--kind {', '.join(unknown or kinds or [])}: no such faults (types: {', '.join(types)})")
    report = NezhaReport(ranker=ranker, without=sorted(set(without)),
                         alert_after=None if alert_after is None else alert_after.total_seconds(),
                         fault_minutes=list(fault_minutes), set_aside=list(labels.set_aside))
    with tempfile.TemporaryDirectory(prefix="incidentlens-nezha-") as scratch:
        cuts: dict[str, tuple[MetricsCut | None, CallsCut | None]] = {}
        for number, fault in enumerate(faults, start=1):
            folder = rca_dir(data, fault.day)
            if fault.day not in cuts:  # one day's metrics at a time: the last day's cut is no longer needed
                cut = None if "metrics" in without else MetricsCut(folder, Path(scratch) / fault.day, history)
                calls = None if "calls" in without else CallsCut(folder, Path(scratch) / fault.day, history)
                cuts = {fault.day: (cut, calls)}
                report.set_aside.extend(f"{fault.day}: {note}" for made in (cut, calls) if made
                                        for note in made.warnings)
                report.set_aside.extend(absent_folders(data, fault.day, reference, without))
            score = score_fault(folder, fault, cuts[fault.day][0], rank, reference, log_history, without,
                                calls=cuts[fault.day][1], minutes=fault_minutes)
            report.faults.append(score)
            if progress:
                progress(number, len(faults), score)
    return report


def absent_folders(data: Path, day: str, reference: bool = False, without: Sequence[str] = ()) -> list[str]:
    """What a day lacks of the layout, once per day: its `log/` or `trace/` folder (each fault's note says it has
    no file of that kind), and its fault-free reference minutes (`construct_data/<day>/`) when `reference`."""
    folder = rca_dir(data, day)
    notes = [f"{day}: no {name}/ folder, its faults ranked without {role}" for role, name, _ in ROLES
             if role not in without and not (folder / name).is_dir()]
    if reference and not (data / "construct_data" / day).is_dir():
        notes.append(f"{day}: no construct_data/{day}/ folder, its faults ranked without the reference minutes")
    return notes


def _at_alert(store: TelemetryStore, inject_time: datetime, delay: timedelta) -> Ranking:
    """The analysis ranker at an alert `delay` after the injection, the onset detected there."""
    return analysis_ranker(store, inject_time + delay, onset="detect")


def score_fault(day_dir: Path, fault: NezhaFault, metrics: MetricsCut | None, ranker: Ranker,
                reference: bool = False, log_history: timedelta = LOG_HISTORY,
                without: Sequence[str] = (), calls: CallsCut | None = None,
                minutes: Sequence[int] = FILE_MINUTES_FROM_INJECTION) -> FaultScore:
    """Rank one fault's services (`metrics` None: without metrics; `calls`: the day's call latency, if it has any;
    `minutes`: which of its own minute files, `fault_files`). What the fault lacked (metrics around it, its own log
    or trace minutes, a file that could not be read) is said in its note."""
    started = time.perf_counter()
    inputs = _leave_out(fault_inputs(day_dir, fault, minutes, reference=reference, history=log_history), without)
    metrics = None if "metrics" in without else metrics
    cut = metrics.around(fault.inject_time) if metrics else None
    calls_cut = calls.around(fault.inject_time) if calls and "calls" not in without else None
    try:
        store, skipped = fault_store(inputs, cut, calls_cut)
    except InputError as err:  # nothing around the fault could be read: it ranks nothing, and says why
        store, skipped = None, []
        ranking = Ranking([], note=f"nothing to rank on: {_one_line(err)}")
    if store is not None:
        try:
            ranking = ranker(store, fault.inject_time)
        except Exception as err:  # one fault's crash is that fault's result, reported; the other faults still run
            ranking = Ranking([], note=f"ranker failed: {type(err).__name__}: {_one_line(err)}")
    ranked = ranking.services
    rank = ranked.index(fault.service) + 1 if fault.service in ranked else None
    own = fault_files(day_dir, fault, minutes)
    missing = [f"no {role[:-1]} file for its minutes" for role, _, _ in ROLES if role not in without and not own[role]]
    if metrics and cut is None:
        missing.append(metrics.missing or "no metric sample in the hour around it")
    elif metrics and not metrics.pods[fault.service]:
        missing.append(f"no metric file for its pod: {fault.pod} (metric/<pod>{POD_METRIC_SUFFIX})")
    clock = [f"timed by {fault.clock}: no log or trace minute at inject_time"] if fault.clock != "inject_time" else []
    notes = [n for n in (*clock, ranking.note, *missing, *(f"unreadable, left out: {p.name}" for p in skipped)) if n]
    return FaultScore(
        inject_time=fault.inject_time.isoformat() + "Z", service=fault.service, kind=fault.kind, day=fault.day,
        ranked=ranked[:5],
        rank=rank, seconds=round(time.perf_counter() - started, 2), note="; ".join(notes) or None,
        confidences=ranking.confidences[:5],
        mechanism=ranking.mechanisms[rank - 1] if rank is not None and rank <= len(ranking.mechanisms) else None,
        verdict=ranking.verdict,
        second=ranking.second,
    )


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:200]


def _check_sources(without: Sequence[str]) -> None:
    """Refuse an unknown source, or leaving out every one."""
    unknown = sorted(set(without) - set(SOURCES))
    if unknown:
        raise InputError(f"--without {', '.join(unknown)}: expected one of {', '.join(SOURCES)}")
    if set(SOURCES) <= set(without):
        raise InputError(f"--without {', '.join(SOURCES)}: nothing would be left to rank on")


def _leave_out(files: dict[str, list[Path]], without: Sequence[str]) -> dict[str, list[Path]]:
    """The fault's log and trace files, with none of a role that `without` names."""
    return {role: [] if role in without else paths for role, paths in files.items()}


def fault_store(files: dict[str, list[Path]], metrics: Path | None = None,
                calls: Path | None = None) -> tuple[TelemetryStore, list[Path]]:
    """The fault's store (`calls`: its cut of the day's call latency); a file the loader refuses (the day has a
    truncated log) or leaves out (no bytes) is left out and reported."""
    try:
        store = load_telemetry(metrics=metrics, logs=files["logs"] or None, traces=files["traces"] or None,
                               calls=calls)
        return store, [path for paths in files.values() for path in paths if not path.stat().st_size]
    except InputError:
        readable = {role: [p for p in paths if _readable(role, p)] for role, paths in files.items()}
        skipped = [p for role, paths in files.items() for p in paths if p not in readable[role]]
        store = load_telemetry(metrics=metrics, logs=readable["logs"] or None, traces=readable["traces"] or None,
                               calls=calls)
        return store, skipped


def _readable(role: str, path: Path) -> bool:
    try:
        load_telemetry(**{role: [path]})
    except InputError:
        return False
    return True


def _unique(items: Any) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
