"""records: no index on category (no query filters by it; every bulk insert paid for it)

Revision ID: 0012
Revises: 0011
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_records_category', table_name='records')  # a plain DROP INDEX: no table copy


def downgrade() -> None:
    op.create_index('ix_records_category', 'records', ['category'], unique=False)
