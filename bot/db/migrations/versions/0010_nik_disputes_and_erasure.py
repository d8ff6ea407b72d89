"""NIK disputes (a NIK tried from one chat while another person's application holds it),
and when a person's data was erased

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 12:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nik_disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("claimant_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.ForeignKeyConstraint(["claimant_user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["closed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("nik_disputes") as batch_op:
        batch_op.create_index("ix_nik_disputes_application_id", ["application_id"])
        batch_op.create_index("ix_nik_disputes_claimant_user_id", ["claimant_user_id"])
        batch_op.create_index("ix_nik_disputes_closed_at", ["closed_at"])
    for table in ("users", "applications"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ("applications", "users"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("erased_at")
    op.drop_table("nik_disputes")
