"""``vault screening run`` and ``vault screening report``: the operator screens a programme from
the command line and exports the report as CSV or JSON; both are decided by the policies and
audited, and an unknown programme is one clear line with exit status 2."""

from __future__ import annotations

import csv
import io
import json
import stat

from sqlalchemy import select

from tests.conftest import audit_events as events
from tests.screening_corpus import text_pdf
from tests.test_screening_corpus_findings import CASES, PARTNERS, PROGRAMME, build
from vault.cli import cli
from vault.db import unit_of_work
from vault.documents.models import Submission, SubmissionState
from vault.screening.report import REPORT_COLUMNS

COMPLETE, OVER_LIMIT = CASES[0], CASES[4]


def invoke(app, *args: str):
    return app.test_cli_runner().invoke(cli, list(args))


def states(runtime) -> set[SubmissionState]:
    with unit_of_work(runtime.sessions) as session:
        return {s.state for s in session.scalars(select(Submission))}


def test_run_screens_the_programme_and_prints_a_summary(app, runtime, make_team):
    build(runtime, make_team, COMPLETE, 0)
    build(runtime, make_team, OVER_LIMIT, 1)
    make_team("Still drafting")

    result = invoke(app, "screening", "run", "--programme", PROGRAMME, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert f"Screened 2 submissions of {PROGRAMME}" in result.output
    assert "1 failed checks in 1 submissions, 0 warnings" in result.output
    assert states(runtime) == {SubmissionState.SCREENING, SubmissionState.DRAFT}
    [ran] = events(runtime, "screening:ran")
    assert ran["target"]["programme"] == PROGRAMME
    assert ran["target"]["submissions"] == "2" and ran["target"]["fails"] == "1"
    decided = [e for e in events(runtime, "access:decided")
               if e["target"].get("action") == "screening:run"]
    assert decided and decided[-1]["decision"] == "allow"


def test_run_with_the_default_workers_and_nothing_to_screen(app, runtime, make_team):
    make_team("Still drafting")
    result = invoke(app, "screening", "run", "--programme", PROGRAMME)
    assert result.exit_code == 0, result.output
    assert "Screened 0 submissions" in result.output


def test_an_unknown_programme_is_one_line_and_exit_status_2(app, runtime, make_team):
    make_team("Team Alpha")
    for command in (("run",), ("report", "--format", "json")):
        result = invoke(app, "screening", *command, "--programme", "no-such-call")
        assert result.exit_code == 2
        assert "No programme no-such-call" in result.output
        assert "Traceback" not in result.output
    assert events(runtime, "screening:ran") == []
    assert events(runtime, "screening:report-exported") == []


def test_report_as_csv_has_one_row_per_submission_document_and_check(app, runtime, make_team):
    teams = [build(runtime, make_team, COMPLETE, 0), build(runtime, make_team, OVER_LIMIT, 1)]
    assert invoke(app, "screening", "run", "--programme", PROGRAMME).exit_code == 0
    result = invoke(app, "screening", "report", "--programme", PROGRAMME, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(result.output.removeprefix("\ufeff"))))
    assert tuple(rows[0]) == REPORT_COLUMNS
    assert {row["submission"] for row in rows} == {str(t.submission_id) for t in teams}
    pages = [row for row in rows if row["check"] == "pdf.pages" and row["kind"] == "proposal"]
    over = next(row for row in pages if row["result"] == "fail")
    assert over["evidence_en"] == "42 pages, limits 5–40"
    assert over["evidence_ko"] == "42쪽, 한도 5–40쪽"
    assert over["page_count"] == "42" and over["encrypted"] == "no"
    assert over["message_en"].startswith("Project proposal has 42 pages")
    assert over["filename"] == "proposal.pdf" and over["version"] == "1"
    letter = next(row for row in rows if row["kind"] == "letter_of_commitment"
                  and row["check"] == "document.present")
    assert letter["partner"] == "partner 1"
    assert letter["entry"] == str(teams[0].partner_ids[0])
    assert not any(name in result.output for name in PARTNERS)
    [exported] = events(runtime, "screening:report-exported")
    assert exported["target"]["format"] == "csv"
    assert exported["target"]["rows"] == str(len(rows))


def test_report_cells_that_a_spreadsheet_would_evaluate_are_quoted(app, runtime, make_team):
    team = make_team("Formula Team")
    with unit_of_work(runtime.sessions) as session:
        runtime.documents(session).upload(
            submission=session.get(Submission, team.submission_id),
            kind=runtime.definitions[PROGRAMME].document_kind("proposal"), slot="",
            filename="=HYPERLINK(1).pdf", declared_type="application/pdf",
            body=[text_pdf(6)], uploader_id=team.applicant.id)
    with unit_of_work(runtime.sessions) as session:
        session.get(Submission, team.submission_id).state = SubmissionState.SUBMITTED
    assert invoke(app, "screening", "run", "--programme", PROGRAMME).exit_code == 0
    output = invoke(app, "screening", "report", "--programme", PROGRAMME).output
    assert "'=HYPERLINK(1).pdf" in output
    assert ",=HYPERLINK" not in output


def test_report_as_json_to_a_private_file_before_any_run(app, runtime, make_team, tmp_path):
    team = build(runtime, make_team, COMPLETE, 0)
    target = tmp_path / "screening.json"
    result = invoke(app, "screening", "report", "--programme", PROGRAMME, "--format", "json",
                    "--output", str(target))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    data = json.loads(target.read_text("utf-8"))
    assert data["programme"] == PROGRAMME and data["columns"] == list(REPORT_COLUMNS)
    [row] = data["rows"]
    assert row["submission"] == str(team.submission_id) and row["result"] == "not screened"
    assert row["state"] == "submitted"


def test_report_fails_cleanly_when_the_file_cannot_be_written(app, runtime, make_team, tmp_path):
    make_team("Team Alpha")
    result = invoke(app, "screening", "report", "--programme", PROGRAMME,
                    "--output", str(tmp_path / "missing" / "report.csv"))
    assert result.exit_code == 2
    assert "Cannot write" in result.output
    assert events(runtime, "screening:report-exported") == []

