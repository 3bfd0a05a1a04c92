"""Write-back: mentorships for mentoring pairings, check-ins for held sessions.

- A pairing of a mentoring-kind program becomes a Workday mentorship
  (``talentManagement`` ``POST /createMentorshipForWorker`` with mentee, mentor, mentor type,
  start and end dates and purpose); an edited one is sent to ``/mentorships/{ID}/edit``; when
  the pairing ends it is closed through ``/mentorships/{ID}/close`` with ``close_reason``.
- A held session becomes a check-in on the learner (``staffing`` ``POST /workers/{ID}/checkIns``
  with the date and the core's neutral one-line description; an edit is a ``PATCH``).
- Workers are referenced by their WID whenever it is known (the id is a WID) or can be looked up
  (``staffing`` ``GET /workers?search=<id>``, once per worker and run). In a request body,
  where Workday's reference model documents ``type=value`` ids, a worker Workday does not find
  is sent as ``{"id": "Employee_ID=..."}`` (``worker_id_type`` names another id type); a URL
  path's ``{ID}`` is documented as the WID only, so a check-in for a worker without one is
  skipped with a message instead.

One item's refusal by Workday (a 400 validation error, a 404 worker) is that item's result, so
the rest still go through; a failure of Workday itself raises and stops the push.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from coachbridge.connectors import PushItem, PushResult
from coachbridge.errors import ConnectorError
from coachbridge_workday.client import WorkdayClient, WorkdayHTTPError
from coachbridge_workday.config import WorkdayConfig

MENTORING_KINDS = ("mentoring", "reverse")
_WID = re.compile(r"^[0-9a-f]{32}$")
_OPEN = ("active", "paused")
_CLOSED = ("completed", "ended")
_DESCRIPTION_MAX = 250


def worker_ref(external_id: str, id_type: str) -> dict[str, str]:
    """``{"id": WID}`` for a WID, else ``{"id": "<id_type>=<id>"}``."""
    if _WID.match(external_id) or "=" in external_id:
        return {"id": external_id}
    return {"id": f"{id_type}={external_id}"}


def _answer_id(body: Any) -> str | None:
    """The new record's id: top-level ``id``, or under ``mentorship``/``checkIn``."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("id"), str) and body["id"]:
        return str(body["id"])
    for key in ("mentorship", "checkIn", "data"):
        inner = body.get(key)
        if isinstance(inner, list) and inner:
            inner = inner[0]
        if isinstance(inner, dict) and isinstance(inner.get("id"), str):
            return str(inner["id"])
    return None


