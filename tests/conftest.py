"""Shared fixtures: generated scenario data (once per session) and the shared real datasets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# pytest-xdist's workers start with COLUMNS=80; rich would freeze the CLI's width at that on import, where a test's
# own COLUMNS (given to each invocation) must decide it, as in a serial run
os.environ.pop("COLUMNS", None)

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def scenario_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Return a function that generates a scenario once per session and gives its directory."""
    from incidentlens.scenarios import generate

    made: dict[tuple, Path] = {}

    def make(name: str, seed: int = 1, fmt: str = "csv", **options: object) -> Path:
        key = (name, seed, fmt, tuple(sorted(options.items())))
        if key not in made:
            out = tmp_path_factory.mktemp(f"{name}-{seed}-{fmt}")
            generate(name, out, seed=seed, fmt=fmt, **options)
            made[key] = out
        return made[key]

    return make


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The shared real datasets (../shared/datasets); tests that need them skip when absent."""
    if not DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {DATASETS} (they live in ../shared/datasets beside the repo)")
    return DATASETS
