"""The world of the HTTP access matrix, and how one cell of it is checked.

Two consortia with real PDFs, Alpha's submission in the written stage with the clock inside its
review window, and twelve personas, each signed in with its own browser-like client. The world
is built once per test module, in a database of its own (a copy of the migrated template, as
every test's database is): the matrix makes hundreds of requests, and each cell only needs the
world as it is, not a fresh copy of it. Cells that change the world run after every cell that
reads it, and change nothing another cell looks at.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.conftest import (
    CALL_OPEN,
    Account,
    Clock,
    Team,
    csrf_from,
    shared_app,
    sign_in,
    team_factory,
    user_factory,
)
from tests.reviewing import (
    PROGRAMME,
    accept_nda,
    assign,
    enter_stage,
    page_texts,
    ready_reviewer,
    text_pdf,
)
from vault.assignments.models import Assignment
from vault.audit.checkpoints import create_log_identity, issue_and_publish
from vault.audit.models import AuditVerification
from vault.conflicts.models import Affiliation, Conflict, ConflictKind, Sanction
from vault.conflicts.service import ConflictService
from vault.consortia.models import Consortium, ConsortiumMember
from vault.db import unit_of_work
from vault.documents.models import (
    Document,
    DocumentVersion,
    Submission,
    UploadSession,
    WatermarkCopy,
)
from vault.documents.resumable import ResumableUploads
from vault.evaluation.models import (
    ComponentImport,
    ScoreSheet,
    ScoreSheetRevision,
    StageDisqualification,
    StageRound,
)
from vault.evaluation.sheets import ScoreSheets
from vault.grants.models import DualControlGrant
from vault.identity.models import Role, User
from vault.nda.models import NdaAcceptance
from vault.organizations.models import OrganizationKind
from vault.organizations.service import OrganizationService
from vault.policy.actions import Actor
from vault.programmes.service import ProgrammeService
from vault.resources.models import ResourceRequest
from vault.runtime import Runtime
from vault.screening.models import (
    ScreeningFinding,
    ScreeningRun,
    SubmissionEvent,
    SubmissionReceipt,
)
from vault.screening.workflow import SubmissionWorkflow
from vault.settings import DEMO_MARKER, Settings

#: Who asks, in the order of the matrix's columns.
PERSONAS = (
    "owner",  # Alpha's applicant
    "other_applicant",  # Beta's applicant
    "reviewer_assigned",  # may read Alpha: MFA, NDA, assigned, the stage's window open
    "reviewer_unassigned",  # MFA and NDA, no assignment
    "reviewer_conflicted",  # like the assigned one, plus a pending declared conflict
    "reviewer_nda_expired",  # like the assigned one, but the acceptance has expired
    "reviewer_no_mfa",  # like the assigned one, but the session passed no second factor
    "officer",
    "officer_conflicted",  # a pending conflict with Alpha, no grant
    "officer_granted",  # a pending conflict with Alpha and an approved dual-control grant
    "auditor",
    "admin",
)
REVIEWERS = tuple(p for p in PERSONAS if p.startswith("reviewer"))
UNREADY_REVIEWERS = tuple(p for p in REVIEWERS if p != "reviewer_assigned")
#: Reviewers whose session passed a second factor.
MFA_REVIEWERS = tuple(p for p in REVIEWERS if p != "reviewer_no_mfa")
OFFICERS = ("officer", "officer_conflicted", "officer_granted")
#: Those who may not learn that Alpha's material exists at all.
STRANGERS = ("other_applicant", *UNREADY_REVIEWERS, "officer_conflicted", "admin")

ALPHA = "Team Alpha"
ALPHA_PARTNER = "Alpha Secret University"
#: A second partner, without documents, that the owner may remove.
ALPHA_SPARE_PARTNER = "Alpha Spare Institute"
ALPHA_FILE = "alpha-plan.pdf"
BETA = "Team Beta"
BETA_PARTNER = "Beta Secret Institute"
BETA_FILE = "beta-plan.pdf"
#: Every page of ``text_pdf`` says this: only an extracted text could show it.
PDF_TEXT = "Original text of page"
#: A PDF's first bytes: a body that holds them holds a document.
PDF_MAGIC = "%PDF-"
PARTNERS = (ALPHA_PARTNER, ALPHA_SPARE_PARTNER)
CONTENT = (PDF_TEXT, PDF_MAGIC)
#: Everything of Alpha a refused request must not show.
ALPHA_MATERIAL = (ALPHA, *PARTNERS, ALPHA_FILE, *CONTENT)
#: A time during the call for applications, before the submission deadline.
DURING_CALL = datetime(2026, 12, 10, 1, 0, tzinfo=UTC)


@dataclass
class World:
    """The built world: the app, its clock, the personas' clients and the ids routes need."""

    app: Flask
    runtime: Runtime
    clock: Clock
    now: datetime
    alpha: Team
    beta: Team
    accounts: dict[str, Account] = field(default_factory=dict)
    clients: dict[str, FlaskClient] = field(default_factory=dict)
    #: Each persona's CSRF token (it lives as long as the session).
    tokens: dict[str, str] = field(default_factory=dict)
    #: Path parameters and markers by name (``{alpha_submission}`` etc. in the matrix).
    ids: dict[str, str] = field(default_factory=dict)
    #: The original bytes of Alpha's PDF.
    alpha_pdf: bytes = b""

    def fill(self, template: str, **override: str) -> str:
        """A matrix path or marker with the world's ids filled in."""
        return template.format(**{**self.ids, **override}) if "{" in template else template

    @contextmanager
    def during_call(self) -> Iterator[None]:
        """Move the clock back before the submission deadline for a while (sessions stay
        valid: they are younger than their lifetime)."""
        self.clock.now = DURING_CALL
        try:
            yield
        finally:
            self.clock.now = self.now


