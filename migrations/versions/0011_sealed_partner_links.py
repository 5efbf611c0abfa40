"""seal the links that name a consortium's partners: a person's organisations, a conflict's
consortium

A plain person → organisation link (``users.organization_id``, ``affiliations.organization_id``)
joined with a plain person → consortium link (``conflicts``) named a sealed partner of the
consortium. Both links are now sealed with the field key (associated data = table, column, row
id); a conflict also gets ``link_digest``, HMAC(link key, person, consortium), for lookups.

Existing rows are converted, so the migration needs the field key: ``vault init`` and ``vault db
upgrade|downgrade`` pass it; on an empty database it is not needed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 02:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from vault.crypto import FieldCipher

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The digests' kind; ``vault.conflicts.links`` uses the same one (written out here so that a
#: later change there cannot change what this revision wrote).
_CONFLICT_LINK = "conflict:user-consortium"

_users = sa.table("users", sa.column("id", sa.Uuid()), sa.column("organization_id", sa.Uuid()),
                  sa.column("organization_sealed", sa.LargeBinary()))
_affiliations = sa.table("affiliations", sa.column("id", sa.Uuid()),
                         sa.column("organization_id", sa.Uuid()),
                         sa.column("organization_sealed", sa.LargeBinary()))
_conflicts = sa.table("conflicts", sa.column("id", sa.Uuid()), sa.column("user_id", sa.Uuid()),
                      sa.column("consortium_id", sa.Uuid()),
                      sa.column("consortium_sealed", sa.LargeBinary()),
                      sa.column("link_digest", sa.String(64)))


def _cipher(rows: int) -> FieldCipher | None:
    """The field cipher, required only when there are rows to convert."""
    key = context.config.attributes.get("field_key")
    if key:
        return FieldCipher(key)
    if rows:
        raise RuntimeError("migration 0011 seals existing rows and needs VAULT_FIELD_KEY: "
                           "run it with `vault db upgrade` (or `vault init`)")
    return None


def _count(table: sa.TableClause, column: str) -> int:
    return op.get_bind().scalar(
        sa.select(sa.func.count()).select_from(table).where(table.c[column].is_not(None))) or 0


def upgrade() -> None:
    """Apply this revision: add the sealed columns, convert every row, drop the plain ones."""
    bind = op.get_bind()
    cipher = _cipher(_count(_users, "organization_id") + _count(_affiliations, "organization_id")
                     + _count(_conflicts, "consortium_id"))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organization_sealed', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('affiliations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organization_sealed', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('conflicts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consortium_sealed', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('link_digest', sa.String(length=64), nullable=True))

    if cipher is not None:
        for table in (_users, _affiliations):
            for row_id, organization_id in bind.execute(
                    sa.select(table.c.id, table.c.organization_id)
                    .where(table.c.organization_id.is_not(None))).all():
                bind.execute(table.update().where(table.c.id == row_id).values(
                    organization_sealed=cipher.seal(table.name, "organization", row_id,
                                                    str(organization_id))))
        for row_id, user_id, consortium_id in bind.execute(
                sa.select(_conflicts.c.id, _conflicts.c.user_id, _conflicts.c.consortium_id)
        ).all():
            bind.execute(_conflicts.update().where(_conflicts.c.id == row_id).values(
                consortium_sealed=cipher.seal("conflicts", "consortium", row_id,
                                              str(consortium_id)),
                link_digest=cipher.link_digest(_CONFLICT_LINK, user_id, consortium_id)))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_organization_id'))
        batch_op.drop_constraint(batch_op.f('fk_users_organization_id_organizations'),
                                 type_='foreignkey')
        batch_op.drop_column('organization_id')
    with op.batch_alter_table('affiliations', schema=None) as batch_op:
        batch_op.alter_column('organization_sealed', existing_type=sa.LargeBinary(),
                              nullable=False)
        batch_op.drop_index(batch_op.f('ix_affiliations_organization_id'))
        batch_op.drop_constraint(batch_op.f('fk_affiliations_organization_id_organizations'),
                                 type_='foreignkey')
        batch_op.drop_column('organization_id')
    with op.batch_alter_table('conflicts', schema=None) as batch_op:
        batch_op.alter_column('consortium_sealed', existing_type=sa.LargeBinary(),
                              nullable=False)
        batch_op.alter_column('link_digest', existing_type=sa.String(length=64),
                              nullable=False)
        batch_op.create_index(batch_op.f('ix_conflicts_link_digest'), ['link_digest'],
                              unique=False)
        batch_op.drop_index(batch_op.f('ix_conflicts_consortium_id'))
        batch_op.drop_constraint(batch_op.f('fk_conflicts_consortium_id_consortia'),
                                 type_='foreignkey')
        batch_op.drop_column('consortium_id')


def downgrade() -> None:
    """Revert this revision: open the sealed links back into plain columns."""
    bind = op.get_bind()
    cipher = _cipher(_count(_users, "organization_sealed")
                     + _count(_affiliations, "organization_sealed")
                     + _count(_conflicts, "consortium_sealed"))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organization_id', sa.Uuid(), nullable=True))
    with op.batch_alter_table('affiliations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organization_id', sa.Uuid(), nullable=True))
    with op.batch_alter_table('conflicts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consortium_id', sa.Uuid(), nullable=True))

    if cipher is not None:
        for table in (_users, _affiliations):
            for row_id, sealed in bind.execute(
                    sa.select(table.c.id, table.c.organization_sealed)
                    .where(table.c.organization_sealed.is_not(None))).all():
                opened = uuid.UUID(cipher.open(table.name, "organization", row_id, sealed))
                bind.execute(table.update().where(table.c.id == row_id).values(
                    organization_id=opened))
        for row_id, sealed in bind.execute(
                sa.select(_conflicts.c.id, _conflicts.c.consortium_sealed)).all():
            opened = uuid.UUID(cipher.open("conflicts", "consortium", row_id, sealed))
            bind.execute(_conflicts.update().where(_conflicts.c.id == row_id).values(
                consortium_id=opened))

    with op.batch_alter_table('conflicts', schema=None) as batch_op:
        batch_op.alter_column('consortium_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_conflicts_consortium_id_consortia'),
                                    'consortia', ['consortium_id'], ['id'], ondelete='CASCADE')
        batch_op.create_index(batch_op.f('ix_conflicts_consortium_id'), ['consortium_id'],
                              unique=False)
        batch_op.drop_index(batch_op.f('ix_conflicts_link_digest'))
        batch_op.drop_column('link_digest')
        batch_op.drop_column('consortium_sealed')
    with op.batch_alter_table('affiliations', schema=None) as batch_op:
        batch_op.alter_column('organization_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_affiliations_organization_id_organizations'),
                                    'organizations', ['organization_id'], ['id'],
                                    ondelete='RESTRICT')
        batch_op.create_index(batch_op.f('ix_affiliations_organization_id'),
                              ['organization_id'], unique=False)
        batch_op.drop_column('organization_sealed')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_users_organization_id_organizations'),
                                    'organizations', ['organization_id'], ['id'],
                                    ondelete='RESTRICT')
        batch_op.create_index(batch_op.f('ix_users_organization_id'), ['organization_id'],
                              unique=False)
        batch_op.drop_column('organization_sealed')
