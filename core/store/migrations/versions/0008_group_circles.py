"""group circles: circles, pairings.circle_id, sessions.circle_id and outside_hours, session_attendance

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06 23:55:00
"""

from collections.abc import Sequence

import coachbridge.store.types
import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "circles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=False),
        sa.Column("guide_id", sa.Integer(), nullable=False),
        sa.Column("created_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["guide_id"], ["people.id"]),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_circles_program_guide", "circles", ["program_id", "guide_id"])
    # SQLite: a plain ADD COLUMN with its REFERENCES in place. A batch copy of the table would
    # drop ``pairings`` under enforced foreign keys (sessions and goals refer to it).
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("pairings", "sessions"):
        if sqlite:
            op.execute(f"ALTER TABLE {table} ADD COLUMN circle_id INTEGER REFERENCES circles (id)")
        else:
            op.add_column(
                table,
                sa.Column(
                    "circle_id",
                    sa.Integer(),
                    sa.ForeignKey("circles.id", name=f"fk_{table}_circle_id"),
                    nullable=True,
                ),
            )
        op.create_index(f"ix_{table}_circle_id", table, ["circle_id"])
    op.add_column("sessions", sa.Column("outside_hours", sa.JSON(), nullable=True))
    op.create_table(
        "session_attendance",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("pairing_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("marked_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["pairing_id"], ["pairings.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"]),
        sa.PrimaryKeyConstraint("session_id", "person_id"),
    )
    op.create_index(
        "ix_session_attendance_person_id", "session_attendance", ["person_id"], unique=False
    )
    op.create_index(
        "ix_session_attendance_pairing_id", "session_attendance", ["pairing_id"], unique=False
    )


def downgrade() -> None:
    # Attendance and circles are lost; the circles' learners keep their pairings and the
    # circle meetings stay as sessions of each circle's first pairing.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # The batch copies below drop and re-create tables others refer to, which enforced
        # foreign keys refuse; SQLite drops a column used in a foreign key only this way. The
        # pragma works before the first write of the transaction, so it comes first. (No
        # command downgrades; this is for running Alembic by hand.)
        op.execute("PRAGMA foreign_keys = OFF")
    op.drop_table("session_attendance")
    for table in ("sessions", "pairings"):
        with op.batch_alter_table(table) as batch:
            if table == "sessions":
                batch.drop_column("outside_hours")
            batch.drop_index(f"ix_{table}_circle_id")
            if not sqlite:
                batch.drop_constraint(f"fk_{table}_circle_id", type_="foreignkey")
            batch.drop_column("circle_id")
    op.drop_index("ix_circles_program_guide", table_name="circles")
    op.drop_table("circles")
