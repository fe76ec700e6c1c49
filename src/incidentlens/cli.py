"""The `incidentlens` command line: parse, call the library, print.

Every command is thin. Errors the user can fix (IncidentLensError) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperArgument, TyperOption

from incidentlens import __version__
from incidentlens.analysis.words import counted
from incidentlens.errors import IncidentLensError, InputError

if TYPE_CHECKING:
    import datetime as dt

    from rich.progress import Progress

    from incidentlens.analysis.detection import DetectionResult
    from incidentlens.eval.nezha import NezhaReport
    from incidentlens.server.mcp_tools import OpenedStore
    from incidentlens.server.settings import Sources

app = typer.Typer(
    name="incidentlens",
    help="Find the incident in your metrics and logs, investigate it, and write the incident review.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
eval_app = typer.Typer(
    help="Measure IncidentLens on generated scenarios and real labelled datasets.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")

console = Console()
warnings_console = Console(stderr=True)

#: exit code when --require-llm is given and the model could not be used (2 is for bad input)
EXIT_NO_MODEL = 3


# Choices, listed in --help by Typer; the library's own tuples are the truth (tests/test_cli_consistency.py checks
# they agree, so importing the heavy modules that hold them is not needed to print --help).
def _choices(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    return StrEnum(name, {value.replace("-", "_"): value for value in values})


Brain = _choices("Brain", ("auto", "offline", "openai", "openai-compatible"))
OnsetMode = _choices("OnsetMode", ("detect", "at"))
DetectorName = _choices("DetectorName", ("robust", "seed-zscore"))
CadenceName = _choices("CadenceName", ("native", "1h", "1d"))
FileFormat = _choices("FileFormat", ("csv", "parquet", "jsonl"))
NezhaRanker = _choices("NezhaRanker", ("analysis", "signals"))
Source = _choices("Source", ("metrics", "logs", "traces", "calls"))


def _placeholder(param: Any, ctx: Any) -> str | None:
    """One placeholder style in --help: a flag shows none, a choice its values as [a|b], any other value an
    UPPERCASE word (TEXT, INTEGER, NUMBER, PATH) unless the option names its own (TIME, ROLE=COLUMN)."""
    if isinstance(param, TyperOption) and param.is_flag:
        return None
    if param.metavar is not None:
        return param.metavar
    label = re.sub(r"^list\[(.*)\]$", r"\1", param.display_type(ctx).strip("<>"))
    if param.type_descriptor.is_choice:
        return f"[{label}]"
    return {"str": "TEXT", "int": "INTEGER", "float": "NUMBER"}.get(label, label.upper())


def _usage_name(argument: Any) -> str:
    """An argument in the usage line as click writes it: QUERY when required, [QUERY] when not (Typer: {QUERY})."""
    name = argument.display_name_raw
    return (name if argument.required else f"[{name}]") + ("..." if argument.nargs != 1 else "")


# Typer's rich help prints `<bool>` after a flag, `<str>`/`<path>` beside our PATH/TIME and `{query}` in the usage
# line; one rule for all.
TyperOption.display_type_rich = _placeholder
TyperArgument.display_type_rich = _placeholder
TyperArgument._usage_display_name = _usage_name

# Remote sources, shared by the commands that read telemetry: metrics from Prometheus, logs from ClickHouse
# (`--logs clickhouse://user:pass@host:8123/db.table`). Secrets come from the environment, never from output.
_REMOTE = "Remote sources"
_MODEL = "Model"
PrometheusUrl = Annotated[
    str | None, typer.Option("--prometheus", metavar="URL", help="Prometheus base URL: pull metrics over the range "
                             "(series with a service/app/job label, plus --promql).", rich_help_panel=_REMOTE)
]
PromQL = Annotated[
    list[str] | None, typer.Option("--promql", metavar="NAME=QUERY", help="A named PromQL query as metric NAME "
                                   "(repeatable).", rich_help_panel=_REMOTE)
]
PromToken = Annotated[
    str | None, typer.Option("--prom-token", metavar="TOKEN", help="Bearer token for Prometheus (better: env "
                             "PROMETHEUS_TOKEN).", show_default=False, rich_help_panel=_REMOTE)
]
PromUser = Annotated[
    str | None, typer.Option("--prom-user", metavar="USER", help="Basic-auth user; the password is read from env "
                             "PROMETHEUS_PASSWORD.", rich_help_panel=_REMOTE)
]
PromStart = Annotated[
    str | None, typer.Option("--prom-start", metavar="TIME", help="Range start (ISO-8601; default: the other "
                             "telemetry's start, else 24 h before the end).", rich_help_panel=_REMOTE)
]
PromEnd = Annotated[
    str | None, typer.Option("--prom-end", metavar="TIME", help="Range end (ISO-8601; default: the other "
                             "telemetry's end, else an hour after --at, else now).", rich_help_panel=_REMOTE)
]
PromStep = Annotated[
    int | None, typer.Option("--prom-step", metavar="SECONDS", help="Step in seconds (default: 60 s, more if the "
                             "range needs it to stay under 11,000 points a series).", rich_help_panel=_REMOTE)
]


# Telemetry inputs, named and explained alike in every command that reads them.
MetricsFiles = Annotated[
    list[str] | None, typer.Option("--metrics", metavar="PATH", help="Metrics file(s) or glob: wide or long "
                                   "csv/parquet/jsonl (repeatable).")
]
LogFiles = Annotated[
    list[str] | None, typer.Option("--logs", metavar="PATH", help="Log file(s) or glob (repeatable), or a "
                                   "clickhouse://user@host:8123/db.table URL (password: env CLICKHOUSE_PASSWORD).")
]
TraceFiles = Annotated[list[str] | None, typer.Option("--traces", metavar="PATH", help="Span file(s) or glob "
                                                      "(repeatable).")]
CallFiles = Annotated[list[str] | None, typer.Option("--calls", metavar="PATH", help="Per-call-edge latency file(s) "
                                                     "or glob (repeatable): time, caller, callee, side "
                                                     "(client|server), latency; as a service mesh reports it.")]
EventFiles = Annotated[list[str] | None, typer.Option("--events", metavar="PATH", help="Deploy/config event file(s) "
                                                      "or glob (repeatable).")]
ColumnMap = Annotated[
    list[str] | None, typer.Option("--map", metavar="ROLE=COLUMN", help="The source column for a role, e.g. --map "
                                   "time=when (repeatable).")
]
LogYear = Annotated[
    int | None, typer.Option("--year", help="Year of plain-text log times written without one (syslog, logcat; "
                             "default: the file's modification year).")
]
LogService = Annotated[
    str | None, typer.Option("--service", help="Service of plain-text log entries (default: the syslog app field, "
                             "else the file name).")
]
TimeZone = Annotated[
    str | None, typer.Option("--timezone", metavar="NAME", help="IANA time zone (e.g. Europe/Berlin) of the files' "
                             "times written without one, and of --at without one (default: UTC); a time with an offset "
                             "or Z keeps it.")
]
AlertTime = Annotated[
    str | None, typer.Option("--at", metavar="TIME", help="Alert time (ISO-8601, or epoch s/ms as an alert's payload "
                             "may give it): the incident containing or nearest to it.")
]
Detector = Annotated[DetectorName, typer.Option("--detector", help="robust, or seed-zscore (the original).")]
Sensitivity = Annotated[
    str | None, typer.Option("--sensitivity", metavar="LEVEL", help="low, medium (default) or high, or the opening "
                             "bar itself in robust σ (medium = 5, high = 4, low = 7): how far from its baseline a "
                             "series must move to open a window; the bars over the series' own earlier and usual "
                             "peaks move in proportion.")
]
Onset = Annotated[OnsetMode, typer.Option("--onset", help="detect: the detected incident containing or nearest --at "
                                          "(none found or explainable there: --at is taken as the start, and the "
                                          "result says why; only load, or nothing, moving after it is still no "
                                          "incident); at: --at is the known start (an alert, an "
                                          "injection): the window is --at to the end of the shortest source, the "
                                          "baseline everything before it.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON (nothing else on stdout).")]


def _prometheus_options(prometheus: str | None, promql: list[str] | None, prom_token: str | None,
                        prom_user: str | None, prom_start: str | None, prom_end: str | None,
                        prom_step: int | None) -> object:
    """The --prometheus/--prom-*/--promql options as telemetry.sources.PrometheusOptions, None without a URL."""
    from incidentlens.telemetry.sources import PrometheusOptions

    if (promql or prom_token or prom_user or prom_start or prom_end or prom_step) and not prometheus:
        raise InputError("--promql/--prom-* need --prometheus URL")
    return PrometheusOptions(
        url=prometheus, promql=tuple(promql or ()), token=prom_token, user=prom_user, start=prom_start, end=prom_end,
        step=prom_step,
    ) if prometheus else None


def _open_store(metrics: list[str] | None, logs: list[str] | None, traces: list[str] | None,
                events: list[str] | None, mapping: list[str] | None, at: object = None,
                prometheus: object = None, year: int | None = None, service: str | None = None,
                out: Path | None = None, calls: list[str] | None = None, onset: str = "detect",
                timezone: str | None = None) -> object:
    """Files, `clickhouse://` logs and Prometheus metrics -> one store (see telemetry.sources.open_store).

    Unreadable lines the store set aside are said on stderr, one line per file, and listed in
    `<out>/rejected/<file>.txt` when the command writes to a directory. An `at` outside the data is a warning
    unless `onset` is "at", where the analysis refuses it in one line of its own."""
    from incidentlens.outfiles import output_dir, write_text
    from incidentlens.telemetry import parse_mapping
    from incidentlens.telemetry.sources import open_store
    from incidentlens.telemetry.textlogs import TextLogOptions

    store = open_store(metrics=metrics or None, logs=logs or None, traces=traces or None, events=events or None,
                       mapping=parse_mapping(mapping), prometheus=prometheus, at=at,
                       text=TextLogOptions(year=year, service=service), calls=calls or None, timezone=timezone)
    rejected_notes = {f"{rejected.file}: {rejected.note()}, set aside" for rejected in store.rejected}
    for warning in store.warnings:  # bad values set aside at load: counted, and the count shown
        if warning in rejected_notes:
            continue  # said below, with where its lines were listed
        warnings_console.print(Text(f"warning: {warning}", style="yellow"), highlight=False, soft_wrap=True)
    for rejected in store.rejected:
        where = ""
        if out is not None:
            listing = write_text(output_dir(out / "rejected") / rejected.listing_name, rejected.listing())
            where = f": see {listing}"
        warnings_console.print(Text(f"warning: {rejected.note()}, set aside{where}", style="yellow"),
                               highlight=False, soft_wrap=True)
    if at is not None and onset != "at":
        _warn_alert_outside(store, at)
    return store


def _warn_alert_outside(store: Any, at: dt.datetime) -> None:
    """Say so when --at lies outside the data's time range: the window nearest it, perhaps months away, is what
    is listed and explained. Not an error: an alert can come after an export that lags it."""
    from incidentlens.analysis.anchored import outside_data

    outside = outside_data(store, at, "--at")
    if outside is not None:
        warnings_console.print(Text(f"warning: {outside}: nothing at that time can be seen, only what is nearest it",
                                    style="yellow"), highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"incidentlens {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Find the incident in your metrics and logs, investigate it, and write the incident review."""


