"""records: leaner rows for bulk imports — no index on category (no query selects by it), no stored Merkle path (made from the batch's leaves when a bundle is asked for)

A downgrade brings the column back empty ("[]"): bundles of records need this version or later.

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_records_category', table_name='records')  # a plain DROP INDEX: no table copy
    # Native DROP COLUMN (SQLite ≥ 3.35, PostgreSQL): a batch-mode table copy would drop the old
    # table row by row, each checked against the self-referencing superseded_by key (minutes for
    # a million records).
    op.execute('ALTER TABLE records DROP COLUMN proof')


def downgrade() -> None:
    op.create_index('ix_records_category', 'records', ['category'], unique=False)
    with op.batch_alter_table('records') as batch_op:
        batch_op.add_column(sa.Column('proof', sa.Text(), nullable=False, server_default='[]'))
