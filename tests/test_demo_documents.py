"""The demo's submissions: ``vault init --demo`` uploads every consortium's documents (encrypted,
as its applicant), saves the resource requests and submits all but one draft; screening the
demo then finds exactly the planted problems, and the draft's applicant sees their pre-check."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.conftest import audit_events as events
from vault.cli import cli
from vault.consortia.models import Consortium, ConsortiumContact
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.demo.documents import OVER_LIMIT_PAGES, Flaw, consortium_documents
from vault.demo.submissions import DEMO_SCALE, FLAWS, resource_request
from vault.demo.world import CONSORTIA
from vault.documents.models import Document, DocumentVersion, Submission, SubmissionState
from vault.policy.actions import Actor
from vault.programmes.service import ProgrammeService
from vault.resources.service import ResourceService
from vault.screening.models import CheckResult
from vault.screening.service import ScreeningService
from vault.screening.workflow import SubmissionWorkflow

PROGRAMME = "sovereign-ai-2025"
PASS, FAIL, WARNING = CheckResult.PASS, CheckResult.FAIL, CheckResult.WARNING
#: The consortium left as a draft, and what every planted problem must come out as:
#: (check, result, document kind, partner position or None).
DRAFT = "Hanbit Foundation Model Team"
PLANTED = {
    "Baekdu Open Model Consortium": {("pdf.pages", FAIL, "proposal", None)},
    "Eunha Language Model Team": {("document.present", FAIL, "letter_of_commitment", "last")},
    "Haneul Scale Consortium": {("pdf.signature", FAIL, "letter_of_commitment", 1)},
    "Nuri Speech and Text Team": {("pdf.headings", FAIL, "proposal", None)},
    "Pureun Efficient AI": {("pdf.signature", WARNING, "partner_nda", 1)},
}


@pytest.fixture
def demo(app):
    """The test vault after ``vault init --demo``."""
    result = app.test_cli_runner().invoke(cli, ["init", "--demo"])
    assert result.exit_code == 0, result.output
    return result


def _services(session, runtime):
    documents = runtime.documents(session)
    screening = ScreeningService(session, documents=documents, cipher=runtime.cipher,
                                 clock=runtime.clock, definitions=runtime.definitions)
    return documents, screening


def _submissions(session) -> dict[str, Submission]:
    return {s.consortium.name: s for s in session.scalars(select(Submission))}


def _positions(session, runtime, submission: Submission) -> dict[str, int]:
    """Partner-list entry id → position (1 is the first partner)."""
    members = ConsortiumService(session, cipher=runtime.cipher).members(submission.consortium)
    return {str(member.id): member.position for member in members}


def test_the_planted_problems_are_where_the_tests_expect_them():
    names = [name for name, _lead in CONSORTIA]
    assert {names[index] for index in FLAWS} == set(PLANTED) | {DRAFT}
    assert FLAWS[names.index(DRAFT)] is Flaw.IN_PROGRESS


def test_init_demo_uploads_every_document_as_the_applicant_and_submits_all_but_the_draft(
        demo, runtime):
    definition = runtime.definitions[PROGRAMME]
    headings = definition.document_kind("proposal").screening.headings
    with unit_of_work(runtime.sessions) as session:
        documents, _ = _services(session, runtime)
        submissions = _submissions(session)
        assert len(submissions) == 15
        uploaded = 0
        for index, (name, _lead) in enumerate(CONSORTIA):
            submission = submissions[name]
            applicant = session.scalar(select(ConsortiumContact.user_id).where(
                ConsortiumContact.consortium_id == submission.consortium_id))
            positions = _positions(session, runtime, submission)
            partners = sorted(positions, key=positions.__getitem__)[1:]
            # Exactly the generated files, each in its place, encrypted in the store.
            expected = {(item.kind, "" if item.partner is None else partners[item.partner],
                         item.filename, len(item.data))
                        for item in consortium_documents(index, len(partners), headings,
                                                         scale=DEMO_SCALE, flaw=FLAWS.get(index))}
            listing = documents.listing(submission)
            assert {(item.document.kind, item.document.slot, item.latest.original_filename,
                     item.latest.size_bytes) for item in listing} == expected, name
            assert {item.latest.created_by_id for item in listing} == {applicant}
            uploaded += len(listing)
            # The request is the demo's, sealed and within the programme's ranges.
            values = ResourceService(session, cipher=runtime.cipher).get(submission)
            assert values == resource_request(index)
            assert ResourceService.problems(values, definition.resources) == []
            receipts = SubmissionWorkflow(session, cipher=runtime.cipher, clock=runtime.clock,
                                          documents=documents).receipts(submission)
            if name == DRAFT:
                assert submission.state is SubmissionState.DRAFT and receipts == []
                assert {item.document.kind for item in listing} == {
                    "proposal", "business_registration"}
            else:
                assert submission.state is SubmissionState.SUBMITTED, name
                (receipt,) = receipts
                assert len(json.loads(receipt.manifest)["documents"]) == len(listing)
        assert uploaded == session.scalar(select(func.count()).select_from(DocumentVersion))
        assert uploaded == session.scalar(select(func.count()).select_from(Document))
        version = session.scalars(select(DocumentVersion)).first()
        data = b"".join(documents.plaintext(version))
        assert data.startswith(b"%PDF-1.7") and len(data) == version.size_bytes
        # Varied requests: more than one GPU model, budgets and teams of different sizes.
        requests = [resource_request(index) for index in range(len(CONSORTIA))]
        assert len({r.gpu_model for r in requests}) > 1
        assert len({r.data_budget_krw for r in requests}) > 5
    assert (f"Demo submissions: {uploaded} documents uploaded (encrypted), 15 resource "
            f"requests saved, 14 submitted and 1 left a draft") in demo.output
    blobs = [path for path in runtime.settings.data_dir.rglob("*") if path.is_file()]
    assert blobs and not any(b"%PDF-" in path.read_bytes() for path in blobs)  # sealed
    # Recorded as the web would, in each applicant's name, by the operator's command.
    uploads = events(runtime, "document:version:uploaded")
    submits = events(runtime, "submission:submitted")
    saved = events(runtime, "resource-request:saved")
    assert (len(uploads), len(saved), len(submits)) == (uploaded, 15, 14)
    assert {(e["actor"]["role"], e["real_actor"]["role"], tuple(e["reasons"]))
            for e in uploads + saved + submits} == {("applicant", "operator", ("demo data",))}


def test_screening_the_demo_finds_exactly_the_planted_problems(demo, runtime):
    headings = runtime.definitions[PROGRAMME].document_kind("proposal").screening.headings
    with unit_of_work(runtime.sessions) as session:
        programme = ProgrammeService(session).by_code(PROGRAMME)
        _, screening = _services(session, runtime)
        run = screening.run(programme, Actor.operator(), workers=2)
        assert run.submission_count == 14
        found = {}
        for name, submission in _submissions(session).items():
            latest, findings = screening.latest(submission)
            if name == DRAFT:  # never submitted: not screened, still the applicant's draft
                assert (latest, findings) == (None, [])
                assert submission.state is SubmissionState.DRAFT
                continue
            assert latest.id == run.id and submission.state is SubmissionState.SCREENING
            assert sum(f.result is PASS for f in findings) >= 20, name
            positions = _positions(session, runtime, submission)
            last = max(positions.values())
            problems = {(f.check_id, f.result, f.kind,
                         "last" if f.slot and positions[f.slot] == last and last > 1
                         else positions[f.slot] if f.slot else None)
                        for f in findings if f.result is not PASS}
            if problems:
                found[name] = (problems, findings)
    assert {name: problems for name, (problems, _) in found.items()} == PLANTED
    evidence = {name: [f.evidence("en") for f in findings if f.result is not PASS]
                for name, (_, findings) in found.items()}
    assert evidence["Baekdu Open Model Consortium"] == [f"{OVER_LIMIT_PAGES} pages, limits 5–40"]
    assert evidence["Nuri Speech and Text Team"] == [
        f"4 of 5 headings found; missing: {headings[-1].en}"]
    assert evidence["Haneul Scale Consortium"] == ["no signature field"]
    assert evidence["Pureun Efficient AI"] == ["signature field present, not signed"]


def test_the_draft_applicant_sees_what_is_still_missing_in_the_precheck(demo, runtime):
    with unit_of_work(runtime.sessions) as session:
        _, screening = _services(session, runtime)
        draft = session.scalar(select(Submission).join(Consortium).where(
            Consortium.name == DRAFT))
        partners = len(_positions(session, runtime, draft)) - 1
        findings = screening.precheck(draft)
    failed = [(f.check_id, f.kind) for f in findings if f.result is not PASS]
    assert sorted(failed) == sorted(
        [("document.present", "budget_plan")]
        + [("document.present", "letter_of_commitment")] * partners
        + [("document.present", "partner_nda")] * partners)
    passed = {(f.check_id, f.kind) for f in findings if f.result is PASS}
    assert {("pdf.headings", "proposal"), ("pdf.pages", "proposal"),
            ("resources.in_range", "")} <= passed


def test_init_demo_after_the_deadline_creates_the_demo_without_submissions(app, runtime, clock):
    deadline = runtime.definitions[PROGRAMME].submission_deadline
    clock.now = deadline

    result = app.test_cli_runner().invoke(cli, ["init", "--demo"])

    assert result.exit_code == 0, result.output
    assert f"Demo submissions: none, the call closed at {deadline.isoformat()}." in result.output
    assert "Demo data created" in result.output
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(DocumentVersion)) == 0
        assert {s.state for s in session.scalars(select(Submission))} == {SubmissionState.DRAFT}
