"""chain mirror: the contract's events a verdict depends on, and the blocks read

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chain_events',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('log_index', sa.BigInteger(), nullable=False),
    sa.Column('item', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('subject', sa.String(length=66), nullable=False),
    sa.Column('account', sa.String(length=42), nullable=True),
    sa.Column('value', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('block_number', 'log_index', 'item')
    )
    op.create_index('ix_chain_events_lookup', 'chain_events', ['kind', 'subject', 'item', 'block_number'])
    op.create_table('chain_mirror_blocks',
    sa.Column('number', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=66), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('read_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('number')
    )
    op.create_table('chain_mirror_marks',
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('changes', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('chain_mirror_marks')
    op.drop_table('chain_mirror_blocks')
    op.drop_index('ix_chain_events_lookup', table_name='chain_events')
    op.drop_table('chain_events')
