"""The plugin system: hook specs, entry points, strict validation, an in-test connector end to end."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable, Iterator
from datetime import time, timedelta
from importlib.metadata import entry_points
from pathlib import Path

import click
import pluggy
import pytest
from coachbridge import hookimpl, hookspecs
from coachbridge.app import App
from coachbridge.errors import ConfigError
from coachbridge.plugins import Registry, make_plugin_manager
from coachbridge.schedules import Job

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
    assert {"csv", "bamboohr", "workday", "generic", "webhooks"} <= names
    pm = make_plugin_manager()
    for name in ("csv", "bamboohr", "workday", "generic", "webhooks"):
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


# -- commands and jobs from plugins ----------------------------------------------------------
FK_CONFIG = '[connectors.fk]\nplugin = "fake"\ntoken = "${FAKE_TOKEN}"\n'
FK_ENV = {"FAKE_TOKEN": "tok-123456"}


def _commands(help_text: str) -> set[str]:
    """The command names ``--help`` lists."""
    listing = help_text.split("Commands:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^  (\S+)", listing, re.MULTILINE)}


def test_a_plugin_adds_a_command(with_fake_plugin: None, tmp_path: Path, run_cli) -> None:
    listed = run_cli("--help")
    assert listed.exit_code == 0 and "fake-count" in _commands(listed.stdout)
    config = tmp_path / "coachbridge.toml"
    config.write_text(FK_CONFIG, encoding="utf-8")
    result = run_cli("--config", str(config), "fake-count", "--shout", env=FK_ENV)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "1 CONNECTOR(S) CONFIGURED\n"
    # The command gets the App like a built-in one: a config error is one line, exit 2.
    config.write_text(FK_CONFIG + "nonsense = 1\n", encoding="utf-8")
    bad = run_cli("--config", str(config), "fake-count", env=FK_ENV)
    assert bad.exit_code == 2
    assert (
        bad.stderr == f"error: {config}: connectors.fk.nonsense: unknown key (check the spelling)\n"
    )


def test_a_plugin_job_runs_on_the_worker(
    with_fake_plugin: None, tmp_path: Path, run_cli, sqlite_url: str
) -> None:
    from coachbridge.store import Database
    from coachbridge.store.tables import JobRow

    fake_plugin.JOB_RUNS.clear()
    config = tmp_path / "coachbridge.toml"
    config.write_text(FK_CONFIG, encoding="utf-8")
    args = ("--config", str(config), "--db", sqlite_url, "worker", "--once")
    for _ in range(2):  # due every 6 hours: the second pass leaves it
        result = run_cli(*args, env=FK_ENV)
        assert result.exit_code == 0, result.stderr
    ((connectors, now),) = fake_plugin.JOB_RUNS
    assert connectors == ["fk"] and now.tzinfo is not None
    db = Database(sqlite_url)
    with db.transaction() as s:
        row = s.get(JobRow, "fake:tidy")
        assert row.last_finished_at is not None and row.last_error is None
        assert s.get(JobRow, "daily:program-health") is not None  # the core's, beside it
    db.dispose()


class CommandPlugin:
    """Registers a command of the given name."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def coachbridge_register_commands(self, register: Callable[[click.Command], None]) -> None:
        register(click.Command(self.name, callback=lambda: click.echo("hello")))


