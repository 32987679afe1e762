"""appointments and their seats (one row per taken seat: no overbooking)

Revision ID: 0006_appointments
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_appointments"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("procedure", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.String(length=32), nullable=False),
        sa.Column("slot_start", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("full_name", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("consent_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("anonymised_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('booked', 'arrived', 'served', 'no_show', 'cancelled')",
            name=op.f("ck_appointments_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
        sa.UniqueConstraint(
            "channel", "external_id", "idempotency_key", name=op.f("uq_appointments_channel")
        ),
        sa.UniqueConstraint("code", name=op.f("uq_appointments_code")),
    )
    op.create_index("ix_appointments_citizen", "appointments", ["channel", "external_id"])
    op.create_index("ix_appointments_slot", "appointments", ["counter", "slot_start"])
    op.create_table(
        "appointment_seats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("counter", sa.String(length=32), nullable=False),
        sa.Column("slot_start", sa.DateTime(), nullable=False),
        sa.Column("seat_no", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_seats_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_seats")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_appointment_seats_appointment_id")),
        sa.UniqueConstraint("counter", "slot_start", "seat_no", name=op.f("uq_appointment_seats_counter")),
    )


def downgrade() -> None:
    op.drop_table("appointment_seats")
    op.drop_index("ix_appointments_slot", table_name="appointments")
    op.drop_index("ix_appointments_citizen", table_name="appointments")
    op.drop_table("appointments")
