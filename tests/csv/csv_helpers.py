"""Writing the files and configs the CSV tests sync (kept apart so each test shows its data)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HEADER = (
    "id",
    "first_name",
    "last_name",
    "email",
    "job_title",
    "department",
    "location",
    "timezone",
    "manager_id",
    "hire_date",
    "status",
    "level",
    "skills",
)


def person(pid: str, manager: str = "", **over: str) -> dict[str, str]:
    """A valid row: employee ``pid`` reporting to ``manager``."""
    row = {
        "id": pid,
        "first_name": f"First{pid}",
        "last_name": f"Last{pid}",
        "email": f"p{pid}@example.com",
        "job_title": "Engineer",
        "department": "Engineering",
        "location": "Berlin",
        "timezone": "Europe/Berlin",
        "manager_id": manager,
        "hire_date": "2020-01-15",
        "status": "Active",
        "level": "4",
        "skills": "python;sql",
    }
    row.update(over)
    return row


def company(size: int = 12) -> list[dict[str, str]]:
    """Employee 1 at the top, 2 and 3 report to 1, the rest to 2 or 3."""
    rows = [person("1", level="9"), person("2", "1", level="7"), person("3", "1", level="7")]
    rows += [person(str(i), "2" if i % 2 == 0 else "3") for i in range(4, size + 1)]
    return rows


def write_csv(
    path: Path,
    rows: Sequence[dict[str, Any]],
    header: Sequence[str] = HEADER,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(h, "") for h in header])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_config(folder: Path, body: str = "", name: str = "hr", **settings: Any) -> Path:
    """A coachbridge.toml with one csv connector ``name``; ``settings`` become its keys."""
    settings.setdefault("people", "people.csv")
    lines = [f"[connectors.{name}]", 'plugin = "csv"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = folder / "coachbridge.toml"
    path.write_text("\n".join(lines) + "\n" + body, encoding="utf-8")
    return path
