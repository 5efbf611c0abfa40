"""The officers' screening pages: the overview with its filters, the CSV export, the run button
and a submission's report with its decision form; who may use them, and a conflicted officer's
view without the consortium they are conflicted with."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from tests.conftest import audit_events as events
from tests.conftest import csrf_from, sign_in, snapshot_fixtures, team_factory, user_factory
from tests.test_screening_corpus_findings import CASES, PARTNERS, PROGRAMME, build
from vault.conflicts.links import new_conflict
from vault.conflicts.models import Conflict, ConflictSource, ConflictStatus
from vault.db import unit_of_work
from vault.documents.models import Submission, SubmissionState
from vault.identity.models import Role
from vault.programmes.models import Programme

COMPLETE, OVER_LIMIT = CASES[0], CASES[4]
OVERVIEW = f"/screening/{PROGRAMME}"


def _build(runtime, clock):
    """Two submitted consortia (one valid, one over the page limit) and one still a draft."""
    make_team = team_factory(runtime, user_factory(runtime, clock))
    return {"valid": build(runtime, make_team, COMPLETE, 0),
            "long": build(runtime, make_team, OVER_LIMIT, 1),
            "draft": make_team("Draft Only Consortium")}


built, database_url, data_dir, world = snapshot_fixtures(_build)


@pytest.fixture
def officer(client, make_user, clock):
    account = make_user(Role.OFFICER, mfa=True)
    sign_in(client, account, clock)
    return account


def run_screening(client) -> None:
    response = client.post(f"{OVERVIEW}/run", data={"csrf_token": csrf_from(client, OVERVIEW)})
    assert response.status_code == 302 and response.location.endswith(OVERVIEW)


def conflict(runtime, account, team) -> None:
    with unit_of_work(runtime.sessions) as session:
        programme_id = session.scalar(select(Programme.id).where(Programme.code == PROGRAMME))
        session.add(new_conflict(runtime.cipher, programme_id=programme_id, user_id=account.id,
                             consortium_id=team.consortium_id, source=ConflictSource.DECLARED,
                             status=ConflictStatus.CONFIRMED, details_sealed=b"sealed-elsewhere"))


def test_the_run_button_screens_the_programme_and_the_overview_shows_the_results(
        client, world, officer, runtime):
    page = client.get(OVERVIEW).get_data(as_text=True)
    assert "Run screening" in page and "not screened" in page
    run_screening(client)
    page = client.get(OVERVIEW).get_data(as_text=True)
    assert "Screening finished: 2 submissions screened." in page
    for team in world.values():
        assert team.name in page
    with unit_of_work(runtime.sessions) as session:
        states = {s.id: s.state for s in session.scalars(select(Submission))}
    assert states[world["long"].submission_id] is SubmissionState.SCREENING
    assert states[world["draft"].submission_id] is SubmissionState.DRAFT
    [ran] = events(runtime, "screening:ran")
    assert ran["target"]["programme"] == PROGRAMME and ran["actor"]["role"] == "officer"


def test_the_run_needs_the_csrf_token(client, world, officer, runtime):
    assert client.post(f"{OVERVIEW}/run").status_code == 400
    assert events(runtime, "screening:ran") == []


@pytest.mark.parametrize(("query", "shown", "hidden"), [
    ("result=fail", ["long"], ["valid", "draft"]),
    ("result=pass", ["valid"], ["long", "draft"]),
    ("state=draft", ["draft"], ["valid", "long"]),
    ("q=draft+only", ["draft"], ["valid", "long"]),
    ("state=screening&q=CORPUS", ["valid", "long"], ["draft"]),
])
def test_the_overview_filters_by_result_state_and_name(client, world, officer, query, shown,
                                                       hidden):
    run_screening(client)
    page = client.get(f"{OVERVIEW}?{query}").get_data(as_text=True)
    assert all(world[name].name in page for name in shown), query
    assert not any(world[name].name in page for name in hidden), query


@pytest.mark.parametrize("query", ["result=maybe", "state=lost", "q=" + "x" * 101])
def test_an_unknown_filter_value_is_400(client, world, officer, query):
    assert client.get(f"{OVERVIEW}?{query}").status_code == 400


def test_the_csv_export_has_the_report_rows_of_the_filtered_overview(client, world, officer,
                                                                     runtime):
    run_screening(client)
    response = client.get(f"{OVERVIEW}/overview.csv?result=fail")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="screening-{PROGRAMME}-2026-12-01.csv"' in \
        response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert {row["submission"] for row in rows} == {str(world["long"].submission_id)}
    assert any(row["check"] == "pdf.pages" and row["result"] == "fail"
               and row["evidence_en"] == "42 pages, limits 5–40" for row in rows)
    assert not any(name in text for name in PARTNERS)
    [exported] = events(runtime, "screening:report-exported")
    assert exported["target"]["result"] == "fail" and exported["target"]["format"] == "csv"


def test_a_conflicted_officer_does_not_see_that_consortium(client, world, make_user, clock,
                                                           runtime):
    account = make_user(Role.OFFICER, mfa=True)
    conflict(runtime, account, world["long"])
    sign_in(client, account, clock)
    run_screening(client)  # the run itself is mechanical and screens every submission
    page = client.get(OVERVIEW).get_data(as_text=True)
    assert world["valid"].name in page and world["long"].name not in page
    text = client.get(f"{OVERVIEW}/overview.csv").get_data(as_text=True)
    assert str(world["long"].submission_id) not in text
    assert str(world["valid"].submission_id) in text
    report = f"/screening/submissions/{world['long'].submission_id}"
    assert client.get(report).status_code == 404


def test_the_report_groups_findings_by_document_and_offers_the_decision(client, world, officer):
    team = world["long"]
    report = f"/screening/submissions/{team.submission_id}"
    before = client.get(report).get_data(as_text=True)
    assert "live pre-check" in before and "42 pages, limits 5–40" in before
    assert 'name="outcome"' not in before  # submitted, not yet in screening
    run_screening(client)
    page = client.get(report).get_data(as_text=True)
    assert "Project proposal" in page and "Partner letter of commitment, partner 1" in page
    assert "Project proposal has 42 pages, more than the limit of 40." in page
    assert "Consortium and resource request" in page
    assert "submitted → " in page  # the history
    assert f'action="/screening/submissions/{team.submission_id}/decide"' in page
    for field in ('name="outcome"', 'name="reason"', 'name="correction_deadline"',
                  'type="datetime-local"', 'name="csrf_token"'):
        assert field in page
    assert not any(name in page for name in PARTNERS)


def test_the_decision_form_records_a_return_shown_in_the_history(client, world, officer):
    team = world["long"]
    report = f"/screening/submissions/{team.submission_id}"
    run_screening(client)
    response = client.post(f"{report}/decide", data={
        "csrf_token": csrf_from(client, report), "outcome": "returned",
        "reason": "Shorten the proposal to 40 pages.", "correction_deadline": "2026-12-20T18:00"})
    assert response.status_code == 302 and response.location.endswith(report)
    page = client.get(report).get_data(as_text=True)
    assert "Shorten the proposal to 40 pages." in page
    assert "corrections until 2026-12-20 18:00 KST" in page
    overview = client.get(f"{OVERVIEW}?state=returned").get_data(as_text=True)
    assert team.name in overview


def test_the_pages_render_in_korean(client, world, officer):
    run_screening(client)
    client.set_cookie("vault_lang", "ko")
    page = client.get(OVERVIEW).get_data(as_text=True)
    assert "서류 검토 현황" in page and "검토 실행" in page
    report = client.get(f"/screening/submissions/{world['long'].submission_id}") \
        .get_data(as_text=True)
    assert "사업계획서: 42쪽으로 한도 40쪽을 넘습니다." in report and "42쪽, 한도 5–40쪽" in report


@pytest.mark.parametrize("role", [Role.APPLICANT, Role.REVIEWER, Role.AUDITOR, Role.ADMIN])
def test_only_officers_use_the_overview_export_and_run(client, world, make_user, clock, role,
                                                       runtime):
    account = world["valid"].applicant if role is Role.APPLICANT else make_user(role, mfa=True)
    sign_in(client, account, clock)
    assert client.get(OVERVIEW).status_code == 403
    assert client.get(f"{OVERVIEW}/overview.csv").status_code == 403
    token = csrf_from(client, "/account/")
    assert client.post(f"{OVERVIEW}/run", data={"csrf_token": token}).status_code == 403
    own = client.get(f"/screening/submissions/{world['valid'].submission_id}").status_code
    other = client.get(f"/screening/submissions/{world['long'].submission_id}").status_code
    # An applicant sees their own submission but not its officers' report; an auditor sees that
    # submissions exist (metadata) but no screening; the others cannot tell that they exist.
    assert (own, other) == {Role.APPLICANT: (403, 404), Role.AUDITOR: (403, 403)}.get(
        role, (404, 404))
    assert events(runtime, "screening:ran") == []


def test_unknown_programme_and_submission_are_404(client, world, officer):
    assert client.get("/screening/no-such-call").status_code == 404
    assert client.get("/screening/submissions/00000000-0000-0000-0000-000000000000") \
        .status_code == 404


def test_a_run_refused_by_the_workflow_keeps_nothing(client, world, officer, runtime,
                                                     monkeypatch):
    from vault.screening.errors import IllegalTransition
    from vault.screening.models import ScreeningFinding, ScreeningRun

    def refuse(self, submission, actor):
        raise IllegalTransition(SubmissionState.WITHDRAWN, SubmissionState.SCREENING)

    monkeypatch.setattr("vault.screening.workflow.SubmissionWorkflow.start_screening", refuse)
    run_screening(client)
    page = client.get(OVERVIEW).get_data(as_text=True)
    assert "A submission cannot go from withdrawn to screening." in page
    with unit_of_work(runtime.sessions) as session:
        assert session.scalars(select(ScreeningRun)).first() is None
        assert session.scalars(select(ScreeningFinding)).first() is None
    assert events(runtime, "screening:ran") == []


def test_no_transaction_is_held_while_the_pdfs_are_analysed(client, world, officer, runtime,
                                                            monkeypatch):
    """Another request can write while a run's PDFs are analysed: on SQLite an open
    transaction would hold the one write lock for the length of the run (the write below
    would then fail after the busy timeout, and the run with it)."""
    from vault.screening import service as screening_service

    analyse, writes = screening_service.analyse_pdf, []

    def analyse_while_someone_writes(data, rules, *, limits):
        with unit_of_work(runtime.sessions) as session:
            session.add(new_conflict(runtime.cipher,
                programme_id=session.scalar(select(Programme.id)
                                            .where(Programme.code == PROGRAMME)),
                user_id=officer.id, consortium_id=world["draft"].consortium_id,
                source=ConflictSource.DECLARED, status=ConflictStatus.DISMISSED,
                details_sealed=b"insecure test"))
        writes.append(True)
        return analyse(data, rules, limits=limits)

    monkeypatch.setattr(screening_service, "analyse_pdf", analyse_while_someone_writes)
    with unit_of_work(runtime.sessions) as session:
        before = session.scalar(select(func.count()).select_from(Conflict))
    run_screening(client)

    assert writes  # every PDF was analysed while another session wrote and committed
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Conflict)) == before + len(writes)
