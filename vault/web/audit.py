"""The auditor's pages: the log with filters, the chain status and check, exports, and the
per-document access report. Read-only: nothing here shows document contents."""

from __future__ import annotations

import tempfile
import uuid
from datetime import datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import select

from vault.audit import queries
from vault.audit.bundle import (
    check_export_filter,
    export_bundle,
    export_filtered,
    parse_export_filter,
)
from vault.audit.chain import check_database
from vault.audit.checkpoints import Checkpoints, publish
from vault.audit.models import AuditVerification
from vault.audit.service import Tag
from vault.audit.verify import VerificationFailed
from vault.display import KST
from vault.identity.models import User
from vault.policy.actions import Action
from vault.web.context import audit, authorize, commit_so_far, db, runtime, user
from vault.web.forms import EmptyForm
from vault.web.i18n import gettext as _
from vault.web.loaders import load_document

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        abort(400)


def _date(value: str | None, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` day in Korea Standard Time; ``end`` gives the next midnight."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=KST)
    except ValueError:
        abort(400)
    return day + timedelta(days=1) if end else day


def _names(rows: list[queries.Row]) -> dict[str, str]:
    ids = {uuid.UUID(r.actor_id) for r in rows if r.actor_id}
    if not ids:
        return {}
    return {str(u.id): u.email for u in db().scalars(select(User).where(User.id.in_(ids)))}


@bp.get("/")
def events() -> str:
    """The log, newest first, filtered and paged by sequence number."""
    authorize(Action.AUDIT_LOG_VIEW)
    args = request.args
    decision = args.get("decision") or None
    if decision not in (None, "allow", "deny"):
        abort(400)
    tag = args.get("tag") or None
    if tag is not None and tag not in {t.value for t in Tag}:
        abort(400)
    actor_email = (args.get("actor") or "").strip()
    actor_id = None
    if actor_email:
        account = runtime().identity(db()).find_by_email(actor_email)
        actor_id = account.id if account else uuid.UUID(int=0)
    flt = queries.EventFilter(
        tag=tag, actor_id=actor_id, consortium_id=_uuid(args.get("consortium")),
        document_id=_uuid(args.get("document")), decision=decision,
        since=_date(args.get("from")), until=_date(args.get("to"), end=True),
    )
    before = args.get("before", type=int)
    runtime().audit(db()).sequence()  # show every committed event
    rows = queries.events(db(), flt, before=before)
    latest, verification = queries.chain_status(db())
    checker = db().get(User, verification.by_user_id) if verification and \
        verification.by_user_id else None
    return render_template(
        "audit/events.html", rows=rows, names=_names(rows), tags=[t.value for t in Tag],
        args=args, latest=latest, verification=verification, checker=checker,
        next_before=rows[-1].seq if len(rows) == queries.PAGE_SIZE else None,
        size=runtime().audit(db()).size(), check_form=EmptyForm(),
        consortium_filter=flt.consortium_id,
    )


@bp.post("/check")
def check() -> Response:
    """Run the chain check now and record who ran it."""
    authorize(Action.AUDIT_LOG_CHECK)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        summary = check_database(db(), identity=runtime().log_identity,
                                 published_path=runtime().settings.published_checkpoints,
                                 clock=runtime().clock)
        ok, message = True, summary
    except VerificationFailed as failure:
        ok, message = False, str(failure)
    db().add(AuditVerification(checked_at=runtime().clock(), by_user_id=user().id,
                               size=runtime().audit(db()).size(), ok=ok, message=message))
    flash(_("The audit log is intact: {summary}", summary=message) if ok else
          _("The audit log check FAILED: {problem}", problem=message), "info" if ok else "error")
    return redirect(url_for("audit.events"))


def export_response() -> Response:
    """A fresh export bundle as a download (shared with the API): the whole log, or with
    ``?consortium=ID`` or ``?document=ID`` only those events, each with its inclusion proof.

    A malformed or repeated id, or both filters, is a 400; an id this vault does not know is
    a 404; either way nothing is exported or recorded as exported.
    """
    authorize(Action.AUDIT_LOG_EXPORT)
    identity = runtime().log_identity
    if identity is None:
        abort(503)
    wanted = parse_export_filter(request.args.getlist("consortium"),
                                 request.args.getlist("document"))
    if wanted is not None:
        check_export_filter(db(), wanted)
    # A filtered export's own event names what it was narrowed to: it lands in the bundle.
    audit(Tag.AUDIT_EXPORTED,
          target={"format": "bundle", **(wanted.as_target() if wanted else {})})
    commit_so_far()  # the export covers its own event
    # An anonymous temporary file: it has no name on disk and vanishes when closed.
    spool = tempfile.TemporaryFile(dir=runtime().settings.data_dir)  # noqa: SIM115
    checkpoints = Checkpoints(db(), identity=identity, clock=runtime().clock)
    if wanted is not None:
        exported = export_filtered(db(), checkpoints, spool, wanted)
    else:
        exported = export_bundle(db(), checkpoints, spool, [], identity.vkey)
    commit_so_far()
    if exported.to_publish is not None:
        publish(runtime().settings.published_checkpoints, exported.to_publish)
    spool.seek(0)
    stamp = runtime().clock().strftime("%Y%m%dT%H%M%SZ")
    scope = f"-{wanted.kind}-{wanted.id}" if wanted else ""
    return send_file(spool, mimetype="application/zip", as_attachment=True,
                     download_name=f"vault-audit-{stamp}{scope}-{exported.size}.zip", max_age=0)


@bp.get("/export")
def export() -> Response:
    """Download a bundle of the log (whole, or one consortium's or document's events) that
    verifies offline (``vault audit verify``)."""
    return export_response()


@bp.get("/documents/<uuid:document_id>")
def document_access(document_id: uuid.UUID) -> str:
    """Who uploaded, opened or was refused this document, and when."""
    # The document first, as anywhere else (404 when it may not be seen, like an id that does
    # not exist), then the report itself.
    document = load_document(document_id)
    authorize(Action.DOCUMENT_ACCESS_REPORT, target={"document": document.id})
    runtime().audit(db()).sequence()  # show every committed event
    rows = queries.document_access(db(), document.id)
    return render_template("audit/document.html", document=document, rows=rows,
                           names=_names(rows))
