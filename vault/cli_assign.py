"""``vault assign …``: officers script reviewer assignments per stage.

Every command acts on a named officer's authority (``--officer`` or ``VAULT_OFFICER``): it
builds that officer's actor and asks the one enforcement point, exactly like the web pages, so
the policies decide (the officer's conflicts included) and the audit log names the officer.
Refusals and denials are recorded although the command fails (exit status 2).

The policies let an officer act only with a second factor behind the credentials. Here the
credential is the operator's shell access to the server, which already holds the keys to
everything the officer could read: it counts as the factor. (An API token from
``vault token create`` is different: it leaves the server, so it carries no factor.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import click
from sqlalchemy.orm import Session

from vault.assignments.errors import AssignmentError, UnknownSubmission
from vault.assignments.service import AssignmentService
from vault.audit.service import Tag
from vault.cli_support import CLI_REQUEST
from vault.documents.models import Submission
from vault.identity.models import User
from vault.policy.actions import Action, Actor
from vault.policy.errors import AccessDenied
from vault.policy.service import Authorizer
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.runtime import Runtime


@dataclass
class _Officer:
    """The command's session, the officer's actor, the chosen programme and the services."""

    session: Session
    runtime: Runtime
    account: User
    actor: Actor
    programme: Programme
    authorizer: Authorizer
    assignments: AssignmentService

    def submission(self, value: str, error: type[click.ClickException]) -> Submission:
        """A submission of the programme the officer may see; fails otherwise."""
        try:
            submission_id = uuid.UUID(value)
        except ValueError:
            raise error(f"{value!r} is not a submission id.") from None
        submission = self.assignments.submission(self.programme, submission_id)
        missing = error(f"No submission {submission_id} in programme {self.programme.code}.")
        if submission is None:
            raise missing
        try:
            self.authorizer.authorize(
                self.actor, Action.SUBMISSION_VIEW, submission,
                target={"consortium": submission.consortium_id, "submission": submission.id},
                denied=UnknownSubmission())
        except UnknownSubmission:
            raise missing from None
        return submission

    def reviewer(self, email: str, error: type[click.ClickException]) -> User:
        """The account with this address (the service checks it is an active reviewer)."""
        found = self.runtime.identity(self.session).find_by_email(email)
        if found is None:
            raise error(f"No account has e-mail {email}.")
        return found

    def finish(self) -> None:
        """Place the command's events in the log now (a command has no request to do it)."""
        self.runtime.audit(self.session).sequence()


