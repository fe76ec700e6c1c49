"""Outputs are written safely: a bad --out is one line and exit 2; every file goes in under a temporary name and is
renamed into place, so a symlink planted in --out is replaced, never followed, and files outside stay untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_process import assert_one_line_error, run_cli
from incidentlens.errors import InputError
from incidentlens.outfiles import output_dir, write_text, write_with


@pytest.fixture(scope="module")
def data(scenario_dir) -> list[str]:
    tutorial = scenario_dir("seed-tutorial")
    return ["--metrics", str(tutorial / "metrics.csv"), "--logs", str(tutorial / "logs.csv")]


@pytest.mark.parametrize("command", ["analyze", "investigate", "generate", "report", "templates"])
def test_an_out_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    args = {"analyze": ["analyze", "--metrics", "x.csv"], "investigate": ["investigate", "--metrics", "x.csv"],
            "generate": ["generate", "--scenario", "seed-tutorial"],
            "report": ["report", "--analysis", str(taken)], "templates": ["templates", "--logs", "x.log"]}[command]
    assert_one_line_error(run_cli(*args, "--out", str(taken)), str(taken), "not a directory")
    assert taken.read_text() == "keep me"


def test_an_out_that_cannot_be_created_is_one_line_and_exit_2() -> None:
    assert_one_line_error(run_cli("generate", "--scenario", "seed-tutorial", "--out", "/proc/self/x"),
                          "/proc/self/x", "cannot create the output directory")


def _plant_links(out: Path, names: list[str], outside: Path) -> dict[str, Path]:
    out.mkdir()
    targets = {}
    for name in names:
        target = outside / f"victim-{name}"
        target.write_text("precious")
        (out / name).symlink_to(target)
        targets[name] = target
    return targets


def _assert_replaced_not_followed(out: Path, targets: dict[str, Path]) -> None:
    for name, target in targets.items():
        assert target.read_text() == "precious", name
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0, name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no temporary files left behind"


def test_investigate_replaces_links_planted_in_out(tmp_path: Path, data: list[str]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "review"
    targets = _plant_links(out, ["report.html", "report.md", "report.json", "trace.jsonl"], outside)
    result = run_cli("investigate", *data, "--llm", "offline", "--out", str(out))
    assert result.returncode == 0, result.stderr
    _assert_replaced_not_followed(out, targets)


def test_analyze_and_generate_replace_links_planted_in_out(tmp_path: Path, data: list[str]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    review, generated = tmp_path / "review", tmp_path / "generated"
    review_targets = _plant_links(review, ["analysis.json"], outside)
    generated_targets = _plant_links(generated, ["metrics.parquet", "logs.parquet", "truth.json"], outside)
    assert run_cli("analyze", *data, "--out", str(review)).returncode == 0
    result = run_cli("generate", "--scenario", "seed-tutorial", "--hours", "2", "--format", "parquet",
                     "--out", str(generated))
    assert result.returncode == 0, result.stderr
    _assert_replaced_not_followed(review, review_targets)
    _assert_replaced_not_followed(generated, generated_targets)


def test_a_hard_link_in_out_is_replaced_too(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = output_dir(tmp_path / "out")
    os.link(victim, out / "report.md")
    write_text(out / "report.md", "# review\n")
    assert victim.read_text() == "precious"
    assert (out / "report.md").read_text() == "# review\n"


def test_a_writer_that_fails_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    path = write_text(tmp_path / "metrics.csv", "old\n")

    def half_write(staged: Path) -> None:
        staged.write_text("ha")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_with(path, half_write)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_a_directory_at_a_target_name_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "report.md").mkdir()
    with pytest.raises(InputError, match=r"report\.md: cannot write"):
        write_text(tmp_path / "report.md", "x")
