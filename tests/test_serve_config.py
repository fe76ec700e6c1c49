"""`incidentlens serve --config`: TOML or YAML with the same settings as the options, plus the notifications;
options win; the token never comes from a file; unsafe or useless set-ups are refused with one line, exit 2."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cli_process import assert_one_line_error, run_cli
from incidentlens.errors import InputError
from incidentlens.server.settings import build_settings, check_serve_settings

TOML = """
host = "0.0.0.0"
port = 9000
state = "/var/lib/incidentlens"
workers = 2
queue_size = 50
llm = "offline"
public_url = "https://lens.example"

[sources]
metrics = ["/data/metrics/*.parquet"]
logs = ["clickhouse://reader@ch:8123/prod.logs"]
map = ["time=when"]
prometheus = "http://prometheus:9090"

[[notifications]]
name = "oncall"
kind = "slack"
url_env = "SLACK_WEBHOOK_URL"

[[notifications]]
name = "pager"
url = "https://pager.example/hook"
"""

YAML = """
port: 9001
sources:
  metrics: [/data/metrics.csv]
notifications:
  - {name: oncall, kind: slack, url: "https://hooks.slack.example/T0/B0/x"}
"""


def test_a_toml_config_holds_every_setting_and_the_notifications(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(TOML)
    settings = build_settings(config, {"port": None, "metrics": None, "token": "from-option"})
    assert (settings.host, settings.port, settings.workers, settings.queue_size) == ("0.0.0.0", 9000, 2, 50)
    assert settings.state == Path("/var/lib/incidentlens")
    assert settings.sources.metrics == ["/data/metrics/*.parquet"]
    assert settings.sources.logs == ["clickhouse://reader@ch:8123/prod.logs"]
    assert settings.sources.prometheus == "http://prometheus:9090" and settings.sources.map == ["time=when"]
    assert [(n.name, n.kind) for n in settings.notifications] == [("oncall", "slack"), ("pager", "json")]
    assert settings.base_url() == "https://lens.example"
    assert settings.token == "from-option"


@pytest.mark.parametrize(("host", "url"), [
    ("0.0.0.0", "http://127.0.0.1:8080"), ("10.1.2.3", "http://10.1.2.3:8080"), ("::", "http://127.0.0.1:8080"),
    ("::1", "http://[::1]:8080"),  # it was http://::1:8080, a link no browser opens
])
def test_the_links_without_a_public_url_go_to_the_address_listened_on(host: str, url: str) -> None:
    assert build_settings(None, {"host": host, "metrics": ["m.csv"]}).base_url() == url


def test_options_win_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(TOML)
    settings = build_settings(config, {"port": 8181, "metrics": ["/elsewhere.csv"], "workers": None})
    assert (settings.port, settings.workers, settings.sources.metrics) == (8181, 2, ["/elsewhere.csv"])
    assert settings.sources.logs == ["clickhouse://reader@ch:8123/prod.logs"]  # not given: the file's


def test_a_yaml_config_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENTLENS_TOKEN", "from-env")
    config = tmp_path / "serve.yaml"
    config.write_text(YAML)
    settings = build_settings(config, {})
    assert (settings.port, settings.sources.metrics, settings.token) == (9001, ["/data/metrics.csv"], "from-env")
    assert settings.notifications[0].resolved_url() == "https://hooks.slack.example/T0/B0/x"


def test_a_source_given_as_one_path_reads_as_a_list_of_it(tmp_path: Path) -> None:
    # `metrics = "/data/*.parquet"`, as one --metrics is given, was refused: "sources.metrics: Input should be a
    # valid list"
    config = tmp_path / "serve.toml"
    config.write_text('[sources]\nmetrics = "/data/metrics/*.parquet"\nlogs = "/data/logs.csv"\n'
                      'prometheus = "http://prometheus:9090"\n')
    settings = build_settings(config, {})
    assert (settings.sources.metrics, settings.sources.logs) == (["/data/metrics/*.parquet"], ["/data/logs.csv"])
    assert settings.sources.prometheus == "http://prometheus:9090"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.toml", 'token = "s3cret"\n', "keep the token out of files"),
    ("a.toml", "port = \n", "not valid TOML"),
    ("a.yaml", "port: [\n", "not valid YAML"),
    ("a.toml", 'colour = "blue"\n', "colour: Extra inputs are not permitted"),
    ("a.toml", "port = 99999\n", "port: Input should be less than or equal to 65535"),
    ("a.toml", "[[notifications]]\nname = 'x'\n", "notification 'x': give url or url_env"),
    ("a.toml", "[[notifications]]\nurl = 'https://x'\nkind = 'email'\n", "notifications.0.kind"),
])
def test_a_bad_config_is_one_line_naming_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    config = tmp_path / name
    config.write_text(text)
    with pytest.raises(InputError, match=r"a\.(toml|yaml)") as caught:
        build_settings(config, {})
    assert message in str(caught.value)


def test_the_server_refuses_to_listen_beyond_loopback_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INCIDENTLENS_TOKEN", raising=False)
    open_wide = build_settings(None, {"host": "0.0.0.0", "metrics": ["m.csv"]})
    with pytest.raises(InputError, match=r"--host 0\.0\.0\.0 without a token"):
        check_serve_settings(open_wide)
    check_serve_settings(build_settings(None, {"host": "127.0.0.1", "metrics": ["m.csv"]}))  # loopback: allowed


def test_serve_without_telemetry_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", "from incidentlens.cli import main; main()", "serve", "--state",
                             str(tmp_path / "state"), "--port", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: serve: no telemetry given") and result.stderr.count("\n") == 1


def test_a_missing_notification_url_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    settings = build_settings(None, {"metrics": ["m.csv"], "notifications": [{"url_env": "NOT_SET_ANYWHERE"}]})
    with pytest.raises(InputError, match="environment variable NOT_SET_ANYWHERE is not set"):
        settings.notifications[0].resolved_url()


def test_the_server_refuses_an_llm_url_no_investigation_could_reach() -> None:
    # refused at start, not at every alert; a well-formed URL is not probed (the model server may start later)
    with pytest.raises(InputError, match=r"--llm-url localhost:11434/v1: expected an http:// or https:// URL"):
        check_serve_settings(build_settings(None, {"metrics": ["m.csv"], "llm_url": "localhost:11434/v1"}))
    check_serve_settings(build_settings(None, {"metrics": ["m.csv"], "llm_url": "http://127.0.0.1:9/v1"}))


@pytest.mark.parametrize(("brain", "message"), [
    ({"llm": "openai"}, "--llm openai: OPENAI_API_KEY is not set"),
    ({"llm": "openai-compatible"}, "--llm openai-compatible: --llm-url is required"),
    ({"llm": "gpt-4o"}, "--llm: unknown brain 'gpt-4o'"),  # the file's llm is a string
])
def test_the_server_refuses_a_brain_no_investigation_could_use(monkeypatch: pytest.MonkeyPatch, brain: dict[str, str],
                                                               message: str) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # refused at start, not as every alert's failure
    with pytest.raises(InputError, match=re.escape(message)):
        check_serve_settings(build_settings(None, {"metrics": ["m.csv"], **brain}))


@pytest.mark.parametrize(("target", "env", "message"), [
    ({"name": "oncall", "url_env": "NOT_SET_ANYWHERE"}, None,
     "serve: notification 'oncall': environment variable NOT_SET_ANYWHERE is not set"),
    ({"name": "oncall", "url_env": "HOOK_URL"}, "ftp://s3cret-token@hooks.example/T0",
     "serve: notification 'oncall': environment variable HOOK_URL is not an http:// or https:// URL with a host"),
    ({"name": "oncall", "url_env": "HOOK_URL"}, "hooks.example/s3cret-token",
     "serve: notification 'oncall': environment variable HOOK_URL is not an http:// or https:// URL with a host"),
    ({"name": "pager", "url": "https:///s3cret-token"}, None,
     "serve: notification 'pager': its url is not an http:// or https:// URL with a host"),
    ({"name": "pager", "url": "https://hooks.example:port/s3cret-token"}, None,
     "serve: notification 'pager': its url is not an http:// or https:// URL with a host"),
    ({"name": "oncall", "url_env": "HOOK_URL"}, " \n",
     "serve: notification 'oncall': environment variable HOOK_URL is blank"),
    ({"name": "pager", "url": "  "}, None, "serve: notification 'pager': its url is blank"),
    # two lines of a file in one variable: urlsplit would read one URL with the second glued to its path
    ({"name": "oncall", "url_env": "HOOK_URL"}, "https://hooks.example/s3cret-token\nhttps://hooks.example/other",
     "serve: notification 'oncall': environment variable HOOK_URL holds a space, line break or control character"),
    ({"name": "pager", "url": "https://hooks example/s3cret-token"}, None,
     "serve: notification 'pager': its url holds a space, line break or control character"),
])
def test_a_notification_no_delivery_could_send_is_refused_at_start_as_every_send_refuses_it(
        monkeypatch: pytest.MonkeyPatch, target: dict, env: str | None, message: str) -> None:
    # found before at the first review, and only in the state DB; the URL (a secret) is never in the message
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    if env is not None:
        monkeypatch.setenv("HOOK_URL", env)
    settings = build_settings(None, {"metrics": ["m.csv"], "notifications": [target]})
    with pytest.raises(InputError) as caught:
        check_serve_settings(settings)
    assert str(caught.value) == message
    # a send reads the URL the same way, so what passed the check is what is posted to, and a failure is recorded
    # with the same line
    with pytest.raises(InputError) as at_send:
        settings.notifications[0].resolved_url()
    assert f"serve: {at_send.value}" == message


def test_two_notifications_of_one_name_are_refused() -> None:
    # deliveries find their target by name: the second (here both unnamed, "webhook") posted to the first's URL
    twins = [{"url": "https://a.example/hook"}, {"url": "https://b.example/hook"}]
    with pytest.raises(InputError, match=r"^serve: notification 'webhook' is named twice"):
        check_serve_settings(build_settings(None, {"metrics": ["m.csv"], "notifications": twins}))


def test_notifications_with_web_urls_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_URL", "https://hooks.slack.example/T0/B0/x\n")  # a trailing newline, as `$(cat f)` keeps
    targets = [{"name": "oncall", "kind": "slack", "url_env": "HOOK_URL"}, {"name": "pager", "url": "http://[::1]:9/h"}]
    settings = build_settings(None, {"metrics": ["m.csv"], "notifications": targets})
    check_serve_settings(settings)
    assert settings.notifications[0].resolved_url() == "https://hooks.slack.example/T0/B0/x"


def test_serve_with_an_unset_notification_variable_is_one_line_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    config = tmp_path / "serve.toml"
    config.write_text('[[notifications]]\nname = "oncall"\nkind = "slack"\nurl_env = "NOT_SET_ANYWHERE"\n')
    result = run_cli("serve", "--config", str(config), "--metrics", "m.csv", "--state", str(tmp_path / "state"),
                     "--port", "0", timeout=60)
    assert assert_one_line_error(result) == (
        "error: serve: notification 'oncall': environment variable NOT_SET_ANYWHERE is not set")
    assert not (tmp_path / "state").exists()  # refused before anything was written


def test_a_port_already_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # it was "incidentlens serve: http://127.0.0.1:PORT ..." as if it served, then uvicorn's "ERROR: [Errno 98] error
    # while attempting to bind ..." and exit 3
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n2024-05-01T10:00:00Z,api,p95_ms,12\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--metrics", str(metrics), "--state", str(tmp_path / "state"), "--token", "t",
                         "--port", str(port), timeout=60)
    assert assert_one_line_error(result) == (
        f"error: serve: cannot listen on 127.0.0.1:{port}: address already in use (another server on that port? "
        "give another with --port)")
