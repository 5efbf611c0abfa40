"""Key operations: status, rotation, rewrapping, retirement and crypto-shredding.

Rotation adds a key version that new uploads use; rewrapping moves existing data keys to the
current versions without touching any blob; retiring deletes versions no data key depends on;
shredding destroys a consortium's key so that its documents can never be read again, whatever
database backup is restored.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from vault.consortia.models import Consortium
from vault.crypto import content
from vault.documents.models import Document, DocumentVersion, Submission
from vault.keys import (
    KeyDestroyed,
    KeyInUse,
    KeyProvider,
    KeyProviderError,
    UnknownKey,
    UnwrapError,
)

#: Rows rewrapped per transaction: an interrupted rewrap loses at most one batch of work.
REWRAP_BATCH = 200


@dataclass
class KeyStatus:
    """One consortium key: its versions and how many data keys each version wraps."""

    key_id: str
    consortium: str
    destroyed: bool
    versions: list[int]
    current: int | None
    wrapped: dict[int, int] = field(default_factory=dict)


class KeyService:
    """Key operations on one database session."""

    def __init__(self, session: Session, *, keys: KeyProvider,
                 clock: Callable[[], datetime]) -> None:
        self.session = session
        self.keys = keys
        self.clock = clock

    def consortium(self, consortium_id: uuid.UUID) -> Consortium:
        """The consortium; raises ``UnknownKey`` when there is none with this id."""
        consortium = self.session.get(Consortium, consortium_id)
        if consortium is None:
            raise UnknownKey(f"No consortium has id {consortium_id}.")
        return consortium

    def status(self) -> list[KeyStatus]:
        """Every consortium's key with its versions and the data keys under each."""
        counts: dict[str, dict[int, int]] = defaultdict(dict)
        for key_id, key_version, count in self.session.execute(
            select(DocumentVersion.key_id, DocumentVersion.key_version, func.count())
            .group_by(DocumentVersion.key_id, DocumentVersion.key_version)
        ):
            counts[key_id][key_version] = count
        result = []
        for consortium in self.session.scalars(select(Consortium).order_by(Consortium.name)):
            key_id = consortium.key_id
            versions = self.keys.versions(key_id)
            result.append(KeyStatus(
                key_id=key_id, consortium=consortium.name,
                destroyed=self.keys.is_destroyed(key_id), versions=versions,
                current=max(versions) if versions else None, wrapped=counts.get(key_id, {}),
            ))
        return result

    def rotate(self, consortium_id: uuid.UUID | None = None) -> dict[str, int]:
        """Add a key version for one consortium (or all); new uploads use it."""
        consortia = ([self.consortium(consortium_id)] if consortium_id else
                     list(self.session.scalars(select(Consortium).order_by(Consortium.name))))
        rotated = {}
        for consortium in consortia:
            if self.keys.is_destroyed(consortium.key_id):
                continue
            self.keys.ensure(consortium.key_id)
            rotated[consortium.key_id] = self.keys.rotate(consortium.key_id)
        return rotated

    def _stale_condition(self) -> ColumnElement[bool]:
        """Data keys wrapped under a version older than their key's current one (one
        condition per key, so the database does the filtering)."""
        key_ids = self.session.scalars(select(DocumentVersion.key_id).distinct()).all()
        conditions = []
        for key_id in key_ids:
            versions = self.keys.versions(key_id)
            if versions:
                conditions.append(and_(DocumentVersion.key_id == key_id,
                                       DocumentVersion.key_version < max(versions)))
        return or_(false(), *conditions)

    def stale_count(self) -> int:
        """How many data keys are wrapped under a version older than their key's current one."""
        return self.session.scalar(
            select(func.count()).select_from(DocumentVersion).where(self._stale_condition())
        ) or 0

    def _stale_ids(self, limit: int) -> list[uuid.UUID]:
        return list(self.session.scalars(
            select(DocumentVersion.id).where(self._stale_condition())
            .order_by(DocumentVersion.id).limit(limit)
        ))

    def verify_provider(self) -> None:
        """Prove the key provider opens the keys the database depends on, reading only.

        First the provider's own check (the keyring's canary, an HSM log-in), then, for each
        consortium key that wraps a data key of a consortium not shredded, one of those data
        keys unwrapped: a wrong master key, a keyring that lost keys or an HSM token without the
        key handles is found here, at start-up, instead of as a 500 and a false integrity alarm
        on the first download. A key the provider reports destroyed passes: a shred interrupted
        between the provider and the database still leaves documents shown as shredded.
        Raises ``KeyProviderError`` naming the provider, the key and what to check.
        """
        self.keys.verify()
        key_ids = self.session.scalars(
            select(DocumentVersion.key_id).distinct()
            .join(Document, Document.id == DocumentVersion.document_id)
            .join(Submission, Submission.id == Document.submission_id)
            .join(Consortium, Consortium.id == Submission.consortium_id)
            .where(Consortium.shredded_at.is_(None))
        ).all()
        for key_id in sorted(key_ids):
            row = self.session.scalars(
                select(DocumentVersion).where(DocumentVersion.key_id == key_id)
                .order_by(DocumentVersion.id).limit(1)).one()
            try:
                self.keys.unwrap(row.key_id, row.key_version, row.wrapped_key,
                                 self._context(row))
            except KeyDestroyed:
                continue
            except UnknownKey as error:
                count = self.session.scalar(select(func.count()).select_from(DocumentVersion)
                                            .where(DocumentVersion.key_id == key_id))
                raise KeyProviderError(
                    f"The key provider ({self.keys.name}) has no {key_id} "
                    f"v{row.key_version} ({error}), which {count} data key(s) in the database "
                    "need: check VAULT_KEY_PROVIDER and the keyring file or HSM token.") from None
            except UnwrapError as error:
                raise KeyProviderError(
                    f"The key provider ({self.keys.name}) does not open the data keys wrapped "
                    f"under {key_id} v{row.key_version} ({error}): check VAULT_MASTER_KEY and "
                    "the keyring file or HSM token.") from None

    def _context(self, row: DocumentVersion) -> bytes:
        """The encryption context a version's data key is wrapped with."""
        document = self.session.get(Document, row.document_id)
        submission = self.session.get(Submission, document.submission_id)
        consortium = submission.consortium
        return content.content_context(
            programme=consortium.programme.code, consortium_id=consortium.id,
            document_id=document.id, version=row.version, format_version=row.format_version,
        )

    def rewrap_batch(self, limit: int = REWRAP_BATCH) -> int:
        """Rewrap up to ``limit`` data keys under their key's current version; returns how many.

        No blob is read or written: only the wrapped data key and its key version change, so
        the work is safe to interrupt and to run again.
        """
        done = 0
        for version_id in self._stale_ids(limit):
            row = self.session.get(DocumentVersion, version_id)
            if row is None:
                continue
            context = self._context(row)
            target = self.keys.current_version(row.key_id)
            data_key = self.keys.unwrap(row.key_id, row.key_version, row.wrapped_key, context)
            row.wrapped_key = self.keys.wrap(row.key_id, target, data_key, context)
            row.key_version = target
            done += 1
        self.session.flush()
        return done

    def retire(self, below: int) -> dict[str, list[int]]:
        """Delete every key version lower than ``below``; raises ``KeyInUse`` while any data key
        still depends on one (run rewrap first)."""
        in_use = self.session.execute(
            select(DocumentVersion.key_id, func.count())
            .where(DocumentVersion.key_version < below)
            .group_by(DocumentVersion.key_id)
        ).all()
        if in_use:
            described = ", ".join(f"{key_id} ({count})" for key_id, count in in_use)
            raise KeyInUse(f"Data keys still depend on versions below {below}: {described}. "
                           "Run 'vault keys rewrap' first.")
        retired = {}
        for key_id in self.keys.key_ids():
            if self.keys.is_destroyed(key_id):
                continue
            versions = self.keys.versions(key_id)
            if versions and max(versions) >= below:
                removed = self.keys.retire(key_id, below)
                if removed:
                    retired[key_id] = removed
        return retired

    def shred(self, consortium_id: uuid.UUID) -> Consortium:
        """Destroy the consortium's key: all its documents become unreadable, for good."""
        consortium = self.consortium(consortium_id)
        try:
            self.keys.destroy(consortium.key_id)
        except UnknownKey:
            # Nothing was ever encrypted for it; record the destruction so nothing ever will be.
            self.keys.ensure(consortium.key_id)
            self.keys.destroy(consortium.key_id)
        except KeyDestroyed:  # pragma: no cover - providers report destroyed keys idempotently
            pass
        consortium.shredded_at = self.clock()
        self.session.flush()
        return consortium
