"""Which consortium a conflict is about, sealed, and the keyed digest that finds it.

A conflict row names a person in plaintext (officers list and decide conflicts per person) but
not the consortium: ``consortium_sealed`` holds its id under the field key, and
``link_digest`` is HMAC(link key, person, consortium). Every question the vault asks is either
"the conflicts of this person" (a few rows, opened) or "is there one for this person and this
consortium" (one digest, one indexed lookup), so nothing needs the pair in plaintext, and
without the key no candidate pair can be tested against the column.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.conflicts.models import Conflict, ConflictStatus
from vault.crypto import FieldCipher

_TABLE = Conflict.__tablename__
#: Keeps these digests apart from any other link's.
_KIND = "conflict:user-consortium"


def conflict_link(cipher: FieldCipher, user_id: uuid.UUID, consortium_id: uuid.UUID) -> str:
    """The digest that stands for "``user_id`` has a conflict with ``consortium_id``"."""
    return cipher.link_digest(_KIND, uuid.UUID(str(user_id)), uuid.UUID(str(consortium_id)))


def new_conflict(cipher: FieldCipher, *, user_id: uuid.UUID, consortium_id: uuid.UUID,
                 **fields: Any) -> Conflict:
    """A conflict row with its consortium sealed and its link digest set (not yet added)."""
    row = Conflict(id=fields.pop("id", None) or uuid.uuid4(), user_id=user_id, **fields)
    row.consortium_sealed = cipher.seal(_TABLE, "consortium", row.id, str(consortium_id))
    row.link_digest = conflict_link(cipher, user_id, consortium_id)
    return row


def consortium_of(cipher: FieldCipher, conflict: Conflict) -> uuid.UUID:
    """The id of the conflict's consortium, opened; raises ``DecryptionError`` if the sealed
    value was altered or moved to another row."""
    return uuid.UUID(cipher.open(_TABLE, "consortium", conflict.id, conflict.consortium_sealed))


def conflicted_consortia(session: Session, cipher: FieldCipher,
                         user_id: uuid.UUID) -> set[uuid.UUID]:
    """The consortia the person has a conflict in effect with (pending or confirmed)."""
    # Two columns, not the entity: this runs for every decision about a reviewer or officer.
    rows = session.execute(select(Conflict.id, Conflict.consortium_sealed).where(
        Conflict.user_id == user_id, Conflict.status != ConflictStatus.DISMISSED))
    return {uuid.UUID(cipher.open(_TABLE, "consortium", row_id, sealed))
            for row_id, sealed in rows}


def conflicts_between(session: Session, cipher: FieldCipher, user_id: uuid.UUID,
                      consortium_id: uuid.UUID, *, in_effect: bool = True) -> list[Conflict]:
    """The person's conflicts with this consortium (only those in effect, by default)."""
    query = select(Conflict).where(
        Conflict.link_digest == conflict_link(cipher, user_id, consortium_id),
        Conflict.user_id == user_id)
    if in_effect:
        query = query.where(Conflict.status != ConflictStatus.DISMISSED)
    return list(session.scalars(query.order_by(Conflict.created_at)))
