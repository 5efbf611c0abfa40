"""Domain errors of score sheets.

Messages are English source strings with ``{name}`` placeholders, shown translated
(``translations/ko-evaluation.toml``). They name criteria by id and ranges by number, never a
score or a comment.
"""

from __future__ import annotations

from vault.errors import DomainError


class ScoreSheetError(DomainError):
    """Base class: ``status`` and ``code`` say how the web layer answers."""

    status = 400
    code = "score_sheet_error"
    #: The English message; ``{name}`` placeholders are filled from ``values``.
    template = "The score sheet cannot be changed this way."

    def __init__(self, **values: object) -> None:
        super().__init__(self.template, **values)


class InvalidScores(ScoreSheetError):
    """A score or comment the stage does not accept; nothing was stored."""

    status = 422
    code = "invalid_scores"
    template = "The scores or comments are not valid for this stage."


class UnknownCriterion(InvalidScores):
    """A score or comment for a criterion the stage does not have."""

    template = "The stage {stage} has no criterion {criterion}."

    def __init__(self, stage: str, criterion: str) -> None:
        super().__init__(stage=stage, criterion=criterion)
        self.criterion = criterion


class ScoreOutOfRange(InvalidScores):
    """A score that is not a whole number within the stage's scale."""

    template = "The score for {criterion} must be a whole number from {minimum} to {maximum}."

    def __init__(self, criterion: str, minimum: int, maximum: int) -> None:
        super().__init__(criterion=criterion, minimum=minimum, maximum=maximum)
        self.criterion = criterion


class CommentTooLong(InvalidScores):
    """A criterion's comment longer than the limit."""

    template = "The comment on {criterion} is longer than {limit} characters."

    def __init__(self, criterion: str, limit: int) -> None:
        super().__init__(criterion=criterion, limit=limit)
        self.criterion = criterion


class OverallCommentTooLong(InvalidScores):
    """The overall comment is longer than the limit."""

    template = "The overall comment is longer than {limit} characters."


class IncompleteSheet(ScoreSheetError):
    """Submitting a sheet that leaves criteria unscored."""

    status = 422
    code = "incomplete_score_sheet"
    template = "Score every criterion before submitting; not scored yet: {missing}."

    def __init__(self, missing: list[str]) -> None:
        super().__init__(missing=", ".join(missing))
        self.missing = tuple(missing)


class SheetLocked(ScoreSheetError):
    """The sheet was submitted: it changes only after an officer reopens it."""

    status = 409
    code = "score_sheet_locked"
    template = "A submitted score sheet changes only after an officer reopens it."


class SheetNotSubmitted(ScoreSheetError):
    """Reopening a sheet that is still a draft."""

    status = 409
    code = "score_sheet_not_submitted"
    template = "Only a submitted score sheet can be reopened."


class InvalidReason(ScoreSheetError):
    """Reopening without a reason, or with one longer than the limit."""

    status = 422
    code = "invalid_reopen_reason"
    template = "Give the reason for reopening the score sheet, in at most {limit} characters."


class NotYourSheet(ScoreSheetError):
    """A sheet is written and submitted only by the reviewer it belongs to."""

    status = 403
    code = "not_your_score_sheet"
    template = "A score sheet can be written only by its own reviewer."


class NoScoring(ScoreSheetError):
    """The stage does not exist or is not scored with score sheets."""

    status = 404
    code = "stage_without_scoring"
    template = "The stage {stage} has no score sheets."


class NotInStage(ScoreSheetError):
    """The submission is not (or no longer) in the stage the sheet is for."""

    status = 409
    code = "submission_not_in_stage"
    template = "The submission is not in the stage {stage}."


# -- votes of majority stages, and the pages' and API's requests -------------------------------

class VoteNotAccepted(InvalidScores):
    """A vote on a stage that is not decided by a panel majority."""

    template = "The stage {stage} is not decided by a panel vote; its sheets take no vote."


class ScoresNotAccepted(InvalidScores):
    """Scores on a stage decided by a panel vote without scoring."""

    template = "The stage {stage} is decided by a panel vote; its sheets take no scores."


class InvalidVote(InvalidScores):
    """A vote that is neither accept nor reject."""

    template = "A vote is either accept or reject."


class InvalidSheetRequest(InvalidScores):
    """A request body that is not a score sheet (wrong shape or types, unknown fields)."""

    template = ("Send a JSON object with scores (criterion: whole number), comments "
                "(criterion: text), overall_comment (text) and vote (accept or reject).")


class MissingVote(ScoreSheetError):
    """Submitting a majority stage's sheet without a vote."""

    status = 422
    code = "missing_vote"
    template = "Vote accept or reject before submitting."


class NotConfirmed(ScoreSheetError):
    """A submission or reopening without its confirmation ticked."""

    status = 422
    code = "not_confirmed"
    template = "Tick the confirmation to go on."


class SheetNotFound(ScoreSheetError):
    """No such score sheet (or none the reader may learn of)."""

    status = 404
    code = "score_sheet_not_found"
    template = "There is no such score sheet."