class WriteBack:
    """Turns ``PushItem``s into Workday writes; ``dry_run`` sends nothing at all."""

    def __init__(
        self,
        client: WorkdayClient,
        config: WorkdayConfig,
        connector: str,
        wids: dict[str, str | None] | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.connector = connector
        self.wids = wids if wids is not None else {}

    def worker_path_id(self, external_id: str) -> str | None:
        """The worker's WID for a URL path (Workday documents ``{ID}`` as the WID), or None.

        An employee id is looked up once through ``GET /workers?search=`` (which "searches
        workers by name or worker ID").
        """
        if _WID.match(external_id):
            return external_id
        if "=" in external_id:
            return None
        if external_id not in self.wids:
            body = self.client.api(
                "GET",
                "staffing",
                "workers",
                what=f"looking up worker {external_id}",
                params={"search": external_id, "limit": 100, "includeTerminatedWorkers": "true"},
            )
            found = None
            for worker in body.get("data") or [] if isinstance(body, dict) else []:
                if isinstance(worker, dict) and str(worker.get("workerId")) == external_id:
                    found = worker.get("id") if isinstance(worker.get("id"), str) else None
                    break
            self.wids[external_id] = found
        return self.wids[external_id]

    def push(self, items: Sequence[PushItem], *, dry_run: bool) -> list[PushResult]:
        results = []
        for item in items:
            if item.external_id and item.previous_fingerprint == item.fingerprint:
                results.append(PushResult(item.kind, item.local_id, "unchanged", item.external_id))
                continue
            try:
                if item.kind == "pairing":
                    results.append(self._pairing(item, dry_run))
                elif item.kind == "session":
                    results.append(self._session(item, dry_run))
                else:
                    results.append(
                        self._skip(
                            item,
                            "Workday's REST API has no goal write (performanceEnablement goals "
                            "are read-only); goals stay in coachbridge",
                        )
                    )
            except WorkdayHTTPError as exc:
                if exc.status in (400, 404, 409, 422):
                    results.append(self._skip(item, f"Workday refused it: {exc}"))
                    continue
                raise
        return results

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _skip(item: PushItem, message: str) -> PushResult:
        return PushResult(item.kind, item.local_id, "skipped", item.external_id, message)

    def _key(self, name: str) -> str:
        return f"connectors.{self.connector}.{name}"

    def _ref(self, item: PushItem, role: str, dry_run: bool) -> dict[str, str] | None:
        """A body reference: the WID when known or found, else ``<worker_id_type>=<id>``."""
        external = item.people.get(role)
        if not external:
            return None
        wid = None if dry_run else self.worker_path_id(external)
        return {"id": wid} if wid else worker_ref(external, self.config.worker_id_type)

    def _no_wid(self, item: PushItem, external_id: str) -> PushResult:
        return self._skip(
            item,
            f"Workday found no worker {external_id} (GET /workers?search=); a check-in is "
            "written under the worker's WID: check the id, or grant the integration user "
            "'Worker Data: Public Worker Reports'",
        )

    def _no_person(self, item: PushItem, role: str) -> PushResult:
        who = item.people.get(f"{role}_name") or item.people.get(f"{role}_email") or "?"
        return self._skip(
            item, f"the {role} ({who}) has no id in connector {self.connector}; sync people first"
        )

    # -- pairings -> mentorships -----------------------------------------------------------
    def _pairing(self, item: PushItem, dry_run: bool) -> PushResult:
        f = item.fields
        if f.get("kind") not in MENTORING_KINDS:
            return self._skip(
                item, f"a {f.get('kind')} program; only mentoring pairings become mentorships"
            )
        status = f.get("status")
        if status in _CLOSED:
            return self._close(item, dry_run)
        if status not in _OPEN:
            return self._skip(item, f"pairing is {status}; only active pairings are written")
        mentee, mentor = self._ref(item, "learner", dry_run), self._ref(item, "guide", dry_run)
        if mentee is None:
            return self._no_person(item, "learner")
        if mentor is None:
            return self._no_person(item, "guide")
        if not self.config.mentor_type:
            return self._skip(
                item,
                f"set {self._key('mentor_type')} (the Workday id of a Mentor Type) to write mentorships",
            )
        if not f.get("start"):
            return self._skip(item, "pairing has no start date")
        # Workday needs an end date; an open pairing gets start + mentorship_length.
        end = (
            f.get("end")
            or (
                date.fromisoformat(str(f["start"])[:10]) + self.config.mentorship_length
            ).isoformat()
        )
        body: dict[str, Any] = {
            "mentee": mentee,
            "mentor": mentor,
            "mentorType": {"id": self.config.mentor_type},
            "startDate": f.get("start"),
            "endDate": end,
            "purpose": (f.get("purpose") or f.get("program") or "Mentoring")[:_DESCRIPTION_MAX],
        }
        if item.external_id:
            if dry_run:
                return PushResult("pairing", item.local_id, "updated", item.external_id, "dry run")
            edit = {k: body[k] for k in ("startDate", "endDate", "purpose")}
            self.client.api(
                "POST",
                "talentManagement",
                f"mentorships/{item.external_id}/edit",
                what=f"editing mentorship {item.external_id}",
                json_body=edit,
            )
            return PushResult("pairing", item.local_id, "updated", item.external_id)
        if dry_run:
            return PushResult("pairing", item.local_id, "created", None, "dry run")
        answer = self.client.api(
            "POST",
            "talentManagement",
            "createMentorshipForWorker",
            what=f"creating a mentorship for pairing {item.local_id}",
            json_body=body,
        )
        mentorship = _answer_id(answer) or self._find_mentorship(mentee, mentor)
        if not mentorship:
            raise ConnectorError(
                f"connector {self.connector}: Workday created a mentorship for pairing "
                f"{item.local_id} but returned no id; check Workday before pushing again"
            )
        return PushResult("pairing", item.local_id, "created", mentorship)

    def _find_mentorship(self, mentee: dict[str, str], mentor: dict[str, str]) -> str | None:
        answer = self.client.api(
            "GET",
            "talentManagement",
            "mentorships",
            what="looking up the new mentorship",
            params={"mentee": mentee["id"], "mentor": mentor["id"], "inProgress": "true"},
        )
        return _answer_id(answer)

    def _close(self, item: PushItem, dry_run: bool) -> PushResult:
        if not item.external_id:
            return self._skip(item, "pairing ended before it was ever written; nothing to close")
        if not self.config.close_reason:
            return self._skip(
                item,
                f"set {self._key('close_reason')} (the Workday id of a Close Mentorship Reason) "
                "to close mentorships",
            )
        f = item.fields
        if dry_run:
            return PushResult("pairing", item.local_id, "closed", item.external_id, "dry run")
        body: dict[str, Any] = {
            "closeMentorshipReason": {"id": self.config.close_reason},
            "startDate": f.get("start"),
            "endDate": f.get("end") or f.get("start"),
        }
        if f.get("end_reason"):
            body["comment"] = str(f["end_reason"])[:_DESCRIPTION_MAX]
        self.client.api(
            "POST",
            "talentManagement",
            f"mentorships/{item.external_id}/close",
            what=f"closing mentorship {item.external_id}",
            json_body=body,
        )
        return PushResult("pairing", item.local_id, "closed", item.external_id)

    # -- sessions -> check-ins -------------------------------------------------------------
    def _session(self, item: PushItem, dry_run: bool) -> PushResult:
        f = item.fields
        if f.get("status") not in (None, "held"):
            return self._skip(item, f"session is {f.get('status')}; only held sessions are written")
        learner = item.people.get("learner")
        if not learner:
            return self._no_person(item, "learner")
        minutes = f.get("minutes")
        description = f.get("description") or f"{f.get('program') or 'Coaching'} session"
        if minutes:
            description = f"{description} ({minutes} min)"
        # Only the date and the core's neutral description: never agenda or private notes.
        body = {"date": f.get("date"), "description": description[:_DESCRIPTION_MAX]}
        if item.external_id:
            if dry_run:
                return PushResult("session", item.local_id, "updated", item.external_id, "dry run")
            worker = self.worker_path_id(learner)
            if worker is None:
                return self._no_wid(item, learner)
            self.client.api(
                "PATCH",
                "staffing",
                f"workers/{worker}/checkIns/{item.external_id}",
                what=f"updating check-in {item.external_id}",
                json_body=body,
            )
            return PushResult("session", item.local_id, "updated", item.external_id)
        if dry_run:
            return PushResult("session", item.local_id, "created", None, "dry run")
        worker = self.worker_path_id(learner)
        if worker is None:
            return self._no_wid(item, learner)
        answer = self.client.api(
            "POST",
            "staffing",
            f"workers/{worker}/checkIns",
            what=f"creating a check-in for session {item.local_id}",
            json_body=body,
        )
        check_in = _answer_id(answer)
        if not check_in:
            raise ConnectorError(
                f"connector {self.connector}: Workday created a check-in for session "
                f"{item.local_id} but returned no id; check Workday before pushing again"
            )
        return PushResult("session", item.local_id, "created", check_in)
