"""Dual-control pages: a conflicted officer asks, a second officer approves for a time.

The policies decide: ``grant:request`` only for an officer with a conflict on the consortium,
``grant:approve`` only for another officer without one. Both names are recorded in the audit log;
the reason is sealed and shown only on these officers' pages.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import Length

from vault.display import format_kst
from vault.grants.errors import GrantNotFound
from vault.grants.models import DualControlGrant
from vault.grants.service import GrantService
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

bp = Blueprint("grants", __name__, url_prefix="/dual-control")


class GrantRequestForm(FlaskForm):
    """A request to read a consortium one has a conflict with, and why."""

    consortium = HiddenField("consortium", validators=[Length(max=36)])
    # The service checks the reason (1 to 2,000 characters once trimmed).
    reason = TextAreaField("reason", validators=[Length(max=4000)])


def service() -> GrantService:
    """The dual-control service for this request."""
    return GrantService(db(), clock=runtime().clock, definitions=runtime().definitions,
                        cipher=runtime().cipher, audit=audit_log(), request=request_info())


def _managed_programmes() -> list[Programme]:
    """The programmes the user manages; refused (and recorded) for everyone but officers."""
    programmes = ProgrammeService(db()).list()
    shown = authorizer().permitted(actor(), Action.PROGRAMME_MANAGE, programmes)
    if programmes and not shown:
        # With no programme at all there is no consortium, so nothing to show anyone.
        authorize(Action.PROGRAMME_MANAGE, programmes[0])
    return shown


def _grant(grant_id: uuid.UUID) -> DualControlGrant:
    grant = service().get(grant_id)
    if grant is None:
        raise GrantNotFound("There is no such dual-control request.")
    return grant


def _target(grant: DualControlGrant) -> dict[str, object]:
    return {"grant": grant.id, "consortium": grant.consortium_id,
            "requested_by": grant.requested_by_id}


@bp.get("/")
def index() -> str:
    """Requests to approve, approvals in force, the officer's own requests, and the consortia
    the officer may ask about."""
    programmes = _managed_programmes()
    grants = service()
    check = authorizer()
    to_approve = check.permitted(actor(), Action.GRANT_APPROVE,
                                 [g for p in programmes for g in grants.pending(p)])
    in_force = check.permitted(actor(), Action.GRANT_APPROVE,
                               [g for p in programmes for g in grants.active(p)])
    mine = grants.of_officer(user())
    conflicted = check.permitted(actor(), Action.GRANT_REQUEST,
                                 grants.conflicted_consortia(user()))
    reasons = {g.id: grants.reason(g) for g in [*to_approve, *in_force, *mine]}
    return render_template(
        "grants/index.html", to_approve=to_approve, in_force=in_force, mine=mine,
        conflicted=conflicted, reasons=reasons, status={g.id: grants.status(g) for g in mine},
        request_form=GrantRequestForm(), action_form=EmptyForm(),
    )


@bp.post("/request")
def request_grant() -> Response:
    """Ask a second officer for time-limited access to a consortium one is conflicted with."""
    form = GrantRequestForm()
    if not form.validate_on_submit():
        abort(400)
    grants = service()
    try:
        consortium_id = uuid.UUID(form.consortium.data or "")
    except ValueError:
        raise GrantNotFound("There is no such consortium to ask about.") from None
    consortium = grants.consortium(consortium_id)
    if consortium is None:
        raise GrantNotFound("There is no such consortium to ask about.")
    authorize(Action.GRANT_REQUEST, consortium, target={"consortium": consortium.id},
              denied=GrantNotFound("There is no such consortium to ask about."))
    grants.request_grant(actor(), consortium, form.reason.data or "")
    flash(_("Your request is waiting for a second officer's approval."), "info")
    return redirect(url_for("grants.index"))


@bp.post("/<uuid:grant_id>/approve")
def approve(grant_id: uuid.UUID) -> Response:
    """Approve another officer's request for ``conflicts.dual_control_hours``."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    grant = _grant(grant_id)
    authorize(Action.GRANT_APPROVE, grant, target=_target(grant))
    service().approve(actor(), grant)
    flash(_("Approved until {time}.", time=format_kst(grant.expires_at)),  # type: ignore[arg-type]
          "info")
    return redirect(url_for("grants.index"))


@bp.post("/<uuid:grant_id>/revoke")
def revoke(grant_id: uuid.UUID) -> Response:
    """End a request or an approval at once: the requester withdraws it, or an officer who
    could approve it rejects or cuts it short."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    grant = _grant(grant_id)
    if grant.requested_by_id == actor().user_id:
        # Withdrawing one's own request: the right to have asked is the right to take it back.
        authorize(Action.GRANT_REQUEST, grant.consortium, target=_target(grant))
    else:
        authorize(Action.GRANT_APPROVE, grant, target=_target(grant))
    service().revoke(actor(), grant)
    flash(_("The dual-control access was ended."), "info")
    return redirect(url_for("grants.index"))
