"""The demo's submissions: every demo consortium's documents, resource request and submission,
as its applicant would have made them, with a few deliberate problems for screening to find.

``vault init --demo`` calls :func:`populate_submissions` right after ``create_demo``, so that an
officer can run the screening on real data and applicants see their pre-check. Documents go
through the encrypted store (``DocumentService.upload``) as the consortium's lead contact,
requests through ``ResourceService.save`` and submissions through ``SubmissionWorkflow.submit``,
each recorded in the audit log as the web would record it, with the operator who ran the
command as the real actor.

The planted problems (:data:`FLAWS`, by consortium) and what screening makes of them:

====================================  =============================================================
Hanbit Foundation Model Team          in progress: proposal and registration only, left a draft
                                      (not screened; its pre-check lists what is missing)
Baekdu Open Model Consortium          proposal of 46 pages: ``pdf.pages`` fails (limit 40)
Eunha Language Model Team             the last partner's letter of commitment missing:
                                      ``document.present`` fails for that partner
Haneul Scale Consortium               partner 1's letter without a signature field:
                                      ``pdf.signature`` fails
Nuri Speech and Text Team             proposal without its last required heading:
                                      ``pdf.headings`` fails
Pureun Efficient AI                   partner 1's NDA with its signature field empty:
                                      ``pdf.signature`` warning (an officer checks the paper one)
====================================  =============================================================

Every other check of every screened submission passes; every fourth consortium leaves the
optional data management plan out (a pass).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.consortia.models import Consortium, ConsortiumContact
from vault.consortia.service import ConsortiumService
from vault.crypto import FieldCipher
from vault.demo.documents import Flaw, consortium_documents
from vault.demo.world import CONSORTIA
from vault.documents.models import Submission
from vault.documents.service import DocumentService
from vault.identity.models import Role
from vault.policy.actions import Actor
from vault.programmes.definition import ProgrammeDefinition
from vault.programmes.models import Programme
from vault.resources.service import ResourceService, ResourceValues
from vault.screening.workflow import SubmissionWorkflow

#: The deliberate problems, by index in ``vault.demo.world.CONSORTIA`` (see the module docstring).
FLAWS: Mapping[int, Flaw] = {
    0: Flaw.IN_PROGRESS,
    3: Flaw.OVER_PAGE_LIMIT,
    6: Flaw.MISSING_LETTER,
    8: Flaw.LETTER_WITHOUT_SIGNATURE,
    11: Flaw.MISSING_HEADING,
    13: Flaw.UNSIGNED_NDA,
}
#: The demo's files carry a tenth of the benchmark's image data (30 to 200 KB each): the same
#: pages, so screening finds the same, in a fraction of the time ``vault init`` takes.
DEMO_SCALE = 0.1
#: GPU counts a consortium asks for, by model (each within the model's limit).
_GPU_COUNTS = {"b200": (256, 512, 768, 1024), "h200": (256, 512, 1024),
               "h100": (512, 1024, 1536, 2048)}
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Populated:
    """What :func:`populate_submissions` made."""

    #: The size in bytes of each uploaded document.
    sizes: tuple[int, ...]
    resource_requests: int
    submitted: int
    drafts: int

    @property
    def documents(self) -> int:
        """How many documents were uploaded."""
        return len(self.sizes)


def resource_request(index: int) -> ResourceValues:
    """The ``index``-th demo consortium's request: e.g. 512 B200 or 1,024 H100, a data budget
    of 1.5 to 8 billion won and 10 to 60 people of talent support."""
    # Not for secrets: a fixed seed per consortium gives the same request on every machine.
    rng = random.Random(7000 + index)  # noqa: S311
    model = rng.choice(sorted(_GPU_COUNTS))
    return ResourceValues(gpu_model=model, gpu_count=rng.choice(_GPU_COUNTS[model]),
                          data_budget_krw=rng.randrange(1_500_000_000, 8_000_000_001,
                                                        250_000_000),
                          talent_headcount=rng.randint(10, 60))


def populate_submissions(
    session: Session, programme: Programme, definition: ProgrammeDefinition, *,
    documents: DocumentService, cipher: FieldCipher, audit: AuditLog,
    definitions: Mapping[str, ProgrammeDefinition], scale: float = DEMO_SCALE,
    flaws: Mapping[int, Flaw] = FLAWS, request: RequestInfo | None = None,
) -> Populated:
    """Upload each demo consortium's documents, save its resource request and submit it
    (``flaws`` planting problems, ``Flaw.IN_PROGRESS`` leaving a draft); returns what was made.

    Run it while the call is open (before ``definition.submission_deadline``), on the session
    ``create_demo`` filled. Raises what ``DocumentService.upload``, ``ResourceService.save`` and
    ``SubmissionWorkflow.submit`` raise (``UploadClosed`` or ``DeadlinePassed`` after the
    deadline, for instance); the caller's transaction then holds nothing of it.
    """
    consortia = ConsortiumService(session, cipher=cipher)
    resources = ResourceService(session, cipher=cipher, documents=documents)
    workflow = SubmissionWorkflow(session, cipher=cipher, clock=documents.clock,
                                  documents=documents, definitions=definitions)
    headings = definition.document_kind("proposal").screening.headings
    # The operator's command acts in each applicant's name: the log says both.
    operator = Actor.operator()
    reasons = ("demo data",)
    index_of = {name: index for index, (name, _lead) in enumerate(CONSORTIA)}
    found = session.scalars(select(Consortium).where(Consortium.programme_id == programme.id))
    sizes: list[int] = []
    requests = submitted = drafts = 0
    for consortium in sorted(found, key=lambda c: index_of.get(c.name, len(index_of))):
        index = index_of.get(consortium.name)
        submission = session.scalar(select(Submission).where(
            Submission.consortium_id == consortium.id))
        applicant = session.scalar(select(ConsortiumContact.user_id).where(
            ConsortiumContact.consortium_id == consortium.id,
            ConsortiumContact.is_lead_contact.is_(True)))
        if index is None or submission is None or applicant is None:
            continue  # not a consortium of the demo
        actor = Actor(user_id=applicant, role=Role.APPLICANT,
                      consortium_ids=frozenset({consortium.id}))
        partners = [m.id for m in consortia.members(consortium) if m.position > 0]
        flaw = flaws.get(index)
        for item in consortium_documents(index, len(partners), headings, scale=scale,
                                         flaw=flaw):
            version = documents.upload(
                submission=submission, kind=definition.document_kind(item.kind),
                slot="" if item.partner is None else str(partners[item.partner]),
                filename=item.filename, declared_type="application/pdf",
                body=[item.data[i:i + _MIB] for i in range(0, len(item.data), _MIB)],
                uploader_id=applicant)
            audit.record(Tag.DOCUMENT_UPLOADED, actor=actor, real_actor=operator,
                         reasons=reasons, request=request, target={
                             "consortium": consortium.id, "submission": submission.id,
                             "document": version.document_id, "version": version.version,
                             "blob_sha256": version.blob_sha256, "size": version.size_bytes})
            sizes.append(version.size_bytes)
        assert definition.resources is not None, "the demo programme has a resource form"
        resources.save(submission, resource_request(index), definition.resources,
                       user_id=applicant)
        target = {"consortium": consortium.id, "submission": submission.id}
        audit.record(Tag.RESOURCE_REQUEST_SAVED, actor=actor, real_actor=operator,
                     reasons=reasons, request=request, target=target)
        requests += 1
        if flaw is Flaw.IN_PROGRESS:
            drafts += 1
            continue
        receipt = workflow.submit(submission, actor)
        audit.record(Tag.SUBMISSION_SUBMITTED, actor=actor, real_actor=operator,
                     reasons=reasons, request=request,
                     target={**target, "receipt": receipt.id,
                             "manifest_sha256": receipt.manifest_sha256})
        submitted += 1
    return Populated(tuple(sizes), requests, submitted, drafts)
