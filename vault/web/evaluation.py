"""Evaluation pages: reviewers write their score sheets (scores per criterion, or a vote on a
stage decided by a panel majority), officers read a stage's sheets and reopen a submitted one.

Handlers: parse → load → authorize → one service call → audit → render. A reviewer writes a
sheet only with ``score-sheet:write`` on the submission (assigned, conflict-free, NDA, second
factor, inside the window): someone who may not see the submission gets 404, someone who may see
it but not score 403, on every GET and POST. Officers read sheets with ``score-sheet:view`` (never
with a conflict, not even under dual control) and reopen with ``score-sheet:reopen``. Values
travel only in request bodies and pages: audit events name the sheet, never a score, comment or
vote.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length

from vault.audit.service import Tag
from vault.documents.models import Submission
from vault.documents.submissions import SubmissionService
from vault.evaluation.errors import (
    InvalidVote,
    NoScoring,
    NotConfirmed,
    ScoreSheetError,
    SheetNotFound,
)
from vault.evaluation.listings import SheetListings
from vault.evaluation.models import ScoreSheet
from vault.evaluation.sheet_values import MAX_COMMENT, takes_scores, takes_vote
from vault.evaluation.sheets import ScoreSheets, SheetView
from vault.policy.actions import Action
from vault.programmes.definition import ProgrammeDefinition, Stage
from vault.programmes.service import ProgrammeService
from vault.web.assignments import service as assignment_service
from vault.web.context import actor, allowed, audit, authorize, authorizer, db, runtime, user
from vault.web.forms import EmptyForm
from vault.web.i18n import gettext as _
from vault.web.loaders import load_programme, load_submission

bp = Blueprint("evaluation", __name__, url_prefix="/evaluation")

#: A whole number as typed (a sign allowed, so that -1 is refused for its range, not its form).
_WHOLE = re.compile(r"^[+-]?\d{1,9}$")
#: Form fields of the criteria: ``score-<criterion id>`` and ``comment-<criterion id>``.
SCORE_FIELD, COMMENT_FIELD = "score-", "comment-"
VOTES = {"accept": True, "reject": False}


class SheetForm(FlaskForm):
    """The fixed fields of a sheet (the criteria's fields are read by ``parse_form``)."""

    action = StringField("action", validators=[Length(max=10)])
    vote = StringField("vote", validators=[Length(max=10)])
    overall_comment = TextAreaField("overall_comment")
    confirm = BooleanField("confirm")


class ReopenForm(FlaskForm):
    """An officer's reopening: the reason and the confirmation."""

    reason = TextAreaField("reason")
    confirm = BooleanField("confirm")


@dataclass
class SheetValues:
    """What a reviewer sent: scores as typed (whole numbers parsed), comments, the vote."""

    scores: dict[str, object] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    overall_comment: str = ""
    vote: bool | None = None


# -- shared with the API ----------------------------------------------------------------------

def sheets_service() -> ScoreSheets:
    """The score sheet service on the request's session."""
    return ScoreSheets(db(), cipher=runtime().cipher, clock=runtime().clock,
                       definitions=runtime().definitions)


def sheet_target(submission: Submission, sheet: ScoreSheet) -> dict[str, object]:
    """The audit target of a sheet: which one, never what it holds."""
    return {"programme": submission.consortium.programme.code, "stage": sheet.stage,
            "consortium": submission.consortium_id, "submission": submission.id,
            "sheet": sheet.id, "revision": sheet.revision}


def load_for_writing(submission_id: uuid.UUID, stage_id: str) -> tuple[Submission, Stage]:
    """The submission and the stage if the reviewer may write their sheet (404 when they may
    not see the submission, 403 when they may not score it; ``NoScoring`` for a stage without
    sheets)."""
    submission = load_submission(submission_id, Action.SCORE_SHEET_WRITE)
    stage = sheets_service().stage(submission.programme_id, stage_id)
    if stage is None:
        raise NoScoring(stage=stage_id[:64])
    return submission, stage


def parse_vote(value: object) -> bool | None:
    """``accept`` → True, ``reject`` → False, empty → None; raises ``InvalidVote``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in VOTES:
        raise InvalidVote()
    return VOTES[value]


def write_sheet(submission: Submission, stage: Stage, values: SheetValues, *,
                submit: bool) -> ScoreSheet:
    """Save the reviewer's draft and, with ``submit``, hand it in, recording each; when
    either is refused nothing of the sheet is stored (the error propagates)."""
    service = sheets_service()
    with db().begin_nested():
        sheet = service.save(submission, stage.id, actor(), values.scores, values.comments,
                             overall_comment=values.overall_comment, vote=values.vote)
        if submit:
            service.submit(sheet, actor())
    audit(Tag.SCORE_SHEET_SAVED, target=sheet_target(submission, sheet))
    if submit:
        audit(Tag.SCORE_SHEET_SUBMITTED, target=sheet_target(submission, sheet))
    return sheet


# -- the reviewer's pages ---------------------------------------------------------------------

@bp.get("/")
def index() -> str:
    """The programmes whose evaluation the reader takes part in (reviewers and officers)."""
    programmes = ProgrammeService(db()).list()
    shown = authorizer().permitted(actor(), Action.ASSIGNMENT_LIST, programmes)
    if programmes and not shown:
        authorize(Action.ASSIGNMENT_LIST, programmes[0])  # refused, and recorded
    return render_template("evaluation/index.html", programmes=[
        (programme, runtime().definitions.get(programme.code)) for programme in shown])


@bp.get("/<code>")
def overview(code: str) -> str:
    """A reviewer's assigned submissions per stage with their sheets' states; for officers, the
    stages whose sheets they may list."""
    programme, definition = load_programme(code)
    authorize(Action.ASSIGNMENT_LIST, programme, target={"programme": programme.code})
    service = sheets_service()
    entries = []
    mine = [a for a in assignment_service().for_reviewer(user())
            if a.programme_id == programme.id]
    if mine:
        sheets = SheetListings(db()).reviewer_sheets(user().id, programme)
        writable = {s.id for s in authorizer().permitted(
            actor(), Action.SCORE_SHEET_WRITE, list({a.submission for a in mine}))}
        for assignment in mine:
            submission = assignment.submission
            stage = service.stage(programme.id, assignment.stage)
            entries.append({
                "assignment": assignment, "submission": submission, "stage": stage,
                "defined": _defined_stage(definition, assignment.stage),
                "sheet": sheets.get((submission.id, assignment.stage)),
                "open": (stage is not None and submission.id in writable
                         and submission.stage == assignment.stage),
            })
    stages = [stage for stage in definition.stages if takes_scores(stage) or takes_vote(stage)]
    return render_template(
        "evaluation/overview.html", programme=programme, definition=definition,
        entries=entries, now=runtime().clock(),
        stages=stages if allowed(Action.SCORE_SHEET_VIEW, programme) else [])


@bp.get("/submissions/<uuid:submission_id>/<stage_id>/sheet")
def sheet_form(submission_id: uuid.UUID, stage_id: str) -> tuple[str, int]:
    """The reviewer's sheet: the criteria (or the vote) with the current values; read-only once
    submitted."""
    submission, stage = load_for_writing(submission_id, stage_id)
    return _sheet_page(submission, stage)


@bp.post("/submissions/<uuid:submission_id>/<stage_id>/sheet")
def save_sheet(submission_id: uuid.UUID, stage_id: str) -> Response | tuple[str, int]:
    """Save the draft (``action=save``) or submit it (``action=submit``, confirmed); bad input
    re-renders the form with the message and stores nothing."""
    submission, stage = load_for_writing(submission_id, stage_id)
    form = SheetForm()
    if not form.validate_on_submit() or form.action.data not in ("save", "submit"):
        abort(400)
    submit = form.action.data == "submit"
    typed = request.form
    try:
        values = parse_form(typed, form)
        if submit and not form.confirm.data:
            raise NotConfirmed()
        write_sheet(submission, stage, values, submit=submit)
    except ScoreSheetError as error:
        return _sheet_page(submission, stage, typed=typed, error=error)
    flash(_("The score sheet was submitted.") if submit else _("The draft was saved."), "info")
    return redirect(url_for("evaluation.sheet_form", submission_id=submission.id,
                            stage_id=stage.id))


def parse_form(typed: Mapping[str, str], form: SheetForm) -> SheetValues:
    """The values of the sheet form. Only ``score-…`` and ``comment-…`` fields are read; a
    score that is not a whole number is passed on as typed, for the service to refuse with its
    criterion's range."""
    values = SheetValues(overall_comment=form.overall_comment.data or "",
                         vote=parse_vote(form.vote.data or ""))
    for name, raw in typed.items():
        if name.startswith(SCORE_FIELD) and raw.strip():
            text = raw.strip()
            values.scores[name[len(SCORE_FIELD):]] = int(text) if _WHOLE.fullmatch(text) \
                else text
        elif name.startswith(COMMENT_FIELD):
            values.comments[name[len(COMMENT_FIELD):]] = raw
    return values


def _sheet_page(submission: Submission, stage: Stage, *, typed: Mapping[str, str] | None = None,
                error: ScoreSheetError | None = None) -> tuple[str, int]:
    service = sheets_service()
    found = service.sheet(submission, stage.id, user().id)
    view = service.opened(found) if found is not None else None
    editable = (view is None or not view.submitted) and submission.stage == stage.id
    page = render_template(
        "evaluation/sheet.html", submission=submission, consortium=submission.consortium,
        programme=submission.consortium.programme, stage=stage, view=view,
        values=_form_values(view, typed), editable=editable, max_comment=MAX_COMMENT,
        takes_scores=takes_scores(stage), takes_vote=takes_vote(stage),
        error=error.translated(_) if error else "",
        error_field=getattr(error, "criterion", "") if error else "",
        form=SheetForm(formdata=None))
    return page, error.status if error else 200


def _form_values(view: SheetView | None, typed: Mapping[str, str] | None) -> dict[str, str]:
    """What the form's fields show: what was just typed after an error, else the sheet's."""
    if typed is not None:
        return {name: value for name, value in typed.items() if name != "csrf_token"}
    if view is None:
        return {}
    vote = {True: "accept", False: "reject", None: ""}[view.vote]
    return {**{SCORE_FIELD + key: str(score) for key, score in view.scores.items()},
            **{COMMENT_FIELD + key: text for key, text in view.comments.items()},
            "overall_comment": view.overall_comment, "vote": vote}


def _defined_stage(definition: ProgrammeDefinition, stage_id: str) -> Stage | None:
    """The definition's stage (with its title and review window), if it still has it."""
    try:
        return definition.stage(stage_id)
    except KeyError:
        return None


# -- the officers' pages ------------------------------------------------------------------------

@bp.get("/<code>/<stage_id>/sheets")
def stage_sheets(code: str, stage_id: str) -> str:
    """Officers: a stage's sheets (reviewer, consortium, state, submitted at), without the
    rows of consortia the officer has a conflict with."""
    programme, definition = load_programme(code)
    authorize(Action.SCORE_SHEET_VIEW, programme,
              target={"programme": programme.code, "stage": stage_id[:64]})
    stage = sheets_service().stage(programme.id, stage_id)
    if stage is None:
        raise NoScoring(stage=stage_id[:64])
    rows = SheetListings(db()).stage_rows(programme, stage.id)
    visible = {s.id for s in authorizer().permitted(
        actor(), Action.SCORE_SHEET_VIEW, list({row.submission for row in rows}))}
    shown = [row for row in rows if row.submission.id in visible]
    return render_template("evaluation/stage_sheets.html", programme=programme,
                           definition=definition, stage=stage, rows=shown,
                           hidden=len(rows) - len(shown))


def _load_sheet(sheet_id: uuid.UUID) -> tuple[ScoreSheet, Submission]:
    """The sheet and its submission if the officer may read the sheet: 404 for someone who may
    not see the submission (as for a sheet that does not exist), 403 for anyone else."""
    sheet = SheetListings(db()).get(sheet_id)
    if sheet is None:
        raise SheetNotFound()
    loaded = SubmissionService(db()).get(sheet.submission_id)
    target = {"consortium": loaded.consortium_id, "submission": loaded.id, "sheet": sheet.id}
    authorize(Action.SUBMISSION_VIEW, loaded, target=target, denied=SheetNotFound())
    authorize(Action.SCORE_SHEET_VIEW, loaded, target=target)
    return sheet, loaded


@bp.get("/sheets/<uuid:sheet_id>")
def sheet_page(sheet_id: uuid.UUID) -> tuple[str, int]:
    """Officers: one sheet with its values, state, revision and history, and the reopen form."""
    sheet, submission = _load_sheet(sheet_id)
    return _officer_page(sheet, submission)


@bp.post("/sheets/<uuid:sheet_id>/reopen")
def reopen(sheet_id: uuid.UUID) -> Response | tuple[str, int]:
    """Return a submitted sheet to its reviewer as a draft, with a reason (kept sealed in the
    sheet's history)."""
    sheet, submission = _load_sheet(sheet_id)
    target = sheet_target(submission, sheet)
    authorize(Action.SCORE_SHEET_REOPEN, submission, target=target)
    form = ReopenForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        if not form.confirm.data:
            raise NotConfirmed()
        with db().begin_nested():
            sheets_service().reopen(sheet, actor(), form.reason.data or "")
    except ScoreSheetError as error:
        return _officer_page(sheet, submission, error=error, reason=form.reason.data or "")
    audit(Tag.SCORE_SHEET_REOPENED, target=sheet_target(submission, sheet))
    flash(_("The score sheet was reopened: its reviewer can change it again."), "info")
    return redirect(url_for("evaluation.sheet_page", sheet_id=sheet.id))


def _officer_page(sheet: ScoreSheet, submission: Submission, *,
                  error: ScoreSheetError | None = None, reason: str = "") -> tuple[str, int]:
    service = sheets_service()
    view = service.opened(sheet)
    history = service.history(sheet)
    names = SheetListings(db()).display_names(
        [sheet.reviewer_id, *(entry.reopened_by_id for entry in history)])
    stage = service.stage(submission.programme_id, sheet.stage)
    page = render_template(
        "evaluation/officer_sheet.html", sheet=sheet, view=view, history=history, names=names,
        submission=submission, consortium=submission.consortium,
        programme=submission.consortium.programme, stage=stage, stage_id=sheet.stage,
        can_reopen=view.submitted and allowed(Action.SCORE_SHEET_REOPEN, submission),
        form=EmptyForm(formdata=None), reason=reason, max_comment=MAX_COMMENT,
        error=error.translated(_) if error else "")
    return page, error.status if error else 200

