"""urgency, acknowledgement, delivery channels (HL7, FHIR, webhook), superseded results, instance revisions and
rejections, the model version and weights of a job, shadow mode

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

URGENCY = sa.Enum("critical", "abnormal", "no_finding", "not_performed", name="urgency", native_enum=False, length=32)
CHANNEL = sa.Enum("DICOM", "HL7", "FHIR", "WEBHOOK", name="channel", native_enum=False, length=32)
PURPOSE = sa.Enum("RESULT", "REMINDER", name="message_purpose", native_enum=False, length=32)
# SQLite reflects the old unique constraint without a name; this convention names it so batch mode can drop it.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "delivery_result_object_id_destination_name_key"
    return "uq_delivery_result_object_id"


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("rejection_code", sa.String(length=16), nullable=True))
    with op.batch_alter_table("result_object", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superseded_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_result_object_superseded_by_id_result_object", "result_object", ["superseded_by_id"], ["id"]
        )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("urgency", URGENCY, nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("detector_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("weights_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("shadow", sa.Boolean(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("released_by", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_job_urgency"), ["urgency"], unique=False)
    with op.batch_alter_table("delivery", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column("channel", CHANNEL, nullable=False, server_default="DICOM"))
        batch_op.add_column(sa.Column("purpose", PURPOSE, nullable=False, server_default="RESULT"))
        batch_op.drop_constraint(_old_unique_name(), type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery_object_destination", ["result_object_id", "destination_name", "purpose"]
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("uq_delivery_object_destination", type_="unique")
        batch_op.create_unique_constraint(_old_unique_name(), ["result_object_id", "destination_name"])
        batch_op.drop_column("purpose")
        batch_op.drop_column("channel")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_urgency"))
        batch_op.drop_column("released_by")
        batch_op.drop_column("released_at")
        batch_op.drop_column("shadow")
        batch_op.drop_column("weights_sha256")
        batch_op.drop_column("detector_version")
        batch_op.drop_column("acknowledged_by")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("urgency")
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_column("rejection_code")
        batch_op.drop_column("rejected_at")
        batch_op.drop_column("revision")
    with op.batch_alter_table("result_object", schema=None) as batch_op:
        batch_op.drop_constraint("fk_result_object_superseded_by_id_result_object", type_="foreignkey")
        batch_op.drop_column("superseded_at")
        batch_op.drop_column("superseded_by_id")
