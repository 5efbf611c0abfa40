"""Domain errors of score sheets.

Messages are English source strings with ``{name}`` placeholders, shown translated
(``translations/ko-evaluation.toml``). They name criteria by id and ranges by number, never a
score or a comment.
"""

from __future__ import annotations

from collections.abc import Callable

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


# -- stage rounds: closing, imports, disqualification, confirmation, publication ----------------

class StageError(DomainError):
    """Base class of the stage rounds' errors (``vault.evaluation.stages`` and ``imports``)."""

    status = 409
    code = "stage_error"
    template = "The evaluation of this stage cannot change this way now."

    def __init__(self, **values: object) -> None:
        super().__init__(self.template, **values)


class UnknownStage(StageError):
    """The programme has no such stage (or no such programme is loaded)."""

    status = 404
    code = "unknown_stage"
    template = "The programme {programme} has no stage {stage}."


class RoundStateError(StageError):
    """An illegal change of a round's state (close twice, publish before confirming, ...)."""

    code = "round_state"


class PanelClosed(RoundStateError):
    """The round is no longer open: the panel was closed."""

    template = "The panel of {stage} is closed; reopen it to change anything in it."


class PanelOpen(RoundStateError):
    """The round is still open: close the panel first."""

    template = "The panel of {stage} is still open; close it first."


class RoundConfirmed(RoundStateError):
    """The round's ranking is confirmed: nothing in it changes any more."""

    template = "The ranking of {stage} is confirmed; it no longer changes."


class RoundNotConfirmed(RoundStateError):
    """Publishing or exporting a ranking that is not confirmed."""

    template = "The ranking of {stage} is not confirmed yet."


class RoundPublished(RoundStateError):
    """Publishing twice."""

    template = "The result of {stage} is already published."


class MissingImports(StageError):
    """Confirming a composite stage without a current import of every imported component."""

    template = "Import the scores of {components} for {stage} before confirming its ranking."


class UnscoredSubmissions(StageError):
    """Confirming while some submissions have no submitted score sheet (or vote)."""

    template = ("These submissions of {stage} have no submitted score sheet yet: {names}. "
                "Reopen the panel, or disqualify them, before confirming.")


class CutTieUnresolved(StageError):
    """Confirming while an unresolved tie straddles the cut."""

    template = ("An unresolved tie straddles the cut of {stage} ({names}): the tie-break rules "
                "cannot separate them. Disqualify a submission or correct the data before "
                "confirming.")


class UnknownComponent(StageError):
    """An import for a component the stage does not import."""

    status = 404
    code = "unknown_component"
    template = "The stage {stage} has no imported component {component}."


class UnknownRule(StageError):
    """A disqualification rule the stage does not have."""

    status = 422
    code = "unknown_disqualification_rule"
    template = "The stage {stage} has no disqualification rule {rule}."


class InvalidStageReason(StageError):
    """A reason that is empty or too long."""

    status = 422
    code = "invalid_reason"
    template = "Give a reason of 1 to {limit} characters."


class AlreadyDisqualified(StageError):
    """Disqualifying a submission twice in one stage."""

    code = "already_disqualified"
    template = "The submission is already disqualified in {stage}."


class NotDisqualified(StageError):
    """Lifting a disqualification that does not exist."""

    code = "not_disqualified"
    template = "The submission is not disqualified in {stage}."


class NotAMajorityStage(StageError):
    """Entering a candidate into a stage that is not decided by a panel majority."""

    code = "not_a_majority_stage"
    template = ("Candidates enter only a stage decided by a panel majority; {stage} is not "
                "one.")


class NotACandidate(StageError):
    """The submission may not enter the majority stage."""

    code = "not_a_candidate"
    template = ("Only a submission that is out of the evaluation (not selected or eliminated "
                "in an earlier stage, not disqualified, not withdrawn, its documents not "
                "destroyed) can enter {stage}.")


class ImportInvalid(StageError):
    """A CSV import with problems; each problem names the line. Nothing was stored.

    ``problems`` are (template, values) pairs so that each is shown in the reader's language.
    """

    status = 422
    code = "import_invalid"
    template = "The file cannot be imported: {problems}"

    def __init__(self, problems: list[tuple[str, dict[str, object]]]) -> None:
        self.problems = tuple(problems)
        super().__init__(problems="; ".join(text.format(**values)
                                            for text, values in self.problems))

    def translated(self, gettext: Callable[..., str]) -> str:
        """The message with every problem in the reader's language."""
        return gettext(self.template, problems="; ".join(
            gettext(text, **values) for text, values in self.problems))


# -- ranking (vault/evaluation/ranking.py) ----------------------------------------------------

class RankingError(DomainError):
    """Score sheets that cannot be ranked; the message names the sheet and the value."""

    status = 400
    code = "ranking_error"
    template = "The score sheets cannot be ranked."

    def __init__(self, message: str | None = None, **values: object) -> None:
        super().__init__(message or self.template, **values)


class InvalidScore(RankingError):
    """A score is not a number on the stage's scale."""

    code = "invalid_score"
    template = ("Reviewer {reviewer} gave {value} for {criterion} on submission {submission}; "
                "scores are whole or decimal numbers from {minimum} to {maximum}.")


class CriteriaMismatch(RankingError):
    """A sheet misses one of the stage's criteria, or scores one the stage does not have."""

    code = "criteria_mismatch"


class InvalidSheets(RankingError):
    """The sheets as a whole cannot be ranked (duplicates, none, a missing vote, no scoring)."""

    code = "invalid_sheets"