@app.command("scenarios")
def scenarios_command(as_json: AsJson = False) -> None:
    """List the scenarios `generate` can write, one line each."""
    from incidentlens.scenarios import list_scenarios

    scenarios = list_scenarios()
    if as_json:
        _print_json([{"name": name, "description": description} for name, description in scenarios])
        return
    width = max(len(name) for name, _ in scenarios)
    for name, description in scenarios:
        typer.echo(f"{name:{width}}  {description}")


@app.command("generate")
def generate_command(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario name (see `incidentlens scenarios`).")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write metrics, logs, events and truth.json into.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed writes the same files.")] = 1,
    hours: Annotated[float, typer.Option("--hours", help="Length of the time range in hours.")] = 24,
    logs: Annotated[
        int | None,
        typer.Option("--logs", help="Number of log lines, at most 20,000,000 (default: scaled to the range)."),
    ] = None,
    fmt: Annotated[FileFormat, typer.Option("--format", help="File format.")] = FileFormat.csv,
    as_json: AsJson = False,
) -> None:
    """Write a generated scenario: telemetry with a known incident and its ground truth."""
    from incidentlens.scenarios import generate

    with console.status(Text(f"generating {scenario}")):
        paths = generate(scenario, out, seed=seed, hours=hours, logs=logs, fmt=fmt.value)
    if as_json:
        _print_json({role: str(path) for role, path in paths.items()})
        return
    for role, path in paths.items():
        _print_copyable(f"{role:8} {path}")


@app.command("detect")
def detect_command(
    metrics: MetricsFiles = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="Only these metric names (repeatable; default: all).")
    ] = None,
    at: AlertTime = None,
    detector: Detector = DetectorName.robust,
    sensitivity: Sensitivity = None,
    as_json: AsJson = False,
    mapping: ColumnMap = None,
    timezone: TimeZone = None,
    prometheus: PrometheusUrl = None, promql: PromQL = None, prom_token: PromToken = None,
    prom_user: PromUser = None, prom_start: PromStart = None, prom_end: PromEnd = None, prom_step: PromStep = None,
) -> None:
    """Find every incident window in metrics, most severe first (or, when none, what came closest)."""
    from incidentlens.analysis.detection import detect, parse_time, settings_for

    anchor = parse_time(at, zone=timezone or "") if at else None
    settings_for(sensitivity)  # a bad value stops here, before any file is read
    remote = _prometheus_options(prometheus, promql, prom_token, prom_user, prom_start, prom_end, prom_step)
    store = _open_store(metrics, None, None, None, mapping, anchor, remote, timezone=timezone)
    result = detect(store, metrics=metric or None, at=anchor, detector=detector.value, sensitivity=sensitivity)
    if as_json:
        _print_json(result.to_dict())
        return
    _print_detection(result)


def _print_detection(result: DetectionResult) -> None:
    from incidentlens.analysis.detection import iso_z
    from incidentlens.analysis.periods import iso_end
    from incidentlens.report import formatting

    if not result.detected:
        _print_data(f"no incident found ({result.detector}): {result.reason}")
        miss = result.closest_miss
        if miss:
            _print_data(f"closest: {miss['series']} {miss['direction']} at {miss['peak_at']} "
                        f"({miss['start']} .. {miss['end']}): {miss['peak']:g} against a baseline of "
                        f"{miss['baseline']:g}, {abs(miss['shift']):.1f} σ; fell short: {miss['why_short']}")
            _print_data(f"to ask for more: {miss['ask_for_more']}")
    else:
        seed = result.detector == "seed-zscore"  # the tutorial's: z-scores, the longest run first
        measure, order = ("z-score", "longest first") if seed else ("robust shift", "most severe first")
        rows = []
        for window in result.windows:
            moved = ", ".join(f"{s.series} {s.direction} {s.shift:+.1f}" for s in window.series[:4])
            if len(window.series) > 4:
                moved += f" (+{len(window.series) - 4} more)"
            length = formatting.minutes((window.end - window.start).total_seconds() / 60, short=True)
            rows.append(["*" if window == result.window else "", iso_z(window.start), iso_end(window.end),
                         length, iso_z(window.peak), f"{window.severity:.1f}", moved])
        console.print(fitted_table([Col(""), Col("start", TIME), Col("end", TIME), Col("length", NUMBER),
                                    Col("peak", TIME, drop=2), Col("severity", NUMBER, drop=1),
                                    Col(f"series moved ({measure})")], rows, console.width))
        baseline = result.baseline_window
        compared = f"baseline {iso_z(baseline[0])} .. {iso_z(baseline[1])}" if baseline else "no baseline period"
        others = len(result.windows) - 1
        chosen = result.evidence[0].data.get("chosen_by") if result.evidence else None
        console.print(f"* incident window ({result.detector}){f', {chosen}' if chosen else ''}; {compared}"
                      + (f"; {others} other window(s) listed, {order}" if others else ""))
    for note in _grouped_notes(result.notes):
        console.print(Text(f"note: {note}", style="dim"))


