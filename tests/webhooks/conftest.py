"""Fixtures for the webhook server: a config with a generic connector, people, guides, signing."""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from coachbridge.config import Config, load_config
from coachbridge.plugins import Registry
from coachbridge.store import Database
from coachbridge_webhooks import standard_webhooks
from coachbridge_webhooks.runtime import Runtime

SECRET = "whsec_" + base64.b64encode(b"coachbridge-test-secret-32bytes!").decode()
ENV = {"REVIEWS_SECRET": SECRET}

T = TypeVar("T")


def free_port() -> int:
    """A loopback port free right now. Another process may take it before we bind it again,
    so servers are started through ``with_free_port``, which tries another port then."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_free_port(start: Callable[[int], T], attempts: int = 5) -> T:
    """``start(port)`` on a free port; on a bind failure (``OSError``), again on a new port."""
    for attempt in range(attempts):
        try:
            return start(free_port())
        except OSError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


PEOPLE_HEADER = "id,first_name,last_name,email,job_title,department,timezone,manager_id,level\n"


def people_csv(learners: int, guides: int, *, start: int = 1) -> str:
    """Learners E<n> (Sales, level 2) and guides G<n> (Engineering, level 6), Berlin time."""
    rows = [
        f"G{i},Guide{i},Coach,g{i}@example.com,Staff Engineer,Engineering,Europe/Berlin,,6\n"
        for i in range(1, guides + 1)
    ]
    rows += [
        f"E{i},Lea{i},Learner,e{i}@example.com,Account Executive,Sales,Europe/Berlin,,2\n"
        for i in range(start, start + learners)
    ]
    return PEOPLE_HEADER + "".join(rows)


CONFIG = """
[database]
url = "{db_url}"

[server]
max_attempts = 3

[connectors.hr]
plugin = "csv"
people = "people.csv"

[connectors.reviews]
plugin = "generic"
secret = "${{REVIEWS_SECRET}}"
people_from = "hr"

[[programs]]
id = "performance-coaching"
name = "Performance coaching"
kind = "coaching"
capacity = {capacity}
duration_weeks = 6
cadence_days = 14

[programs.guides]
departments = ["Engineering"]

[[rules]]
on = "review.completed"
when = [{{ field = "rating", op = "<=", value = 0.4 }}]
then = {{ enroll = "performance-coaching", role = "learner", goal = "Coaching plan after the {{cycle}} review" }}
cooldown_days = 180
{extra}
"""


@dataclass
class Env:
    """A configured deployment in a temporary folder."""

    path: Path
    db_url: str
    config: Config
    registry: Registry
    db: Database

    def runtime(self) -> Runtime:
        return Runtime(config=self.config, registry=self.registry, db=self.db)


def write_config(
    folder: Path, db_url: str, *, capacity: int = 2, extra: str = "", people: str | None = None
) -> Path:
    (folder / "people.csv").write_text(people if people is not None else people_csv(4, 2))
    path = folder / "coachbridge.toml"
    path.write_text(CONFIG.format(db_url=db_url, capacity=capacity, extra=extra))
    return path


def load(path: Path, registry: Registry) -> Config:
    models = {name: cls.config_model for name, cls in registry.connectors.items()}
    return load_config(path, models, env={**os.environ, **ENV})


_REGISTRY: list[Registry] = []


def shared_registry() -> Registry:
    """Loading every plugin takes a moment; tests share one registry (it holds no state)."""
    if not _REGISTRY:
        _REGISTRY.append(Registry.build())
    return _REGISTRY[0]


def make_env(folder: Path, db_url: str, **kwargs: Any) -> Env:
    registry = shared_registry()
    path = write_config(folder, db_url, **kwargs)
    config = load(path, registry)
    db = Database(db_url)
    db.upgrade()
    return Env(path=path, db_url=db_url, config=config, registry=registry, db=db)


def sync_people(env: Env) -> None:
    """Sync the ``hr`` CSV connector and enroll the Engineering people as guides."""
    from datetime import UTC, datetime

    from coachbridge.hris.sync import Syncer
    from coachbridge.programs.enrollment import enroll_eligible

    rt = env.runtime()
    Syncer(env.db, rt.connector("hr")).run(full=True)
    with env.db.transaction() as s:
        enroll_eligible(
            s, env.config.programs["performance-coaching"], today=datetime.now(UTC).date()
        )


def _env(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Env:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    env = make_env(tmp_path, url)
    sync_people(env)
    return env


@pytest.fixture
def wenv(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """Config + migrated store (SQLite and PostgreSQL) with 4 learners and 2 guides synced."""
    env = _env(tmp_path, db_url, monkeypatch)
    yield env
    env.db.dispose()


@pytest.fixture
def swenv(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The same on SQLite only (HTTP checks that do not depend on the database)."""
    env = _env(tmp_path, sqlite_url, monkeypatch)
    yield env
    env.db.dispose()


def review(
    employee: str | None = "E1",
    *,
    rating: float = 2,
    cycle: str = "2026-H2",
    email: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "cycle_id": cycle,
        "rating": rating,
        "rating_scale_min": 1,
        "rating_scale_max": 5,
        "completed_at": "2026-11-20T09:55:00Z",
    }
    if employee is not None:
        data["employee_id"] = employee
    if email is not None:
        data["employee_email"] = email
    data.update(extra)
    return {"type": "review.completed", "timestamp": "2026-11-20T10:00:00Z", "data": data}


def signed(
    payload: dict[str, Any] | bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = standard_webhooks.signed_headers(
        SECRET, msg_id or f"msg_{uuid.uuid4().hex}", body, timestamp
    )
    return body, headers


def post(client: Any, payload: dict[str, Any] | bytes, msg_id: str | None = None) -> int:
    """Post a signed delivery to the generic connector (a new message id unless given)."""
    body, headers = signed(payload, msg_id=msg_id)
    return int(client.post("/webhooks/reviews", data=body, headers=headers).status_code)


@pytest.fixture
def client(wenv: Env) -> Any:
    """A Flask test client of the app on ``wenv``."""
    from coachbridge_webhooks import create_app

    return create_app(wenv.config, database=wenv.db, registry=wenv.registry).test_client()


@pytest.fixture
def worker(wenv: Env) -> Any:
    """An in-process worker on ``wenv`` without the scheduler."""
    from coachbridge_webhooks.worker import Worker

    return Worker(wenv.runtime(), worker_id="test-worker", scheduler=False)


def one_place_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Env:
    """A deployment whose guides take one learner each, with a clean memo of on-demand guide
    enrollment (``rules._guides_looked_for``), people not yet synced."""
    from coachbridge.programs import rules

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(rules, "_guides_looked_for", {})
    return make_env(tmp_path, db_url, capacity=1)
