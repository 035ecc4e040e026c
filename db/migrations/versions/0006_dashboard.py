"""dashboard: job timings, operator audit, destination state, worker heartbeats

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('analysis_started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('analysis_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('end_to_end_seconds', sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f('ix_job_finished_at'), ['finished_at'], unique=False)
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor', sa.String(length=64), nullable=True))
    op.create_table('destination_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('changed_by', sa.String(length=64), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('worker_heartbeat',
    sa.Column('hostname', sa.String(length=128), nullable=False),
    sa.Column('queues', sa.String(length=64), nullable=False),
    sa.Column('device', sa.String(length=32), nullable=False),
    sa.Column('detector', sa.String(length=128), nullable=False),
    sa.Column('detector_version', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('hostname')
    )
    with op.batch_alter_table('worker_heartbeat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_heartbeat_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('worker_heartbeat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_worker_heartbeat_seen_at'))
    op.drop_table('worker_heartbeat')
    op.drop_table('destination_state')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_column('actor')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_finished_at'))
        batch_op.drop_column('end_to_end_seconds')
        batch_op.drop_column('finished_at')
        batch_op.drop_column('analysis_seconds')
        batch_op.drop_column('analysis_started_at')
