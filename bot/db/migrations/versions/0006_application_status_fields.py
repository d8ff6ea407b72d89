"""application status fields: when the status changed, KPJ number, cover start, note

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 09:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("kpj_number", sa.String(length=20)))
        batch_op.add_column(sa.Column("covered_from", sa.Date()))
        batch_op.add_column(sa.Column("status_note", sa.String(length=500)))


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("status_note")
        batch_op.drop_column("covered_from")
        batch_op.drop_column("kpj_number")
        batch_op.drop_column("status_changed_at")
