"""Bad circle configuration: one line naming the key, exit 2, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from coachbridge.domain.program import Program

BASE = """
[[programs]]
id = "p"
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('kind = "mentoring"\ncircle_size = [3, 6]', 'circle_size: applies only to kind = "group"'),
        ('kind = "group"\ncircle_size = [5, 3]', "circle_size: [5, 3]: the minimum is above"),
        ('kind = "group"\ncircle_size = [1, 4]', "circle_size: [1, 4]: a circle needs at least 2"),
        ('kind = "group"\ncapacity = 4', "capacity: does not apply to a group program"),
    ],
)
def test_bad_circle_config_exits_2_naming_the_key(
    tmp_path: Path, run_cli, extra: str, says: str
) -> None:
    (tmp_path / "coachbridge.toml").write_text(BASE.format(extra=extra), encoding="utf-8")
    db = tmp_path / "store.db"
    result = run_cli("--db", str(db), "enroll", "p")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if "programs[0]" in line]
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not db.exists()  # nothing stored: the config is refused before the store opens


def test_group_defaults() -> None:
    program = Program.model_validate({"id": "g", "kind": "group"})
    assert program.circle_size == (3, 6) and program.capacity == 6
    sized = Program.model_validate({"id": "g", "kind": "group", "circle_size": [2, 4]})
    assert sized.capacity == 4
    # A dump validates again unchanged (rules cap a program's sessions this way).
    assert Program.model_validate(sized.model_dump()) == sized
    assert Program.model_validate({"id": "m", "kind": "mentoring"}).circle_size is None
