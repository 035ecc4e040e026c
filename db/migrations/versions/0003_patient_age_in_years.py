"""patient age in years

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:02:54.576344
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_age_years', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.drop_column('patient_age_years')

