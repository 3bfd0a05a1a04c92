"""Every hook has a test: the observer hooks see pairings, sessions and review events."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from coachbridge import hookimpl, hookspecs
from coachbridge.notify.base import Message, Notifier
from coachbridge.plugins import Registry, make_plugin_manager

TESTS = Path(__file__).resolve().parents[1]


SENT: list[Message] = []


class MemoNotifier(Notifier):
    """A notification channel that keeps what it is asked to send."""

    def send(self, message: Message) -> str:
        SENT.append(message)
        return "sent"


class Recorder:
    """An in-test plugin that records what the observer hooks were told."""

    def __init__(self) -> None:
        self.seen: dict[str, list[Any]] = {"pairing": [], "session": [], "review": []}

    @hookimpl
    def coachbridge_register_notifiers(self, register: Any) -> None:
        register("memo", MemoNotifier)

    @hookimpl
    def coachbridge_on_pairing_created(self, pairing: Any) -> None:
        self.seen["pairing"].append(pairing)

    @hookimpl
    def coachbridge_on_session_scheduled(self, session: Any) -> None:
        self.seen["session"].append(session)

    @hookimpl
    def coachbridge_on_review_event(self, event: Any, outcome: dict[str, Any]) -> None:
        self.seen["review"].append((event, outcome))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    original = Registry.build.__func__  # type: ignore[attr-defined]

    def build(cls: type[Registry], pm: pluggy.PluginManager | None = None) -> Registry:
        pm = pm or make_plugin_manager()
        pm.register(rec, name="recorder")
        return original(cls, pm)

    monkeypatch.setattr(Registry, "build", classmethod(build))
    yield rec


PEOPLE = """id,first_name,last_name,email,department,level,manager_id,timezone,skills
1,Ada,Lovelace,ada@example.com,Engineering,8,,Europe/London,Mentoring;Python
2,Alan,Turing,alan@example.com,Research,6,1,Europe/London,Python
3,Grace,Hopper,grace@example.com,Engineering,3,1,America/New_York,
"""
REVIEWS = """employee_id,cycle,rating,rating_scale_max,completed_at
3,2026-H2,2,5,2026-11-20T09:55:00Z
"""
CONFIG = """
[connectors.hr]
plugin = "csv"
people = "people.csv"
{reviews}
rules_since = 2026-01-01T00:00:00Z

[[programs]]
id = "coaching"
kind = "coaching"
duration_weeks = 6
cadence_days = 14
[programs.guides]
level = [5, 9]
[programs.weights]
skills = 1.0

[[rules]]
on = "review.completed"
when = [{{ field = "rating", op = "<=", value = 0.4 }}]
then = {{ enroll = "coaching", role = "learner", goal = "Plan after {{cycle}}" }}

[notify.memo]
"""


def test_observers_see_what_a_review_started(recorder: Recorder, tmp_path: Path, run_cli) -> None:
    SENT.clear()
    (tmp_path / "people.csv").write_text(PEOPLE)
    (tmp_path / "reviews.csv").write_text(REVIEWS)
    config = tmp_path / "coachbridge.toml"
    config.write_text(CONFIG.format(reviews=""))
    assert run_cli("sync", "hr").exit_code == 0
    assert run_cli("enroll", "coaching").exit_code == 0
    config.write_text(CONFIG.format(reviews='reviews = "reviews.csv"'))
    result = run_cli("sync", "hr")
    assert result.exit_code == 0, result.stderr

    ((event, outcome),) = recorder.seen["review"]
    assert event.cycle == "2026-H2" and event.rating == 0.25 and event.raw_rating == 2
    assert outcome["rules"][0]["result"] == "paired"
    (pairing,) = recorder.seen["pairing"]
    assert pairing.program == "coaching" and pairing.learner_id == event.person_id
    assert len(recorder.seen["session"]) == 3  # 6 weeks every 14 days
    # The plugin's notification channel told both people, with the invitation attached.
    assert sorted(m.to_email for m in SENT) == ["alan@example.com", "grace@example.com"]
    assert all(a.filename.endswith(".ics") for m in SENT for a in m.attachments)


def test_every_hook_has_a_test_and_is_documented() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.rglob("*.py"))
    readme = (TESTS.parent / "README.md").read_text(encoding="utf-8")
    for name, _ in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("coachbridge_"):
            continue
        implemented = f"def {name}(" in text or f"{name}=hookimpl" in text
        assert implemented, f"hook {name} has no test implementing it"
        assert f"`{name}(" in readme, f"the README's plugin section should list {name}"


class Raising:
    """An observer plugin that fails on every event."""

    @hookimpl
    def coachbridge_on_pairing_created(self, pairing: Any) -> None:
        raise RuntimeError("observer broke on the pairing")

    @hookimpl
    def coachbridge_on_session_scheduled(self, session: Any) -> None:
        raise RuntimeError("observer broke on the session")

    @hookimpl
    def coachbridge_on_review_event(self, event: Any, outcome: dict[str, Any]) -> None:
        raise RuntimeError("observer broke on the review event")


@pytest.mark.parametrize(
    ("method", "args", "seen"),
    [
        ("pairing_created", ("the pairing",), "pairing"),
        ("session_scheduled", ("the session",), "session"),
        ("review_event", ("the event", {"rules": []}), "review"),
    ],
)
def test_one_failing_observer_does_not_silence_the_others(
    method: str, args: tuple[Any, ...], seen: str, caplog: pytest.LogCaptureFixture
) -> None:
    pm = make_plugin_manager(load_entry_points=False)
    quiet = Recorder()
    pm.register(quiet, name="quiet-recorder")
    pm.register(Raising(), name="loud-plugin")  # registered last: pluggy calls it first
    registry = Registry.build(pm)
    order = [
        impl.plugin_name
        for impl in reversed(pm.hook.coachbridge_on_pairing_created.get_hookimpls())
    ]
    assert order == ["loud-plugin", "quiet-recorder"]

    with caplog.at_level("ERROR", logger="coachbridge.plugins"):
        getattr(registry, method)(*args)  # the caller is not disturbed either

    expected = args[0] if len(args) == 1 else args
    assert quiet.seen[seen] == [expected]
    (record,) = caplog.records
    assert "'loud-plugin'" in record.getMessage()
    assert record.exc_info is not None and "observer broke" in str(record.exc_info[1])
