"""The applications of a rehearsal (``vault demo simulate``): every demo consortium uploads a
small document of each required kind that meets the definition's screening rules, saves its
resource request and submits, as its lead contact, each step audited as the web records it.

Not the demo's own files (``vault.demo.submissions``): those are realistic in size and length
(151 PDFs of up to 38 pages, with planted flaws) and screening them takes most of a minute. A
rehearsal checks the evaluation, so its documents are the smallest the rules accept (the
minimum page count, the required headings, the page size, a signed signature field where one
is required), built from the definition itself, which also makes another programme's
definition rehearsable.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.consortia.models import Consortium, ConsortiumContact
from vault.consortia.service import ConsortiumService
from vault.crypto import FieldCipher
from vault.demo.documents import text_pdf
from vault.demo.submissions import resource_request
from vault.demo.world import CONSORTIA
from vault.documents.models import Submission
from vault.documents.service import DocumentService
from vault.identity.models import Role
from vault.policy.actions import Actor
from vault.programmes.definition import DocumentKind, ProgrammeDefinition
from vault.programmes.models import Programme
from vault.resources.errors import InvalidResourceRequest
from vault.resources.service import ResourceService
from vault.screening.workflow import SubmissionWorkflow

PDF = "application/pdf"


def document_for(kind: DocumentKind) -> bytes:
    """The smallest PDF of ``kind`` its screening rules accept."""
    rules = kind.screening
    return text_pdf(max(rules.min_pages or 1, 1), headings=rules.headings,
                    size=rules.page_size or "A4", signature=rules.signature_required,
                    signed=rules.signature_required, filler_lines=4)


def submit_applications(session: Session, programme: Programme,
                        definition: ProgrammeDefinition, *, documents: DocumentService,
                        cipher: FieldCipher, audit: AuditLog, request: RequestInfo) -> int:
    """Every consortium of the programme uploads its documents and submits; returns how many
    submitted. Kinds that take no PDF are left out (screening reports them; the rehearsal's
    officer declares every submission eligible regardless)."""
    consortia = ConsortiumService(session, cipher=cipher)
    resources = ResourceService(session, cipher=cipher, documents=documents)
    workflow = SubmissionWorkflow(session, cipher=cipher, clock=documents.clock,
                                  documents=documents)
    kinds = [kind for kind in definition.call_kinds if kind.required and PDF in kind.media_types]
    files = {kind.id: document_for(kind) for kind in kinds}
    index_of = {name: index for index, (name, _lead) in enumerate(CONSORTIA)}
    operator = Actor.operator()
    reasons = ("rehearsal",)
    submitted = 0
    found = session.scalars(select(Consortium).where(Consortium.programme_id == programme.id)
                            .order_by(Consortium.name))
    for consortium in found:
        submission = session.scalar(select(Submission).where(
            Submission.consortium_id == consortium.id))
        applicant = session.scalar(select(ConsortiumContact.user_id).where(
            ConsortiumContact.consortium_id == consortium.id,
            ConsortiumContact.is_lead_contact.is_(True)))
        if submission is None or applicant is None:
            continue
        actor = Actor(user_id=applicant, role=Role.APPLICANT,
                      consortium_ids=frozenset({consortium.id}))
        target = {"consortium": consortium.id, "submission": submission.id}
        partners = [str(m.id) for m in consortia.members(consortium) if m.position > 0]
        for kind in kinds:
            for slot in (partners if kind.per == "partner" else [""]):
                version = documents.upload(
                    submission=submission, kind=kind, slot=slot,
                    filename=f"{kind.id}.pdf", declared_type=PDF, body=[files[kind.id]],
                    uploader_id=applicant)
                audit.record(Tag.DOCUMENT_UPLOADED, actor=actor, real_actor=operator,
                             reasons=reasons, request=request, target={
                                 **target, "document": version.document_id,
                                 "version": version.version, "size": version.size_bytes,
                                 "blob_sha256": version.blob_sha256})
        if definition.resources is not None:
            try:
                with session.begin_nested():
                    resources.save(submission, resource_request(index_of.get(
                        consortium.name, 0)), definition.resources, user_id=applicant)
            except InvalidResourceRequest:
                pass  # another programme's form: the demo's request does not fit; left out
            else:
                audit.record(Tag.RESOURCE_REQUEST_SAVED, actor=actor, real_actor=operator,
                             reasons=reasons, request=request, target=target)
        receipt = workflow.submit(submission, actor)
        audit.record(Tag.SUBMISSION_SUBMITTED, actor=actor, real_actor=operator,
                     reasons=reasons, request=request,
                     target={**target, "receipt": receipt.id,
                             "manifest_sha256": receipt.manifest_sha256})
        submitted += 1
    return submitted
