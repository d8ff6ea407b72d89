"""staff requests (NIK disputes and corrections asked after verification), and when a
person's data was erased

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
        "staff_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("text_enc", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["closed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("staff_requests") as batch_op:
        batch_op.create_index("ix_staff_requests_application_id", ["application_id"])
        batch_op.create_index("ix_staff_requests_user_id", ["user_id"])
        batch_op.create_index("ix_staff_requests_closed_at", ["closed_at"])
    for table in ("users", "applications"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ("applications", "users"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("erased_at")
    op.drop_table("staff_requests")
