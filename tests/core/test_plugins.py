"""The plugin system: hook specs, entry points, strict validation, an in-test connector end to end."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pluggy
import pytest
from coachbridge import hookspecs
from coachbridge.app import App
from coachbridge.plugins import Registry, make_plugin_manager

from . import fake_plugin


@pytest.fixture
def with_fake_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    original = Registry.build.__func__  # type: ignore[attr-defined]

    def build(cls: type[Registry], pm: pluggy.PluginManager | None = None) -> Registry:
        pm = pm or make_plugin_manager()
        pm.register(fake_plugin, name="fake-plugin")
        return original(cls, pm)

    monkeypatch.setattr(Registry, "build", classmethod(build))
    yield


def test_every_hook_is_prefixed_typed_and_documented() -> None:
    hooks = [
        name
        for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("coachbridge_")
    ]
    assert len(hooks) >= 6
    for name in hooks:
        func = getattr(hookspecs, name)
        assert func.__doc__ and len(func.__doc__.strip()) > 40, f"{name} needs a docstring"
        assert ":param" in func.__doc__, f"{name} must document its parameters"
        signature = inspect.signature(func)
        for param in signature.parameters.values():
            assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) untyped"


def test_builtin_connectors_come_through_entry_points() -> None:
    names = {ep.name for ep in entry_points(group="coachbridge")}
    assert {"csv", "bamboohr", "workday", "generic"} <= names
    pm = make_plugin_manager()
    for name in ("csv", "bamboohr", "workday", "generic"):
        assert pm.get_plugin(name) is not None


def test_plugin_restriction_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACHBRIDGE_PLUGINS", "csv")
    pm = make_plugin_manager()
    assert pm.get_plugin("csv") is not None
    assert pm.get_plugin("bamboohr") is None


def test_unknown_hook_implementation_is_rejected() -> None:
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(fake_plugin.BadPlugin(), name="bad")
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_fake_connector_configured_checked_synced(
    with_fake_plugin: None, tmp_path: Path, run_cli, db_url: str
) -> None:
    config = tmp_path / "coachbridge.toml"
    config.write_text(
        '[connectors.fk]\nplugin = "fake"\ntoken = "${FAKE_TOKEN}"\n', encoding="utf-8"
    )
    env = {"FAKE_TOKEN": "tok-123456"}
    result = run_cli("--config", str(config), "--db", db_url, "check", env=env)
    assert result.exit_code == 0, result.stderr
    assert "connector fk: ok" in result.stdout
    assert "tok-123456" not in result.stdout + result.stderr

    result = run_cli("--config", str(config), "--db", db_url, "sync", "fk", env=env)
    assert result.exit_code == 0, result.stderr
    assert "3 new" in result.stdout

    result = run_cli("--config", str(config), "--db", db_url, "people", "--format", "json", env=env)
    import json

    people = json.loads(result.stdout)
    assert [p["name"] for p in people] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    ada = people[0]
    assert ada["external_ids"] == {"fk": "1"}
    assert people[1]["manager_id"] == ada["id"]

    again = run_cli("--config", str(config), "--db", db_url, "sync", "fk", env=env)
    assert "0 new, 0 changed, 0 leaving" in again.stdout


def test_fake_connector_failed_check_exits_1(
    with_fake_plugin: None, tmp_path: Path, run_cli
) -> None:
    config = tmp_path / "coachbridge.toml"
    config.write_text('[connectors.fk]\nplugin = "fake"\ntoken = "t"\nfail_check = true\n')
    result = run_cli("--config", str(config), "check")
    assert result.exit_code == 1
    assert "the fake says no" in result.stdout


def test_app_connector_has_safe_repr(with_fake_plugin: None, tmp_path: Path) -> None:
    config = tmp_path / "coachbridge.toml"
    config.write_text('[connectors.fk]\nplugin = "fake"\ntoken = "very-secret-token"\n')
    app = App(config_option=str(config))
    connector = app.connector("fk")
    assert "very-secret-token" not in repr(connector)
    assert "very-secret-token" not in repr(connector.config)
