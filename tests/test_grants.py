"""Dual control: an officer with a conflict reads a consortium's material only with a second,
unconflicted officer's time-limited approval; both names are recorded; revocation and expiry
deny the next request."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tests.conftest import audit_events as _events
from tests.conftest import csrf_from, sign_in
from vault.audit.models import AuditEvent
from vault.audit.service import RequestInfo
from vault.conflicts.links import new_conflict
from vault.conflicts.models import ConflictSource, ConflictStatus
from vault.consortia.models import Consortium
from vault.db import unit_of_work
from vault.grants.errors import ApproverConflicted, GrantClosed, SelfApproval
from vault.grants.models import DualControlGrant
from vault.grants.service import GrantService
from vault.identity.models import Role, User
from vault.policy.actions import Actor
from vault.programmes.models import Programme

CODE = "sovereign-ai-2025"
REASON = "Checking the budget plan against the screening notes"


def _named(runtime, account, name: str):
    with unit_of_work(runtime.sessions) as session:
        session.get(User, account.id).display_name = name
    return account


def _conflict(runtime, user_id, consortium_id, status=ConflictStatus.CONFIRMED) -> None:
    with unit_of_work(runtime.sessions) as session:
        programme_id = session.scalar(select(Programme.id).where(Programme.code == CODE))
        session.add(new_conflict(runtime.cipher, programme_id=programme_id, user_id=user_id,
                             consortium_id=consortium_id, source=ConflictSource.DECLARED,
                             status=status, details_sealed=b"sealed-elsewhere"))


def _post(client, path: str, **data: str):
    return client.post(path, data={"csrf_token": csrf_from(client, "/account/"), **data})


def _ask(client, consortium_id, reason: str = REASON):
    return _post(client, "/dual-control/request", consortium=str(consortium_id), reason=reason)


def _grants(runtime) -> list[DualControlGrant]:
    with unit_of_work(runtime.sessions) as session:
        return list(session.scalars(select(DualControlGrant)
                                    .order_by(DualControlGrant.requested_at)))


@pytest.fixture
def alpha(make_team):
    return make_team("Team Alpha")


@pytest.fixture
def officers(app, alpha, make_user, runtime, clock):
    """Officer Choi (conflicted with Team Alpha) and Officer Jung, each signed in."""
    choi = _named(runtime, make_user(Role.OFFICER, mfa=True), "Officer Choi")
    jung = _named(runtime, make_user(Role.OFFICER, mfa=True), "Officer Jung")
    _conflict(runtime, choi.id, alpha.consortium_id)
    clients = []
    for account in (choi, jung):
        client = app.test_client()
        sign_in(client, account, clock)
        clients.append(client)
    return choi, clients[0], jung, clients[1]


def _submission(alpha) -> str:
    return f"/submissions/{alpha.submission_id}"


def test_conflicted_officer_reads_only_with_a_second_officers_approval(
        app, alpha, officers, runtime, clock, make_user):
    choi, choi_client, jung, jung_client = officers
    assert choi_client.get(_submission(alpha)).status_code == 404
    assert choi_client.get(f"/api/v1/submissions/{alpha.submission_id}").status_code == 404
    assert jung_client.get(_submission(alpha)).status_code == 200

    page = choi_client.get("/dual-control/").get_data(as_text=True)
    assert "Team Alpha" in page and "Ask a second officer" in page
    assert _ask(choi_client, alpha.consortium_id).status_code == 302
    (grant,) = _grants(runtime)
    assert grant.requested_by_id == choi.id and grant.approved_at is None

    # Nobody approves their own request.
    assert _post(choi_client, f"/dual-control/{grant.id}/approve").status_code == 403
    assert _grants(runtime)[0].approved_at is None
    assert choi_client.get(_submission(alpha)).status_code == 404

    waiting = jung_client.get("/dual-control/").get_data(as_text=True)
    assert "Officer Choi" in waiting and REASON in waiting
    assert _post(jung_client, f"/dual-control/{grant.id}/approve").status_code == 302
    approved = _grants(runtime)[0]
    assert approved.approved_by_id == jung.id and approved.approved_at == clock()
    assert approved.expires_at == approved.approved_at + timedelta(hours=8)

    assert choi_client.get(_submission(alpha)).status_code == 200
    mine = choi_client.get("/dual-control/").get_data(as_text=True)
    assert "approved by Officer Jung until" in mine

    (event,) = _events(runtime, "grant:approved")
    assert event["actor"]["user"] == str(jung.id)
    assert event["target"]["requested_by"] == str(choi.id)
    assert event["target"]["approved_by"] == str(jung.id)
    assert event["target"]["consortium"] == str(alpha.consortium_id)
    (requested,) = _events(runtime, "grant:requested")
    assert requested["actor"]["user"] == str(choi.id)

    # After dual_control_hours the approval has lapsed (the session too: sign in again).
    clock.advance(hours=8, minutes=1)
    later = app.test_client()
    sign_in(later, choi, clock)
    assert later.get(_submission(alpha)).status_code == 404
    assert "approval expired" in later.get("/dual-control/").get_data(as_text=True)


def test_revoking_an_approval_denies_the_next_request(alpha, officers, runtime):
    _choi, choi_client, _jung, jung_client = officers
    _ask(choi_client, alpha.consortium_id)
    (grant,) = _grants(runtime)
    _post(jung_client, f"/dual-control/{grant.id}/approve")
    assert choi_client.get(_submission(alpha)).status_code == 200
    assert "Officer Choi" in jung_client.get("/dual-control/").get_data(as_text=True)

    assert _post(jung_client, f"/dual-control/{grant.id}/revoke").status_code == 302
    assert choi_client.get(_submission(alpha)).status_code == 404
    (event,) = _events(runtime, "grant:revoked")
    assert event["target"]["was"] == "active"
    assert event["target"]["revoked_by"] == str(officers[2].id)
    assert _post(jung_client, f"/dual-control/{grant.id}/approve").status_code == 409


def test_the_requester_may_withdraw_their_own_approval(alpha, officers, runtime):
    choi, choi_client, _jung, jung_client = officers
    _ask(choi_client, alpha.consortium_id)
    (grant,) = _grants(runtime)
    _post(jung_client, f"/dual-control/{grant.id}/approve")
    assert _post(choi_client, f"/dual-control/{grant.id}/revoke").status_code == 302
    assert choi_client.get(_submission(alpha)).status_code == 404
    assert _events(runtime, "grant:revoked")[0]["actor"]["user"] == str(choi.id)
    assert _post(choi_client, f"/dual-control/{grant.id}/revoke").status_code == 409


def test_a_second_officer_with_the_same_conflict_cannot_approve(app, alpha, officers, runtime,
                                                                 make_user, clock):
    _choi, choi_client, _jung, _ = officers
    han = _named(runtime, make_user(Role.OFFICER, mfa=True), "Officer Han")
    _conflict(runtime, han.id, alpha.consortium_id, status=ConflictStatus.PENDING)
    han_client = app.test_client()
    sign_in(han_client, han, clock)
    _ask(choi_client, alpha.consortium_id)
    (grant,) = _grants(runtime)
    assert "Officer Choi" not in han_client.get("/dual-control/").get_data(as_text=True)
    assert _post(han_client, f"/dual-control/{grant.id}/approve").status_code == 403
    assert _post(han_client, f"/dual-control/{grant.id}/revoke").status_code == 403
    assert _grants(runtime)[0].approved_at is None and _grants(runtime)[0].revoked_at is None
    assert choi_client.get(_submission(alpha)).status_code == 404
    denied = [e for e in _events(runtime, "access:decided")
              if e["decision"] == "deny" and e["actor"]["user"] == str(han.id)]
    assert {e["target"]["action"] for e in denied} == {"grant:approve"}


def test_a_dismissed_conflict_needs_no_approval(app, alpha, make_user, runtime, clock):
    officer = make_user(Role.OFFICER, mfa=True)
    _conflict(runtime, officer.id, alpha.consortium_id, status=ConflictStatus.DISMISSED)
    client = app.test_client()
    sign_in(client, officer, clock)
    assert client.get(_submission(alpha)).status_code == 200
    page = client.get("/dual-control/").get_data(as_text=True)
    assert "You have no conflict of interest in effect" in page
    # The policy grants a request only to a conflicted officer; others learn nothing.
    assert _ask(client, alpha.consortium_id).status_code == 404
    assert _grants(runtime) == []


def test_requests_need_a_reason_and_are_not_duplicated(alpha, officers, runtime):
    _choi, choi_client, _jung, _ = officers
    assert _ask(choi_client, alpha.consortium_id, reason="   ").status_code == 422
    assert _ask(choi_client, alpha.consortium_id, reason="x" * 2001).status_code == 422
    assert _ask(choi_client, alpha.consortium_id).status_code == 302
    assert _ask(choi_client, alpha.consortium_id).status_code == 409
    assert _ask(choi_client, uuid.uuid4()).status_code == 404
    assert _ask(choi_client, "not-an-id").status_code == 404
    assert len(_grants(runtime)) == 1


def test_the_reason_is_sealed_and_kept_out_of_the_log(alpha, officers, runtime):
    _choi, choi_client, _jung, _ = officers
    _ask(choi_client, alpha.consortium_id)
    (grant,) = _grants(runtime)
    assert REASON.encode() not in grant.reason_sealed
    assert runtime.cipher.open("dual_control_grants", "reason", grant.id,
                               grant.reason_sealed) == REASON
    with unit_of_work(runtime.sessions) as session:
        runtime.audit(session).sequence()
        leaves = list(session.scalars(select(AuditEvent.leaf)))
    assert not any(REASON.encode() in leaf for leaf in leaves)


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.APPLICANT, Role.AUDITOR, Role.ADMIN])
def test_dual_control_pages_are_for_officers_only(app, alpha, officers, runtime, make_user,
                                                  clock, role):
    _choi, choi_client, _jung, _ = officers
    _ask(choi_client, alpha.consortium_id)
    (grant,) = _grants(runtime)
    client = app.test_client()
    sign_in(client, alpha.applicant if role is Role.APPLICANT else make_user(role, mfa=True),
            clock)
    page = client.get("/dual-control/")
    assert page.status_code == 403
    assert "Officer Choi" not in page.get_data(as_text=True)
    assert _post(client, f"/dual-control/{grant.id}/approve").status_code == 403
    assert _post(client, f"/dual-control/{grant.id}/revoke").status_code == 403
    assert _ask(client, alpha.consortium_id).status_code == 404
    assert _grants(runtime)[0].approved_at is None and _grants(runtime)[0].revoked_at is None


def test_the_service_refuses_self_approval_even_without_the_policy(alpha, officers, runtime):
    choi, choi_client, jung, _ = officers
    _ask(choi_client, alpha.consortium_id)
    _conflict(runtime, jung.id, alpha.consortium_id)
    with unit_of_work(runtime.sessions) as session:
        service = GrantService(session, clock=runtime.clock, definitions=runtime.definitions,
                               cipher=runtime.cipher, audit=runtime.audit(session),
                               request=RequestInfo())
        grant = session.scalars(select(DualControlGrant)).one()
        with pytest.raises(SelfApproval):
            service.approve(Actor(choi.id, Role.OFFICER), grant)
        with pytest.raises(SelfApproval):
            service.approve(Actor.operator(), grant)
        with pytest.raises(ApproverConflicted):
            service.approve(Actor(jung.id, Role.OFFICER), grant)
        service.revoke(Actor(choi.id, Role.OFFICER), grant)
        with pytest.raises(GrantClosed):
            service.approve(Actor(uuid.uuid4(), Role.OFFICER), grant)


def test_the_database_refuses_a_self_approved_grant(alpha, officers, runtime, clock):
    choi, choi_client, _jung, _ = officers
    _ask(choi_client, alpha.consortium_id)
    with pytest.raises(IntegrityError), unit_of_work(runtime.sessions) as session:
        session.execute(update(DualControlGrant).values(approved_by_id=choi.id,
                                                        approved_at=clock()))


def test_the_request_form_lists_only_conflicted_consortia(app, alpha, make_team, officers):
    _choi, choi_client, _jung, jung_client = officers
    make_team("Team Beta")
    page = choi_client.get("/dual-control/").get_data(as_text=True)
    form = page[page.index("Ask for access"):]
    assert "Team Alpha" in form and "Team Beta" not in form
    assert "Team Alpha" not in jung_client.get("/dual-control/").get_data(as_text=True)


def test_grants_of_one_consortium_do_not_open_another(app, alpha, make_team, officers,
                                                      runtime):
    _choi, choi_client, _jung, jung_client = officers
    beta = make_team("Team Beta")
    with unit_of_work(runtime.sessions) as session:
        assert session.get(Consortium, beta.consortium_id) is not None
    _conflict(runtime, officers[0].id, beta.consortium_id)
    _ask(choi_client, alpha.consortium_id)
    (grant,) = _grants(runtime)
    _post(jung_client, f"/dual-control/{grant.id}/approve")
    assert choi_client.get(_submission(alpha)).status_code == 200
    assert choi_client.get(f"/submissions/{beta.submission_id}").status_code == 404
