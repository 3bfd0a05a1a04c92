"""The suite's own guard: what COACHBRIDGE_TEST_SKIP accepts, and that a missing part is named."""

from __future__ import annotations

import pytest

from tests.prerequisites import (
    SKIP_VAR,
    browser_problem,
    failure_line,
    opted_out,
    postgresql_problem,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, set()),
        ("", set()),
        ("postgresql", {"postgresql"}),
        ("browser", {"browser"}),
        ("postgresql,browser", {"postgresql", "browser"}),
        (" Browser , postgresql ,", {"postgresql", "browser"}),
    ],
)
def test_opt_out_names_the_parts(value: str | None, expected: set[str]) -> None:
    assert opted_out(value) == expected


@pytest.mark.parametrize("value", ["postgres", "pg", "chromium", "postgresql,all"])
def test_an_unknown_part_is_an_error_not_ignored(value: str) -> None:
    with pytest.raises(ValueError, match=SKIP_VAR) as err:
        opted_out(value)
    assert "known: postgresql, browser" in str(err.value)


def test_an_unreachable_server_is_named_with_its_url_and_variable() -> None:
    # Port 1 on loopback: nothing listens there, and nothing beyond the machine is touched.
    problem = postgresql_problem("postgresql://postgres:pw@127.0.0.1:1/test")
    assert problem is not None
    assert problem.startswith("PostgreSQL at postgresql://postgres:***@127.0.0.1:1/test")
    assert "COACHBRIDGE_TEST_PG_URL" in problem and "pw" not in problem
    assert "\n" not in problem


def test_a_missing_chromium_is_named(tmp_path) -> None:
    problem = browser_problem(str(tmp_path / "no-chromium"))
    assert problem is not None and "no-chromium" in problem
    assert "ensure_chromium.sh" in problem


def test_a_chromium_that_cannot_start_is_named(tmp_path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    problem = browser_problem(str(fake))
    assert problem is not None and problem.startswith(f"chromium at {fake} cannot start")
    assert "\n" not in problem


def test_the_failure_line_says_how_to_opt_out() -> None:
    line = failure_line(
        {"postgresql": "PostgreSQL at x is not reachable", "browser": "no chromium"}
    )
    assert line.endswith(f"{SKIP_VAR}=postgresql,browser")
    assert "PostgreSQL at x is not reachable" in line and "no chromium" in line
