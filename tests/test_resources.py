"""Resource requests in the service: sealed per field, validated against the programme's form,
refused once the submission no longer accepts changes, and summed for the budget deliberation."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from vault.crypto import DecryptionError
from vault.db import unit_of_work
from vault.documents.errors import SubmissionLocked, UploadClosed
from vault.documents.models import Submission, SubmissionState
from vault.programmes.rules import GpuModel, Range, ResourceForm
from vault.resources.errors import (
    MISSING,
    OUT_OF_RANGE,
    OVER_MODEL_LIMIT,
    TEMPLATES,
    UNKNOWN_MODEL,
    InvalidResourceRequest,
)
from vault.resources.models import ResourceRequest
from vault.resources.service import Problem, ResourceService, ResourceValues
from vault.web.i18n import catalogue

CODE = "sovereign-ai-2025"
#: Distinctive values, so that a search of the raw rows cannot match by accident.
GOOD = ResourceValues(gpu_model="h200", gpu_count=987, data_budget_krw=12_345_678_901,
                      talent_headcount=173)

FORM = ResourceForm(
    gpu_models=(GpuModel("b200", "NVIDIA B200", 1024), GpuModel("h100", "NVIDIA H100", 2048)),
    gpu_count=Range(0, 2048), data_budget_krw=Range(0, 30_000_000_000),
    talent_headcount=Range(0, 200))


@pytest.fixture
def form(runtime) -> ResourceForm:
    return runtime.definitions[CODE].resources


def _service(runtime, session) -> ResourceService:
    return ResourceService(session, cipher=runtime.cipher, documents=runtime.documents(session))


def _save(runtime, team, values, form, user_id=None) -> None:
    with unit_of_work(runtime.sessions) as session:
        _service(runtime, session).save(session.get(Submission, team.submission_id), values,
                                        form, user_id=user_id)


def _get(runtime, team) -> ResourceValues | None:
    with unit_of_work(runtime.sessions) as session:
        return _service(runtime, session).get(session.get(Submission, team.submission_id))


def _set_state(runtime, team, state) -> None:
    with unit_of_work(runtime.sessions) as session:
        session.get(Submission, team.submission_id).state = state


def test_a_saved_request_reads_back_and_records_who_and_when(runtime, make_team, form, clock):
    team = make_team()
    assert _get(runtime, team) is None
    _save(runtime, team, GOOD, form, user_id=team.applicant.id)
    assert _get(runtime, team) == GOOD
    with unit_of_work(runtime.sessions) as session:
        row = session.get(ResourceRequest, team.submission_id)
        assert row.updated_by_id == team.applicant.id and row.updated_at == clock()
    changed = replace(GOOD, gpu_model="b200", gpu_count=512)
    clock.advance(hours=1)
    _save(runtime, team, changed, form, user_id=team.applicant.id)
    assert _get(runtime, team) == changed


def test_the_stored_columns_hold_no_value_in_the_clear(runtime, make_team, form):
    team = make_team()
    _save(runtime, team, GOOD, form)
    with unit_of_work(runtime.sessions) as session:
        [raw] = session.execute(text(
            "SELECT gpu_model_sealed, gpu_count_sealed, data_budget_sealed, talent_sealed "
            "FROM resource_requests")).all()
    blob = b"".join(bytes(cell) for cell in raw)
    for plain in (b"h200", b"987", b"12345678901", b"173"):
        assert plain not in blob
    # Each field is sealed for its own column and row: swapped columns do not open.
    with unit_of_work(runtime.sessions) as session:
        row = session.get(ResourceRequest, team.submission_id)
        row.gpu_count_sealed, row.talent_sealed = row.talent_sealed, row.gpu_count_sealed
    with pytest.raises(DecryptionError):
        _get(runtime, team)


def test_a_value_copied_to_another_submission_does_not_open(runtime, make_team, form):
    alpha, beta = make_team("Team Alpha"), make_team("Team Beta")
    _save(runtime, alpha, GOOD, form)
    _save(runtime, beta, replace(GOOD, gpu_count=1), form)
    with unit_of_work(runtime.sessions) as session:
        source = session.get(ResourceRequest, alpha.submission_id)
        session.get(ResourceRequest, beta.submission_id).gpu_count_sealed = \
            source.gpu_count_sealed
    with pytest.raises(DecryptionError):
        _get(runtime, beta)


def test_valid_values_have_no_problems():
    assert ResourceService.problems(replace(GOOD, gpu_model="b200", gpu_count=1024), FORM) == []
    edges = ResourceValues("h100", 2048, 30_000_000_000, 200)
    assert ResourceService.problems(edges, FORM) == []
    assert ResourceService.problems(ResourceValues("b200", 0, 0, 0), FORM) == []


@pytest.mark.parametrize("field", ["gpu_model", "gpu_count", "data_budget_krw",
                                   "talent_headcount"])
def test_every_missing_field_is_a_problem(field):
    values = replace(ResourceValues("b200", 1, 1, 1), **{field: None})
    assert ResourceService.problems(values, FORM) == [Problem(field, MISSING[field])]


def test_an_empty_model_id_is_missing():
    values = ResourceValues("", 1, 1, 1)
    assert ResourceService.problems(values, FORM) == [Problem("gpu_model", MISSING["gpu_model"])]


@pytest.mark.parametrize(("field", "value", "minimum", "maximum"), [
    ("gpu_count", -1, 0, 2048),
    ("gpu_count", 2049, 0, 2048),
    ("data_budget_krw", 30_000_000_001, 0, 30_000_000_000),
    ("data_budget_krw", -5, 0, 30_000_000_000),
    ("talent_headcount", 201, 0, 200),
    ("talent_headcount", True, 0, 200),
])
def test_values_out_of_range_name_the_range(field, value, minimum, maximum):
    values = replace(ResourceValues("h100", 1, 1, 1), **{field: value})
    problems = ResourceService.problems(values, FORM)
    assert Problem(field, OUT_OF_RANGE[field], {"minimum": minimum, "maximum": maximum}) \
        in problems
    assert {problem.field for problem in problems} == {field}


def test_a_model_the_form_does_not_offer_is_a_problem():
    problems = ResourceService.problems(ResourceValues("a100", 8, 1, 1), FORM)
    assert problems == [Problem("gpu_model", UNKNOWN_MODEL,
                                {"model": "a100", "allowed": "b200, h100"})]
    assert problems[0].message() == ("The programme offers no GPU model a100; choose one of "
                                      "b200, h100.")


def test_more_gpus_than_the_model_allows_is_a_problem():
    problems = ResourceService.problems(ResourceValues("b200", 1025, 1, 1), FORM)
    assert problems == [Problem("gpu_count", OVER_MODEL_LIMIT,
                                {"maximum": 1024, "model": "NVIDIA B200"})]
    # Within the form's range and the H100's own limit: fine.
    assert ResourceService.problems(ResourceValues("h100", 1025, 1, 1), FORM) == []


def test_problems_come_in_field_order():
    values = ResourceValues(None, 5000, None, 999)
    assert [p.field for p in ResourceService.problems(values, FORM)] == [
        "gpu_model", "gpu_count", "data_budget_krw", "talent_headcount"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_problem_has_a_korean_message(template):
    korean = catalogue("ko").get(template)
    assert korean, template
    assert set(re.findall(r"\{(\w+)\}", template)) == set(re.findall(r"\{(\w+)\}", korean))


def test_invalid_values_are_refused_with_every_problem_and_nothing_changes(runtime, make_team,
                                                                           form):
    team = make_team()
    _save(runtime, team, GOOD, form)
    bad = ResourceValues("b200", 3000, -1, None)
    with pytest.raises(InvalidResourceRequest) as caught:
        _save(runtime, team, bad, form)
    assert caught.value.status == 400
    assert [p.field for p in caught.value.problems] == [
        "gpu_count", "gpu_count", "data_budget_krw", "talent_headcount"]
    assert str(caught.value) == "The GPU count must be from 0 to 2048."
    assert caught.value.problems[1].template == OVER_MODEL_LIMIT
    assert _get(runtime, team) == GOOD


@pytest.mark.parametrize("state", [SubmissionState.SUBMITTED, SubmissionState.SCREENING,
                                   SubmissionState.ELIGIBLE, SubmissionState.WITHDRAWN])
def test_a_submission_that_accepts_no_changes_refuses_the_save(runtime, make_team, form, state):
    team = make_team()
    _save(runtime, team, GOOD, form)
    _set_state(runtime, team, state)
    with pytest.raises(SubmissionLocked):
        _save(runtime, team, replace(GOOD, gpu_count=1), form)
    assert _get(runtime, team) == GOOD


def test_after_the_deadline_the_save_is_refused(runtime, make_team, form, clock):
    team = make_team()
    clock.now = runtime.definitions[CODE].submission_deadline + timedelta(seconds=1)
    with pytest.raises(UploadClosed) as caught:
        _save(runtime, team, GOOD, form)
    assert caught.value.status == 409
    assert _get(runtime, team) is None
    with unit_of_work(runtime.sessions) as session:
        assert session.scalars(select(ResourceRequest)).all() == []


def test_totals_sum_by_model_and_leave_out_withdrawn_and_ineligible(runtime, make_team, form):
    teams = {name: make_team(name) for name in ("Alpha", "Beta", "Gamma", "Delta", "Epsilon")}
    _save(runtime, teams["Alpha"], ResourceValues("b200", 512, 1_000_000_000, 20), form)
    _save(runtime, teams["Beta"], ResourceValues("b200", 256, 2_500_000_000, 5), form)
    _save(runtime, teams["Gamma"], ResourceValues("h100", 1024, 0, 12), form)
    _save(runtime, teams["Delta"], ResourceValues("h200", 64, 7, 1), form)
    _set_state(runtime, teams["Delta"], SubmissionState.WITHDRAWN)
    with unit_of_work(runtime.sessions) as session:
        service = _service(runtime, session)
        submissions = service.submissions(service.session.get(
            Submission, teams["Alpha"].submission_id).consortium.programme)
        assert [s.consortium.name for s in submissions] == [
            "Alpha", "Beta", "Delta", "Epsilon", "Gamma"]
        totals = service.totals(submissions)
        assert totals.gpus_by_model == {"b200": 768, "h100": 1024}
        assert totals.gpu_total == 1792
        assert totals.data_budget_krw == 3_500_000_000
        assert totals.talent_headcount == 37
        assert totals.requests == 3
        rows = {row.submission.consortium.name: row for row in totals.rows}
        assert rows["Epsilon"].values is None and rows["Epsilon"].counted
        assert rows["Delta"].values.gpu_count == 64 and not rows["Delta"].counted
        # Only the submissions given are summed (the caller passes those the reader may see).
        assert service.totals(submissions[:1]).gpus_by_model == {"b200": 512}
        assert service.totals([]).requests == 0


def test_the_csv_has_a_bom_one_row_per_submission_totals_and_no_formulas(runtime, make_team,
                                                                        form):
    sneaky = make_team("=HYPERLINK(\"http://evil.example\")")
    plain = make_team("Team Plain")
    _save(runtime, sneaky, ResourceValues("b200", 8, 100, 2), form)
    _save(runtime, plain, ResourceValues("h100", 16, 1_000, 3), form)
    with unit_of_work(runtime.sessions) as session:
        service = _service(runtime, session)
        submissions = [session.get(Submission, t.submission_id) for t in (sneaky, plain)]
        text_ = service.totals_csv(service.totals(submissions), form)
    assert text_.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text_[1:])))
    assert rows[0] == ["row", "consortium", "submission", "state", "counted", "gpu_model",
                       "gpu_count", "data_budget_krw", "talent_headcount"]
    assert rows[1][:2] == ["request", "'=HYPERLINK(\"http://evil.example\")"]
    assert rows[1][4:] == ["yes", "b200", "8", "100", "2"]
    assert rows[2][1] == "Team Plain" and rows[2][5:] == ["h100", "16", "1000", "3"]
    totals = [row for row in rows if row[0] == "total"]
    assert [row[5:7] for row in totals] == [["b200", "8"], ["h200", "0"], ["h100", "16"],
                                            ["", "24"]]
    assert totals[-1][7:] == ["1100", "5"]


def test_a_returned_submission_accepts_a_corrected_request_until_its_correction_deadline(
        runtime, make_team, form, clock):
    team = make_team()
    _save(runtime, team, GOOD, form)
    deadline = runtime.definitions[CODE].submission_deadline
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        submission.state = SubmissionState.RETURNED
        submission.correction_deadline = deadline + timedelta(days=7)
    clock.now = deadline + timedelta(days=1)
    corrected = replace(GOOD, gpu_count=1000)
    _save(runtime, team, corrected, form)
    assert _get(runtime, team) == corrected
    clock.now = deadline + timedelta(days=8)
    with pytest.raises(UploadClosed):
        _save(runtime, team, GOOD, form)
    assert _get(runtime, team) == corrected
