"""A real ``coachbridge serve`` with two gunicorn processes: metrics summed over both, and JSON logs.

Whichever process answers a scrape, it shows what both counted; a process that is killed keeps
its counts; every log line (gunicorn's own included) is one JSON object; no secret is logged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from coachbridge.store.tables import InboxRow
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.webhooks.conftest import ENV, SECRET, Env, review, signed, with_free_port
from tests.webhooks.test_webhooks_e2e import BOOT_DEADLINE, COACHBRIDGE

pytestmark = pytest.mark.slow
DELIVERIES = "coachbridge_webhook_deliveries_total"
SERVE = (COACHBRIDGE, "--config")


def _start(env: Env, prom: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    def on(port: int) -> tuple[subprocess.Popen[bytes], str]:
        out = log.open("wb")
        proc = subprocess.Popen(
            [*SERVE, str(env.path), "serve", "--port", str(port), "--processes", "2"],
            env={**os.environ, **ENV, "PROMETHEUS_MULTIPROC_DIR": str(prom)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + BOOT_DEADLINE
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                text = log.read_text()
                if "in use" in text:
                    raise OSError(f"port {port} taken")
                raise AssertionError(f"serve exited early: {text}")
            try:
                if requests.get(base + "/healthz", timeout=5).status_code == 200:
                    return proc, base
            except requests.RequestException:
                time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"serve did not come up within {BOOT_DEADLINE:.0f} s")

    return with_free_port(on)


def _scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(base + "/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _per_process(prom: Path) -> dict[int, float]:
    """Deliveries counted by each process, read from its own counter file."""
    counts: dict[int, float] = {}
    for file in prom.glob("counter_*.db"):
        pid = int(file.stem.rpartition("_")[2])
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(file)):
            if json.loads(key)[0] == "coachbridge_webhook_deliveries":
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def _deliver(base: str, n: int) -> list[int]:
    def one(_i: int) -> int:
        body, headers = signed(review(f"E{1 + _i % 4}", rating=4))
        return requests.post(
            base + "/webhooks/reviews", data=body, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def test_two_processes_count_as_one_and_log_json(tmp_path: Path, swenv: Env) -> None:
    swenv.path.write_text(
        swenv.path.read_text().replace("[server]\n", '[server]\nlog_format = "json"\n', 1)
    )
    prom, log = tmp_path / "prom", tmp_path / "serve.log"
    prom.mkdir()
    proc, base = _start(swenv, prom, log)
    try:
        sent = 0
        # Until both serving processes have answered deliveries (they race to accept).
        for _ in range(15):
            assert set(_deliver(base, 20)) == {202}
            sent += 20
            if sum(1 for v in _per_process(prom).values() if v > 0) >= 2:
                break
        per_process = _per_process(prom)
        assert sum(1 for v in per_process.values() if v > 0) >= 2, per_process
        body, headers = signed(review("E1"))
        bad = {**headers, "webhook-signature": "v1," + "A" * 43 + "="}
        for _ in range(3):
            assert (
                requests.post(base + "/webhooks/reviews", data=body, headers=bad).status_code == 401
            )
        # Signed but malformed: refused after verification, so its line names the delivery.
        malformed, signed_headers = signed({"type": "review.completed"}, msg_id="msg_bad")
        answer = requests.post(base + "/webhooks/reviews", data=malformed, headers=signed_headers)
        assert answer.status_code == 400

        def waiting() -> int:
            with swenv.db.transaction() as s:
                return int(
                    s.scalar(
                        select(func.count()).select_from(InboxRow).where(InboxRow.status != "done")
                    )
                )

        deadline = time.monotonic() + 120
        while waiting() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert waiting() == 0
        labels = (("connector", "reviews"), ("status", "202"))
        for _ in range(8):  # answered by either process: the same sums
            samples = _scrape(base)
            assert samples[(DELIVERIES, labels)] == sent
            assert samples[(DELIVERIES, (("connector", "reviews"), ("status", "401")))] == 3
            assert samples[(DELIVERIES, (("connector", "reviews"), ("status", "400")))] == 1
            processed = samples[
                (
                    "coachbridge_delivery_processing_seconds_count",
                    (("connector", "reviews"), ("outcome", "done")),
                )
            ]
            assert processed == sent
        # A worker process killed: its counts stay, gunicorn says so in a JSON line.
        victim = max(per_process, key=lambda pid: per_process[pid])
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "was sent SIGKILL" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        requests.get(base + "/healthz", timeout=10)
        assert _scrape(base)[(DELIVERIES, labels)] == sent
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    gunicorn = [x for x in lines if x["logger"] == "gunicorn.error"]
    assert any("was sent SIGKILL" in x["message"] for x in gunicorn), gunicorn
    rejected = [x for x in lines if "rejected (401)" in x["message"]]
    assert len(rejected) == 3
    assert all(x["connector"] == "reviews" and len(x["request_id"]) == 32 for x in rejected)
    refused = [x for x in lines if "rejected (400)" in x["message"]]
    assert [(x["connector"], x["delivery_id"]) for x in refused] == [("reviews", "msg_bad")]
    assert SECRET not in text and SECRET.removeprefix("whsec_") not in text
    for header in (bad, signed_headers):
        assert header["webhook-signature"] not in text
        assert header["webhook-signature"].removeprefix("v1,") not in text
    assert "Traceback" not in text