# -- a database and an app of the world's own ----------------------------------------------

@contextmanager
def open_world(template_database: str, directory: Path) -> Iterator[World]:
    """The whole world on a production-mode app of its own (for a module-scoped fixture)."""
    clock = Clock(CALL_OPEN)
    with shared_app(template_database, directory, clock) as application:
        yield build_world(application, clock)


# -- building ------------------------------------------------------------------------------

def upload(client: FlaskClient, submission: str, filename: str, body: bytes,
           token: str) -> TestResponse:
    """A PDF put into a submission's proposal slot through the API, as the browser does."""
    return client.put(f"/api/v1/submissions/{submission}/documents/proposal", data=body,
                      headers={"Content-Disposition":
                               f"attachment; filename*=UTF-8''{quote(filename)}",
                               "X-CSRFToken": token},
                      content_type="application/pdf")


def _conflicts(runtime: Runtime, session: Session) -> ConflictService:
    return ConflictService(session, cipher=runtime.cipher, clock=runtime.clock,
                           definitions=runtime.definitions, audit=runtime.audit(session),
                           lookup=runtime.lookup)


def _declare(runtime: Runtime, account: Account, team: Team) -> uuid.UUID:
    """A pending conflict of ``account`` with ``team``, declared through the service (so its
    details are sealed as the pages expect)."""
    with unit_of_work(runtime.sessions) as session:
        [conflict] = _conflicts(runtime, session).declare(
            Actor(user_id=account.id, role=account.role, mfa=True),
            ProgrammeService(session).by_code(PROGRAMME), ConflictKind.COLLABORATOR,
            "insecure test: co-authored a paper",
            consortium=session.get(Consortium, team.consortium_id))
        return conflict.id


def _detect(runtime: Runtime, account: Account, organisation: str) -> uuid.UUID:
    """Employ ``account`` at ``organisation`` and run detection: the conflict it finds."""
    with unit_of_work(runtime.sessions) as session:
        org = OrganizationService(session).get_or_create(organisation,
                                                          OrganizationKind.UNIVERSITY)
        runtime.identity(session).set_employer(session.get(User, account.id), org)
    with unit_of_work(runtime.sessions) as session:
        [conflict] = _conflicts(runtime, session).detect(
            ProgrammeService(session).by_code(PROGRAMME))
        assert conflict.user_id == account.id
        return conflict.id


