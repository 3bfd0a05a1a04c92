"""``coachbridge report --culture``: guides across programs, aggregates only, suppressed below
``[reports] min_group_size``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coachbridge.store import Database
from coachbridge.store.tables import ExternalIdRow, PairingRow, SessionRow
from sqlalchemy import select

from tests.csv.csv_helpers import person, write_config, write_csv

PROGRAMS = """
[[programs]]
id = "team-coaching"
kind = "manager"
max_reports = 3
[programs.learners]
departments = ["Engineering"]

[[programs]]
id = "mentoring"
kind = "mentoring"
capacity = 2

[reports]
min_group_size = {k}
"""


def company() -> list[dict[str, str]]:
    """Managers 2 and 3 have five reports each, 4 and 5 two each (all Engineering)."""
    rows = [person("1", level="9", department="Executive")]
    rows += [person(m, "1", level="7", department="Management") for m in ("2", "3", "4", "5")]
    n = 6
    for manager, reports in (("2", 5), ("3", 5), ("4", 2), ("5", 2)):
        for _ in range(reports):
            rows.append(person(str(n), manager))
            n += 1
    return rows


def setup(tmp_path: Path, db_url: str, run_cli, k: int = 2):
    config = write_config(tmp_path, PROGRAMS.format(k=k))
    write_csv(tmp_path / "people.csv", company())

    def cb(*args: str, code: int = 0):
        result = run_cli("--config", str(config), "--db", db_url, *args)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    cb("db", "upgrade")
    cb("sync", "hr")
    cb("enroll", "team-coaching")
    cb("match", "team-coaching", "--apply")
    cb("sessions", "schedule", "team-coaching")
    db = Database(db_url)
    with db.transaction() as s:
        ids = {
            r.external_id: r.person_id
            for r in s.scalars(select(ExternalIdRow).where(ExternalIdRow.connector == "hr"))
        }
        ago = datetime.now(UTC) - timedelta(days=10)
        missed: set[int] = set()
        for pairing in s.scalars(select(PairingRow).order_by(PairingRow.id)):
            first = s.scalars(
                select(SessionRow)
                .where(SessionRow.pairing_id == pairing.id)
                .order_by(SessionRow.seq)
                .limit(1)
            ).one()
            first.start = ago
            # Managers 3 and 5 miss one check-in each; every other due one is held.
            short = pairing.guide_id in (ids["3"], ids["5"])
            if short and pairing.guide_id not in missed:
                first.status = "missed"
                missed.add(pairing.guide_id)
            else:
                first.status = "held"
    db.dispose()
    return cb, config


def test_culture_figures(tmp_path: Path, db_url: str, run_cli) -> None:
    cb, _ = setup(tmp_path, db_url, run_cli)
    data = json.loads(cb("report", "--culture", "--format", "json").stdout)
    assert data["report"] == "culture" and data["window_days"] == 90
    overall = data["overall"]
    assert overall["guides"] == 4
    assert overall["guides_trained"] is None  # no training records in this database
    assert any("training records" in note for note in data["notes"])
    assert overall["guides_active"] == 4  # every manager held a check-in
    assert overall["learners_per_guide"] == 3.5  # 14 pairings, 4 managers
    assert overall["sessions_per_guide_per_month"] == 1.0  # 12 held / 4 guides / 3 months
    assert overall["guides_over_capacity"] == 2  # 2 and 3 above max_reports 3
    # 2 and 4 held every due check-in, 3 and 5 missed one.
    assert overall["managers_held_checkins"] == {"managers": 4, "share": 0.5}
    by_id = {p["program"]: p for p in data["programs"]}
    assert by_id["team-coaching"]["guides"] == 4
    mentoring = by_id["mentoring"]
    assert mentoring["guides"] == 0 and "managers_held_checkins" not in mentoring
    assert mentoring["learners_per_guide"] == {"suppressed": True}  # about nobody

    table = cb("report", "--culture").stdout
    assert "(all)" in table and "team-coaching" in table
    page = cb("report", "--culture", "--format", "html").stdout
    assert page.startswith("<!doctype html>") and "Coaching culture" in page
    assert "<script" not in page
    written = cb(
        "report", "--culture", "--html", str(tmp_path / "culture.html"), "--format", "json"
    )
    assert json.loads(written.stdout)["overall"]["guides"] == 4
    saved = (tmp_path / "culture.html").read_text(encoding="utf-8")
    assert saved.startswith("<!doctype html>") and "Coaching culture" in saved
    # --format html prints the outcome report's page too.
    assert cb("report", "--format", "html").stdout.startswith("<!doctype html>")
    as_csv = cb("report", "--culture", "--format", "csv").stdout.splitlines()
    assert as_csv[0].startswith("program,kind,guides,guides_trained,guides_active")
    assert len(as_csv) == 4  # the header, all programs, each program


def test_culture_figures_are_suppressed_below_min_group_size(
    tmp_path: Path, db_url: str, run_cli
) -> None:
    cb, _ = setup(tmp_path, db_url, run_cli, k=5)
    overall = json.loads(cb("report", "--culture", "--format", "json").stdout)["overall"]
    hidden = {"suppressed": True}
    assert overall["guides"] == hidden  # 4 guides
    assert overall["guides_active"] == hidden
    assert overall["learners_per_guide"] == hidden
    assert overall["sessions_per_guide_per_month"] == hidden
    assert overall["guides_over_capacity"] == hidden
    assert overall["managers_held_checkins"] == {"managers": hidden, "share": hidden}


def test_culture_report_usage_errors(tmp_path: Path, db_url: str, run_cli) -> None:
    cb, config = setup(tmp_path, db_url, run_cli)
    result = cb("report", "--culture", "team-coaching", code=2)
    assert "--culture covers every program" in result.stderr
    assert "Traceback" not in result.stderr
    bad = cb("report", "--culture", "--format", "xml", code=2)
    assert "xml" in bad.stderr
    config.write_text(config.read_text().split("[[programs]]")[0], encoding="utf-8")
    none = cb("report", "--culture", code=2)
    assert "no programs are configured" in none.stderr


def test_trained_guides_counts_unexpired_training_records(db: Database) -> None:
    """Until a connector stores a training record the figure is unknown (None); then a guide
    counts when a training's latest record counts on the day, as the guide filters judge it
    (an expiry day itself no longer counts)."""
    from datetime import date

    from coachbridge.reports.culture import trained_guides
    from coachbridge.store.tables import PersonRow, TrainingRow

    today = date(2026, 12, 1)
    with db.transaction() as s:
        people = [PersonRow(first_name=f"P{i}") for i in range(4)]
        s.add_all(people)
        s.flush()
        ids = [p.id for p in people]
        assert trained_guides(s, set(ids), today) is None

        def record(pid: int, name: str, expires: date | None, key: str) -> TrainingRow:
            return TrainingRow(
                person_id=pid,
                training=name,
                completed_at=date(2025, 1, 1),
                expires_at=expires,
                source="hr",
                record_key=key,
            )

        s.add_all(
            [
                record(ids[0], "Coaching fundamentals", None, "a"),
                record(ids[0], "Mentoring 101", date(2027, 1, 1), "b"),
                record(ids[1], "Mentoring 101", date(2026, 12, 2), "c"),
                record(ids[2], "Mentoring 101", date(2026, 12, 1), "d"),  # expires today: not
            ]
        )
        s.flush()
        assert trained_guides(s, {ids[0], ids[3]}, today) == {ids[0]}
        assert trained_guides(s, set(ids), today) == {ids[0], ids[1]}


def test_a_part_is_hidden_when_it_or_the_rest_is_too_few(
    tmp_path: Path, db_url: str, run_cli
) -> None:
    cb, _ = setup(tmp_path, db_url, run_cli, k=3)
    overall = json.loads(cb("report", "--culture", "--format", "json").stdout)["overall"]
    assert overall["guides"] == 4 and overall["guides_active"] == 4  # none inactive: shown
    assert overall["learners_per_guide"] == 3.5
    # 2 of 4 managers over capacity: 2 is below 3, so hidden.
    assert overall["guides_over_capacity"] == {"suppressed": True}
    # 2 held every check-in, 2 did not: the share would show both.
    assert overall["managers_held_checkins"] == {"managers": 4, "share": {"suppressed": True}}
