"""Configuration: env expansion, per-plugin validation, one clear line per problem, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from coachbridge.config import load_config
from coachbridge.connectors import ConnectorConfig
from coachbridge.errors import ConfigError
from pydantic import SecretStr


class SecretConfig(ConnectorConfig):
    api_key: SecretStr
    domain: str


MODELS = {"fake": SecretConfig}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "coachbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_env_expansion_and_secret_hidden(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[connectors.hr]\nplugin = "fake"\napi_key = "${KEY}"\ndomain = "acme-$${literal}"\n',
    )
    config = load_config(path, MODELS, env={"KEY": "s3cr3t-value"})
    connector = config.connectors["hr"]
    assert isinstance(connector, SecretConfig)
    assert connector.api_key.get_secret_value() == "s3cr3t-value"
    assert connector.domain == "acme-${literal}"
    assert "s3cr3t-value" not in repr(connector)
    assert "s3cr3t-value" not in repr(config)


def test_missing_env_var_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[connectors.hr]\nplugin = "fake"\napi_key = "${NOPE}"\ndomain = "x"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path, MODELS, env={})
    assert exc.value.problems == [
        f"{path}: connectors.hr.api_key: environment variable NOPE is not set"
    ]


def test_every_problem_reported_with_dotted_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[connectors.hr]
plugin = "fake"
domain = 3
colour = "blue"

[connectors.other]
plugin = "nosuch"

[[programs]]
id = "p"
kind = "therapy"

[[rules]]
on = "review.completed"
then = { enroll = "missing" }
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, MODELS, env={})
    text = "\n".join(exc.value.problems)
    assert f"{path}: programs[0].kind:" in text
    assert f"{path}: connectors.hr.api_key: Field required" in text
    assert f"{path}: connectors.hr.domain:" in text
    assert f"{path}: connectors.hr.colour: unknown key" in text
    assert "connectors.other.plugin: unknown plugin 'nosuch'" in text


def test_rule_naming_unknown_program(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[programs]]\nid = "p"\nkind = "coaching"\n[[rules]]\non = "review.completed"\n'
        'then = { enroll = "q" }\n',
    )
    with pytest.raises(ConfigError, match=r"rules\[0\]\.then\.enroll: unknown program 'q'"):
        load_config(path, MODELS, env={})


def test_invalid_toml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[database\nurl = 1\n")
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 1"):
        load_config(path, MODELS, env={})


def test_binary_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(path, MODELS, env={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", MODELS, env={})


def test_secret_never_echoed_in_validation_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[connectors.hr]\nplugin = "fake"\napi_key = "${KEY}"\ndomain = ["${KEY}"]\n'
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, MODELS, env={"KEY": "hunter2-secret"})
    assert "hunter2-secret" not in str(exc.value)


def test_no_file_means_defaults() -> None:
    config = load_config(None, MODELS)
    assert config.connectors == {}
    assert config.reports.min_group_size == 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"15m"', 900.0), ("90", 90.0), ('"2h"', 7200.0)],
)
def test_durations_accept_units_and_seconds(tmp_path: Path, value: str, expected: float) -> None:
    path = write(
        tmp_path,
        f'[connectors.hr]\nplugin = "fake"\napi_key = "k"\ndomain = "d"\nsync_every = {value}\n',
    )
    every = load_config(path, MODELS, env={}).connectors["hr"].sync_every
    assert every is not None and every.total_seconds() == expected


@pytest.mark.parametrize("value", ["true", '"soon"', "0", '"-5m"'])
def test_a_duration_that_is_not_one_is_a_config_error(tmp_path: Path, value: str) -> None:
    path = write(
        tmp_path,
        f'[connectors.hr]\nplugin = "fake"\napi_key = "k"\ndomain = "d"\nsync_every = {value}\n',
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, MODELS, env={})
    assert len(exc.value.problems) == 1
    assert exc.value.problems[0].startswith(f"{path}: connectors.hr.sync_every: ")
    assert "duration" in exc.value.problems[0]


def test_server_log_format_and_metrics_token(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nlog_format = "json"\nmetrics_token = "${METRICS_TOKEN}"\n')
    config = load_config(path, MODELS, env={"METRICS_TOKEN": "t0ken-from-env"})
    assert config.server.log_format == "json"
    assert config.server.metrics_token is not None
    assert config.server.metrics_token.get_secret_value() == "t0ken-from-env"
    assert "t0ken-from-env" not in repr(config)
    defaults = load_config(write(tmp_path, "[server]\n"), MODELS, env={})
    assert defaults.server.log_format == "text"
    assert defaults.server.metrics_token is None


def test_a_bad_log_format_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nlog_format = "xml"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path, MODELS, env={})
    assert len(exc.value.problems) == 1
    assert exc.value.problems[0].startswith(f"{path}: server.log_format:")
