"""Submission pages, the partner list, uploads and downloads (shared with the JSON API).

Handlers: parse → load → authorise → one service call → render. Reads of another consortium's
submission answer 404, exactly like an id that does not exist.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from functools import partial
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.http import parse_options_header

from vault.audit.service import AuditLog, Tag
from vault.consortia.errors import ConsortiumError
from vault.consortia.service import ConsortiumService, Member
from vault.db import unit_of_work
from vault.display import neutralise_bidi
from vault.documents.copies import PDF, NotWatermarkable, WatermarkCopies
from vault.documents.errors import (
    ContentIntegrityError,
    DocumentError,
    SubmissionLocked,
    TooLarge,
    UnknownKind,
    UploadClosed,
)
from vault.documents.models import Document, DocumentVersion, Submission
from vault.documents.service import DocumentService, Listed
from vault.documents.submissions import SubmissionService
from vault.organizations.models import OrganizationKind
from vault.policy.actions import Action
from vault.programmes.definition import DocumentKind, ProgrammeDefinition
from vault.web.conflicts import detect_after_partner_change
from vault.web.context import (
    actor,
    allowed,
    audit,
    audit_failure,
    authorize,
    authorizer,
    commit_so_far,
    db,
    request_info,
    runtime,
    user,
)
from vault.web.forms import EmptyForm, PartnerForm
from vault.web.i18n import gettext as _
from vault.web.loaders import load_document, load_submission
from vault.web.screening import submission_panel

bp = Blueprint("documents", __name__)
integrity_log = logging.getLogger("vault.integrity")

#: Upload bodies are read in pieces of this size: memory stays bounded for any file size.
READ_SIZE = 1024 * 1024
#: Kinds whose limit is above this, and every stage artifact, go up in the browser by
#: resumable upload (vault/web/static/resumable.js); smaller ones in one PUT (upload.js).
RESUMABLE_ABOVE = 100 * 1048576
#: The size of each PATCH the browser sends, told to resumable.js by the page.
RESUMABLE_CHUNK = 8 * 1048576


# -- document kinds -------------------------------------------------------------------------

def document_kind(submission: Submission, kind_id: str) -> DocumentKind:
    """The programme's definition of a document kind; raises ``UnknownKind``."""
    definition = runtime().definitions.get(submission.consortium.programme.code)
    try:
        if definition is not None:
            return definition.document_kind(kind_id)
    except KeyError:
        pass
    raise UnknownKind("The programme has no document kind {kind}.", kind=repr(kind_id))


# -- upload and download, shared by the UI and the API --------------------------------------

