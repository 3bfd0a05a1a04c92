"""trainings: completed trainings of people, read from the HRIS (the guide filter trained_in)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:10:00
"""

from collections.abc import Sequence

import coachbridge.store.types
import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trainings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("training", sa.String(length=300), nullable=False),
        sa.Column("completed_at", sa.Date(), nullable=True),
        sa.Column("expires_at", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("record_key", sa.String(length=320), nullable=False),
        sa.Column("updated_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "person_id", "record_key", name="uq_training_record"),
    )
    op.create_index(op.f("ix_trainings_person_id"), "trainings", ["person_id"], unique=False)


def downgrade() -> None:
    # The records are read again from the HRIS by the next sync of an older version's successor.
    op.drop_index(op.f("ix_trainings_person_id"), table_name="trainings")
    op.drop_table("trainings")
