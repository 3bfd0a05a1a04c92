"""The database schema. Alembic migrations in ``migrations/versions`` create exactly this.

A test compares these tables with the migrated database, so a change here without a
migration fails the suite. Natural keys carry unique constraints: that is what makes every
write path an idempotent upsert.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from coachbridge.store.types import UTCDateTime, utcnow
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class PersonRow(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    preferred_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)  # lower-cased email
    job_title: Mapped[str | None] = mapped_column(String(300))
    department: Mapped[str | None] = mapped_column(String(300))
    division: Mapped[str | None] = mapped_column(String(300))
    location: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str | None] = mapped_column(String(64))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    hire_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    hris_status: Mapped[str | None] = mapped_column(String(100))
    termination_date: Mapped[date | None] = mapped_column(Date)
    level: Mapped[int | None] = mapped_column(Integer)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    interests: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    forgotten: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def name(self) -> str:
        first = self.preferred_name or self.first_name
        return " ".join(p for p in (first, self.last_name) if p)


class ExternalIdRow(Base):
    """A person's id in one connector (keyed by the connector's table name in the config)."""

    __tablename__ = "person_external_ids"
    __table_args__ = (
        UniqueConstraint("connector", "person_id", name="uq_external_connector_person"),
    )

    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)


class PersonHistoryRow(Base):
    """Effective-dated values of the fields outcomes need (status, title, level, department, manager)."""

    __tablename__ = "person_history"
    __table_args__ = (Index("ix_person_history_person_field", "person_id", "field", "valid_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    field: Mapped[str] = mapped_column(String(50))
    value: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(100))


class ProgramRow(Base):
    """A program from the config, mirrored so that other tables can refer to it."""

    __tablename__ = "programs"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EnrollmentRow(Base):
    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("program_id", "person_id", "role", name="uq_enrollment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    capacity: Mapped[int | None] = mapped_column(Integer)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(50), default="manual")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PairingRow(Base):
    __tablename__ = "pairings"
    __table_args__ = (Index("ix_pairings_program_status", "program_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    learner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    guide_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    end_reason: Mapped[str | None] = mapped_column(String(500))
    flag: Mapped[str | None] = mapped_column(String(500))
    source_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()


class ProfileRow(Base):
    """A person's intake answers in one program, and the state of their intake link.

    A row with ``answered_at`` unset is an invitation still waiting for an answer. ``topics``,
    ``goal``, ``languages`` and ``availability`` are personal data: ``people forget`` erases
    them and reports show only aggregate topic counts.
    """

    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint("program_id", "person_id", name="uq_profile"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    topics: Mapped[list[str]] = mapped_column(
        JSON, default=list
    )  # a learner's in order of priority
    goal: Mapped[str | None] = mapped_column(Text)
    languages: Mapped[list[str] | None] = mapped_column(JSON)  # None: the HRIS's languages hold
    availability: Mapped[list[str]] = mapped_column(JSON, default=list)  # SLOTS, own time zone
    answered_at: Mapped[datetime | None] = mapped_column()
    answered_by: Mapped[str | None] = mapped_column(String(100))  # "self", "cli", "import"
    invited_at: Mapped[datetime | None] = mapped_column()
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_reminded_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:  # answers are personal data: ids only
        return f"<ProfileRow program={self.program_id} person={self.person_id}>"


class PairRuleRow(Base):
    """An admin's pin (always pair) or forbid (never pair) for one learner and guide."""

    __tablename__ = "pair_rules"

    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    guide_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "pin" | "forbid"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GoalRow(Base):
    __tablename__ = "goals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    pairing_id: Mapped[int | None] = mapped_column(ForeignKey("pairings.id"), index=True)
    program_id: Mapped[str | None] = mapped_column(ForeignKey("programs.id"))
    title: Mapped[str] = mapped_column(String(500))
    measure: Mapped[str | None] = mapped_column(String(500))
    target: Mapped[str | None] = mapped_column(String(500))
    due_date: Mapped[date | None] = mapped_column(Date)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    source_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("pairing_id", "seq", name="uq_session_pairing_seq"),
        Index("ix_sessions_start", "start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    seq: Mapped[int | None] = mapped_column(Integer)  # planned order; None for logged extras
    start: Mapped[datetime] = mapped_column()
    minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    agenda: Mapped[str | None] = mapped_column(Text)
    action_items: Mapped[list[str]] = mapped_column(JSON, default=list)
    private_notes: Mapped[str | None] = mapped_column(Text)
    ics_sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:  # private_notes stay out of every repr
        return f"<SessionRow id={self.id} pairing={self.pairing_id} status={self.status}>"


class FeedbackRow(Base):
    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("session_id", "from_person_id", name="uq_feedback_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id"), index=True)
    from_person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    rating: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    private_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<FeedbackRow id={self.id} session={self.session_id} rating={self.rating}>"


