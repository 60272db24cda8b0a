"""quality: policies, gate results, waivers, pins

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 17:15:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('qa_policy',
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('policy_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('checks', sa.Text(), nullable=False),
    sa.Column('maintainers', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.PrimaryKeyConstraint('dataset_id', 'version')
    )
    op.create_table('gate_result',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('snapshot_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('policy_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('checks', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['snapshot.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_gate_result_dataset_id'), 'gate_result', ['dataset_id'], unique=False)
    op.create_index(op.f('ix_gate_result_snapshot_id'), 'gate_result', ['snapshot_id'], unique=False)
    op.create_table('gate_waiver',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('snapshot_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('checks', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['snapshot.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_gate_waiver_snapshot_id'), 'gate_waiver', ['snapshot_id'], unique=False)
    op.create_table('dataset_pin',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('snapshot_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('requested_ref', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('job', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('gate_result_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('waiver_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('lockfile', sa.Text(), nullable=False),
    sa.Column('pinned_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('pinned_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['snapshot.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_dataset_pin_snapshot_id'), 'dataset_pin', ['snapshot_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_dataset_pin_snapshot_id'), table_name='dataset_pin')
    op.drop_table('dataset_pin')
    op.drop_index(op.f('ix_gate_waiver_snapshot_id'), table_name='gate_waiver')
    op.drop_table('gate_waiver')
    op.drop_index(op.f('ix_gate_result_snapshot_id'), table_name='gate_result')
    op.drop_index(op.f('ix_gate_result_dataset_id'), table_name='gate_result')
    op.drop_table('gate_result')
    op.drop_table('qa_policy')
