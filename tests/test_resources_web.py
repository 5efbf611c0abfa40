"""The resource request in the browser and the API: applicants fill it while the submission
accepts changes, officers read it and see programme totals, everyone else sees nothing."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from tests.conftest import audit_events as _events
from tests.conftest import csrf_from, sign_in
from tests.reviewing import ready_reviewer
from tests.test_grants import _conflict
from vault.audit.models import AuditEvent
from vault.audit.service import Tag
from vault.db import unit_of_work
from vault.documents.models import Submission, SubmissionState
from vault.identity.models import Role
from vault.resources.models import ResourceRequest
from vault.resources.service import ResourceService, ResourceValues

CODE = "sovereign-ai-2025"
FORM_VALUES = {"gpu_model": "b200", "gpu_count": "512", "data_budget_krw": "1,000,000,000",
               "talent_headcount": "20"}
STORED = ResourceValues("b200", 512, 1_000_000_000, 20)


def _page(team) -> str:
    return f"/submissions/{team.submission_id}/resources"


def _api(team) -> str:
    return f"/api/v1/submissions/{team.submission_id}/resource-request"


def _stored(runtime, team) -> ResourceValues | None:
    with unit_of_work(runtime.sessions) as session:
        return ResourceService(session, cipher=runtime.cipher).get(
            session.get(Submission, team.submission_id))


def _store(runtime, team, values: ResourceValues) -> None:
    with unit_of_work(runtime.sessions) as session:
        ResourceService(session, cipher=runtime.cipher,
                        documents=runtime.documents(session)).save(
            session.get(Submission, team.submission_id), values,
            runtime.definitions[CODE].resources, user_id=None)


def _set_state(runtime, team, state) -> None:
    with unit_of_work(runtime.sessions) as session:
        session.get(Submission, team.submission_id).state = state


def _post(client, team, **fields: str):
    token = csrf_from(client, _page(team))
    return client.post(_page(team), data={"csrf_token": token, **fields})


def _put(client, team, body, *, raw: str | None = None):
    token = csrf_from(client, "/")
    if raw is not None:
        return client.put(_api(team), data=raw, content_type="application/json",
                          headers={"X-CSRFToken": token})
    return client.put(_api(team), json=body, headers={"X-CSRFToken": token})


@pytest.fixture
def alpha(make_team):
    return make_team("Team Alpha")


@pytest.fixture
def applicant(app, alpha):
    client = app.test_client()
    sign_in(client, alpha.applicant)
    return client


@pytest.fixture
def officer(app, make_user, clock):
    account = make_user(Role.OFFICER, mfa=True)
    client = app.test_client()
    sign_in(client, account, clock)
    client.account = account
    return client


# -- the form ------------------------------------------------------------------------------

def test_applicant_fills_the_form_and_sees_it_saved(applicant, alpha, runtime):
    page = applicant.get(_page(alpha)).get_data(as_text=True)
    assert 'name="gpu_count"' in page and "NVIDIA B200" in page
    # The allowed ranges are shown next to the fields.
    assert "From 0 to 30,000,000,000 won" in page and "NVIDIA H100: at most 2,048" in page
    response = _post(applicant, alpha, **FORM_VALUES)
    assert response.status_code == 302 and response.location.endswith(_page(alpha))
    assert _stored(runtime, alpha) == STORED
    page = applicant.get(_page(alpha)).get_data(as_text=True)
    assert "Resource request saved." in page and 'value="1000000000"' in page
    [event] = _events(runtime, Tag.RESOURCE_REQUEST_SAVED)
    assert event["target"] == {"consortium": str(alpha.consortium_id),
                               "submission": str(alpha.submission_id)}
    # Never the values: neither in the event nor anywhere in the audit log.
    with unit_of_work(runtime.sessions) as session:
        log = b"\n".join(session.scalars(select(AuditEvent.leaf)))
    assert b"1000000000" not in log and b"b200" not in log


def test_bad_input_shows_every_problem_by_its_field_and_stores_nothing(applicant, alpha,
                                                                      runtime):
    response = _post(applicant, alpha, gpu_model="b200", gpu_count="1,500",
                     data_budget_krw="lots", talent_headcount="")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "At most 1,024 GPUs of the model NVIDIA B200 can be requested." in page
    assert "Enter a whole number (digits only, like 512)." in page
    assert "Enter the talent support headcount." in page
    assert page.count('aria-invalid="true"') == 3
    # What was typed is kept so that it can be corrected.
    assert 'value="lots"' in page and 'value="1,500"' in page
    assert _stored(runtime, alpha) is None
    assert _events(runtime, Tag.RESOURCE_REQUEST_SAVED) == []


def test_an_unknown_model_and_a_missing_csrf_token_store_nothing(applicant, alpha, runtime):
    response = _post(applicant, alpha, **{**FORM_VALUES, "gpu_model": "a100"})
    assert response.status_code == 400
    assert "The programme offers no GPU model a100" in response.get_data(as_text=True)
    response = applicant.post(_page(alpha), data=FORM_VALUES)
    assert response.status_code == 400 and _stored(runtime, alpha) is None


def test_the_form_speaks_korean(app, alpha):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ko"
    sign_in(client, alpha.applicant)
    response = _post(client, alpha, **{**FORM_VALUES, "talent_headcount": "201"})
    assert "인재 지원 인원은 0~200명 사이여야 합니다." in response.get_data(as_text=True)


def test_a_submitted_request_is_read_only_for_its_applicant(applicant, alpha, runtime):
    _store(runtime, alpha, STORED)
    _set_state(runtime, alpha, SubmissionState.SUBMITTED)
    page = applicant.get(_page(alpha)).get_data(as_text=True)
    assert 'name="gpu_count"' not in page and "shown read-only" in page
    assert "1,000,000,000" in page
    response = _post(applicant, alpha, **{**FORM_VALUES, "gpu_count": "1"})
    assert response.status_code == 409
    assert _stored(runtime, alpha) == STORED


def test_officers_read_the_values_but_cannot_change_them(officer, alpha, runtime):
    _store(runtime, alpha, STORED)
    response = officer.get(_page(alpha))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "NVIDIA B200" in page and "1,000,000,000" in page and 'name="gpu_count"' not in page
    assert "shown read-only" not in page
    token = csrf_from(officer, "/")
    response = officer.post(_page(alpha), data={"csrf_token": token, **FORM_VALUES,
                                                "gpu_count": "1"})
    assert response.status_code == 403
    assert _stored(runtime, alpha) == STORED


def test_another_consortium_and_an_assigned_reviewer_get_404(app, alpha, make_team, runtime,
                                                             make_user, clock):
    _store(runtime, alpha, STORED)
    beta = make_team("Team Beta")
    other = app.test_client()
    sign_in(other, beta.applicant)
    assert other.get(_page(alpha)).status_code == 404
    token = csrf_from(other, _page(beta))
    assert other.post(_page(alpha), data={"csrf_token": token, **FORM_VALUES}).status_code \
        == 404
    assert other.get(_api(alpha)).status_code == 404
    reviewer = ready_reviewer(runtime, make_user, clock, alpha)
    client = app.test_client()
    sign_in(client, reviewer, clock)
    assert client.get(f"/submissions/{alpha.submission_id}").status_code == 200
    assert client.get(_page(alpha)).status_code == 404
    assert client.get(_api(alpha)).status_code == 404
    assert _stored(runtime, alpha) == STORED


# -- programme totals ----------------------------------------------------------------------

@pytest.fixture
def three(make_team, runtime):
    teams = [make_team(name) for name in ("Team Alpha", "Team Beta", "=SUM(A1:A9)")]
    _store(runtime, teams[0], ResourceValues("b200", 512, 1_000_000_000, 20))
    _store(runtime, teams[1], ResourceValues("b200", 1024, 2_500_000_000, 5))
    _store(runtime, teams[2], ResourceValues("h100", 2048, 30_000_000_000, 200))
    return teams


def test_officers_see_programme_totals(officer, three):
    page = officer.get(f"/resources/{CODE}").get_data(as_text=True)
    assert "1,536 GPUs" in page and "2,048 GPUs" in page and "3,584 GPUs" in page
    assert "33,500,000,000 won" in page and "225 people" in page
    assert "3 of 3 submissions" in page and "conflict of interest" not in page
    programme = officer.get(f"/programmes/{CODE}").get_data(as_text=True)
    assert f'href="/resources/{CODE}"' in programme


def test_the_totals_csv_has_a_bom_guards_formulas_and_is_recorded(officer, three, runtime):
    response = officer.get(f"/resources/{CODE}/totals.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8")[1:])))
    names = [row[1] for row in rows if row[0] == "request"]
    assert names == ["'=SUM(A1:A9)", "Team Alpha", "Team Beta"]
    assert rows[-1][6:] == ["3584", "33500000000", "225"]
    [event] = _events(runtime, Tag.RESOURCE_TOTALS_EXPORTED)
    assert event["target"] == {"programme": CODE, "rows": "3", "hidden": "0"}


def test_a_conflicted_officers_totals_leave_that_consortium_out(officer, three, runtime):
    _conflict(runtime, officer.account.id, three[1].consortium_id)
    page = officer.get(f"/resources/{CODE}").get_data(as_text=True)
    assert "Team Beta" not in page and "Team Alpha" in page
    assert "1 submissions are left out" in page
    assert "512 GPUs" in page and "31,000,000,000 won" in page and "2 of 2 submissions" in page
    csv_text = officer.get(f"/resources/{CODE}/totals.csv").get_data(as_text=True)
    assert "Team Beta" not in csv_text and "2500000000" not in csv_text
    api = officer.get(f"/api/v1/programmes/{CODE}/resource-totals").json
    assert api["hidden"] == 1 and api["gpus_by_model"] == {"b200": 512, "h100": 2048}
    assert officer.get(_page(three[1])).status_code == 404


def test_only_officers_see_the_totals(app, alpha, make_user, clock):
    client = app.test_client()
    sign_in(client, alpha.applicant)
    assert client.get(f"/resources/{CODE}").status_code == 403
    assert client.get(f"/resources/{CODE}/totals.csv").status_code == 403
    assert client.get(f"/api/v1/programmes/{CODE}/resource-totals").status_code == 403
    assert f'href="/resources/{CODE}"' not in client.get(f"/programmes/{CODE}").get_data(
        as_text=True)
    auditor = app.test_client()
    sign_in(auditor, make_user(Role.AUDITOR, mfa=True), clock)
    assert auditor.get(f"/resources/{CODE}").status_code == 403


def test_an_unknown_programme_is_404(officer):
    assert officer.get("/resources/no-such-programme").status_code == 404


# -- the API -------------------------------------------------------------------------------

def test_the_api_reads_and_replaces_the_request(applicant, alpha, runtime):
    response = applicant.get(_api(alpha))
    assert response.status_code == 200
    assert response.json["request"] is None and response.json["editable"] is True
    assert response.json["form"]["gpu_count"] == {"min": 0, "max": 2048}
    body = {"gpu_model": "b200", "gpu_count": 512, "data_budget_krw": 1_000_000_000,
            "talent_headcount": 20}
    response = _put(applicant, alpha, body)
    assert response.status_code == 200, response.json
    assert response.json["request"] == body and response.json["updated_at"]
    assert _stored(runtime, alpha) == STORED
    assert applicant.get(_api(alpha)).json["request"] == body
    assert len(_events(runtime, Tag.RESOURCE_REQUEST_SAVED)) == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"gpu_count": "512"}, "gpu_count"),
    ({"gpu_count": 512.0}, "gpu_count"),
    ({"talent_headcount": True}, "talent_headcount"),
    ({"data_budget_krw": None}, "data_budget_krw"),
    ({"gpu_model": 200}, "gpu_model"),
    ({"gpu_model": "a100"}, "gpu_model"),
    ({"data_budget_krw": 30_000_000_001}, "data_budget_krw"),
    ({"colour": "blue"}, "colour"),
])
def test_the_api_refuses_bad_values_naming_the_field(applicant, alpha, runtime, change, field):
    body = {"gpu_model": "b200", "gpu_count": 512, "data_budget_krw": 1, "talent_headcount": 2,
            **change}
    response = _put(applicant, alpha, body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_resource_request"
    assert [p["field"] for p in response.json["problems"]] == [field]
    assert response.json["message"] == response.json["problems"][0]["message"]
    assert _stored(runtime, alpha) is None


def test_the_api_names_every_missing_key(applicant, alpha, runtime):
    response = _put(applicant, alpha, {"gpu_model": "b200"})
    assert response.status_code == 400
    assert [p["field"] for p in response.json["problems"]] == [
        "gpu_count", "data_budget_krw", "talent_headcount"]


@pytest.mark.parametrize("raw", ["[1, 2]", "\"b200\"", "not json", ""])
def test_the_api_refuses_a_body_that_is_not_an_object(applicant, alpha, runtime, raw):
    response = _put(applicant, alpha, None, raw=raw)
    assert response.status_code == 400
    assert response.json["problems"][0]["message"].startswith("Send a JSON object")
    assert _stored(runtime, alpha) is None


def test_the_api_answers_409_when_the_submission_accepts_no_changes(applicant, alpha,
                                                                     runtime):
    _store(runtime, alpha, STORED)
    _set_state(runtime, alpha, SubmissionState.SUBMITTED)
    assert applicant.get(_api(alpha)).json["editable"] is False
    body = {"gpu_model": "h100", "gpu_count": 1, "data_budget_krw": 1, "talent_headcount": 1}
    response = _put(applicant, alpha, body)
    assert response.status_code == 409 and response.json["error"] == "submission_locked"
    # Also when the values are bad: the closed submission is what the applicant must know.
    assert _put(applicant, alpha, {"gpu_count": "x"}).status_code == 409
    assert _stored(runtime, alpha) == STORED


def test_officers_read_through_the_api_but_cannot_put(officer, alpha, runtime):
    _store(runtime, alpha, STORED)
    assert officer.get(_api(alpha)).json["request"]["gpu_count"] == 512
    body = {"gpu_model": "h100", "gpu_count": 1, "data_budget_krw": 1, "talent_headcount": 1}
    assert _put(officer, alpha, body).status_code == 403
    assert _stored(runtime, alpha) == STORED


def test_the_openapi_document_describes_the_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"get", "put"} <= set(paths["/submissions/{submission_id}/resource-request"])
    assert "get" in paths["/programmes/{code}/resource-totals"]


def test_nothing_is_stored_in_the_clear(applicant, alpha, runtime):
    _post(applicant, alpha, **FORM_VALUES)
    with unit_of_work(runtime.sessions) as session:
        row = session.get(ResourceRequest, alpha.submission_id)
        assert b"1000000000" not in row.data_budget_sealed and b"b200" not in \
            row.gpu_model_sealed
