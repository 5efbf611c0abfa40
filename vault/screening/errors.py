"""Domain errors of the submission workflow and screening.

Messages are English source strings with ``{name}`` placeholders, shown translated
(``translations/ko-screening.toml``). States named in a message are translated too.
"""

from __future__ import annotations

from collections.abc import Callable

from vault.documents.models import SubmissionState
from vault.errors import DomainError


class ScreeningError(DomainError):
    """Base class: ``status`` and ``code`` say how the web layer answers."""

    status = 400
    code = "screening_error"
    #: The English message when the raiser gives none; ``{name}`` placeholders are filled
    #: from ``values``.
    template = "The submission cannot be changed this way."

    def __init__(self, message: str | None = None, **values: object) -> None:
        super().__init__(message or self.template, **values)

    def translated(self, gettext: Callable[..., str]) -> str:
        """The message in the reader's language, with any state named in it translated."""
        values = {name: gettext(value.value) if isinstance(value, SubmissionState) else value
                  for name, value in self.values.items()}
        return gettext(self.message_template, **values)


class IllegalTransition(ScreeningError):
    """The submission's state does not allow this change (e.g. withdrawn → submitted)."""

    status = 409
    code = "illegal_transition"
    template = "A submission cannot go from {current} to {target}."

    def __init__(self, current: SubmissionState, target: SubmissionState) -> None:
        super().__init__(current=current, target=target)
        self.current = current
        self.target = target


class DeadlinePassed(ScreeningError):
    """The programme's submission deadline (or the correction deadline) has passed."""

    status = 409
    code = "deadline_passed"


class CorrectionPending(ScreeningError):
    """A returned submission cannot be declared ineligible while corrections are accepted."""

    status = 409
    code = "correction_pending"
    template = "The applicant may still correct this submission until its correction deadline."


class EmptySubmission(ScreeningError):
    """Nothing was uploaded: there is nothing to submit."""

    status = 409
    code = "empty_submission"
    template = "There is nothing to submit yet: upload the documents first."


class InvalidDecision(ScreeningError):
    """A reason or a correction deadline is missing or unusable."""

    status = 422
    code = "invalid_decision"


class NotConfirmed(ScreeningError):
    """The applicant did not tick "I confirm the documents are final"."""

    status = 422
    code = "not_confirmed"
    template = "Tick the box to confirm that the documents are final."


class NotEligible(ScreeningError):
    """Only eligible submissions can enter the written evaluation."""

    status = 409
    code = "not_eligible"
    template = "Only eligible submissions can enter the written evaluation; this one is {state}."


class UnknownStage(ScreeningError):
    """The programme has no such stage, or it is not the one submissions enter first."""

    status = 409
    code = "unknown_stage"


class ReceiptNotFound(ScreeningError):
    """No such receipt for this submission."""

    status = 404
    code = "not_found"
    template = "No such receipt."
