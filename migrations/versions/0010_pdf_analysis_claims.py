"""claims on PDF analyses, so that one background worker analyses each version

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vault.db

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('pdf_analysis_claims',
    sa.Column('version_id', sa.Uuid(), nullable=False),
    sa.Column('rules_sha256', sa.String(length=64), nullable=False),
    sa.Column('claimed_at', vault.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['document_versions.id'], name=op.f('fk_pdf_analysis_claims_version_id_document_versions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('version_id', 'rules_sha256', name=op.f('pk_pdf_analysis_claims'))
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table('pdf_analysis_claims')
