"""Mutual choice before a pairing starts: answering offers and requests, and what follows.

The rows are written by ``coachbridge.matching.offers`` when a program with ``choice`` is
matched. Here they are answered (``accept``, ``decline``: the CLI, and the participant pages
``/offers/<token>`` and ``/requests/<token>``), expired and reminded by the daily run
(``run_choices``), and mailed to the person who must answer (``mail_choices``).

* Accepting an offer takes that guide: the held (``offered``) pairing becomes ``active``, or
  ``requested`` when the program's ``choice`` is ``both``; picking an alternative withdraws the
  held pairing and pairs the learner with the alternative's guide, whose place then disappears
  from other learners' offers once the guide is full.
* Accepting a request makes the pairing ``active``. Declining it (or letting it expire)
  withdraws the pairing and re-matches that learner alone, exactly, the declining guide
  excluded (an earlier pairing of the two is never proposed again), at most ``max_requests``
  times; then the program owner is told.
* A pairing that becomes ``active`` gets at once what a new pairing gets from the rules:
  sessions planned, the rule's goal, the pairing messages with their invitations.

Every answer runs in one transaction that first takes the program's row lock (PostgreSQL; on
SQLite the claim below takes the database's write lock) and then claims the option with a
conditional update (``status = 'open'`` and not expired): of two answers to the same offer, the
later one finds it answered (``LinkUsed``, HTTP 409) and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from coachbridge.context import Context
from coachbridge.domain import plain_text
from coachbridge.domain.pairing import OPEN, PairingStatus
from coachbridge.domain.program import Choice, Program
from coachbridge.links import LinkError, LinkExpired, LinkForged, LinkSigner, LinkUsed
from coachbridge.matching.offers import OFFER, REQUEST, make_request
from coachbridge.matching.pool import free_capacity
from coachbridge.matching.service import (
    MatchOutcome,
    announce_after_commit,
    match_one,
    match_program,
)
from coachbridge.notify.base import Message
from coachbridge.notify.dispatch import MAX_ATTEMPTS
from coachbridge.programs.rules import Effects, finish_activated
from coachbridge.store.audit import audit
from coachbridge.store.chunks import in_chunks
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import (
    EnrollmentRow,
    NotificationRow,
    OfferRow,
    PairingRow,
    PersonRow,
    ProgramRow,
)
from sqlalchemy import select, update
from sqlalchemy.orm import Session

__all__ = [
    "MAX_REASON",
    "Answer",
    "ChoiceRun",
    "OfferPage",
    "RequestPage",
    "accept",
    "answer_offers_link",
    "answer_request_link",
    "check_form_nonce",
    "decline",
    "form_nonce",
    "list_offers",
    "mail_choices",
    "match_and_offer",
    "offers_page",
    "offers_token",
    "request_page",
    "request_token",
    "run_choices",
]

log = logging.getLogger(__name__)

MAX_REASON = 1000
#: The salt of offer and request links: never change it (links already mailed carry it). Their
#: forms' nonces are derived as the feedback form's are, with its salt.
LINKS = LinkSigner(
    salt="coachbridge.programs.choice-link",
    form_salt=b"coachbridge.pairings.feedback-form",
    what="offer and request links",
    max_length=1000,
)
OFFER_STATUSES = ("open", "accepted", "declined", "expired", "withdrawn")


# -- links -----------------------------------------------------------------------------------
def offers_token(secret_key: Any, program_id: str, learner_id: int) -> str:
    """The learner's one link to their offers in a program (it lasts as long as they do)."""
    return LINKS.sign(secret_key, {"k": "o", "g": program_id, "p": int(learner_id)})


def request_token(secret_key: Any, offer_id: int) -> str:
    """The guide's link to one request."""
    return LINKS.sign(secret_key, {"k": "r", "o": int(offer_id)})


def _read(secret_key: Any, token: str) -> dict[str, Any]:
    data = LINKS.read(secret_key, token)
    if not isinstance(data, dict):
        raise LinkForged("this link is not valid")
    return data


def _url(public_url: str, kind: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/{kind}/{token}"


def _option_url(ctx: Context, row: OfferRow) -> str | None:
    secret = ctx.config.server.secret_key
    if secret is None:
        return None
    if row.kind == OFFER:
        return _url(
            ctx.config.server.public_url,
            "offers",
            offers_token(secret, row.program_id, row.learner_id),
        )
    return _url(ctx.config.server.public_url, "requests", request_token(secret, row.id))


def form_nonce(secret_key: Any, token: str) -> str:
    """The hidden form field a post from ``token``'s page must carry."""
    return LINKS.form_nonce(secret_key, token)


def check_form_nonce(secret_key: Any, token: str, value: str | None) -> bool:
    """True when ``value`` is the form nonce of ``token``'s page (constant-time; any text)."""
    return LINKS.check_form_nonce(secret_key, token, value)


# -- listing ---------------------------------------------------------------------------------
def list_offers(
    ctx: Context, program_id: str | None = None, *, closed: bool = False
) -> list[dict[str, Any]]:
    """Open offers and requests (``closed``: every one), oldest first, with their links."""
    if program_id is not None:
        ctx.config.program(program_id)
    with ctx.database().transaction() as s:
        stmt = select(OfferRow).order_by(OfferRow.id)
        if program_id is not None:
            stmt = stmt.where(OfferRow.program_id == program_id)
        if not closed:
            stmt = stmt.where(OfferRow.status == "open")
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "program": r.program_id,
                "learner_id": r.learner_id,
                "guide_id": r.guide_id,
                "rank": r.rank,
                "status": r.status,
                "expires_at": r.expires_at,
                "url": _option_url(ctx, r),
            }
            for r in s.scalars(stmt)
        ]