def _grant(runtime: Runtime, requester: Account, approver: Account | None, team: Team,
           now: datetime) -> str:
    """A dual-control grant on ``team`` for ``requester``: approved by ``approver`` for eight
    hours, or pending when ``approver`` is ``None``."""
    row_id = uuid.uuid4()
    with unit_of_work(runtime.sessions) as session:
        session.add(DualControlGrant(
            id=row_id, consortium_id=team.consortium_id, requested_by_id=requester.id,
            reason_sealed=runtime.cipher.seal("dual_control_grants", "reason", row_id,
                                              "insecure test: checking the budget"),
            requested_at=now - timedelta(hours=1),
            approved_by_id=approver.id if approver else None,
            approved_at=now - timedelta(minutes=30) if approver else None,
            expires_at=now + timedelta(hours=8) if approver else None))
    return str(row_id)


def _submit_and_recall(runtime: Runtime, team: Team) -> str:
    """Submit the team's submission and recall it to draft; returns the receipt's id."""
    applicant = Actor(team.applicant.id, Role.APPLICANT, frozenset({team.consortium_id}))
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        workflow = SubmissionWorkflow(session, cipher=runtime.cipher, clock=runtime.clock,
                                      documents=runtime.documents(session))
        receipt = workflow.submit(submission, applicant)
        workflow.recall(submission, applicant)
        return str(receipt.id)


def _score_sheets(runtime: Runtime, team: Team, drafter: Account, submitter: Account) -> str:
    """A draft sheet of ``drafter`` and a submitted one of ``submitter`` on the team's
    submission in the written stage; returns the submitted sheet's id."""
    criteria = runtime.definitions[PROGRAMME].stage("written").criteria
    with unit_of_work(runtime.sessions) as session:
        sheets = ScoreSheets(session, cipher=runtime.cipher, clock=runtime.clock,
                             definitions=runtime.definitions)
        submission = session.get(Submission, team.submission_id)
        drafting = Actor(drafter.id, Role.REVIEWER, mfa=True)
        sheets.save(submission, "written", drafting, {criteria[0].id: 50}, {})
        submitting = Actor(submitter.id, Role.REVIEWER, mfa=True)
        sheet = sheets.save(submission, "written", submitting,
                            {criterion.id: 70 for criterion in criteria}, {})
        sheets.submit(sheet, submitting)
        return str(sheet.id)


def _sign_in_without_second_factor(app: Flask, settings: Settings, account: Account,
                                   clock: Clock) -> FlaskClient:
    """A demo reviewer's session that skipped enrolment: signed in, not MFA-verified. Demo mode
    is on only for this sign-in."""
    client = app.test_client()
    marker = settings.data_dir / DEMO_MARKER
    marker.touch()
    try:
        sign_in(client, account, clock)
        token = csrf_from(client, "/login/enrol")
        assert client.post("/login/enrol/skip", data={"csrf_token": token}).location == "/"
    finally:
        marker.unlink()
    return client


