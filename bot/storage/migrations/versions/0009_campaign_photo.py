"""campaign photo: the stored photo's name and Telegram's file_id for it

Revision ID: 0009_campaign_photo
Revises: 0008_campaigns
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_campaign_photo"
down_revision = "0008_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("photo", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("photo_file_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("photo_file_id")
        batch.drop_column("photo")
