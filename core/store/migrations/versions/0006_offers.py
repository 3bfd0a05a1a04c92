"""offers: offers to learners and requests to guides before a pairing starts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 00:10:00
"""

from collections.abc import Sequence

import coachbridge.store.types
import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=False),
        sa.Column("learner_id", sa.Integer(), nullable=False),
        sa.Column("guide_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("pairing_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("reminded_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["guide_id"], ["people.id"]),
        sa.ForeignKeyConstraint(["learner_id"], ["people.id"]),
        sa.ForeignKeyConstraint(["pairing_id"], ["pairings.id"]),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_offers_guide_id", "offers", ["guide_id"])
    op.create_index("ix_offers_pairing_id", "offers", ["pairing_id"])
    op.create_index("ix_offers_round_id", "offers", ["round_id"])
    op.create_index("ix_offers_program_learner", "offers", ["program_id", "learner_id"])
    op.create_index("ix_offers_status_expires", "offers", ["status", "expires_at"])


def downgrade() -> None:
    # Open offers and requests are lost; their held pairings stay ``offered``/``requested``.
    op.drop_index("ix_offers_status_expires", table_name="offers")
    op.drop_index("ix_offers_program_learner", table_name="offers")
    op.drop_index("ix_offers_round_id", table_name="offers")
    op.drop_index("ix_offers_pairing_id", table_name="offers")
    op.drop_index("ix_offers_guide_id", table_name="offers")
    op.drop_table("offers")
