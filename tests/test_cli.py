"""The command line's own contract: help, version, and one-line errors."""

import subprocess
import sys

from typer.testing import CliRunner

from incidentlens import __version__
from incidentlens.cli import app

runner = CliRunner()


def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "incident" in result.output.lower()


def test_console_script_runs():
    completed = subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", "--version"],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0
    assert __version__ in completed.stdout
