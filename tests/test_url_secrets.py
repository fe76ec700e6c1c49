"""A URL on the command line may carry a key (`--llm-url ...?api_key=`, `http://user:token@host`): no console line,
report or trace ever shows it."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_process import assert_one_line_error, run_cli
from fake_openai import FakeOpenAI, replay_planner
from incidentlens.agents.brains import BrainChoice, check_endpoint
from incidentlens.cli import app
from incidentlens.errors import InputError
from incidentlens.telemetry.clickhouse import ClickHouseTarget
from incidentlens.telemetry.prometheus import PrometheusClient
from incidentlens.urls import redact_url

KEY = "sk-url-key-not-real-7731"


@pytest.mark.parametrize(("url", "shown"), [
    (f"http://localhost:11434/v1?api_key={KEY}", "http://localhost:11434/v1?api_key=***"),
    (f"https://h/v1?model=m&token={KEY}#{KEY}", "https://h/v1?model=***&token=***#***"),
    (f"clickhouse://reader:{KEY}@ch.internal/prod.t", "clickhouse://reader:***@ch.internal/prod.t"),
    ("http://localhost:9090", "http://localhost:9090"),
])
def test_keys_are_redacted_from_urls(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_brain_line_and_prometheus_messages_show_no_key() -> None:
    choice = BrainChoice("openai-compatible", "qwen", f"http://me:{KEY}@localhost:11434/v1?api_key={KEY}")
    assert KEY not in choice.describe() and "api_key=***" in choice.describe()
    with pytest.raises(InputError) as refused:
        PrometheusClient(f"prom.internal:9090/?token={KEY}")
    assert KEY not in str(refused.value)
    client = PrometheusClient(f"http://prom.internal:9090/?token={KEY}")
    assert KEY not in client.shown_url
    client.close()


def test_investigate_over_an_llm_url_with_a_key_prints_and_writes_none_of_it(scenario_dir, tmp_path: Path) -> None:
    tutorial = scenario_dir("seed-tutorial")
    with FakeOpenAI(replay_planner) as fake:
        result = CliRunner().invoke(app, [
            "investigate", "--metrics", str(tutorial / "metrics.csv"), "--logs", str(tutorial / "logs.csv"),
            "--llm", "openai-compatible", "--model", "scripted", "--llm-url", f"{fake.url}?api_key={KEY}",
            "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "api_key=***" in result.output and KEY not in result.output
    for path in tmp_path.iterdir():
        assert KEY not in path.read_text(), path.name


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_llm_url_fails_before_any_analysis_and_shows_no_key(scenario_dir, tmp_path: Path) -> None:
    tutorial = scenario_dir("seed-tutorial")
    url = f"http://me:{KEY}@127.0.0.1:{closed_port()}/v1?api_key={KEY}"
    result = run_cli("investigate", "--metrics", str(tutorial / "metrics.csv"), "--llm-url", url,
                     "--out", str(tmp_path))
    line = assert_one_line_error(result, "--llm-url http://127.0.0.1:", "/v1?api_key=***: unreachable",
                                 "Connection refused", "use --llm offline")
    assert KEY not in result.stdout + result.stderr, line
    assert list(tmp_path.iterdir()) == []  # no review written: it stopped before reading the data


@pytest.mark.parametrize(("url", "words"), [
    ("localhost:11434/v1", "expected an http:// or https:// URL"),
    ("http://localhost:abc/v1", "not a URL (Invalid port: 'abc')"),
    (f"ftp://me:{KEY}@host/v1", "--llm-url ftp://host/v1: expected an http:// or https:// URL"),
])
def test_a_malformed_llm_url_is_refused_up_front(url: str, words: str) -> None:
    with pytest.raises(InputError, match=re.escape(words)) as refused:
        check_endpoint(BrainChoice("openai-compatible", "m", url), timeout_s=1.0)
    assert KEY not in str(refused.value)


def test_an_llm_url_that_answers_at_all_passes_the_check() -> None:
    # a server without GET /models (the fake answers 501) is still a server: the investigation handles its replies
    with FakeOpenAI(replay_planner) as fake:
        check_endpoint(BrainChoice("openai-compatible", "m", fake.url), timeout_s=1.0)


def test_a_port_that_is_no_number_is_one_line_without_the_key() -> None:
    # urllib and httpx raised ValueError / InvalidURL from deep inside: a traceback
    with pytest.raises(InputError, match=r"^clickhouse://reader:\*\*\*@ch:abc/prod\.t: the port is no number") as bad:
        ClickHouseTarget.parse(f"clickhouse://reader:{KEY}@ch:abc/prod.t")
    assert KEY not in str(bad.value)
    with pytest.raises(InputError, match=r"^--prometheus http://me:\*\*\*@prom:abc/\?token=\*\*\*: not a URL "
                                         r"\(Invalid port: 'abc'\)$") as bad:
        PrometheusClient(f"http://me:{KEY}@prom:abc/?token={KEY}")
    assert KEY not in str(bad.value)