def _grouped_notes(notes: list[str], listed: int = 3) -> list[str]:
    """The notes, those that say the same of more than `listed` series (`<series>: skipped: constant series: every
    value is 0`, of 250 of a Nezha day's 300 pod metrics) said once with how many series and the first of them."""
    said: dict[str, list[str]] = {}
    for note in notes:
        series, _, text = note.partition(": ")
        said.setdefault(text, []).append(series)
    grouped = []
    for note in notes:
        series, _, text = note.partition(": ")
        names = said[text]
        if len(names) <= listed or not text:
            grouped.append(note)
        elif series == names[0]:
            grouped.append(f"{len(names):,} series: {text} ({', '.join(names[:listed])} and "
                           f"{len(names) - listed:,} more; --json lists each)")
    return grouped


@eval_app.command("nab")
def eval_nab_command(
    data: Annotated[Path, typer.Option("--data", help="The NAB directory (data/, labels/, config/).")] = Path(
        "../shared/datasets/nab"
    ),
    detector: Annotated[
        list[DetectorName] | None,
        typer.Option("--detector", help="Detectors to score (repeatable; default: robust and seed-zscore)."),
    ] = None,
    cadence: Annotated[
        list[CadenceName] | None,
        typer.Option("--cadence", help="Cadences to score at (repeatable; default: all three)."),
    ] = None,
    sensitivity: Sensitivity = None,
    as_json: AsJson = False,
) -> None:
    """Score the detectors on NAB as `detect` runs each file: NAB's score per profile and half, event F1 per cadence."""
    from incidentlens.eval.nab import evaluate_nab

    with console.status("scoring NAB series"):
        report = evaluate_nab(data, detectors=[d.value for d in detector] if detector else ("robust", "seed-zscore"),
                              cadences=[c.value for c in cadence] if cadence else ("native", "1h", "1d"),
                              sensitivity=sensitivity)
    if as_json:
        _print_json(report.to_dict())
        return
    profiles = list(report.profiles)
    nab = Table(box=None, title="NAB score (threshold chosen on the shaping half, per profile)")
    for header in ("cadence", "detector", "half", *profiles):
        nab.add_column(header, justify="right" if header in profiles else "left", no_wrap=True)
    for cadence_name in report.cadences():
        for name, by_half in report.nab_scores(cadence_name).items():
            for half, scores in by_half.items():
                nab.add_row(cadence_name, name, half, *(f"{scores[p]['score']:.1f}" for p in profiles if p in scores))
    console.print(nab)
    # at 80 columns every cell was cut ("0.7…" for an F1): the least read columns give way instead
    columns = [Col("cadence"), Col("detector"), Col("half"), Col("found", NUMBER), Col("recall", NUMBER),
               Col("detections", NUMBER, drop=1), Col("precision", NUMBER), Col("F1", NUMBER),
               Col("FA/day", NUMBER, drop=3), Col("delay min", NUMBER, drop=2)]
    rows = []
    for (cadence_name, half), scores in report.scores.items():
        for row in (score.summary() for score in scores):
            delay = "-" if row["mean_delay_minutes"] is None else f"{row['mean_delay_minutes']:.0f}"
            rows.append([cadence_name, str(row["detector"]), half, f"{row['found']}/{row['windows']}",
                         f"{row['recall']:.3f}", str(row["detections"]), f"{row['precision']:.3f}",
                         f"{row['f1']:.3f}", f"{row['false_alarms_per_day']:.3f}", delay])
    console.print(fitted_table(columns, rows, console.width, title="event level, at each detector's own bar"))
    console.print("[dim]found: labelled windows with a detection; FA/day: false alarms per day[/dim]")
    console.print("[dim]halves fixed in code (incidentlens.eval.nab.split_of): inside each category, files sorted by "
                  "name, 1st, 3rd, ... shaping; 2nd, 4th, ... held-out[/dim]")


@app.command("analyze")
def analyze_command(
    metrics: MetricsFiles = None,
    logs: LogFiles = None,
    traces: TraceFiles = None,
    events: EventFiles = None,
    calls: CallFiles = None,
    at: AlertTime = None,
    onset: Onset = OnsetMode.detect,
    out: Annotated[Path, typer.Option("--out", help="Directory to write analysis.json into.")] = Path("."),
    detector: Detector = DetectorName.robust,
    sensitivity: Sensitivity = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print analysis.json instead of the summary.")] = False,
    mapping: ColumnMap = None,
    year: LogYear = None,
    service: LogService = None,
    timezone: TimeZone = None,
    prometheus: PrometheusUrl = None, promql: PromQL = None, prom_token: PromToken = None,
    prom_user: PromUser = None, prom_start: PromStart = None, prom_end: PromEnd = None, prom_step: PromStep = None,
) -> None:
    """Find the incident and explain it: window, root-cause hypotheses with tests, contributors, evidence."""
    from incidentlens.analysis import analyze
    from incidentlens.analysis.detection import parse_time, settings_for
    from incidentlens.outfiles import output_dir, write_text

    anchor = parse_time(at, zone=timezone or "") if at else None
    settings_for(sensitivity)  # a bad value stops here, before any file is read
    out = output_dir(out)  # before the analysis, not after it
    remote = _prometheus_options(prometheus, promql, prom_token, prom_user, prom_start, prom_end, prom_step)
    store = _open_store(metrics, logs, traces, events, mapping, anchor, remote, year, service, out, calls,
                        onset.value, timezone)
    with console.status("analyzing", spinner="dots"):
        result = analyze(store, at=anchor, detector=detector.value, onset=onset.value, sensitivity=sensitivity)
    text = json.dumps(result.to_dict(), indent=2)
    path = write_text(out / "analysis.json", text + "\n")
    if as_json:
        print(text)
        return
    _print_analysis(result.to_dict())
    _print_copyable(f"wrote {path}", style="dim")


def _print_analysis(analysis: dict) -> None:
    from incidentlens.analysis.detection import LOGS_QUIET, NO_METRICS

    if not analysis["detected"]:
        console.print(f"[bold]no incident found[/bold]: {escape(str(analysis['reason']))}")
        if analysis["reason"] in (NO_METRICS, LOGS_QUIET):
            _print_data("logs or traces alone are explained from a start you give: --at TIME --onset at")
        return
    window, baseline = analysis["incident_window"], analysis["baseline_window"]
    console.print(f"[bold]incident[/bold] {window['start']} .. {window['end']} ({_window_length(analysis)})  "
                  f"peak {analysis['peak']}", highlight=False)
    console.print(f"[dim]baseline {baseline['start']} .. {baseline['end']} ({baseline.get('rule', '')})[/dim]")
    # Service names, descriptions, dimension values and templates are the user's data: escaped, never markup.
    rows = [[str(rank), h["service"], h["kind"], f"{h['confidence']:.0%}",
             {True: "passed", False: "failed"}.get(h["test_passed"], "undecided" if h.get("test") else "-")]
            for rank, h in enumerate(analysis["hypotheses"], 1)]
    if rows:
        console.print(fitted_table([Col("#", NUMBER), Col("service"), Col("kind"), Col("confidence", NUMBER),
                                    Col("test")], rows, console.width, title="root-cause hypotheses"))
    for hypothesis in analysis["hypotheses"][:1]:
        _print_data(f"  {hypothesis['mechanism']}\n  test: {hypothesis['test']}")
    _print_verdict(analysis)
    if analysis["trigger"]:
        trigger = analysis["trigger"]
        console.print(f"[bold]trigger[/bold] {trigger['t']} {escape(str(trigger['kind']))} "
                      f"{escape(str(trigger['service']))}: {escape(str(trigger['description']))}", highlight=False)
    if analysis["contributors"]:
        rows = [[c["dimension"], str(c["value"]), f"{c['window_share']:.1%}", f"{c['baseline_share']:.1%}",
                 f"{c['lift']:.1f}"] for c in analysis["contributors"][:5]]
        console.print(fitted_table([Col("dimension"), Col("value"), Col("window", NUMBER), Col("baseline", NUMBER),
                                    Col("lift", NUMBER)], rows, console.width, title="contributors"))
    for template in analysis["templates"][:5]:
        console.print(f"[bold]{template['status']}[/bold] x{template['count_window']} {escape(template['template'])}",
                      highlight=False)
    evidence = counted(len(analysis["evidence"]), "piece of evidence", "pieces of evidence")
    console.print(f"[dim]{evidence}, each with its query[/dim]")


