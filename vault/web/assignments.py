"""Assignment pages: officers assign reviewers to submissions per stage (single and bulk, with a
load-balance view); reviewers see only their own assignments, on their home page.

Panel membership is confidential while the stage runs: every panel page and change needs
``assignment:manage`` on the programme (officers), and reviewers' and applicants' requests are
refused there. An officer sees and assigns only the submissions they may see themselves (a
conflicted officer does not pick the panel of that consortium).
"""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from wtforms import HiddenField, SelectMultipleField, StringField
from wtforms.validators import Length

from vault.assignments.errors import (
    AssignmentError,
    AssignmentNotFound,
    ReviewerConflicted,
    UnknownReviewer,
    UnknownSubmission,
)
from vault.assignments.service import AssignmentService, BulkResult
from vault.documents.models import Submission
from vault.identity.models import User
from vault.nda.service import NdaService, NdaState
from vault.policy.actions import Action
from vault.programmes.definition import CALL, ProgrammeDefinition, Stage
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.web.context import (
    actor,
    allowed,
    audit_log,
    authorize,
    authorizer,
    db,
    request_info,
    runtime,
    user,
)
from vault.web.forms import EmptyForm
from vault.web.i18n import gettext as _

bp = Blueprint("assignments", __name__, url_prefix="/assignments")


class AssignForm(FlaskForm):
    """One reviewer onto one submission's panel."""

    stage = HiddenField("stage", validators=[Length(max=64)])
    reviewer = StringField("reviewer", validators=[Length(max=36)])
    submission = StringField("submission", validators=[Length(max=36)])


class BulkAssignForm(FlaskForm):
    """Several reviewers onto several submissions' panels (every pair)."""

    stage = HiddenField("stage", validators=[Length(max=64)])
    # The choices are the page's; values are checked one by one in the handler.
    reviewers = SelectMultipleField("reviewers", choices=[], validate_choice=False)
    submissions = SelectMultipleField("submissions", choices=[], validate_choice=False)


def service() -> AssignmentService:
    """The assignment service for this request."""
    return AssignmentService(db(), clock=runtime().clock, definitions=runtime().definitions,
                             audit=audit_log(), cipher=runtime().cipher,
                             request=request_info())


def refusal_text(error: AssignmentError) -> str:
    """A refusal's message in the reader's language."""
    values = dict(error.values)
    if isinstance(error, ReviewerConflicted):
        sources = {"declared": _("declared by the reviewer"),
                   "detected": _("detected by the vault"),
                   "challenged": _("challenged by an applicant")}
        values["sources"] = ", ".join(sources.get(s, s) for s in error.sources)
    return _(error.template, **values)


# -- loading with the access check ---------------------------------------------------------

def _programme(code: str) -> tuple[Programme, ProgrammeDefinition]:
    """The programme if the officer may manage its assignments (403 otherwise; 404 if none)."""
    programme = ProgrammeService(db()).by_code(code)
    definition = runtime().definitions.get(code)
    if programme is None or definition is None:
        raise NotFound()
    authorize(Action.ASSIGNMENT_MANAGE, programme, target={"programme": programme.code})
    return programme, definition


def _default_stage(programme: Programme, definition: ProgrammeDefinition) -> str:
    """The programme's current stage, or its first one during the call."""
    if programme.current_stage != CALL:
        return programme.current_stage
    if not definition.stages:
        raise NotFound()
    return definition.stages[0].id


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _submission(assignments: AssignmentService, programme: Programme,
                value: str | None) -> Submission:
    """A submission of the programme the officer may see; 404 otherwise (existence of a
    consortium the officer is conflicted with is not confirmed either)."""
    submission_id = _uuid(value)
    submission = assignments.submission(programme, submission_id) if submission_id else None
    if submission is None:
        raise UnknownSubmission()
    authorize(Action.SUBMISSION_VIEW, submission,
              target={"consortium": submission.consortium_id, "submission": submission.id},
              denied=UnknownSubmission())
    return submission


