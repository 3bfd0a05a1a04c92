"""A real ``coachbridge serve`` process on a free loopback port, signed deliveries over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from coachbridge.store.tables import GoalRow, InboxRow, PairingRow, SessionRow
from coachbridge_webhooks import lockfile
from coachbridge_webhooks.lockfile import LockFile
from sqlalchemy import func, select

from tests.webhooks.conftest import ENV, Env, free_port, review, signed, with_free_port

COACHBRIDGE = str(Path(sys.executable).with_name("coachbridge"))
#: Booting gunicorn and its worker on a loaded 2-core machine can take a while.
BOOT_DEADLINE = 60.0


def start(env: Env, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """A running ``serve`` on a free port (another port if the chosen one was taken meanwhile)."""
    return with_free_port(lambda port: _start_on(env, port, *args))


def _start_on(env: Env, port: int, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [COACHBRIDGE, "--config", str(env.path), "serve", "--port", str(port), *args],
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + BOOT_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            if "in use" in out:  # lost the port race: with_free_port tries another one
                raise OSError(f"port {port} taken: {out[-300:]}")
            raise AssertionError(f"serve exited early: {out}")
        try:
            if requests.get(base + "/healthz", timeout=5).status_code == 200:
                return proc, base
        except requests.RequestException:  # refused, or a read timeout while it boots
            time.sleep(0.2)
    stop(proc)
    raise AssertionError(f"serve did not come up within {BOOT_DEADLINE:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> str:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out.decode() if out else ""


@pytest.fixture(params=["gunicorn", "dev"])
def server(request, swenv: Env) -> Iterator[tuple[Env, str]]:
    args = ("--dev",) if request.param == "dev" else ()
    proc, base = start(swenv, *args)
    try:
        yield swenv, base
    finally:
        output = stop(proc)
        assert "Traceback" not in output, output


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_real_server_answers_and_processes_in_process(server):
    env, base = server
    url = base + "/webhooks/reviews"
    assert requests.get(base + "/readyz", timeout=5).json() == {"status": "ok", "database": "ok"}

    body, headers = signed(review("E1"), msg_id="e2e-1")
    first = requests.post(url, data=body, headers=headers, timeout=5)
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 200

    bad = dict(headers, **{"webhook-signature": "v1,AAAA"})
    response = requests.post(url, data=body, headers=bad, timeout=5)
    assert response.status_code == 401 and response.json() == {
        "error": "signature missing, invalid or stale"
    }
    assert requests.post(base + "/webhooks/nope", data=body, headers=headers).status_code == 404
    plain = dict(headers, **{"content-type": "text/plain"})
    assert requests.post(url, data=body, headers=plain, timeout=5).status_code == 415
    junk, junk_headers = signed(b"{not json")
    assert requests.post(url, data=junk, headers=junk_headers, timeout=5).status_code == 400

    def chunked():  # no Content-Length: the server must count what really arrives
        for _ in range(40):
            yield b"x" * 32768

    big = requests.post(url, data=chunked(), headers=headers, timeout=10)
    assert big.status_code == 413

    def processed() -> bool:
        with env.db.transaction() as s:
            return s.scalar(select(InboxRow.status)) == "done"

    wait_for(processed)
    # The worker ran in a serving process that holds the worker lock file beside the database.
    assert env.db.sqlite_path is not None
    worker_lock = LockFile(lockfile.beside(env.db.sqlite_path, "worker"))
    assert worker_lock.acquire(blocking=False) is False
    worker_lock.close()
    with env.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(InboxRow)) == 1
        assert s.scalar(select(func.count()).select_from(PairingRow)) == 1
        assert s.scalar(select(func.count()).select_from(GoalRow)) == 1
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 3


def test_serve_refuses_a_bad_notify_section_with_a_clear_error(swenv: Env):
    text = swenv.path.read_text() + '\n[notify.smtp]\nhost = "mail"\n'
    swenv.path.write_text(text)
    result = subprocess.run(
        [COACHBRIDGE, "--config", str(swenv.path), "serve", "--port", str(free_port())],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "notify.smtp.from_address" in result.stderr
    assert "Traceback" not in result.stderr