def _window_length(analysis: dict) -> str:
    """`24 s`, `83 s`, `2h 24m` (the review's duration, `formatting.minutes`), and with a given start where its
    window ends (`the end of the logs and traces, the shortest sources`): a minute of logs beside a day of metrics is
    24 s examined, not the day."""
    from incidentlens.analysis.detection import parse_time
    from incidentlens.report import formatting

    window = analysis["incident_window"]
    # the impact's length is the window's own; the times written are to the second, the end rounded up
    minutes = ((analysis.get("impact") or {}).get("duration_minutes")
               or (parse_time(window["end"]) - parse_time(window["start"])).total_seconds() / 60)
    length = formatting.minutes(minutes, short=True)
    cited = set(analysis["detection"].get("evidence") or [])
    ends = [e["data"]["window_end"] for e in analysis["evidence"]
            if e["id"] in cited and isinstance(e.get("data"), dict) and e["data"].get("window_end")]
    return f"{length}, to {ends[0]}" if ends else length


def _print_verdict(analysis: dict) -> None:
    """The verdict in one line, whether the table's first row is the root cause or only the likeliest of several
    ("No single root cause found: ..."), then what the sources lacked ("no logs for this period")."""
    verdict = analysis.get("verdict") or {}
    if verdict.get("reason"):
        named = verdict.get("status") == "root_cause"
        _print_data(f"{'root cause: ' if named else ''}{verdict['reason']}")
    for note in (analysis.get("sources") or {}).get("notes") or []:
        console.print(Text(f"note: {note}", style="dim"))


@eval_app.command("scenarios")
def eval_scenarios_command(
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds: a range like 1-10, or 1,4,7; at most 1000 (a seed "
                                       "runs every scenario).")] = "1-10",
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", help="Only these scenarios (repeatable; default: all).")
    ] = None,
    logs: Annotated[
        int | None,
        typer.Option("--logs", help="Log lines per scenario, at most 20,000,000 (default: the scenario's own)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Analyze every generated scenario over several seeds: window IoU, root cause top-1/top-3, false incidents."""
    from incidentlens.eval.scenarios import evaluate_scenarios, parse_seeds
    from incidentlens.scenarios import list_scenarios

    seed_list = parse_seeds(seeds)
    names = scenario or [name for name, _ in list_scenarios()]
    with _progress(as_json) as progress:
        task = progress.add_task("scenarios", total=len(names) * len(seed_list))

        def advance(run: object) -> None:
            progress.update(task, advance=1, description=f"{run.scenario} seed {run.seed}")

        report = evaluate_scenarios(names, seed_list, logs=logs, on_run=advance)
    if as_json:
        _print_json(report.to_dict())
        return
    # at 80 columns every header and a kind of "100%" were cut ("10…"): the time per run gives way instead
    columns = [Col("scenario"), *(Col(h, NUMBER) for h in ("runs", "IoU", "top-1", "top-3", "kind", "verdict",
                                                           "false", "missed")), Col("s/run", NUMBER, drop=1)]
    rows = [[s.scenario, str(s.runs), _rate(s.mean_iou, "{:.3f}"), _rate(s.top1), _rate(s.top3),
             _rate(s.kind_accuracy), _rate(s.verdict_accuracy), str(s.false_incidents), str(s.missed),
             f"{s.mean_seconds:.2f}"] for s in report.summaries]
    console.print(fitted_table(columns, rows, console.width))
    console.print(f"seeds {seeds}. IoU: window overlap with the truth; top-1/top-3: the true root-cause service "
                  "ranked first/in the first three; kind: its mechanism; verdict: the root cause named, or 'no single "
                  "root cause' where the truth has none; false: incidents reported on a day without one",
                  markup=False, highlight=False)
    if report.calibration:
        _print_calibration(report.calibration)


def _print_calibration(found: object) -> None:
    """The reliability table of `eval.calibration`: of hypotheses at about X% confidence, the share right."""
    if not found.hypotheses:
        return
    console.print(f"calibration of {found.hypotheses} hypotheses (ECE {found.ece:.3f}; of those given about X% "
                  "confidence, about X% should be right):", markup=False)
    for line in found.lines():
        console.print(f"  {line}", markup=False)


def _print_set_aside(lines: list[str]) -> None:
    """What an evaluation set aside (a label it could not read, data left out), one warning line each on stderr."""
    for line in lines:
        warnings_console.print(Text(f"warning: set aside: {line}", style="yellow"), highlight=False, soft_wrap=True)


def _rate(value: float | None, fmt: str = "{:.0%}") -> str:
    return "-" if value is None else fmt.format(value)


@app.command("templates")
def templates_command(
    logs: LogFiles = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for templates.csv and lines.csv.")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the templates as JSON.")] = False,
    mapping: ColumnMap = None,
    year: LogYear = None,
    service: LogService = None,
    timezone: TimeZone = None,
) -> None:
    """Mine the log templates of every entry: writes templates.csv and lines.csv (each entry's template)."""
    import json

    import pyarrow.csv as pacsv

    from incidentlens.analysis.templates import mine_all_templates
    from incidentlens.outfiles import output_dir, write_with

    if not logs:
        raise InputError("templates: give --logs PATH (files or globs)")
    out = output_dir(out)
    store = _open_store(None, logs, None, None, mapping, year=year, service=service, out=out, timezone=timezone)
    mined = mine_all_templates(store)
    write_with(out / "templates.csv", lambda staged: pacsv.write_csv(mined.templates, staged))
    write_with(out / "lines.csv", lambda staged: pacsv.write_csv(mined.lines, staged))
    if as_json:
        print(json.dumps(mined.templates.to_pylist(), indent=2))
        return
    ordered = mined.templates.sort_by([("count", "descending")])
    for row in ordered.slice(0, 15).to_pylist():
        _print_data(f"{row['count']:>9}  {row['template']}")
    more = f" ({mined.templates.num_rows - 15:,} more in templates.csv)" if mined.templates.num_rows > 15 else ""
    found, entries = mined.templates.num_rows, mined.lines.num_rows
    # entries with no message (a JSON line without the field, an empty CSV cell) have no template
    bare = mined.lines["template_id"].null_count
    none = f"; {bare:,} with no message, so no template" if bare else ""
    _print_data(f"{found:,} template{'s' * (found != 1)} over {entries:,} entr{'ies' if entries != 1 else 'y'}"
                f"{none}{more}")
    _print_copyable(f"wrote {out / 'templates.csv'}")
    _print_copyable(f"wrote {out / 'lines.csv'}")


