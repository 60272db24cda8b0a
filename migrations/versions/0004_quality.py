"""quality: policies, gate results, waivers, pins

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 17:15:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
