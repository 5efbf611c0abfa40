"""Stage round pages: the officers' dashboard of a programme's rounds and one round's detail
(reviewer progress, close and reopen, component imports, disqualifications, the ranking,
confirmation, publication, exports), and the applicant's published outcomes.

Handlers: parse → load → authorize → one service call → render. The ``stage:*`` actions are
decided on the programme (officers only, never with a live conflict for the deciding ones), the
applicant's outcomes with ``outcome:view`` on the submission. The services record their own audit
events; refusals of the round's life cycle re-render the round's page with the message and the
error's status (409, 422), and a savepoint around every change keeps nothing of a refused one.
Reviewers are never named on the ranking: they are "Reviewer 1..n", numbered per stage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length

from vault.documents.models import Submission
from vault.documents.submissions import SubmissionService
from vault.errors import DomainError
from vault.evaluation.errors import NotConfirmed
from vault.evaluation.imports import ComponentImports
from vault.evaluation.stages import Ranking, RoundView, StageRounds
from vault.policy.actions import Action
from vault.programmes.definition import ProgrammeDefinition, Stage
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.web import charts
from vault.web.context import actor, allowed, authorize, authorizer, db, runtime
from vault.web.forms import EmptyForm
from vault.web.i18n import current_locale
from vault.web.i18n import gettext as _
from vault.web.loaders import load_programme, load_round

bp = Blueprint("stages", __name__)

#: The largest CSV import a form or the API accepts (the service checks it again).
MAX_IMPORT_BYTES = 1024 * 1024
#: Reasons (reopening, disqualifying, lifting) are at most this long.
MAX_REASON = 2000


class ConfirmForm(FlaskForm):
    """Close, confirm or publish: the officer ticks the confirmation."""

    confirm = BooleanField("confirm")


class ReasonForm(FlaskForm):
    """Reopen a round or lift a disqualification: the reason."""

    reason = TextAreaField("reason", validators=[Length(max=MAX_REASON)])


class DisqualifyForm(FlaskForm):
    """Disqualify a submission of the round under one of the stage's rules, with a reason."""

    submission = StringField("submission", validators=[Length(max=40)])
    rule = StringField("rule", validators=[Length(max=64)])
    reason = TextAreaField("reason", validators=[Length(max=MAX_REASON)])


class ImportForm(FlaskForm):
    """A component's CSV: the file's text (read from the file field in the browser, or
    pasted) and its name."""

    data = TextAreaField("data")
    filename = StringField("filename", validators=[Length(max=200)])


class CandidateForm(FlaskForm):
    """Enter a submission that is out into a majority stage."""

    submission = StringField("submission", validators=[Length(max=40)])


# -- shared with the API ----------------------------------------------------------------------

def rounds_service() -> StageRounds:
    """The stage rounds service on the request's session."""
    return StageRounds(db(), cipher=runtime().cipher, clock=runtime().clock,
                       definitions=runtime().definitions, keys=runtime().keys)


def imports_service() -> ComponentImports:
    """The component imports service on the request's session."""
    return ComponentImports(db(), cipher=runtime().cipher, clock=runtime().clock,
                            definitions=runtime().definitions)


def figure(value: object) -> str | None:
    """A Decimal figure as its exact text (``None`` stays ``None``)."""
    return None if value is None else str(value)


