"""The officers' screening pages: the programme overview, its CSV export, the run button and a
submission's report.

Handlers: parse → load → authorize → one service call → render. The overview lists only the
submissions the officer may see (``screening:view``: a conflicted officer's consortia are hidden
unless a second officer approved access), and the export holds the same rows. The report of a
submission shows the latest run's findings grouped by document (the live pre-check when no run
screened it yet), its state history, and the decision form for officers who may decide.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from flask import Response, abort, flash, redirect, render_template, request, url_for

from vault.audit.service import Tag
from vault.display import KST
from vault.documents.errors import DocumentShredded
from vault.documents.models import SubmissionState
from vault.policy.actions import Action
from vault.programmes.definition import ProgrammeDefinition
from vault.programmes.models import Programme
from vault.screening import report
from vault.screening.checks import Finding
from vault.screening.errors import ScreeningError
from vault.screening.models import CheckResult
from vault.screening.service import ScreeningService
from vault.screening.workflow import SubmissionWorkflow
from vault.web.context import (
    actor,
    allowed,
    audit,
    authorize,
    authorizer,
    commit_so_far,
    db,
    rollback_request,
    runtime,
)
from vault.web.forms import EmptyForm
from vault.web.i18n import current_locale
from vault.web.i18n import gettext as _
from vault.web.loaders import load_programme, load_submission
from vault.web.screening import bp, precheck

#: Values of the overview's ``result`` filter.
RESULTS = ("fail", "warning", "pass")
#: States in which an officer's decision can be taken (the workflow checks the details).
DECIDABLE = frozenset({SubmissionState.SCREENING, SubmissionState.RESUBMITTED,
                       SubmissionState.RETURNED})
_MAX_QUERY = 100


@dataclass(frozen=True)
class Filters:
    """The overview's filters (empty: no filter)."""

    result: str = ""
    state: str = ""
    q: str = ""

    def keep(self, row: report.OverviewRow) -> bool:
        """Whether the overview row passes the filters."""
        if self.result and (row.result is None or row.result.value != self.result):
            return False
        if self.state and row.state.value != self.state:
            return False
        return not self.q or self.q.casefold() in row.consortium.casefold()

    def args(self) -> dict[str, str]:
        """The filters as query arguments (for the export link)."""
        return {key: value for key, value in vars(self).items() if value}


@dataclass(frozen=True)
class Group:
    """The findings about one document (or about the consortium as a whole)."""

    title: str
    kind: str
    slot: str
    findings: list[Finding]

    @property
    def result(self) -> CheckResult | None:
        """The worst result of the group."""
        results = {f.result for f in self.findings}
        return next((r for r in (CheckResult.FAIL, CheckResult.WARNING, CheckResult.PASS)
                     if r in results), None)


def service() -> ScreeningService:
    """The screening service on the request's session."""
    return ScreeningService(db(), documents=runtime().documents(db()), cipher=runtime().cipher,
                            clock=runtime().clock, definitions=runtime().definitions,
                            limits=runtime().analysis_limits, sessions=runtime().sessions)


def workflow() -> SubmissionWorkflow:
    """The submission workflow on the request's session."""
    return SubmissionWorkflow(db(), cipher=runtime().cipher, clock=runtime().clock,
                              documents=runtime().documents(db()),
                              definitions=runtime().definitions)


def read_filters() -> Filters:
    """The filters of the query string; 400 for a value that is not one of the choices."""
    result = request.args.get("result", "").strip()
    state = request.args.get("state", "").strip()
    query = request.args.get("q", "").strip()
    if result not in ("", *RESULTS) or state not in ("", *(s.value for s in SubmissionState)) \
            or len(query) > _MAX_QUERY:
        abort(400)
    return Filters(result=result, state=state, q=query)


def visible_rows(programme: Programme, filters: Filters) -> list[report.OverviewRow]:
    """The overview rows of the submissions the officer may see, filtered."""
    screening = service()
    submissions = authorizer().permitted(actor(), Action.SCREENING_VIEW,
                                         screening.submissions(programme))
    return [row for row in screening.overview(programme, submissions) if filters.keep(row)]


