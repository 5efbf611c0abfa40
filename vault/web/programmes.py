"""Programme definitions as officers (and other signed-in roles) see them."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, url_for
from werkzeug.exceptions import NotFound

from vault.documents.submissions import SubmissionService
from vault.policy.actions import Action
from vault.programmes.definition import CALL
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.web.context import actor, allowed, authorize, authorizer, db, runtime
from vault.web.i18n import current_locale
from vault.web.i18n import gettext as _

bp = Blueprint("programmes", __name__, url_prefix="/programmes")


@bp.app_template_global()
def stage_title(code: str, stage_id: str) -> str:
    """The title of a programme's stage in the current locale ("call" is the open call)."""
    definition = runtime().definitions.get(code)
    if stage_id == CALL or definition is None:
        return _("Call for applications") if stage_id == CALL else stage_id
    try:
        return definition.stage(stage_id).title(current_locale())
    except KeyError:
        return stage_id


@bp.app_template_global()
def stage_titles(code: str, stage_ids: tuple[str, ...]) -> str:
    """The titles of several stages of a programme, in the current locale, joined by commas."""
    return ", ".join(stage_title(code, stage_id) for stage_id in stage_ids)


@bp.get("/")
def index() -> str:
    """Every programme with its deadline and current stage."""
    programmes = authorizer().permitted(actor(), Action.PROGRAMME_VIEW,
                                        ProgrammeService(db()).list())
    return render_template("programmes/index.html", programmes=programmes)


@bp.get("/<code>")
def show(code: str) -> str:
    """One programme's definition: deadlines, document kinds with their screening rules,
    consortium rules, the resource request form, stages with criteria and decision rules, and
    conflict rules."""
    programme = ProgrammeService(db()).by_code(code)
    definition = runtime().definitions.get(code)
    if programme is None or definition is None:
        abort(404)
    authorize(Action.PROGRAMME_VIEW, programme, denied=NotFound())
    tools = _tools(programme)
    if definition.resources is not None:
        tools.extend(_own_resource_requests(programme))
    return render_template(
        "programmes/show.html", programme=programme, definition=definition,
        now=runtime().clock(), tools=tools,
    )


#: The programme's tools: (action the policies must allow, endpoint, label).
_TOOLS = (
    (Action.NDA_ACCEPT, "nda.show", "Non-disclosure agreement"),
    (Action.CONFLICT_DECLARE, "conflicts.declare_form", "Declare a conflict of interest"),
    (Action.CONFLICT_DECLARE, "conflicts.declarations", "My declarations"),
    (Action.ASSIGNMENT_MANAGE, "assignments.panel", "Assignments"),
    (Action.CONFLICT_MANAGE, "conflicts.manage", "Conflicts of interest"),
    (Action.NDA_REPORT, "nda.report", "NDA acceptance report"),
    (Action.SCREENING_REPORT, "screening.overview", "Screening overview"),
    (Action.RESOURCE_REQUEST_TOTALS, "resources.totals", "Resource request totals"),
)


def _tools(programme: Programme) -> list[tuple[str, str]]:
    """Links to what the signed-in user may do in the programme (not recorded: navigation)."""
    links = []
    for action, endpoint, label in _TOOLS:
        if allowed(action, programme):
            links.append((url_for(endpoint, code=programme.code), _(label)))
    return links


def _own_resource_requests(programme: Programme) -> list[tuple[str, str]]:
    """Applicants: a link to each of their consortia's resource requests in the programme."""
    consortia = actor().consortium_ids
    if not consortia:
        return []
    own = [submission for submission in SubmissionService(db()).visible(consortia)
           if submission.programme_id == programme.id]
    return [(url_for("resources.edit", submission_id=submission.id),
             _("Resource request: {consortium}", consortium=submission.consortium.name))
            for submission in own if allowed(Action.RESOURCE_REQUEST_VIEW, submission)]
