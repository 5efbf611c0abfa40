"""``vault uploads purge-expired``: remove resumable uploads whose time ran out (their sealed
segments and rows), and segments a completed upload left behind after a crash. Meant for a
periodic job (e.g. hourly from cron or a systemd timer)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import click
from sqlalchemy.orm import Session

from vault.audit.service import RequestInfo
from vault.documents.resumable import ResumableUploads
from vault.runtime import Runtime


def register(cli: click.Group, runtime: Callable[[], Runtime],
             work: Callable[..., AbstractContextManager[Session]],
             error: type[click.ClickException]) -> None:
    """Add the upload commands to the ``vault`` group."""

    @cli.group("uploads")
    def uploads_group() -> None:
        """Resumable uploads."""

    @uploads_group.command("purge-expired")
    @click.option("--batch", type=click.IntRange(1, 100_000), default=1000, show_default=True,
                  help="Uploads removed per transaction.")
    def purge_expired(batch: int) -> None:
        """Remove expired uploads and the leftovers of completed ones; prints how many."""
        total = 0
        while True:
            with work() as session:
                current = runtime()
                removed = ResumableUploads(
                    session, documents=current.documents(session),
                    audit=current.audit(session), clock=current.clock,
                    request=RequestInfo(client="cli")).purge_expired(limit=batch)
            total += removed
            if removed < batch:
                break
        click.echo(f"Removed {total} expired uploads.")
