"""site validation: the modality's equipment on each instance, every label's score on every analysed image, and the
site's radiologists' truth

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TRUTH = sa.Enum("positive", "negative", "uncertain", name="truth_value", native_enum=False, length=32)


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("manufacturer", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("manufacturer_model_name", sa.String(length=64), nullable=True))
    op.create_table(
        "label_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_label_score_job_id"), "label_score", ["job_id"], unique=False)
    op.create_table(
        "truth_label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("value", TRUTH, nullable=False),
        sa.Column("reader", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_instance_uid", "label", "reader", name="uq_truth_study_label_reader"),
    )
    op.create_index(op.f("ix_truth_label_study_instance_uid"), "truth_label", ["study_instance_uid"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_truth_label_study_instance_uid"), table_name="truth_label")
    op.drop_table("truth_label")
    op.drop_index(op.f("ix_label_score_job_id"), table_name="label_score")
    op.drop_table("label_score")
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_column("manufacturer_model_name")
        batch_op.drop_column("manufacturer")
