"""What the test suite needs outside Python, checked once before any test runs.

A missing PostgreSQL server or a chromium that cannot start fails the run with one line naming
it. Skipping those tests is only ever the user's explicit choice: ``COACHBRIDGE_TEST_SKIP``
lists the parts to leave out (``postgresql``, ``browser``, comma-separated).
"""

from __future__ import annotations

import os
import shutil

SKIP_VAR = "COACHBRIDGE_TEST_SKIP"
PARTS = ("postgresql", "browser")
PG_URL = os.environ.get("COACHBRIDGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHROMIUM = os.environ.get("COACHBRIDGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The container has no user namespaces for chromium's sandbox, and no GPU.
LAUNCH: dict[str, object] = {"headless": True, "args": ["--no-sandbox", "--disable-gpu"]}


def opted_out(value: str | None) -> frozenset[str]:
    """The parts named in ``COACHBRIDGE_TEST_SKIP``; an unknown name is an error, not ignored.

    A typo such as ``postgres`` must not silently run (and fail) what the user meant to leave out,
    nor leave out something they did not name.
    """
    names = {part.strip().lower() for part in (value or "").split(",")} - {""}
    unknown = sorted(names - set(PARTS))
    if unknown:
        raise ValueError(
            f"{SKIP_VAR}: unknown part {', '.join(map(repr, unknown))} (known: {', '.join(PARTS)})"
        )
    return frozenset(names)


def pg_admin_url(url: str = PG_URL) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def postgresql_problem(url: str = PG_URL) -> str | None:
    """Why the PostgreSQL server at ``url`` cannot be used, or None when it answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_engine(pg_admin_url(url), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        # The driver's message can span lines; the first one names the cause.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"PostgreSQL at {shown} (COACHBRIDGE_TEST_PG_URL) is not reachable: {reason}"
    finally:
        engine.dispose()
    return None


def browser_problem(executable: str = CHROMIUM) -> str | None:
    """Why headless chromium cannot start through Playwright, or None when it does."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        return f"playwright is not installed ({exc}): run make install"
    if not os.path.exists(executable):
        return f"chromium not found at {executable}: run tests/health/ensure_chromium.sh"
    try:
        with sync_playwright() as p:
            p.chromium.launch(executable_path=executable, **LAUNCH).close()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0]
        return f"chromium at {executable} cannot start: {reason}"
    return None


def missing(skip: frozenset[str]) -> dict[str, str]:
    """``{part: why it cannot be used}`` for each needed part that is not opted out."""
    checks = {"postgresql": postgresql_problem, "browser": browser_problem}
    problems = {}
    for part, check in checks.items():
        if part not in skip and (problem := check()):
            problems[part] = problem
    return problems


def failure_line(problems: dict[str, str]) -> str:
    """The one line that ends the run: what is missing, and how to opt out instead."""
    return (
        " | ".join(problems.values())
        + f" -- fix that, or leave those tests out explicitly with {SKIP_VAR}={','.join(problems)}"
    )
