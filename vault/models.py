"""Every model, imported once so that ``Base.metadata`` is complete (Alembic, tests)."""

from vault.audit.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditNode,
    AuditPending,
    AuditVerification,
)
from vault.consortia.models import Consortium, ConsortiumContact, ConsortiumMember
from vault.db import Base
from vault.documents.models import Document, DocumentVersion, Submission, SubmissionState
from vault.identity.models import ApiToken, LoginThrottle, RecoveryCode, Role, User
from vault.organizations.models import Organization, OrganizationKind
from vault.programmes.models import Programme

__all__ = [
    "ApiToken",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditNode",
    "AuditPending",
    "AuditVerification",
    "Base",
    "Consortium",
    "ConsortiumContact",
    "ConsortiumMember",
    "Document",
    "DocumentVersion",
    "LoginThrottle",
    "Organization",
    "OrganizationKind",
    "Programme",
    "RecoveryCode",
    "Role",
    "Submission",
    "SubmissionState",
    "User",
]
