"""Actions and actors: the vocabulary every authorization decision is made in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from vault.identity.models import Role


class Action(StrEnum):
    """Actions, ``resource:verb``, exactly the Cedar actions of ``policies/vault.cedarschema``."""

    PROGRAMME_VIEW = "programme:view"
    PROGRAMME_MANAGE = "programme:manage"
    NDA_VIEW = "nda:view"
    NDA_ACCEPT = "nda:accept"
    NDA_REPORT = "nda:report"
    CONFLICT_DECLARE = "conflict:declare"
    CONFLICT_MANAGE = "conflict:manage"
    CONFLICT_CHALLENGE = "conflict:challenge"
    ASSIGNMENT_LIST = "assignment:list"
    ASSIGNMENT_MANAGE = "assignment:manage"
    WATERMARK_LOOKUP = "watermark:lookup"
    #: Screen every submission of the programme (a run of the automatic checks).
    SCREENING_RUN = "screening:run"
    #: The programme's screening overview and its exports.
    SCREENING_REPORT = "screening:report"
    #: Programme totals of the resource requests, for the budget deliberation.
    RESOURCE_REQUEST_TOTALS = "resource-request:totals"
    CONSORTIUM_VIEW = "consortium:view"
    SUBMISSION_VIEW = "submission:view"
    PARTNER_LIST_VIEW = "partner-list:view"
    PARTNER_LIST_EDIT = "partner-list:edit"
    DOCUMENT_UPLOAD = "document:upload"
    #: Submit (or resubmit, or recall before the deadline) the submission.
    SUBMISSION_SUBMIT = "submission:submit"
    SUBMISSION_WITHDRAW = "submission:withdraw"
    RESOURCE_REQUEST_VIEW = "resource-request:view"
    RESOURCE_REQUEST_EDIT = "resource-request:edit"
    #: A submission's screening checklist, findings and decision.
    SCREENING_VIEW = "screening:view"
    #: Decide eligible, returned or ineligible.
    SCREENING_DECIDE = "screening:decide"
    #: Save and submit one's own score sheet for the submission in its current stage.
    SCORE_SHEET_WRITE = "score-sheet:write"
    #: Reopen a submitted score sheet (with a reason) so that its reviewer may change it.
    SCORE_SHEET_REOPEN = "score-sheet:reopen"
    #: Read the score sheets of a submission (or list a programme's stages' sheets).
    SCORE_SHEET_VIEW = "score-sheet:view"
    #: A programme's stage rounds: state, reviewer progress and the ranking.
    STAGE_VIEW = "stage:view"
    #: Close (or reopen, with a reason) a stage's panel.
    STAGE_CLOSE = "stage:close"
    #: Confirm a closed stage's ranking (an immutable snapshot).
    STAGE_CONFIRM = "stage:confirm"
    #: Publish a confirmed stage's result: outcomes applied, passing submissions move on.
    STAGE_PUBLISH = "stage:publish"
    #: Import an imported score component's CSV.
    STAGE_IMPORT = "stage:import"
    #: Disqualify a submission in a stage (or lift the disqualification).
    STAGE_DISQUALIFY = "stage:disqualify"
    #: Export a confirmed ranking (CSV or JSON).
    STAGE_EXPORT = "stage:export"
    #: Enter a submission that is out into a stage decided by a panel majority.
    STAGE_ENTER_CANDIDATE = "stage:enter-candidate"
    #: The submission's own published stage outcomes (its applicants).
    OUTCOME_VIEW = "outcome:view"
    #: The panels of published stages that disclose them (the programme's applicants).
    PANEL_VIEW_DISCLOSED = "panel:view-disclosed"
    #: A document's metadata: versions, sizes, hashes, file names.
    DOCUMENT_VIEW = "document:view"
    #: A document's content.
    DOCUMENT_READ = "document:read"
    GRANT_REQUEST = "grant:request"
    GRANT_APPROVE = "grant:approve"
    AUDIT_LOG_VIEW = "audit-log:view"
    AUDIT_LOG_EXPORT = "audit-log:export"
    AUDIT_LOG_CHECK = "audit-log:check"
    AUDIT_CHECKPOINT_VIEW = "audit-checkpoint:view"
    DOCUMENT_ACCESS_REPORT = "document:access-report"
    USER_LIST = "user:list"
    USER_MANAGE = "user:manage"
    KEY_MANAGE = "key:manage"


@dataclass(frozen=True)
class Actor:
    """Who is acting: passed to services instead of any web framework global.

    ``role`` ``None`` is the host operator running the ``vault`` command line.
    """

    user_id: uuid.UUID | None
    role: Role | None
    #: Consortia an applicant acts for (empty for other roles).
    consortium_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    #: Whether this session (or the session a token was created from) passed a second factor.
    mfa: bool = False

    @classmethod
    def operator(cls) -> Actor:
        """The host operator (the command line, with shell access to the server)."""
        return cls(user_id=None, role=None)

    @property
    def role_name(self) -> str:
        """The role as recorded in the audit log (``operator`` for the command line)."""
        return self.role.value if self.role is not None else "operator"