def ranking_rows(ranking: Ranking) -> list[dict[str, Any]]:
    """One flat row per ranked submission, as the page and the API show it: figures as exact
    decimal text, reviewers by their number on this stage (never a name)."""
    numbers = ranking.reviewer_numbers
    rows = []
    for entry in ranking.result.entries:
        sid = entry.submission_id
        disqualified = ranking.disqualified.get(sid)
        rows.append({
            "submission_id": str(sid), "consortium": ranking.names.get(sid, ""),
            "rank": entry.rank, "outcome": entry.outcome.value,
            "score": figure(entry.composite if entry.composite is not None else entry.score),
            "panel_score": figure(entry.score),
            "components": {key: figure(value) for key, value in entry.components.items()},
            "criterion_means": {key: figure(value)
                                for key, value in entry.criterion_means.items()},
            "reviewers": [{"reviewer": numbers[r.reviewer_id], "total": figure(r.total),
                           "outlier": r.outlier, "accept": r.accept}
                          for r in sorted(entry.reviewers, key=lambda r: numbers[r.reviewer_id])],
            "sheets": entry.sheets, "accepts": entry.accepts, "trimmed": entry.trimmed,
            "std_dev": figure(entry.std_dev), "tied": entry.tied,
            "tie_broken_by": entry.tie_broken_by, "tie_unresolved": entry.tie_unresolved,
            "cut_tie": entry.cut_tie,
            "disqualified": disqualified.rule.id if disqualified else None,
        })
    return rows


# -- the officers' pages ----------------------------------------------------------------------

@bp.get("/stages/")
def index() -> str:
    """The programmes whose stage rounds the officer may follow."""
    programmes = ProgrammeService(db()).list()
    shown = authorizer().permitted(actor(), Action.STAGE_VIEW, programmes)
    if programmes and not shown:
        authorize(Action.STAGE_VIEW, programmes[0])  # refused, and recorded
    return render_template("stages/index.html", programmes=[
        (programme, runtime().definitions.get(programme.code)) for programme in shown])


@bp.get("/stages/<code>")
def dashboard(code: str) -> str:
    """Every stage's round: its state, its counts, the reviewers' progress, what may be done."""
    programme, definition = load_programme(code)
    authorize(Action.STAGE_VIEW, programme, target={"programme": programme.code})
    service = rounds_service()
    views = service.rounds(programme)
    return render_template("stages/dashboard.html", programme=programme,
                           definition=definition, rounds=views,
                           **charts.for_dashboard(service, programme, views,
                                                  locale=current_locale(), _=_))


@bp.get("/stages/<code>/<stage_id>")
def round_page(code: str, stage_id: str) -> tuple[str, int]:
    """One round: progress, close and reopen, imports, disqualifications, the ranking,
    confirmation and publication."""
    programme, definition, stage = load_round(code, stage_id, Action.STAGE_VIEW)
    return _round_page(programme, definition, stage)


def _round_page(programme: Programme, definition: ProgrammeDefinition, stage: Stage, *,
                error: DomainError | None = None, typed: Mapping[str, str] | None = None
                ) -> tuple[str, int]:
    """The round's page, with the message of a refused change and what was typed."""
    rounds = rounds_service()
    view: RoundView = rounds.round(programme, stage.id)
    ranking: Ranking | None = None
    ranking_error = ""
    try:
        ranking = rounds.ranking(programme, stage.id)
    except DomainError as problem:
        # Sheets that cannot be ranked yet (e.g. none submitted) are a state to show, not a
        # failure of the page.
        ranking_error = problem.translated(_)
    imported = [c for c in stage.components if c.source == "import"]
    can = {name: allowed(action, programme) for name, action in (
        ("close", Action.STAGE_CLOSE), ("confirm", Action.STAGE_CONFIRM),
        ("publish", Action.STAGE_PUBLISH), ("import", Action.STAGE_IMPORT),
        ("disqualify", Action.STAGE_DISQUALIFY), ("export", Action.STAGE_EXPORT),
        ("enter", Action.STAGE_ENTER_CANDIDATE))}
    page = render_template(
        "stages/round.html", programme=programme, definition=definition, stage=stage,
        view=view, ranking=ranking, ranking_error=ranking_error,
        rows=ranking_rows(ranking) if ranking else [],
        labels=sorted(ranking.reviewer_numbers.values()) if ranking else [],
        unscored_names=[ranking.names.get(sid, "") for sid in ranking.unscored] if ranking else [],
        missing_titles=[stage.component(c).title(current_locale())
                        for c in (ranking.missing_imports if ranking else [])],
        imported=imported,
        imports=imports_service().imports(programme, stage.id) if imported else [],
        candidates=rounds.candidates(programme, stage.id) if can["enter"] else [],
        progress=view.progress, problems=problems(error),
        can=can, error=error.translated(_) if error else "", typed=typed or {},
        form=EmptyForm(formdata=None), max_reason=MAX_REASON)
    return page, error.status if error else 200


