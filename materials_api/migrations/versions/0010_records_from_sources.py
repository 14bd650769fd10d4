"""records from the authorities' systems: source ids and versions, superseding, import checkpoints, follower cursors

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('records') as batch:
        batch.add_column(sa.Column('source_id', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('source_version', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('superseded_by_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_records_superseded_by', 'records', ['superseded_by_id'], ['id'])
    op.create_index('ix_records_source', 'records', ['issuer_organisation_id', 'source_id', 'source_version'],
                    unique=True)
    op.create_table('record_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('source_name', sa.String(length=500), nullable=False),
    sa.Column('next_line', sa.Integer(), nullable=False),
    sa.Column('applied', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_record_imports_source', 'record_imports', ['organisation_id', 'source_sha256'], unique=True)
    op.create_table('record_import_rejections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.String(length=100), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['record_imports.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_record_import_rejections_import_id'), 'record_import_rejections', ['import_id'])
    op.create_table('record_source_cursors',
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('source_url', sa.String(length=500), nullable=False),
    sa.Column('cursor', sa.String(length=200), nullable=False),
    sa.Column('applied', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id']),
    sa.PrimaryKeyConstraint('organisation_id', 'source_url')
    )


def downgrade() -> None:
    op.drop_table('record_source_cursors')
    op.drop_index(op.f('ix_record_import_rejections_import_id'), table_name='record_import_rejections')
    op.drop_table('record_import_rejections')
    op.drop_index('ix_record_imports_source', table_name='record_imports')
    op.drop_table('record_imports')
    op.drop_index('ix_records_source', table_name='records')
    with op.batch_alter_table('records') as batch:
        batch.drop_constraint('fk_records_superseded_by', type_='foreignkey')
        batch.drop_column('superseded_by_id')
        batch.drop_column('source_version')
        batch.drop_column('source_id')
