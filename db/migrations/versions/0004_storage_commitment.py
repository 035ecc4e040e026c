"""storage commitment

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 12:13:16.332788
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commitment_transaction_uid', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_delivery_commitment_transaction_uid'), ['commitment_transaction_uid'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_commitment_transaction_uid'))
        batch_op.drop_column('commitment_transaction_uid')

