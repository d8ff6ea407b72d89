"""coverage targets per village, and an append-only audit log on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The application never edits or deletes an audit row; on PostgreSQL the database refuses it
# too, so a bug or a careless script cannot rewrite history. TRUNCATE (an operator's explicit
# act) stays possible. SQLite has no per-table privileges worth the trigger; there the rule is
# kept by the code having no such path (a test checks).
_APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log rows cannot be changed or deleted';
END;
$$ LANGUAGE plpgsql
"""
_APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "coverage_targets",
        sa.Column("village_code", sa.String(length=13), nullable=False),
        sa.Column("potential_workers", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_code"],
            ["villages.code"],
            name=op.f("fk_coverage_targets_village_code_villages"),
        ),
        sa.PrimaryKeyConstraint("village_code", name=op.f("pk_coverage_targets")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_FUNCTION)
        op.execute(_APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("coverage_targets")
