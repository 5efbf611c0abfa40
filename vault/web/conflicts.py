"""Conflict-of-interest pages: declarations (회피), applicants' challenges (기피), and the
officers' view with detection (제척), decisions, sanctions and past affiliations.

What these pages say never depends on a confidential fact: a declaration against an
organisation is answered without the consortia it matched, and a challenge is answered the same
whether or not the named person evaluates (or exists).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TypeVar

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from vault.conflicts.errors import (
    ConflictNotFound,
    InvalidChallenge,
    InvalidDecision,
    InvalidDeclaration,
    InvalidSanction,
)
from vault.conflicts.models import ConflictKind, ConflictSource, ConflictStatus
from vault.conflicts.service import ConflictService, on_partner_list_changed
from vault.consortia.models import Consortium
from vault.documents.models import Submission
from vault.documents.submissions import SubmissionService
from vault.identity.models import Role
from vault.organizations.models import OrganizationKind
from vault.organizations.service import OrganizationService
from vault.policy.actions import Action
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.web.context import (
    actor,
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

bp = Blueprint("conflicts", __name__, url_prefix="/conflicts")
E = TypeVar("E", bound=StrEnum)


# -- forms ----------------------------------------------------------------------------------

class DeclarationForm(FlaskForm):
    """A declaration: a kind, a consortium or an organisation, a period and a description."""

    kind = StringField("kind", validators=[AnyOf([k.value for k in ConflictKind])])
    consortium = StringField("consortium", validators=[Length(max=36)])
    organization = StringField("organization", validators=[Length(max=200)])
    period_from = DateField("period_from", validators=[Optional()])
    period_to = DateField("period_to", validators=[Optional()])
    description = TextAreaField("description", validators=[DataRequired(), Length(max=2000)])


class ChallengeForm(FlaskForm):
    """A challenge: the person (e-mail address or full name) and the reason."""

    person = StringField("person", validators=[DataRequired(), Length(max=254)])
    reason = TextAreaField("reason", validators=[DataRequired(), Length(max=2000)])


class DecisionForm(FlaskForm):
    """An officer's decision on a conflict, with its reason."""

    decision = StringField("decision", validators=[AnyOf(["confirm", "dismiss"])])
    reason = TextAreaField("reason", validators=[DataRequired(), Length(max=2000)])


class SanctionForm(FlaskForm):
    """A sanction of a reviewer: who, when it was imposed, why."""

    user = StringField("user", validators=[DataRequired(), Length(max=36)])
    imposed_on = DateField("imposed_on", validators=[DataRequired()])
    reason = TextAreaField("reason", validators=[DataRequired(), Length(max=2000)])


class AffiliationForm(FlaskForm):
    """A past (or additional) affiliation of a reviewer or officer."""

    user = StringField("user", validators=[DataRequired(), Length(max=36)])
    organization = StringField("organization", validators=[DataRequired(), Length(max=200)])
    kind = StringField("kind", validators=[AnyOf([k.value for k in OrganizationKind])])
    starts_on = DateField("starts_on", validators=[Optional()])
    ends_on = DateField("ends_on", validators=[Optional()])


# -- labels (literal strings, so that the catalogue check sees them) -------------------------

def kind_labels() -> dict[str, str]:
    """The six kinds of conflict in the current language."""
    return {
        ConflictKind.EMPLOYMENT.value: _("Employment or affiliation"),
        ConflictKind.ADVISOR.value: _("Advisor or student"),
        ConflictKind.COLLABORATOR.value: _("Research collaborator"),
        ConflictKind.FAMILY.value: _("Family member"),
        ConflictKind.FINANCIAL.value: _("Financial interest"),
        ConflictKind.OTHER.value: _("Other conflict"),
    }


def status_labels() -> dict[str, str]:
    """Where a conflict stands, saying whether it is in effect."""
    return {
        ConflictStatus.PENDING.value: _("Pending — in effect"),
        ConflictStatus.CONFIRMED.value: _("Confirmed — in effect"),
        ConflictStatus.DISMISSED.value: _("Dismissed — not in effect"),
    }


def source_labels() -> dict[str, str]:
    """How the vault learned of a conflict."""
    return {
        ConflictSource.DECLARED.value: _("Declared by the person (recusal)"),
        ConflictSource.DETECTED.value: _("Detected by the vault (exclusion)"),
        ConflictSource.CHALLENGED.value: _("Challenged by an applicant"),
    }


def relation_labels() -> dict[str, str]:
    """How a matched organisation stands in a consortium."""
    return {"lead": _("Lead of the consortium"), "partner": _("Partner in the consortium")}


# -- loading --------------------------------------------------------------------------------

def _service() -> ConflictService:
    current = runtime()
    return ConflictService(db(), cipher=current.cipher, clock=current.clock,
                           definitions=current.definitions, audit=audit_log(),
                           request=request_info(), lookup=current.lookup)


def _programme(code: str) -> Programme:
    programme = ProgrammeService(db()).by_code(code)
    if programme is None:
        abort(404)
    return programme