@eval_app.command("templates")
def eval_templates_command(
    data: Annotated[Path, typer.Option("--data", help="The Loghub-2k directory (SYSTEM/SYSTEM_2k.log each).")] = Path(
        "../shared/datasets/loghub-2k"
    ),
    similarity: Annotated[
        float | None, typer.Option("--similarity", help="Drain's similarity threshold (default: the one shipped).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Grouping accuracy of the log templates on Loghub-2k, per system and on average."""
    import json

    from rich.table import Table

    from incidentlens.analysis.templates import MINING_SIMILARITY
    from incidentlens.eval.templates import evaluate_templates

    with console.status("mining templates"):
        report = evaluate_templates(data, similarity=MINING_SIMILARITY if similarity is None else similarity)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    table = Table("system", "lines", "templates (truth)", "templates (mined)", "GA", "Drain (published)", box=None,
                  caption=f"grouping accuracy; Drain similarity {report.similarity}")
    for row in report.to_dict()["systems"]:
        published = row["drain_published"]
        table.add_row(row["system"], str(row["lines"]), str(row["templates_truth"]), str(row["templates_mined"]),
                      f"{row['grouping_accuracy']:.3f}", "-" if published is None else f"{published:.3f}")
    table.add_row("average", "", "", "", f"{report.average:.3f}", "")
    console.print(table)


@app.command("sql")
def sql_command(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="One SELECT/WITH query over metrics, logs, spans, "
                                                               "events, calls.")],
    metrics: MetricsFiles = None,
    logs: LogFiles = None,
    traces: TraceFiles = None,
    events: EventFiles = None,
    calls: CallFiles = None,
    mapping: ColumnMap = None,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Row cap: rows past it are not shown (1-100000).")
                        ] = 200,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS",
                                           help="Seconds the query may take, parsing included (0.1-3600).")] = 10.0,
    memory_mb: Annotated[int, typer.Option("--memory-mb", metavar="MB", help="Memory budget of the query (DuckDB's "
                                           "memory_limit; 64-16384).")] = 512,
    as_json: AsJson = False,
    year: LogYear = None,
    service: LogService = None,
    timezone: TimeZone = None,
) -> None:
    """Run one read-only query in the SQL sandbox (the one the agents use): no writes, no files, capped."""
    from incidentlens.analysis.sql_sandbox import Budget, SqlSandbox

    budget = Budget(timeout_s=timeout, row_cap=max_rows, memory_mb=memory_mb)  # checked before any data is read
    store = _open_store(metrics, logs, traces, events, mapping, year=year, service=service, calls=calls,
                        timezone=timezone)
    with SqlSandbox(store, budget=budget) as sandbox:
        result = sandbox.run(query)
    if as_json:
        _print_json(result.to_dict())
        return
    rows = [["" if v is None else str(v) for v in row] for row in result.rows]
    columns = [Col(name, TIME if _all_times(rows, i) else TEXT) for i, name in enumerate(result.columns)]
    console.print(fitted_table(columns, rows, console.width))
    if result.cut_by == "bytes":
        _print_note(f"{result.cut_note()} (select fewer or shorter values) - {result.elapsed_ms:.0f} ms")
    elif result.truncated:
        shown = f"the first {result.row_cap} {'is' if result.row_cap == 1 else 'are'} shown"
        _print_note(f"the query returned more than {counted(result.row_cap, 'row')}; {shown} "
                    f"(raise --max-rows, or aggregate with GROUP BY) - {result.elapsed_ms:.0f} ms")
    else:
        _print_note(f"{counted(len(result.rows), 'row')} in {result.elapsed_ms:.0f} ms")


@app.command("report")
def report_command(
    analysis: Annotated[Path, typer.Option("--analysis", help="analysis.json written by `incidentlens analyze`.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for report.json, report.md and report.html.")],
    metrics: MetricsFiles = None,
    logs: LogFiles = None,
    traces: TraceFiles = None,
    events: EventFiles = None,
    mapping: ColumnMap = None,
    timezone: TimeZone = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json instead of the summary.")] = False,
) -> None:
    """Write the incident review from an analysis.json, without agents; charts need --metrics."""
    from incidentlens.outfiles import output_dir
    from incidentlens.report import (
        build_postmortem,
        executive_summary,
        read_analysis,
        runbook_checklist,
        write_reports,
    )
    from incidentlens.report.render_html import metrics_elsewhere
    from incidentlens.telemetry.timeparse import checked_zone

    if timezone:  # checked though no file may be given to read in it: a misspelt zone is said, not ignored
        checked_zone(timezone)
    out = output_dir(out)
    pm = build_postmortem(read_analysis(analysis), source=str(analysis))
    _warn_missing_evidence(pm, str(analysis))
    given = metrics or logs or traces or events
    store = _open_store(metrics, logs, traces, events, mapping, timezone=timezone) if given else None
    if elsewhere := metrics_elsewhere(pm, store):
        warnings_console.print(Text(f"warning: {elsewhere} Are they the metrics the analysis read?", style="yellow"),
                               highlight=False, soft_wrap=True)
    paths = write_reports(pm, out, store=store)
    if as_json:
        _print_json(pm.to_dict())
        return
    for line in [*executive_summary(pm), "", *runbook_checklist(pm)]:
        _print_data(line)
    for path in paths.values():
        _print_copyable(f"wrote {path}")


@app.command("investigate")
def investigate_command(
    metrics: MetricsFiles = None,
    logs: LogFiles = None,
    traces: TraceFiles = None,
    events: EventFiles = None,
    calls: CallFiles = None,
    at: AlertTime = None,
    onset: Onset = OnsetMode.detect,
    sensitivity: Sensitivity = None,
    mapping: ColumnMap = None,
    llm: Annotated[
        Brain, typer.Option("--llm", help="auto: openai if OPENAI_API_KEY is set, openai-compatible with --llm-url, "
                                          "else offline (the deterministic planner, no model).", rich_help_panel=_MODEL)
    ] = Brain.auto,
    model: Annotated[str, typer.Option("--model", help="Model name for openai / openai-compatible.",
                                       rich_help_panel=_MODEL)] = "gpt-4o-mini",
    llm_url: Annotated[
        str | None, typer.Option("--llm-url", metavar="URL", help="OpenAI-compatible endpoint, e.g. "
                                 "http://localhost:11434/v1.", rich_help_panel=_MODEL)
    ] = None,
    llm_timeout: Annotated[float, typer.Option("--llm-timeout", metavar="SECONDS", help="Seconds an HTTP request to "
                                               "the model may take before it is retried.", rich_help_panel=_MODEL)
                           ] = 60.0,
    llm_max_tokens: Annotated[int, typer.Option("--llm-max-tokens", help="max_tokens sent with every request: the "
                                                "longest answer the model may write.", rich_help_panel=_MODEL)] = 1024,
    llm_context: Annotated[int, typer.Option("--llm-context", help="Tokens one request may use, prompt and answer "
                                             "(the model's context window); past it the oldest tool results are "
                                             "sent as their evidence ids.", rich_help_panel=_MODEL)] = 16384,
    require_llm: Annotated[bool, typer.Option("--require-llm", help="Exit with code 3 when the model could not be "
                                              "used (unreachable, replaced by the planner, or no tool call); the "
                                              "review is still written.", rich_help_panel=_MODEL)] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory for report.json/.md/.html, evidence.json and "
                                      "trace.jsonl.")] = Path("."),
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Step budget of the coordinator agent.")] = 30,
    year: LogYear = None,
    service: LogService = None,
    timezone: TimeZone = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json instead of the summary.")] = False,
    prometheus: PrometheusUrl = None, promql: PromQL = None, prom_token: PromToken = None,
    prom_user: PromUser = None, prom_start: PromStart = None, prom_end: PromEnd = None, prom_step: PromStep = None,
) -> None:
    """Investigate with the agent team (coordinator, profiler, writer) and write the incident review."""
    from incidentlens.agents.brains import ModelBudget, RetryPolicy, check_endpoint, resolve_brain
    from incidentlens.analysis.anchored import check_onset
    from incidentlens.analysis.detection import parse_time, settings_for
    from incidentlens.outfiles import output_dir

    anchor = parse_time(at, zone=timezone or "") if at else None
    check_onset(onset.value, anchor)  # before any data is read
    settings_for(sensitivity)
    out = output_dir(out)
    budget = ModelBudget(max_tokens=llm_max_tokens, context_tokens=llm_context)
    retry = RetryPolicy(timeout_s=llm_timeout)
    brain = resolve_brain(llm.value, model, llm_url)
    if require_llm and brain.llm == "offline":
        _exit_no_model("--require-llm: no model to use (--llm offline, or auto with neither OPENAI_API_KEY nor "
                       "--llm-url)")
    check_endpoint(brain, retry.timeout_s)  # before any data is read
    remote = _prometheus_options(prometheus, promql, prom_token, prom_user, prom_start, prom_end, prom_step)
    store = _open_store(metrics, logs, traces, events, mapping, anchor, remote, year, service, out, calls,
                        onset.value, timezone)
    result = _investigate_and_report(store, out, as_json=as_json, llm=llm.value, model=model, llm_url=llm_url,
                                     max_steps=max_steps, at=anchor, onset=onset.value, budget=budget,
                                     retry=retry, sensitivity=sensitivity)
    if require_llm and result.generated_by.get("degraded"):
        _exit_no_model(f"--require-llm: the model could not be used: {result.degraded_reason}")


