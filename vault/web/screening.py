"""Screening pages: the applicant's checklist, submit, recall, withdraw and receipts; the
officers' decisions and the move of eligible submissions into the written evaluation.

Handlers: parse → load → authorize → one service call → audit → redirect. Someone who may not
see the submission gets 404; someone who may see it but not act gets 403. Refusals of the
workflow (a deadline, an illegal transition) are flashed on the submission's page.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length

from vault.audit.service import Tag
from vault.consortia.service import ConsortiumService
from vault.display import KST
from vault.documents.errors import DocumentShredded
from vault.documents.models import Submission, SubmissionState
from vault.policy.actions import Action
from vault.screening.checks import Finding
from vault.screening.errors import InvalidDecision, NotConfirmed, ScreeningError
from vault.screening.models import SubmissionReceipt
from vault.screening.service import ScreeningService
from vault.screening.workflow import OUTCOMES, TRANSITIONS, SubmissionWorkflow
from vault.web.context import actor, allowed, audit, authorize, commit_so_far, db, runtime
from vault.web.forms import EmptyForm
from vault.web.i18n import current_locale
from vault.web.i18n import gettext as _
from vault.web.loaders import load_programme, load_submission

bp = Blueprint("screening", __name__)


class SubmitForm(FlaskForm):
    """Submit (or resubmit): the applicant confirms the documents are final."""

    confirm = BooleanField("confirm")


class WithdrawForm(FlaskForm):
    """Withdraw for good, with a reason and a confirmation."""

    reason = TextAreaField("reason", validators=[Length(max=4000)])
    confirm = BooleanField("confirm")


class DecisionForm(FlaskForm):
    """An officer's decision: the outcome, the reason and, when returned, the deadline."""

    outcome = StringField("outcome", validators=[Length(max=20)])
    reason = TextAreaField("reason", validators=[Length(max=4000)])
    #: An HTML ``datetime-local`` value, read as Korea Standard Time.
    correction_deadline = StringField("correction_deadline", validators=[Length(max=40)])


def workflow() -> SubmissionWorkflow:
    """The submission workflow on the request's session."""
    return SubmissionWorkflow(db(), cipher=runtime().cipher, clock=runtime().clock,
                              documents=runtime().documents(db()),
                              definitions=runtime().definitions)


def screening_service() -> ScreeningService:
    """The screening service on the request's session; PDFs are analysed by the process's
    background queue, never in the request."""
    return ScreeningService(db(), documents=runtime().documents(db()), cipher=runtime().cipher,
                            clock=runtime().clock, definitions=runtime().definitions,
                            limits=runtime().analysis_limits, queue=runtime().analyses)


def precheck(submission: Submission) -> list[Finding]:
    """The live pre-check: new PDFs are queued, then the request's transaction ends and it
    waits a moment (``VAULT_PRECHECK_WAIT_MS``) with none open; slower ones show as pending."""
    return screening_service().precheck(submission, release=commit_so_far,
                                        wait=runtime().settings.precheck_wait)


def target(submission: Submission, **extra: object) -> dict[str, object]:
    """The audit target of a change of the submission (never a reason: those are sealed)."""
    return {"consortium": submission.consortium_id, "submission": submission.id, **extra}


def open_until(submission: Submission) -> datetime | None:
    """Until when the applicant can still change and (re)submit: the programme's deadline for a
    draft or a submitted one, the correction deadline for a returned one; ``None`` otherwise."""
    if submission.state in (SubmissionState.DRAFT, SubmissionState.SUBMITTED):
        return submission.consortium.programme.submission_deadline
    if submission.state is SubmissionState.RETURNED:
        return submission.correction_deadline
    return None