def _authorize_declaring(programme: Programme) -> None:
    # Reviewers declare through their own permit; officers' declarations are part of their
    # conflict management.
    action = Action.CONFLICT_MANAGE if actor().role is Role.OFFICER else Action.CONFLICT_DECLARE
    authorize(action, programme, target={"programme": programme.id})


def _challenged_submission(submission_id: uuid.UUID) -> Submission:
    """The submission if the applicant may challenge for it; 404 otherwise (existence of
    another consortium's submission is not revealed)."""
    submission = SubmissionService(db()).get(submission_id)
    if submission is None:
        raise ConflictNotFound("There is nothing at this address.")
    authorize(Action.CONFLICT_CHALLENGE, submission,
              target={"consortium": submission.consortium_id, "submission": submission.id},
              denied=ConflictNotFound("There is nothing at this address."))
    return submission


def _enum_arg(name: str, enum: type[E]) -> E | None:
    value = request.args.get(name, "")
    if not value:
        return None
    try:
        return enum(value)
    except ValueError:
        abort(400)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        return None


# -- declarations (reviewers and officers) --------------------------------------------------

@bp.get("/<code>/declare")
def declare_form(code: str) -> str:
    """The declaration form."""
    programme = _programme(code)
    _authorize_declaring(programme)
    return _declare_page(programme, DeclarationForm())[0]


def _declare_page(programme: Programme, form: DeclarationForm,
                  status: int = 200) -> tuple[str, int]:
    return render_template("conflicts/declare.html", programme=programme, form=form,
                           kinds=kind_labels(), consortia=_service().consortia(programme)), status


@bp.post("/<code>/declare")
def declare(code: str) -> Response | tuple[str, int]:
    """Record a declaration. The answer never says which consortia an organisation matched."""
    programme = _programme(code)
    _authorize_declaring(programme)
    form = DeclarationForm()
    if not form.validate_on_submit():
        flash(_("Choose a kind, describe the conflict, and give dates as YYYY-MM-DD."), "error")
        return _declare_page(programme, form, 400)
    service = _service()
    consortium: Consortium | None = None
    if form.consortium.data:
        chosen = _uuid(form.consortium.data)
        consortium = service.consortium_in(programme, chosen) if chosen else None
        if consortium is None:
            flash(_("That consortium does not apply to this programme."), "error")
            return _declare_page(programme, form, 400)
    try:
        service.declare(actor(), programme, ConflictKind(form.kind.data),
                        form.description.data or "", form.period_from.data, form.period_to.data,
                        consortium=consortium, organization_name=form.organization.data)
    except InvalidDeclaration as error:
        flash(error.translated(_), "error")
        return _declare_page(programme, form, 400)
    flash(_("Your declaration has been recorded."), "info")
    return redirect(url_for("conflicts.declarations", code=programme.code))


@bp.get("/<code>/declarations")
def declarations(code: str) -> str:
    """The declarations the person made against a named consortium (nothing detected or
    challenged, nothing matched from an organisation's name)."""
    programme = _programme(code)
    _authorize_declaring(programme)
    return render_template("conflicts/declarations.html", programme=programme,
                           own=_service().of_user(user(), programme), kinds=kind_labels(),
                           statuses=status_labels())


# -- challenges (applicants) ----------------------------------------------------------------

@bp.get("/submissions/<uuid:submission_id>/challenge")
def challenge_form(submission_id: uuid.UUID) -> str:
    """The challenge form for the applicant's own submission."""
    submission = _challenged_submission(submission_id)
    return render_template("conflicts/challenge.html", submission=submission,
                           form=ChallengeForm())


@bp.post("/submissions/<uuid:submission_id>/challenge")
def challenge(submission_id: uuid.UUID) -> Response | tuple[str, int]:
    """Record a challenge; the answer is the same whoever was named."""
    submission = _challenged_submission(submission_id)
    form = ChallengeForm()
    try:
        if not form.validate_on_submit():
            raise InvalidChallenge("Name the person and give your reason.")
        _service().challenge(actor(), submission, form.person.data or "",
                             form.reason.data or "")
    except InvalidChallenge as error:
        flash(error.translated(_), "error")
        return render_template("conflicts/challenge.html", submission=submission,
                               form=form), 400
    flash(_("Your challenge has been recorded; the programme office will review it."), "info")
    return redirect(url_for("conflicts.challenge_form", submission_id=submission.id))


# -- officers -------------------------------------------------------------------------------

@bp.get("/<code>")
def manage(code: str) -> str:
    """Every conflict of the programme with its details and evidence, and the officers'
    tools: decisions, detection, sanctions, past affiliations."""
    programme = _programme(code)
    authorize(Action.CONFLICT_MANAGE, programme, target={"programme": programme.id})
    return _manage_page(programme)[0]


