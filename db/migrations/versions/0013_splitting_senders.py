"""splitting senders: the calling AE titles seen to split a study across associations, shared by the node's SCP
processes and kept across restarts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "splitting_sender",
        sa.Column("calling_ae_title", sa.String(length=16), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("calling_ae_title"),
    )


def downgrade() -> None:
    op.drop_table("splitting_sender")
