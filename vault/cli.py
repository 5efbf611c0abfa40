"""The ``vault`` command for operators: init, database, users, programmes.

Each command is one unit of work: it commits when it succeeds and writes nothing when it fails.
Errors print one line and exit with status 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, NoAppException
from sqlalchemy.orm import Session

from vault import migrate
from vault.audit.checkpoints import create_log_identity
from vault.audit.service import RequestInfo, Tag
from vault.conflicts.service import ConflictService
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.demo.submissions import populate_submissions
from vault.demo.world import create_demo, demo_exists, format_credentials
from vault.identity.errors import IdentityError, UnknownUser
from vault.identity.models import ApiToken, Role
from vault.keys import KeyProviderError
from vault.policy.actions import Action, Actor
from vault.policy.errors import PolicyError
from vault.programmes.definition import DefinitionError
from vault.programmes.service import ProgrammeService
from vault.runtime import Runtime
from vault.settings import DEMO_MARKER, Settings, SettingsError


class CommandError(click.ClickException):
    """A clear, expected failure of a command (bad input, duplicate, unknown)."""

    exit_code = 2


def _runtime() -> Runtime:
    return current_app.extensions["vault"]


@contextmanager
def _work(action: Action | None = None) -> Iterator[Session]:
    """One unit of work; with ``action``, the host operator's access to the vault's records
    goes through the same chokepoint as everyone's, and the decision is recorded."""
    with unit_of_work(_runtime().sessions) as session:
        if action is not None:
            _runtime().authorizer(session, request=RequestInfo(client="cli")).authorize(
                Actor.operator(), action, None)
        yield session


def _audit(session: Session, tag: Tag, target: dict[str, object],
           reasons: tuple[str, ...] = ()) -> None:
    """Record an operator's action in the audit log, in the command's transaction."""
    _runtime().audit(session).append(tag, target=target, reasons=("command line", *reasons),
                                     request=RequestInfo(client="cli"))


def _audit_revoked(session: Session, account: object, tokens: list[ApiToken],
                   reason: str) -> None:
    """Record each token an operator's change of the account's credentials revoked."""
    for token in tokens:
        _audit(session, Tag.TOKEN_REVOKED, {"account": account, "token": token.prefix},
               (reason,))


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


class StartupError(NoAppException):
    """Settings or programme definitions are invalid: one line on stderr, exit status 2."""

    exit_code = 2

    def show(self, file: IO[str] | None = None) -> None:
        """Print ``error: <message>`` without a traceback."""
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _create_app() -> Flask:
    from vault.app import create_app

    try:
        return create_app(Settings.from_env())
    except (SettingsError, DefinitionError, PolicyError, KeyProviderError) as error:
        # Flask prints a full traceback for other exceptions, even for ``vault --help``.
        raise StartupError(str(error)) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
def cli() -> None:
    """Operate a vault: initialise it, manage accounts and programmes."""


@cli.command("init")
@click.option("--demo", is_flag=True, help="Also create the fictional demo programme data.")
def init_command(demo: bool) -> None:
    """Create the data directory, migrate the database and load the programme definitions.

    Safe to run again: an initialised vault is brought up to date, nothing is duplicated.
    """
    runtime = _runtime()
    settings = runtime.settings
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    migrate.upgrade(runtime.engine, field_key=settings.field_key)
    try:
        runtime.keys.check()
    except KeyProviderError as error:
        raise CommandError(str(error)) from None
    click.echo(f"Key provider ready: {runtime.keys.name}")
    identity = create_log_identity(settings)
    click.echo(f"Audit log: {identity.origin} (verifier key: vault audit vkey)")
    database = runtime.engine.url.database
    if runtime.engine.dialect.name == "sqlite" and database and Path(database).exists():
        os.chmod(database, 0o600)  # the database holds sealed columns and account metadata
    click.echo(f"Database ready: {runtime.engine.url.render_as_string(hide_password=True)}")
    with _work() as session:
        programmes = ProgrammeService(session)
        for definition in runtime.definitions.values():
            _, changed = programmes.sync(definition)
            state = "loaded" if changed else "unchanged"
            click.echo(f"Programme {definition.code}: {state} ({definition.source.name})")
    if not demo:
        return
    if not runtime.definitions:
        raise CommandError("--demo needs a programme definition in " + str(settings.programmes_dir))
    code = "sovereign-ai-2025" if "sovereign-ai-2025" in runtime.definitions else min(
        runtime.definitions)
    with _work() as session:
        programme = ProgrammeService(session).by_code(code)
        if programme is None:  # pragma: no cover - synced just above
            raise CommandError(f"programme {code} is missing")
        if demo_exists(session, programme):
            click.echo(f"Demo data already present; logins are in {settings.credentials_file}")
            (settings.data_dir / DEMO_MARKER).touch(mode=0o600)
            return
        credentials = create_demo(
            session, runtime.identity(session),
            ConsortiumService(session, cipher=runtime.cipher), programme,
        )
        # Reviewers 1-4 work for partners of some consortia: the conflicts are found now.
        found = ConflictService(session, cipher=runtime.cipher, clock=runtime.clock,
                                definitions=runtime.definitions, audit=runtime.audit(session),
                                request=RequestInfo(client="cli")).detect(programme)
        # Documents, resource requests and submissions for the officer to screen (not screened
        # here: that is the officer's step). Only while the call is open: nothing is accepted
        # after its deadline.
        definition = runtime.definitions[code]
        made = populate_submissions(
            session, programme, definition, documents=runtime.documents(session),
            cipher=runtime.cipher, audit=runtime.audit(session),
            definitions=runtime.definitions, request=RequestInfo(client="cli"),
        ) if runtime.clock() < definition.submission_deadline else None
        table = format_credentials(credentials)
    # Written only once the accounts are committed, so the file never lists logins that
    # do not exist.
    _write_private(settings.credentials_file, table)
    (settings.data_dir / DEMO_MARKER).touch(mode=0o600)
    if made is None:
        click.echo(f"Demo submissions: none, the call closed at "
                   f"{definition.submission_deadline.isoformat()}.")
    else:
        click.echo(f"Demo submissions: {made.documents} documents uploaded (encrypted), "
                   f"{made.resource_requests} resource requests saved, {made.submitted} "
                   f"submitted and {made.drafts} left a draft; screen them at /screening/{code}.")
    click.echo(f"Demo data created; {len(found)} conflicts of interest detected. "
               f"Logins (also in {settings.credentials_file}, mode 0600):")
    click.echo(table)


