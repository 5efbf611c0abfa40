"""versions the stamper refused for a reason of the file, kept so that readers are told at once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 02:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vault.db

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('watermark_refusals',
    sa.Column('version_id', sa.Uuid(), nullable=False),
    sa.Column('stamper', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('refused_at', vault.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['document_versions.id'], name=op.f('fk_watermark_refusals_version_id_document_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', name=op.f('pk_watermark_refusals'))
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table('watermark_refusals')