def _reviewer(assignments: AssignmentService, value: str | None) -> User:
    """The account chosen as reviewer (the service checks that it is an active reviewer)."""
    user_id = _uuid(value)
    found = assignments.user(user_id) if user_id else None
    if found is None:
        raise UnknownReviewer()
    return found


# -- pages --------------------------------------------------------------------------------

@bp.get("/")
def index() -> str:
    """The programmes whose panels the officer manages, with their stages."""
    programmes = ProgrammeService(db()).list()
    shown = authorizer().permitted(actor(), Action.ASSIGNMENT_MANAGE, programmes)
    if programmes and not shown:
        # Reviewers and applicants: refused (and recorded) like on any panel page. With no
        # programme at all there is nothing to show anyone.
        authorize(Action.ASSIGNMENT_MANAGE, programmes[0])
    return render_template("assignments/index.html", programmes=[
        (programme, runtime().definitions.get(programme.code)) for programme in shown])


@bp.get("/<code>")
def panel(code: str) -> tuple[str, int]:
    """A stage's panels, the assignment forms and the load balance."""
    programme, definition = _programme(code)
    stage_id = request.args.get("stage") or _default_stage(programme, definition)
    stage = service().stage(programme, stage_id)
    return _render_panel(programme, definition, stage)


def _render_panel(programme: Programme, definition: ProgrammeDefinition, stage: Stage, *,
                  status: int = 200, error: str = "", bulk: BulkResult | None = None
                  ) -> tuple[str, int]:
    """The panel page of ``stage``, with an error or a bulk result when a change was made."""
    assignments = service()
    submissions = authorizer().permitted(actor(), Action.SUBMISSION_VIEW,
                                         assignments.submissions(programme))
    by_submission: dict[uuid.UUID, list] = {s.id: [] for s in submissions}
    for assignment in assignments.for_stage(programme, stage.id):
        if assignment.submission_id in by_submission:
            by_submission[assignment.submission_id].append(assignment)
    now = runtime().clock()
    window = ("open" if stage.review_opens <= now < stage.review_closes
              else "not yet" if now < stage.review_opens else "closed")
    return render_template(
        "assignments/panel.html", programme=programme, definition=definition, stage=stage,
        window=window, rows=[(s, by_submission[s.id]) for s in submissions],
        reviewers=assignments.reviewers(), load=assignments.load(programme, stage.id),
        assign_form=AssignForm(), bulk_form=BulkAssignForm(), remove_form=EmptyForm(),
        error=error, bulk=bulk, refusal_text=refusal_text,
    ), status


@bp.post("/<code>/add")
def add(code: str) -> Response | tuple[str, int]:
    """Assign one reviewer to one submission; a refusal is recorded and shown with its reason."""
    programme, definition = _programme(code)
    form = AssignForm()
    if not form.validate_on_submit():
        abort(400)
    assignments = service()
    submission = _submission(assignments, programme, form.submission.data)
    reviewer = _reviewer(assignments, form.reviewer.data)
    stage_id = form.stage.data or ""
    try:
        assignments.assign(actor(), submission, reviewer, stage_id)
    except AssignmentError as error:
        # Nothing was stored; the refusal is recorded in this request's transaction.
        assignments.refused(actor(), submission, reviewer, stage_id, error)
        stage = _stage_or_default(assignments, programme, definition, stage_id)
        return _render_panel(programme, definition, stage, status=error.status,
                             error=refusal_text(error))
    flash(_("{name} is assigned to {consortium}.", name=reviewer.display_name,
            consortium=submission.consortium.name), "info")
    return redirect(url_for("assignments.panel", code=programme.code, stage=stage_id))


def _stage_or_default(assignments: AssignmentService, programme: Programme,
                      definition: ProgrammeDefinition, stage_id: str) -> Stage:
    try:
        return assignments.stage(programme, stage_id)
    except AssignmentError:
        return assignments.stage(programme, _default_stage(programme, definition))


