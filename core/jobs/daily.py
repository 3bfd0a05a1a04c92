"""The daily run: pairings whose term is over completed, waiting learners tried again, the
health checks, intake reminders, and the inbox purge. The worker runs it once a day; ``coachbridge nudge`` by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from coachbridge.context import Context
from coachbridge.hris.privacy import purge_inbox
from coachbridge.jobs.health import Nudge, run_health_checks
from coachbridge.pairings.lifecycle import complete_finished_pairings, finished_pairings
from coachbridge.programs.choice import ChoiceRun, run_choices
from coachbridge.programs.intake import SentInvitation, send_reminders
from coachbridge.programs.waiting import retry_waiting_learners
from coachbridge.store.programs import ensure_program_row


class Daily(NamedTuple):
    """What one daily run did."""

    nudges: list[Nudge]
    purged: int  # processed raw deliveries whose bodies were purged
    completed: int  # pairings whose term ended
    paired: int = 0  # learners a rule had found no guide for, paired now
    intake_reminders: tuple[SentInvitation, ...] = ()  # intake reminders sent (or due, dry)
    choices: ChoiceRun | None = None  # offers and requests expired, reminded, re-matched


def run_daily(app: Context, *, now: datetime, dry_run: bool = False) -> Daily:
    """The worker's daily job (and ``coachbridge nudge``): offers and requests whose time is
    up are closed (``programs.choice.run_choices``), pairings whose term is over are
    completed (``pairings.lifecycle.complete_finished_pairings``; their sessions left after the term
    cancelled), learners rules enrolled without a guide are tried again
    (``programs.waiting.retry_waiting_learners``), the health checks run on the rest, then the inbox
    purge (``[server] inbox_retention_days``). A dry run stores nothing: it counts the pairings
    it would complete and lists the messages it would send.
    """
    completed = 0
    with app.database().transaction() as s:
        for program in app.config.programs.values():
            if dry_run:
                completed += len(finished_pairings(s, program, now))
                continue
            ensure_program_row(s, program)
            completed += complete_finished_pairings(s, program, now)
    # Offers and requests whose time is up: the held guide is taken, or the learner re-matched;
    # reminders at half time; anything not mailed yet is mailed.
    choices = run_choices(app, now=now, dry_run=dry_run)
    # Completions free guides' places: learners rules enrolled without a guide may pair now.
    paired = 0 if dry_run else retry_waiting_learners(app, now=now)
    nudges = run_health_checks(app, now=now, dry_run=dry_run)
    # People invited to an intake questionnaire who have not answered: at most two reminders.
    reminders = send_reminders(app, now=now, dry_run=dry_run)
    if dry_run:
        return Daily(nudges, 0, completed, intake_reminders=tuple(reminders), choices=choices)
    with app.database().transaction() as s:
        purged = purge_inbox(s, now=now, retention_days=app.config.server.inbox_retention_days)
    return Daily(nudges, purged, completed, paired, tuple(reminders), choices)
