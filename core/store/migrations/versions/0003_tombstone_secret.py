"""installation.tombstone_secret: the key that erased people's tombstones are made with

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 21:30:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("installation", sa.Column("tombstone_secret", sa.String(64), nullable=True))
    # Each database gets its own random key, existing ones too. Their tombstones made before it
    # (unsalted SHA-256) cannot be rewritten (the ids they hide are gone): syncs still
    # recognise them, read-only (coachbridge.hris.sync.legacy_forgotten_key).
    conn = op.get_bind()
    installation = sa.table(
        "installation", sa.column("id", sa.Integer), sa.column("tombstone_secret", sa.String)
    )
    for (row_id,) in conn.execute(sa.select(installation.c.id)).all():
        conn.execute(
            installation.update()
            .where(installation.c.id == row_id)
            .values(tombstone_secret=secrets.token_hex(32))
        )


def downgrade() -> None:
    # Tombstones made with the key stop matching once it is gone: a downgraded database would
    # import an erased person again if the HRIS still lists them.
    with op.batch_alter_table("installation") as batch:
        batch.drop_column("tombstone_secret")