def _exit_no_model(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_NO_MODEL)


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for the demo's data and report.")] = Path(
        "incidentlens-demo"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json instead of the summary.")] = False,
) -> None:
    """Generate the seed-tutorial day and investigate it offline: the quickest look at IncidentLens."""
    from incidentlens.scenarios import generate
    from incidentlens.telemetry import load_telemetry

    with console.status("generating the seed-tutorial day"):
        paths = generate("seed-tutorial", out / "data", seed=1)
    store = load_telemetry(metrics=paths.get("metrics"), logs=paths.get("logs"), events=paths.get("events"))
    _investigate_and_report(store, out, as_json=as_json, llm="offline", model=None, llm_url=None, max_steps=30,
                            at=None)
    if not as_json:
        _print_copyable(f"demo data in {out / 'data'}; try: {_self_command()} sql --metrics {paths['metrics']} "
                        f"--logs {paths['logs']} \"SELECT level, count(*) FROM logs GROUP BY level\"", style="dim")


def _self_command() -> str:
    """How to run IncidentLens again from here, as the user just did: `incidentlens` when that is on the PATH,
    else the path of the script that is running (`.venv/bin/incidentlens` after `make demo`)."""
    script = Path(sys.argv[0])
    on_path = shutil.which("incidentlens")
    if on_path and script.name == "incidentlens" and Path(on_path).resolve() == script.resolve():
        return "incidentlens"
    if script.name == "incidentlens" and script.exists():
        return str(script)
    installed = Path(sys.executable).parent / "incidentlens"
    return str(installed) if installed.exists() else "incidentlens"


def _investigate_and_report(store: object, out: Path, as_json: bool = False, **options: object) -> Any:
    from incidentlens.agents import investigate
    from incidentlens.outfiles import output_dir
    from incidentlens.report import executive_summary, runbook_checklist, write_reports

    out = output_dir(out)
    with console.status("investigating: coordinator, profiler, writer", spinner="dots"):
        result = investigate(store, trace_path=out / "trace.jsonl", **options)
    _warn_missing_evidence(result.postmortem, "the investigation")
    paths = write_reports(result.postmortem, out, store=store)
    if as_json:
        _print_json(result.postmortem.to_dict())
        return result
    author = result.generated_by
    brain = Text.assemble(("brain", "bold"), f" {result.brain}")
    if author.get("degraded"):
        brain.append(f"  degraded: {result.degraded_reason}", style="yellow")
    console.print(brain, highlight=False)
    if author["llm"] != "offline":
        console.print(f"[bold]model[/bold] {author['model_requests']} requests ({author['http_requests']} HTTP), "
                      f"{author['model_tool_calls']} tool calls by the model, {author['planner_tool_calls']} by the "
                      f"planner; {result.tokens['prompt']} prompt and {result.tokens['completion']} completion tokens",
                      highlight=False)
    else:
        console.print(f"[bold]planner[/bold] {author['planner_tool_calls']} tool calls, no model "
                      f"({len(result.trace)} trace lines)", highlight=False)
    console.print()
    for line in executive_summary(result.postmortem)[:10]:
        _print_data(line)
    checklist = runbook_checklist(result.postmortem)
    if checklist:
        console.print("\n[bold]runbook[/bold]")
        for item in checklist:
            _print_data(f"  {item}")
    console.print()
    for path in [*paths.values(), out / "trace.jsonl"]:
        _print_copyable(f"wrote {path}")
    return result


def _print_json(data: object) -> None:
    """A command's result as JSON on stdout, nothing else (progress and notes go to stderr or are not printed)."""
    print(json.dumps(data, indent=2, default=str))


def _warn_missing_evidence(pm: Any, source: str) -> None:
    """One line on stderr naming the evidence ids the review cites but does not hold (it shows them unlinked)."""
    missing = pm.grounding.missing_evidence
    if missing:
        ids = "ids" if len(missing) > 1 else "id"
        warnings_console.print(Text(f"warning: {source}: {len(missing)} evidence {ids} cited but not present: "
                                    f"{', '.join(missing)}", style="yellow"), highlight=False, soft_wrap=True)


def _print_note(text: str) -> None:
    console.print(Text(text, style="dim"), highlight=False)


TEXT, TIME, NUMBER = "text", "time", "number"
_TIME_VALUE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?$")
_MAX_NAME = 30  # a name this long (a service, a series) is kept on one line; longer text folds


@dataclass(frozen=True)
class Col:
    """A table column: `kind` TIME and NUMBER never wrap, TEXT wraps at spaces (a long word folds); `drop` > 0 lets a
    narrow terminal leave the column out, lowest `drop` first."""

    header: str
    kind: str = TEXT
    drop: int = 0


