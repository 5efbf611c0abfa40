"""The one byte form of an audit event, kept free of the database layer so that the offline
verifier (``vault.audit.verify``) can import it on an auditor's machine."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def canonical_json(value: object) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the one byte form of an event."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(moment: datetime) -> str:
    """UTC, microseconds, ``Z``: e.g. ``2026-12-01T01:00:00.000000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
