"""connector_tokens: secrets a connector must keep (rotated refresh tokens), encrypted

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 22:20:00
"""

from collections.abc import Sequence

import coachbridge.store.types
import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connector_tokens",
        sa.Column("connector", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=64), nullable=True),
        sa.Column("updated_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connector", "key"),
    )


def downgrade() -> None:
    # A rotated refresh token kept here is lost: the connector falls back to the configured one,
    # which the vendor may already have invalidated.
    op.drop_table("connector_tokens")
