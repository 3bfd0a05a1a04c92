"""Faults under load: a steady stream of signed deliveries, the faults, and the check after.

Shared by ``benchmarks/faults/run.py`` (the measured run) and
``tests/webhooks/test_webhooks_faults.py`` (a bounded run in the test suite), so both drive
and judge the same way:

* ``Stream`` sends deliveries at a steady rate from several keep-alive connections and, like a
  real sender, retries every delivery not answered 202 or 200 (after ``retry_after``), keeping
  each attempt's answer and time.
* The faults: ``terminate_backends`` (every connection to the database, as
  ``pg_terminate_backend`` does), ``database_refused`` (the database refuses new connections
  for a while and its backends are terminated: an outage, not just a blip), ``Deployment``
  (``serve`` and ``coachbridge worker`` processes: SIGKILL and restart a worker, SIGTERM
  ``serve`` with requests in flight) and ``FlakySmtp`` (an aiosmtpd server on loopback that
  drops connections in the middle of a mail, or is not there at all).
* ``check`` reads the store afterwards: every delivery answered 202/200 is in the inbox once
  and ``done``; its review event exists once, processed; each learner with a low rating has
  exactly one pairing (keyed ``rule:<event id>:0`` by the event that made it), its sessions
  1..N once each, one goal (``rule:<rule>:pairing:<id>:goal``) and one message per side and
  channel (``pairing:<id>:<side>:<channel>``), sent; nobody else has any of those.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import heapq
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.dbwait import wait_for_zero

#: Answers that mean the server has the delivery (stored now, or a repeat of a stored one).
ACCEPTED = (200, 202)
BIN = str(Path(sys.executable).with_name("coachbridge"))


@dataclass
class Delivery:
    """One signed delivery and what it says (the checker's expectations come from it)."""

    id: str
    body: bytes
    headers: dict[str, str]
    employee: str
    cycle: str
    rating: float  # on 0..1, as the rules see it


def deliveries(requests_: Sequence[tuple[bytes, dict[str, str]]]) -> list[Delivery]:
    """Signed requests as made by ``benchmarks/webhooks/loadgen.make_requests``."""
    out = []
    for body, headers in requests_:
        data = json.loads(body)["data"]
        low, high = data["rating_scale_min"], data["rating_scale_max"]
        out.append(
            Delivery(
                id=headers["webhook-id"],
                body=body,
                headers=headers,
                employee=data["employee_id"],
                cycle=data["cycle_id"],
                rating=(data["rating"] - low) / (high - low),
            )
        )
    return out


# -- the sender ------------------------------------------------------------------------------
@dataclass
class Attempt:
    at: float  # seconds since the stream started
    status: int  # 0: no answer (connection refused, reset, timed out)
    seconds: float
    error: str = ""  # why there was no answer
    reused: bool = False  # sent on a keep-alive connection used before


class Stream:
    """Sends ``items`` at ``rate`` per second, retrying each until it is answered 202/200.

    Retries go back into the schedule (``retry_after`` seconds later) instead of blocking a
    connection, so the stream stays steady during an outage. A delivery is given up after
    ``give_up_after`` seconds of trying (a figure of its own: never expected).
    """

    def __init__(
        self,
        url: str,
        items: Sequence[Delivery],
        *,
        rate: float,
        connections: int = 8,
        retry_after: float = 0.25,
        give_up_after: float = 120.0,
        timeout: float = 30.0,
        idle_close: float = 1.0,
    ) -> None:
        self.url = url
        self.idle_close = idle_close
        self.items = list(items)
        self.rate = rate
        self.connections = connections
        self.retry_after = retry_after
        self.give_up_after = give_up_after
        self.timeout = timeout
        self.attempts: list[list[Attempt]] = [[] for _ in self.items]
        self.t0 = 0.0
        self.ended_at: float | None = None
        self._heap: list[tuple[float, int]] = []
        self._busy = 0
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._heap = [(i / self.rate, i) for i in range(len(self.items))]
        heapq.heapify(self._heap)
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.connections)
        ]
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every delivery is accepted or given up; True when it ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        done = not any(t.is_alive() for t in self._threads)
        if done and self.ended_at is None:
            self.ended_at = self.now()
        return done

    def _take(self) -> int | None:
        with self._cond:
            while True:
                if not self._heap:
                    if self._busy == 0:
                        self._cond.notify_all()
                        return None
                    self._cond.wait(0.1)
                    continue
                due, index = self._heap[0]
                wait = due - self.now()
                if wait <= 0:
                    heapq.heappop(self._heap)
                    self._busy += 1
                    return index
                self._cond.wait(wait)

    def _run(self) -> None:
        parts = urlsplit(self.url)
        conn: http.client.HTTPConnection | None = None
        last_used = 0.0
        while (index := self._take()) is not None:
            item = self.items[index]
            if conn is not None and self.now() - last_used > self.idle_close:
                # Never reuse a connection the server may be closing right now (gunicorn drops
                # keep-alive connections idle for 2 s): that race would look like a lost answer.
                conn.close()
                conn = None
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
            began = self.now()
            reused, error = conn.sock is not None, ""
            try:
                conn.request("POST", parts.path, body=item.body, headers=item.headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = None
                status, error = 0, f"{type(exc).__name__}: {exc}"[:200]
            ended = last_used = self.now()
            with self._cond:
                self.attempts[index].append(
                    Attempt(round(began, 3), status, ended - began, error, reused)
                )
                if status not in ACCEPTED and ended - self.attempts[index][0].at < (
                    self.give_up_after
                ):
                    heapq.heappush(self._heap, (ended + self.retry_after, index))
                self._busy -= 1
                self._cond.notify_all()
        if conn is not None:
            conn.close()

    def finish(self) -> None:
        """Send no new deliveries (those sent are still retried until accepted)."""
        with self._cond:
            self._heap = [(due, i) for due, i in self._heap if self.attempts[i]]
            heapq.heapify(self._heap)
            self._cond.notify_all()

    def sent(self) -> list[Delivery]:
        return [item for item, tries in zip(self.items, self.attempts, strict=True) if tries]

    def final(self) -> dict[str, int]:
        """Each sent delivery's last answer (0: none)."""
        return {
            item.id: tries[-1].status
            for item, tries in zip(self.items, self.attempts, strict=True)
            if tries
        }

    def figures(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for tries in self.attempts:
            for attempt in tries:
                statuses[str(attempt.status)] = statuses.get(str(attempt.status), 0) + 1
        final = self.final()
        return {
            "deliveries": len(final),
            "attempts": sum(len(t) for t in self.attempts),
            "answers_by_status": dict(sorted(statuses.items())),
            "accepted": sum(1 for s in final.values() if s in ACCEPTED),
            "accepted_after_retry": sum(
                1 for t in self.attempts if len(t) > 1 and t[-1].status in ACCEPTED
            ),
            "given_up": sum(1 for s in final.values() if s not in ACCEPTED),
            "seconds": round(self.ended_at if self.ended_at is not None else self.now(), 2),
        }

    def unanswered(self) -> list[Attempt]:
        return [a for tries in self.attempts for a in tries if a.status == 0]

    def answers_between(self, start: float, end: float) -> dict[str, int]:
        """Answers to attempts that began in [start, end), by status."""
        out: dict[str, int] = {}
        for tries in self.attempts:
            for a in tries:
                if start <= a.at < end:
                    out[str(a.status)] = out.get(str(a.status), 0) + 1
        return dict(sorted(out.items()))

    def first_accepted_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first attempt begun after it that was accepted."""
        times = [
            a.at
            for tries in self.attempts
            for a in tries
            if a.at >= moment and a.status in ACCEPTED
        ]
        return round(min(times) - moment, 3) if times else None


class Timeline:
    """Runs the faults at set moments of a stream, and keeps when each really happened."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.marks: list[dict[str, Any]] = []
        self._ended = 0.0

    def at(self, moment: float, what: str, action: Any) -> Any:
        wait = moment - self.stream.now()
        if wait > 0:
            time.sleep(wait)
        began = self.stream.now()
        result = action()
        self._ended = self.stream.now()
        self.marks.append({"at": round(began, 3), "what": what, "result": result})
        return result

    def after(self, delay: float, what: str, action: Any) -> Any:
        """``action`` ``delay`` seconds after the previous one ended (a fault's length holds
        even when starting it took long on a loaded machine)."""
        return self.at(self._ended + delay, what, action)

    def when(self, what: str) -> float:
        return next(m["at"] for m in self.marks if m["what"] == what)


class Progress:
    """Samples the inbox every ``every`` seconds of a stream (in a thread): how many deliveries
    are done and how many wait (pending, processing or failed); None while the database
    refuses connections."""

    def __init__(self, url: str, stream: Stream, every: float = 1.0) -> None:
        self.url = url
        self.stream = stream
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        engine = create_engine(self.url, pool_pre_ping=True, connect_args={"connect_timeout": 2})
        try:
            while not self._stop.is_set():
                at = round(self.stream.now(), 1)
                try:
                    with engine.connect() as conn:
                        counts = dict(
                            conn.execute(
                                text("SELECT status, count(*) FROM inbox GROUP BY status")
                            ).all()
                        )
                    done = int(counts.get("done", 0))
                    waiting = int(sum(v for k, v in counts.items() if k != "done"))
                    self.samples.append({"at": at, "done": done, "waiting": waiting})
                except Exception:  # the database refuses connections: a gap in the series
                    self.samples.append({"at": at, "done": None, "waiting": None})
                self._stop.wait(self.every)
        finally:
            engine.dispose()

    def processing_resumed_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first sample after it with more deliveries done than
        the last sample before it."""
        before = [s["done"] for s in self.samples if s["at"] <= moment and s["done"] is not None]
        if not before:
            return None
        for sample in self.samples:
            if sample["at"] > moment and sample["done"] is not None and sample["done"] > before[-1]:
                return round(sample["at"] - moment, 1)
        return None


# -- database faults -------------------------------------------------------------------------
TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def terminate_backends(url: str) -> int:
    """Terminate every other connection to ``url``'s database (never another database's);
    returns how many."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(TERMINATE)).scalar_one())
    finally:
        engine.dispose()


def _admin_for(url: str, admin_url: str) -> tuple[str, Any]:
    name = make_url(url).database
    if name is None or name == make_url(admin_url).database:
        raise ValueError("the admin URL must name another database than the one refused")
    return name, create_engine(admin_url, isolation_level="AUTOCOMMIT")


def refuse_database(url: str, admin_url: str) -> int:
    """An outage of ``url``'s database alone: it refuses new connections and its backends are
    terminated (``allow_database`` ends it). Returns how many were terminated.

    ``ALLOW_CONNECTIONS`` is changed from ``admin_url`` (another database of the same server:
    PostgreSQL does not let a connection disallow its own database).
    """
    name, admin = _admin_for(url, admin_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).scalar_one()
        return int(killed)
    finally:
        admin.dispose()


def allow_database(url: str, admin_url: str) -> None:
    name, admin = _admin_for(url, admin_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    finally:
        admin.dispose()


# -- processes -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> set[int]:
    """The processes ``pid`` forked (gunicorn's serving processes under its arbiter)."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.update(int(p) for p in f.read().split())
    return found


@dataclass
class Deployment:
    """``coachbridge serve`` and separate ``coachbridge worker`` processes on one config."""

    config: Path
    folder: Path
    env: dict[str, str]
    serve_args: list[str] = field(default_factory=list)
    worker_args: list[str] = field(default_factory=list)
    port: int = 0
    serve: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    restarts: list[dict[str, Any]] = field(default_factory=list)
    _logs: int = 0
    _worker_logs: dict[int, Path] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _exit_watch: threading.Thread | None = None
    _exit_seconds: float | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        self._logs += 1
        name = next(a for a in args if not a.startswith("-"))
        log = open(self.folder / f"{name}-{self._logs}.log", "wb")  # noqa: SIM115
        try:
            return subprocess.Popen(
                [BIN, "--config", str(self.config), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()  # the child has its own descriptor

    def start_serve(self, timeout: float = 60.0) -> None:
        for _ in range(5):  # another process may take the free port first
            self.port = free_port()
            self.serve = self._start("serve", "--port", str(self.port), *self.serve_args)
            if self.wait_ready(timeout):
                return
            self.stop_process(self.serve)
        raise RuntimeError(f"serve did not become ready; see {self.folder}/serve-*.log")

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.serve is None or self.serve.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.base + "/readyz", timeout=2) as r,
            ):
                if r.status == 200:
                    return True
            time.sleep(0.1)
        return False

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start a worker (``-v``: it logs each delivery it processes)."""
        proc = self._start("-v", "worker", *self.worker_args)
        self.workers.append(proc)
        self._worker_logs[proc.pid] = self.folder / f"worker-{self._logs}.log"
        return proc

    def wait_started(self, procs: Sequence[subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
        """Wait until each worker's loop runs: on a loaded machine, starting takes seconds."""
        deadline = time.monotonic() + timeout
        for proc in procs:
            log = self._worker_logs[proc.pid]
            while " started" not in log.read_text(errors="replace"):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the worker did not start; see {log}")
                time.sleep(0.05)

    def supervise(self, workers: int, every: float = 0.2) -> None:
        """Keep ``workers`` worker processes running, as a process supervisor would: a worker
        that ended (killed, or stopped because the database refused it at start-up) is
        started again. Each restart is kept in ``restarts``: when (``time.monotonic()``), the
        ended worker's pid, exit status (-9: SIGKILL, 1: a runtime failure) and last log lines,
        the new pid."""
        replaced: set[int] = set()

        def run() -> None:
            while not self._stopping.is_set():
                for ended in [w for w in self.workers if w.poll() is not None]:
                    if ended.pid in replaced:
                        continue
                    replaced.add(ended.pid)
                    log = self._worker_logs[ended.pid].read_text(errors="replace")
                    tail = [line[:300] for line in log.splitlines() if line.strip()][-6:]
                    proc = self.start_worker()
                    at = time.monotonic()
                    self.restarts.append(
                        {
                            "at": at,
                            "ended": ended.pid,
                            "status": ended.returncode,
                            "new": proc.pid,
                            "log_tail": tail,
                        }
                    )
                self._stopping.wait(every)

        threading.Thread(target=run, daemon=True).start()

    def kill_worker(self, index: int = 0) -> int:
        """SIGKILL a running worker (no clean-up of any kind); returns its pid."""
        proc = [w for w in self.workers if w.poll() is None][index]
        proc.kill()
        proc.wait(timeout=30)
        return proc.pid

    def kill_worker_at_work(self, url: str, program: str, timeout: float = 30.0) -> dict[str, Any]:
        """SIGKILL a worker in the middle of a delivery, holding claimed ones: what it held is
        stranded until its lease expires. Returns its pid and how many it left stranded.

        To catch it mid-delivery whatever the machine's speed, ``program``'s row is locked
        meanwhile (every rule run locks it first): a worker that reaches a rule waits inside
        its transaction, and is killed there. The lock is released right after the kill (the
        dead worker's transaction is then rolled back). Without such a worker within
        ``timeout``, any worker with claims (or any worker) is killed.
        """
        live = {w.pid: w for w in self.workers if w.poll() is None}
        engine = create_engine(url)
        blocker = engine.connect()
        held: list[int] = []
        try:
            blocker.execute(
                text("SELECT id FROM programs WHERE id = :p FOR UPDATE"), {"p": program}
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception), engine.connect() as conn:
                    rows = conn.execute(
                        text("SELECT locked_by FROM inbox WHERE status = 'processing'")
                    ).scalars()
                    # A worker's id is <host>:<pid>:<random>.
                    held = [int(r.split(":")[1]) for r in rows if r and r.count(":") == 2]
                    waiting = conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND datname = current_database()"
                        )
                    ).scalar_one()
                    if waiting and any(pid in live for pid in held):
                        break
                time.sleep(0.02)
            victim = next((pid for pid in held if pid in live), next(iter(live)))
            live[victim].kill()
            live[victim].wait(timeout=30)
        finally:
            blocker.rollback()
            blocker.close()
        try:
            with engine.connect() as conn:
                stranded = conn.execute(
                    text(
                        "SELECT count(*) FROM inbox WHERE status = 'processing' "
                        "AND locked_by LIKE :w"
                    ),
                    {"w": f"%:{victim}:%"},
                ).scalar_one()
        finally:
            engine.dispose()
        return {"pid": victim, "claims_stranded": int(stranded)}

    def serving_processes(self) -> set[int]:
        return children(self.serve.pid) if self.serve is not None else set()

    def watch_exit(self, signalled: float) -> None:
        """Note when ``serve`` ends (in a thread), counted from ``signalled``."""
        serve = self.serve
        assert serve is not None

        def wait() -> None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                serve.wait(timeout=120)
                self._exit_seconds = round(time.monotonic() - signalled, 2)

        self._exit_watch = threading.Thread(target=wait, daemon=True)
        self._exit_watch.start()

    def serve_exit(self, timeout: float = 120.0) -> dict[str, Any]:
        """After ``sigterm_in_flight``: ``serve``'s exit status and the seconds from the signal
        to its end (None: still running)."""
        assert self.serve is not None and self._exit_watch is not None
        self._exit_watch.join(timeout)
        return {"serve_exit_code": self.serve.poll(), "serve_exit_seconds": self._exit_seconds}

    def killed_serving_processes(self) -> list[str]:
        """gunicorn's lines saying it killed a serving process (timed out, or still busy when
        its graceful stop ran out): a stop that was not graceful."""
        return [
            line
            for path in sorted(self.folder.glob("serve-*.log"))
            for line in path.read_text(errors="replace").splitlines()
            if "WORKER TIMEOUT" in line or "SIGKILL" in line
        ]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("*.log")))

    @staticmethod
    def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)

    def stop(self) -> None:
        self._stopping.set()
        for proc in [self.serve, *self.workers]:
            self.stop_process(proc)


