"""The demo's manager-coaching paragraph, on the sample company as it is today."""

from __future__ import annotations

import re
from pathlib import Path

from coachbridge.demo.manager import manager_coaching
from coachbridge.demo.sample_data import PEOPLE_FILE, REVIEWS_FILE, sample_dir
from coachbridge.demo.story import TODAY, Demo, write_config
from coachbridge.hris.sync import Syncer
from coachbridge.plugins import Registry


def test_the_demo_pairs_one_department_with_its_managers_and_follows_a_reorg(
    tmp_path: Path,
) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    demo = Demo(work, out, f"sqlite:///{work / 'demo.db'}", Registry.build())
    source = sample_dir()
    config = write_config(out / "coachbridge.toml", source / PEOPLE_FILE, source / REVIEWS_FILE)
    app = demo._app(config)
    app.database().upgrade()
    Syncer(app.database(), app.connector("hr"), now=TODAY).run(full=True)
    manager_coaching(demo._app, config, work, demo.say, TODAY)
    text = "\n".join(demo.result.lines)
    assert re.search(
        r"\d+ people paired with their \d+ managers from the HRIS \(no matching\)", text
    )
    assert re.search(r"\d+ managers above max_reports 4 \(warned about, paired anyway\)", text)
    assert re.search(
        r"the sync ended 1 pairing \(manager changed\), cancelled \d+ future check-ins and "
        r"started 1 with the new manager; the same sync again: 0 ended, 0 started",
        text,
    )
    assert re.search(r"managers who held every check-in: 0\.\d", text)
