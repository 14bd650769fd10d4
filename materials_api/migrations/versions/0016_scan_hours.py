"""code verdicts per hour, by status: the district page's scans per hour

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scan_hours',
    sa.Column('hour', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'status')
    )


def downgrade() -> None:
    op.drop_table('scan_hours')
