"""broadcast sender: the role and place a broadcast is sent in the name of

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender_role", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("sender_place", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("sender_place")
        batch_op.drop_column("sender_role")
