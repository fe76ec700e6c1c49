"""The `incidentlens` command line: parse, call the library, print.

Every command is thin. Errors the user can fix (IncidentLensError) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from incidentlens import __version__
from incidentlens.errors import IncidentLensError

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
def scenarios_command() -> None:
    """List the scenarios `generate` can write."""
    from rich.table import Table

    from incidentlens.scenarios import list_scenarios

    table = Table("scenario", "what happens", box=None, show_header=True)
    for name, description in list_scenarios():
        table.add_row(name, description)
    console.print(table)


@app.command("generate")
def generate_command(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario name (see `incidentlens scenarios`).")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write metrics, logs, events and truth.json into.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed writes the same files.")] = 1,
    hours: Annotated[float, typer.Option("--hours", help="Length of the time range in hours.")] = 24,
    logs: Annotated[
        int | None, typer.Option("--logs", help="Number of log lines (default: scaled to the range).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="File format: csv, parquet or jsonl.")] = "csv",
) -> None:
    """Write a generated scenario: telemetry with a known incident and its ground truth."""
    from incidentlens.scenarios import generate

    with console.status(f"generating {scenario}"):
        paths = generate(scenario, out, seed=seed, hours=hours, logs=logs, fmt=fmt)
    for role, path in paths.items():
        console.print(f"{role:8} {path}")


def main() -> None:
    """Console entry point: user-fixable errors become one line on stderr and exit code 2."""
    try:
        app()
    except IncidentLensError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
