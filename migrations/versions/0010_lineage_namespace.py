"""lineage: the registry's dataset namespace, stored once instead of derived from the host name

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 20:50:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lineage_namespace',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('namespace', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column('fixed_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('lineage_namespace')
