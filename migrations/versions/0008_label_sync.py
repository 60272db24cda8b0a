"""provenance: Label Studio sync state per dataset (source, resume point, webhook secret hash) and the sync lease

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:10:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('label_sync',
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('tool', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('server_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('key_field', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('guideline_version', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_updated_at', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('last_snapshot_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('state_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('tasks', sa.Integer(), nullable=False),
    sa.Column('annotations', sa.Integer(), nullable=False),
    sa.Column('hook_secret_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('synced_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.PrimaryKeyConstraint('dataset_id')
    )
    op.create_table('sync_lease',
    sa.Column('dataset', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('dataset')
    )


def downgrade() -> None:
    op.drop_table('sync_lease')
    op.drop_table('label_sync')
