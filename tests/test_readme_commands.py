"""The command lines the README and the docs show are the ones the CLI takes: every `incidentlens ...` in a fenced
bash block names a real command and only options that command has, so an option renamed or dropped fails here
before a user copies the line; and every benchmark script they name exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer._click.core import Command

from incidentlens.cli import app

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ROOT = typer.main.get_command(app)


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def command_lines(block: str) -> list[str]:
    """Each `incidentlens` invocation in a block: continuation lines joined, comments and what precedes the command
    on its line (`VAR=... `, `journalctl ... && `) cut off."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = []
    for line in joined.splitlines():
        line = re.sub(r"\s#.*$", "", line)
        start = line.find("incidentlens ")
        if start >= 0 and not line[:start].rstrip().endswith(("/", "-")):
            lines.append(line[start:].strip())
    return lines


def documented_commands() -> list[tuple[str, str]]:
    return [(document.name, line) for document in DOCUMENTS
            for block in bash_blocks(document.read_text(encoding="utf-8")) for line in command_lines(block)]


def resolve(words: list[str]) -> tuple[Command, list[str]]:
    """The (sub)command the words name and the words left for its options and arguments."""
    command: Command = ROOT
    words = words[1:]  # "incidentlens"
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        assert words[0] in command.commands, f"no command {words[0]!r}"
        command, words = command.commands[words[0]], words[1:]
    return command, words


def option_names(command: Command) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def test_the_documents_show_commands_to_check():
    shown = documented_commands()
    assert len(shown) >= 30
    assert {line.split()[1] for _, line in shown} >= {"analyze", "investigate", "detect", "eval", "serve"}


@pytest.mark.parametrize(("document", "line"), documented_commands(), ids=lambda value: value[:60])
def test_every_documented_option_is_one_the_command_takes(document: str, line: str):
    # `[--opt X]` marks an optional part and `...` elided ones: read the options inside, drop the brackets
    words = shlex.split(line.replace("[", " ").replace("]", " ").replace("|", " "))
    command, rest = resolve(words)
    options = {word.split("=", 1)[0] for word in rest if word.startswith("--")}
    unknown = options - option_names(command)
    assert not unknown, f"{document}: `{line}` shows {sorted(unknown)}, which `{command.name}` does not take"


def test_a_misspelt_option_or_command_is_caught():
    command, rest = resolve(shlex.split("incidentlens eval nezha --data DIR --log-histroy 0"))
    assert command.name == "nezha"
    assert "--log-histroy" in rest and "--log-histroy" not in option_names(command)
    with pytest.raises(AssertionError, match="no command 'nezah'"):
        resolve(shlex.split("incidentlens eval nezah --data DIR"))


def test_every_benchmark_the_documents_name_exists():
    named = {match for document in [*DOCUMENTS, REPO / "DEVELOPERS.md"]
             for match in re.findall(r"benchmarks/\w+\.py", document.read_text(encoding="utf-8"))}
    assert len(named) >= 10
    assert not {name for name in named if not (REPO / name).is_file()}