def build_world(app: Flask, clock: Clock) -> World:
    """Teams, documents, personas and the rows that make each persona what it is."""
    runtime: Runtime = app.extensions["vault"]
    make_user = user_factory(runtime, clock)
    make_team = team_factory(runtime, make_user)
    alpha = make_team(ALPHA, partners=(ALPHA_PARTNER, ALPHA_SPARE_PARTNER))
    beta = make_team(BETA, partners=(BETA_PARTNER,))
    world = World(app=app, runtime=runtime, clock=clock, now=clock(), alpha=alpha, beta=beta,
                  alpha_pdf=text_pdf(3))
    accounts = world.accounts
    accounts["owner"], accounts["other_applicant"] = alpha.applicant, beta.applicant

    # Uploads during the call, by each consortium's own applicant.
    documents = {}
    for team, filename, body in ((alpha, ALPHA_FILE, world.alpha_pdf),
                                 (beta, BETA_FILE, text_pdf(2))):
        client = app.test_client()
        sign_in(client, team.applicant, clock)
        response = upload(client, str(team.submission_id), filename, body,
                          csrf_from(client, "/"))
        assert response.status_code == 201, response.get_data(as_text=True)
        documents[filename] = response.json["document_id"]

    # Alpha submitted once and took it back to draft: a receipt exists, the documents can still
    # change during the call (the rows that upload or edit the partner list need that).
    receipt = _submit_and_recall(runtime, alpha)
    # The written stage: Alpha's submission in it, the clock one day into its window.
    enter_stage(runtime, clock, alpha)
    for persona in ("reviewer_assigned", "reviewer_conflicted", "reviewer_nda_expired"):
        accounts[persona] = ready_reviewer(runtime, make_user, clock, alpha)
    accounts["reviewer_unassigned"] = make_user(Role.REVIEWER, mfa=True)
    accept_nda(runtime, clock, accounts["reviewer_unassigned"])
    accounts["reviewer_no_mfa"] = make_user(Role.REVIEWER, demo=True)
    accept_nda(runtime, clock, accounts["reviewer_no_mfa"])
    assign(runtime, accounts["reviewer_no_mfa"], alpha)
    for persona in ("officer", "officer_conflicted", "officer_granted", "auditor", "admin"):
        accounts[persona] = make_user(Role(persona.split("_")[0]), mfa=True)
    # Not personas: a reviewer employed by Alpha's partner (registered under another spelling,
    # so that only detection's evidence can show the partner list's), and an officer
    # conflicted with both teams whose requests the dual-control routes act on.
    detected = make_user(Role.REVIEWER)
    requester = make_user(Role.OFFICER)
    world.now = clock()

    ids = world.ids
    # Score sheets: the assigned reviewer's draft, and the submitted sheet of a second panelist
    # (not a persona) that an officer may read and reopen.
    ids["alpha_sheet"] = _score_sheets(runtime, alpha, accounts["reviewer_assigned"],
                                       ready_reviewer(runtime, make_user, clock, alpha))
    for persona in ("reviewer_conflicted", "officer_conflicted", "officer_granted"):
        _declare(runtime, accounts[persona], alpha)
    _grant(runtime, accounts["officer_granted"], accounts["officer"], alpha, world.now)
    ids["detected_conflict"] = str(_detect(runtime, detected, ALPHA_PARTNER.upper()))
    _declare(runtime, requester, alpha)
    _declare(runtime, requester, beta)
    ids["alpha_pending_grant"] = _grant(runtime, requester, None, alpha, world.now)
    for officer in OFFICERS:
        ids[f"beta_pending_grant_{officer}"] = _grant(runtime, requester, None, beta, world.now)
        ids[f"beta_active_grant_{officer}"] = _grant(runtime, requester, accounts["officer"],
                                                     beta, world.now)
    with unit_of_work(runtime.sessions) as session:
        acceptance = session.scalar(select(NdaAcceptance).where(
            NdaAcceptance.user_id == accounts["reviewer_nda_expired"].id))
        acceptance.expires_at = world.now - timedelta(days=1)
        for officer, reviewer in (("officer", "reviewer_nda_expired"),
                                  ("officer_conflicted", "reviewer_conflicted"),
                                  ("officer_granted", "reviewer_no_mfa")):
            ids[f"assignment_{officer}"] = str(session.scalar(select(Assignment.id).where(
                Assignment.reviewer_id == accounts[reviewer].id)))

    # Everyone signs in now that the clock stands where the matrix asks (sessions last 8 h).
    for persona, account in accounts.items():
        if persona == "reviewer_no_mfa":
            client = _sign_in_without_second_factor(app, runtime.settings, account, clock)
        else:
            client = app.test_client()
            assert sign_in(client, account, clock).status_code == 302, persona
        world.clients[persona] = client
        world.tokens[persona] = csrf_from(client, "/account/")

    # A stamped copy exists, so the lookup has a code to find.
    copy = world.clients["reviewer_assigned"].get(f"/documents/{documents[ALPHA_FILE]}/content")
    copy.close()
    assert copy.status_code == 200, copy.status_code
    with unit_of_work(runtime.sessions) as session:
        ids["watermark"] = session.scalar(select(WatermarkCopy.code))
    # A resumable upload the owner opened during the call (it lives 24 hours from then).
    with world.during_call():
        ids["alpha_upload"] = _open_upload(runtime, alpha)
    ids.update({
        "code": PROGRAMME,
        "alpha_receipt": receipt,
        "alpha_submission": str(alpha.submission_id),
        "alpha_consortium": str(alpha.consortium_id),
        "alpha_document": documents[ALPHA_FILE],
        "alpha_spare_partner": str(alpha.partner_ids[1]),
        "beta_consortium": str(beta.consortium_id),
        "nda_sha256": runtime.definitions[PROGRAMME].nda.sha256,
        "detected_id": str(detected.id),
        "detected_email": detected.email,
        **{f"{persona}_id": str(account.id) for persona, account in accounts.items()},
        **{f"{persona}_email": account.email for persona, account in accounts.items()},
    })
    # The log's signing key as ``vault init`` creates it, and a first checkpoint.
    runtime.log_identity = create_log_identity(runtime.settings)
    issue_and_publish(runtime.sessions, identity=runtime.log_identity, clock=clock,
                      path=runtime.settings.published_checkpoints)
    return world


