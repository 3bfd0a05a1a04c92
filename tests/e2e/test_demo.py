"""`coachbridge demo`: the whole loop on the sample company, deterministic, with its files."""

from __future__ import annotations

import re
from pathlib import Path

from icalendar import Calendar


def test_demo_runs_the_whole_loop_and_repeats_itself(run_cli, tmp_path: Path) -> None:
    first = run_cli("demo", "--out", str(tmp_path / "a"))
    assert first.exit_code == 0, first.stderr
    out = first.stdout
    # The first sync stores history but never acts on it.
    assert re.search(r"the rules ran on 0 of them", out)
    # Mentoring: enrolled, matched (certified optimal over every allowed pair), explained.
    assert re.search(r"enrolled \d+ learners .* and \d+ guides", out)
    assert re.search(r"\d+ pairings, certified optimal over [\d,]+ allowed pairs", out)
    assert "exact" not in out
    assert re.search(r"score 0\.\d\d = .*skills", out)
    assert re.search(r"\d+ sessions scheduled between 2025-10-1\d and 2026-0\d-\d\d", out)
    # Review cycles start coaching through the rule.
    fired = re.findall(r"fired for (\d+) of them", out)
    matched = re.findall(r"(\d+) matched with a coach, (\d+) sessions scheduled", out)
    assert len(fired) == 2 and all(int(n) > 0 for n in fired)
    assert all(int(m) > 0 and int(s) == 6 * int(m) for m, s in matched)
    assert re.search(r"9 leavers", out)
    # The intake round: some never answer, two reminders at most, the topics comparison shown.
    assert re.search(r"answered within a day, \d+ after a reminder, [1-9]\d* never", out)
    assert re.search(r"reminders sent: [1-9]\d* after 5 days, [1-9]\d* after 10, 0 after 15", out)
    assert re.search(
        r"a guide offering one of them for \d+ with the answers weighed, \d+ without", out
    )
    # Files: one calendar per person, a self-contained report, the config to explore with.
    calendars = sorted((tmp_path / "a" / "calendars").glob("person-*.ics"))
    assert len(calendars) > 100
    parsed = Calendar.from_ical(calendars[0].read_bytes())
    assert parsed.walk("VEVENT")
    report = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "<svg" in report and "<script src" not in report
    assert (tmp_path / "a" / "coachbridge.toml").exists()

    second = run_cli("demo", "--out", str(tmp_path / "b"))
    assert second.exit_code == 0
    assert second.stdout.replace(str(tmp_path / "b"), "OUT") == out.replace(
        str(tmp_path / "a"), "OUT"
    )
    # Same input, same files: every calendar byte for byte (UIDs, SEQUENCE, DTSTAMP).
    again = {p.name: p.read_bytes() for p in (tmp_path / "b" / "calendars").glob("*.ics")}
    assert again == {p.name: p.read_bytes() for p in calendars}
