"""key lifecycle: the generations of the service's chain accounts, compromised static-code keys, which key signed each enterprise's static code

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('key_name', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('compromised_from_block', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('purpose', 'generation'),
    sa.UniqueConstraint('key_name')
    )
    op.create_index('ix_service_keys_purpose', 'service_keys', ['purpose'])
    with op.batch_alter_table('code_keys') as batch:
        batch.add_column(sa.Column('compromised_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('static_code_issues',
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('kid', sa.Integer(), nullable=False),
    sa.Column('first_issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id']),
    sa.PrimaryKeyConstraint('enterprise_id', 'kid')
    )
    op.create_index('ix_static_code_issues_kid', 'static_code_issues', ['kid'])


def downgrade() -> None:
    op.drop_index('ix_static_code_issues_kid', 'static_code_issues')
    op.drop_table('static_code_issues')
    with op.batch_alter_table('code_keys') as batch:
        batch.drop_column('compromised_at')
    op.drop_index('ix_service_keys_purpose', 'service_keys')
    op.drop_table('service_keys')
