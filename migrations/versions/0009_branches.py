"""branches: protected branches and the conflicts of refused merges

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:30:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('branch_protection',
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.PrimaryKeyConstraint('dataset_id', 'branch')
    )
    op.create_table('merge_conflict',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('source_snapshot', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('target_snapshot', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('base_snapshot', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('column_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('base', sa.Text(), nullable=True),
    sa.Column('ours', sa.Text(), nullable=True),
    sa.Column('theirs', sa.Text(), nullable=True),
    sa.Column('ours_annotator', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('ours_labeled_at', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('ours_guideline', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('theirs_annotator', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('theirs_labeled_at', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('theirs_guideline', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_merge_conflict_dataset_id'), 'merge_conflict', ['dataset_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_merge_conflict_dataset_id'), table_name='merge_conflict')
    op.drop_table('merge_conflict')
    op.drop_table('branch_protection')
