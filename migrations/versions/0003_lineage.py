"""lineage: outbox, delivery lease and edges

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:15:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lineage_edge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('src_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('src_namespace', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('src_name', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('src_version', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('dst_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('dst_namespace', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('dst_name', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('dst_version', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'src_kind', 'src_namespace', 'src_name', 'src_version', 'dst_kind',
                        'dst_namespace', 'dst_name', 'dst_version', name='uq_lineage_edge')
    )
    with op.batch_alter_table('lineage_edge', schema=None) as batch_op:
        batch_op.create_index('ix_lineage_edge_dst', ['dst_name', 'dst_version'], unique=False)
        batch_op.create_index('ix_lineage_edge_src', ['src_name', 'src_version'], unique=False)

    op.create_table('lineage_lease',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('lineage_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('job_namespace', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('job_name', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('last_attempt_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('delivered_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lineage_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lineage_outbox_run_id'), ['run_id'], unique=False)
        batch_op.create_index('ix_lineage_outbox_status_id', ['status', 'id'], unique=False)
    # The delivery lease is one row, free from the start.
    op.bulk_insert(sa.table('lineage_lease', sa.column('id', sa.Integer())), [{'id': 1}])


def downgrade() -> None:
    with op.batch_alter_table('lineage_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_lineage_outbox_status_id')
        batch_op.drop_index(batch_op.f('ix_lineage_outbox_run_id'))
    op.drop_table('lineage_outbox')
    op.drop_table('lineage_lease')
    with op.batch_alter_table('lineage_edge', schema=None) as batch_op:
        batch_op.drop_index('ix_lineage_edge_src')
        batch_op.drop_index('ix_lineage_edge_dst')
    op.drop_table('lineage_edge')
