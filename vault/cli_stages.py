"""``vault stage …`` and ``vault retention run``: the operator runs a programme's stage rounds
(status, close, reopen, import, confirm, publish, export) and the retention schedule.

Every stage command acts as the host operator through the one enforcement point (the policies
let the operator run rounds, never disqualify) and the services record what they did in the
audit log in the command's transaction. Errors print one line and exit with status 2; nothing
is stored by a command that fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import click
from sqlalchemy.orm import Session

from vault.cli_support import CLI_REQUEST, operator_programme
from vault.display import format_kst
from vault.errors import DomainError
from vault.evaluation.imports import MAX_BYTES, ComponentImports
from vault.evaluation.retention import Retention
from vault.evaluation.stages import StageRounds
from vault.keys import KeyProviderError
from vault.policy.actions import Action, Actor
from vault.programmes.models import Programme
from vault.runtime import Runtime
from vault.spreadsheets import rows_csv


def register(cli: click.Group, runtime: Callable[[], Runtime],
             work: Callable[..., AbstractContextManager[Session]],
             error: type[click.ClickException]) -> None:
    """Add the ``stage`` and ``retention`` commands to the ``vault`` group."""

    def programme_for(session: Session, code: str, action: Action) -> Programme:
        """The programme, the operator's access decided (and recorded)."""
        return operator_programme(runtime(), session, code, action, error)

    def rounds(session: Session) -> StageRounds:
        current = runtime()
        return StageRounds(session, cipher=current.cipher, clock=current.clock,
                           definitions=current.definitions, keys=current.keys,
                           audit=current.audit(session), request=CLI_REQUEST)

    def finish(session: Session) -> None:
        """Place the command's events in the log now (a command has no request to do it)."""
        runtime().audit(session).sequence()

    programme_option = click.option("--programme", "code", required=True,
                                    help="Programme code, e.g. sovereign-ai-2025.")
    stage_option = click.option("--stage", "stage_id", required=True,
                                help="Stage id, e.g. written or stage_1.")

    @cli.group("stage")
    def stage_group() -> None:
        """Stage rounds: close the panel, import scores, confirm, publish, export."""

    @stage_group.command("status")
    @programme_option
    def status(code: str) -> None:
        """Every stage's round: state, submissions, dates (KST), result SHA-256, progress."""
        with work() as session:
            programme = programme_for(session, code, Action.STAGE_VIEW)
            views = rounds(session).rounds(programme)
            finish(session)
        for view in views:
            dates = " ".join(f"{label} {format_kst(moment)}" for label, moment in (
                ("closed", view.closed_at), ("confirmed", view.confirmed_at),
                ("published", view.published_at)) if moment is not None)
            click.echo(f"{view.stage.id:<16} {view.state.value:<10} "
                       f"{view.candidates:>3} submissions  {dates}".rstrip())
            if view.result_sha256:
                click.echo(f"  sha256 {view.result_sha256}")
            for person in view.progress:
                click.echo(f"  {person.name}: {person.submitted}/{person.assigned} submitted, "
                           f"{person.drafts} drafts")

    def change(code: str, stage_id: str, action: Action, method: str, *args: object) -> None:
        try:
            with work() as session:
                programme = programme_for(session, code, action)
                view = getattr(rounds(session), method)(programme, stage_id, Actor.operator(),
                                                        *args)
                finish(session)
        except DomainError as failure:
            raise error(str(failure)) from None
        line = f"{view.stage.id}: {view.state.value}"
        click.echo(f"{line} (sha256 {view.result_sha256})" if view.result_sha256 else line)

    @stage_group.command("close")
    @programme_option
    @stage_option
    def close(code: str, stage_id: str) -> None:
        """Close the panel: no more sheet writes; its reviewers lose access at once."""
        change(code, stage_id, Action.STAGE_CLOSE, "close")

    @stage_group.command("reopen")
    @programme_option
    @stage_option
    @click.option("--reason", required=True, help="Why the panel opens again (kept, sealed).")
    def reopen(code: str, stage_id: str, reason: str) -> None:
        """Open a closed (unconfirmed) panel again."""
        change(code, stage_id, Action.STAGE_CLOSE, "reopen", reason)

    @stage_group.command("confirm")
    @programme_option
    @stage_option
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def confirm(code: str, stage_id: str, yes: bool) -> None:
        """Freeze the closed round's ranking; it can never change again."""
        if not yes:
            click.confirm(f"Confirm the ranking of {stage_id}? It can never be changed again",
                          abort=True)
        change(code, stage_id, Action.STAGE_CONFIRM, "confirm")

    @stage_group.command("publish")
    @programme_option
    @stage_option
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def publish(code: str, stage_id: str, yes: bool) -> None:
        """Apply the confirmed ranking: passing teams move on, the others are out."""
        if not yes:
            click.confirm(f"Publish the result of {stage_id} and apply its outcomes?",
                          abort=True)
        change(code, stage_id, Action.STAGE_PUBLISH, "publish")

    @stage_group.command("import")
    @programme_option
    @stage_option
    @click.option("--component", required=True, help="An imported component, e.g. benchmark.")
    @click.option("--file", "path", required=True,
                  type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="The CSV file: submission_id,score (a consortium column is ignored).")
    def import_command(code: str, stage_id: str, component: str, path: Path) -> None:
        """Import an imported component's scores (supersedes the previous import)."""
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        try:
            with work() as session:
                programme = programme_for(session, code, Action.STAGE_IMPORT)
                current = runtime()
                view = ComponentImports(
                    session, cipher=current.cipher, clock=current.clock,
                    definitions=current.definitions, audit=current.audit(session),
                    request=CLI_REQUEST).import_csv(programme, stage_id, component, data,
                                                    path.name, Actor.operator())
                finish(session)
        except DomainError as failure:
            raise error(str(failure)) from None
        click.echo(f"Imported {view.rows} {component} scores for {stage_id} "
                   f"(sha256 {view.sha256}).")

    @stage_group.command("export")
    @programme_option
    @stage_option
    @click.option("--format", "output_format", type=click.Choice(["csv", "json"]),
                  default="csv", show_default=True)
    @click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write to this file (readable by its owner only) instead of standard "
                       "output.")
    def export(code: str, stage_id: str, output_format: str, output: Path | None) -> None:
        """The confirmed ranking, one row per submission (reviewers by number)."""
        try:
            with work() as session:
                programme = programme_for(session, code, Action.STAGE_EXPORT)
                rows = rounds(session).export(programme, stage_id, Actor.operator(),
                                              format=output_format)
                finish(session)
        except DomainError as failure:
            raise error(str(failure)) from None
        text = rows_csv(rows) if output_format == "csv" else json.dumps(
            rows, ensure_ascii=False, indent=2) + "\n"
        if output is None:
            click.echo(text, nl=False)
            return
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(output, 0o600)
        click.echo(f"Wrote {len(rows)} rows to {output}.", err=True)

    @cli.group("retention")
    def retention_group() -> None:
        """Retention of the material of consortia that are out."""

    @retention_group.command("run")
    def retention_run() -> None:
        """Send the notices that are due and crypto-shred the consortia whose time has come."""
        try:
            with work(Action.KEY_MANAGE) as session:
                current = runtime()
                done = Retention(session, clock=current.clock, keys=current.keys,
                                 audit=current.audit(session),
                                 request=CLI_REQUEST).run(Actor.operator())
                finish(session)
        except KeyProviderError as failure:
            raise error(str(failure)) from None
        for name, due in done.notices:
            click.echo(f"Notice: {name}: documents destroyed on {format_kst(due)}")
        for name in done.shredded:
            click.echo(f"Shredded: {name}")
        click.echo(f"{len(done.notices)} notices, {len(done.shredded)} consortia shredded.")