def register(cli: click.Group, runtime: Callable[[], Runtime],
             work: Callable[[], AbstractContextManager[Session]],
             error: type[click.ClickException]) -> None:
    """Add the assignment commands to the ``vault`` group."""

    def as_officer(session: Session, officer: str, code: str | None) -> _Officer:
        """Resolve the officer and the programme, and authorise ``assignment:manage``."""
        current = runtime()
        account = current.identity(session).find_by_email(officer)
        if account is None or not account.active:
            raise error(f"No active account has e-mail {officer}.")
        # Shell access to the server stands in for the second factor (see the module's note).
        actor = Actor(user_id=account.id, role=account.role, mfa=True)

        def record_denial(tag: Tag, **event: object) -> None:
            # The command fails and rolls back; the denial is committed on its own.
            session.rollback()
            log = current.audit(session)
            log.record(tag, **event)  # type: ignore[arg-type]
            log.sequence()
            session.commit()

        authorizer = current.authorizer(session, request=CLI_REQUEST,
                                        record_denial=record_denial)
        programme = _programme(session, code, error)
        try:
            authorizer.authorize(actor, Action.ASSIGNMENT_MANAGE, programme,
                                 target={"programme": programme.code})
        except AccessDenied:
            raise error(f"{officer} ({actor.role_name}) may not manage the assignments of "
                        f"{programme.code}.") from None
        assignments = AssignmentService(session, clock=current.clock,
                                        definitions=current.definitions,
                                        audit=current.audit(session), cipher=current.cipher,
                                        request=CLI_REQUEST)
        return _Officer(session, current, account, actor, programme, authorizer, assignments)

    officer_option = click.option(
        "--officer", envvar="VAULT_OFFICER", required=True,
        help="E-mail of the programme officer on whose authority the command acts "
             "(or VAULT_OFFICER).")
    programme_option = click.option(
        "--programme", "code", help="Programme code (default: the only programme).")

    @cli.group("assign")
    def assign_group() -> None:
        """Reviewer assignments per stage, on a programme officer's authority."""

    @assign_group.command("add")
    @click.option("--stage", required=True, help="Stage id of the programme definition.")
    @click.option("--reviewer", "reviewer_email", required=True, help="The reviewer's e-mail.")
    @click.option("--submission", "submission_id", required=True, help="The submission's id.")
    @officer_option
    @programme_option
    def add(stage: str, reviewer_email: str, submission_id: str, officer: str,
            code: str | None) -> None:
        """Assign a reviewer to a submission's panel for a stage."""
        refused: AssignmentError | None = None
        with work() as session:
            context = as_officer(session, officer, code)
            submission = context.submission(submission_id, error)
            reviewer = context.reviewer(reviewer_email, error)
            name = f"{reviewer.email} to {submission.consortium.name} ({submission.id})"
            try:
                context.assignments.assign(context.actor, submission, reviewer, stage)
            except AssignmentError as refusal:
                # Nothing was stored; the refusal is committed with the command's events.
                context.assignments.refused(context.actor, submission, reviewer, stage, refusal)
                refused = refusal
            context.finish()
        if refused is not None:
            raise error(f"Refused: {refused} ({refused.reason})")
        click.echo(f"Assigned {name} in stage {stage}.")

    @assign_group.command("remove")
    @click.option("--stage", required=True, help="Stage id of the programme definition.")
    @click.option("--reviewer", "reviewer_email", required=True, help="The reviewer's e-mail.")
    @click.option("--submission", "submission_id", required=True, help="The submission's id.")
    @officer_option
    @programme_option
    def remove(stage: str, reviewer_email: str, submission_id: str, officer: str,
               code: str | None) -> None:
        """Take a reviewer off a submission's panel (their access ends at once)."""
        with work() as session:
            context = as_officer(session, officer, code)
            submission = context.submission(submission_id, error)
            reviewer = context.reviewer(reviewer_email, error)
            assignment = context.assignments.find(submission, reviewer, stage)
            if assignment is None:
                raise error(f"{reviewer.email} is not assigned to submission {submission.id} "
                            f"in stage {stage}.")
            name = f"{reviewer.email} from {submission.consortium.name} ({submission.id})"
            context.assignments.unassign(context.actor, assignment)
            context.finish()
        click.echo(f"Removed {name} in stage {stage}.")

    @assign_group.command("list")
    @click.option("--stage", required=True, help="Stage id of the programme definition.")
    @officer_option
    @programme_option
    @click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
                  show_default=True)
    def list_(stage: str, officer: str, code: str | None, output: str) -> None:
        """List a stage's panels (confidential while the stage runs)."""
        with work() as session:
            context = as_officer(session, officer, code)
            try:
                context.assignments.stage(context.programme, stage)
            except AssignmentError as failure:
                raise error(f"{failure} ({failure.reason})") from None
            panel = context.assignments.for_stage(context.programme, stage)
            # An officer's conflicts hide those consortia's panels here as on the web.
            visible = set(context.authorizer.permitted(
                context.actor, Action.SUBMISSION_VIEW,
                list({a.submission_id: a.submission for a in panel}.values())))
            rows = [{
                "submission": str(a.submission_id),
                "consortium": a.submission.consortium.name,
                "reviewer": a.reviewer.email,
                "reviewer_name": a.reviewer.display_name,
                "assigned_at": a.created_at.isoformat(),
            } for a in panel if a.submission in visible]
            programme_code = context.programme.code
            context.finish()
        if output == "json":
            click.echo(json.dumps({"programme": programme_code, "stage": stage,
                                   "assignments": rows}, ensure_ascii=False, indent=2))
            return
        if not rows:
            click.echo(f"No assignments in stage {stage} of {programme_code}.")
        for row in rows:
            click.echo(f"{row['consortium']:<30} {row['submission']} {row['reviewer']:<32} "
                       f"{row['reviewer_name']}")


def _programme(session: Session, code: str | None,
               error: type[click.ClickException]) -> Programme:
    """The named programme, or the only one."""
    programmes = ProgrammeService(session)
    if code:
        found = programmes.by_code(code)
        if found is None:
            raise error(f"No programme {code}.")
        return found
    every = programmes.list()
    if not every:
        raise error("No programme is loaded; run 'vault init'.")
    if len(every) > 1:
        raise error("Several programmes are loaded; choose one with --programme ("
                    + ", ".join(p.code for p in every) + ").")
    return every[0]
