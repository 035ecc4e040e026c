"""study stat lane, instance retention

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 14:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stat', sa.Boolean(), server_default='0', nullable=False))
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.drop_column('stat')