def sigterm_in_flight(
    deployment: Deployment, items: Sequence[Delivery], pause: float = 0.5
) -> dict[str, Any]:
    """SIGTERM ``serve`` while ``items`` are in flight, and what their senders got.

    Each request is sent up to the middle of its body, so a serving thread is reading it when
    the signal arrives; the rest follows after the signal. A graceful stop answers all of
    them; then ``serve`` exits by itself (``Deployment.serve_exit`` waits for that).
    """
    assert deployment.serve is not None
    socks = []
    path = "/webhooks/reviews"
    for item in items:
        sock = socket.create_connection(("127.0.0.1", deployment.port), timeout=30)
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(item.body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in item.headers.items()) + "\r\n"
        sock.sendall(head.encode() + item.body[: len(item.body) // 2])
        socks.append(sock)
    time.sleep(pause)  # the serving threads are now reading the bodies
    deployment.serve.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    deployment.watch_exit(signalled)
    time.sleep(pause)
    answers: dict[str, int] = {}
    for sock, item in zip(socks, items, strict=True):
        try:
            sock.sendall(item.body[len(item.body) // 2 :])
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            answers[item.id] = response.status
        except (OSError, http.client.HTTPException):
            answers[item.id] = 0
        finally:
            sock.close()
    return {"answers": answers}


# -- SMTP ------------------------------------------------------------------------------------
class MailLog:
    """aiosmtpd handler: keeps the Message-ID of every mail taken; drops connections on demand
    (the connection is closed in the middle of DATA, so the mail is not taken)."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []
        self.dropping = False
        self.dropped = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.dropping:
            self.dropped += 1
            server.transport.abort()
            return "421 closing"  # never reaches the client: the connection is gone
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.message_ids.append(str(parsed["Message-ID"]))
        return "250 OK"


class FlakySmtp:
    """A real SMTP server on loopback that can drop connections or refuse them."""

    def __init__(self) -> None:
        self.handler = MailLog()
        self.port = 0
        self.marks: list[tuple[str, float]] = []  # (what, time.monotonic())
        self._controller: Any = None
        for _ in range(5):
            try:
                self._start(free_port())
                return
            except OSError:
                continue
        raise RuntimeError("no free port for the SMTP server")

    def _start(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        controller = Controller(self.handler, hostname="127.0.0.1", port=port)
        controller.start()
        self._controller, self.port = controller, port

    def drop(self) -> None:
        self.handler.dropping = True

    def refuse(self) -> None:
        """Stop listening: connections are refused."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def restore(self) -> None:
        self.handler.dropping = False
        if self._controller is None:
            self._start(self.port)

    def stop(self) -> None:
        self.refuse()

    def faults(
        self, *, drop_seconds: float, refuse_seconds: float, timeout: float = 60.0
    ) -> threading.Thread:
        """In a thread: once mail flows (the first is taken), drop connections for
        ``drop_seconds`` (longer if none was dropped yet, up to ``timeout``), then refuse them
        for ``refuse_seconds``, then take mail again. When each began is in ``marks``."""

        def run() -> None:
            deadline = time.monotonic() + timeout
            while not self.handler.message_ids and time.monotonic() < deadline:
                time.sleep(0.02)
            self.marks.append(("drops", time.monotonic()))
            self.drop()
            until = time.monotonic() + drop_seconds
            while time.monotonic() < until or (
                not self.handler.dropped and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            self.marks.append(("refuses", time.monotonic()))
            self.refuse()
            time.sleep(refuse_seconds)
            self.restore()
            self.marks.append(("back", time.monotonic()))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def smtp_section(port: int) -> str:
    return (
        f'\n[notify.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from_address = "Coaching <coaching@example.com>"\n'
    )


# -- waiting and checking --------------------------------------------------------------------
def wait_drained(url: str, timeout: float, *, poll: float = 0.25) -> dict[str, Any]:
    """Wait until no delivery is waiting, in processing or failed-to-be-retried; how long."""
    left, seconds = wait_for_zero(
        url,
        "SELECT count(*) FROM inbox WHERE status IN ('pending','processing','failed')",
        timeout,
        poll=poll,
    )
    return {"left": left, "seconds": round(seconds, 2)}


def wait_notifications(url: str, timeout: float, *, poll: float = 1.0) -> dict[str, Any]:
    """Wait until no notification is pending or failed (the worker retries failed ones after
    their backoff); how long."""
    left, seconds = wait_for_zero(
        url,
        "SELECT count(*) FROM notifications WHERE status IN ('pending','failed')",
        timeout,
        poll=poll,
    )
    return {"left": left, "seconds": round(seconds, 2)}


def _sample(items: Any, n: int = 5) -> list[Any]:
    return sorted(items)[:n]


def check(
    url: str,
    items: Sequence[Delivery],
    final: dict[str, int],
    *,
    connector: str,
    people_from: str,
    program: str,
    rule_key: str,
    low: float,
    channels: Sequence[str],
    mail_ids: Sequence[str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Figures and problems: each delivery answered 202/200 processed exactly once (see the
    module docstring). ``final`` is each delivery's last answer; ``mail_ids`` the Message-IDs
    the SMTP server took (each message must have reached it at least once)."""
    problems: list[str] = []
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            inbox_rows = conn.execute(
                text(
                    "SELECT delivery_id, status, attempts, last_error FROM inbox "
                    "WHERE connector = :c"
                ),
                {"c": connector},
            ).all()
            external = dict(
                conn.execute(
                    text(
                        "SELECT person_id, external_id FROM person_external_ids "
                        "WHERE connector = :c"
                    ),
                    {"c": people_from},
                ).all()
            )
            events = conn.execute(
                text(
                    "SELECT id, person_id, cycle, rules_status, outcome FROM review_events "
                    "WHERE source = :c"
                ),
                {"c": connector},
            ).all()
            pairings = conn.execute(
                text("SELECT id, learner_id, source_key FROM pairings WHERE program_id = :p"),
                {"p": program},
            ).all()
            sessions = conn.execute(text("SELECT pairing_id, seq FROM sessions")).all()
            goals = conn.execute(text("SELECT pairing_id, source_key, owner_id FROM goals")).all()
            notes = conn.execute(text("SELECT key, status, attempts FROM notifications")).all()
    finally:
        engine.dispose()

    by_id = {item.id: item for item in items}
    accepted = {d for d, status in final.items() if status in ACCEPTED}
    stored: dict[str, int] = {}
    for row in inbox_rows:
        stored[row.delivery_id] = stored.get(row.delivery_id, 0) + 1
    lost = accepted - set(stored)
    if lost:
        problems.append(
            f"{len(lost)} deliveries answered 202/200 are not in the inbox: {_sample(lost)}"
        )
    doubled = {d for d, n in stored.items() if n > 1}
    if doubled:
        problems.append(f"{len(doubled)} deliveries stored twice: {_sample(doubled)}")
    unknown = set(stored) - set(by_id)
    if unknown:
        problems.append(f"{len(unknown)} inbox rows nobody sent: {_sample(unknown)}")
    not_done: dict[str, int] = {}
    for row in inbox_rows:
        if row.status != "done":
            not_done[row.status] = not_done.get(row.status, 0) + 1
    if not_done:
        errors = {r.last_error for r in inbox_rows if r.status != "done"}
        problems.append(f"inbox rows not done: {not_done}; errors: {_sample(errors, 3)}")
    retried = {r.delivery_id: r.attempts for r in inbox_rows if r.attempts > 1}

    # Every stored delivery (answered 202/200 or not) is a review event, once, processed.
    expected = {(by_id[d].employee, by_id[d].cycle): by_id[d] for d in stored if d in by_id}
    seen: dict[tuple[str, str], list[Any]] = {}
    for row in events:
        seen.setdefault((external.get(row.person_id, f"?{row.person_id}"), row.cycle), []).append(
            row
        )
    missing = set(expected) - set(seen)
    if missing:
        problems.append(
            f"{len(missing)} stored deliveries have no review event: {_sample(missing)}"
        )
    extra = set(seen) - set(expected)
    if extra:
        problems.append(
            f"{len(extra)} review events no stored delivery asked for: {_sample(extra)}"
        )
    twice = {k for k, rows in seen.items() if len(rows) > 1}
    if twice:
        problems.append(f"{len(twice)} review events stored more than once: {_sample(twice)}")
    unprocessed = [
        k for k, rows in seen.items() if any(r.rules_status != "processed" for r in rows)
    ]
    if unprocessed:
        problems.append(f"{len(unprocessed)} review events not processed: {_sample(unprocessed)}")

    # Pairings: exactly one per learner with a low rating, made by one of their events.
    low_learners = {d.employee for d in expected.values() if d.rating <= low}
    made: dict[str, int] = {}  # learner -> how many events' rule paired them
    made_by_event: dict[str, int] = {}  # learner -> the event whose rule paired them
    for (employee, cycle), rows in seen.items():
        item = expected.get((employee, cycle))
        if item is None:
            continue
        for row in rows:
            outcome = (
                row.outcome if isinstance(row.outcome, dict) else json.loads(row.outcome or "{}")
            )
            fired = [r for r in outcome.get("rules", []) if isinstance(r, dict)]
            if item.rating > low and fired:
                problems.append(f"a rule fired on the high rating of {employee} ({cycle})")
            if item.rating <= low:
                result = str(fired[0].get("result")) if len(fired) == 1 else ""
                # A learner's later low rating finds them paired, or within the rule's cooldown.
                if result == "paired":
                    made[employee] = made.get(employee, 0) + 1
                    made_by_event[employee] = row.id
                elif result != "already paired" and not result.startswith("cooldown"):
                    problems.append(f"the low rating of {employee} ({cycle}) gave {fired}")
    twice_made = {k for k, n in made.items() if n > 1}
    if twice_made:
        problems.append(
            f"{len(twice_made)} learners were paired by two events: {_sample(twice_made)}"
        )
    by_learner: dict[str, list[Any]] = {}
    for p in pairings:
        by_learner.setdefault(external.get(p.learner_id, f"?{p.learner_id}"), []).append(p)
    if set(by_learner) != low_learners:
        problems.append(
            "learners with a pairing differ from those with a low rating: without "
            f"{_sample(low_learners - set(by_learner))}, unexpected "
            f"{_sample(set(by_learner) - low_learners)}"
        )
    more = {k for k, v in by_learner.items() if len(v) > 1}
    if more:
        problems.append(f"{len(more)} learners have more than one pairing: {_sample(more)}")
    for learner, rows in by_learner.items():
        for p in rows:
            if p.source_key != f"rule:{made_by_event.get(learner)}:0":
                problems.append(
                    f"pairing {p.id} of {learner} has source_key {p.source_key!r}; the event "
                    f"that paired them is {made_by_event.get(learner)}"
                )

    # Sessions 1..N once each, the same N for every pairing (one program, one plan).
    seqs: dict[int, list[int]] = {}
    for row in sessions:
        seqs.setdefault(row.pairing_id, []).append(row.seq)
    ids = {p.id for p in pairings}
    lengths = {len(v) for v in seqs.values()}
    bad = [pid for pid, v in seqs.items() if sorted(v) != list(range(1, len(v) + 1))]
    if bad:
        problems.append(f"{len(bad)} pairings whose sessions are not 1..N once each: {bad[:5]}")
    if set(seqs) != ids or len(lengths) > 1 or 0 in lengths:
        problems.append(
            f"sessions per pairing {sorted(lengths)} for {len(seqs)} of {len(ids)} pairings"
        )

    # One goal per pairing, keyed by the rule and the pairing, owned by the learner.
    want_goals = {f"rule:{rule_key}:pairing:{pid}:goal" for pid in ids}
    goal_keys = [g.source_key for g in goals]
    if len(goal_keys) != len(want_goals) or set(goal_keys) != want_goals:
        problems.append(
            f"{len(goal_keys)} goals for {len(ids)} pairings: missing "
            f"{_sample(want_goals - set(goal_keys))}, unexpected "
            f"{_sample(set(goal_keys) - want_goals)}"
        )
    owners = {p.id: p.learner_id for p in pairings}
    if any(owners.get(g.pairing_id) != g.owner_id for g in goals):
        problems.append("a goal is not owned by its pairing's learner")

    # One message per pairing, side and channel, sent.
    want_keys = {
        f"pairing:{pid}:{side}:{ch}"
        for pid in ids
        for side in ("learner", "guide")
        for ch in channels
    }
    keys = [n.key for n in notes]
    if len(keys) != len(want_keys) or set(keys) != want_keys:
        problems.append(
            f"{len(keys)} messages for {len(want_keys)} expected: missing "
            f"{_sample(want_keys - set(keys))}, unexpected {_sample(set(keys) - want_keys)}"
        )
    unsent: dict[str, int] = {}
    for n in notes:
        if n.status != "sent":
            unsent[n.status] = unsent.get(n.status, 0) + 1
    if unsent:
        problems.append(f"messages not sent: {unsent}")
    mail_figures: dict[str, Any] = {}
    if mail_ids is not None:
        distinct = set(mail_ids)
        mail_figures = {"mails_taken": len(mail_ids), "distinct_message_ids": len(distinct)}
        if len(distinct) != len(keys):
            problems.append(
                f"the SMTP server took {len(distinct)} distinct messages for {len(keys)} "
                "notifications"
            )

    figures = {
        "accepted": len(accepted),
        "stored": len(stored),
        "stored_not_accepted": len(set(stored) - accepted),
        "lost": len(lost),
        "processed": sum(1 for r in inbox_rows if r.status == "done"),
        "processed_more_than_one_attempt": len(retried),
        "review_events": len(events),
        "learners_with_low_rating": len(low_learners),
        "pairings": len(pairings),
        "sessions": len(sessions),
        "goals": len(goals),
        "notifications": len(notes),
        "notifications_sent_after_a_failure": sum(1 for n in notes if (n.attempts or 0) > 1),
        **mail_figures,
    }
    return figures, problems
