"""Running the real console entry point in a process of its own, as a user runs `incidentlens`."""

from __future__ import annotations

import subprocess
import sys


def incidentlens(*args: str) -> subprocess.CompletedProcess:
    """Run `incidentlens ARGS` (cli.main) in a fresh interpreter; its stdout, stderr and exit code."""
    code = "from incidentlens.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
