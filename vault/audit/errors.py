"""Domain errors of audit exports. Messages are English source strings, translated for display."""

from __future__ import annotations

from vault.errors import DomainError


class AuditExportError(DomainError):
    """Base class: an export of the audit log cannot be made as asked."""

    status = 400
    code = "invalid_export_filter"


class InvalidExportFilter(AuditExportError):
    """The consortium or document to export by is malformed, repeated, or both are given."""


class UnknownExportFilter(AuditExportError):
    """The consortium or document to export by does not exist in this vault."""

    status = 404
    code = "not_found"