@pytest.fixture
def extra_plugins(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Plugins (name -> object) registered into every registry built while the test runs."""
    plugins: dict[str, object] = {}
    original = Registry.build.__func__  # type: ignore[attr-defined]

    def build(cls: type[Registry], pm: pluggy.PluginManager | None = None) -> Registry:
        pm = pm or make_plugin_manager()
        for name, plugin in plugins.items():
            pm.register(plugin, name=name)
        return original(cls, pm)

    monkeypatch.setattr(Registry, "build", classmethod(build))
    return plugins


def test_two_plugins_with_one_command_name_is_a_start_up_error(
    extra_plugins: dict[str, object], run_cli
) -> None:
    extra_plugins.update(first=CommandPlugin("hello"), second=CommandPlugin("hello"))
    result = run_cli("people")
    assert result.exit_code == 2
    assert "'first'" in result.stderr and "'second'" in result.stderr
    assert "command 'hello'" in result.stderr and "Traceback" not in result.stderr


def test_a_plugin_command_may_not_replace_a_built_in_one(
    extra_plugins: dict[str, object], run_cli
) -> None:
    extra_plugins["greedy"] = CommandPlugin("sync")
    result = run_cli("people")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: plugin 'greedy' registers the command 'sync', which coachbridge has built in\n"
    )
    # --help still lists the built-in commands, and says why the plugin's are missing.
    listed = run_cli("--help")
    assert listed.exit_code == 0 and {"sync", "people"} <= _commands(listed.stdout)
    assert "warning: plugin 'greedy'" in listed.stderr


def test_two_plugins_with_one_job_name_is_a_start_up_error(tmp_path: Path) -> None:
    from coachbridge.config import load_config

    class Jobs:
        @hookimpl
        def coachbridge_register_jobs(self, register: Callable[[Job], None]) -> None:
            register(Job("sync:hr", lambda ctx, now: None, every=timedelta(hours=1)))

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Jobs(), name="jobs-plugin")
    registry = Registry.build(pm)
    path = tmp_path / "coachbridge.toml"
    path.write_text('[connectors.hr]\nplugin = "fake"\ntoken = "t"\n')
    config = load_config(path, {"fake": fake_plugin.FakeConfig})
    with pytest.raises(ConfigError) as caught:
        registry.jobs(config)
    assert str(caught.value) == (
        "plugins 'coachbridge.jobs.builtin' and 'jobs-plugin' both register the job 'sync:hr'"
    )


def test_a_job_name_clash_stops_the_worker_before_it_starts(
    extra_plugins: dict[str, object], run_cli, sqlite_url: str
) -> None:
    class Jobs:
        @hookimpl
        def coachbridge_register_jobs(self, register: Callable[[Job], None]) -> None:
            register(Job("daily:program-health", lambda ctx, now: None, at=time(3)))

    extra_plugins["copycat"] = Jobs()
    result = run_cli("--db", sqlite_url, "worker", "--once")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "error: plugins 'coachbridge.jobs.builtin' and 'copycat' both register the job "
        "'daily:program-health'\n"
    )


WEBHOOK_COMMANDS = {"serve", "worker", "events"}
PEOPLE = """id,first_name,last_name,email,department,level,manager_id
1,Ada,Lovelace,ada@example.com,Engineering,8,
2,Alan,Turing,alan@example.com,Research,6,1
"""
CONFIG = """
[connectors.hr]
plugin = "csv"
people = "people.csv"

[[programs]]
id = "coaching"
kind = "coaching"
[programs.guides]
level = [5, 9]
"""


def test_the_cli_works_without_the_webhook_server(tmp_path: Path, run_cli) -> None:
    with_server = run_cli("--help")
    assert with_server.exit_code == 0
    assert _commands(with_server.stdout) >= WEBHOOK_COMMANDS

    off = {"COACHBRIDGE_DISABLE_PLUGINS": "webhooks"}
    listed = run_cli("--help", env=off)
    assert listed.exit_code == 0, listed.stderr
    commands = _commands(listed.stdout)
    assert not WEBHOOK_COMMANDS & commands
    assert {"sync", "people", "nudge", "match", "report"} <= commands
    assert _commands(with_server.stdout) - commands == WEBHOOK_COMMANDS
    for args in (("serve",), ("worker", "--once"), ("events", "list")):
        result = run_cli(*args, env=off)
        assert result.exit_code == 2 and "No such command" in result.stderr, args

    (tmp_path / "people.csv").write_text(PEOPLE)
    (tmp_path / "coachbridge.toml").write_text(CONFIG)
    assert run_cli("sync", "hr", env=off).exit_code == 0
    assert run_cli("enroll", "coaching", env=off).exit_code == 0
    for args in (("nudge", "--dry-run"), ("nudge",)):  # the daily run by hand
        result = run_cli(*args, env=off)
        assert result.exit_code == 0, result.stderr
        assert "0 message(s)" in result.stderr


def test_disabling_the_webhook_server_keeps_the_generic_connector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COACHBRIDGE_DISABLE_PLUGINS", "webhooks")
    registry = Registry.build()
    assert registry.pm.get_plugin("webhooks") is None
    assert "generic" in registry.connectors and registry.commands == {}


def test_core_imports_no_plugin_and_not_the_server() -> None:
    """Not even inside a function or under TYPE_CHECKING: every import statement counts."""
    plugin_packages = ("coachbridge_webhooks", "coachbridge_csv", "coachbridge_bamboohr")
    plugin_packages += ("coachbridge_workday",)
    core = Path(__file__).resolve().parents[2] / "core"
    found = []
    for path in sorted(core.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            found += [
                f"{path.relative_to(core)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] in plugin_packages
            ]
    assert found == []
    assert len(list(core.rglob("*.py"))) > 50  # the walk saw the core
