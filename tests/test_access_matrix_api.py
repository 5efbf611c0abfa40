"""The HTTP access matrix of the JSON API (``/api/v1``): each endpoint, called from the vault's
own pages (session cookie, and ``X-CSRFToken`` on changes), answers each persona (see
``tests/access_world.py``) with the expected status, and shows nothing it must not.

The URL-map walk that keeps this list complete is in ``tests/test_access_matrix.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.access_world import (
    ALPHA,
    ALPHA_FILE,
    ALPHA_MATERIAL,
    BETA,
    CONTENT,
    FORBIDDEN,
    MFA_REVIEWERS,
    NOT_FOUND,
    OFFICERS,
    PARTNERS,
    REVIEWERS,
    STRANGERS,
    Cell,
    Route,
    World,
    api_json,
    api_upload,
    check,
    each,
    open_world,
    params,
    refused,
    row,
    tus,
)

#: A document's metadata: the file name, never content or partners.
DOCUMENT = Cell(200, shows=(ALPHA_FILE,), hides=(*PARTNERS, *CONTENT))
#: A listing or answer that must not name Alpha or its ids.
WITHOUT_ALPHA = Cell(200, hides=("{alpha_submission}", "{alpha_consortium}", *ALPHA_MATERIAL))
LISTS_ALPHA = Cell(200, shows=(ALPHA, "{alpha_submission}"), hides=(*PARTNERS, *CONTENT))
SEEN = refused(403)

API_ROUTES = (
    Route("api.me", "/api/v1/me", row(
        WITHOUT_ALPHA, owner=Cell(200, shows=("{alpha_consortium}",), hides=PARTNERS))),
    Route("api.submissions", "/api/v1/submissions", row(
        WITHOUT_ALPHA,
        **each(("owner", "reviewer_assigned"), LISTS_ALPHA),
        **each(("officer", "officer_granted", "auditor"),
               Cell(200, shows=(ALPHA, BETA), hides=(*PARTNERS, *CONTENT))),
        officer_conflicted=Cell(200, shows=(BETA,), hides=("{alpha_submission}",
                                                           *ALPHA_MATERIAL)),
    )),
    Route("api.submission", "/api/v1/submissions/{alpha_submission}", row(
        NOT_FOUND,
        **each(("owner", "reviewer_assigned", "officer", "officer_granted", "auditor"),
               Cell(200, shows=(ALPHA, ALPHA_FILE), hides=(*PARTNERS, *CONTENT))),
    ), hidden_id="alpha_submission"),
    Route("api.document", "/api/v1/documents/{alpha_document}", row(
        NOT_FOUND, **each(("owner", "reviewer_assigned", "officer", "officer_granted",
                           "auditor"), DOCUMENT),
    ), hidden_id="alpha_document"),
    Route("api.content", "/api/v1/documents/{alpha_document}/content", row(
        NOT_FOUND,
        owner=Cell(200, copy="original"),
        **each(("reviewer_assigned", "officer", "officer_granted"), Cell(200, copy="stamped")),
        auditor=refused(404),
    ), hidden_id="alpha_document"),
    Route("api.nda", "/api/v1/nda", row(
        FORBIDDEN, **each(REVIEWERS + OFFICERS, Cell(200, shows=("{nda_sha256}",),
                                                     hides=ALPHA_MATERIAL)))),
    # A checkpoint commits to the log's size and reveals no content: anyone signed in.
    Route("api.audit_checkpoint", "/api/v1/audit/checkpoint",
          row(Cell(200, hides=ALPHA_MATERIAL))),
    Route("api.audit_export", "/api/v1/audit/export", row(FORBIDDEN, auditor=Cell(200))),
    Route("api.upload", "/api/v1/submissions/{alpha_submission}/documents/proposal", row(
        SEEN, owner=Cell(201, changes=("versions",)),
        **each(STRANGERS, NOT_FOUND),
    ), "PUT", api_upload, hidden_id="alpha_submission", during_call=True),
    # Resumable uploads: opened like an ordinary upload; afterwards only their uploader sees
    # them (404 for everyone else, the owner's colleagues included).
    Route("api.upload_create", "/api/v1/uploads", row(
        SEEN, owner=Cell(201, changes=("uploads",)), **each(STRANGERS, refused(404)),
    ), "POST", tus("POST"), during_call=True),
    Route("api.upload_status", "/api/v1/uploads/{alpha_upload}", row(
        NOT_FOUND, owner=Cell(200, shows=("{alpha_upload}",), hides=(*PARTNERS, *CONTENT)),
    ), hidden_id="alpha_upload", during_call=True),
    Route("api.upload_append", "/api/v1/uploads/{alpha_upload}", row(
        NOT_FOUND, owner=Cell(204, changes=("uploads",)),
    ), "PATCH", tus("PATCH"), hidden_id="alpha_upload", during_call=True),
    Route("api.upload_terminate", "/api/v1/uploads/{alpha_upload}", row(
        NOT_FOUND, owner=Cell(204, changes=("uploads",)),
    ), "DELETE", tus("DELETE"), hidden_id="alpha_upload", during_call=True),
    *(Route(endpoint, f"/api/v1/submissions/{{alpha_submission}}/{path}", row(
        NOT_FOUND,
        **each(("owner", "officer", "officer_granted"), Cell(200, shows=shows,
                                                             hides=(*PARTNERS, *CONTENT))),
        **each(("reviewer_assigned", "auditor"), SEEN),
    ), hidden_id="alpha_submission") for endpoint, path, shows in (
        ("api.checklist", "checklist", ("document.present",)),
        ("api.receipts", "receipts", (ALPHA_FILE,)),
        ("api.screening", "screening", ("{alpha_submission}",)),
    )),
    Route("api.resource_request", "/api/v1/submissions/{alpha_submission}/resource-request", row(
        NOT_FOUND, **each(("owner", "officer", "officer_granted"), Cell(200, hides=(
            *PARTNERS, *CONTENT))),
    ), hidden_id="alpha_submission"),
    Route("api.resource_totals", "/api/v1/programmes/{code}/resource-totals", row(
        FORBIDDEN,
        **each(("officer", "officer_granted"), Cell(200, shows=("{alpha_submission}",),
                                                    hides=(*PARTNERS, *CONTENT))),
        officer_conflicted=Cell(200, hides=("{alpha_submission}", *ALPHA_MATERIAL)),
    )),
    Route("api.put_resource_request",
          "/api/v1/submissions/{alpha_submission}/resource-request", row(
              SEEN, owner=Cell(200, changes=("resource_requests",)),
              **each(STRANGERS, NOT_FOUND), **each(("reviewer_assigned", "auditor"), NOT_FOUND),
          ), "PUT", api_json({"gpu_model": "h100", "gpu_count": 1024,
                              "data_budget_krw": 2_000_000_000, "talent_headcount": 30},
                             method="PUT"), hidden_id="alpha_submission", during_call=True),
    Route("api.submit", "/api/v1/submissions/{alpha_submission}/submit", row(
        SEEN, owner=Cell(201, changes=("submissions", "submission_events", "receipts")),
        **each(STRANGERS, NOT_FOUND),
    ), "POST", api_json({}), hidden_id="alpha_submission", during_call=True),
    Route("api.score_sheet", "/api/v1/submissions/{alpha_submission}/stages/written/sheet", row(
        NOT_FOUND,
        reviewer_assigned=Cell(200, shows=("{alpha_submission}",), hides=(*PARTNERS, *CONTENT)),
        **each(("owner", "officer", "officer_granted", "auditor"), SEEN),
    ), hidden_id="alpha_submission"),
    # The assigned reviewer replaces their draft with a complete one, then submits it.
    Route("api.put_score_sheet", "/api/v1/submissions/{alpha_submission}/stages/written/sheet",
          row(NOT_FOUND, reviewer_assigned=Cell(200, changes=("score_sheets",)),
              **each(("owner", "officer", "officer_granted", "auditor"), SEEN)),
          "PUT", api_json({"scores": dict.fromkeys(
              ("capability", "experience", "strategy", "excellence", "impact", "open_source"),
              66)}, method="PUT"), hidden_id="alpha_submission"),
    Route("api.submit_score_sheet",
          "/api/v1/submissions/{alpha_submission}/stages/written/sheet/submit",
          row(NOT_FOUND, reviewer_assigned=Cell(200, changes=("score_sheets",)),
              **each(("owner", "officer", "officer_granted", "auditor"), SEEN)),
          "POST", api_json({}), hidden_id="alpha_submission"),
    Route("api.nda_accept", "/api/v1/nda/accept", row(
        FORBIDDEN, **each(MFA_REVIEWERS, Cell(201, changes=("acceptances",))),
    ), "POST", api_json({"sha256": "{nda_sha256}", "typed_name": "Test reviewer"})),
    # Stage rounds (officers without a conflict in the programme) and an applicant's own
    # outcomes. The officer closes an empty stage; the other steps are refused by the rounds'
    # states.
    Route("api.stage_rounds", "/api/v1/programmes/{code}/stages", row(
        FORBIDDEN, officer=Cell(200, hides=(*PARTNERS, *CONTENT)))),
    Route("api.stage_round", "/api/v1/programmes/{code}/stages/written", row(
        FORBIDDEN, officer=Cell(200, hides=(*PARTNERS, *CONTENT)))),
    Route("api.stage_ranking", "/api/v1/programmes/{code}/stages/written/ranking", row(
        FORBIDDEN, officer=Cell(200, shows=("{alpha_submission}",),
                                hides=(*PARTNERS, *CONTENT)))),
    Route("api.stage_import", "/api/v1/programmes/{code}/stages/stage_1/imports/benchmark",
          row(FORBIDDEN, officer=refused(415)), "POST", api_json({})),
    Route("api.stage_close", "/api/v1/programmes/{code}/stages/presentation/close",
          row(FORBIDDEN, officer=Cell(200, changes=("stage_rounds",))), "POST", api_json({})),
    Route("api.stage_reopen", "/api/v1/programmes/{code}/stages/written/reopen",
          row(FORBIDDEN, officer=refused(409)), "POST", api_json({"reason": "insecure test"})),
    *(Route(f"api.stage_{step}", f"/api/v1/programmes/{{code}}/stages/written/{step}",
            row(FORBIDDEN, officer=refused(409)), "POST", api_json({}))
      for step in ("confirm", "publish")),
    Route("api.submission_outcomes", "/api/v1/submissions/{alpha_submission}/outcomes", row(
        NOT_FOUND, owner=Cell(200, shows=("{alpha_submission}",), hides=(*PARTNERS, *CONTENT)),
        **each(("reviewer_assigned", "officer", "officer_granted", "auditor"), SEEN),
    ), hidden_id="alpha_submission"),
)


READS = tuple(route for route in API_ROUTES if route.method == "GET")
WRITES = tuple(route for route in API_ROUTES if route.method != "GET")


@pytest.fixture(scope="module")
def world(template_database, tmp_path_factory) -> Iterator[World]:
    """The matrix's world, shared by this module's cells."""
    with open_world(template_database, tmp_path_factory.mktemp("access-api")) as built:
        yield built


@pytest.mark.parametrize(("route", "persona"), params(READS))
def test_api_answers_each_persona_as_the_policies_say(world, route, persona):
    check(world, route, persona)


@pytest.mark.parametrize(("route", "persona"), params(WRITES, allowed=False))
def test_refused_api_change_is_refused_and_stores_nothing(world, route, persona):
    check(world, route, persona)


# Last in the module: these change the world (never in a way another cell looks at).
@pytest.mark.parametrize(("route", "persona"), params(WRITES, allowed=True))
def test_allowed_api_change_is_not_refused(world, route, persona):
    check(world, route, persona)
