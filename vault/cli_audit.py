"""``vault audit …``: the log's verifier key, checkpoints, the chain check, exports, and the
offline verification of an exported bundle."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import click
from sqlalchemy.orm import Session

from vault.audit import chain
from vault.audit.bundle import (
    ExportFilter,
    check_export_filter,
    export_bundle,
    export_filtered,
)
from vault.audit.checkpoints import (
    Checkpoints,
    CheckpointUnavailable,
    issue_and_publish,
    publish,
)
from vault.audit.errors import UnknownExportFilter
from vault.audit.models import AuditVerification
from vault.audit.service import AuditLog, Tag
from vault.audit.verify import VerificationFailed, verify_files
from vault.cli_support import CLI_REQUEST
from vault.policy.actions import Action
from vault.runtime import Runtime


def check_database(session: Session, runtime: Runtime) -> str:
    """The in-app chain check for this runtime (see ``vault.audit.chain``)."""
    return chain.check_database(session, identity=runtime.log_identity,
                                published_path=runtime.settings.published_checkpoints,
                                clock=runtime.clock)


def register(cli: click.Group, runtime: Callable[[], Runtime],
             work: Callable[..., AbstractContextManager[Session]],
             error: type[click.ClickException]) -> None:
    """Add the audit commands to the ``vault`` group."""

    @cli.group("audit")
    def audit_group() -> None:
        """The tamper-evident audit log."""

    @audit_group.command("vkey")
    def vkey() -> None:
        """Print the log's verifier key (signed-note vkey form) for auditors."""
        if runtime().log_identity is None:
            raise error("The log has no signing key; run 'vault init'.")
        click.echo(runtime().log_identity.vkey)

    @audit_group.command("checkpoint")
    def checkpoint() -> None:
        """Sign and publish a checkpoint of the log now; print it."""
        try:
            issued = issue_and_publish(runtime().sessions, identity=runtime().log_identity,
                                       clock=runtime().clock,
                                       path=runtime().settings.published_checkpoints)
        except CheckpointUnavailable as failure:
            raise error(str(failure)) from None
        click.echo(issued.note, nl=False)

    @audit_group.command("check")
    def check() -> None:
        """Verify the whole log in the database against every signed checkpoint."""
        try:
            with work(Action.AUDIT_LOG_CHECK) as session:
                summary = check_database(session, runtime())
                ok, message = True, summary
        except VerificationFailed as failure:
            ok, message = False, str(failure)
        with work() as session:
            session.add(AuditVerification(checked_at=runtime().clock(), by_user_id=None,
                                          size=AuditLog(session, clock=runtime().clock).size(),
                                          ok=ok, message=message))
        if not ok:
            raise error(f"audit log check FAILED: {message}")
        click.echo(f"audit log intact: {message}")

    @audit_group.command("export")
    @click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
    @click.option("--since", "since", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path), multiple=True,
                  help="A checkpoint you hold; the bundle proves the log grew from it.")
    @click.option("--consortium", "consortium_id", type=click.UUID,
                  help="Only this consortium's events, each with an inclusion proof.")
    @click.option("--document", "document_id", type=click.UUID,
                  help="Only this document's events, each with an inclusion proof.")
    def export(out: Path, since: tuple[Path, ...], consortium_id: uuid.UUID | None,
               document_id: uuid.UUID | None) -> None:
        """Write a bundle of the log (or of one consortium's or document's events) that
        verifies offline."""
        if consortium_id and document_id:
            raise error("Give --consortium or --document, not both.")
        wanted = ExportFilter("consortium", consortium_id) if consortium_id else \
            ExportFilter("document", document_id) if document_id else None
        identity = runtime().log_identity
        if identity is None:
            raise error("The log has no signing key; run 'vault init'.")
        notes = [path.read_text("utf-8") for path in since]
        try:
            with work(Action.AUDIT_LOG_EXPORT) as session:
                if wanted is not None:
                    check_export_filter(session, wanted)
                # A filtered export's own event names what it was narrowed to, so the
                # bundle carries the record of its making.
                AuditLog(session, clock=runtime().clock).append(
                    Tag.AUDIT_EXPORTED, target={"file": out.name,
                                                **(wanted.as_target() if wanted else {})},
                    request=CLI_REQUEST)
            with work() as session:
                checkpoints = Checkpoints(session, identity=identity, clock=runtime().clock)
                if wanted is not None:
                    exported = export_filtered(session, checkpoints, out, wanted)
                else:
                    exported = export_bundle(session, checkpoints, out, notes, identity.vkey)
            if exported.to_publish is not None:
                publish(runtime().settings.published_checkpoints, exported.to_publish)
        except UnknownExportFilter as unknown:
            raise error(str(unknown)) from None
        except VerificationFailed as failure:
            out.unlink(missing_ok=True)
            raise error(str(failure)) from None
        click.echo(f"Exported {exported.size} events to {out}")

    # Offline: no app, no settings, no data directory, nothing written (an auditor runs it on
    # their own machine with the bundle and the verifier key only).
    @audit_group.command("verify", with_appcontext=False)
    @click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--vkey", required=True, help="The log's verifier key (or a file holding it).")
    @click.option("--previous", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="A checkpoint from an earlier export: the log must have grown from it.")
    @click.option("--skip-csv", is_flag=True,
                  help="Do not rebuild and compare the CSV view (faster on huge bundles).")
    def verify(bundle: Path, vkey: str, previous: Path | None, skip_csv: bool) -> None:
        """Verify an exported bundle offline and say what it proves (a filtered bundle
        cannot prove that no entry is missing)."""
        try:
            report = verify_files(bundle, vkey, previous, check_csv=not skip_csv)
        except VerificationFailed as failure:
            raise error(f"verification FAILED: {failure}") from None
        click.echo(report.summary())
