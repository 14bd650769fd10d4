"""materials looked up by (enterprise, content hash): an upload's idempotency check reads one
index entry instead of every material the enterprise has

Revision ID: 0008
Revises: 0007
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_materials_enterprise_sha256', 'materials', ['enterprise_id', 'sha256'])


def downgrade() -> None:
    op.drop_index('ix_materials_enterprise_sha256', table_name='materials')
