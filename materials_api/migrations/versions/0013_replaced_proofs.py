"""replaced proofs: a material's earlier place in a batch anchored by a key declared compromised, once it is witnessed again under the current key

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('replaced_proofs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('material_id', sa.Integer(), nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('leaf_index', sa.Integer(), nullable=False),
    sa.Column('anchorer', sa.String(length=42), nullable=False),
    sa.Column('replaced_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['material_id'], ['materials.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_replaced_proofs_place', 'replaced_proofs', ['root', 'leaf_index'], unique=False)
    op.create_index(op.f('ix_replaced_proofs_material_id'), 'replaced_proofs', ['material_id'], unique=False)
    op.add_column('materials', sa.Column('proof_replaced_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute('ALTER TABLE materials DROP COLUMN proof_replaced_at')
    op.drop_index(op.f('ix_replaced_proofs_material_id'), table_name='replaced_proofs')
    op.drop_index('ix_replaced_proofs_place', table_name='replaced_proofs')
    op.drop_table('replaced_proofs')
