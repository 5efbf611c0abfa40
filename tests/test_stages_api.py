"""The stage round endpoints of the JSON API: rounds, the ranking with numbered reviewers, CSV
imports as the raw body, close, reopen, confirm and publish, and the applicant's outcomes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.conftest import snapshot_fixtures
from tests.reviewing import PROGRAMME
from tests.stage_rounds import STAGE, component_csv, stage_world
from vault.db import unit_of_work
from vault.evaluation.models import ComponentImport
from vault.identity.models import Role, User

API = f"/api/v1/programmes/{PROGRAMME}/stages"
ROUND = f"{API}/{STAGE}"
BENCHMARK = {"Team Alpha": "91.5", "Team Beta": "77", "Team Gamma": "88.25",
             "Team Delta": "52"}
USERS = {"Team Alpha": "80", "Team Beta": "75.5", "Team Gamma": "70", "Team Delta": "60"}


def bearer(runtime, account) -> dict[str, str]:
    """The Authorization header of a fresh API token of ``account``."""
    with unit_of_work(runtime.sessions) as session:
        token, _ = runtime.identity(session).create_token(session.get(User, account.id),
                                                          "test", 30, mfa_verified=True)
    return {"Authorization": f"Bearer {token}", "Accept-Language": "en"}


built, database_url, data_dir, world = snapshot_fixtures(stage_world)


@pytest.fixture
def officer(runtime, world) -> dict[str, str]:
    return bearer(runtime, world.officer)


def send_csv(client, headers, world, component: str, values: dict[str, str]):
    return client.post(f"{ROUND}/imports/{component}?filename={component}.csv",
                       data=component_csv(world, values).encode(),
                       headers={**headers, "Content-Type": "text/csv"})


def test_the_officer_runs_a_round_through_the_api(client, officer, world):
    rounds = client.get(API, headers=officer)
    assert rounds.status_code == 200, rounds.json
    [first] = [r for r in rounds.json["rounds"] if r["stage"] == STAGE]
    assert first["state"] == "open" and first["candidates"] == 4
    assert {p["submitted"] for p in first["progress"]} == {4}

    assert client.post(f"{ROUND}/close", headers=officer).json["state"] == "closed"
    for component, values in (("benchmark", BENCHMARK), ("user", USERS)):
        response = send_csv(client, officer, world, component, values)
        assert response.status_code == 201, response.json
        assert response.json["rows"] == 4 and len(response.json["sha256"]) == 64

    ranking = client.get(f"{ROUND}/ranking", headers=officer).json
    assert ranking["missing_imports"] == [] and not ranking["confirmed"]
    alpha = next(e for e in ranking["entries"] if e["consortium"] == "Team Alpha")
    # 40% of 91.5 + 35% of 90 + 25% of 80, to the cent.
    assert Decimal(alpha["score"]) == Decimal("88.10")
    assert {r["reviewer"] for r in alpha["reviewers"]} == {1, 2}
    assert all("name" not in r and "reviewer_id" not in r for r in alpha["reviewers"])

    confirmed = client.post(f"{ROUND}/confirm", headers=officer)
    assert confirmed.status_code == 200, confirmed.json
    sha = confirmed.json["result_sha256"]
    assert len(sha) == 64
    assert client.get(f"{ROUND}/ranking", headers=officer).json["sha256"] == sha
    published = client.post(f"{ROUND}/publish", headers=officer)
    assert published.json["state"] == "published"
    # A published round does not close, confirm or publish again.
    assert client.post(f"{ROUND}/close", headers=officer).status_code == 409


def test_a_csv_with_problems_answers_422_with_its_lines_and_stores_nothing(client, runtime,
                                                                           officer, world):
    assert client.post(f"{ROUND}/close", headers=officer).status_code == 200
    values = dict(BENCHMARK, **{"Team Beta": "104.5"})
    response = send_csv(client, officer, world, "benchmark", values)
    assert response.status_code == 422
    assert response.json["error"]
    assert "line 3" in response.json["message"] + " ".join(response.json.get("problems", []))
    not_csv = client.post(f"{ROUND}/imports/benchmark", data=b"{}",
                          headers={**officer, "Content-Type": "application/json"})
    assert not_csv.status_code == 415
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(ComponentImport)) == 0


def test_reopening_needs_a_reason(client, officer, world):
    assert client.post(f"{ROUND}/close", headers=officer).status_code == 200
    assert client.post(f"{ROUND}/reopen", json={}, headers=officer).status_code == 422
    reopened = client.post(f"{ROUND}/reopen", json={"reason": "wrong sheet"}, headers=officer)
    assert reopened.status_code == 200 and reopened.json["state"] == "open"


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.AUDITOR, Role.ADMIN, Role.APPLICANT])
def test_only_officers_reach_the_round_endpoints(client, runtime, make_user, world, role):
    headers = bearer(runtime, make_user(role, mfa=True))
    assert client.get(API, headers=headers).status_code == 403
    assert client.get(f"{ROUND}/ranking", headers=headers).status_code == 403
    assert client.post(f"{ROUND}/close", headers=headers).status_code == 403
    assert send_csv(client, headers, world, "benchmark", BENCHMARK).status_code == 403


def test_applicants_read_only_their_own_published_outcomes(client, runtime, officer, world):
    alpha = world.team("Team Alpha")
    mine = bearer(runtime, alpha.applicant)
    path = f"/api/v1/submissions/{alpha.submission_id}/outcomes"
    assert client.get(path, headers=mine).json["outcomes"] == []
    client.post(f"{ROUND}/close", headers=officer)
    send_csv(client, officer, world, "benchmark", BENCHMARK)
    send_csv(client, officer, world, "user", USERS)
    client.post(f"{ROUND}/confirm", headers=officer)
    client.post(f"{ROUND}/publish", headers=officer)

    [outcome] = client.get(path, headers=mine).json["outcomes"]
    assert outcome["stage"] == STAGE and outcome["outcome"] == "pass"
    assert Decimal(outcome["scores"]["score"]) == Decimal("88.10")
    assert set(outcome["scores"]["criterion_means"]) == {
        "performance", "independence", "progress", "ecosystem"}
    assert len(outcome["panel"]) == 2
    stranger = bearer(runtime, world.other_applicant)
    assert client.get(path, headers=stranger).status_code == 404
    delta = world.team("Team Delta")
    out = client.get(f"/api/v1/submissions/{delta.submission_id}/outcomes",
                     headers=bearer(runtime, delta.applicant)).json
    assert out["outcomes"][0]["outcome"] == "eliminated" and out["shred_due"]


def test_the_openapi_document_describes_the_round_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"/programmes/{code}/stages", "/programmes/{code}/stages/{stage_id}/ranking",
            "/programmes/{code}/stages/{stage_id}/imports/{component_id}",
            "/submissions/{submission_id}/outcomes"} <= set(paths)
