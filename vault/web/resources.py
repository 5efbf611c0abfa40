"""The resource request form and the programme totals for the budget deliberation.

Handlers: parse → load → authorise → one service call → render. Applicants of the consortium
fill the form while the submission accepts changes; officers read it. Anyone the policies do
not let read the request gets 404, exactly as for a submission that does not exist. Values
travel only in request bodies and pages, never in URLs, logs or audit events.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length

from vault.audit.service import Tag
from vault.display import KST
from vault.documents.errors import DocumentError, DocumentNotFound
from vault.documents.models import Submission
from vault.policy.actions import Action
from vault.programmes.definition import ProgrammeDefinition
from vault.programmes.models import Programme
from vault.programmes.rules import ResourceForm
from vault.resources.errors import NOT_A_NUMBER, InvalidResourceRequest, NoResourceForm
from vault.resources.service import (
    FIELDS,
    Problem,
    ResourceService,
    ResourceTotals,
    ResourceValues,
    model_order,
)
from vault.web.context import actor, allowed, audit, authorize, authorizer, db, runtime, user
from vault.web.i18n import gettext as _
from vault.web.loaders import load_programme, load_submission

bp = Blueprint("resources", __name__)

#: A whole number as people type it: digits, optionally grouped by commas ("1,000,000").
_WHOLE = re.compile(r"^-?(\d{1,3}(,\d{3})+|\d+)$")


class ResourceRequestForm(FlaskForm):
    """The request's raw fields (and the CSRF token); ``parse_form`` reads the values."""

    gpu_model = StringField("gpu_model", validators=[Length(max=64)])
    gpu_count = StringField("gpu_count", validators=[Length(max=40)])
    data_budget_krw = StringField("data_budget_krw", validators=[Length(max=40)])
    talent_headcount = StringField("talent_headcount", validators=[Length(max=40)])


@bp.app_template_filter("thousands")
def thousands(value: int) -> str:
    """A whole number with thousands separators (1,000,000,000)."""
    return f"{value:,}"


def problem_text(problem: Problem) -> str:
    """A problem's message in the reader's language, numbers with thousands separators."""
    values = {key: f"{value:,}" if isinstance(value, int) and not isinstance(value, bool)
              else value for key, value in problem.values.items()}
    return _(problem.template, **values)


def with_problems(values: ResourceValues, form: ResourceForm,
                  unreadable: Iterable[Problem]) -> list[Problem]:
    """The problems of values read from a form or JSON: those found while reading them first,
    then the service's for every other field (a field that could not be read is not also
    reported as empty)."""
    first = list(unreadable)
    seen = {problem.field for problem in first}
    return first + [p for p in ResourceService.problems(values, form) if p.field not in seen]


def parse_form(form: ResourceRequestForm) -> tuple[ResourceValues, list[Problem]]:
    """The values typed into the form, and the fields that are not whole numbers."""
    problems = []
    numbers: dict[str, int | None] = {}
    for name in FIELDS[1:]:
        raw = (getattr(form, name).data or "").strip().replace(" ", "")
        numbers[name] = None
        if raw and len(raw) <= 40 and _WHOLE.fullmatch(raw):
            numbers[name] = int(raw.replace(",", ""))
        elif raw:
            problems.append(Problem(name, NOT_A_NUMBER))
    model = (form.gpu_model.data or "").strip() or None
    return ResourceValues(gpu_model=model, **numbers), problems


def resource_service() -> ResourceService:
    """The resource service on the request's session."""
    return ResourceService(db(), cipher=runtime().cipher, documents=runtime().documents(db()))


def load_request_submission(submission_id: uuid.UUID, action: Action) -> Submission:
    """The submission if the actor may read its resource request (404 otherwise, like an id
    that does not exist) and, for ``RESOURCE_REQUEST_EDIT``, change it (403 otherwise)."""
    submission = load_submission(submission_id)
    target = {"consortium": submission.consortium_id, "submission": submission.id}
    authorize(Action.RESOURCE_REQUEST_VIEW, submission, target=target,
              denied=DocumentNotFound("No such submission."))
    if action is not Action.RESOURCE_REQUEST_VIEW:
        authorize(action, submission, target=target)
    return submission


def resource_form(submission: Submission) -> tuple[ProgrammeDefinition, ResourceForm]:
    """The programme's definition and its resource form; raises ``NoResourceForm``."""
    definition = runtime().definitions.get(submission.consortium.programme.code)
    if definition is None or definition.resources is None:
        raise NoResourceForm("This programme asks for no resource request.")
    return definition, definition.resources