def receive_upload(submission: Submission, kind_id: str) -> DocumentVersion:
    """Stream the request body into a new document version (the caller commits)."""
    kind = document_kind(submission, kind_id)
    if request.content_length is not None and request.content_length > kind.max_size_bytes:
        raise TooLarge("The file is larger than the limit of {limit} MiB.",
                       limit=kind.max_size_bytes // 1048576)
    # Flask's global body limit is for forms; this route's limit is the kind's.
    request.max_content_length = kind.max_size_bytes + 1
    _disposition, options = parse_options_header(request.headers.get("Content-Disposition", ""))
    documents = runtime().documents(db())
    plan = documents.plan_upload(
        submission=submission, kind=kind, slot=request.args.get("partner", ""),
        filename=options.get("filename"), uploader_id=user().id,
    )
    # No transaction may stay open while the body streams in (seconds to hours).
    commit_so_far()
    stored = documents.store_content(
        plan, declared_type=request.mimetype or None,
        body=iter(partial(request.stream.read, READ_SIZE), b""),
    )
    version = documents.record_upload(plan, stored)
    audit(Tag.DOCUMENT_UPLOADED, target=_version_target(submission, version))
    return version


def _version_target(submission: Submission, version: DocumentVersion) -> dict[str, object]:
    return {"consortium": submission.consortium_id, "submission": submission.id,
            "document": version.document_id, "version": version.version,
            "blob_sha256": version.blob_sha256, "size": version.size_bytes}


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """``attachment`` (or ``inline``) with an ASCII fallback and the UTF-8 name (RFC 6266,
    RFC 8187), without bidirectional controls: the saved file is named as the page shows it."""
    filename = neutralise_bidi(filename)
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def needs_watermark(version: DocumentVersion, submission: Submission) -> bool:
    """Every PDF handed to anyone but the consortium's own applicants is a stamped copy."""
    return (version.media_type == PDF
            and submission.consortium_id not in actor().consortium_ids)


def send_version(document: Document, number: int | None, *, inline: bool = False) -> Response:
    """One verified version of a document: streamed as an attachment to its own consortium;
    as a stamped copy (``inline`` for the browser's viewer if asked) to everyone else."""
    service = runtime().documents(db())
    version = service.version(document, number)
    version_id = version.id
    target = _version_target(document.submission, version)
    if needs_watermark(version, document.submission):
        return _send_stamped(service, version, target, inline=inline)
    try:
        chunks = service.plaintext(version)  # raises before any byte if the key/start is bad
    except ContentIntegrityError as error:
        integrity_log.critical("integrity alarm: document version %s before download: %s",
                               version_id, error.detail)
        # The request fails: the alarm is committed on its own.
        audit_failure(Tag.DOCUMENT_INTEGRITY_FAILED, target=target,
                      reasons=(f"before download: {error.detail}",))
        raise
    audit(Tag.DOCUMENT_DOWNLOADED, target=target)
    account = actor()
    info = request_info()
    sessions = runtime().sessions
    clock = runtime().clock

    def guarded() -> Iterator[bytes]:
        try:
            yield from chunks
        except ContentIntegrityError as error:
            # The client must never see a clean end of a tampered file: the error aborts the
            # response mid-body, short of the announced Content-Length.
            integrity_log.critical("integrity alarm: document version %s during download: %s",
                                   version_id, error.detail)
            # The request's transaction has ended (the headers went out): record on its own.
            with unit_of_work(sessions) as session:
                AuditLog(session, clock=clock).append(
                    Tag.DOCUMENT_INTEGRITY_FAILED, actor=account, target=target,
                    reasons=(f"during download: {error.detail}",), request=info)
            raise

    response = Response(stream_with_context(guarded()), mimetype=version.media_type)
    response.headers["Content-Length"] = str(version.size_bytes)
    response.headers["Content-Disposition"] = content_disposition(version.original_filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def _send_stamped(service: DocumentService, version: DocumentVersion,
                  target: dict[str, object], *, inline: bool) -> Response:
    """A stamped copy, in three steps so that no transaction is open while the sandbox stamps:
    the access check and its audit events are committed first (``release``); the version is
    read and stamped with no transaction open; the copy's record and the download event are
    then committed before any byte is handed out (fail closed: a copy that cannot be
    recorded is never released)."""
    copies = WatermarkCopies(db(), documents=service, clock=runtime().clock)
    try:
        stamped, copy = copies.issue(version, user(), request_id=request_info().request_id,
                                     release=commit_so_far)
    except ContentIntegrityError as error:
        integrity_log.critical("integrity alarm: document version %s before stamping: %s",
                               version.id, error.detail)
        audit_failure(Tag.DOCUMENT_INTEGRITY_FAILED, target=target,
                      reasons=(f"before stamping: {error.detail}",))
        raise
    except NotWatermarkable as error:
        audit_failure(Tag.DOCUMENT_WATERMARK_FAILED, target=target, reasons=(str(error),))
        if copies.keep_refusal(version, error):
            commit_so_far()  # the next reader is told at once, not after the limit again
        raise
    audit(Tag.DOCUMENT_DOWNLOADED, target={**target, "watermark": copy.code})
    commit_so_far()  # raises (nothing released) if the record of the copy cannot be written
    response = Response(stamped, mimetype=PDF)
    response.headers["Content-Disposition"] = content_disposition(
        version.original_filename, "inline" if inline else "attachment")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    if inline:
        # Shown inside the vault's own viewer page; no other site may frame it.
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
    return response


# -- pages --------------------------------------------------------------------------------

@bp.get("/submissions/<uuid:submission_id>")
def submission_page(submission_id: uuid.UUID) -> str:
    """A submission: its state and deadline, the decision, receipts and live checklist, its
    required documents with their versions, and the partner list."""
    submission = load_submission(submission_id)
    consortium = submission.consortium
    documents = runtime().documents(db())
    definition = runtime().definitions.get(consortium.programme.code)
    members = []
    if allowed(Action.PARTNER_LIST_VIEW, submission):
        # Reading the partner list is an access like any other: recorded.
        authorize(Action.PARTNER_LIST_VIEW, submission,
                  target={"consortium": consortium.id, "submission": submission.id})
        members = ConsortiumService(db(), cipher=runtime().cipher).members(consortium)
    partners = [m for m in members if m.position > 0]  # the lead files no partner documents
    items = documents.listing(submission)
    visible = set(authorizer().permitted(actor(), Action.DOCUMENT_VIEW,
                                         [item.document for item in items]))
    listed = {(item.document.kind, item.document.slot): item
              for item in items if item.document in visible}
    rows = document_rows(documents, submission, definition, partners, listed)
    return render_template(
        "documents/submission.html", submission=submission, consortium=consortium,
        definition=definition, members=members, rows=rows,
        shredded=documents.is_shredded(consortium),
        can_upload=allowed(Action.DOCUMENT_UPLOAD, submission)
        and documents.accepts_changes(submission),
        any_upload=any(row["upload"] for row in rows),
        resumable_chunk=RESUMABLE_CHUNK,
        can_edit_partners=allowed(Action.PARTNER_LIST_EDIT, submission),
        can_challenge=allowed(Action.CONFLICT_CHALLENGE, submission),
        can_view_resources=definition is not None and definition.resources is not None
        and allowed(Action.RESOURCE_REQUEST_VIEW, submission),
        partner_form=PartnerForm(), remove_form=EmptyForm(), kinds=list(OrganizationKind),
        now=runtime().clock(),
        **submission_panel(submission, {str(m.id): m.organization_name for m in partners}),
    )


def document_rows(documents: DocumentService, submission: Submission,
                  definition: ProgrammeDefinition | None, partners: list[Member],
                  listed: dict[tuple[str, str], Listed]) -> list[dict[str, object]]:
    """The submission page's document table: one row per kind (per partner where the kind is
    required once per partner), each saying whether the actor may upload to it now and how.

    A call document is listed always; a stage artifact only while its window is open or once
    something was uploaded for it (before its stage, the slot would only confuse)."""
    may_upload = allowed(Action.DOCUMENT_UPLOAD, submission)
    rows: list[dict[str, object]] = []
    for kind in definition.document_kinds if definition else ():
        upload = may_upload and _window_open(documents, submission, kind)
        # Stage artifacts run to gigabytes and any of them may outlast a connection.
        resumable = upload and (bool(kind.stages) or kind.max_size_bytes > RESUMABLE_ABOVE)
        slots = [("", "")] if kind.per == "consortium" else [
            (str(m.id), m.organization_name) for m in partners]
        for slot, name in slots:
            item = listed.get((kind.id, slot))
            if kind.stages and not upload and item is None:
                continue
            rows.append({"kind": kind, "slot": slot, "partner_name": name, "item": item,
                         "upload": upload, "resumable": resumable})
    return rows


def _window_open(documents: DocumentService, submission: Submission,
                 kind: DocumentKind) -> bool:
    try:
        documents.check_open(submission, kind)
    except (UploadClosed, SubmissionLocked):
        return False
    return True


@bp.get("/submissions")
def submissions_page() -> str:
    """Every submission the user may see."""
    visible = authorizer().permitted(actor(), Action.SUBMISSION_VIEW,
                                     SubmissionService(db()).visible(None))
    return render_template("documents/submissions.html", submissions=visible)


@bp.get("/documents/<uuid:document_id>")
def document_page(document_id: uuid.UUID) -> str:
    """A document's versions, newest first, each with its receipt data and a download link."""
    document = load_document(document_id)
    service = runtime().documents(db())
    return render_template(
        "documents/document.html", document=document,
        versions=list(reversed(document.versions)),
        shredded=service.is_shredded(document.submission.consortium),
        kind=document_kind(document.submission, document.kind),
        highlight=request.args.get("uploaded", type=int),
        can_read=allowed(Action.DOCUMENT_READ, document),
        # Readers outside the consortium receive stamped copies (see ``needs_watermark``).
        marked=document.submission.consortium_id not in actor().consortium_ids,
    )


@bp.get("/documents/<uuid:document_id>/content")
def download(document_id: uuid.UUID) -> Response:
    """Download a version (the newest unless ``?version=N``)."""
    document = load_document(document_id, Action.DOCUMENT_READ)
    return send_version(document, request.args.get("version", type=int),
                        inline=request.args.get("inline") == "1")


# -- partner list --------------------------------------------------------------------------

@bp.post("/submissions/<uuid:submission_id>/partners")
def add_partner(submission_id: uuid.UUID) -> Response:
    """Add an entry to the consortium's confidential partner list."""
    submission = load_submission(submission_id, Action.PARTNER_LIST_EDIT)
    form = PartnerForm()
    try:
        runtime().documents(db()).check_open(submission)
    except DocumentError as error:
        flash(error.translated(_), "error")
        return redirect(url_for("documents.submission_page", submission_id=submission.id))
    if not form.validate_on_submit():
        flash(_("Fill in every field of the partner (name up to 200 characters)."), "error")
        return redirect(url_for("documents.submission_page", submission_id=submission.id))
    try:
        ConsortiumService(db(), cipher=runtime().cipher).add_member(
            submission.consortium, name=form.name.data.strip(),
            kind=OrganizationKind(form.kind.data), role=form.role.data.strip(),
            contribution=form.contribution.data.strip(),
        )
    except ConsortiumError as error:
        flash(error.translated(_), "error")
    except ValueError as error:  # an organisation kind outside the form's choices
        flash(_(str(error)), "error")
    else:
        audit(Tag.PARTNER_LIST_CHANGED, target={"consortium": submission.consortium_id,
                                                "change": "added"})
        # A new partner may be a reviewer's or officer's organisation: the conflict takes
        # effect on their very next request.
        detect_after_partner_change(submission.consortium)
        flash(_("Partner added."), "info")
    return redirect(url_for("documents.submission_page", submission_id=submission.id))


@bp.post("/submissions/<uuid:submission_id>/partners/<uuid:member_id>/remove")
def remove_partner(submission_id: uuid.UUID, member_id: uuid.UUID) -> Response:
    """Remove a partner (not the lead, and not one with documents uploaded for it)."""
    submission = load_submission(submission_id, Action.PARTNER_LIST_EDIT)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        runtime().documents(db()).check_open(submission)
        ConsortiumService(db(), cipher=runtime().cipher).remove_member(
            submission.consortium, member_id,
            has_documents=any(item.document.slot == str(member_id)
                              for item in runtime().documents(db()).listing(submission)),
        )
    except (ConsortiumError, DocumentError) as error:
        flash(error.translated(_), "error")
    else:
        audit(Tag.PARTNER_LIST_CHANGED, target={"consortium": submission.consortium_id,
                                                "change": "removed", "member": member_id})
        flash(_("Partner removed."), "info")
    return redirect(url_for("documents.submission_page", submission_id=submission.id))
