"""broadcast photos kept encrypted: `broadcasts.photo` becomes `broadcasts.photo_enc`

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 19:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A migration has no key: photos stored before this stay plain until start-up seals them
    # (bot.services.broadcasts.seal_plain), before anything is served.
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.alter_column("photo", new_column_name="photo_enc")


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.alter_column("photo_enc", new_column_name="photo")