class FeedbackLinkRow(Base):
    """A feedback link that has been answered: its nonce, so that each link works only once."""

    __tablename__ = "feedback_links"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewEventRow(Base):
    __tablename__ = "review_events"
    __table_args__ = (UniqueConstraint("source", "source_event_id", name="uq_review_source_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(50), default="review.completed")
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    subject_external_id: Mapped[str | None] = mapped_column(String(200))
    subject_email: Mapped[str | None] = mapped_column(String(320))
    cycle: Mapped[str | None] = mapped_column(String(200))
    rating: Mapped[float | None] = mapped_column(Float)
    raw_rating: Mapped[float | None] = mapped_column(Float)
    scale_min: Mapped[float] = mapped_column(Float, default=1.0)
    scale_max: Mapped[float | None] = mapped_column(Float)
    completed_at: Mapped[datetime | None] = mapped_column()
    source: Mapped[str] = mapped_column(String(100))
    source_event_id: Mapped[str] = mapped_column(String(300))
    via: Mapped[str] = mapped_column(String(10), default="sync")  # "sync" | "webhook"
    # pending | processed | skipped (before rules_since) | unknown_person | failed
    rules_status: Mapped[str] = mapped_column(String(20), default="pending")
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboxRow(Base):
    """Raw webhook deliveries, keyed by the sender's delivery id (or the body's SHA-256)."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("connector", "delivery_id", name="uq_inbox_delivery"),
        Index("ix_inbox_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connector: Mapped[str] = mapped_column(String(100))
    delivery_id: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # pending | processing | done | failed (will retry) | dead | purged
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_at: Mapped[datetime | None] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:  # never the body: it carries personal data
        return f"<InboxRow {self.connector}/{self.delivery_id} {self.status}>"


class SyncStateRow(Base):
    """Per connector and stream: the saved cursor and when syncing started (``rules_since``)."""

    __tablename__ = "sync_state"

    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    stream: Mapped[str] = mapped_column(String(50), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    first_synced_at: Mapped[datetime | None] = mapped_column()
    last_synced_at: Mapped[datetime | None] = mapped_column()


class ExternalRefRow(Base):
    """What a push wrote: the HRIS's id for one of our records and a fingerprint of what was sent."""

    __tablename__ = "external_refs"

    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    local_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(300))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(20))
    pushed_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationRow(Base):
    """Every message sent or due, keyed by a stable id so a repeat after a crash is recognised."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(50))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    subject: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|sent|skipped|failed
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    # Failed sends are retried with backoff up to a bound; the key (and Message-ID) stay the same.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobRow(Base):
    """Scheduled work (a connector's periodic sync, the daily health check): one runner at a time."""

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None] = mapped_column()
    last_started_at: Mapped[datetime | None] = mapped_column()
    last_finished_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when a run is wanted before its period is up (a webhook named changed employees);
    # stored, so the request survives a restart of the worker that took it.
    requested_at: Mapped[datetime | None] = mapped_column()


class InstallationRow(Base):
    """One row (``id`` 1) naming this database among others: its calendar tag goes into every
    session's calendar UID (``session-<id>@<tag>.coachbridge``), so the invitations of two
    databases (a pilot and production, or a database created again) never update each other's
    events in someone's calendar. NULL for databases that had sessions before the tag existed:
    they keep ``session-<id>@coachbridge``, which their invitations already carry."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    calendar_tag: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The HMAC key of erased people's tombstones (coachbridge.hris.sync.forgotten_key): random per
    # database, so a tombstone cannot be reversed by hashing candidate ids, nor matched across
    # databases. Set by migration 0003; never shown or exported.
    tombstone_secret: Mapped[str | None] = mapped_column(String(64))


class ConnectorTokenRow(Base):
    """A secret a connector was handed by its vendor and must keep (a rotated OAuth refresh
    token), encrypted with a key derived from ``[server] secret_key`` (Fernet,
    ``coachbridge.store.tokens``). ``origin`` is a SHA-256 of the configured secret the stored
    one descends from, so a secret the operator replaces in the config wins over the stored one.
    A row without ``ciphertext`` exists only to be locked (two processes refreshing at once)."""

    __tablename__ = "connector_tokens"

    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    ciphertext: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class OfferRow(Base):
    """One option put to the person who must answer before a pairing starts
    (``coachbridge.matching.offers``): an ``offer`` of a guide to a learner (rank 1 is the
    optimum, whose place is held by an ``offered`` pairing; higher ranks are alternatives, held
    by nothing), or a ``request`` to a guide to accept a learner (its ``requested`` pairing)."""

    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_program_learner", "program_id", "learner_id"),
        Index("ix_offers_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # offer | request
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    learner_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    guide_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    # Offers: 1 for the optimum, 2.. for alternatives, best first; requests: the learner's
    # n-th request in the program.
    rank: Mapped[int] = mapped_column(Integer)
    # The offers made to one learner at once share the id of that round's rank-1 offer.
    round_id: Mapped[int | None] = mapped_column(Integer, index=True)
    pairing_id: Mapped[int | None] = mapped_column(ForeignKey("pairings.id"), index=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # open | accepted | declined | expired | withdrawn
    status: Mapped[str] = mapped_column(String(16), default="open")
    reason: Mapped[str | None] = mapped_column(Text)  # a decline's reason, for the owner
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    answered_by: Mapped[str | None] = mapped_column(String(200))
    reminded_at: Mapped[datetime | None] = mapped_column()