def _page(submission: Submission, form: ResourceRequestForm | None,
          problems: Iterable[Problem] = (), status: int = 200) -> tuple[str, int]:
    definition, ranges = resource_form(submission)
    service = resource_service()
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.field, []).append(problem_text(problem))
    values = service.get(submission)
    can_edit = (allowed(Action.RESOURCE_REQUEST_EDIT, submission)
                and runtime().documents(db()).accepts_changes(submission))
    if form is None:
        form = ResourceRequestForm(formdata=None, data={
            name: ("" if values is None else getattr(values, name)) for name in FIELDS})
    page = render_template(
        "resources/edit.html", submission=submission, consortium=submission.consortium,
        definition=definition, ranges=ranges, values=values, form=form, errors=errors,
        updated_at=service.updated_at(submission), can_edit=can_edit,
        applicant=submission.consortium_id in actor().consortium_ids,
    )
    return page, status


@bp.get("/submissions/<uuid:submission_id>/resources")
def edit(submission_id: uuid.UUID) -> tuple[str, int]:
    """The submission's resource request: a form for its applicants while it accepts changes,
    the values read-only otherwise."""
    submission = load_request_submission(submission_id, Action.RESOURCE_REQUEST_VIEW)
    return _page(submission, None)


@bp.post("/submissions/<uuid:submission_id>/resources")
def save(submission_id: uuid.UUID) -> Response | tuple[str, int]:
    """Save the request (all fields at once); the page shows every problem by its field and
    nothing is stored while one remains."""
    submission = load_request_submission(submission_id, Action.RESOURCE_REQUEST_EDIT)
    _definition, ranges = resource_form(submission)
    form = ResourceRequestForm()
    if not form.validate_on_submit():
        flash(_("The form was incomplete. Please try again."), "error")
        return _page(submission, form, status=400)
    values, unreadable = parse_form(form)
    problems = with_problems(values, ranges, unreadable)
    try:
        if problems:
            # A submission that no longer accepts changes says so before any field problem.
            runtime().documents(db()).check_open(submission)
            raise InvalidResourceRequest(problems)
        resource_service().save(submission, values, ranges, user_id=user().id)
    except InvalidResourceRequest as error:
        flash(_("The resource request was not saved. Correct the fields marked below."), "error")
        return _page(submission, form, error.problems, status=error.status)
    except DocumentError as error:
        flash(error.translated(_), "error")
        return _page(submission, None, status=error.status)
    # Who saved which consortium's request; the values stay sealed in the request itself.
    audit(Tag.RESOURCE_REQUEST_SAVED, target={"consortium": submission.consortium_id,
                                              "submission": submission.id})
    flash(_("Resource request saved."), "info")
    return redirect(url_for("resources.edit", submission_id=submission.id))


# -- programme totals -----------------------------------------------------------------------

def programme_totals(code: str, *, export: bool = False
                     ) -> tuple[Programme, ProgrammeDefinition, ResourceTotals, int]:
    """The programme, its definition, the totals over the submissions the officer may read,
    and how many submissions were left out because the officer may not read them."""
    programme, definition = load_programme(code)
    target: dict[str, object] = {"programme": programme.code}
    if export:
        target["format"] = "csv"
    authorize(Action.RESOURCE_REQUEST_TOTALS, programme, target=target)
    service = resource_service()
    submissions = service.submissions(programme)
    # An officer with a conflict (and no second officer's approval) may not read that
    # consortium's request. Its values stay out of the totals too, not only out of the table:
    # the programme total minus the rows shown would otherwise reveal the hidden request.
    visible = authorizer().permitted(actor(), Action.RESOURCE_REQUEST_VIEW, submissions)
    return programme, definition, service.totals(visible), len(submissions) - len(visible)


@bp.get("/resources/<code>")
def totals(code: str) -> str:
    """Officers: programme totals (GPUs by model, data budget, talent) and every request."""
    programme, definition, found, hidden = programme_totals(code)
    return render_template(
        "resources/totals.html", programme=programme, definition=definition, totals=found,
        hidden=hidden, ranges=definition.resources,
        models=model_order(found.gpus_by_model, definition.resources),
        model_titles=_model_titles(definition.resources))


@bp.get("/resources/<code>/totals.csv")
def totals_csv(code: str) -> Response:
    """The totals as a CSV download for a spreadsheet (the export is recorded)."""
    programme, definition, found, hidden = programme_totals(code, export=True)
    text = ResourceService.totals_csv(found, definition.resources)
    audit(Tag.RESOURCE_TOTALS_EXPORTED, target={
        "programme": programme.code, "rows": len(found.rows), "hidden": hidden})
    day = runtime().clock().astimezone(KST).date().isoformat()
    return Response(text.encode("utf-8"), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition":
            f'attachment; filename="resource-totals-{programme.code}-{day}.csv"',
        "Cache-Control": "no-store",
    })


def _model_titles(ranges: ResourceForm | None) -> Mapping[str, str]:
    return {model.id: model.title for model in ranges.gpu_models} if ranges else {}
