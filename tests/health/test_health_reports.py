"""Outcome reports: figures, comparison group, suppression, JSON keys and the HTML page."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from coachbridge.reports import build_reports, render_html
from coachbridge.store import Database

from tests.health.health_world import World, program, write_config

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START, END = date(2025, 1, 1), date(2025, 6, 30)
BEFORE = datetime(2024, 12, 1, tzinfo=UTC)
AFTER = datetime(2025, 12, 1, tzinfo=UTC)
DEPARTMENTS = ("Engineering", "Sales", "Finance")


def _company(db: Database, learners: int = 40) -> dict[str, object]:
    prog = program(start=START, end=END)
    facts: dict[str, object] = {"held": 0, "missed": 0, "planned": 0, "ratings": []}
    with db.transaction() as s:
        w = World(s, prog, now=NOW)
        guides = [w.person("Guide", level=6, department="Engineering") for _ in range(10)]
        for i in range(learners):
            dept = DEPARTMENTS[i % 3] if i < learners - 2 else "Legal"  # Legal: 2 people
            leaves = date(2025, 5, 1) if i % 10 == 0 else None  # 10% leave in the year
            p = w.person("Lea", department=dept, level=3, hire=date(2021, 3, 1), termination=leaves)
            w.review(p, BEFORE, 0.5, "2024")
            w.review(p, AFTER, 0.75 if i % 2 else 1.0, "2025")
            if i % 4 == 0:  # promoted in the year
                w.history(p, "level", "3", date(2021, 3, 1))
                w.history(p, "level", "4", date(2025, 9, 1))
            pairing = w.pair(p, guides[i % 10], made=datetime(2025, 1, 5, tzinfo=UTC))
            for n, status in enumerate(("held", "held", "missed", "cancelled")):
                sess = w.session(
                    pairing,
                    (NOW - datetime(2025, 2, 1, tzinfo=UTC)).days - 14 * n,
                    status,
                    seq=n + 1,
                )
                facts[status] = facts.get(status, 0) + 1  # type: ignore[operator]
                if status == "held" and n == 0:
                    rating = 4 if i % 2 else 5
                    w.feedback(sess, p, rating)
                    facts["ratings"].append(rating)  # type: ignore[union-attr]
        # The comparison pool: never enrolled, same strata, a third leave in the year.
        for j in range(300):
            leaves = date(2025, 4, 1) if j % 3 == 0 else None
            c = w.person(
                "Cam",
                department=DEPARTMENTS[j % 3],
                level=3,
                hire=date(2021, 6, 1),
                termination=leaves,
            )
            w.review(c, BEFORE, 0.5, "2024")
            w.review(c, AFTER, 0.5, "2025")
        # Someone hired after the start is never in the comparison group.
        w.person("Late", hire=date(2025, 3, 1))
    facts["planned"] = facts["held"] + facts["missed"]  # type: ignore[operator]
    return facts


def _report(db: Database, k: int = 5, **overrides: object) -> dict[str, object]:
    prog = program(start=START, end=END, **overrides)
    with db.transaction() as s:
        return build_reports(s, [prog], min_group_size=k, now=NOW)[0]


def test_report_figures(db: Database) -> None:
    facts = _company(db)
    r = _report(db)
    assert r["program"] == "mentoring"
    assert r["participants"] == 40 and r["pairings"] == 40 and r["guides"] == 10
    assert r["sessions"] == {
        "planned": facts["planned"],
        "held": facts["held"],
        "missed": facts["missed"],
    }
    ratings = facts["ratings"]
    assert r["rating"] == {"mean": round(sum(ratings) / len(ratings), 3), "n": len(ratings)}
    # Retention: 4 of 40 left within 12 months, everyone followed a full year.
    ret = r["retention_12m"]
    assert ret["participants"]["value"] == pytest.approx(0.9)
    lo, hi = ret["participants"]["ci"]
    assert lo < 0.9 < hi and ret["participants"]["n"] == 40
    # Comparison: a third of the pool left, so about 0.667; drawn from matching strata only.
    comp = ret["comparison"]
    assert comp["value"] == pytest.approx(2 / 3, abs=0.05) and comp["n"] >= 100
    assert "higher" in ret["conclusion"]
    # Rating change: half +0.25, half +0.5 against zero for the comparison group.
    rc = r["rating_change"]
    assert rc["participants"]["value"] == pytest.approx(0.375)
    assert rc["participants"]["ci"][0] < 0.375 < rc["participants"]["ci"][1]
    assert rc["comparison"]["value"] == pytest.approx(0.0)
    assert r["promotions"]["participants"]["value"] == pytest.approx(0.25)
    assert r["promotions"]["comparison"]["value"] == pytest.approx(0.0)
    assert r["funnel"]["matched"] == 40 and r["funnel"]["first_session"] == 40
    # Legal has 2 participants: suppressed, and one more cell hidden so totals cannot reveal it.
    by_dept = {row["department"]: row for row in r["by_department"]}
    assert by_dept["Legal"]["participants"] == {"suppressed": True}
    assert by_dept["Legal"]["rating_mean"] == {"suppressed": True}
    hidden = [d for d, row in by_dept.items() if row["participants"] == {"suppressed": True}]
    assert len(hidden) == 2
    text = json.dumps(r, default=str)
    for secret in ("PRIVATE", "COMMENT-FOR-OWNER", "Lovelace", "example.com"):
        assert secret not in text.replace("owner@example.com", "")


def test_small_program_is_suppressed(db: Database) -> None:
    _company(db, learners=4)
    r = _report(db)
    assert r["participants"] == {"suppressed": True}
    assert r["pairings"] == {"suppressed": True}
    assert r["sessions"]["held"] == {"suppressed": True}
    assert r["rating"] == {"suppressed": True}
    for key in ("retention_12m", "rating_change"):
        for side in ("participants", "comparison"):
            assert r[key][side] == {"suppressed": True}
    assert all(v == {"suppressed": True} for v in r["funnel"].values())
    assert r["by_department"] == [] and r["retention_curves"]["participants"] == {
        "suppressed": True
    }
    assert "fewer than 5 participants" in r["notes"][0]


def test_too_small_to_conclude(db: Database) -> None:
    _company(db, learners=12)
    r = _report(db)
    assert r["participants"] == 12
    assert "too small to conclude" in r["retention_12m"]["conclusion"]


def test_html_is_self_contained(db: Database) -> None:
    _company(db)
    r = _report(db)
    page = render_html([r], now=NOW, min_group_size=5)
    assert page.startswith("<!doctype html>")
    assert '<meta name="viewport"' in page
    assert page.count("<svg") >= 4
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert not re.search(r"\bsrc\s*=", page) and "@import" not in page
    assert all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", page))
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert all(h.startswith("#") for h in hrefs), hrefs[:5]
    for secret in ("PRIVATE", "COMMENT-FOR-OWNER"):
        assert secret not in page


def test_report_cli(run_cli, db_url: str, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path / "coachbridge.toml", start="2025-01-01"))
    db = Database(db_url)
    db.upgrade()
    _company(db)
    base = ("--config", cfg, "--db", db_url)
    out = tmp_path / "report.html"
    res = run_cli(
        *base,
        "report",
        "mentoring",
        "--html",
        str(out),
        "--format",
        "json",
        "--as-of",
        NOW.isoformat(),
    )
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    for key in (
        "program",
        "participants",
        "pairings",
        "sessions",
        "rating",
        "retention_12m",
        "rating_change",
    ):
        assert key in data
    assert set(data["sessions"]) >= {"planned", "held", "missed"}
    assert set(data["rating"]) >= {"mean", "n"}
    for key in ("retention_12m", "rating_change"):
        for side in ("participants", "comparison"):
            assert set(data[key][side]) == {"value", "ci", "n"}
    assert out.read_text(encoding="utf-8").count("<svg") >= 4
    every = run_cli(*base, "report", "--format", "json", "--as-of", NOW.isoformat())
    assert every.exit_code == 0 and isinstance(json.loads(every.stdout), list)
    table = run_cli(*base, "report", "--as-of", NOW.isoformat())
    assert table.exit_code == 0 and "mentoring" in table.stdout
    unknown = run_cli(*base, "report", "nope")
    assert unknown.exit_code == 2 and "unknown program" in unknown.stderr
    nofolder = run_cli(*base, "report", "--html", str(tmp_path / "no" / "r.html"))
    assert nofolder.exit_code == 2 and "does not exist" in nofolder.stderr
    db.dispose()


def test_report_cli_small_group_exits_zero(run_cli, db_url: str, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path / "coachbridge.toml", start="2025-01-01"))
    db = Database(db_url)
    db.upgrade()
    _company(db, learners=3)
    res = run_cli(
        "--config", cfg, "--db", db_url, "report", "mentoring", "--as-of", NOW.isoformat()
    )
    assert res.exit_code == 0, res.stderr
    assert "suppressed" in res.stdout and "fewer than 5 participants" in res.stderr
    db.dispose()


def test_rolling_program_indexes_from_first_session(db: Database) -> None:
    _company(db)
    with db.transaction() as s:
        prog = program()  # no start: rolling
        r = build_reports(s, [prog], min_group_size=5, now=NOW)[0]
    assert r["rolling"] is True and r["participants"] == 40
    assert r["retention_12m"]["participants"]["n"] == 40
    assert r["comparison_group"]["reference_date"] == date(2025, 2, 1)
    assert timedelta(0) < NOW - datetime(2025, 2, 1, tzinfo=UTC)
