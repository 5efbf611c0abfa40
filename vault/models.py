"""Every model, imported once so that ``Base.metadata`` is complete (Alembic, tests)."""

from vault.assignments.models import Assignment
from vault.audit.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditNode,
    AuditPending,
    AuditVerification,
)
from vault.conflicts.models import Affiliation, Conflict, ConflictDeclaration, Sanction
from vault.consortia.models import Consortium, ConsortiumContact, ConsortiumMember
from vault.db import Base
from vault.documents.models import (
    Document,
    DocumentVersion,
    Submission,
    SubmissionState,
    WatermarkCopy,
)
from vault.evaluation.models import ScoreSheet, ScoreSheetRevision, SheetState
from vault.grants.models import DualControlGrant
from vault.identity.models import ApiToken, LoginThrottle, RecoveryCode, Role, User
from vault.nda.models import NdaAcceptance, NdaVersion
from vault.organizations.models import Organization, OrganizationKind
from vault.programmes.models import Programme
from vault.resources.models import ResourceRequest
from vault.screening.models import (
    CheckResult,
    PdfAnalysis,
    PdfAnalysisClaim,
    ScreeningFinding,
    ScreeningRun,
    SubmissionEvent,
    SubmissionReceipt,
)

__all__ = [
    "Affiliation",
    "ApiToken",
    "Assignment",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditNode",
    "AuditPending",
    "AuditVerification",
    "Base",
    "CheckResult",
    "Conflict",
    "ConflictDeclaration",
    "Consortium",
    "ConsortiumContact",
    "ConsortiumMember",
    "Document",
    "DocumentVersion",
    "DualControlGrant",
    "LoginThrottle",
    "NdaAcceptance",
    "NdaVersion",
    "Organization",
    "OrganizationKind",
    "PdfAnalysis",
    "PdfAnalysisClaim",
    "Programme",
    "RecoveryCode",
    "ResourceRequest",
    "Role",
    "Sanction",
    "ScoreSheet",
    "ScoreSheetRevision",
    "ScreeningFinding",
    "ScreeningRun",
    "SheetState",
    "Submission",
    "SubmissionEvent",
    "SubmissionReceipt",
    "SubmissionState",
    "User",
    "WatermarkCopy",
]
