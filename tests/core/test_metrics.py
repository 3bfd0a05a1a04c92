"""coachbridge.metrics: what the core and the connector plugins count, read back as a scrape.

Counters live for the whole test process, so each check compares a value before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import responses
from coachbridge import metrics
from coachbridge.errors import ConnectorError
from prometheus_client.parser import text_string_to_metric_families


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@responses.activate
def test_bamboohr_requests_and_retries_are_counted() -> None:
    from coachbridge_bamboohr.client import BambooHRClient

    url = "https://api.bamboohr.test/api/v1/employees/directory"
    responses.get(url, status=503)
    responses.get(url, status=429)
    responses.get(url, json={"employees": []})
    client = BambooHRClient("https://api.bamboohr.test/api/v1/", "key", sleep=lambda s: None)
    before = scrape()
    client.request("GET", "employees/directory")
    after = scrape()
    for name, grown in (("vendor_requests", 3), ("vendor_retries", 2)):
        full = f"coachbridge_{name}_total"
        assert value(after, full, vendor="bamboohr") - value(before, full, vendor="bamboohr") == (
            grown
        )


@responses.activate
def test_workday_requests_and_retries_are_counted() -> None:
    from coachbridge_workday.client import WorkdayClient
    from coachbridge_workday.config import WorkdayConfig

    config = WorkdayConfig.model_validate(
        {
            "plugin": "workday",
            "base_url": "https://wd.test",
            "tenant": "acme",
            "username": "isu",
            "password": "isu-pass",
            "people_report": "isu/Workers",
            "max_retries": 2,
            "retry_backoff": 0,
        }
    )
    url = "https://wd.test/ccx/service/customreport2/acme/x"
    responses.get(url, status=500)
    responses.get(url, status=500)
    responses.get(url, status=500)
    client = WorkdayClient(config, "wd", sleep=lambda seconds: None)
    before = scrape()
    with pytest.raises(ConnectorError):
        response = client.request("GET", url, what="x")
        if response.status_code >= 500:
            raise ConnectorError("still failing")
    after = scrape()
    requests_total = "coachbridge_vendor_requests_total"
    retries_total = "coachbridge_vendor_retries_total"
    assert (
        value(after, requests_total, vendor="workday")
        - value(before, requests_total, vendor="workday")
        == 3
    )
    assert (
        value(after, retries_total, vendor="workday")
        - value(before, retries_total, vendor="workday")
        == 2
    )


def test_a_sync_is_counted_by_connector_and_outcome(tmp_path: Path) -> None:
    from coachbridge.connectors import ConnectorContext
    from coachbridge.errors import SyncAborted
    from coachbridge.hris.sync import Syncer
    from coachbridge.store import Database
    from coachbridge_csv.config import CsvConfig
    from coachbridge_csv.connector import CsvConnector

    people = tmp_path / "people.csv"
    people.write_text(
        "id,first_name,last_name,email\n"
        + "".join(f"E{i},A{i},B{i},e{i}@example.com\n" for i in range(1, 21))
    )
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.upgrade()
    connector = CsvConnector(
        CsvConfig.model_validate({"plugin": "csv", "people": str(people)}),
        ConnectorContext(name="hrfile", base_dir=tmp_path),
    )
    before = scrape()
    Syncer(db, connector).run(full=True)
    people.write_text("id,first_name,last_name,email\nE1,A1,B1,e1@example.com\n")
    with pytest.raises(SyncAborted):  # 19 of 20 people gone at once: the guard stops it
        Syncer(db, connector).run(full=True)
    after = scrape()
    db.dispose()
    for outcome in ("ok", "aborted"):
        labels = {"connector": "hrfile", "outcome": outcome}
        assert (
            value(after, "coachbridge_syncs_total", **labels)
            - value(before, "coachbridge_syncs_total", **labels)
            == 1
        )
        assert (
            value(after, "coachbridge_sync_duration_seconds_count", **labels)
            - value(before, "coachbridge_sync_duration_seconds_count", **labels)
            == 1
        )


def test_a_matching_run_is_timed() -> None:
    from coachbridge.matching.engine import match_rows
    from coachbridge.matching.scoring import Scorer

    from tests.matching.test_matching_engine import sides

    learners, guides = sides(np.random.default_rng(1), 30, 8)
    scorer = Scorer(learners, guides, {"skills": 0.7, "seniority": 0.3})
    before = scrape()
    result = match_rows(scorer, np.full(8, 3, dtype=np.int64), k=2, min_score=0.1)
    after = scrape()
    assert result.match
    count, total = "coachbridge_matching_seconds_count", "coachbridge_matching_seconds_sum"
    assert value(after, count) - value(before, count) == 1
    took = sum(result.seconds[p] for p in ("estimate", "candidates", "solve", "widen"))
    assert value(after, total) - value(before, total) == pytest.approx(took)


MULTIPROCESS = """
import os, sys
from pathlib import Path
from coachbridge import metrics

metrics.enable_multiprocess(Path(sys.argv[1]))
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        metrics.vendor_request("bamboohr", retry=True)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
    metrics.process_exited(pid)
metrics.vendor_request("bamboohr")
print(metrics.exposition()[0].decode())
"""


def test_counts_add_up_across_forked_processes(tmp_path: Path) -> None:
    shared = tmp_path / "prom"
    shared.mkdir()
    (shared / "counter_999999999.db").write_bytes(b"left by a process long gone")
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    out = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS, str(shared)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out)
        for s in family.samples
    }
    assert value(samples, "coachbridge_vendor_requests_total", vendor="bamboohr") == 3
    assert value(samples, "coachbridge_vendor_retries_total", vendor="bamboohr") == 2
    assert not (shared / "counter_999999999.db").exists()  # cleaned at start


def test_multiprocess_mode_cannot_start_after_counting(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from coachbridge import metrics\n"
        "metrics.vendor_request('bamboohr')\n"
        "try:\n    metrics.enable_multiprocess(Path(sys.argv[1]))\n"
        "except RuntimeError as exc:\n    print('refused:', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("refused: metrics were counted before")