def problems(error: DomainError | None) -> list[str]:
    """The problems of a refused CSV import, each in the reader's language."""
    return [_(text, **values) for text, values in getattr(error, "problems", ())]


def _to_round(programme: Programme, stage: Stage) -> Response:
    return redirect(url_for("stages.round_page", code=programme.code, stage_id=stage.id))


def _change(code: str, stage_id: str, action: Action, form: FlaskForm
            ) -> tuple[Programme, ProgrammeDefinition, Stage]:
    """Load and authorize a change of the round, and check its form's CSRF token and fields."""
    loaded = load_round(code, stage_id, action)
    if not form.validate_on_submit():
        abort(400)
    return loaded


def _confirmed_step(code: str, stage_id: str, action: Action,
                    step: Callable[[Programme, Stage], str]) -> Response | tuple[str, int]:
    """A change of the round that needs its confirmation box ticked: ``step`` makes it and
    returns what to tell the officer; a refusal shows the round page with the reason."""
    form = ConfirmForm()
    programme, definition, stage = _change(code, stage_id, action, form)
    try:
        if not form.confirm.data:
            raise NotConfirmed()
        with db().begin_nested():
            message = step(programme, stage)
    except DomainError as error:
        return _round_page(programme, definition, stage, error=error)
    flash(message, "info")
    return _to_round(programme, stage)


@bp.post("/stages/<code>/<stage_id>/close")
def close(code: str, stage_id: str) -> Response | tuple[str, int]:
    """Close the panel: no more sheet writes; the reviewers lose access at once."""
    def step(programme: Programme, stage: Stage) -> str:
        rounds_service().close(programme, stage.id, actor())
        return _("The panel is closed: reviewers can no longer read or score its submissions.")
    return _confirmed_step(code, stage_id, Action.STAGE_CLOSE, step)


@bp.post("/stages/<code>/<stage_id>/reopen")
def reopen(code: str, stage_id: str) -> Response | tuple[str, int]:
    """Reopen a closed (not confirmed) round, with a reason."""
    form = ReasonForm()
    programme, definition, stage = _change(code, stage_id, Action.STAGE_CLOSE, form)
    try:
        with db().begin_nested():
            rounds_service().reopen(programme, stage.id, actor(), form.reason.data or "")
    except DomainError as error:
        return _round_page(programme, definition, stage, error=error,
                           typed={"reopen_reason": form.reason.data or ""})
    flash(_("The panel is open again."), "info")
    return _to_round(programme, stage)


@bp.post("/stages/<code>/<stage_id>/confirm")
def confirm(code: str, stage_id: str) -> Response | tuple[str, int]:
    """Confirm the ranking: an immutable snapshot with its SHA-256."""
    def step(programme: Programme, stage: Stage) -> str:
        view = rounds_service().confirm(programme, stage.id, actor())
        return _("The ranking is confirmed. SHA-256: {sha256}", sha256=view.result_sha256 or "")
    return _confirmed_step(code, stage_id, Action.STAGE_CONFIRM, step)


@bp.post("/stages/<code>/<stage_id>/publish")
def publish(code: str, stage_id: str) -> Response | tuple[str, int]:
    """Publish the confirmed round: every submission gets its outcome."""
    def step(programme: Programme, stage: Stage) -> str:
        rounds_service().publish(programme, stage.id, actor())
        return _("The outcomes are published.")
    return _confirmed_step(code, stage_id, Action.STAGE_PUBLISH, step)


