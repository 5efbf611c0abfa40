"""Hostile input gets a clear answer: JSON nested without end is a 400 with a message on every
JSON endpoint, bidirectional controls in names never reorder what a person reads (the stored
original stays in the receipt and the audit log), and no response names the server software."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, pdf_bytes, sign_in
from vault.db import unit_of_work
from vault.display import neutralise_bidi
from vault.documents.models import DocumentVersion
from vault.identity.models import Role, User
from vault.spreadsheets import spreadsheet_csv

DEEP = "[" * 100_000
RLO_NAME = "report\u202efdp.exe"  # shown as "reportexe.pdf" when the override is obeyed
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
WEB = Path(__file__).resolve().parent.parent / "vault" / "web"


@pytest.fixture
def team(make_team):
    return make_team("Team Alpha")


@pytest.fixture
def applicant(client, team):
    sign_in(client, team.applicant)
    return client


def test_deeply_nested_json_is_a_400_with_a_message(applicant, team, runtime):
    csrf = csrf_from(applicant, "/")
    path = f"/api/v1/submissions/{team.submission_id}/resource-request"

    response = applicant.put(path, data=DEEP, content_type="application/json",
                             headers={"X-CSRFToken": csrf})

    assert response.status_code == 400
    assert response.json["error"] == "json_too_deep"
    assert "nested" in response.json["message"]
    assert applicant.get(path).json["updated_at"] is None  # nothing stored


def test_nesting_just_inside_the_limit_is_parsed_and_one_beyond_is_refused(app):
    from vault.app import MAX_JSON_DEPTH, JsonTooDeep

    inside = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    beyond = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    deep_object = '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)
    with app.test_request_context(data=inside, content_type="application/json"):
        from flask import request

        assert request.get_json(silent=True) is not None
    for body in (beyond, deep_object, DEEP):
        with app.test_request_context(data=body, content_type="application/json"):
            from flask import request

            # silent=True (what the endpoints use) hides malformed JSON, never this.
            with pytest.raises(JsonTooDeep):
                request.get_json(silent=True)


def test_every_json_endpoint_parses_through_the_request_and_nothing_else():
    # The depth check lives in the request class; a handler parsing the body itself would
    # bypass it.
    for source in WEB.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"json\.loads?\(\s*(flask\.)?request", text), source


def test_bidi_controls_never_reach_a_page_or_a_download_name(applicant, team, runtime):
    csrf = csrf_from(applicant, "/")
    receipt = applicant.put(
        f"/api/v1/submissions/{team.submission_id}/documents/proposal",
        data=pdf_bytes(20_000, b"bidi"), content_type="application/pdf",
        headers={"X-CSRFToken": csrf,
                 "Content-Disposition": f"attachment; filename*=UTF-8''{quote(RLO_NAME)}"})
    assert receipt.status_code == 201, receipt.json

    page = applicant.get(f"/submissions/{team.submission_id}").get_data(as_text=True)
    assert "reportfdp.exe" in page and not BIDI.search(page)
    receipt_page = applicant.get(receipt.json["receipt_url"]).get_data(as_text=True)
    assert "reportfdp.exe" in receipt_page and not BIDI.search(receipt_page)
    download = applicant.get(receipt.json["content_url"])
    download.get_data()
    download.close()
    disposition = download.headers["Content-Disposition"]
    assert "reportfdp.exe" in disposition and "%E2%80%AE" not in disposition.upper()

    # The original is kept: in the stored version and what the API reports of it.
    with unit_of_work(runtime.sessions) as session:
        assert session.scalars(select(DocumentVersion.original_filename)).one() == RLO_NAME
    assert applicant.get(f"/api/v1/documents/{receipt.json['document_id']}").json[
        "versions"][0]["filename"] == RLO_NAME


def test_a_name_with_bidi_controls_is_shown_neutralised(app, make_user, runtime):
    account = make_user(Role.APPLICANT)
    with unit_of_work(runtime.sessions) as session:
        session.get(User, account.id).display_name = "Kim \u202eniS-kiM\u202c Officer"
    client = app.test_client()
    sign_in(client, account)
    page = client.get("/").get_data(as_text=True)
    assert "Kim niS-kiM Officer" in page and not BIDI.search(page)


def test_spreadsheet_cells_and_the_display_helper_drop_bidi_controls():
    assert neutralise_bidi("a\u202eb\u2066c\u2069\u200fd\u061c") == "abcd"
    assert neutralise_bidi("김서연 (연구원)") == "김서연 (연구원)"
    assert not BIDI.search(spreadsheet_csv(["name"], [[RLO_NAME], ["=\u202e1+1"]]))
