"""Each role's home page shows what that role is for, and nothing of anyone else."""

from __future__ import annotations

import pytest

from tests.conftest import sign_in
from vault.consortia.models import Consortium
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.identity.models import Role, User
from vault.organizations.models import OrganizationKind
from vault.organizations.service import OrganizationService
from vault.programmes.service import ProgrammeService


@pytest.fixture
def two_consortia(runtime, make_user):
    """Two consortia of the demo programme, each with one applicant and a partner list."""
    accounts = {}
    with unit_of_work(runtime.sessions) as session:
        programme, _ = ProgrammeService(session).sync(runtime.definitions["sovereign-ai-2025"])
        consortia = ConsortiumService(session, cipher=runtime.cipher)
        for team, partner in (("Alpha Team", "Secret Partner Alpha University"),
                              ("Beta Team", "Secret Partner Beta Institute")):
            lead = OrganizationService(session).get_or_create(f"{team} Lead Co.",
                                                              OrganizationKind.COMPANY)
            consortium = consortia.create(programme, team, lead)
            consortia.add_member(consortium, name=lead.name, kind=lead.kind, role="lead",
                                 contribution="training")
            consortia.add_member(consortium, name=partner, kind=OrganizationKind.UNIVERSITY,
                                 role="university partner", contribution=f"{team} evaluation")
            accounts[team] = (consortium.id, partner)
    result = {}
    for team, (consortium_id, partner) in accounts.items():
        account = make_user(Role.APPLICANT)
        with unit_of_work(runtime.sessions) as session:
            consortia = ConsortiumService(session, cipher=runtime.cipher)
            consortia.add_contact(session.get(Consortium, consortium_id),
                                  session.get(User, account.id), lead=True)
        result[team] = (account, partner)
    return result


def test_applicant_sees_own_consortium_and_partner_list_only(client, two_consortia):
    account, partner = two_consortia["Alpha Team"]
    sign_in(client, account)
    page = client.get("/").get_data(as_text=True)
    assert "Alpha Team" in page and partner in page and "Alpha Team evaluation" in page
    assert "Beta Team" not in page and two_consortia["Beta Team"][1] not in page
    assert "Project proposal" in page  # the required documents of the programme


def test_applicant_without_consortium_gets_a_clear_message(client, make_user):
    sign_in(client, make_user(Role.APPLICANT))
    assert "not yet linked to a consortium" in client.get("/").get_data(as_text=True)


def test_officer_sees_the_programme_overview_and_definition(client, make_user, clock,
                                                            two_consortia):
    sign_in(client, make_user(Role.OFFICER, mfa=True), clock)
    page = client.get("/").get_data(as_text=True)
    assert "Sovereign AI Foundation Model 2025" in page
    assert "Secret Partner" not in page  # officers do not read partner lists on the overview
    definition = client.get("/programmes/sovereign-ai-2025").get_data(as_text=True)
    assert "Written evaluation" in definition and "Project proposal" in definition
    assert client.get("/programmes/no-such-programme").status_code == 404


def test_reviewer_sees_assignments(client, make_user, clock):
    sign_in(client, make_user(Role.REVIEWER, mfa=True), clock)
    assert "My assignments" in client.get("/").get_data(as_text=True)


def test_auditor_sees_the_audit_log_page(client, make_user, clock):
    sign_in(client, make_user(Role.AUDITOR, mfa=True), clock)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Audit log" in page and "Chain status" in page and "auth:login:succeeded" in page


def test_admin_sees_accounts_but_no_programme_content(client, make_user, clock, two_consortia):
    admin = make_user(Role.ADMIN, mfa=True)
    sign_in(client, admin, clock)
    page = client.get("/").get_data(as_text=True)
    assert admin.email in page and "Secret Partner" not in page
    listing = client.get("/programmes/").get_data(as_text=True)
    assert "sovereign-ai-2025" not in listing


def test_korean_home_page_for_officer(client, make_user, clock, two_consortia):
    sign_in(client, make_user(Role.OFFICER, mfa=True), clock)
    page = client.get("/", headers={"Accept-Language": "ko"}).get_data(as_text=True)
    assert "독자 AI 파운데이션 모델 2025" in page and "사업 현황" in page