def fitted_table(columns: list[Col], rows: list[list[str]], width: int, title: str | None = None) -> Table:
    """A table that keeps whole times and names within `width` (80 when piped): wrap text, or leave out the
    droppable columns, never cut a time. The caption names any column left out and the width that shows it."""
    shown = list(range(len(columns)))
    for rank in sorted({c.drop for c in columns if c.drop}):
        if _min_width(columns, rows, shown) <= width:
            break
        shown = [i for i in shown if columns[i].drop != rank]
    left_out = [columns[i].header for i in range(len(columns)) if i not in shown]
    caption = (f"{', '.join(left_out)} left out to fit {width} columns (COLUMNS="
               f"{_min_width(columns, rows, list(range(len(columns))))} shows all)") if left_out else None
    table = Table(box=None, title=title, caption=caption, caption_justify="left", pad_edge=False)
    # what the text columns have when every other column is whole: a text column whose longest name is wider folds
    # within it (at its minimum width, rich cropped every folded line: 'ts-food-delivery-service' + 'ientLatency...')
    texts = [i for i in shown if columns[i].kind == TEXT]
    spare = width - _min_width(columns, rows, [i for i in shown if i not in texts]) - 2 * len(texts)
    for i in shown:
        column = columns[i]
        if column.kind == TEXT:
            fit = max(1, spare // len(texts))
            table.add_column(Text(column.header), overflow="fold", min_width=min(_text_min(column, rows, i), fit))
        else:
            table.add_column(Text(column.header), no_wrap=True, justify="right" if column.kind == NUMBER else "left",
                             min_width=_longest(column, rows, i))
    for row in rows:
        table.add_row(*(Text(row[i]) for i in shown))
    return table


def _longest(column: Col, rows: list[list[str]], i: int) -> int:
    return max([len(column.header), *(len(row[i]) for row in rows)])


def _text_min(column: Col, rows: list[list[str]], i: int) -> int:
    words = [len(word) for text in [column.header, *(row[i] for row in rows)] for word in text.split()]
    return min(max(words, default=1), _MAX_NAME)


def _min_width(columns: list[Col], rows: list[list[str]], shown: list[int]) -> int:
    widths = [_text_min(columns[i], rows, i) if columns[i].kind == TEXT else _longest(columns[i], rows, i)
              for i in shown]
    return sum(widths) + 2 * max(0, len(widths) - 1)


def _all_times(rows: list[list[str]], i: int) -> bool:
    values = [row[i] for row in rows if row[i]]
    return bool(values) and all(_TIME_VALUE.match(value) for value in values)


def _progress(as_json: bool) -> Progress:
    """A progress bar on the terminal, none under --json or where the output goes to a file or a pipe (its lines
    would come before the data)."""
    from rich.progress import Progress

    return Progress(console=console, transient=True, disable=as_json or not console.is_terminal)


def _print_copyable(text: str, style: str = "") -> None:
    """Print a line a user copies (a path written, a command to run) verbatim and unbroken: rich would cut it with
    newlines at the console's width, and a pasted command or path would then break; the terminal folds it instead."""
    console.print(Text(text, style=style), highlight=False, soft_wrap=True)


def _print_data(text: str) -> None:
    """Print a line carrying data (log text, service names, an error's words) verbatim: rich markup would eat a
    `[bold]` in it and fail on a `[/x]`."""
    console.print(text, markup=False, highlight=False)


_SERVE = "Server"


@app.command("serve")
def serve_command(
    metrics: MetricsFiles = None,
    logs: LogFiles = None,
    traces: TraceFiles = None,
    events: EventFiles = None,
    calls: CallFiles = None,
    mapping: ColumnMap = None,
    prometheus: PrometheusUrl = None, promql: PromQL = None, prom_user: PromUser = None,
    prom_step: PromStep = None,
    timezone: TimeZone = None,
    host: Annotated[str | None, typer.Option("--host", metavar="ADDRESS", help="Address to listen on (default "
                                             "127.0.0.1).", rich_help_panel=_SERVE)] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8080).", rich_help_panel=_SERVE)] = None,
    state: Annotated[Path | None, typer.Option("--state", metavar="DIR", help="Directory for the SQLite state and "
                                               "the reviews (default ./incidentlens-state).",
                                               rich_help_panel=_SERVE)] = None,
    token: Annotated[str | None, typer.Option("--token", metavar="TOKEN", envvar="INCIDENTLENS_TOKEN",
                                              show_default=False, help="Bearer token every endpoint but /healthz "
                                              "requires (better: env INCIDENTLENS_TOKEN).",
                                              rich_help_panel=_SERVE)] = None,
    config: Annotated[Path | None, typer.Option("--config", metavar="FILE", help="TOML (or YAML) file with these "
                                                "settings and the outbound notifications; options given here win.",
                                                rich_help_panel=_SERVE)] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Investigations at once (default 1).",
                                                rich_help_panel=_SERVE)] = None,
    queue_size: Annotated[int | None, typer.Option("--queue-size", help="Queued investigations before a manual "
                                                   "start is refused with 429 (default 100).",
                                                   rich_help_panel=_SERVE)] = None,
    llm: Annotated[Brain | None, typer.Option("--llm", help="The investigations' brain (default auto).",
                                              rich_help_panel=_SERVE)] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="NAME", help="Model for openai / "
                                              "openai-compatible.", rich_help_panel=_SERVE)] = None,
    llm_url: Annotated[str | None, typer.Option("--llm-url", metavar="URL", help="OpenAI-compatible endpoint.",
                                                rich_help_panel=_SERVE)] = None,
    public_url: Annotated[str | None, typer.Option("--public-url", metavar="URL", help="The UI's address for links in "
                                                   "notifications (default http://HOST:PORT).",
                                                   rich_help_panel=_SERVE)] = None,
) -> None:
    """Run the service: Alertmanager webhooks in, investigations in the background, reviews in a web UI, MCP at /mcp."""
    import uvicorn

    from incidentlens.server.app import create_app
    from incidentlens.server.settings import build_settings, check_serve_settings, url_host

    settings = build_settings(config, {
        "metrics": metrics, "logs": logs, "traces": traces, "events": events, "calls": calls, "map": mapping,
        "prometheus": prometheus, "promql": promql, "prom_user": prom_user, "prom_step": prom_step,
        "timezone": timezone, "host": host, "port": port, "state": state, "token": token, "workers": workers,
        "queue_size": queue_size, "llm": llm, "model": model, "llm_url": llm_url, "public_url": public_url})
    check_serve_settings(settings)
    listening = _listening_socket(settings.host, settings.port)
    application = create_app(settings, opened=_refuse_unreadable_sources(settings.sources))
    auth = "bearer token required" if settings.token else "NO TOKEN: loopback only"
    print(f"incidentlens serve: http://{url_host(settings.host)}:{settings.port} ({auth}), state {settings.state}",
          file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", access_log=False))
    server.run(sockets=[listening])
    if not server.started:  # the app's start-up failed (uvicorn has said why): as `uvicorn.run` exits then
        sys.exit(3)


def _listening_socket(host: str, port: int) -> socket.socket:
    """The socket `serve` listens on, bound before anything is read or written: a port in use (or an address not
    this machine's) is one line and exit 2, not a banner saying it serves, then uvicorn's error and exit 3."""
    from incidentlens.server.settings import url_host

    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as err:
        listening.close()
        hint = " (another server on that port? give another with --port)" if err.errno == errno.EADDRINUSE else ""
        reason = (err.strerror or str(err)).lower()
        raise InputError(f"serve: cannot listen on {url_host(host)}:{port}: {reason}{hint}") from None
    return listening


@app.command("mcp")
def mcp_command(
    metrics: MetricsFiles = None,
    logs: LogFiles = None,
    traces: TraceFiles = None,
    events: EventFiles = None,
    calls: CallFiles = None,
    mapping: ColumnMap = None,
    prometheus: PrometheusUrl = None, promql: PromQL = None, prom_user: PromUser = None,
    prom_step: PromStep = None,
    timezone: TimeZone = None,
    state: Annotated[Path | None, typer.Option("--state", metavar="DIR", help="A `serve` state directory: adds the "
                                               "incidents and their reviews.")] = None,
) -> None:
    """Serve the read-only MCP tools (analyze, detect, sql, templates, list_incidents, get_review) on stdio."""
    from incidentlens.server.mcp_tools import build_mcp
    from incidentlens.server.settings import Sources
    from incidentlens.server.state import StateDB

    sources = Sources(metrics=metrics or [], logs=logs or [], traces=traces or [], events=events or [],
                      calls=calls or [], map=mapping or [], prometheus=prometheus, promql=promql or [],
                      prom_user=prom_user, prom_step=prom_step, timezone=timezone)
    known = StateDB.existing(state) if state else None
    build_mcp(sources, known, _refuse_unreadable_sources(sources)).run()  # stdout is the protocol: nothing else prints


def _refuse_unreadable_sources(sources: Sources) -> OpenedStore | None:
    """`serve` and `mcp`: a file no investigation or tool could read is refused at start, as `analyze` refuses it
    (one line, exit 2), not at every alert or the assistant's first call; load warnings go to stderr. Prometheus is
    pulled per investigation or call, around its time. The store opened over files alone is the MCP tools' (read
    again only when a file changes), not read again at their first call; over ClickHouse logs, None (the tools open
    theirs per call)."""
    from incidentlens.server.mcp_tools import open_noting_files

    if not (sources.metrics or sources.logs or sources.traces or sources.events or sources.calls):
        return None

    def read() -> object:
        return _open_store(sources.metrics, sources.logs, sources.traces, sources.events, sources.map,
                           calls=sources.calls, timezone=sources.timezone)

    if sources.pulled_per_read():  # a clickhouse:// URL is no file to look at
        read()
        return None
    return open_noting_files(sources, read)


@eval_app.command("nezha")
def eval_nezha_command(
    data: Annotated[Path, typer.Option("--data", help="A Nezha dataset directory (rca_data/DAY/, construct_data/): "
                                                      "nezha-trainticket or nezha-onlineboutique; or its rca_data/ "
                                                      "folder, or one day's folder (that day alone).")
                    ] = Path("../shared/datasets/nezha-trainticket"),
    day: Annotated[str | None, typer.Option("--day", help="Only this day (rca_data/DAY/); every day found when "
                                                          "not given.")] = None,
    ranker: Annotated[
        NezhaRanker, typer.Option("--ranker", help="analysis (analyze(store, at=inject_time, onset='at')), or "
                                                   "signals (generic before/after contrasts fused by rank).")
    ] = NezhaRanker.analysis,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only faults of this type (repeatable): an inject_type of "
                                                      "the labels, e.g. cpu_contention, network_delay, exception.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N faults.")] = None,
    reference: Annotated[bool, typer.Option("--reference", help="Also give each fault the day's fault-free "
                                                                "reference minutes before it (construct_data/).")
                         ] = False,
    history: Annotated[int, typer.Option("--history", min=0, help="Minutes of metrics before each fault (1440: the "
                                                                  "whole day before it, earlier faults included).")
                       ] = 60,
    log_history: Annotated[int, typer.Option("--log-history", min=0, help="Minutes of the day's log and trace files "
                                                                          "before each fault's own (earlier faults' "
                                                                          "minutes included; 0: the fault's own "
                                                                          "three minutes alone).")] = 60,
    fault_minutes: Annotated[str, typer.Option("--fault-minutes", help="Which of each fault's own minute files, "
                                                                       "counted from the injection's minute "
                                                                       "(comma-separated; a file holds the minute "
                                                                       "before its name): 0,1,2 the minute before "
                                                                       "to two after; 1 the one file holding the "
                                                                       "injection, as a user who hands over the "
                                                                       "alert's minute; at least one of them 1 or "
                                                                       "later.")] = "0,1,2",
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores and each fault's ranking as JSON.")] = False,
    null: Annotated[bool, typer.Option("--null", help="Instead: the span signals' false leads at a pseudo-onset 30 s "
                                                      "before each fault's minute, where no fault is labelled yet, "
                                                      "and the confidence the analysis states there (the runs "
                                                      "naming the service injected next counted apart).")] = False,
    without: Annotated[
        list[Source] | None, typer.Option("--without", help="Leave this source out, as a user without it would run "
                                                            "(repeatable).")
    ] = None,
    alert_after: Annotated[
        int | None, typer.Option("--alert-after", min=0, help="Analyse each fault as an alert this many seconds after "
                                                              "its injection, the incident detected at it (analyze "
                                                              "--at T without --onset at, as the Alertmanager "
                                                              "service runs it).")
    ] = None,
) -> None:
    """Root-cause ranking on Nezha's fault days: top-1/top-3 overall, per fault type and per day, seconds per fault."""
    from datetime import timedelta

    from incidentlens.eval.nezha import FILE_MINUTES_FROM_INJECTION, evaluate_nezha, null_calibration

    left_out = [source.value for source in without or []]
    minutes = _fault_minutes(fault_minutes)
    if null and alert_after is not None:
        raise InputError("--null and --alert-after: the pseudo-onsets are not alerts; use one or the other")
    if null and minutes != FILE_MINUTES_FROM_INJECTION:
        raise InputError("--null and --fault-minutes: a pseudo-onset's files are those up to the injection's minute")
    if null:
        with _progress(as_json) as progress:
            task = progress.add_task("pseudo-onsets", total=None)
            found = null_calibration(data, limit=limit, day=day, reference=reference,
                                     log_history=timedelta(minutes=log_history), without=left_out,
                                     progress=lambda done, total, _: progress.update(task, completed=done, total=total))
        if as_json:
            _print_json(found)
        else:
            _print_null_run(found)
        return

    with _progress(as_json) as progress:
        task = progress.add_task("scoring faults", total=None)
        report = evaluate_nezha(data, ranker=ranker.value, kinds=kind or None, limit=limit,
                                day=day, reference=reference, history=timedelta(minutes=history),
                                log_history=timedelta(minutes=log_history), without=left_out,
                                alert_after=None if alert_after is None else timedelta(seconds=alert_after),
                                fault_minutes=minutes,
                                progress=lambda done, total, _: progress.update(task, completed=done, total=total))
    if as_json:
        _print_json(report.to_dict())
        return
    caption = (f"ranker {ranker.value}{' with the reference minutes' if reference else ''}"
               f"{''.join(f', without {source}' for source in left_out)}"
               f"{f', an alert {alert_after} s after each injection' if alert_after is not None else ''}"
               f"; logs and traces of {log_history} min before each fault's own "
               f"(its minute files {','.join(map(str, minutes))})")
    _print_nezha_report(report, caption)