@bp.get("/screening/<code>")
def overview(code: str) -> str:
    """Every submission the officer may see, with its screening result and decision."""
    programme, definition = load_programme(code)
    authorize(Action.SCREENING_REPORT, programme, target={"programme": programme.code})
    filters = read_filters()
    rows = visible_rows(programme, filters)
    return render_template(
        "screening/overview.html", programme=programme, definition=definition, rows=rows,
        filters=filters, results=RESULTS, states=[s.value for s in SubmissionState],
        can_run=allowed(Action.SCREENING_RUN, programme),
        can_advance=allowed(Action.PROGRAMME_MANAGE, programme),
        form=EmptyForm(formdata=None))


@bp.get("/screening/<code>/overview.csv")
def overview_csv(code: str) -> Response:
    """The report rows (per submission, document and check) of the overview's submissions, as CSV
    for a spreadsheet; the export is recorded."""
    programme, _definition = load_programme(code)
    authorize(Action.SCREENING_REPORT, programme,
              target={"programme": programme.code, "format": "csv"})
    filters = read_filters()
    submissions = [row.submission for row in visible_rows(programme, filters)]
    rows = service().report_rows(programme, submissions)
    audit(Tag.SCREENING_REPORT_EXPORTED,
          target={"programme": programme.code, "format": "csv", "rows": len(rows),
                  "submissions": len(submissions), **filters.args()})
    day = runtime().clock().astimezone(KST).date().isoformat()
    return Response(report.to_csv(rows).encode("utf-8"), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="screening-{programme.code}-{day}.csv"'})


@bp.post("/screening/<code>/run")
def run(code: str) -> Response:
    """Screen every submitted submission of the programme now (the run is recorded)."""
    programme, _definition = load_programme(code)
    authorize(Action.SCREENING_RUN, programme, target={"programme": programme.code})
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        # The access decision is committed before the analyses, which hold no transaction.
        done = service().run(programme, actor(), workers=os.cpu_count() or 1,
                             release=commit_so_far)
    except ScreeningError as error:
        # E.g. a submission withdrawn meanwhile: nothing of the run is kept.
        rollback_request()
        flash(error.translated(_), "error")
        return redirect(url_for("screening.overview", code=programme.code))
    audit(Tag.SCREENING_RAN, target={"programme": programme.code, "run": done.id,
                                     "submissions": done.submission_count})
    flash(_("Screening finished: {count} submissions screened.",
            count=done.submission_count), "info")
    return redirect(url_for("screening.overview", code=programme.code))


@bp.get("/screening/submissions/<uuid:submission_id>")
def submission_report(submission_id: uuid.UUID) -> str:
    """A submission's screening report: findings by document, history and the decision."""
    submission = load_submission(submission_id, Action.SCREENING_VIEW)
    programme = submission.consortium.programme
    authorize(Action.SCREENING_REPORT, programme,
              target={"programme": programme.code, "submission": submission.id})
    definition = runtime().definitions.get(programme.code)
    if definition is None:
        abort(404)
    screening = service()
    screened, findings = screening.latest(submission)
    shredded = False
    if screened is None:
        try:
            findings = precheck(submission)
        except DocumentShredded:
            findings, shredded = [], True
    flow = workflow()
    return render_template(
        "screening/report.html", programme=programme, definition=definition,
        submission=submission, run=screened, shredded=shredded,
        groups=group(findings, definition), history=flow.history(submission),
        decision=flow.decision(submission), results=_counts(findings),
        can_decide=submission.state in DECIDABLE
        and allowed(Action.SCREENING_DECIDE, submission),
        now=runtime().clock())


def group(findings: list[Finding], definition: ProgrammeDefinition) -> list[Group]:
    """The findings by document in checklist order; those about the consortium come last."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.kind, finding.slot), []).append(finding)
    locale = current_locale()
    out = []
    for (kind, slot), items in groups.items():
        if not kind:
            title = _("Consortium and resource request")
        else:
            try:
                title = definition.document_kind(kind).title(locale)
            except KeyError:
                title = kind
            partner = items[0].values.get("partner")
            if partner is not None:
                title = _("{document}, partner {position}", document=title, position=partner)
            elif slot:
                title = _("{document}, entry no longer in the partner list", document=title)
        out.append(Group(title, kind, slot, items))
    return sorted(out, key=lambda g: not g.kind)


def _counts(findings: list[Finding]) -> dict[str, int]:
    counts = {result.value: 0 for result in CheckResult}
    for finding in findings:
        counts[finding.result.value] += 1
    return counts
