"""profiles: participants' intake answers per program, and their intake link state

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 00:05:00
"""

from collections.abc import Sequence

import coachbridge.store.types
import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("goal", sa.Text(), nullable=True),
        sa.Column("languages", sa.JSON(), nullable=True),
        sa.Column("availability", sa.JSON(), nullable=False),
        sa.Column("answered_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=100), nullable=True),
        sa.Column("invited_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column(
            "last_reminded_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("updated_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program_id", "person_id", name="uq_profile"),
    )
    op.create_index("ix_profiles_person_id", "profiles", ["person_id"])
    op.create_index("ix_profiles_program_id", "profiles", ["program_id"])


def downgrade() -> None:
    # Every participant's intake answers are lost.
    op.drop_index("ix_profiles_program_id", table_name="profiles")
    op.drop_index("ix_profiles_person_id", table_name="profiles")
    op.drop_table("profiles")