def _print_null_run(found: dict[str, Any]) -> None:
    """`eval nezha --null`'s findings in words: the span signals' false leads at the pseudo-onsets, and the
    confidence the analysis stated there."""
    _print_set_aside(found["set_aside"])
    console.print(f"{found['runs']} pseudo-onsets (no fault labelled yet; {found['faults'] - found['runs']} of "
                  f"{found['faults']} faults have no trace minute there): {found['mean_candidates']:.2f} services "
                  f"per run past the candidate bar on their span events, {found['runs_with_any']} runs with any; "
                  f"mean largest corrected z {found['mean_largest_corrected_z']:.2f}", highlight=False)
    stated = found["stated"]
    console.print(f"the analysis there: mean stated confidence {stated['mean_confidence']:.0%}, a root cause "
                  f"named in {stated['root_cause_named']} runs, at least 90% in {stated['at_least']['90%']}; "
                  f"{stated['naming_the_service_injected_next']} of them name the service injected 30-90 s "
                  f"later (a fault seen before its label, or chance); the others: a root cause named in "
                  f"{stated['others_root_cause_named']}, at least 90% in {stated['others_at_least']['90%']}",
                  highlight=False)


def _print_nezha_report(report: NezhaReport, caption: str) -> None:
    """`eval nezha`'s scores as a table by fault type (and day) under `caption` (how the faults were run), with the
    Nezha paper's figures, then the verdicts, notes, what was set aside and the calibration."""
    summary = report.summary()
    papers = "; ".join(f"{system} top-1 {p['top1']:.1%}, top-3 {p['top3']:.1%}"
                       for system, p in summary["paper"].items())
    table = Table("fault type / day", "faults", "top-1", "top-3", "s/fault", "mechanism named (top-1)", box=None,
                  caption=f"{caption}; Nezha (paper): {papers}")
    rows = [*summary["by_type"].items(), *(summary["by_day"].items() if len(summary["by_day"]) > 1 else []),
            ("all", summary)]
    for name, scores in rows:
        table.add_row(name, str(scores["faults"]), f"{scores['top1']:.1%} ({scores['top1_count']})",
                      f"{scores['top3']:.1%} ({scores['top3_count']})", f"{scores['mean_seconds']:.1f}",
                      ", ".join(f"{kind} {count}" for kind, count in scores["mechanisms"].items()))
    console.print(table)
    if summary["named"] is not None:  # a ranker that states no verdict names no root cause to count
        console.print(f"a root cause named (the verdict) for {summary['named']} of {summary['faults']} faults, "
                      f"{summary['named_wrong']} of them the wrong service; the others inconclusive"
                      + (f"; a second, independent suspect named beside the first for {summary['second_suspects']}"
                         if summary.get("second_suspects") else ""), highlight=False)
    if summary["notes"]:
        console.print("faults scored with a note (each fault's in --json): "
                      + ", ".join(f"{note} {count}" for note, count in summary["notes"].items()), markup=False,
                      soft_wrap=True)
    _print_set_aside(summary["set_aside"])
    _print_calibration(report.calibration())


def _fault_minutes(text: str) -> tuple[int, ...]:
    """`--fault-minutes 0,1,2` -> (0, 1, 2): minutes counted from the injection's, each within an hour of it."""
    try:
        minutes = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        minutes = ()
    if not minutes or not all(-60 <= m <= 60 for m in minutes):
        raise InputError(f"--fault-minutes {text}: expected minutes counted from the injection's, within an hour of "
                         "it, e.g. 1 or 0,1,2")
    if max(minutes) < 1:  # a file holds the minute before its name: minute 1's file holds the injection
        raise InputError(f"--fault-minutes {text}: none of these files holds the injection or anything after it (a "
                         "file holds the minute before its name, so 1 is the injection's own); e.g. 1 or 0,1,2")
    return minutes


def main() -> None:
    """Console entry point: user-fixable errors become one line on stderr and exit code 2."""
    # A failed tool call is answered to the model and recorded in trace.jsonl; Haystack also logs it, which on a
    # console reads as if the run had failed.
    logging.getLogger("haystack").setLevel(logging.CRITICAL)
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError:  # the help is printed already
        sys.exit(2)
    except UsageError as err:  # a misspelt option, a value that is not one of the choices: one line too
        # the subcommands below the program's own name ("eval nezha"), whatever the program was started as
        command = "".join(f" {name}" for name in err.ctx.command_path.split()[1:]) if err.ctx is not None else ""
        print(f"error: {' '.join(err.format_message().split())} (see incidentlens{command} --help)", file=sys.stderr)
        sys.exit(2)
    except IncidentLensError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
