"""sign-in failures per user name and client address: the lock-out a stranger cannot use against a person

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sign_in_failures',
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('username', 'address')
    )
    op.create_index(op.f('ix_sign_in_failures_updated_at'), 'sign_in_failures', ['updated_at'], unique=False)
    with op.batch_alter_table('users') as batch:
        batch.drop_column('failed_logins')
        batch.drop_column('locked_until')


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locked_until', sa.Float(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
    op.drop_index(op.f('ix_sign_in_failures_updated_at'), table_name='sign_in_failures')
    op.drop_table('sign_in_failures')
