"""zalo: processed webhook events, OA tokens, sent and refused messages

Revision ID: 0004_zalo
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_zalo"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zalo_inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=160), nullable=False),
        sa.Column("event_name", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zalo_inbound")),
        sa.UniqueConstraint("event_key", name=op.f("uq_zalo_inbound_event_key")),
    )
    op.create_table(
        "zalo_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zalo_tokens")),
    )
    op.create_table(
        "zalo_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zalo_refusals")),
    )
    op.create_index(op.f("ix_zalo_refusals_external_id"), "zalo_refusals", ["external_id"])
    op.create_table(
        "zalo_sent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zalo_sent")),
    )
    op.create_index(op.f("ix_zalo_sent_external_id"), "zalo_sent", ["external_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_zalo_sent_external_id"), table_name="zalo_sent")
    op.drop_table("zalo_sent")
    op.drop_index(op.f("ix_zalo_refusals_external_id"), table_name="zalo_refusals")
    op.drop_table("zalo_refusals")
    op.drop_table("zalo_tokens")
    op.drop_table("zalo_inbound")
