"""Loading and validating ``coachbridge.toml``.

One TOML file holds everything ops configure. ``${VAR}`` in any string is replaced from the
environment (``$${`` writes a literal ``${``); a missing variable is an error naming the key.
Each ``[connectors.<name>]`` section is validated by its plugin's own pydantic model. Every
problem is reported as ``<file>: <dotted.key>: <problem>``, one line each, all at once.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from coachbridge.connectors import ConnectorConfig
from coachbridge.domain import Program, Rule
from coachbridge.errors import ConfigError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

DEFAULT_CONFIG_NAME = "coachbridge.toml"
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def key_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("programs", 0, "kind")`` -> ``programs[0].kind``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_problems(exc: ValidationError, file: str, prefix: tuple[Any, ...] = ()) -> list[str]:
    """Render a pydantic error as one line per problem, without ever echoing the input value."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        where = key_path(prefix + loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        lines.append(f"{file}: {where}: {msg}")
    return lines


def expand_env(
    value: Any, env: Mapping[str, str], path: tuple[Any, ...], problems: list[str], file: str
) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            if match.group(1):  # $${X} is a literal ${X}
                return "${" + match.group(2) + "}"
            name = match.group(2)
            if name not in env:
                problems.append(f"{file}: {key_path(path)}: environment variable {name} is not set")
                return ""
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, (*path, k), problems, file) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, (*path, i), problems, file) for i, v in enumerate(value)]
    return value


def _database_beside(url: str | None, config_path: Path | None) -> str | None:
    """A SQLite file named by a relative path (``coachbridge.db``, ``sqlite:///data/cb.db``) is
    relative to the config file, as every path in it is: the same file from any directory."""
    if url is None or config_path is None:
        return url
    prefix = "sqlite:///"
    if "://" not in url:
        name, prefix = url, ""
    elif url.startswith(prefix) and url[len(prefix) :] not in ("", ":memory:"):
        name = url[len(prefix) :]
    else:
        return url
    path = Path(name).expanduser()
    if path.is_absolute():
        return url
    return prefix + str((config_path.parent / path).resolve())


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = None


class ReportsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_group_size: int = Field(default=5, ge=2)


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8080"

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_attempts: int = Field(default=8, ge=1)
    inbox_retention_days: int = Field(default=30, ge=1)
    workers: int = Field(default=2, ge=1)
    #: "json": one JSON object per log line (serve and worker), for log collectors.
    log_format: Literal["text", "json"] = "text"
    #: When set, ``/metrics`` answers only requests carrying ``Authorization: Bearer <token>``.
    metrics_token: SecretStr | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        # It starts every link mailed to people: an address their browser can open.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "must be an http:// or https:// address such as https://coach.example.com"
            )
        return value


class _TopLevel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    programs: list[dict[str, Any]] = Field(default_factory=list)
    rules: list[dict[str, Any]] = Field(default_factory=list)
    notify: dict[str, dict[str, Any]] = Field(default_factory=dict)
    reports: ReportsSettings = Field(default_factory=ReportsSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)


@dataclass
class Config:
    """The validated configuration. ``path`` is None when no file exists (built-in defaults)."""

    path: Path | None
    database_url: str | None = None
    connectors: dict[str, ConnectorConfig] = field(default_factory=dict)
    programs: dict[str, Program] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    notify: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: ReportsSettings = field(default_factory=ReportsSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "(no config file)"

    def program(self, program_id: str) -> Program:
        from coachbridge.errors import NotFoundError

        try:
            return self.programs[program_id]
        except KeyError:
            known = ", ".join(sorted(self.programs)) or "none configured"
            raise NotFoundError(f"unknown program {program_id!r} (known: {known})") from None

    def connector(self, name: str) -> ConnectorConfig:
        from coachbridge.errors import NotFoundError

        try:
            return self.connectors[name]
        except KeyError:
            known = ", ".join(sorted(self.connectors)) or "none configured"
            raise NotFoundError(f"unknown connector {name!r} (known: {known})") from None


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """``--config``, else ``COACHBRIDGE_CONFIG``, else ``./coachbridge.toml`` if it exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("COACHBRIDGE_CONFIG")
    if env:
        return Path(env)
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default if default.exists() else None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(
    path: Path | None,
    connector_models: Mapping[str, type[ConnectorConfig]],
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read, expand and validate the whole file; raise ``ConfigError`` listing every problem."""
    if path is None:
        return Config(path=None)
    env = os.environ if env is None else env
    file = str(path)
    data = read_toml(path)
    problems: list[str] = []
    data = expand_env(data, env, (), problems, file)
    if problems:
        raise ConfigError(problems)
    # Each part is validated on its own so that every problem is reported in one run.
    top = _TopLevel()
    for key, value in data.items():
        if key not in _TopLevel.model_fields:
            problems.append(f"{file}: {key}: unknown key (check the spelling)")
            continue
        try:
            part = _TopLevel.model_validate({key: value})
        except ValidationError as exc:
            problems.extend(validation_problems(exc, file))
            continue
        setattr(top, key, getattr(part, key))

    connectors: dict[str, ConnectorConfig] = {}
    for name, section in top.connectors.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            problems.append(f"{file}: connectors.{name}: use letters, digits, '-' and '_' only")
            continue
        plugin = section.get("plugin")
        if not isinstance(plugin, str):
            problems.append(f'{file}: connectors.{name}.plugin: missing (e.g. plugin = "csv")')
            continue
        model = connector_models.get(plugin)
        if model is None:
            known = ", ".join(sorted(connector_models)) or "none installed"
            problems.append(
                f"{file}: connectors.{name}.plugin: unknown plugin {plugin!r} (installed: {known})"
            )
            continue
        try:
            connectors[name] = model.model_validate(section)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, file, ("connectors", name)))

    programs: dict[str, Program] = {}
    for index, section in enumerate(top.programs):
        try:
            program = Program.model_validate(section)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, file, ("programs", index)))
            continue
        if program.id in programs:
            problems.append(f"{file}: programs[{index}].id: duplicate program id {program.id!r}")
        programs[program.id] = program
    rules: list[Rule] = []
    for index, section in enumerate(top.rules):
        try:
            rule = Rule.model_validate(section)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, file, ("rules", index)))
            continue
        rules.append(rule)
        if rule.then.enroll not in programs and not any(
            p.startswith(f"{file}: programs[") for p in problems
        ):
            problems.append(
                f"{file}: rules[{index}].then.enroll: unknown program {rule.then.enroll!r}"
            )
    if problems:
        raise ConfigError(problems)
    return Config(
        path=path,
        database_url=_database_beside(top.database.url, path),
        connectors=connectors,
        programs=programs,
        rules=rules,
        notify=top.notify,
        reports=top.reports,
        server=top.server,
    )
