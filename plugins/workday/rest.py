"""People from the ``staffing`` REST service, for tenants without a people report.

``GET /workers`` is paged at Workday's maximum of 100 with ``offset`` until ``total``: once
without ``includeTerminatedWorkers`` (who is active) and once with it (everyone, so leavers are
told apart from people who vanished). Names come from the worker's descriptor; a worker's manager
is a manager of their supervisory organization, or, for that organization's own manager, a
manager of its superior organization (``/supervisoryOrganizations/{ID}/orgChart``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from coachbridge.domain import PersonRecord, PersonStatus
from coachbridge.errors import ConnectorError
from coachbridge_workday.client import WorkdayClient

PAGE = 100  # "The default is 20. The maximum is 100." (staffing v6 OpenAPI, limit)
_SUFFIX = re.compile(r"\s*\([^)]*\)\s*$")


def pages(client: WorkdayClient, path: str, what: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paged collection: ``limit=100``, ``offset`` until ``total``."""
    offset = 0
    while True:
        body = client.api(
            "GET", "staffing", path, what=what, params={**params, "limit": PAGE, "offset": offset}
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise ConnectorError(
                f"connector {client.connector}: {what}: no data list in the answer"
            )
        yield from (item for item in data if isinstance(item, dict))
        offset += len(data)
        total = body.get("total")
        if (
            not data
            or (isinstance(total, int) and offset >= total)
            or (total is None and len(data) < PAGE)
        ):
            return


def split_descriptor(descriptor: str) -> tuple[str, str]:
    """``"Logan McNeil"`` -> ("Logan", "McNeil"); a trailing ``(...)`` note is dropped."""
    name = _SUFFIX.sub("", descriptor or "").strip()
    first, _, last = name.partition(" ")
    return first, last.strip()


def _ref_id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) and isinstance(value.get("id"), str) else None


class RestPeople:
    """Reads everyone through staffing and derives reporting lines from supervisory orgs."""

    def __init__(self, client: WorkdayClient) -> None:
        self.client = client
        self.warnings: list[str] = []
        self._orgs: dict[str, list[str]] = {}
        self._superior: dict[str, str | None] = {}
        self._charted: set[str] = set()

    def read(self) -> list[PersonRecord]:
        active = {w["id"] for w in pages(self.client, "workers", "staffing workers") if _ref_id(w)}
        workers = list(
            pages(self.client, "workers", "staffing workers", includeTerminatedWorkers="true")
        )
        for org in pages(self.client, "supervisoryOrganizations", "supervisory organizations"):
            if _ref_id(org):
                self._orgs[org["id"]] = [m["id"] for m in org.get("managers") or [] if _ref_id(m)]
        employee_of = {w["id"]: str(w.get("workerId") or "") for w in workers if _ref_id(w)}
        records: list[PersonRecord] = []
        for entry, worker in enumerate(workers, 1):
            wid = _ref_id(worker)
            employee_id = str(worker.get("workerId") or "").strip()
            if not wid or not employee_id:
                self.warnings.append(f"staffing worker #{entry} has no id/workerId; skipped")
                continue
            job = worker.get("primaryJob") if isinstance(worker.get("primaryJob"), dict) else {}
            org = job.get("supervisoryOrganization") if isinstance(job, dict) else None
            org_id = _ref_id(org)
            manager_wid = self._manager_of(wid, org_id)
            manager = employee_of.get(manager_wid or "") or None
            first, last = split_descriptor(str(worker.get("descriptor") or ""))
            person = worker.get("person") if isinstance(worker.get("person"), dict) else {}
            location = job.get("location") if isinstance(job.get("location"), dict) else {}
            records.append(
                PersonRecord(
                    external_id=employee_id,
                    first_name=first,
                    last_name=last,
                    email=(person or {}).get("email") or None,
                    job_title=job.get("businessTitle") or None,
                    department=(org or {}).get("descriptor") or None,
                    location=(location or {}).get("descriptor") or None,
                    manager_external_id=manager,
                    status=PersonStatus.ACTIVE if wid in active else PersonStatus.INACTIVE,
                    hris_status="Active" if wid in active else "Terminated",
                    extra={"wid": wid},
                    source_line=entry,
                )
            )
        return records

    def _manager_of(self, wid: str, org_id: str | None) -> str | None:
        """A manager of the worker's org who is not the worker; else climb to the superior org."""
        seen: set[str] = set()
        while org_id and org_id not in seen:
            seen.add(org_id)
            for manager in self._orgs.get(org_id, []):
                if manager != wid:
                    return manager
            org_id = self._superior_of(org_id)
        return None

    def _superior_of(self, org_id: str) -> str | None:
        if org_id not in self._superior:
            self._chart(org_id)
            parent = self._superior.get(org_id)
            # The parent's chart names this org's siblings, which usually need it too: one call
            # for all of them instead of one each.
            if parent and parent not in self._charted:
                self._chart(parent)
        return self._superior.get(org_id)

    def _chart(self, org_id: str) -> None:
        """Learn ``org_id``'s superior and its subordinates' superior from its org chart."""
        self._charted.add(org_id)
        body = self.client.api(
            "GET",
            "staffing",
            f"supervisoryOrganizations/{org_id}/orgChart",
            what="supervisory organization chart",
            params={"limit": PAGE},
        )
        charts = body.get("data") if isinstance(body, dict) else None
        superior: str | None = None
        for chart in charts if isinstance(charts, list) else []:
            if not isinstance(chart, dict) or _ref_id(chart) not in (org_id, None):
                continue
            sup = chart.get("superior")
            if _ref_id(sup):
                superior = sup["id"]
                if isinstance(sup.get("managers"), list) and superior not in self._orgs:
                    self._orgs[superior] = [m["id"] for m in sup["managers"] if _ref_id(m)]
            for sub in chart.get("subordinates") or []:
                if _ref_id(sub):
                    self._superior.setdefault(sub["id"], org_id)
        self._superior[org_id] = superior
