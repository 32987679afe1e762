"""appointments: when the citizen confirmed they will come

Revision ID: 0011_appointment_confirmed
Revises: 0006_appointments
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_appointment_confirmed"
down_revision = "0006_appointments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.drop_column("confirmed_at")
