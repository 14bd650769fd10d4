"""materials encrypted at rest: each object's data key, wrapped by a key-store wrapping key

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('object_keys',
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('cipher', sa.String(length=16), nullable=False),
    sa.Column('wrapping', sa.String(length=64), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('account', 'sha256')
    )
    op.create_index(op.f('ix_object_keys_wrapping'), 'object_keys', ['wrapping'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_object_keys_wrapping'), table_name='object_keys')
    op.drop_table('object_keys')