# -- what is stored, to prove what a request changed ----------------------------------------

def _rows(session: Session, *columns: Any) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in row) for row in session.execute(select(*columns)))


def snapshot(runtime: Runtime) -> dict[str, list[tuple[str, ...]]]:
    """Every stored fact a matrix request could change (not the audit log, which records the
    requests themselves, nor stamped copies, which every reading adds)."""
    with unit_of_work(runtime.sessions) as session:
        return {
            "members": _rows(session, ConsortiumMember.id, ConsortiumMember.position),
            "documents": _rows(session, Document.id, Document.submission_id),
            "versions": _rows(session, DocumentVersion.id, DocumentVersion.blob_sha256),
            "conflicts": _rows(session, Conflict.id, Conflict.status, Conflict.details_sealed),
            "affiliations": _rows(session, Affiliation.id),
            "sanctions": _rows(session, Sanction.id),
            "assignments": _rows(session, Assignment.id, Assignment.stage),
            "grants": _rows(session, DualControlGrant.id, DualControlGrant.approved_at,
                            DualControlGrant.revoked_at),
            "acceptances": _rows(session, NdaAcceptance.id, NdaAcceptance.expires_at),
            "verifications": _rows(session, AuditVerification.id),
            "submissions": _rows(session, Submission.id, Submission.state, Submission.stage),
            "submission_events": _rows(session, SubmissionEvent.id),
            "receipts": _rows(session, SubmissionReceipt.id),
            "screening_runs": _rows(session, ScreeningRun.id),
            "findings": _rows(session, ScreeningFinding.id),
            "resource_requests": _rows(session, ResourceRequest.submission_id,
                                       ResourceRequest.gpu_count_sealed),
            "score_sheets": _rows(session, ScoreSheet.id, ScoreSheet.state,
                                  ScoreSheet.scores_sealed),
            "sheet_revisions": _rows(session, ScoreSheetRevision.id),
            "uploads": _rows(session, UploadSession.id, UploadSession.offset_bytes),
            "stage_rounds": _rows(session, StageRound.stage, StageRound.state),
            "component_imports": _rows(session, ComponentImport.id),
            "disqualifications": _rows(session, StageDisqualification.id),
        }


def changed(before: Mapping[str, list], after: Mapping[str, list]) -> set[str]:
    """The kinds of stored fact that differ between two snapshots."""
    return {kind for kind in before if before[kind] != after[kind]}


