"""gm profile: a static-code key is an SM2 key kept wrapped beside its row (public key, wrapped bytes)

Revision ID: 0018
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('code_keys') as batch:
        batch.add_column(sa.Column('public_key', sa.LargeBinary(length=64), nullable=True))
        batch.add_column(sa.Column('wrapped_key', sa.LargeBinary(length=128), nullable=True))
        batch.add_column(sa.Column('wrapped_by', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('code_keys') as batch:
        batch.drop_column('wrapped_by')
        batch.drop_column('wrapped_key')
        batch.drop_column('public_key')