@bp.post("/stages/<code>/<stage_id>/imports/<component_id>")
def import_component(code: str, stage_id: str, component_id: str) -> Response | tuple[str, int]:
    """Import a component's scores from a CSV; every problem is listed and nothing is stored
    when one is found."""
    form = ImportForm()
    programme, definition, stage = _change(code, stage_id, Action.STAGE_IMPORT, form)
    text = form.data.data or ""
    filename = (form.filename.data or "").strip() or f"{component_id[:64]}.csv"
    try:
        with db().begin_nested():
            view = imports_service().import_csv(programme, stage.id, component_id,
                                                text.encode("utf-8"), filename, actor())
    except DomainError as error:
        return _round_page(programme, definition, stage, error=error,
                           typed={"import_component": component_id})
    flash(_("Imported {rows} rows for {component}. SHA-256: {sha256}", rows=view.rows,
            component=view.component.title(current_locale()), sha256=view.sha256), "info")
    return _to_round(programme, stage)


@bp.post("/stages/<code>/<stage_id>/disqualify")
def disqualify(code: str, stage_id: str) -> Response | tuple[str, int]:
    """Disqualify a submission of the round under one of the stage's rules, with a reason."""
    form = DisqualifyForm()
    programme, definition, stage = _change(code, stage_id, Action.STAGE_DISQUALIFY, form)
    try:
        submission = _round_submission(programme, form.submission.data or "")
        with db().begin_nested():
            rounds_service().disqualify(submission, stage.id, form.rule.data or "",
                                        form.reason.data or "", actor())
    except DomainError as error:
        return _round_page(programme, definition, stage, error=error, typed={
            "dq_submission": form.submission.data or "", "dq_rule": form.rule.data or "",
            "dq_reason": form.reason.data or ""})
    flash(_("The submission is disqualified."), "info")
    return _to_round(programme, stage)


@bp.post("/stages/<code>/<stage_id>/disqualifications/<uuid:submission_id>/lift")
def lift(code: str, stage_id: str, submission_id: uuid.UUID) -> Response | tuple[str, int]:
    """Lift a disqualification, with a reason."""
    form = ReasonForm()
    programme, definition, stage = _change(code, stage_id, Action.STAGE_DISQUALIFY, form)
    try:
        submission = _round_submission(programme, str(submission_id))
        with db().begin_nested():
            rounds_service().lift_disqualification(submission, stage.id,
                                                   form.reason.data or "", actor())
    except DomainError as error:
        return _round_page(programme, definition, stage, error=error)
    flash(_("The disqualification is lifted."), "info")
    return _to_round(programme, stage)


@bp.post("/stages/<code>/<stage_id>/candidates")
def enter_candidate(code: str, stage_id: str) -> Response | tuple[str, int]:
    """Enter a submission that is out into a stage decided by a panel majority."""
    form = CandidateForm()
    programme, definition, stage = _change(code, stage_id, Action.STAGE_ENTER_CANDIDATE, form)
    try:
        submission = _round_submission(programme, form.submission.data or "")
        with db().begin_nested():
            rounds_service().enter_candidate(submission, stage.id, actor())
    except DomainError as error:
        return _round_page(programme, definition, stage, error=error)
    flash(_("{consortium} is a candidate of this stage.",
            consortium=submission.consortium.name), "info")
    return _to_round(programme, stage)


class UnknownSubmission(DomainError):
    """A form names a submission that is not one of the programme's."""

    status = 422
    code = "unknown_submission"
    template = "Choose a submission of this programme."

    def __init__(self) -> None:
        super().__init__(self.template)


def _round_submission(programme: Programme, value: str) -> Submission:
    """A programme's submission named by a form (the round's actions are decided on the
    programme); raises ``UnknownSubmission``."""
    try:
        submission = SubmissionService(db()).get(uuid.UUID(value.strip()))
    except ValueError:
        submission = None
    if submission is None or submission.programme_id != programme.id:
        raise UnknownSubmission()
    return submission


# The applicant's outcome page and the exports use the helpers above; importing them registers
# their routes (before the app registers the blueprints).
from vault.web import stages_exports, stages_outcomes  # noqa: E402, F401
