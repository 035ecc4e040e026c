"""recovery and retention: when the sweeper re-sent a dead-lettered delivery by itself (once at most), when a
delivery's next retry is due (an earlier message for it is a duplicate), and when retention removed a result
object's file

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auto_resent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("result_object", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("result_object", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
        batch_op.drop_column("auto_resent_at")