@bp.post("/<code>/bulk")
def bulk(code: str) -> tuple[str, int]:
    """Assign every chosen reviewer to every chosen submission; the page reports each pair."""
    programme, definition = _programme(code)
    form = BulkAssignForm()
    if not form.validate_on_submit():
        abort(400)
    assignments = service()
    stage = assignments.stage(programme, form.stage.data or "")
    if not form.reviewers.data or not form.submissions.data:
        return _render_panel(programme, definition, stage, status=400,
                             error=_("Choose at least one reviewer and one submission."))
    submissions = [_submission(assignments, programme, value)
                   for value in dict.fromkeys(form.submissions.data)]
    reviewers = [_reviewer(assignments, value) for value in dict.fromkeys(form.reviewers.data)]
    result = assignments.bulk_assign(actor(), stage.id, reviewers, submissions)
    return _render_panel(programme, definition, stage, bulk=result)


@bp.post("/<code>/<uuid:assignment_id>/remove")
def remove(code: str, assignment_id: uuid.UUID) -> Response:
    """Take a reviewer off a panel: their access ends with their next request."""
    programme, _definition = _programme(code)
    if not EmptyForm().validate_on_submit():
        abort(400)
    assignments = service()
    assignment = assignments.get(assignment_id)
    if assignment is None or assignment.programme_id != programme.id:
        raise AssignmentNotFound()
    submission = assignment.submission
    authorize(Action.SUBMISSION_VIEW, submission,
              target={"consortium": submission.consortium_id, "submission": submission.id},
              denied=AssignmentNotFound())
    stage_id, name = assignment.stage, assignment.reviewer.display_name
    assignments.unassign(actor(), assignment)
    flash(_("{name} is no longer assigned to {consortium}.", name=name,
            consortium=submission.consortium.name), "info")
    return redirect(url_for("assignments.panel", code=programme.code, stage=stage_id))


# -- the reviewer's home page ----------------------------------------------------------------

def reviewer_home() -> str:
    """The reviewer's own assignments, each with what is still missing before reading."""
    assignments = service()
    account = user()
    mine = assignments.for_reviewer(account)
    programmes = list({a.submission.consortium.programme.id: a.submission.consortium.programme
                       for a in mine}.values())
    listed = {p.id for p in authorizer().permitted(actor(), Action.ASSIGNMENT_LIST, programmes)}
    now = runtime().clock()
    ndas = NdaService(db(), clock=runtime().clock)
    nda = {p.id: _nda_accepted(ndas, account, p) for p in programmes if p.id in listed}
    entries = []
    for assignment in mine:
        submission = assignment.submission
        programme = submission.consortium.programme
        if programme.id not in listed:
            continue
        try:
            stage = assignments.stage(programme, assignment.stage)
        except AssignmentError:
            stage = None  # the definition no longer has this stage
        window = ("closed" if stage is None or now >= stage.review_closes
                  else "not yet" if now < stage.review_opens else "open")
        entries.append({
            "assignment": assignment, "programme": programme, "stage": stage,
            "submission": submission, "consortium": submission.consortium, "window": window,
            "in_stage": submission.stage == assignment.stage,
            "nda": nda[programme.id], "nda_url": url_for("nda.show", code=programme.code),
            "readable": allowed(Action.SUBMISSION_VIEW, submission),
        })
    return render_template("home/reviewer.html", entries=entries, mfa=actor().mfa,
                           mfa_enabled=account.mfa_enabled)


def _nda_accepted(ndas: NdaService, account: User, programme: Programme) -> bool | None:
    """Whether the reviewer holds the programme's current NDA (``None``: it has none yet)."""
    definition = runtime().definitions.get(programme.code)
    if definition is None or definition.nda is None:
        return None
    return ndas.status(account, programme, definition).state is NdaState.CURRENT
