"""Writing coachbridge's goals and held sessions into BambooHR.

Goals become BambooHR goals on the learner (``/api/v1/performance/employees/{id}/goals``),
shared with the learner and the guide; an edit updates the same goal through the v1.1 update
(which replaces every field, so the whole goal is always sent); a cancelled goal is closed.
The stored external id is ``"{employeeId}:{goalId}"`` because every goal path needs both.

Held sessions become training records (``/api/v1/training/record/employee/{id}``) of one
training type, found by name or id and created when missing. Only the date, the hours, the
guide as instructor and a neutral one-line note are written; never agendas or private notes.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from coachbridge.connectors import PushItem, PushResult
from coachbridge.errors import ConnectorError
from coachbridge_bamboohr.client import BambooHRClient
from coachbridge_bamboohr.config import BambooHRConfig

log = logging.getLogger(__name__)


def _int_id(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


class Writer:
    """Pushes items through one client; remembers the training type id between items."""

    def __init__(self, client: BambooHRClient, config: BambooHRConfig) -> None:
        self.client = client
        self.config = config
        self._training_type: int | None = config.training_type_id

    # -- goals ----------------------------------------------------------------------------
    def goal(self, item: PushItem, dry_run: bool) -> PushResult:
        def result(action: Any, external_id: str | None = None, message: str = "") -> PushResult:
            return PushResult("goal", item.local_id, action, external_id, message)

        owner = _int_id(item.people.get("owner") or item.people.get("learner"))
        if owner is None:
            return result("skipped", None, "the goal's owner has no BambooHR employee id")
        f = item.fields
        if not f.get("due_date"):
            return result("skipped", None, "BambooHR goals need a due date; set one")
        shared = [owner]
        guide = _int_id(item.people.get("guide"))
        if self.config.share_goals_with_guide and guide is not None and guide != owner:
            shared.append(guide)
        percent = max(0, min(100, int(f.get("percent") or 0)))
        body: dict[str, Any] = {
            "title": str(f["title"])[:255],
            "description": f.get("description") or "",
            "dueDate": f["due_date"],
            "percentComplete": percent,
            "sharedWithEmployeeIds": shared,
        }
        if percent == 100:
            # Required at 100 and an error below it, so the key is only sent when complete.
            body["completionDate"] = f.get("completion_date") or date.today().isoformat()
        cancelled = f.get("status") == "cancelled"
        ref = self._split(item.external_id)
        if ref is not None and ref[0] != str(owner):
            ref = None  # the goal moved to another person: BambooHR cannot move it, start anew
        if ref is None:
            if cancelled:
                return result("skipped", None, "cancelled before it was ever pushed")
            if dry_run:
                return result("created", None, "would create")
            answer = self.client.request(
                "POST", f"v1/performance/employees/{owner}/goals", json_body=body
            )
            goal_id = self._goal_id(answer)
            return result("created", f"{owner}:{goal_id}")
        emp, goal_id = ref
        external = f"{emp}:{goal_id}"
        if dry_run:
            return result("closed" if cancelled else "updated", external, "would write")
        answer = self.client.request(
            "PUT",
            f"v1_1/performance/employees/{emp}/goals/{goal_id}",
            json_body=body,
            allow=(404,),
        )
        if isinstance(answer, dict) and answer.get("_status") == 404:
            if cancelled:
                return result("closed", external, "already gone from BambooHR")
            answer = self.client.request(
                "POST", f"v1/performance/employees/{owner}/goals", json_body=body
            )
            new_id = self._goal_id(answer)
            return result(
                "created", f"{owner}:{new_id}", "the earlier goal was deleted in BambooHR"
            )
        if cancelled:
            self.client.request(
                "POST",
                f"v1/performance/employees/{emp}/goals/{goal_id}/close",
                json_body={"comment": "Cancelled in coachbridge"},
            )
            return result("closed", external)
        return result("updated", external)

    @staticmethod
    def _split(external_id: str | None) -> tuple[str, str] | None:
        if not external_id or ":" not in external_id:
            return None
        emp, goal_id = external_id.split(":", 1)
        return emp, goal_id

    @staticmethod
    def _goal_id(answer: Any) -> str:
        goal = answer.get("goal") if isinstance(answer, dict) else None
        goal_id = goal.get("id") if isinstance(goal, dict) else None
        if goal_id in (None, ""):
            raise ConnectorError("BambooHR created a goal but its answer carries no goal id")
        return str(goal_id)  # goal ids are strings in BambooHR's answers

    # -- sessions as training records ------------------------------------------------------
    def session(self, item: PushItem, dry_run: bool) -> PushResult:
        def result(action: Any, external_id: str | None = None, message: str = "") -> PushResult:
            return PushResult("session", item.local_id, action, external_id, message)

        learner = _int_id(item.people.get("learner"))
        if learner is None:
            return result("skipped", None, "the learner has no BambooHR employee id")
        f = item.fields
        body: dict[str, Any] = {
            "completed": f["date"],
            "hours": round(int(f.get("minutes") or 0) / 60, 2),
            "notes": str(f.get("description") or "")[:500],
        }
        if item.people.get("guide_name"):
            body["instructor"] = item.people["guide_name"]
        record = _int_id(item.external_id)
        if dry_run:
            if record is None:
                note = (
                    "" if self._find_training_type(create=False) else "would create training type"
                )
                return result("created", None, note)
            return result("updated", item.external_id, "would write")
        if record is not None:
            answer = self.client.request(
                "PUT", f"v1/training/record/{record}", json_body=body, allow=(404,)
            )
            if not (isinstance(answer, dict) and answer.get("_status") == 404):
                return result("updated", str(record))
        body["type"] = self._find_training_type(create=True)
        answer = self.client.request(
            "POST", f"v1/training/record/employee/{learner}", json_body=body
        )
        new_id = answer.get("id") if isinstance(answer, dict) else None
        if new_id in (None, ""):
            raise ConnectorError("BambooHR created a training record but returned no id")
        message = "the earlier record was deleted in BambooHR" if record is not None else ""
        return result("created", str(new_id), message)

    def _training_denied(self, method: str) -> ConnectorError:
        return ConnectorError(
            f"BambooHR {method} v1/training/type: refused (403): the API key's user needs access "
            'to training settings (BambooHR: "The owner of the API key must have access to '
            'training settings") to find or create training type '
            f"{self.config.training_type!r}; held sessions were not written (goals were). Grant "
            "it in the user's access level, then push again"
        )

    def _find_training_type(self, *, create: bool) -> int | None:
        if self._training_type is not None:
            return self._training_type
        types = self.client.request("GET", "v1/training/type", allow=(403,))
        if isinstance(types, dict) and types.get("_status") == 403:
            raise self._training_denied("GET")
        # An object keyed by type id; tolerate the empty-list form other training lists use.
        values = types.values() if isinstance(types, dict) else (types or [])
        wanted = self.config.training_type.strip().casefold()
        for entry in values:
            if isinstance(entry, dict) and str(entry.get("name", "")).strip().casefold() == wanted:
                self._training_type = int(entry["id"])
                return self._training_type
        if not create:
            return None
        body: dict[str, Any] = {
            "name": self.config.training_type,
            "description": "Coaching and mentoring sessions recorded by coachbridge",
            "renewable": False,
            "required": False,
            "allowEmployeesToMarkComplete": False,
        }
        if self.config.training_category:
            body["category"] = {"name": self.config.training_category}
        created = self.client.request("POST", "v1/training/type", json_body=body, allow=(403,))
        if isinstance(created, dict) and created.get("_status") == 403:
            raise self._training_denied("POST")
        type_id = created.get("id") if isinstance(created, dict) else None
        if type_id in (None, ""):
            raise ConnectorError("BambooHR created a training type but returned no id")
        log.info("created BambooHR training type %r (id %s)", self.config.training_type, type_id)
        self._training_type = int(type_id)
        return self._training_type
