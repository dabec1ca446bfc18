"""Issue 19: issued documents, the extraction lists (电子数据提取清单) and handover receipts (移交回执), and
package links (a court package shared by a link that expires).

Revision ID: 0019_lists
Revises: 0018_sm3
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import evidence_server.db

revision = '0019_lists'
down_revision = '0018_sm3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('issued_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('transfer_id', sa.String(length=36), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('content_key', sa.String(length=64), nullable=False),
    sa.Column('issued_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('json_sha256', sa.String(length=71), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('pdf_sha256', sa.String(length=71), nullable=False),
    sa.Column('tst', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['issued_by_id'], ['users.id'], name=op.f('fk_issued_documents_issued_by_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_issued_documents_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issued_documents')),
    sa.UniqueConstraint('uid', name=op.f('uq_issued_documents_uid'))
    )
    with op.batch_alter_table('issued_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issued_documents_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_issued_documents_transfer_id'), ['transfer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_issued_documents_unit_id'), ['unit_id'], unique=False)
    op.create_table('package_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('recipient', sa.String(length=300), nullable=False),
    sa.Column('created_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('downloads', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_package_links_case_id_cases')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_package_links_created_by_id_users')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_package_links_revoked_by_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_package_links_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_package_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_package_links_token_hash'))
    )
    with op.batch_alter_table('package_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_package_links_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_package_links_unit_id'), ['unit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('package_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_package_links_unit_id'))
        batch_op.drop_index(batch_op.f('ix_package_links_case_id'))
    op.drop_table('package_links')
    with op.batch_alter_table('issued_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issued_documents_unit_id'))
        batch_op.drop_index(batch_op.f('ix_issued_documents_transfer_id'))
        batch_op.drop_index(batch_op.f('ix_issued_documents_case_id'))
    op.drop_table('issued_documents')
