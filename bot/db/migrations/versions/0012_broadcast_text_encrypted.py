"""broadcast texts kept encrypted: `broadcasts.text` becomes `broadcasts.text_enc`

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A migration has no key: texts written before this stay plain until start-up seals them
    # (bot.services.broadcasts.seal_plain), before anything is served.
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.alter_column("text", new_column_name="text_enc")


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.alter_column("text_enc", new_column_name="text")
