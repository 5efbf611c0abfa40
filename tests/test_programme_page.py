"""The programme page shows the whole definition: screening rules per document kind, consortium
rules, the resource request form, stages with criteria and decision rules, conflict rules."""

from __future__ import annotations

import pytest

from tests.conftest import sign_in
from vault.identity.models import Role

CODE = "sovereign-ai-2025"


@pytest.fixture
def officer_page(app, make_user, make_team, clock):
    make_team()  # syncs the programme into the database
    client = app.test_client()
    sign_in(client, make_user(Role.OFFICER, mfa=True), clock)
    return client


def _section(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    return page[start:page.index("</section>", start)]


def test_the_screening_rules_of_every_document_kind_are_shown(officer_page):
    page = officer_page.get(f"/programmes/{CODE}").get_data(as_text=True)
    rules = _section(page, "screening-rules")
    assert "5 to 40 pages" in rules and "at most 30 pages" in rules and "A4" in rules
    # Headings in the reader's language, the other language as the title.
    assert '<span title="사업 개요">Project overview</span>' in rules
    assert rules.count("required for signing") == 2
    assert "one per partner" in rules


def test_consortium_rules_and_resource_ranges_are_shown(officer_page):
    page = officer_page.get(f"/programmes/{CODE}").get_data(as_text=True)
    consortium = _section(page, "consortium-rules")
    assert "at least 1" in consortium and "at most 10" in consortium
    resources = _section(page, "resource-form")
    assert "From 0 to 30,000,000,000 won" in resources
    assert "NVIDIA B200: at most 1,024" in resources and "From 0 to 200" in resources


def test_stages_show_decision_rules_and_weighted_criteria(officer_page):
    page = officer_page.get(f"/programmes/{CODE}").get_data(as_text=True)
    stages = _section(page, "stages")
    assert "the best 10 go on" in stages and "the lowest 1 are eliminated" in stages
    assert "a majority of the panel decides" in stages
    criteria = _section(page, "criteria-written")
    assert "Open-source strategy" in criteria and "What of the model, data and tools" in criteria
    assert '<td class="num">10</td>' in criteria
    assert 'id="criteria-additional_call"' not in page  # a stage without criteria gets no table
    assert "3 years after it ended" in _section(page, "conflict-rules")


def test_descriptions_follow_the_readers_language(app, make_user, make_team, clock):
    make_team()
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ko"
    sign_in(client, make_user(Role.OFFICER, mfa=True), clock)
    page = client.get(f"/programmes/{CODE}").get_data(as_text=True)
    criteria = _section(page, "criteria-written")
    assert "모델, 데이터, 도구의 공개 범위와 일정" in criteria
    assert "What of the model" not in criteria
    assert '<span title="Project overview">사업 개요</span>' in page
    assert "상위 10팀 선정" in page and "자원 요청 합계" in page


def test_applicants_see_the_rules_and_their_request_but_not_the_officers_tools(app, make_team):
    team = make_team()
    client = app.test_client()
    sign_in(client, team.applicant)
    response = client.get(f"/programmes/{CODE}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "5 to 40 pages" in page and "From 0 to 30,000,000,000 won" in page
    assert f'href="/resources/{CODE}"' not in page and f'href="/screening/{CODE}"' not in page
    # Their own consortium's resource request is a click away.
    assert f'href="/submissions/{team.submission_id}/resources"' in page
    assert "Resource request: Team Alpha" in page


def test_an_unknown_programme_is_404(officer_page):
    assert officer_page.get("/programmes/no-such-programme").status_code == 404


def test_officers_find_the_screening_overview_and_resource_totals_among_the_tools(officer_page):
    page = officer_page.get(f"/programmes/{CODE}").get_data(as_text=True)
    tools = page[page.index('class="card tools"'):page.index("</nav>", page.index("card tools"))]
    assert f'href="/screening/{CODE}"' in tools and "Screening overview" in tools
    assert f'href="/resources/{CODE}"' in tools and "Resource request totals" in tools


def test_composite_stages_disqualification_artifacts_and_retention_are_shown(officer_page):
    page = officer_page.get(f"/programmes/{CODE}").get_data(as_text=True)
    stage_1 = _section(page, "criteria-stage_1")
    assert "Benchmark evaluation" in stage_1 and "imported from a CSV file" in stage_1
    assert "the panel&#39;s score sheets" in stage_1
    assert "Failed the from-scratch requirement" in stage_1
    documents = _section(page, "documents")
    assert "Technical report" in documents and "Stage artifact: during First stage" in documents
    assert "Technical report" not in _section(page, "screening-rules")
    assert "365 days after the publication" in _section(page, "retention")
    assert "applicants see their own scores" in _section(page, "stages")
