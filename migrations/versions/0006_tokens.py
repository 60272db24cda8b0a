"""auth: API tokens (name, role, dataset scope, SHA-256 of the secret)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:40:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('datasets', sa.Text(), nullable=False),
    sa.Column('secret_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_api_token_name'), 'api_token', ['name'], unique=True)
    op.create_index(op.f('ix_api_token_secret_sha256'), 'api_token', ['secret_sha256'], unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_api_token_secret_sha256'), table_name='api_token')
    op.drop_index(op.f('ix_api_token_name'), table_name='api_token')
    op.drop_table('api_token')
