"""``vault keys …``, ``vault shred`` and ``vault blobs sweep``: rotation, rewrapping,
retirement, crypto-shredding, and clearing the leftovers of crashed uploads."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

import click
from sqlalchemy.orm import Session

from vault.audit.service import RequestInfo, Tag
from vault.keys import KeyProviderError
from vault.keys.service import KeyService
from vault.policy.actions import Action
from vault.runtime import Runtime


def register(cli: click.Group, runtime: Callable[[], Runtime],
             work: Callable[..., AbstractContextManager[Session]],
             error: type[click.ClickException]) -> None:
    """Add the key commands to the ``vault`` group."""

    def service(session: Session) -> KeyService:
        return KeyService(session, keys=runtime().keys, clock=runtime().clock)

    def audit(session: Session, tag: Tag, target: dict[str, object]) -> None:
        runtime().audit(session).append(tag, target=target, reasons=("command line",),
                                        request=RequestInfo(client="cli"))

    @cli.group("keys")
    def keys_group() -> None:
        """Consortium keys (the key provider's key-encryption keys)."""

    @keys_group.command("status")
    def keys_status() -> None:
        """Each consortium key: versions, current version, data keys wrapped under each."""
        click.echo(f"provider: {runtime().keys.name}")
        with work(Action.KEY_MANAGE) as session:
            for status in service(session).status():
                if status.destroyed:
                    state = "SHREDDED"
                elif not status.versions:
                    state = "no key yet"
                else:
                    state = f"current v{status.current}"
                wrapped = ", ".join(f"v{v}: {n}" for v, n in sorted(status.wrapped.items()))
                click.echo(f"{status.key_id}  {state:<12} versions "
                           f"{status.versions or '-'}  data keys {wrapped or '0'}  "
                           f"({status.consortium})")

    @keys_group.command("rotate")
    @click.option("--consortium", "consortium_id", type=click.UUID,
                  help="Only this consortium (default: every consortium).")
    def keys_rotate(consortium_id: uuid.UUID | None) -> None:
        """Add a new key version; new uploads use it (run ``keys rewrap`` to move old ones)."""
        try:
            with work(Action.KEY_MANAGE) as session:
                rotated = service(session).rotate(consortium_id)
                for key_id, version in rotated.items():
                    audit(session, Tag.KEY_ROTATED, {"key": key_id, "version": version})
        except KeyProviderError as failure:
            raise error(str(failure)) from None
        for key_id, version in rotated.items():
            click.echo(f"{key_id}: now v{version}")

    @keys_group.command("rewrap")
    def keys_rewrap() -> None:
        """Rewrap every data key under its key's current version. No blob is rewritten; each
        batch commits on its own, so this is safe to interrupt and run again."""
        with work(Action.KEY_MANAGE) as session:
            total = service(session).stale_count()
        done = 0
        with click.progressbar(length=total, label="Rewrapping data keys") as bar:
            while True:
                with work() as session:
                    count = service(session).rewrap_batch()
                if count == 0:
                    break
                done += count
                bar.update(count)
        with work() as session:
            audit(session, Tag.KEY_REWRAPPED, {"count": done})
        click.echo(f"Rewrapped {done} data keys.")

    @keys_group.command("retire")
    @click.option("--below", type=int, required=True, help="Delete versions lower than this.")
    def keys_retire(below: int) -> None:
        """Delete old key versions; refused while any data key still depends on one."""
        try:
            with work(Action.KEY_MANAGE) as session:
                retired = service(session).retire(below)
                for key_id, versions in retired.items():
                    audit(session, Tag.KEY_RETIRED,
                          {"key": key_id, "versions": ",".join(map(str, versions))})
        except KeyProviderError as failure:
            raise error(str(failure)) from None
        for key_id, versions in retired.items():
            click.echo(f"{key_id}: retired {', '.join(f'v{v}' for v in versions)}")
        if not retired:
            click.echo("Nothing to retire.")

    @cli.group("blobs")
    def blobs_group() -> None:
        """The blob store."""

    @blobs_group.command("sweep")
    @click.option("--older-than-hours", type=click.IntRange(1, 24 * 365), default=24,
                  show_default=True, help="Only writes abandoned at least this long ago.")
    def blobs_sweep(older_than_hours: int) -> None:
        """Discard the leftovers of uploads interrupted by a crash (never visible as blobs)."""
        removed = runtime().blobs.sweep(timedelta(hours=older_than_hours))
        click.echo(f"Discarded {removed} abandoned writes.")

    @cli.command("shred")
    @click.option("--consortium", "consortium_id", type=click.UUID, required=True)
    @click.option("--confirm", "confirmation", help="The consortium's name, typed to confirm.")
    def shred(consortium_id: uuid.UUID, confirmation: str | None) -> None:
        """Destroy a consortium's key: its documents become unreadable forever."""
        try:
            with work(Action.KEY_MANAGE) as session:
                name = service(session).consortium(consortium_id).name
        except KeyProviderError as failure:
            raise error(str(failure)) from None
        click.echo(f"This destroys the key of {name!r}. Its documents can never be read again,")
        click.echo("not even from a database backup.")
        typed = confirmation if confirmation is not None else click.prompt(
            "Type the consortium's name to confirm")
        if typed != name:
            raise error("The name does not match; nothing was destroyed.")
        try:
            with work() as session:
                shredded = service(session).shred(consortium_id)
                audit(session, Tag.KEY_SHREDDED,
                      {"consortium": shredded.id, "key": shredded.key_id})
        except KeyProviderError as failure:
            raise error(str(failure)) from None
        click.echo(f"Shredded {name}.")

