"""Watermarked copies: the inline PDF viewer and the officers' code lookup."""

from __future__ import annotations

import uuid

from flask import Blueprint, render_template, request
from werkzeug.exceptions import Forbidden

from vault.audit.service import Tag
from vault.documents.copies import PDF, WatermarkCopies
from vault.policy.actions import Action
from vault.programmes.service import ProgrammeService
from vault.web.context import actor, allowed, audit, authorize, authorizer, db, runtime
from vault.web.documents import needs_watermark
from vault.web.loaders import load_document

bp = Blueprint("watermarks", __name__)


@bp.get("/documents/<uuid:document_id>/view")
def view(document_id: uuid.UUID) -> str:
    """A page that shows a stamped copy of the PDF in the browser's own viewer."""
    document = load_document(document_id, Action.DOCUMENT_READ)
    version = runtime().documents(db()).version(document, request.args.get("version", type=int))
    stamped = needs_watermark(version, document.submission)
    return render_template("watermarks/view.html", document=document, version=version,
                           viewable=stamped and version.media_type == PDF)


@bp.route("/watermarks/lookup", methods=["GET", "POST"])
def lookup() -> str:
    """Officers type the code printed on a page and learn who received that copy."""
    programmes = authorizer().permitted(actor(), Action.WATERMARK_LOOKUP,
                                        ProgrammeService(db()).list())
    if not programmes:
        raise Forbidden()
    code = (request.values.get("code") or "").strip()[:40]
    copy = None
    searched = bool(code)
    if searched:
        copies = WatermarkCopies(db(), documents=runtime().documents(db()),
                                 clock=runtime().clock)
        copy = copies.find(code)
        if copy is not None:
            # The lookup is an access to who-saw-what of that programme: decided and recorded.
            document = copy.version.document
            # Who received a copy of a consortium's document is that consortium's material:
            # an officer who may not see the document (a conflict) learns nothing.
            if not (allowed(Action.WATERMARK_LOOKUP, document.submission.consortium.programme)
                    and allowed(Action.DOCUMENT_VIEW, document)):
                copy = None
            else:
                authorize(Action.WATERMARK_LOOKUP, document.submission.consortium.programme,
                          target={"code": copy.code})
        audit(Tag.WATERMARK_LOOKED_UP, target={"code": code, "found": copy is not None,
                                               **({"account": copy.user_id,
                                                   "document": copy.version.document_id}
                                                  if copy else {})})
    return render_template("watermarks/lookup.html", code=code, copy=copy, searched=searched)
