"""The home page, one per role."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, url_for

from vault.consortia.service import ConsortiumService
from vault.documents.submissions import SubmissionService
from vault.identity.models import Role
from vault.policy.actions import Action
from vault.programmes.service import ProgrammeService
from vault.web.context import actor, authorize, authorizer, db, runtime, user

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str | Response:
    """Show the signed-in user what their role is for."""
    account = user()
    role = account.role
    if role is Role.APPLICANT:
        return _applicant()
    if role is Role.REVIEWER:
        from vault.web.assignments import reviewer_home  # the assignments part owns this page

        return reviewer_home()
    if role is Role.OFFICER:
        return _officer()
    if role is Role.AUDITOR:
        return redirect(url_for("audit.events"))
    if role is Role.ADMIN:
        authorize(Action.USER_LIST)
        identity = runtime().identity(db())
        users = identity.list_users()
        return render_template("home/admin.html", users=users, employers=identity.employers(users))
    raise ValueError(f"no home page for role {role!r}")


def _applicant() -> str:
    consortia = ConsortiumService(db(), cipher=runtime().cipher)
    submissions = SubmissionService(db())
    entries = []
    for consortium in consortia.consortia_of(user()):
        authorize(Action.CONSORTIUM_VIEW, consortium)
        submission = submissions.for_consortium(consortium)
        members = []
        if submission is not None:
            authorize(Action.PARTNER_LIST_VIEW, submission,
                      target={"consortium": consortium.id, "submission": submission.id})
            members = consortia.members(consortium)
        definition = runtime().definitions.get(consortium.programme.code)
        entries.append(
            {
                "consortium": consortium,
                "members": members,
                "submission": submission,
                "documents": ([item.document for item in
                               runtime().documents(db()).listing(submission)]
                              if submission else []),
                "definition": definition,
            }
        )
    return render_template("home/applicant.html", entries=entries, now=runtime().clock())


def _officer() -> str:
    programmes = authorizer().permitted(actor(), Action.PROGRAMME_MANAGE,
                                        ProgrammeService(db()).list())
    consortia = ConsortiumService(db(), cipher=runtime().cipher)
    submissions = SubmissionService(db())
    overview = [
        {
            "programme": programme,
            "consortia": len(consortia.list_for_programme(programme)),
            "states": submissions.state_counts(programme),
        }
        for programme in programmes
    ]
    return render_template("home/officer.html", overview=overview, now=runtime().clock())
