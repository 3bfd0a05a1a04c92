"""What ``coachbridge connect`` proposes for a Workday people report: column aliases seen in
tenants' reports (each report's author names its own columns) and the choice of prompt."""

from __future__ import annotations

from collections.abc import Mapping

from coachbridge.connectors import PERSON_COLUMNS
from coachbridge_workday.config import WorkdayColumns

#: The people fields ``connect`` maps, in the order it shows them.
PEOPLE_FIELDS: tuple[str, ...] = ("id", "wid", "active", *PERSON_COLUMNS[1:])

#: Field -> names a report commonly gives it, beyond the default column (tried first).
_EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("Employee_Number", "Worker_ID", "Employee", "Associate_ID", "Person_ID"),
    "wid": ("WID", "Worker_Workday_ID", "Workday_ID"),
    "first_name": ("Legal_First_Name", "Given_Name"),
    "last_name": ("Legal_Last_Name", "Family_Name", "Surname"),
    "email": ("Work_Email", "Primary_Work_Email", "Email", "Email_Address"),
    "job_title": ("Job_Title", "Position_Title", "Job_Profile"),
    "department": ("Department", "Cost_Center", "Organization"),
    "division": ("Company", "Business_Unit"),
    "location": ("Work_Location", "Primary_Work_Location", "Office"),
    "timezone": ("Time_Zone_ID", "TimeZone", "Work_Time_Zone"),
    "manager_id": ("Manager_Employee_ID", "Supervisor_ID", "Manager", "Line_Manager_ID"),
    "hire_date": ("Original_Hire_Date", "Start_Date", "Continuous_Service_Date"),
    "termination_date": ("Termination_Date", "End_Employment_Date"),
    "active": ("Is_Active", "Active_Status"),
    "status": ("Employment_Status", "Status"),
    "level": ("Job_Level", "Grade", "Pay_Grade"),
    "preferred_name": ("Preferred_First_Name", "Nickname"),
}


def field_aliases() -> dict[str, tuple[str, ...]]:
    """Field -> its aliases: the connector's default column first, then common names."""
    defaults = WorkdayColumns()
    return {f: (getattr(defaults, f), *_EXTRA_ALIASES.get(f, ())) for f in PEOPLE_FIELDS}


def choose_prompt(prompt_types: Mapping[str, str]) -> str | None:
    """The report's "updated since" prompt: a date or date-time parameter, one whose name says
    so first (``Updated_From``, ``Changed_Since``)."""
    dated = [name for name, kind in prompt_types.items() if kind in ("date", "dateTime")]
    hints = ("updat", "chang", "since", "from", "modif")
    for name in sorted(dated):
        if any(h in name.casefold() for h in hints):
            return name
    return sorted(dated)[0] if len(dated) == 1 else None
