"""The `incidentlens` command line: parse, call the library, print.

Every command is thin. Errors the user can fix (IncidentLensError) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
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


def main() -> None:
    """Console entry point: user-fixable errors become one line on stderr and exit code 2."""
    try:
        app()
    except IncidentLensError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