def parse_kst(value: str | None) -> datetime | None:
    """An HTML ``datetime-local`` value read as Korea Standard Time (``None`` when empty);
    raises ``InvalidDecision`` when it is not a date and time."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidDecision("The correction deadline is not a valid date and time.") from None
    return moment.replace(tzinfo=KST) if moment.tzinfo is None else moment


def submission_panel(submission: Submission, partner_names: dict[str, str]) -> dict[str, object]:
    """What the submission page shows of the workflow: the state's deadline, the decision, the
    receipts, the live checklist while changes are possible, and the applicant's buttons."""
    now = runtime().clock()
    until = open_until(submission)
    is_open = until is not None and now < until
    state = submission.state
    panel: dict[str, object] = {
        "open_until": until, "decision": None, "receipts": [], "checklist": None,
        "partner_names": partner_names,
        "can_submit": is_open and state in (SubmissionState.DRAFT, SubmissionState.RETURNED)
        and allowed(Action.SUBMISSION_SUBMIT, submission),
        "can_recall": is_open and state is SubmissionState.SUBMITTED
        and allowed(Action.SUBMISSION_SUBMIT, submission),
        "can_withdraw": (state, SubmissionState.WITHDRAWN) in TRANSITIONS
        and allowed(Action.SUBMISSION_WITHDRAW, submission),
        "submit_form": SubmitForm(formdata=None), "withdraw_form": WithdrawForm(formdata=None),
        "recall_form": EmptyForm(formdata=None),
    }
    if not allowed(Action.SCREENING_VIEW, submission):
        return panel
    # The checklist and the decision are read like any protected record: recorded.
    authorize(Action.SCREENING_VIEW, submission, target=target(submission))
    flow = workflow()
    panel["decision"] = flow.decision(submission)
    panel["receipts"] = flow.receipts(submission)
    if is_open:
        panel["checklist"] = checklist(submission)
    return panel


def checklist(submission: Submission) -> list[dict[str, object]] | None:
    """The live pre-check of the submission's current documents, in the reader's language;
    ``None`` when its documents were destroyed."""
    try:
        findings = precheck(submission)
    except DocumentShredded:
        return None
    return [finding_row(finding) for finding in findings]


def finding_row(finding: Finding) -> dict[str, object]:
    """A finding as the pages and the API show it (message and evidence in the reader's
    language)."""
    locale = current_locale()
    return {"check": finding.check_id, "result": finding.result.value, "kind": finding.kind,
            "partner": finding.slot or None, "title": finding.title(locale),
            "pending": finding.values.get("case") == "pending",
            "message": finding.message(locale), "evidence": finding.evidence(locale)}


def _to_page(submission: Submission) -> Response:
    return redirect(url_for("documents.submission_page", submission_id=submission.id))


# -- the applicant's changes -----------------------------------------------------------------

@bp.post("/submissions/<uuid:submission_id>/submit")
def submit(submission_id: uuid.UUID) -> Response:
    """Submit the draft (or resubmit the returned submission); shows the receipt."""
    submission = load_submission(submission_id, Action.SUBMISSION_SUBMIT)
    form = SubmitForm()
    if not form.validate_on_submit():
        abort(400)
    resubmitting = submission.state is SubmissionState.RETURNED
    try:
        if not form.confirm.data:
            raise NotConfirmed()
        receipt = workflow().submit(submission, actor())
    except ScreeningError as error:
        flash(error.translated(_), "error")
        return _to_page(submission)
    audit(Tag.SUBMISSION_RESUBMITTED if resubmitting else Tag.SUBMISSION_SUBMITTED,
          target=target(submission, receipt=receipt.id,
                        manifest_sha256=receipt.manifest_sha256))
    flash(_("Resubmitted. Keep this receipt: it lists every document with its SHA-256.")
          if resubmitting else
          _("Submitted. Keep this receipt: it lists every document with its SHA-256."), "info")
    return redirect(url_for("screening.receipt", submission_id=submission.id,
                            receipt_id=receipt.id))


@bp.post("/submissions/<uuid:submission_id>/recall")
def recall(submission_id: uuid.UUID) -> Response:
    """Take the submission back to draft (before the deadline) to change it."""
    submission = load_submission(submission_id, Action.SUBMISSION_SUBMIT)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        workflow().recall(submission, actor())
    except ScreeningError as error:
        flash(error.translated(_), "error")
    else:
        audit(Tag.SUBMISSION_RECALLED, target=target(submission))
        flash(_("The submission is a draft again. Submit it again before the deadline."),
              "info")
    return _to_page(submission)


