"""Domain errors of assignments.

Each error carries a short English ``reason`` (recorded in the audit log with
``assignment:refused``) and a message ``template`` with its ``values``, so that the web layer can
show it in the reader's language (``str(error)`` is the English message).
"""

from __future__ import annotations

from vault.errors import DomainError


class AssignmentError(DomainError):
    """Base class: an assignment cannot be made or found."""

    status = 400
    code = "assignment_error"
    #: The English message; ``{name}`` placeholders are filled from ``values``.
    template = "The assignment cannot be made."
    #: Recorded in the audit log (English, no personal data beyond what the event names).
    default_reason = "refused"

    def __init__(self, reason: str | None = None, **values: object) -> None:
        self.reason = reason or self.default_reason
        super().__init__(self.template, **values)


class UnknownStage(AssignmentError):
    """The programme defines no such stage (``call`` is not a review stage)."""

    status = 404
    code = "unknown_stage"
    template = "The programme has no such review stage."
    default_reason = "unknown stage"


class UnknownSubmission(AssignmentError):
    """No such submission in the programme (or the officer may not see it)."""

    status = 404
    code = "unknown_submission"
    template = "The programme has no such submission."
    default_reason = "unknown submission"


class UnknownReviewer(AssignmentError):
    """No account with this id or e-mail address."""

    status = 404
    code = "unknown_reviewer"
    template = "No such reviewer account."
    default_reason = "unknown reviewer"


class NotAReviewer(AssignmentError):
    """The account exists but is not an active reviewer."""

    status = 422
    code = "not_a_reviewer"
    template = "{name} is not an active reviewer."
    default_reason = "not an active reviewer"


class ReviewerConflicted(AssignmentError):
    """The reviewer has a conflict of interest in effect with the submission's consortium.

    ``sources`` are the ``ConflictSource`` values of the conflicts in effect.
    """

    status = 409
    code = "conflict_of_interest"
    template = "{name} has a conflict of interest with this consortium ({sources})."
    default_reason = "conflict of interest"

    def __init__(self, *, name: str, sources: tuple[str, ...]) -> None:
        self.sources = sources
        # The officer is told how the conflict arose; the log's reason is not, since "detected"
        # next to a reviewer and a submission says that an organisation of the reviewer's is
        # listed by that consortium. The log says that a conflict was acted on, not why.
        super().__init__(self.default_reason, name=name, sources=", ".join(sources))


class ReviewerSanctioned(AssignmentError):
    """The reviewer was sanctioned within the programme's exclusion period."""

    status = 409
    code = "sanctioned"
    template = "{name} was sanctioned on {date} and is excluded from reviewing."
    default_reason = "sanctioned"


class AlreadyAssigned(AssignmentError):
    """The reviewer already sits on this submission's panel for this stage."""

    status = 409
    code = "already_assigned"
    template = "{name} is already assigned to this submission in this stage."
    default_reason = "already assigned"


class AssignmentNotFound(AssignmentError):
    """No such assignment (or not in this programme)."""

    status = 404
    code = "not_found"
    template = "There is no such assignment."
    default_reason = "unknown assignment"
