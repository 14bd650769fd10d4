"""consent grants may name applications (a bank then reads the application and its materials)

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consent_grants') as batch:
        batch.add_column(sa.Column('application_ids', sa.Text(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('consent_grants') as batch:
        batch.drop_column('application_ids')
