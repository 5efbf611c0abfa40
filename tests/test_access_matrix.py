"""The HTTP access matrix of the pages: each protected page and form answers each persona (see
``tests/access_world.py``) with the expected status, and shows nothing it must not.

Reads come first; then the refused writes, which must change nothing; then the allowed writes,
which must change what they say and nothing another cell looks at. A test walks the URL map, so
that no route is added without a decision here, in ``tests/test_access_matrix_api.py`` or in the
list of routes without per-object policy.

Known wrong answers are strict expected failures whose reason says what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.access_world import (
    ALPHA,
    ALPHA_FILE,
    ALPHA_MATERIAL,
    ALPHA_PARTNER,
    BETA,
    CONTENT,
    FORBIDDEN,
    MFA_REVIEWERS,
    NOT_FOUND,
    OFFICERS,
    PARTNERS,
    PERSONAS,
    REVIEWERS,
    STRANGERS,
    Cell,
    Route,
    World,
    check,
    each,
    form,
    open_world,
    params,
    refused,
    row,
    without,
)
from tests.test_access_matrix_api import API_ROUTES
from vault.web.security import PUBLIC_ENDPOINTS

# -- cells that recur ----------------------------------------------------------------------

#: Alpha's submission or document page, read by someone who may read the partner list.
FULL = Cell(200, shows=(ALPHA, ALPHA_PARTNER, ALPHA_FILE), hides=CONTENT)
#: Alpha's document pages: metadata with the file name, never content or partners.
DOCUMENT = Cell(200, shows=(ALPHA_FILE,), hides=(*PARTNERS, *CONTENT))
#: A page about the programme, not about Alpha.
NEUTRAL = Cell(200, hides=(*PARTNERS, ALPHA_FILE, *CONTENT))
#: A page or listing that must not name Alpha.
WITHOUT_ALPHA = Cell(200, hides=("{alpha_submission}", *ALPHA_MATERIAL))

#: Refused to someone who may know the object exists.
SEEN = refused(403)

#: What only those who may see Alpha's panel should see.
PANEL = ("{reviewer_assigned_email}", ALPHA_FILE)
PROGRAMME_LINK = 'href="/programmes/{code}"'

OFFICERS_ONLY = row(FORBIDDEN, **each(OFFICERS, NEUTRAL))
EVALUATORS_ONLY = row(FORBIDDEN, **each(REVIEWERS + OFFICERS, NEUTRAL))


READS = (
    Route("home.index", "/", row(
        NEUTRAL,
        owner=Cell(200, shows=(ALPHA, ALPHA_PARTNER), hides=CONTENT),
        other_applicant=WITHOUT_ALPHA,
        # Reviewers see the consortium each assignment is for, never more.
        reviewer_unassigned=WITHOUT_ALPHA,
        auditor=Cell(302, hides=ALPHA_MATERIAL),
        admin=WITHOUT_ALPHA,
    )),
    Route("documents.submissions_page", "/submissions", row(
        WITHOUT_ALPHA,
        owner=Cell(200, shows=(ALPHA,), hides=(*PARTNERS, *CONTENT)),
        reviewer_assigned=Cell(200, shows=(ALPHA,), hides=(*PARTNERS, *CONTENT)),
        **each(("officer", "officer_granted", "auditor"),
               Cell(200, shows=(ALPHA, BETA), hides=(*PARTNERS, *CONTENT))),
        officer_conflicted=Cell(200, shows=(BETA,), hides=WITHOUT_ALPHA.hides),
    )),
    Route("documents.submission_page", "/submissions/{alpha_submission}", row(
        NOT_FOUND,
        **each(("owner", "reviewer_assigned", "officer", "officer_granted"), FULL),
        auditor=Cell(200, shows=(ALPHA, ALPHA_FILE), hides=(*PARTNERS, *CONTENT)),
    ), hidden_id="alpha_submission"),
    Route("documents.document_page", "/documents/{alpha_document}", row(
        NOT_FOUND, **each(("owner", "reviewer_assigned", "officer", "officer_granted",
                           "auditor"), DOCUMENT),
    ), hidden_id="alpha_document"),
    Route("documents.download", "/documents/{alpha_document}/content", row(
        NOT_FOUND,
        owner=Cell(200, copy="original"),
        **each(("reviewer_assigned", "officer", "officer_granted"), Cell(200, copy="stamped")),
        auditor=refused(404),
    ), hidden_id="alpha_document"),
    Route("watermarks.view", "/documents/{alpha_document}/view", row(
        NOT_FOUND,
        **each(("owner", "reviewer_assigned", "officer", "officer_granted"), DOCUMENT),
        auditor=refused(404),
    ), hidden_id="alpha_document"),
    Route("programmes.index", "/programmes/", row(
        Cell(200, shows=(PROGRAMME_LINK,), hides=ALPHA_MATERIAL),
        **each(("owner", "other_applicant"),
               Cell(200, shows=(PROGRAMME_LINK,), hides=ALPHA_MATERIAL)),
        admin=Cell(200, hides=(PROGRAMME_LINK, *ALPHA_MATERIAL)),
    )),
    Route("programmes.show", "/programmes/{code}", row(
        NEUTRAL,
        # The tools name the applicant's own consortium (its resource request), no other.
        owner=Cell(200, shows=(ALPHA,), hides=(*PARTNERS, ALPHA_FILE, *CONTENT)),
        other_applicant=Cell(200, hides=ALPHA_MATERIAL),
        admin=refused(404),
    )),
    Route("nda.show", "/nda/{code}", EVALUATORS_ONLY),
    Route("nda.report", "/nda/{code}/report", OFFICERS_ONLY),
    Route("nda.report_csv", "/nda/{code}/report.csv", OFFICERS_ONLY),
    Route("conflicts.declare_form", "/conflicts/{code}/declare", EVALUATORS_ONLY),
    Route("conflicts.declarations", "/conflicts/{code}/declarations", EVALUATORS_ONLY),
    Route("conflicts.challenge_form", "/conflicts/submissions/{alpha_submission}/challenge",
          row(NOT_FOUND, owner=Cell(200, shows=(ALPHA,)),
              # They may know the submission exists, but challenging is the applicants' right.
              **each(("reviewer_assigned", "officer", "officer_granted", "auditor"),
                     refused(404))),
          hidden_id="alpha_submission"),
    Route("conflicts.manage", "/conflicts/{code}", row(
        FORBIDDEN,
        **each(("officer", "officer_granted"), Cell(200, shows=(ALPHA, ALPHA_PARTNER))),
        officer_conflicted=Cell(200, hides=PARTNERS),
    )),
    Route("assignments.index", "/assignments/", OFFICERS_ONLY),
    Route("assignments.panel", "/assignments/{code}", row(
        FORBIDDEN,
        **each(("officer", "officer_granted"), Cell(200, shows=(ALPHA, "{alpha_submission}"),
                                                    hides=(*PARTNERS, *CONTENT))),
        officer_conflicted=Cell(200, shows=(BETA,), hides=WITHOUT_ALPHA.hides),
    )),
    Route("grants.index", "/dual-control/", OFFICERS_ONLY),
    Route("watermarks.lookup", "/watermarks/lookup?code={watermark}", row(
        FORBIDDEN,
        **each(("officer", "officer_granted"), Cell(200, shows=PANEL, hides=(*PARTNERS,
                                                                              *CONTENT))),
        officer_conflicted=Cell(200, hides=PANEL),
    )),
    Route("screening.overview", "/screening/{code}", row(
        FORBIDDEN,
        **each(("officer", "officer_granted"), Cell(200, shows=(ALPHA, BETA), hides=(
            *PARTNERS, *CONTENT))),
        officer_conflicted=Cell(200, shows=(BETA,), hides=WITHOUT_ALPHA.hides),
    )),
    Route("screening.overview_csv", "/screening/{code}/overview.csv", row(
        FORBIDDEN,
        **each(("officer", "officer_granted"), Cell(200, shows=(ALPHA, BETA), hides=(
            *PARTNERS, *CONTENT))),
        officer_conflicted=Cell(200, shows=(BETA,), hides=WITHOUT_ALPHA.hides),
    )),
    Route("screening.submission_report", "/screening/submissions/{alpha_submission}", row(
        NOT_FOUND,
        **each(("officer", "officer_granted"), Cell(200, shows=(ALPHA,), hides=CONTENT)),
        # They may see the submission, not its screening.
        **each(("owner", "reviewer_assigned", "auditor"), SEEN),
    ), hidden_id="alpha_submission"),
    Route("screening.receipt", "/submissions/{alpha_submission}/receipts/{alpha_receipt}", row(
        NOT_FOUND,
        **each(("owner", "officer", "officer_granted"), Cell(200, shows=(ALPHA_FILE,),
                                                             hides=(*PARTNERS, *CONTENT))),
        **each(("reviewer_assigned", "auditor"), SEEN),
    ), hidden_id="alpha_submission"),
    Route("resources.edit", "/submissions/{alpha_submission}/resources", row(
        NOT_FOUND,
        **each(("owner", "officer", "officer_granted"), Cell(200, shows=(ALPHA,),
                                                             hides=(*PARTNERS, *CONTENT))),
    ), hidden_id="alpha_submission"),
    Route("resources.totals", "/resources/{code}", row(
        FORBIDDEN,
        **each(("officer", "officer_granted"), Cell(200, shows=(ALPHA, BETA),
                                                    hides=(*PARTNERS, *CONTENT))),
        officer_conflicted=Cell(200, shows=(BETA,), hides=WITHOUT_ALPHA.hides),
    )),
    Route("resources.totals_csv", "/resources/{code}/totals.csv", row(
        FORBIDDEN,
        **each(("officer", "officer_granted"), Cell(200, shows=(ALPHA, BETA),
                                                    hides=(*PARTNERS, *CONTENT))),
        officer_conflicted=Cell(200, shows=(BETA,), hides=WITHOUT_ALPHA.hides),
    )),
    Route("evaluation.index", "/evaluation/", EVALUATORS_ONLY),
    Route("evaluation.overview", "/evaluation/{code}", row(
        FORBIDDEN,
        # A reviewer sees the consortia of their own assignments (as on their home page).
        **each(without(REVIEWERS, "reviewer_unassigned"),
               Cell(200, shows=(ALPHA,), hides=(*PARTNERS, ALPHA_FILE, *CONTENT))),
        **each(("reviewer_unassigned", *OFFICERS), WITHOUT_ALPHA),
    )),
    Route("evaluation.stage_sheets", "/evaluation/{code}/written/sheets", row(
        FORBIDDEN,
        officer=Cell(200, shows=(ALPHA,), hides=(*PARTNERS, ALPHA_FILE, *CONTENT)),
        # Score sheets of a conflicted consortium stay hidden, even under dual control.
        **each(("officer_conflicted", "officer_granted"), WITHOUT_ALPHA),
    )),
    Route("evaluation.sheet_form", "/evaluation/submissions/{alpha_submission}/written/sheet",
          row(NOT_FOUND,
              reviewer_assigned=Cell(200, shows=(ALPHA, "Technological capability"),
                                     hides=(*PARTNERS, ALPHA_FILE, *CONTENT)),
              **each(("owner", "officer", "officer_granted", "auditor"), SEEN)),
          hidden_id="alpha_submission"),
    Route("evaluation.sheet_page", "/evaluation/sheets/{alpha_sheet}", row(
        NOT_FOUND,
        officer=Cell(200, shows=(ALPHA, "Technological capability"),
                     hides=(*PARTNERS, ALPHA_FILE, *CONTENT)),
        **each(("owner", "reviewer_assigned", "officer_granted", "auditor"), SEEN),
    ), hidden_id="alpha_sheet"),
    # Stage rounds: officers without a conflict in the programme only (the ranking shows every
    # consortium); an applicant reads their own submission's published outcomes.
    Route("stages.index", "/stages/", row(FORBIDDEN, officer=NEUTRAL)),
    Route("stages.dashboard", "/stages/{code}", row(FORBIDDEN, officer=NEUTRAL)),
    Route("stages.round_page", "/stages/{code}/written", row(
        FORBIDDEN, officer=Cell(200, shows=(ALPHA,), hides=(*PARTNERS, ALPHA_FILE, *CONTENT)))),
    Route("stages.import_template", "/stages/{code}/stage_1/imports/benchmark/template.csv",
          row(FORBIDDEN, officer=NEUTRAL)),
    # Not confirmed yet: allowed, and refused by the round's state.
    Route("stages.export_csv", "/stages/{code}/written/export.csv",
          row(FORBIDDEN, officer=refused(409))),
    Route("stages.export_json", "/stages/{code}/written/export.json",
          row(FORBIDDEN, officer=refused(409))),
    Route("stages.outcomes", "/submissions/{alpha_submission}/outcomes", row(
        NOT_FOUND, owner=Cell(200, shows=(ALPHA,), hides=(*PARTNERS, *CONTENT)),
        **each(("reviewer_assigned", "officer", "officer_granted", "auditor"), SEEN),
    ), hidden_id="alpha_submission"),
    Route("audit.events", "/audit/", row(
        FORBIDDEN, auditor=Cell(200, hides=(*PARTNERS, ALPHA_FILE, *CONTENT)))),
    Route("audit.export", "/audit/export", row(FORBIDDEN, auditor=Cell(200))),
    Route("audit.document_access", "/audit/documents/{alpha_document}", row(
        FORBIDDEN,
        **each(("officer", "officer_granted", "auditor"),
               Cell(200, shows=(ALPHA, "{reviewer_assigned_email}"), hides=(*PARTNERS,
                                                                             *CONTENT))),
        **each(without(STRANGERS, "officer_conflicted"), refused(404, hidden=True)),
        officer_conflicted=Cell(404, hides=("{reviewer_assigned_email}", *ALPHA_MATERIAL)),
    ), hidden_id="alpha_document"),
)


# -- writes --------------------------------------------------------------------------------

def _for(persona: str, choices: dict[str, str], default: str) -> str:
    return choices.get(persona, default)


def _own(template: str, key: str):
    """A path to the persona's own object (officers) or the first officer's (everyone else)."""
    def build(world: World, persona: str) -> str:
        mine = persona if persona in OFFICERS else "officer"
        return world.fill(template.replace("{own}", "{" + f"{key}_{mine}" + "}"))
    return build


#: A change to Alpha's submission, refused to someone who may see it (``SEEN``, 403) or to a
#: stranger (404, exactly as for a submission that does not exist).
ON_ALPHA = each(STRANGERS, NOT_FOUND)


def _officers(cell: Cell, **others: Cell) -> dict[str, Cell]:
    """Officers get ``cell`` unless named; everyone else is refused."""
    return row(FORBIDDEN, **{**each(OFFICERS, cell), **others})


WRITES = (
    Route("documents.add_partner", "/submissions/{alpha_submission}/partners", row(
        SEEN, owner=Cell(302, changes=("members",)), **ON_ALPHA,
    ), "POST", form(lambda w, p: {"name": "Gamma Lab", "kind": "university",
                                  "role": "partner", "contribution": "evaluation data"}),
        hidden_id="alpha_submission", during_call=True),
    Route("documents.remove_partner",
          "/submissions/{alpha_submission}/partners/{alpha_spare_partner}/remove", row(
              SEEN, owner=Cell(302, changes=("members",)), **ON_ALPHA,
          ), "POST", form(lambda w, p: {}), hidden_id="alpha_submission", during_call=True),
    Route("conflicts.declare", "/conflicts/{code}/declare", row(
        FORBIDDEN,
        # An organisation no consortium lists: recorded, yet nothing is stored.
        **each(without(REVIEWERS + OFFICERS, "reviewer_unassigned"), Cell(302)),
        reviewer_unassigned=Cell(302, changes=("conflicts",)),
    ), "POST", form(lambda w, p: {
        "kind": "other", "description": "insecure test: a former employer",
        **({"consortium": "{beta_consortium}"} if p == "reviewer_unassigned"
           else {"organization": "Nowhere Organisation"})})),
    Route("conflicts.challenge", "/conflicts/submissions/{alpha_submission}/challenge", row(
        NOT_FOUND, owner=Cell(302, changes=("conflicts",)),
        **each(("reviewer_assigned", "officer", "officer_granted", "auditor"), refused(404)),
    ), "POST", form(lambda w, p: {"person": "{detected_email}", "reason": "insecure test"}),
        hidden_id="alpha_submission"),
    Route("conflicts.decide", "/conflicts/{detected_conflict}/decide", row(
        NOT_FOUND, officer=Cell(302, changes=("conflicts",)),
        # May manage conflicts, but never decide one about their own conflicted consortium.
        **each(("officer_conflicted", "officer_granted"), FORBIDDEN),
    ), "POST", form(lambda w, p: {"decision": "confirm", "reason": "insecure test"}),
        hidden_id="detected_conflict"),
    Route("conflicts.detect", "/conflicts/{code}/detect", _officers(Cell(302)), "POST",
          form(lambda w, p: {})),
    Route("conflicts.record_sanction", "/conflicts/{code}/sanctions",
          _officers(Cell(302, changes=("sanctions",))), "POST",
          form(lambda w, p: {"user": "{detected_id}", "imposed_on": "2026-06-01",
                             "reason": "insecure test"})),
    Route("conflicts.add_affiliation", "/conflicts/{code}/affiliations",
          _officers(Cell(302, changes=("affiliations",))), "POST",
          form(lambda w, p: {"user": "{detected_id}", "kind": "company",
                             "organization": f"Unrelated Organisation {p}"})),
    Route("assignments.add", "/assignments/{code}/add", _officers(
        Cell(302, changes=("assignments",)), officer_conflicted=refused(404),
    ), "POST", form(lambda w, p: {
        "stage": _for(p, {"officer_granted": "presentation"}, "written"),
        "reviewer": "{reviewer_unassigned_id}", "submission": "{alpha_submission}"})),
    Route("assignments.bulk", "/assignments/{code}/bulk", _officers(
        Cell(200, changes=("assignments",)), officer_conflicted=refused(404),
    ), "POST", form(lambda w, p: {
        "stage": _for(p, {"officer_granted": "stage_2"}, "stage_1"),
        "reviewers": "{reviewer_unassigned_id}", "submissions": "{alpha_submission}"})),
    Route("assignments.remove", _own("/assignments/{code}/{own}/remove", "assignment"),
          _officers(Cell(302, changes=("assignments",)), officer_conflicted=refused(404)),
          "POST", form(lambda w, p: {})),
    Route("grants.request_grant", "/dual-control/request", row(
        refused(404),
        officer_conflicted=Cell(302, changes=("grants",)),
        # Already holds an approved grant for Alpha.
        officer_granted=Cell(409),
    ), "POST", form(lambda w, p: {"consortium": "{alpha_consortium}",
                                  "reason": "insecure test"})),
    Route("grants.approve", _own("/dual-control/{own}/approve", "beta_pending_grant"),
          _officers(Cell(302, changes=("grants",))), "POST", form(lambda w, p: {}),
          variant="beta"),
    Route("grants.approve", "/dual-control/{alpha_pending_grant}/approve", _officers(
        Cell(302, changes=("grants",)),
        # Dual control: an officer conflicted with Alpha never approves a request about it.
        **each(("officer_conflicted", "officer_granted"), FORBIDDEN),
    ), "POST", form(lambda w, p: {}), variant="alpha"),
    Route("grants.revoke", _own("/dual-control/{own}/revoke", "beta_active_grant"),
          _officers(Cell(302, changes=("grants",))), "POST", form(lambda w, p: {})),
    Route("nda.accept", "/nda/{code}", row(
        FORBIDDEN, **each(MFA_REVIEWERS, Cell(302, changes=("acceptances",))),
    ), "POST", form(lambda w, p: {"typed_name": "Test reviewer", "sha256": "{nda_sha256}",
                                  "confirm": "y"})),
    Route("audit.check", "/audit/check", row(
        FORBIDDEN, auditor=Cell(302, changes=("verifications",))), "POST",
        form(lambda w, p: {})),
    Route("watermarks.lookup", "/watermarks/lookup", row(
        FORBIDDEN, **each(("officer", "officer_granted"), Cell(200, shows=PANEL)),
        officer_conflicted=Cell(200, hides=PANEL),
    ), "POST", form(lambda w, p: {"code": "{watermark}"})),
    Route("resources.save", "/submissions/{alpha_submission}/resources", row(
        SEEN, owner=Cell(302, changes=("resource_requests",)), **ON_ALPHA,
        # Reading the request is not theirs either: as for a submission that does not exist.
        **each(("reviewer_assigned", "auditor"), NOT_FOUND),
    ), "POST", form(lambda w, p: {"gpu_model": "b200", "gpu_count": "512",
                                  "data_budget_krw": "1,000,000,000",
                                  "talent_headcount": "20"}),
        hidden_id="alpha_submission", during_call=True),
    # The assigned reviewer saves their draft, then submits it; an officer reopens another
    # panelist's submitted sheet.
    Route("evaluation.save_sheet", "/evaluation/submissions/{alpha_submission}/written/sheet",
          row(NOT_FOUND, reviewer_assigned=Cell(302, changes=("score_sheets",)),
              **each(("owner", "officer", "officer_granted", "auditor"), SEEN)),
          "POST", form(lambda w, p: {"action": "save", "score-capability": "60"}),
          hidden_id="alpha_submission"),
    Route("evaluation.save_sheet", "/evaluation/submissions/{alpha_submission}/written/sheet",
          row(NOT_FOUND, reviewer_assigned=Cell(302, changes=("score_sheets",)),
              **each(("owner", "officer", "officer_granted", "auditor"), SEEN)),
          "POST", form(lambda w, p: {"action": "submit", "confirm": "y", **{
              f"score-{criterion}": "65" for criterion in (
                  "capability", "experience", "strategy", "excellence", "impact",
                  "open_source")}}),
          hidden_id="alpha_submission", variant="submit"),
    Route("evaluation.reopen", "/evaluation/sheets/{alpha_sheet}/reopen", row(
        NOT_FOUND, officer=Cell(302, changes=("score_sheets", "sheet_revisions")),
        **each(("owner", "reviewer_assigned", "officer_granted", "auditor"), SEEN),
    ), "POST", form(lambda w, p: {"reason": "insecure test: impact contradicts the comment",
                                  "confirm": "y"}), hidden_id="alpha_sheet"),
    Route("screening.run", "/screening/{code}/run", _officers(
        Cell(302, changes=("screening_runs",))), "POST", form(lambda w, p: {})),
    Route("screening.advance", "/screening/{code}/advance", _officers(Cell(302)), "POST",
          form(lambda w, p: {})),
    Route("screening.decide", "/screening/submissions/{alpha_submission}/decide", row(
        NOT_FOUND,
        # A draft cannot be decided: allowed, and refused by the workflow (flashed).
        officer=Cell(302),
        # Dual control opens reading, never the decision.
        officer_granted=SEEN,
        **each(("owner", "reviewer_assigned", "auditor"), SEEN),
    ), "POST", form(lambda w, p: {"outcome": "eligible", "reason": "insecure test"}),
        hidden_id="alpha_submission"),
    Route("screening.submit", "/submissions/{alpha_submission}/submit", row(
        SEEN, owner=Cell(302, changes=("submissions", "submission_events", "receipts")),
        **ON_ALPHA,
    ), "POST", form(lambda w, p: {"confirm": "y"}), hidden_id="alpha_submission",
        during_call=True),
    Route("screening.recall", "/submissions/{alpha_submission}/recall", row(
        SEEN, owner=Cell(302, changes=("submissions", "submission_events")), **ON_ALPHA,
    ), "POST", form(lambda w, p: {}), hidden_id="alpha_submission", during_call=True),
    # Stage rounds: every allowed request is refused by the round's state or its form (nothing
    # changes); none is an officer's with a conflict in the programme.
    Route("stages.close", "/stages/{code}/presentation/close",
          row(FORBIDDEN, officer=Cell(422, hides=(*PARTNERS, *CONTENT))), "POST",
          form(lambda w, p: {})),
    Route("stages.reopen", "/stages/{code}/presentation/reopen",
          row(FORBIDDEN, officer=Cell(409, hides=(*PARTNERS, *CONTENT))), "POST",
          form(lambda w, p: {"reason": "insecure test"})),
    *(Route(f"stages.{step}", f"/stages/{{code}}/presentation/{step}",
            row(FORBIDDEN, officer=Cell(409, hides=(*PARTNERS, *CONTENT))), "POST",
            form(lambda w, p: {"confirm": "y"})) for step in ("confirm", "publish")),
    Route("stages.import_component", "/stages/{code}/stage_1/imports/benchmark",
          row(FORBIDDEN, officer=Cell(422, hides=(*PARTNERS, *CONTENT))), "POST",
          form(lambda w, p: {"data": "submission_id,score\nnot-an-id,50\n"})),
    Route("stages.disqualify", "/stages/{code}/written/disqualify",
          row(FORBIDDEN, officer=Cell(422, hides=(*PARTNERS, *CONTENT))), "POST",
          form(lambda w, p: {"submission": "{alpha_submission}", "rule": "from_scratch",
                             "reason": "insecure test"})),
    Route("stages.lift", "/stages/{code}/written/disqualifications/{alpha_submission}/lift",
          row(FORBIDDEN, officer=Cell(409, hides=(*PARTNERS, *CONTENT))), "POST",
          form(lambda w, p: {"reason": "insecure test"})),
    Route("stages.enter_candidate", "/stages/{code}/additional_call/candidates",
          row(FORBIDDEN, officer=Cell(409, hides=(*PARTNERS, *CONTENT))), "POST",
          form(lambda w, p: {"submission": "{alpha_submission}"})),
    # Last: a withdrawal is final.
    Route("screening.withdraw", "/submissions/{alpha_submission}/withdraw", row(
        SEEN, owner=Cell(302, changes=("submissions", "submission_events")), **ON_ALPHA,
    ), "POST", form(lambda w, p: {"reason": "insecure test", "confirm": "y"}),
        hidden_id="alpha_submission"),
)

#: Routes without per-object policy, each with the reason.
UNPROTECTED = {
    "static": "stylesheets and scripts, public",
    "auth.login": "sign-in (public)",
    "auth.second_factor": "sign-in: the second factor (public)",
    "auth.enrol": "sign-in: first TOTP enrolment (public)",
    "auth.skip_enrolment": "sign-in: demo accounts skip enrolment (public)",
    "auth.cancel": "sign-in: abandon a pending sign-in (public)",
    "auth.logout": "ends the caller's own session",
    "i18n.set_language": "the language cookie (public)",
    "health.healthz": "liveness for load balancers (public, no data)",
    "api.health": "liveness of the API (public, no data)",
    "api.openapi": "the API's description (public, no data)",
    "account.index": "the caller's own account page",
    "account.enrol_mfa": "the caller's own second factor",
    "account.change_password": "the caller's own password",
    "account.regenerate_codes": "the caller's own recovery codes",
    "account.reauthenticate": "the caller's own password and code, confirmed again",
    "account.create_token": "the caller's own API tokens (after a recent re-authentication)",
    "account.revoke_token": "the caller's own API tokens (another's token id answers 404)",
}


@pytest.fixture(scope="module")
def world(template_database, tmp_path_factory) -> Iterator[World]:
    """The matrix's world, shared by this module's cells."""
    with open_world(template_database, tmp_path_factory.mktemp("access-pages")) as built:
        yield built


def test_every_route_is_in_the_matrix_or_declared_unprotected(world):
    covered = {(r.endpoint, r.method) for r in (*READS, *WRITES, *API_ROUTES)}
    missing = []
    for rule in world.app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (rule.endpoint, method) not in covered and rule.endpoint not in UNPROTECTED:
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not missing, "decide who may use: " + ", ".join(missing)
    assert set(UNPROTECTED) >= PUBLIC_ENDPOINTS
    stale = {endpoint for endpoint, _ in covered} | set(UNPROTECTED)
    assert stale <= {rule.endpoint for rule in world.app.url_map.iter_rules()}


def test_every_row_has_a_cell_for_every_persona():
    for route in (*READS, *WRITES, *API_ROUTES):
        assert set(route.cells) == set(PERSONAS), route.name


@pytest.mark.parametrize(("route", "persona"), params(READS))
def test_page_answers_each_persona_as_the_policies_say(world, route, persona):
    check(world, route, persona)


@pytest.mark.parametrize(("route", "persona"), params(WRITES, allowed=False))
def test_refused_change_is_refused_and_stores_nothing(world, route, persona):
    check(world, route, persona)


# Last in the module: these change the world (never in a way another cell looks at).
@pytest.mark.parametrize(("route", "persona"), params(WRITES, allowed=True))
def test_allowed_change_is_not_refused(world, route, persona):
    check(world, route, persona)