# -- cells -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """What one persona must get from one route."""

    status: int
    #: Markers (``{name}`` placeholders allowed) the body must contain / must not contain.
    shows: tuple[str, ...] = ()
    hides: tuple[str, ...] = ()
    #: The kinds of stored fact (see ``snapshot``) the request changes; for writes only.
    changes: tuple[str, ...] = ()
    #: The persona may not learn that the route's object exists: the answer must be the one
    #: for an id that does not exist.
    hidden: bool = False
    #: ``"original"`` or ``"stamped"``: which PDF a content route hands out.
    copy: str = ""
    #: A known wrong answer: the cell is an expected failure (strict) with this reason.
    bug: str = ""


def refused(status: int, *, hidden: bool = False, bug: str = "") -> Cell:
    """A refusal that shows nothing of Alpha."""
    return Cell(status, hides=ALPHA_MATERIAL, hidden=hidden, bug=bug)


NOT_FOUND = refused(404, hidden=True)
FORBIDDEN = refused(403)


def row(default: Cell, **cells: Cell) -> dict[str, Cell]:
    """Every persona's cell: ``default`` unless named."""
    unknown = set(cells) - set(PERSONAS)
    assert not unknown, unknown
    return {persona: cells.get(persona, default) for persona in PERSONAS}


def each(personas: tuple[str, ...], cell: Cell) -> dict[str, Cell]:
    """The same cell for several personas (``row(..., **each(OFFICERS, ok))``)."""
    return dict.fromkeys(personas, cell)


def without(personas: tuple[str, ...], *excluded: str) -> tuple[str, ...]:
    """A group of personas but these."""
    return tuple(p for p in personas if p not in excluded)


Send = Callable[["World", str, str], TestResponse]


def get(world: World, persona: str, path: str) -> TestResponse:
    """A plain GET."""
    return world.clients[persona].get(path)


def form(fields: Callable[[World, str], Mapping[str, str]]) -> Send:
    """A form POST with the persona's CSRF token and these fields."""
    def send(world: World, persona: str, path: str) -> TestResponse:
        data = {name: world.fill(value) for name, value in fields(world, persona).items()}
        return world.clients[persona].post(path, data={"csrf_token": world.tokens[persona],
                                                       **data})
    return send


def api_json(fields: Mapping[str, object], method: str = "POST") -> Send:
    """A JSON POST (or ``method``) from the vault's own pages (session cookie and
    ``X-CSRFToken``)."""
    def send(world: World, persona: str, path: str) -> TestResponse:
        return world.clients[persona].open(
            path, method=method, headers={"X-CSRFToken": world.tokens[persona]},
            json={name: world.fill(value) if isinstance(value, str) else value
                  for name, value in fields.items()})
    return send


def _open_upload(runtime: Runtime, team: Team) -> str:
    """A resumable upload of 2000 bytes of a proposal, opened by the team's applicant."""
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        uploads = ResumableUploads(session, documents=runtime.documents(session),
                                   audit=runtime.audit(session), clock=runtime.clock)
        actor = Actor(user_id=team.applicant.id, role=Role.APPLICANT,
                      consortium_ids=frozenset({team.consortium_id}), mfa=False)
        kind = runtime.definitions[PROGRAMME].document_kind("proposal")
        return str(uploads.create(submission=submission, kind=kind, slot="",
                                  filename="resumable.pdf", declared_type="application/pdf",
                                  length=2000, actor=actor).id)


def tus(method: str) -> Send:
    """A tus request from the vault's own pages: creation (``POST``, a proposal of 2000 bytes
    for Alpha), the first 1000 bytes (``PATCH``) or termination (``DELETE``)."""
    def send(world: World, persona: str, path: str) -> TestResponse:
        headers = {"Tus-Resumable": "1.0.0", "X-CSRFToken": world.tokens[persona]}
        if method == "POST":
            meta = {"submission": world.ids["alpha_submission"], "kind": "proposal",
                    "filename": "resumable.pdf"}
            headers["Upload-Length"] = "2000"
            headers["Upload-Metadata"] = ",".join(
                f"{key} {base64.b64encode(value.encode()).decode()}"
                for key, value in meta.items())
        body = b""
        if method == "PATCH":
            headers.update({"Upload-Offset": "0",
                            "Content-Type": "application/offset+octet-stream"})
            body = b"%PDF-1.7\n" + b"x" * 991
        return world.clients[persona].open(path, method=method, headers=headers, data=body)
    return send


