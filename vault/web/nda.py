"""NDA pages: reviewers read and accept the programme NDA; officers see the acceptance report.

Handlers: parse → load → authorize → one service call → render. An unknown programme code is
404; the programme's NDA is not secret, but who accepted it is for officers only.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import Length

from vault.display import KST
from vault.identity.models import Role
from vault.nda.errors import SESSION_NEEDS_MFA, NdaError, NdaNeedsMfa, NoNda, NotConfirmed
from vault.nda.service import NdaService
from vault.policy.actions import Action
from vault.programmes.definition import ProgrammeDefinition
from vault.programmes.models import Programme
from vault.web.context import (
    actor,
    allowed,
    audit_log,
    authorize,
    db,
    request_info,
    runtime,
    user,
)
from vault.web.i18n import gettext as _
from vault.web.loaders import load_programme

bp = Blueprint("nda", __name__, url_prefix="/nda")


class NdaAcceptForm(FlaskForm):
    """The signature: the typed full name and the "I have read and accept" box."""

    typed_name = StringField("typed_name", validators=[Length(max=200)])
    #: The version the reviewer read, so a text changed meanwhile is not accepted unseen.
    sha256 = StringField("sha256", validators=[Length(max=64)])
    confirm = BooleanField("confirm")


def nda_service() -> NdaService:
    """The NDA service on the request's session, recording in the request's audit log."""
    return NdaService(db(), clock=runtime().clock, audit=audit_log(), request=request_info())


def needs_mfa_error(message: str) -> NdaNeedsMfa | None:
    """The clear refusal for a reviewer whose credentials passed no second factor (the policy
    requires one to accept); ``None`` for everyone else, who get the plain 403."""
    current = actor()
    if current.role is Role.REVIEWER and not current.mfa:
        return NdaNeedsMfa(message)
    return None


def _page(programme: Programme, definition: ProgrammeDefinition, form: NdaAcceptForm,
          status: int = 200) -> tuple[str, int]:
    service = nda_service()
    version = service.current(programme, definition)
    reviewer = actor().role is Role.REVIEWER
    page = render_template(
        "nda/show.html", programme=programme, definition=definition, version=version,
        standing=service.status(user(), programme, definition) if reviewer else None,
        can_accept=version is not None and allowed(Action.NDA_ACCEPT, programme),
        needs_mfa=reviewer and not actor().mfa,
        can_report=allowed(Action.NDA_REPORT, programme),
        closed=definition.nda is not None and definition.nda.accepted_until <= runtime().clock(),
        form=form,
    )
    return page, status


@bp.get("/<code>")
def show(code: str) -> tuple[str, int]:
    """The current NDA text, the reviewer's standing and, if needed, the acceptance form."""
    programme, definition = load_programme(code)
    authorize(Action.NDA_VIEW, programme, target={"programme": programme.code})
    return _page(programme, definition, NdaAcceptForm(formdata=None))


@bp.post("/<code>")
def accept(code: str) -> Response | tuple[str, int]:
    """Accept the NDA version the reviewer read, signed with their typed full name."""
    form = NdaAcceptForm()
    programme, definition = load_programme(code)
    if definition.nda is None:
        # Checked before the policy, which denies without saying why.
        raise NoNda("This programme has no NDA to accept.")
    authorize(Action.NDA_ACCEPT, programme, target={"programme": programme.code},
              denied=needs_mfa_error(SESSION_NEEDS_MFA))
    # Validated only now: the page that shows the errors is for those who may accept.
    if not form.validate_on_submit():
        flash(_("The form was incomplete. Please try again."), "error")
        return _page(programme, definition, form, 400)
    try:
        if not form.confirm.data:
            raise NotConfirmed("Tick the box to confirm that you have read and accept the NDA.")
        info = request_info()
        nda_service().accept(actor(), programme, definition, sha256=form.sha256.data or "",
                             typed_name=form.typed_name.data or "", client_address=info.client,
                             user_agent=info.user_agent, channel="web")
    except NdaError as error:
        # Nothing was stored; the page shows the current text again with the reason.
        flash(error.translated(_), "error")
        return _page(programme, definition, form, error.status)
    flash(_("You accepted the NDA. Thank you."), "info")
    return redirect(url_for("nda.show", code=programme.code))


@bp.get("/<code>/report")
def report(code: str) -> str:
    """Officers: every reviewer account and where it stands with the NDA."""
    programme, definition = load_programme(code)
    authorize(Action.NDA_REPORT, programme, target={"programme": programme.code})
    service = nda_service()
    return render_template("nda/report.html", programme=programme, definition=definition,
                           version=service.current(programme, definition),
                           rows=service.report(programme, definition))


@bp.get("/<code>/report.csv")
def report_csv(code: str) -> Response:
    """The report as a CSV download for a spreadsheet (the export is recorded)."""
    programme, definition = load_programme(code)
    authorize(Action.NDA_REPORT, programme, target={"programme": programme.code,
                                                    "format": "csv"})
    text = nda_service().report_csv(actor(), programme, definition)
    day = runtime().clock().astimezone(KST).date().isoformat()
    return Response(text.encode("utf-8"), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="nda-report-{programme.code}-{day}.csv"',
    })
