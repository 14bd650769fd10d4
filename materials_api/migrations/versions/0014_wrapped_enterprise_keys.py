"""wrapped enterprise keys: each enterprise's dynamic-code key made in the key store and kept here only wrapped by the store's wrapping key

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('enterprise_code_signers') as batch:
        batch.add_column(sa.Column('public_key', sa.LargeBinary(length=64), nullable=True))
        batch.add_column(sa.Column('wrapped_key', sa.LargeBinary(length=128), nullable=True))
        batch.add_column(sa.Column('wrapped_by', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('enterprise_code_signers') as batch:
        batch.drop_column('wrapped_by')
        batch.drop_column('wrapped_key')
        batch.drop_column('public_key')
