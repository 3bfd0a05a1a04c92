"""Faults under load (bounded): a steady stream of signed deliveries to a real ``serve`` with two
``coachbridge worker`` processes on PostgreSQL, while every connection of the test database is
terminated, the database refuses connections for a while, a worker is SIGKILLed and restarted
and the SMTP server drops and then refuses connections; finally ``serve`` is stopped with
SIGTERM while requests are in flight. Every delivery answered 202/200 must be processed exactly
once. ``benchmarks/faults/run.py`` is the same run, larger and measured (the shared driver and
check are in ``benchmarks/faults/harness.py``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.programs.automation import dispatcher_for

from benchmarks.faults import harness
from benchmarks.webhooks.loadgen import make_requests
from tests.prerequisites import pg_admin_url
from tests.webhooks.conftest import ENV, SECRET, make_env, people_csv, sync_people

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LEARNERS, GUIDES, CAPACITY = 300, 30, 5
#: Deliveries per second, and at most this many: the stream ends a second after the last fault.
RATE, MOST = 25.0, 1000


def test_every_accepted_delivery_is_processed_once_through_faults(tmp_path, pg_url, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    smtp = harness.FlakySmtp()
    deployment = None
    admin = pg_admin_url()
    try:
        env = make_env(
            tmp_path,
            pg_url,
            capacity=CAPACITY,
            people=people_csv(LEARNERS, GUIDES),
            extra=harness.smtp_section(smtp.port),
        )
        sync_people(env)
        # Random learners and ratings from a fixed seed; 1 and 2 of 5 are low (rule: <= 0.4).
        items = harness.deliveries(make_requests(MOST + 4, "signed", 16, SECRET, LEARNERS))
        streamed, in_flight = items[:MOST], items[MOST:]
        logs = tmp_path / "logs"
        logs.mkdir()
        deployment = harness.Deployment(
            config=env.path,
            folder=logs,
            env={**os.environ, **ENV},
            serve_args=["--processes", "2"],
            worker_args=["--lease", "3", "--poll", "0.2", "--batch", "5"],
        )
        deployment.start_serve()
        deployment.wait_started([deployment.start_worker(), deployment.start_worker()])
        deployment.supervise(workers=2)  # a killed worker is started again
        serving = deployment.serving_processes()
        assert len(serving) == 2

        stream = harness.Stream(deployment.base + "/webhooks/reviews", streamed, rate=RATE)
        timeline = harness.Timeline(stream)
        stream.start()
        mail_faults = smtp.faults(drop_seconds=1.5, refuse_seconds=1.5)
        try:
            timeline.at(0.8, "terminate", lambda: harness.terminate_backends(pg_url))
            timeline.at(
                1.5,
                "worker killed",
                lambda: deployment.kill_worker_at_work(pg_url, "performance-coaching"),
            )
            timeline.after(0.5, "outage", lambda: harness.refuse_database(pg_url, admin))
            timeline.after(1.5, "outage ends", lambda: harness.allow_database(pg_url, admin))
            timeline.after(0.5, "terminate again", lambda: harness.terminate_backends(pg_url))
            mail_faults.join(timeout=60)
            timeline.after(1.0, "stream ends", stream.finish)
        finally:
            harness.allow_database(pg_url, admin)  # whatever failed, never leave it refused
        assert stream.join(timeout=120), "the sender did not finish"
        sent = stream.figures()

        # The sender retried until every delivery was accepted; while the database refused
        # connections it was answered 503, never a 500 and never a dropped connection.
        assert sent["given_up"] == 0, sent
        assert set(sent["answers_by_status"]) <= {"200", "202", "503"}, (sent, stream.unanswered())
        outage = stream.answers_between(timeline.when("outage"), timeline.when("outage ends"))
        assert outage.get("503", 0) > 0, (outage, timeline.marks)
        # serve stayed up through all of it: the same serving processes, answering.
        assert deployment.serve is not None and deployment.serve.poll() is None
        assert deployment.serving_processes() == serving
        assert deployment.healthy()

        # SIGTERM while requests are in flight: each is answered, then serve exits cleanly.
        stopped = harness.sigterm_in_flight(deployment, in_flight)
        assert set(stopped["answers"].values()) == {202}, (stopped, deployment.logs()[-6000:])

        drained = harness.wait_drained(pg_url, timeout=60)
        assert drained["left"] == 0, deployment.logs()[-3000:]
        assert deployment.serve_exit()["serve_exit_code"] == 0, deployment.logs()[-3000:]
        assert deployment.killed_serving_processes() == []  # stopped, not killed
        # Messages that failed while the SMTP server was away are retried after their backoff
        # (minutes); here that time is skipped by retrying them as due an hour from now.
        dispatcher = dispatcher_for(env.runtime())
        dispatcher.send_pending(env.db)
        dispatcher.retry_failed(env.db, now=datetime.now(UTC) + timedelta(hours=1))
        figures, problems = harness.check(
            pg_url,
            [*stream.sent(), *in_flight],
            {**stream.final(), **stopped["answers"]},
            connector="reviews",
            people_from="hr",
            program="performance-coaching",
            rule_key="rules[0]",
            low=0.4,
            channels=["smtp"],
            mail_ids=smtp.handler.message_ids,
        )
        assert problems == [], "\n".join([*problems, str(figures), str(timeline.marks)])
        # The faults really happened: a worker's claims were taken over, mails were dropped.
        assert figures["accepted"] == sent["deliveries"] + len(in_flight)
        assert figures["pairings"] > 10
        assert smtp.handler.dropped > 0 and figures["notifications_sent_after_a_failure"] > 0
        assert figures["processed_more_than_one_attempt"] > 0
        assert timeline.marks[1]["result"]["claims_stranded"] > 0  # the kill hit a worker at work
        assert deployment.restarts  # and the supervisor started another
        env.db.dispose()
    finally:
        if deployment is not None:
            deployment.stop()
        smtp.stop()
