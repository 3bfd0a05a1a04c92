"""The connector test kit (coachbridge.testing) run against the CSV connector."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from coachbridge.connectors import ConnectorContext
from coachbridge.testing import PeopleContract
from coachbridge_csv.config import CsvConfig
from coachbridge_csv.connector import CsvConnector

from tests.csv.csv_helpers import company, person, write_csv


class CsvExports:
    """A fake HRIS that exports files: the people file is rewritten after every change."""

    remote = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows = {row["id"]: row for row in company(6)}
        self._next = 100
        self._write()
        write_csv(
            folder / "reviews.csv",
            [{"employee_id": "2", "cycle": "2025", "rating": "4", "rating_scale_max": "5"}],
            ("employee_id", "cycle", "rating", "rating_scale_max"),
        )
        write_csv(
            folder / "goals.csv",
            [{"id": "g1", "employee_id": "3", "title": "Lead a project"}],
            ("id", "employee_id", "title"),
        )
        self.trainings = [
            {"employee_id": "2", "training": "First aid", "completed_at": "2025-05-01"}
        ]
        self._write_trainings()

    def _write_trainings(self) -> None:
        header = ("employee_id", "training", "completed_at", "expires_at")
        write_csv(self.folder / "trainings.csv", self.trainings, header)

    def add_training(self, external_id: str, training: str, completed_at: date) -> None:
        row = {"employee_id": external_id, "training": training}
        self.trainings.append({**row, "completed_at": completed_at.isoformat()})
        self._write_trainings()

    def _write(self) -> None:
        write_csv(self.folder / "people.csv", list(self.rows.values()))

    def people_ids(self) -> set[str]:
        return set(self.rows)

    def add_person(
        self,
        first_name: str,
        last_name: str,
        *,
        email: str | None = None,
        manager_id: str | None = None,
    ) -> str:
        self._next += 1
        pid = str(self._next)
        self.rows[pid] = person(
            pid, manager_id or "", first_name=first_name, last_name=last_name, email=email or ""
        )
        self._write()
        return pid

    def remove_person(self, external_id: str) -> None:
        del self.rows[external_id]
        self._write()

    def fail_next(self, status: int) -> None:
        (self.folder / "people.csv").unlink()  # the export did not arrive


class TestCsvContract(PeopleContract):
    streams = ("people", "reviews", "goals", "trainings")

    @pytest.fixture
    def vendor(self, tmp_path: Path) -> CsvExports:
        return CsvExports(tmp_path)

    @pytest.fixture
    def settings(self, vendor: CsvExports) -> dict[str, Any]:
        return {
            "plugin": "csv",
            "people": "people.csv",
            "reviews": "reviews.csv",
            "goals": "goals.csv",
            "trainings": "trainings.csv",
        }

    @pytest.fixture
    def make_connector(self, vendor: CsvExports) -> Callable[[dict[str, Any]], CsvConnector]:
        def make(settings: dict[str, Any]) -> CsvConnector:
            context = ConnectorContext(name=self.name, base_dir=vendor.folder)
            return CsvConnector(CsvConfig.model_validate(settings), context)

        return make