def match_and_offer(ctx: Context, program_id: str, **options: Any) -> MatchOutcome:
    """``coachbridge match``: ``matching.service.match_program``, then, when the program has a
    ``choice`` and pairings were stored, the new offers and requests mailed."""
    outcome = match_program(ctx, program_id, **options)
    if outcome.created and ctx.config.program(program_id).choice is not Choice.NONE:
        mail_choices(ctx, now=datetime.now(UTC))
    return outcome


# -- answering -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """What one answer did."""

    offer_id: int
    kind: str
    status: str  # the offer's new status
    pairing_id: int | None  # the pairing it made or moved on (None: withdrawn, not re-matched)
    pairing_status: str | None
    note: str  # one line for people: what happens next


def _program(ctx: Context, program_id: str) -> Program:
    program = ctx.config.programs.get(program_id)
    if program is None:
        raise LinkError(f"program {program_id!r} is no longer configured")
    return program


def _lock(s: Session, program: Program) -> None:
    """The program's row lock (PostgreSQL), taken before any claim: the same order as the
    rules (``programs.rules``), so answers and matching of one program never deadlock."""
    ensure_program_row(s, program)
    s.execute(select(ProgramRow.id).where(ProgramRow.id == program.id).with_for_update())


def _claim(
    s: Session, offer_id: int, status: str, now: datetime, actor: str, **values: Any
) -> OfferRow:
    """Close one open, unexpired option as ``status``, or say why it cannot be."""
    done = s.execute(
        update(OfferRow)
        .where(OfferRow.id == offer_id, OfferRow.status == "open", OfferRow.expires_at > now)
        .values(status=status, answered_at=now, answered_by=actor[:200], **values)
        .execution_options(synchronize_session=False)
    )
    row = s.execute(
        select(OfferRow).where(OfferRow.id == offer_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise LinkForged(f"unknown offer id {offer_id}")
    if done.rowcount != 1:
        if row.status == "expired":
            raise LinkExpired(f"offer {offer_id} expired at {row.expires_at.isoformat()}")
        if row.status != "open":
            raise LinkUsed(f"offer {offer_id} has already been answered ({row.status})")
        raise LinkExpired(f"offer {offer_id} expired at {row.expires_at.isoformat()}")
    return row


def _pairing(s: Session, pairing_id: int | None) -> PairingRow | None:
    if pairing_id is None:
        return None
    return s.execute(
        select(PairingRow)
        .where(PairingRow.id == pairing_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _withdraw_pairing(
    s: Session, pairing: PairingRow, reason: str, now: datetime, actor: str
) -> None:
    pairing.status = PairingStatus.WITHDRAWN.value
    pairing.end_reason = reason[:500]
    pairing.ended_at = now
    audit(s, actor, "withdraw_pairing", "pairing", pairing.id, reason=reason[:200])


def _close_others(s: Session, row: OfferRow, status: str, now: datetime) -> None:
    """The round's other open options close with ``row``'s answer."""
    s.execute(
        update(OfferRow)
        .where(OfferRow.round_id == row.round_id, OfferRow.id != row.id, OfferRow.status == "open")
        .values(status=status, answered_at=now)
        .execution_options(synchronize_session=False)
    )


def _activate(
    s: Session,
    ctx: Context,
    program: Program,
    pairing: PairingRow,
    now: datetime,
    effects: Effects,
    actor: str,
) -> None:
    """The pairing starts: sessions, goal and messages at once, as the rules do."""
    from coachbridge.notify.dispatch import Dispatcher, build_notifiers
    from coachbridge.pairings.scheduling import schedule_pairings

    pairing.status = PairingStatus.ACTIVE.value
    pairing.activated_at = now
    s.flush()
    audit(s, actor, "activate_pairing", "pairing", pairing.id, program=program.id)
    dispatcher = Dispatcher(
        build_notifiers(ctx.config.notify, ctx.registry.notifiers, ctx.config.label)
    )
    if not finish_activated(s, ctx, pairing, now, dispatcher, effects):
        effects.sessions += [r.id for r in schedule_pairings(s, program, [pairing.id], now=now)]
        effects.notification_keys += dispatcher.queue_pairing(
            s, pairing.id, {"learner": pairing.learner_id, "guide": pairing.guide_id}
        )
    announce_after_commit(s, ctx.registry, [pairing])


def _move_on(
    s: Session,
    ctx: Context,
    program: Program,
    pairing: PairingRow,
    now: datetime,
    effects: Effects,
    actor: str,
) -> None:
    """The learner's pick is made: ask the guide (``both``) or start the pairing."""
    if program.choice is Choice.BOTH:
        pairing.status = PairingStatus.REQUESTED.value
        s.flush()
        make_request(s, program, pairing, now=now, actor=actor)
    else:
        _activate(s, ctx, program, pairing, now, effects, actor)


def _attempts(s: Session, program: Program, learner_id: int) -> int:
    """How many times the learner has been matched under choice: requests when a guide must
    accept, else rounds of offers."""
    kind, rank = (
        (REQUEST, None) if program.choice in (Choice.GUIDE_ACCEPTS, Choice.BOTH) else (OFFER, 1)
    )
    stmt = select(OfferRow.id).where(
        OfferRow.program_id == program.id, OfferRow.learner_id == learner_id, OfferRow.kind == kind
    )
    if rank is not None:
        stmt = stmt.where(OfferRow.rank == rank)
    return len(list(s.scalars(stmt)))


def _rematch(
    s: Session,
    ctx: Context,
    program: Program,
    old: PairingRow | None,
    learner_id: int,
    now: datetime,
    actor: str,
    last_offer: int,
) -> PairingRow | None:
    """Match the learner alone again (the guides they had are excluded), up to
    ``max_requests`` times; then the owner is told. Returns the new pairing."""
    learner = s.get(PersonRow, learner_id)
    if learner is None or learner.forgotten or learner.status != "active":
        return None  # the learner left or was erased: nobody to pair, nothing to tell
    if _attempts(s, program, learner_id) >= program.max_requests:
        _tell_owner(s, program, learner_id, last_offer, now)
        return None
    key = old.source_key if old is not None else None
    if old is not None:
        old.source_key = None  # the new pairing carries the rule that made the old one
        s.flush()
    row = match_one(s, program, learner_id, ctx.registry, now=now, actor=actor)
    if row is None:
        _tell_owner(s, program, learner_id, last_offer, now)
        return None
    row.source_key = key
    s.flush()
    return row


def _tell_owner(
    s: Session, program: Program, learner_id: int, offer_id: int, now: datetime
) -> None:
    audit(
        s, "choice", "choice_exhausted", "person", learner_id, program=program.id, offer_id=offer_id
    )
    if not program.owner:
        return
    key = f"choice:owner:{offer_id}"
    if s.scalars(select(NotificationRow.id).where(NotificationRow.key == key)).first() is None:
        s.add(
            NotificationRow(
                key=key,
                channel="choice",
                recipient_id=None,
                subject=f"{program.name}: a learner is still without a guide",
                status="pending",
                created_at=now,
            )
        )


def _accept_in(
    s: Session, ctx: Context, row: OfferRow, now: datetime, actor: str, effects: Effects
) -> Answer:
    program = _program(ctx, row.program_id)
    if row.kind == REQUEST:
        pairing = _pairing(s, row.pairing_id)
        if pairing is None or pairing.status != PairingStatus.REQUESTED.value:
            raise LinkUsed(f"offer {row.id}: its pairing is no longer waiting for an answer")
        _activate(s, ctx, program, pairing, now, effects, actor)
        return Answer(
            row.id, row.kind, "accepted", pairing.id, pairing.status, "the pairing has started"
        )
    first = s.get(OfferRow, row.round_id) if row.round_id is not None else None
    held = _pairing(s, first.pairing_id if first is not None else None)
    if row.rank == 1:
        if held is None or held.status != PairingStatus.OFFERED.value:
            raise LinkUsed(f"offer {row.id}: this place is no longer held")
        pairing = held
    else:
        other = s.scalar(
            select(PairingRow.id).where(
                PairingRow.program_id == program.id,
                PairingRow.learner_id == row.learner_id,
                PairingRow.status.in_(OPEN),
                PairingRow.id != (held.id if held is not None else -1),
            )
        )
        if other is not None:
            raise LinkUsed(f"offer {row.id}: the learner has a guide already")
        if free_capacity(s, program).get(row.guide_id, 0) <= 0:
            raise LinkUsed(f"offer {row.id}: that guide's last place was just taken")
        # The rule that made the round (its goal, its number of sessions) goes with the pick,
        # also when the held place was declined before.
        key = held.source_key if held is not None else None
        if held is not None:
            held.source_key = None
            if held.status == PairingStatus.OFFERED.value:
                _withdraw_pairing(s, held, "the learner chose another guide", now, actor)
            s.flush()
        pairing = PairingRow(
            program_id=program.id,
            learner_id=row.learner_id,
            guide_id=row.guide_id,
            score=row.score,
            breakdown=dict(row.breakdown or {}),
            status=PairingStatus.OFFERED.value,
            source_key=key,
            created_at=now,
        )
        s.add(pairing)
        s.flush()
        audit(
            s, actor, "create_pairing", "pairing", pairing.id, program=program.id, status="offered"
        )
    row.pairing_id = pairing.id
    _close_others(s, row, "withdrawn", now)
    _move_on(s, ctx, program, pairing, now, effects, actor)
    if row.rank > 1 and free_capacity(s, program).get(row.guide_id, 0) <= 0:
        # The first learner to pick an alternative gets it; it disappears from other offers.
        gone = s.execute(
            select(OfferRow.id, OfferRow.round_id, OfferRow.learner_id).where(
                OfferRow.program_id == program.id,
                OfferRow.guide_id == row.guide_id,
                OfferRow.kind == OFFER,
                OfferRow.rank > 1,
                OfferRow.status == "open",
            )
        ).all()
        for ids in in_chunks([g.id for g in gone]):
            s.execute(
                update(OfferRow)
                .where(OfferRow.id.in_(ids))
                .values(status="withdrawn", answered_at=now)
                .execution_options(synchronize_session=False)
            )
        for offer_id, round_id, learner_id in gone:
            _rematch_if_left_without(s, ctx, program, round_id, learner_id, now, actor, offer_id)
    audit(s, actor, "accept_offer", "offer", row.id, program=program.id, rank=row.rank)
    note = (
        "the guide has been asked to accept"
        if pairing.status == "requested"
        else "the pairing has started"
    )
    return Answer(row.id, row.kind, "accepted", pairing.id, pairing.status, note)


def _rematch_if_left_without(
    s: Session,
    ctx: Context,
    program: Program,
    round_id: int | None,
    learner_id: int,
    now: datetime,
    actor: str,
    last_offer: int,
) -> None:
    """A learner's round lost an option (its guide filled up). With none left open (they
    had declined the place held for them), they are matched again, as after declining every
    offer: nobody is left waiting on a page with nothing to pick."""
    if round_id is None:
        return
    still = s.scalars(
        select(OfferRow.id).where(OfferRow.round_id == round_id, OfferRow.status == "open")
    ).first()
    if still is not None:
        return
    first = s.get(OfferRow, round_id)
    held = _pairing(s, first.pairing_id if first is not None else None)
    _rematch(s, ctx, program, held, learner_id, now, actor, last_offer)


def _decline_in(
    s: Session,
    ctx: Context,
    row: OfferRow,
    now: datetime,
    actor: str,
    effects: Effects,
) -> Answer:
    del effects
    program = _program(ctx, row.program_id)
    audit(s, actor, "decline_offer", "offer", row.id, program=program.id, kind=row.kind)
    pairing = _pairing(s, row.pairing_id)
    if row.kind == OFFER:
        if pairing is not None and pairing.status == PairingStatus.OFFERED.value:
            _withdraw_pairing(s, pairing, "the learner declined this guide", now, actor)
        still = s.scalars(
            select(OfferRow.id).where(OfferRow.round_id == row.round_id, OfferRow.status == "open")
        ).first()
        if still is not None:
            return Answer(row.id, row.kind, "declined", None, None, "the other offers stay open")
        # The round's held pairing (declined now or before) carries the rule that made it.
        first = s.get(OfferRow, row.round_id) if row.round_id is not None else None
        pairing = _pairing(s, first.pairing_id if first is not None else None)
    elif pairing is not None and pairing.status == PairingStatus.REQUESTED.value:
        _withdraw_pairing(s, pairing, "the guide declined", now, actor)
    s.flush()
    new = _rematch(s, ctx, program, pairing, row.learner_id, now, actor, row.id)
    if new is None:
        return Answer(row.id, row.kind, "declined", None, None, "not re-matched: the owner is told")
    return Answer(
        row.id,
        row.kind,
        "declined",
        new.id,
        new.status,
        f"re-matched: pairing {new.id} is {new.status}",
    )


def _answer(
    ctx: Context,
    offer_id: int,
    accept_it: bool,
    *,
    reason: str | None,
    actor: str,
    now: datetime,
    check: Any = None,
) -> Answer:
    if not _row_id(offer_id):
        raise LinkForged(f"unknown offer id {offer_id}")
    db = ctx.database()
    effects = Effects()
    with db.transaction() as s:
        # Read outside the claim (no lock yet): which program's lock to take.
        program_id = s.scalar(select(OfferRow.program_id).where(OfferRow.id == offer_id))
        if program_id is None:
            raise LinkForged(f"unknown offer id {offer_id}")
        program = _program(ctx, program_id)
        _lock(s, program)
        values: dict[str, Any] = {}
        if not accept_it:
            values["reason"] = reason
        row = _claim(s, offer_id, "accepted" if accept_it else "declined", now, actor, **values)
        if check is not None:
            check(row)
        answer = (_accept_in if accept_it else _decline_in)(s, ctx, row, now, actor, effects)
    _after(ctx, effects, now)
    return answer


def _row_id(value: int) -> bool:
    """Whether ``value`` can be a row id at all (PostgreSQL's are 32-bit integers: a larger
    number in a query is an error of the database, not an unknown id)."""
    return 0 < value < 2**31


def _clean_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    try:
        reason = plain_text(reason.strip())  # a browser's CR LF counts as one character
    except ValueError as exc:
        raise LinkError(f"reason: {exc}") from None
    if len(reason) > MAX_REASON:
        raise LinkError(f"reason: longer than {MAX_REASON} characters")
    return reason


def accept(
    ctx: Context, offer_id: int, *, actor: str = "cli", now: datetime | None = None
) -> Answer:
    """Accept offer or request ``offer_id`` (HR answering for the person, or their link)."""
    return _answer(ctx, offer_id, True, reason=None, actor=actor, now=now or datetime.now(UTC))


def decline(
    ctx: Context,
    offer_id: int,
    *,
    reason: str | None = None,
    actor: str = "cli",
    now: datetime | None = None,
) -> Answer:
    """Decline offer or request ``offer_id``, with an optional reason for the program owner."""
    reason = _clean_reason(reason)
    return _answer(ctx, offer_id, False, reason=reason, actor=actor, now=now or datetime.now(UTC))


def _after(ctx: Context, effects: Effects, now: datetime) -> None:
    """After the commit: the pairing messages, then the new offers' and requests' mail."""
    if effects.notification_keys:
        from coachbridge.notify.dispatch import Dispatcher, build_notifiers

        dispatcher = Dispatcher(
            build_notifiers(ctx.config.notify, ctx.registry.notifiers, ctx.config.label)
        )
        keys = effects.notification_keys
        dispatcher.send_pending(ctx.database(), keys, limit=len(keys))
    mail_choices(ctx, now=now)


# -- the pages -------------------------------------------------------------------------------
@dataclass(frozen=True)
class OfferPage:
    """What ``/offers/<token>`` shows: the learner's open offers in one program."""

    learner_name: str
    program_name: str
    guide_word: str
    expires_at: datetime
    options: list[dict[str, Any]]  # id, rank, guide_name, job_title, department


@dataclass(frozen=True)
class RequestPage:
    """What ``/requests/<token>`` shows: the learner a guide is asked to take on."""

    guide_name: str
    program_name: str
    learner_name: str
    learner_title: str | None
    learner_department: str | None
    expires_at: datetime


def _offers_link(ctx: Context, token: str) -> tuple[str, int]:
    data = _read(ctx.config.server.secret_key, token)
    if (
        data.get("k") != "o"
        or not isinstance(data.get("g"), str)
        or not isinstance(data.get("p"), int)
    ):
        raise LinkForged("this link is not valid")
    return data["g"], data["p"]


def _state(rows: list[OfferRow], now: datetime) -> list[OfferRow]:
    """The rows still open; raise 410/409/404 when none is."""
    if not rows:
        raise LinkForged("this link is not valid")
    live = [r for r in rows if r.status == "open" and r.expires_at > now]
    if live:
        return live
    latest = max(rows, key=lambda r: (r.round_id or 0, r.id))
    last_round = [r for r in rows if r.round_id == latest.round_id]
    if any(
        r.status == "expired" or (r.status == "open" and r.expires_at <= now) for r in last_round
    ) and not any(r.status in ("accepted", "declined") for r in last_round):
        raise LinkExpired("the time to answer is over")
    raise LinkUsed("this has already been answered")


def offers_page(ctx: Context, token: str, *, now: datetime | None = None) -> OfferPage:
    """The learner's open offers, or ``LinkForged``/``LinkExpired``/``LinkUsed``."""
    now = now or datetime.now(UTC)
    program_id, learner_id = _offers_link(ctx, token)
    with ctx.database().transaction() as s:
        learner = s.get(PersonRow, learner_id)
        program = ctx.config.programs.get(program_id)
        if learner is None or learner.forgotten or program is None:
            raise LinkForged("this link is not valid")
        rows = list(
            s.scalars(
                select(OfferRow).where(
                    OfferRow.program_id == program_id,
                    OfferRow.learner_id == learner_id,
                    OfferRow.kind == OFFER,
                )
            )
        )
        live = sorted(_state(rows, now), key=lambda r: r.rank)
        guides = {
            p.id: p
            for p in s.scalars(
                select(PersonRow).where(PersonRow.id.in_([r.guide_id for r in live]))
            )
        }
        options = [
            {
                "id": r.id,
                "rank": r.rank,
                "guide_name": guides[r.guide_id].name if r.guide_id in guides else "",
                "job_title": guides[r.guide_id].job_title if r.guide_id in guides else None,
                "department": guides[r.guide_id].department if r.guide_id in guides else None,
            }
            for r in live
        ]
        return OfferPage(
            learner.name,
            program.name,
            "mentor" if program.kind.value == "mentoring" else "coach",
            min(r.expires_at for r in live),
            options,
        )


def answer_offers_link(
    ctx: Context, token: str, offer_id: object, *, now: datetime | None = None
) -> Answer:
    """The learner picks ``offer_id`` on their page (it must be one of their open offers)."""
    now = now or datetime.now(UTC)
    program_id, learner_id = _offers_link(ctx, token)
    try:
        chosen = int(str(offer_id))
    except (TypeError, ValueError):
        raise LinkError("offer: choose one of the offers") from None
    if not _row_id(chosen):
        raise LinkError("offer: choose one of the offers")

    def mine(row: OfferRow) -> None:
        if row.kind != OFFER or row.program_id != program_id or row.learner_id != learner_id:
            raise LinkError("offer: choose one of the offers")

    # An option of this learner's page only: another program's, even an answered one, is not
    # on it (so "already answered" would be the wrong answer); checked again in the claim.
    with ctx.database().transaction() as s:
        found = s.execute(
            select(OfferRow.kind, OfferRow.program_id, OfferRow.learner_id).where(
                OfferRow.id == chosen
            )
        ).first()
    if found is None or tuple(found) != (OFFER, program_id, learner_id):
        raise LinkError("offer: choose one of the offers")
    return _answer(
        ctx, chosen, True, reason=None, actor=f"link:learner:{learner_id}", now=now, check=mine
    )


def _request_link(ctx: Context, token: str) -> int:
    data = _read(ctx.config.server.secret_key, token)
    if data.get("k") != "r" or not isinstance(data.get("o"), int):
        raise LinkForged("this link is not valid")
    return int(data["o"])


def request_page(ctx: Context, token: str, *, now: datetime | None = None) -> RequestPage:
    """The request a guide's link names, or ``LinkForged``/``LinkExpired``/``LinkUsed``."""
    now = now or datetime.now(UTC)
    offer_id = _request_link(ctx, token)
    with ctx.database().transaction() as s:
        row = s.get(OfferRow, offer_id)
        if row is None or row.kind != REQUEST:
            raise LinkForged("this link is not valid")
        program = ctx.config.programs.get(row.program_id)
        learner, guide = s.get(PersonRow, row.learner_id), s.get(PersonRow, row.guide_id)
        if program is None or learner is None or guide is None or guide.forgotten:
            raise LinkForged("this link is not valid")
        _state([row], now)
        return RequestPage(
            guide.name,
            program.name,
            learner.name,
            learner.job_title,
            learner.department,
            row.expires_at,
        )


def answer_request_link(
    ctx: Context,
    token: str,
    *,
    accept_it: bool,
    reason: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """The guide accepts or declines the request their link names."""
    now = now or datetime.now(UTC)
    offer_id = _request_link(ctx, token)
    reason = None if accept_it else _clean_reason(reason)  # a reason goes with a decline only

    def is_request(row: OfferRow) -> None:
        if row.kind != REQUEST:
            raise LinkForged("this link is not valid")

    with ctx.database().transaction() as s:
        guide = s.scalar(select(OfferRow.guide_id).where(OfferRow.id == offer_id))
    if guide is None:
        raise LinkForged("this link is not valid")
    return _answer(
        ctx,
        offer_id,
        accept_it,
        reason=reason,
        actor=f"link:guide:{guide}",
        now=now,
        check=is_request,
    )


# -- the daily run ---------------------------------------------------------------------------
@dataclass
class ChoiceRun:
    """What the daily run did with offers and requests."""

    expired: int = 0  # offers and requests closed because their time was up
    started: int = 0  # held pairings taken when the learner did not answer
    rematched: int = 0  # learners matched again after a decline or an expiry
    reminded: int = 0  # reminders sent
    mailed: int = 0  # messages sent (new offers and requests, reminders, owner notices)


def _due(s: Session, now: datetime) -> list[tuple[str, int]]:
    """Rounds of offers (by round id) and requests whose time is up."""
    out: set[tuple[str, int]] = set()
    for kind, round_id, row_id in s.execute(
        select(OfferRow.kind, OfferRow.round_id, OfferRow.id).where(
            OfferRow.status == "open", OfferRow.expires_at <= now
        )
    ):
        out.add((kind, round_id if kind == OFFER and round_id is not None else row_id))
    return sorted(out, key=lambda x: x[1])


def _expire_one(ctx: Context, kind: str, key: int, now: datetime, run: ChoiceRun) -> None:
    effects = Effects()
    with ctx.database().transaction() as s:
        program_id = s.scalar(select(OfferRow.program_id).where(OfferRow.id == key))
        program = ctx.config.programs.get(program_id) if program_id else None
        if program is None:
            return
        _lock(s, program)
        ids = (
            [key]
            if kind == REQUEST
            else list(s.scalars(select(OfferRow.id).where(OfferRow.round_id == key)))
        )
        done = s.execute(
            update(OfferRow)
            .where(OfferRow.id.in_(ids), OfferRow.status == "open", OfferRow.expires_at <= now)
            .values(status="expired", answered_at=now, answered_by="daily")
            .execution_options(synchronize_session=False)
        )
        if not done.rowcount:
            return  # answered meanwhile
        run.expired += done.rowcount
        row = s.execute(
            select(OfferRow).where(OfferRow.id == key).execution_options(populate_existing=True)
        ).scalar_one()
        pairing = _pairing(s, row.pairing_id)
        if not _still_in(s, program, row.learner_id, "learner"):
            # The learner opted out, left or was erased while the offer was open: no pairing
            # starts by itself, and nobody is matched for them.
            if pairing is not None and pairing.status in ("offered", "requested"):
                _withdraw_pairing(
                    s, pairing, "the learner is no longer in the program", now, "daily"
                )
            return
        if (
            kind == OFFER
            and row.status == "expired"
            and pairing is not None
            and pairing.status == "offered"
        ):
            # The learner did not answer: the optimal guide, whose place was held, is taken.
            run.started += 1
            _move_on(s, ctx, program, pairing, now, effects, "daily")
        else:
            if pairing is not None and pairing.status in ("offered", "requested"):
                _withdraw_pairing(s, pairing, f"the {kind} expired", now, "daily")
                s.flush()
            if _rematch(s, ctx, program, pairing, row.learner_id, now, "daily", row.id) is not None:
                run.rematched += 1
    if effects.notification_keys:
        _after(ctx, effects, now)


def _still_in(s: Session, program: Program, person_id: int, role: str) -> bool:
    """Whether the person is still active, not erased, and enrolled in ``role`` without having
    opted out."""
    person = s.get(PersonRow, person_id)
    if person is None or person.forgotten or person.status != "active":
        return False
    return (
        s.scalars(
            select(EnrollmentRow.id).where(
                EnrollmentRow.program_id == program.id,
                EnrollmentRow.person_id == person_id,
                EnrollmentRow.role == role,
                EnrollmentRow.opted_out.is_(False),
            )
        ).first()
        is not None
    )


def _reminders(s: Session, ctx: Context, now: datetime) -> list[int]:
    """Open rank-1 offers and requests past half their time, not yet reminded: marked now
    (not for someone who must answer but opted out or left meanwhile)."""
    out = []
    for row in s.scalars(
        select(OfferRow).where(
            OfferRow.status == "open",
            OfferRow.reminded_at.is_(None),
            OfferRow.expires_at > now,
            (OfferRow.kind == REQUEST) | (OfferRow.rank == 1),
        )
    ):
        program = ctx.config.programs.get(row.program_id)
        if program is None:
            continue
        half = timedelta(days=max(1, program.respond_within_days // 2))
        answering = (row.guide_id, "guide") if row.kind == REQUEST else (row.learner_id, "learner")
        if now >= row.created_at + half and _still_in(s, program, *answering):
            row.reminded_at = now
            out.append(row.id)
    return out


def run_choices(ctx: Context, *, now: datetime, dry_run: bool = False) -> ChoiceRun:
    """The daily run's part: expire what is due (the held guide taken, or the learner
    re-matched), remind once at half time, and mail what is still unsent."""
    run = ChoiceRun()
    if not any(p.choice is not Choice.NONE for p in ctx.config.programs.values()):
        with ctx.database().transaction() as s:
            if s.scalar(select(OfferRow.id).where(OfferRow.status == "open").limit(1)) is None:
                return run
    if dry_run:
        with ctx.database().transaction() as s:
            run.expired = len(_due(s, now))
        return run
    with ctx.database().transaction() as s:
        due = _due(s, now)
    for kind, key in due:
        _expire_one(ctx, kind, key, now, run)
    with ctx.database().transaction() as s:
        reminded = _reminders(s, ctx, now)
    run.reminded = len(reminded)
    run.mailed = mail_choices(ctx, now=now, reminders=reminded)
    return run


# -- mail ------------------------------------------------------------------------------------
def _message_for(s: Session, ctx: Context, key: str) -> Message | None:
    """The text of a choice message, rebuilt from the store (like the pairing messages)."""
    parts = key.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    what, row = parts[1], s.get(OfferRow, int(parts[2]))
    program = ctx.config.programs.get(row.program_id) if row is not None else None
    if row is None or program is None:
        return None
    learner, guide = s.get(PersonRow, row.learner_id), s.get(PersonRow, row.guide_id)
    if learner is None or guide is None:
        return None
    days = f"{row.expires_at:%Y-%m-%d}"
    url = _option_url(ctx, row)
    word = "mentor" if program.kind.value == "mentoring" else "coach"
    if what == "owner":
        if not program.owner:
            return None
        return Message(
            key=key,
            to_name=program.owner,
            to_email=program.owner,
            subject=f"{program.name}: a learner is still without a {word}",
            body=(
                f"{learner.name} (person {learner.id}) has no {word} in {program.name}: the "
                f"offers or requests made for them were declined or expired, and the last "
                f"re-match (at most {program.max_requests}) found nobody. Pair them by hand "
                f"(coachbridge pairings pin, then coachbridge match {program.id} --apply).\n"
            ),
        )
    if row.kind == OFFER:
        me = learner
        options = list(
            s.scalars(
                select(OfferRow)
                .where(OfferRow.round_id == row.round_id, OfferRow.status == "open")
                .order_by(OfferRow.rank)
            )
        )
        names = [
            f"  - {p.name}" + (f", {p.job_title}" if p.job_title else "")
            for o in options
            if (p := s.get(PersonRow, o.guide_id)) is not None
        ]
        subject = f"{program.name}: choose your {word}"
        body = [
            f"Hello {me.preferred_name or me.first_name or me.name},",
            "",
            f"we suggest these {word}es for {program.name}, best match first:"
            if word == "coach"
            else f"we suggest these {word}s for {program.name}, best match first:",
            *names,
            "",
            f"Pick one here (no login needed): {url}",
            f"If you have not answered by {days}, we pair you with the first one.",
        ]
    else:
        me = guide
        # Subjects are stored (bodies are not): no name in them, so that erasing a person
        # leaves none behind in another person's messages.
        subject = f"{program.name}: will you be a learner's {word}?"
        body = [
            f"Hello {me.preferred_name or me.first_name or me.name},",
            "",
            f"{learner.name}"
            + (f" ({learner.job_title})" if learner.job_title else "")
            + f" would like you as their {word} in {program.name}.",
            "",
            f"Accept or decline here (no login needed): {url}",
            f"Please answer by {days}.",
        ]
    if what == "remind":
        subject = f"Reminder: {subject}"
    return Message(
        key=key,
        to_name=me.name,
        to_email=me.email,
        subject=subject,
        body="\n".join(body) + "\n",
        recipient_id=me.id,
    )


def _still_asked(s: Session, programs: Mapping[str, Program], key: str) -> bool:
    """Whether the offer, request or reminder ``key`` names still waits for its answer (an
    owner's notice always goes)."""
    parts = key.split(":")
    if len(parts) != 3 or not parts[2].isdigit() or parts[1] == "owner":
        return True
    row = s.get(OfferRow, int(parts[2]))
    program = programs.get(row.program_id) if row is not None else None
    if row is None or program is None:
        return False
    if row.kind == REQUEST:
        return row.status == "open" and _still_in(s, program, row.guide_id, "guide")
    if not _still_in(s, program, row.learner_id, "learner"):
        return False  # opted out or left meanwhile: nothing to ask them
    return (
        s.scalars(
            select(OfferRow.id).where(OfferRow.round_id == row.round_id, OfferRow.status == "open")
        ).first()
        is not None
    )


def mail_choices(ctx: Context, *, now: datetime, reminders: Iterable[int] = ()) -> int:
    """Send each open round of offers and each open request to the person who must answer
    (once: ``choice:offer:<round>``, ``choice:request:<id>``), the ``reminders`` given
    (``choice:remind:<id>``) and pending owner notices. Rows are committed before anything is
    sent; returns how many messages went out."""
    from coachbridge.notify.dispatch import build_notifiers

    if ctx.config.server.secret_key is None:
        with ctx.database().transaction() as s:
            if s.scalar(select(OfferRow.id).where(OfferRow.status == "open").limit(1)) is not None:
                log.warning("offers and requests not mailed: [server] secret_key is not set")
        return 0
    with ctx.database().transaction() as s:
        wanted = [
            f"choice:{kind}:{rid}"
            for kind, rid in s.execute(
                select(OfferRow.kind, OfferRow.id).where(
                    OfferRow.status == "open", (OfferRow.kind == REQUEST) | (OfferRow.rank == 1)
                )
            )
        ]
        wanted += [f"choice:remind:{rid}" for rid in reminders]
        existing = set()
        for part in in_chunks(wanted):
            existing |= set(
                s.scalars(select(NotificationRow.key).where(NotificationRow.key.in_(part)))
            )
        new = [k for k in wanted if k not in existing]
        for k in new:
            s.add(
                NotificationRow(
                    key=k, channel="choice", subject=k, status="pending", created_at=now
                )
            )
        # Pending ones, and failed ones again (the next daily runs, up to MAX_ATTEMPTS sends):
        # an offer no one received would otherwise be taken at expiry without a word.
        pending = list(
            s.scalars(
                select(NotificationRow.key).where(
                    NotificationRow.key.like("choice:%"),
                    (NotificationRow.status == "pending")
                    | (
                        (NotificationRow.status == "failed")
                        & (NotificationRow.attempts < MAX_ATTEMPTS)
                    ),
                )
            )
        )
    if not pending:
        return 0
    notifiers = list(
        build_notifiers(ctx.config.notify, ctx.registry.notifiers, ctx.config.label).values()
    )
    sent = 0
    with ctx.database().transaction() as s:
        for key in pending:
            note = s.scalars(select(NotificationRow).where(NotificationRow.key == key)).first()
            if note is None or note.status not in ("pending", "failed"):
                continue
            if not _still_asked(s, ctx.config.programs, key):
                note.status, note.detail = "skipped", "answered or closed before it was sent"
                continue
            message = _message_for(s, ctx, key)
            if message is None:
                note.status, note.detail = "skipped", "nothing to send"
                continue
            note.attempts = (note.attempts or 0) + 1
            note.recipient_id = message.recipient_id
            note.subject = message.subject[:500]
            results = []
            for notifier in notifiers:
                try:
                    results.append(notifier.send(message))
                except Exception as exc:  # one failing channel must not stop the others
                    log.warning("notifier %s failed for %s: %s", type(notifier).__name__, key, exc)
                    results.append(f"failed: {type(exc).__name__}")
            failed = bool(results) and all(r.startswith("failed") for r in results)
            note.status = "failed" if failed else "sent"
            note.detail = "; ".join(results)[:1000]
            note.sent_at = None if failed else now
            sent += not failed
    for notifier in notifiers:
        notifier.close()
    return sent
