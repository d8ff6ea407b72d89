"""applications keep their export cells made ahead, encrypted (`export_cells_enc`)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 22:20:00.000000

A CSV export's cells that come from an application's answers are made when the application
is sent (or later, by `fill_export_cells`) and kept encrypted beside the answers, with the
signature of what they were made with (`export_cells_for`: not personal). A trigger forgets
them whenever the answers change, whatever changes them (an edit, erasure, a new key), so
they can never outlive the answers they were made from.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGER = """
CREATE TRIGGER applications_forget_export_cells
AFTER UPDATE OF answers_enc ON applications
WHEN NEW.answers_enc IS NOT OLD.answers_enc
BEGIN
    UPDATE applications SET export_cells_enc = NULL, export_cells_for = NULL
    WHERE id = NEW.id;
END
"""

_POSTGRES_FUNCTION = """
CREATE FUNCTION applications_forget_export_cells() RETURNS trigger AS $$
BEGIN
    IF NEW.answers_enc IS DISTINCT FROM OLD.answers_enc THEN
        NEW.export_cells_enc := NULL;
        NEW.export_cells_for := NULL;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""

_POSTGRES_TRIGGER = """
CREATE TRIGGER applications_forget_export_cells
BEFORE UPDATE ON applications
FOR EACH ROW EXECUTE FUNCTION applications_forget_export_cells()
"""


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch_op:
        batch_op.add_column(sa.Column("export_cells_enc", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("export_cells_for", sa.String(32), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        op.execute(_POSTGRES_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS applications_forget_export_cells ON applications"
        if op.get_bind().dialect.name == "postgresql"
        else "DROP TRIGGER IF EXISTS applications_forget_export_cells"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS applications_forget_export_cells()")
    with op.batch_alter_table("applications") as batch_op:
        batch_op.drop_column("export_cells_for")
        batch_op.drop_column("export_cells_enc")
