"""status workflow: the history of status changes, review claims, payment reminders

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_label", sa.String(length=40), nullable=True),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("kpj_number", sa.String(length=20), nullable=True),
        sa.Column("covered_from", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_user_id"], ["users.id"], name=op.f("fk_status_history_actor_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_status_history_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_history")),
    )
    with op.batch_alter_table("status_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_status_history_application_id"), ["application_id"], unique=False
        )
    op.create_table(
        "payment_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_payment_reminders_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_reminders")),
        sa.UniqueConstraint("application_id", "due_on", name="uq_payment_reminders_once"),
    )
    with op.batch_alter_table("payment_reminders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_reminders_application_id"), ["application_id"], unique=False
        )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_claimed_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("review_claimed_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_applications_review_claimed_by_users"),
            "users",
            ["review_claimed_by"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_applications_review_claimed_by_users"), type_="foreignkey"
        )
        batch_op.drop_column("review_claimed_until")
        batch_op.drop_column("review_claimed_by")
    with op.batch_alter_table("payment_reminders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_reminders_application_id"))
    op.drop_table("payment_reminders")
    with op.batch_alter_table("status_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_history_application_id"))
    op.drop_table("status_history")
