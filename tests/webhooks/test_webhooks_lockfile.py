"""Lock files on SQLite: intake writers queue on one, exactly one serving process runs the worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from coachbridge_webhooks import lockfile
from coachbridge_webhooks.inbox import GroupCommitter
from coachbridge_webhooks.lockfile import LockFile
from coachbridge_webhooks.worker import run_in_thread

from tests.webhooks.conftest import Env


def test_two_lock_files_on_one_path_exclude_each_other(tmp_path: Path):
    path = tmp_path / "db.sqlite.intake.lock"
    first, second = LockFile(path), LockFile(path)
    assert first.acquire(blocking=False) is True
    assert second.acquire(blocking=False) is False
    first.release()
    assert second.acquire(blocking=False) is True
    assert first.acquire(blocking=False) is False
    second.close()
    assert first.acquire(blocking=False) is True
    first.close()


def test_a_blocked_writer_is_woken_when_the_lock_is_released(tmp_path: Path):
    path = tmp_path / "q.lock"
    holder, waiter = LockFile(path), LockFile(path)
    holder.acquire()
    got = threading.Event()

    def wait() -> None:
        with waiter:
            got.set()

    thread = threading.Thread(target=wait)
    thread.start()
    assert not got.wait(0.3)  # still queued behind the holder
    released = time.monotonic()
    holder.release()
    assert got.wait(5)
    # Woken by the kernel, not by a poll: well under SQLite's 100 ms busy-handler sleeps.
    assert time.monotonic() - released < 0.1
    thread.join()
    holder.close()
    waiter.close()


def test_the_lock_is_gone_with_the_process_that_held_it(tmp_path: Path):
    import subprocess
    import sys

    path = tmp_path / "w.lock"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from coachbridge_webhooks.lockfile import LockFile; "
            f"assert LockFile(__import__('pathlib').Path({str(path)!r})).acquire(); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"held"
        mine = LockFile(path)
        assert mine.acquire(blocking=False) is False
        child.kill()
        child.wait(10)
        assert mine.acquire(blocking=False) is True
        mine.close()
    finally:
        child.kill()
        child.wait(10)


def test_sqlite_intake_queues_on_the_lock_file_beside_the_database(swenv: Env):
    path = swenv.db.sqlite_path
    assert path is not None
    lock_path = lockfile.beside(path, "intake")
    other = LockFile(lock_path)
    other.acquire()  # another serving process is writing
    committer = GroupCommitter(swenv.db)
    answers: list[bool] = []
    thread = threading.Thread(
        target=lambda: answers.append(committer.submit("reviews", "d-1", "application/json", b"{}"))
    )
    thread.start()
    time.sleep(0.3)
    assert answers == []  # waits its turn rather than writing past the other process
    other.release()
    thread.join(10)
    assert answers == [True]
    assert lock_path.exists()
    other.close()
    committer.close()


class _FakeWorker:
    """What run_in_thread needs of a worker: an id, a stop flag and a loop."""

    def __init__(self, name: str) -> None:
        self.worker_id = name
        self.stopping = threading.Event()
        self.running = threading.Event()

    def run_forever(self) -> None:
        self.running.set()
        self.stopping.wait()


def test_of_several_serving_processes_one_runs_the_worker_and_another_takes_over(tmp_path: Path):
    path = tmp_path / "coachbridge.db.worker.lock"
    first, second = _FakeWorker("first"), _FakeWorker("second")
    t1 = run_in_thread(first, lock=LockFile(path), retry_seconds=0.05)  # type: ignore[arg-type]
    assert first.running.wait(5)
    t2 = run_in_thread(second, lock=LockFile(path), retry_seconds=0.05)  # type: ignore[arg-type]
    assert not second.running.wait(0.5)  # the lock is held: this one only waits
    first.stopping.set()  # the first process goes away and its lock with it
    t1.join(5)
    assert second.running.wait(5)
    second.stopping.set()
    t2.join(5)
    assert not t1.is_alive() and not t2.is_alive()


def test_a_waiting_worker_stops_without_ever_running(tmp_path: Path):
    path = tmp_path / "w.lock"
    holder = LockFile(path)
    holder.acquire()
    waiting = _FakeWorker("waiting")
    thread = run_in_thread(waiting, lock=LockFile(path), retry_seconds=0.05)  # type: ignore[arg-type]
    waiting.stopping.set()
    thread.join(5)
    assert not thread.is_alive() and not waiting.running.is_set()
    holder.close()


def test_a_lock_file_that_cannot_be_made_is_logged_and_the_worker_does_not_run(
    tmp_path: Path, caplog
):
    fake = _FakeWorker("nowhere")
    lock = LockFile(tmp_path / "no-such-folder" / "db.worker.lock")
    with caplog.at_level("ERROR", logger="coachbridge.worker"):
        thread = run_in_thread(fake, lock=lock, retry_seconds=0.05)  # type: ignore[arg-type]
        thread.join(5)
    assert not thread.is_alive() and not fake.running.is_set()
    assert "worker not started: lock file" in caplog.text


def test_a_second_sqlite_worker_stands_by_until_the_first_is_gone(swenv: Env):
    """`coachbridge worker` on SQLite runs only while it holds the worker lock file, as the
    in-process worker of `serve` does: a second one waits and takes over."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from coachbridge.store.tables import InboxRow
    from coachbridge_webhooks import inbox
    from sqlalchemy import select

    from tests.webhooks.conftest import ENV, review

    coachbridge = str(Path(sys.executable).with_name("coachbridge"))
    assert swenv.db.sqlite_path is not None
    first = LockFile(lockfile.beside(swenv.db.sqlite_path, "worker"))  # "serve" holds it
    assert first.acquire(blocking=False)
    body = json.dumps(review("E1", rating=4)).encode()
    assert inbox.accept(swenv.db, "reviews", "d-standby", "application/json", body)
    proc = subprocess.Popen(
        [coachbridge, "--config", str(swenv.path), "worker", "--poll", "0.1"],
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def status() -> str:
        with swenv.db.transaction() as s:
            return str(s.scalar(select(InboxRow.status)))

    # The worker says it stands by once it has started and found the lock taken; start-up
    # takes seconds on a busy machine, so wait for that line rather than a fixed time.
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.decode() for line in proc.stderr), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("stands by to take over" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        time.sleep(0.5)  # a few polls while standing by
        assert status() == "pending"  # standing by
        first.close()  # the first worker is gone
        deadline = time.monotonic() + 30
        while status() != "done" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status() == "done"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err


def test_a_sqlite_worker_that_cannot_take_its_lock_file_exits_1_and_says_why(swenv: Env):
    import os
    import subprocess
    import sys

    from tests.webhooks.conftest import ENV

    assert swenv.db.sqlite_path is not None
    lockfile.beside(swenv.db.sqlite_path, "worker").mkdir()  # a folder where the file goes
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("coachbridge")), "--config", str(swenv.path), "worker"],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "worker not started: lock file" in proc.stderr
    assert "the worker could not run" in proc.stderr
    assert "Traceback" not in proc.stderr