def _manage_page(programme: Programme, status: int = 200) -> tuple[str, int]:
    service = _service()
    chosen_status = _enum_arg("status", ConflictStatus)
    chosen_source = _enum_arg("source", ConflictSource)
    me = actor().user_id
    mine = service.effective_consortia(me) if me else set()
    views = service.for_programme(programme, chosen_status, chosen_source)
    # Details and evidence can name a consortium's partners: an officer who may not see that
    # consortium's material (a conflict, no dual-control approval) sees that a conflict exists,
    # not what it says.
    consortia = list({v.consortium.id: v.consortium for v in views}.values())
    decisions = authorizer().decide_many(actor(), Action.CONSORTIUM_VIEW, consortia)
    withheld = {c.id for c, d in zip(consortia, decisions, strict=True) if not d.allowed}
    evaluators = service.evaluators()
    page = render_template(
        "conflicts/manage.html", programme=programme, views=views,
        can_decide={v.conflict.id: v.conflict.user_id != me
                    and v.consortium.id not in mine for v in views},
        withheld=withheld,
        chosen_status=chosen_status.value if chosen_status else "",
        chosen_source=chosen_source.value if chosen_source else "",
        kinds=kind_labels(), statuses=status_labels(), sources=source_labels(),
        relations=relation_labels(), evaluators=evaluators,
        reviewers=[e for e in evaluators if e.role is Role.REVIEWER],
        sanctions=service.sanctions(), organization_kinds=list(OrganizationKind),
        today=runtime().clock().date(),
    )
    return page, status


@bp.post("/<uuid:conflict_id>/decide")
def decide(conflict_id: uuid.UUID) -> Response | tuple[str, int]:
    """Confirm or dismiss a conflict with a reason (never one's own)."""
    service = _service()
    conflict = service.get(conflict_id)
    not_found = ConflictNotFound("There is nothing at this address.")
    if conflict is None:
        raise not_found
    programme = service.programme(conflict)
    authorize(Action.CONFLICT_MANAGE, programme, target={"conflict": conflict.id},
              denied=not_found)
    form = DecisionForm()
    try:
        if not form.validate_on_submit():
            raise InvalidDecision("Give the reason for the decision (up to 2,000 characters).")
        service.decide(actor(), conflict, form.decision.data == "confirm",
                       form.reason.data or "")
    except InvalidDecision as error:
        flash(error.translated(_), "error")
        return _manage_page(programme, 400)
    flash(_("The decision has been recorded."), "info")
    return redirect(url_for("conflicts.manage", code=programme.code))


@bp.post("/<code>/detect")
def detect(code: str) -> Response:
    """Run detection over every reviewer and officer and every consortium of the programme."""
    programme = _programme(code)
    authorize(Action.CONFLICT_MANAGE, programme, target={"programme": programme.id})
    if not EmptyForm().validate_on_submit():
        abort(400)
    found = _service().detect(programme, actor=actor())
    flash(_("Detection found {count} new conflicts.", count=len(found)), "info")
    return redirect(url_for("conflicts.manage", code=programme.code))


@bp.post("/<code>/sanctions")
def record_sanction(code: str) -> Response | tuple[str, int]:
    """Record a sanction of a reviewer."""
    programme = _programme(code)
    authorize(Action.CONFLICT_MANAGE, programme, target={"programme": programme.id})
    form = SanctionForm()
    service = _service()
    try:
        person = service.evaluator(_uuid(form.user.data)) if form.validate_on_submit() else None
        if person is None or form.imposed_on.data is None:
            raise InvalidSanction("Choose the reviewer, the date and the reason of the sanction.")
        service.record_sanction(actor(), person, form.imposed_on.data, form.reason.data or "")
    except InvalidSanction as error:
        flash(error.translated(_), "error")
        return _manage_page(programme, 400)
    flash(_("The sanction has been recorded."), "info")
    return redirect(url_for("conflicts.manage", code=programme.code))


@bp.post("/<code>/affiliations")
def add_affiliation(code: str) -> Response | tuple[str, int]:
    """Record a past affiliation of a reviewer or officer, then detect again for them."""
    programme = _programme(code)
    authorize(Action.CONFLICT_MANAGE, programme, target={"programme": programme.id})
    form = AffiliationForm()
    service = _service()
    person = service.evaluator(_uuid(form.user.data)) if form.validate_on_submit() else None
    starts_on, ends_on = form.starts_on.data, form.ends_on.data
    # Checked here, before the organisation is registered, so that a refused form changes
    # nothing.
    if person is None or (starts_on and ends_on and ends_on < starts_on):
        flash(_("Choose the person and the organisation; the end must not precede the start."),
              "error")
        return _manage_page(programme, 400)
    organization = OrganizationService(db()).get_or_create(
        " ".join(form.organization.data.split()), OrganizationKind(form.kind.data))
    found = service.add_affiliation(actor(), person, organization, starts_on, ends_on)
    flash(_("The affiliation has been recorded; {count} new conflicts were detected.",
            count=len(found)), "info")
    return redirect(url_for("conflicts.manage", code=programme.code))


# -- for other blueprints -------------------------------------------------------------------

def detect_after_partner_change(consortium: Consortium) -> None:
    """Detect conflicts after a partner was added to ``consortium``, in the request's
    transaction. Says nothing to the applicant: what matched is confidential."""
    current = runtime()
    on_partner_list_changed(db(), current.cipher, current.clock, current.definitions,
                            audit_log(), request_info(), consortium, actor=actor())
