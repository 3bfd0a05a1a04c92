"""Setting a connector up from what its source holds (``coachbridge connect``).

One service: validate the settings given, let the connector discover its source and propose a
mapping (``Connector.discover``), then add the ``[connectors.<name>]`` table to the config file
with every existing line and comment kept in order. The new file is validated as a whole
before it replaces the old one, atomically, so a failure at any step leaves the file unchanged.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from coachbridge.config import load_config, read_toml, validation_problems
from coachbridge.connectors import Connector, ConnectorContext, Discovery
from coachbridge.errors import ConfigError, UserError
from coachbridge.store import Database
from coachbridge.store.tokens import token_store
from pydantic import SecretStr, ValidationError

__all__ = ["ConnectRequest", "ConnectResult", "connect"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# Upper case only: a value that is not such a name may be the secret itself, pasted by mistake,
# and is then never repeated in a message.
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


@dataclass
class ConnectRequest:
    """``options``: the connect options given (``tenant``, ``report``, ...); ``secrets``: config
    key -> the name of the environment variable that holds it (never the secret)."""

    plugin: str
    name: str
    config_path: Path
    options: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass
class ConnectResult:
    config_path: Path
    table: dict[str, Any]
    text: str  # the TOML added to the file
    discovery: Discovery
    written: bool = False


def _settings(request: ConnectRequest, cls: type[Connector]) -> dict[str, Any]:
    """The table the options and secrets make (secrets as ``${VAR}``)."""
    table: dict[str, Any] = {"plugin": request.plugin}
    takes = cls.connect_options
    for option, value in request.options.items():
        if option not in takes:
            known = ", ".join("--" + o.replace("_", "-") for o in takes) or "none"
            raise UserError(
                f"--{option.replace('_', '-')}: not a setting of the {request.plugin} plugin "
                f"(it takes {known})"
            )
        table[takes[option]] = value
    fields = cls.config_model.model_fields
    for key, var in request.secrets.items():
        if not _ENV_NAME.fullmatch(var):
            raise UserError(
                f"--secret {key}=...: give the name of an environment variable in upper case "
                "(e.g. WORKDAY_CLIENT_SECRET), never the secret itself"
            )
        if key not in fields or key == "plugin":
            raise UserError(f"--secret {key}={var}: {request.plugin} has no setting {key!r}")
        table[key] = "${" + var + "}"
    return table


def _expanded(
    table: Mapping[str, Any], secrets: Mapping[str, str], env: Mapping[str, str]
) -> dict[str, Any]:
    out = dict(table)
    for key, var in secrets.items():
        if var not in env:
            raise UserError(f"--secret {key}={var}: environment variable {var} is not set")
        out[key] = env[var]
    return out


def _render(name: str, table: Mapping[str, Any]) -> str:
    document = tomlkit.document()
    connectors = tomlkit.table(is_super_table=True)
    connectors.add(name, tomlkit.item(dict(table)))
    document.add("connectors", connectors)
    return tomlkit.dumps(document)


def _writable(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"{path}: cannot write: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{path}: cannot write: permission denied")


def _write_atomically(path: Path, text: str, check: Callable[[Path], None]) -> None:
    """Write ``text`` beside ``path``, ``check`` it there, then rename it over ``path``."""
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from None
    temp = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o7777)
        else:  # mkstemp's 0600 would hide a new config from the service's own user group
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)
        check(temp)
        os.replace(temp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)


def connect(
    connectors: Mapping[str, type[Connector]],
    request: ConnectRequest,
    *,
    confirm: Callable[[ConnectResult], bool] | None = None,
    env: Mapping[str, str] | None = None,
    database: Callable[[], Database] | None = None,
    secret_key: str | None = None,
) -> ConnectResult:
    """Discover the source, propose the table and add it to the config file.

    ``confirm`` (interactive use) sees the proposal before anything is written and may refuse
    it; None writes it (``--yes``). Raises ``UserError``/``ConfigError`` (exit 2) for bad
    options or a file that cannot be written, ``ConnectorError`` (exit 1) when the vendor
    cannot be reached or refuses the credentials, ``InputDataError`` (exit 2) when the source
    holds nothing a sync could key people by. The file is unchanged whenever it raises.

    ``database`` and ``secret_key`` (from the existing file) give the connector the token store
    every later process uses, so a refresh token the vendor rotates during discovery is kept.
    """
    env = os.environ if env is None else env
    path = request.config_path
    if not _NAME.fullmatch(request.name):
        raise UserError(f"connector name {request.name!r}: use letters, digits, '-' and '_' only")
    cls = connectors.get(request.plugin)
    if cls is None:
        known = ", ".join(sorted(connectors)) or "none installed"
        raise UserError(f"unknown plugin {request.plugin!r} (installed: {known})")
    if not cls.supports_discovery:
        raise UserError(f"the {request.plugin} plugin cannot discover its source; write the table")
    existing = ""
    if path.exists():
        read_toml(path)  # a broken file is reported before the vendor is asked anything
        existing = path.read_text(encoding="utf-8-sig")
        if request.name in tomllib.loads(existing).get("connectors", {}):
            raise ConfigError(f"{path}: connectors.{request.name} already exists")
    _writable(path)

    table = _settings(request, cls)
    try:
        config = cls.config_model.model_validate(_expanded(table, request.secrets, env))
    except ValidationError as exc:
        problems = validation_problems(exc, str(path), ("connectors", request.name))
        raise ConfigError("; ".join(problems)) from None
    tokens = None
    if database is not None:
        tokens = token_store(
            request.name, config, base_dir=path.parent, database=database, secret_key=secret_key
        )
    connector = cls(
        config, ConnectorContext(name=request.name, base_dir=path.parent, tokens=tokens)
    )
    discovery = connector.discover()
    for key, value in discovery.settings.items():
        if isinstance(value, SecretStr):  # a connector never proposes secrets; never write one
            continue
        table[key] = value

    text = _render(request.name, table)
    result = ConnectResult(path, table, text, discovery)
    if confirm is not None and not confirm(result):
        return result
    separator = (
        ""
        if not existing or existing.endswith("\n\n")
        else ("\n" if existing.endswith("\n") else "\n\n")
    )
    new_text = existing + separator + text

    def check(candidate: Path) -> None:
        # The whole file, as `check` will load it: the new table and everything already there.
        models = {n: c.config_model for n, c in connectors.items()}
        try:
            load_config(candidate, models, env)
        except ConfigError as exc:  # name the real file, on one line
            lines = [p.replace(str(candidate), str(path)) for p in exc.problems]
            raise ConfigError("; ".join(lines)) from None

    _write_atomically(path, new_text, check)
    result.written = True
    return result