@bp.post("/submissions/<uuid:submission_id>/withdraw")
def withdraw(submission_id: uuid.UUID) -> Response:
    """Withdraw the submission from the programme for good, with a reason."""
    submission = load_submission(submission_id, Action.SUBMISSION_WITHDRAW)
    form = WithdrawForm()
    if not form.validate_on_submit():
        flash(_("The reason is longer than {limit} characters.", limit=2000), "error")
        return _to_page(submission)
    try:
        if not form.confirm.data:
            raise NotConfirmed("Tick the box to confirm that you withdraw the submission.")
        workflow().withdraw(submission, actor(), form.reason.data or "")
    except ScreeningError as error:
        flash(error.translated(_), "error")
    else:
        audit(Tag.SUBMISSION_WITHDRAWN, target=target(submission))
        flash(_("The submission was withdrawn."), "info")
    return _to_page(submission)


@bp.get("/submissions/<uuid:submission_id>/receipts/<uuid:receipt_id>")
def receipt(submission_id: uuid.UUID, receipt_id: uuid.UUID) -> str:
    """A receipt: every document version with its SHA-256 and the manifest's SHA-256."""
    submission = load_submission(submission_id, Action.SCREENING_VIEW)
    found: SubmissionReceipt = workflow().receipt(submission, receipt_id)
    definition = runtime().definitions.get(submission.consortium.programme.code)
    partners: dict[str, str] = {}
    if allowed(Action.PARTNER_LIST_VIEW, submission):
        authorize(Action.PARTNER_LIST_VIEW, submission, target=target(submission))
        members = ConsortiumService(db(), cipher=runtime().cipher).members(submission.consortium)
        partners = {str(member.id): member.organization_name for member in members}
    manifest = json.loads(found.manifest)
    uploaded = [datetime.fromisoformat(d["uploaded_at"]) for d in manifest["documents"]]
    return render_template(
        "screening/receipt.html", submission=submission, receipt=found, manifest=manifest,
        documents=list(zip(manifest["documents"], uploaded, strict=True)), partner_names=partners,
        kind_titles={kind.id: kind.title(current_locale())
                     for kind in (definition.document_kinds if definition else ())})


# -- the officers' actions ---------------------------------------------------------------------

@bp.post("/screening/submissions/<uuid:submission_id>/decide")
def decide(submission_id: uuid.UUID) -> Response:
    """Decide eligible, returned (with a correction deadline) or ineligible, with a reason."""
    submission = load_submission(submission_id, Action.SCREENING_DECIDE)
    form = DecisionForm()
    report = url_for("screening.submission_report", submission_id=submission.id)
    if not form.validate_on_submit():
        flash(_("The reason is longer than {limit} characters.", limit=2000), "error")
        return redirect(report)
    try:
        outcome = SubmissionState(form.outcome.data or "")
        if outcome not in OUTCOMES:
            raise ValueError(outcome)
    except ValueError:
        flash(_("Choose eligible, returned or ineligible."), "error")
        return redirect(report)
    try:
        deadline = parse_kst(form.correction_deadline.data)
        event = workflow().decide(submission, actor(), outcome, form.reason.data or "",
                                  deadline)
    except ScreeningError as error:
        flash(error.translated(_), "error")
        return redirect(report)
    audit(Tag.SCREENING_DECIDED, target=target(
        submission, outcome=outcome.value, event=event.id,
        correction_deadline=event.correction_deadline.isoformat()
        if event.correction_deadline else None))
    flash(_("Decision recorded: {outcome}.", outcome=_(outcome.value)), "info")
    return redirect(report)


@bp.post("/screening/<code>/advance")
def advance(code: str) -> Response:
    """Move every eligible submission of the programme into its first evaluation stage."""
    programme, definition = load_programme(code)
    authorize(Action.PROGRAMME_MANAGE, programme, target={"programme": programme.code})
    if not EmptyForm().validate_on_submit():
        abort(400)
    flow = workflow()
    try:
        stage = flow.first_stage(programme)
        moved = flow.advance(programme, actor())
    except ScreeningError as error:
        flash(error.translated(_), "error")
        return redirect(url_for("screening.overview", code=programme.code))
    for submission in moved:
        audit(Tag.SUBMISSION_STAGE_ENTERED, target=target(submission, stage=stage))
    flash(_("{count} eligible submissions moved into {stage}.", count=len(moved),
            stage=definition.stage(stage).title(current_locale())), "info")
    return redirect(url_for("screening.overview", code=programme.code))


# The officers' overview and reports, registered on ``bp`` by importing their module.
from vault.web import screening_reports  # noqa: E402, F401