@cli.group("db")
def db_group() -> None:
    """Database schema migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database schema up to a revision."""
    runtime = _runtime()
    migrate.upgrade(runtime.engine, revision, field_key=runtime.settings.field_key)
    click.echo(f"Database at {revision}")


@db_group.command("downgrade")
@click.option("--revision", required=True, help="Target revision, or 'base' to drop everything.")
def db_downgrade(revision: str) -> None:
    """Migrate the database schema down to a revision."""
    runtime = _runtime()
    migrate.downgrade(runtime.engine, revision, field_key=runtime.settings.field_key)
    click.echo(f"Database at {revision}")


@db_group.command("revision")
@click.option("--message", "-m", required=True, help="What the revision changes.")
def db_revision(message: str) -> None:
    """Generate a migration from the difference between the models and the database."""
    path = migrate.new_revision(_runtime().engine, message)
    click.echo(f"Wrote {path}; review it, then test it with make test")


@cli.group("user")
def user_group() -> None:
    """Accounts."""


@user_group.command("add")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--org", "organization", help="Name of a registered organisation (affiliation).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(email: str, display_name: str, role: str, organization: str | None,
             password_stdin: bool) -> None:
    """Create an account; the password comes from a prompt or standard input."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with _work(Action.USER_MANAGE) as session:
            identity = _runtime().identity(session)
            org = identity.find_organization(organization) if organization else None
            user = identity.create_user(email=email, display_name=display_name, role=Role(role),
                                        password=password, organization=org)
            _audit(session, Tag.USER_CREATED, {"account": user.id, "role": user.role.value})
            click.echo(f"Created {user.role.value} {user.email}")
    except IdentityError as error:
        raise CommandError(str(error)) from None


@user_group.command("list")
def user_list() -> None:
    """List accounts: e-mail, role, MFA, active, name."""
    with _work(Action.USER_LIST) as session:
        users = _runtime().identity(session).list_users()
        click.echo(f"{'e-mail':<36} {'role':<10} {'mfa':<4} {'active':<6} name")
        for user in users:
            click.echo(f"{user.email:<36} {user.role.value:<10} "
                       f"{'yes' if user.mfa_enabled else 'no':<4} "
                       f"{'yes' if user.active else 'no':<6} {user.display_name}")


@user_group.command("deactivate")
@click.option("--email", required=True)
def user_deactivate(email: str) -> None:
    """Deactivate an account and end all its sessions at once."""
    try:
        with _work(Action.USER_MANAGE) as session:
            user, revoked = _runtime().identity(session).deactivate(email)
            _audit(session, Tag.USER_DEACTIVATED, {"account": user.id})
            _audit_revoked(session, user.id, revoked, "account deactivated")
            click.echo(f"Deactivated {user.email}; its sessions have ended and "
                       f"{len(revoked)} API tokens were revoked")
    except IdentityError as error:
        raise CommandError(str(error)) from None


@user_group.command("reset-mfa")
@click.option("--email", required=True)
def user_reset_mfa(email: str) -> None:
    """Forget an account's second factor (a lost device and lost recovery codes): its
    sessions and API tokens end, and its next sign-in enrols a new authenticator."""
    try:
        with _work(Action.USER_MANAGE) as session:
            user, revoked = _runtime().identity(session).reset_second_factor(email)
            _audit(session, Tag.MFA_RESET, {"account": user.id})
            _audit_revoked(session, user.id, revoked, "second factor reset")
            click.echo(f"Reset the second factor of {user.email}; its sessions have ended, "
                       f"{len(revoked)} API tokens were revoked, and its next sign-in asks "
                       "for a new enrolment")
    except IdentityError as error:
        raise CommandError(str(error)) from None


@cli.group("token")
def token_group() -> None:
    """API bearer tokens."""


@token_group.command("create")
@click.option("--email", required=True, help="The account the token acts for.")
@click.option("--name", required=True, help="What the token is for.")
@click.option("--days", type=int, default=None,
              help="Lifetime in days (default 30, at most VAULT_TOKEN_MAX_DAYS).")
def token_create(email: str, name: str, days: int | None) -> None:
    """Create a token and print it once (only its digest is stored).

    A token made here has no second factor behind it: for a role that requires one, the
    policies refuse it everything that needs the factor (reading any consortium's material,
    deciding, the audit log, accounts). Such accounts create their tokens on the account page.
    """
    try:
        with _work(Action.USER_MANAGE) as session:
            identity = _runtime().identity(session)
            account = identity.find_by_email(email)
            if account is None:
                raise UnknownUser("No account has e-mail {email}.", email=email)
            token, row = identity.create_token(account, name, days)
            role = account.role
            _audit(session, Tag.TOKEN_CREATED, {"account": account.id, "token": row.prefix,
                                                "expires": row.expires_at.isoformat()})
            expires = row.expires_at.isoformat()
    except IdentityError as error:
        raise CommandError(str(error)) from None
    click.echo(token)
    click.echo(f"Token for {email}, expires {expires}. It is shown only now.", err=True)
    if role.requires_mfa:
        click.echo(f"This token has no second factor behind it: a {role.value} can do with it "
                   "only what needs none. Create it on the account page, signed in with "
                   "two-step verification, to do more.", err=True)


@token_group.command("list")
@click.option("--email", help="Only this account's tokens.")
def token_list(email: str | None) -> None:
    """List tokens: prefix, owner, name, expiry, state."""
    with _work(Action.USER_LIST) as session:
        identity = _runtime().identity(session)
        account = identity.find_by_email(email) if email else None
        if email and account is None:
            raise CommandError(f"No account has e-mail {email}.")
        now = _runtime().clock()
        for token in identity.tokens(account):
            state = ("revoked" if token.revoked_at else
                     "expired" if token.expires_at <= now else "active")
            click.echo(f"{token.prefix:<14} {token.user.email:<32} {state:<8} "
                       f"{token.expires_at.date().isoformat()}  {token.name}")


@token_group.command("revoke")
@click.argument("prefix")
def token_revoke(prefix: str) -> None:
    """Revoke the token with this prefix (as shown by ``token list``) or id."""
    try:
        with _work(Action.USER_MANAGE) as session:
            token = _runtime().identity(session).revoke_token(prefix)
            _audit(session, Tag.TOKEN_REVOKED, {"account": token.user_id, "token": token.prefix})
            click.echo(f"Revoked {token.prefix} ({token.name})")
    except IdentityError as error:
        raise CommandError(str(error)) from None


@cli.group("programme")
def programme_group() -> None:
    """Programme definitions."""


@programme_group.command("list")
def programme_list() -> None:
    """List programmes with their deadline and current stage."""
    with _work() as session:
        for programme in ProgrammeService(session).list():
            click.echo(f"{programme.code:<24} {programme.submission_deadline.isoformat():<27} "
                       f"{programme.current_stage:<12} {programme.title_en}")


from vault.cli_assign import register as _register_assign_commands  # noqa: E402 - needs cli
from vault.cli_audit import register as _register_audit_commands  # noqa: E402 - needs cli
from vault.cli_keys import register as _register_key_commands  # noqa: E402 - needs cli
from vault.cli_screening import register as _register_screening_commands  # noqa: E402 - needs cli
from vault.cli_simulate import register as _register_simulate_commands  # noqa: E402 - needs cli
from vault.cli_stages import register as _register_stage_commands  # noqa: E402 - needs cli
from vault.cli_uploads import register as _register_upload_commands  # noqa: E402 - needs cli

_register_key_commands(cli, _runtime, _work, CommandError)
_register_audit_commands(cli, _runtime, _work, CommandError)
_register_assign_commands(cli, _runtime, _work, CommandError)
_register_screening_commands(cli, _runtime, _work, CommandError)
_register_simulate_commands(cli, CommandError)
_register_stage_commands(cli, _runtime, _work, CommandError)
_register_upload_commands(cli, _runtime, _work, CommandError)


def main() -> None:
    """Console entry point: settings and definition errors are one clear line, exit status 2."""
    try:
        cli.main(prog_name="vault")
    except (SettingsError, DefinitionError, PolicyError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