def api_upload(world: World, persona: str, path: str) -> TestResponse:
    """A one-page PDF PUT as a new version, from the vault's own pages."""
    return world.clients[persona].put(
        path, data=text_pdf(1), content_type="application/pdf",
        headers={"Content-Disposition": "attachment; filename=second.pdf",
                 "X-CSRFToken": world.tokens[persona]})


@dataclass(frozen=True)
class Route:
    """One row of the matrix: a route (with its objects filled in) and every persona's cell."""

    endpoint: str
    path: str | Callable[[World, str], str]
    cells: dict[str, Cell]
    method: str = "GET"
    send: Send = get
    #: The path parameter naming the object whose existence strangers may not learn.
    hidden_id: str = ""
    #: Allowed changes happen before the submission deadline (partner list, uploads).
    during_call: bool = False
    #: Distinguishes two rows of one endpoint.
    variant: str = ""

    @property
    def name(self) -> str:
        """The row's name in test ids."""
        return f"{self.endpoint}{'.' + self.variant if self.variant else ''}"

    def url(self, world: World, persona: str, **override: str) -> str:
        """The path this persona asks for."""
        if callable(self.path):
            return self.path(world, persona)
        return world.fill(self.path, **override)


def params(routes: tuple[Route, ...], *, allowed: bool | None = None) -> list[Any]:
    """One test parameter per (route, persona), a strict expected failure where the cell names
    a bug; ``allowed`` picks the cells under 400 (True) or the others (False)."""
    found = []
    for route in routes:
        for persona in PERSONAS:
            cell = route.cells[persona]
            if allowed is not None and (cell.status < 400) is not allowed:
                continue
            marks = [pytest.mark.xfail(strict=True, reason=cell.bug)] if cell.bug else []
            found.append(pytest.param(route, persona, id=f"{route.name}-{persona}",
                                      marks=marks))
    return found


def check(world: World, route: Route, persona: str) -> None:
    """Ask as ``persona`` and hold the answer to the persona's cell."""
    cell = route.cells[persona]
    writes = route.method != "GET"
    before = snapshot(world.runtime) if writes else {}
    moved = world.during_call() if route.during_call and cell.status < 400 else nullcontext()
    with moved:
        response = route.send(world, persona, route.url(world, persona))
    body = response.get_data()
    response.close()  # a streamed download holds its file open until closed
    excerpt = body[body.find(b"<main"):][:400] if b"<main" in body else body[:400]
    assert response.status_code == cell.status, (response.status_code, excerpt)
    for marker in cell.shows:
        assert world.fill(marker).encode() in body, f"{marker!r} missing: {excerpt!r}"
    leaked = [m for m in cell.hides if world.fill(m).encode() in body]
    assert not leaked, f"leaks {leaked}"
    if writes:
        assert changed(before, snapshot(world.runtime)) == set(cell.changes)
    if cell.hidden:
        assert route.hidden_id, "a hidden cell needs the route's hidden_id"
        stranger = route.send(world, persona, route.url(
            world, persona, **{route.hidden_id: str(uuid.uuid4())}))
        stranger.close()
        assert response.status_code == stranger.status_code, (
            f"{response.status_code} for Alpha's object, {stranger.status_code} for none")
    if cell.copy == "original":
        assert body == world.alpha_pdf
    elif cell.copy == "stamped":
        assert body != world.alpha_pdf
        texts = page_texts(body)
        reader = world.ids[f"{persona}_id"]
        assert len(texts) == 3 and all(reader in page for page in texts)
