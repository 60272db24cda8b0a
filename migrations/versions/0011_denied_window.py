"""auth: the request.denied throttle's window per token or client address, in the catalog so every
server process shares it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 03:10:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'denied_window',
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('window_started', sa.Double(), nullable=False),
        sa.Column('suppressed', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index(op.f('ix_denied_window_window_started'), 'denied_window', ['window_started'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_denied_window_window_started'), table_name='denied_window')
    op.drop_table('denied_window')
