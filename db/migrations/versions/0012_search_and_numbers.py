"""search and numbers: a keyed digest of each study's Accession Number (never the number) for dashboard search, and
the series and instance numbers of each result object, to find it in the PACS

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accession_digest", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_study_accession_digest", ["accession_digest"], unique=False)
    with op.batch_alter_table("result_object", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("instance_number", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("result_object", schema=None) as batch_op:
        batch_op.drop_column("instance_number")
        batch_op.drop_column("series_number")
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.drop_index("ix_study_accession_digest")
        batch_op.drop_column("accession_digest")
