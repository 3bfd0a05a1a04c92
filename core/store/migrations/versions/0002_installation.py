"""installation: the calendar tag that keeps two databases' invitations apart

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 11:20:00
"""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import coachbridge.store.types
import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_tag", sa.String(length=32), nullable=True),
        sa.Column("created_at", coachbridge.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # A database that already has sessions keeps the UIDs its invitations carry (no tag); a new
    # one gets its own tag.
    had_sessions = op.get_bind().execute(sa.text("SELECT 1 FROM sessions LIMIT 1")).first()
    op.bulk_insert(
        installation,
        [
            {
                "id": 1,
                "calendar_tag": None if had_sessions else secrets.token_hex(4),
                "created_at": datetime.now(UTC),
            }
        ],
    )


def downgrade() -> None:
    # The tag goes with the table: upgrading again gives a database with sessions no tag, so
    # every session's UID changes and calendars that hold the old ones show events twice.
    op.drop_table("installation")
