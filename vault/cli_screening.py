"""``vault screening …``: the operator screens a programme and exports the screening report.

Both commands act as the host operator through the one enforcement point (the policies let the
operator run screening and print its report: facts such as page counts and check results, never
document content), and record what they did in the audit log in the command's transaction.
Errors print one line and exit with status 2.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.audit.service import Tag
from vault.cli_support import CLI_REQUEST, operator_programme
from vault.policy.actions import Action, Actor
from vault.programmes.models import Programme
from vault.runtime import Runtime
from vault.screening import report
from vault.screening.errors import ScreeningError
from vault.screening.models import CheckResult, ScreeningFinding
from vault.screening.service import ScreeningService


def register(cli: click.Group, runtime: Callable[[], Runtime],
             work: Callable[..., AbstractContextManager[Session]],
             error: type[click.ClickException]) -> None:
    """Add the screening commands to the ``vault`` group."""

    def programme_for(session: Session, code: str, action: Action) -> Programme:
        """The programme with its definition loaded, the operator's access decided."""
        return operator_programme(runtime(), session, code, action, error)

    def service(session: Session) -> ScreeningService:
        current = runtime()
        return ScreeningService(session, documents=current.documents(session),
                                cipher=current.cipher, clock=current.clock,
                                definitions=current.definitions,
                                limits=current.analysis_limits, sessions=current.sessions)

    programme_option = click.option("--programme", "code", required=True,
                                    help="Programme code, e.g. sovereign-ai-2025.")

    @cli.group("screening")
    def screening_group() -> None:
        """Screening (제출서류 적합성 검토): the automatic checks and their report."""

    @screening_group.command("run")
    @programme_option
    @click.option("--workers", type=click.IntRange(1, 256), default=None,
                  help="Analyses at once (default: the number of CPUs).")
    def run(code: str, workers: int | None) -> None:
        """Screen every submitted submission of a programme; submitted ones move to screening."""
        workers = workers or os.cpu_count() or 1
        started = time.monotonic()
        try:
            with work() as session:
                programme = programme_for(session, code, Action.SCREENING_RUN)
                screening = service(session)
                total = len(screening.screenable(programme))
                with click.progressbar(length=total, label="Screening", file=sys.stderr,
                                       show_pos=True) as bar:
                    # Committing the access decision lets the analyses run with no
                    # transaction open (on SQLite, one would block every other writer).
                    done = screening.run(programme, Actor.operator(), workers=workers,
                                         progress=bar.update, release=session.commit)
                counts = dict(session.execute(
                    select(ScreeningFinding.result, func.count())
                    .where(ScreeningFinding.run_id == done.id)
                    .group_by(ScreeningFinding.result)).all())
                failing = session.scalar(
                    select(func.count(func.distinct(ScreeningFinding.submission_id)))
                    .where(ScreeningFinding.run_id == done.id,
                           ScreeningFinding.result == CheckResult.FAIL))
                fails = counts.get(CheckResult.FAIL, 0)
                warnings = counts.get(CheckResult.WARNING, 0)
                runtime().audit(session).append(
                    Tag.SCREENING_RAN, target={
                        "programme": programme.code, "run": done.id,
                        "submissions": done.submission_count, "fails": fails,
                        "warnings": warnings, "workers": workers},
                    reasons=("command line",), request=CLI_REQUEST)
                summary = (f"Screened {done.submission_count} submissions of {programme.code} "
                           f"in {time.monotonic() - started:.1f} s: {fails} failed checks in "
                           f"{failing} submissions, {warnings} warnings (run {done.id}).")
        except ScreeningError as failure:
            raise error(str(failure)) from None
        click.echo(summary)

    @screening_group.command("report")
    @programme_option
    @click.option("--format", "output_format", type=click.Choice(["csv", "json"]),
                  default="csv", show_default=True)
    @click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write to this file (created readable by its owner only) instead of "
                       "standard output.")
    def report_command(code: str, output_format: str, output: Path | None) -> None:
        """One row per submission, document and check of the latest run, with the result,
        the message and the evidence (page count, encrypted or not, ...)."""
        with work() as session:
            programme = programme_for(session, code, Action.SCREENING_REPORT)
            screening = service(session)
            submissions = screening.submissions(programme)
            rows = screening.report_rows(programme, submissions)
            text = (report.to_csv(rows) if output_format == "csv"
                    else report.to_json(programme, rows) + "\n")
            runtime().audit(session).append(
                Tag.SCREENING_REPORT_EXPORTED,
                target={"programme": programme.code, "format": output_format,
                        "rows": len(rows), "submissions": len(submissions)},
                reasons=("command line",), request=CLI_REQUEST)
            if output is not None:
                try:
                    _write_private(output, text)
                except OSError as failure:
                    raise error(f"Cannot write {output}: {failure.strerror}.") from None
        if output is None:
            click.echo(text, nl=False)
        else:
            click.echo(f"Wrote {len(rows)} rows to {output}.", err=True)


def _write_private(path: Path, text: str) -> None:
    """Write the report readable by its owner only: it names consortia and their files."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
