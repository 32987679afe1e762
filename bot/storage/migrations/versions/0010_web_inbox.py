"""web_inbox: messages the app sent on its own to web chat users, until the page collects them

Revision ID: 0010_web_inbox
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_web_inbox"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_inbox")),
    )
    op.create_index(op.f("ix_web_inbox_external_id"), "web_inbox", ["external_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_web_inbox_external_id"), table_name="web_inbox")
    op.drop_table("web_inbox")
