"""The ``vault`` command: init (with and without demo data), migrations, accounts, programmes."""

from __future__ import annotations

import stat
from collections import Counter

import pytest
from sqlalchemy import func, inspect, select

from tests.conftest import PASSWORD, get_user
from vault.cli import cli
from vault.consortia.models import Consortium, ConsortiumContact, ConsortiumMember
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.documents.models import DocumentVersion, Submission
from vault.identity.models import Role, User
from vault.organizations.models import Organization, OrganizationKind
from vault.organizations.service import OrganizationService
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.resources.models import ResourceRequest
from vault.screening.models import SubmissionReceipt
from vault.settings import DEMO_MARKER

PROGRAMME = "sovereign-ai-2025"
NEW_EMAIL = "new.reviewer@test.example"


def _invoke(app, *args: str, stdin: str | None = None):
    """Run ``vault <args>`` against the test app, with ``stdin`` as standard input."""
    return app.test_cli_runner().invoke(cli, list(args), input=stdin)


def _add_user(app, email: str = NEW_EMAIL, *extra: str, password: str = PASSWORD):
    return _invoke(app, "user", "add", "--email", email, "--name", "New Reviewer",
                   "--role", "reviewer", "--password-stdin", *extra, stdin=password + "\n")


def _count(runtime, model) -> int:
    with unit_of_work(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(model))


def _counts(runtime) -> dict[str, int]:
    """Row counts of everything ``init --demo`` creates."""
    models = (User, Organization, Programme, Consortium, ConsortiumMember, ConsortiumContact,
              Submission, DocumentVersion, ResourceRequest, SubmissionReceipt)
    return {model.__name__: _count(runtime, model) for model in models}


# -- user add -------------------------------------------------------------------------------


def test_user_add_with_password_stdin_creates_an_account_that_can_sign_in(app, runtime):
    result = _add_user(app)
    assert result.exit_code == 0, result.output
    assert f"Created reviewer {NEW_EMAIL}" in result.output

    listing = _invoke(app, "user", "list")
    assert listing.exit_code == 0
    assert NEW_EMAIL in listing.output and "New Reviewer" in listing.output
    with unit_of_work(runtime.sessions) as session:
        user = runtime.identity(session).authenticate(NEW_EMAIL, PASSWORD)
        assert user.role is Role.REVIEWER
        assert user.active and not user.demo_account


def test_user_add_with_org_records_the_affiliation(app, runtime):
    with unit_of_work(runtime.sessions) as session:
        org = OrganizationService(session).get_or_create("Test University",
                                                         OrganizationKind.UNIVERSITY)
    result = _add_user(app, NEW_EMAIL, "--org", "Test University")
    assert result.exit_code == 0, result.output
    with unit_of_work(runtime.sessions) as session:
        identity = runtime.identity(session)
        assert identity.employer(identity.find_by_email(NEW_EMAIL)).id == org.id


def test_user_add_refuses_an_email_differing_only_in_case(app, runtime):
    assert _add_user(app).exit_code == 0
    result = _add_user(app, NEW_EMAIL.upper())
    assert result.exit_code == 2
    assert "already exists" in result.output
    assert "Traceback" not in result.output
    assert _count(runtime, User) == 1


@pytest.mark.parametrize(
    ("extra", "password", "message"),
    [
        ((), "short", "at least 12 characters"),
        ((), "password1234", "too common"),
        (("--org", "No Such Organisation"), PASSWORD, "No Such Organisation"),
    ],
    ids=["short-password", "common-password", "unknown-org"],
)
def test_user_add_with_bad_input_exits_2_and_writes_nothing(app, runtime, extra, password,
                                                            message):
    result = _add_user(app, NEW_EMAIL, *extra, password=password)
    assert result.exit_code == 2
    assert message in result.output
    assert _count(runtime, User) == 0


def test_user_add_refuses_a_malformed_email(app, runtime):
    result = _add_user(app, "not-an-address")
    assert result.exit_code == 2
    assert "not a valid e-mail address" in result.output
    assert _count(runtime, User) == 0


def test_user_add_with_an_invalid_role_is_a_usage_error(app, runtime):
    result = _invoke(app, "user", "add", "--email", NEW_EMAIL, "--name", "X", "--role", "root",
                     "--password-stdin", stdin=PASSWORD + "\n")
    assert result.exit_code == 2
    assert "--role" in result.output
    assert _count(runtime, User) == 0


def test_user_add_prompts_for_the_password_twice(app, runtime):
    result = _invoke(app, "user", "add", "--email", NEW_EMAIL, "--name", "New Reviewer",
                     "--role", "officer", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    with unit_of_work(runtime.sessions) as session:
        user = runtime.identity(session).authenticate(NEW_EMAIL, PASSWORD)
        assert user.role is Role.OFFICER


def test_user_add_with_mismatched_prompted_passwords_creates_nothing(app, runtime):
    result = _invoke(app, "user", "add", "--email", NEW_EMAIL, "--name", "New Reviewer",
                     "--role", "officer", stdin=f"{PASSWORD}\n{PASSWORD}-typo\n")
    assert result.exit_code != 0
    assert _count(runtime, User) == 0


# -- user deactivate / list -----------------------------------------------------------------


def test_user_deactivate_of_an_unknown_email_exits_2(app):
    result = _invoke(app, "user", "deactivate", "--email", "nobody@test.example")
    assert result.exit_code == 2
    assert "nobody@test.example" in result.output


def test_user_deactivate_ends_the_account_and_its_sessions(app, runtime, make_user):
    account = make_user(Role.REVIEWER)
    before = get_user(runtime, account.id).session_generation

    result = _invoke(app, "user", "deactivate", "--email", account.email.upper())

    assert result.exit_code == 0, result.output
    user = get_user(runtime, account.id)
    assert user.active is False
    assert user.session_generation == before + 1
    listing = _invoke(app, "user", "list").output.splitlines()
    (line,) = [line for line in listing if line.startswith(account.email)]
    assert line.split()[3] == "no"  # columns: e-mail, role, mfa, active


# -- init, db, programme --------------------------------------------------------------------


def test_init_without_demo_is_idempotent_and_creates_no_accounts(app, runtime, settings):
    first = _invoke(app, "init")
    assert first.exit_code == 0, first.output
    assert f"Programme {PROGRAMME}: loaded" in first.output
    counts = _counts(runtime)

    second = _invoke(app, "init")

    assert second.exit_code == 0, second.output
    assert f"Programme {PROGRAMME}: unchanged" in second.output
    assert _counts(runtime) == counts
    assert counts["Programme"] == 1 and counts["User"] == 0 and counts["Consortium"] == 0
    assert settings.demo is False


def test_programme_list_shows_the_programme_after_init(app):
    assert _invoke(app, "init").exit_code == 0
    result = _invoke(app, "programme", "list")
    assert result.exit_code == 0
    assert PROGRAMME in result.output


def test_db_downgrade_to_base_then_upgrade_rebuilds_the_schema(app, runtime):
    down = _invoke(app, "db", "downgrade", "--revision", "base")
    assert down.exit_code == 0, down.output
    assert not set(inspect(runtime.engine).get_table_names()) & {"users", "consortia"}

    up = _invoke(app, "db", "upgrade")

    assert up.exit_code == 0, up.output
    assert {"users", "consortia"} <= set(inspect(runtime.engine).get_table_names())
    assert _add_user(app).exit_code == 0


def test_db_downgrade_requires_a_revision(app, runtime):
    result = _invoke(app, "db", "downgrade")
    assert result.exit_code == 2
    assert "users" in inspect(runtime.engine).get_table_names()


# -- init --demo ----------------------------------------------------------------------------


@pytest.fixture
def demo(app, settings):
    """The test vault after ``vault init --demo`` (about 3 s: 28 argon2 hashes and some 140
    encrypted uploads)."""
    assert settings.demo is False
    result = _invoke(app, "init", "--demo")
    assert result.exit_code == 0, result.output
    return result


def test_init_demo_creates_15_consortia_with_partners_and_conflicted_reviewers(demo, runtime):
    with unit_of_work(runtime.sessions) as session:
        programme = ProgrammeService(session).by_code(PROGRAMME)
        service = ConsortiumService(session, cipher=runtime.cipher)
        consortia = service.list_for_programme(programme)
        assert len(consortia) == 15
        member_org_ids = set()
        for consortium in consortia:
            lead, *partners = service.members(consortium)
            assert lead.position == 0
            assert lead.role == "lead"
            assert lead.organization_id == consortium.lead_organization_id
            assert 2 <= len(partners) <= 5, consortium.name
            assert any(p.organization_kind is OrganizationKind.UNIVERSITY for p in partners)
            assert [p.position for p in partners] == list(range(1, len(partners) + 1))
            member_org_ids |= {p.organization_id for p in partners if p.organization_id}

        # Some reviewers work for organisations that are partners somewhere: conflicts exist.
        reviewers = [u for u in runtime.identity(session).list_users() if u.role is Role.REVIEWER]
        assert len(reviewers) == 10
        employers = runtime.identity(session).employers(reviewers)
        assert set(employers) == {user.id for user in reviewers}
        conflicted = [user for user in reviewers if employers[user.id].id in member_org_ids]
        assert len(conflicted) == 4  # reviewers 1-4, as the README says
        # ... and the vault found them itself: pending conflicts that deny access until decided.
        from vault.conflicts.models import Conflict, ConflictSource, ConflictStatus

        detected = session.scalars(select(Conflict)).all()
        assert {c.user_id for c in detected if c.user.role is Role.REVIEWER} == {
            user.id for user in conflicted}
        assert all(c.source is ConflictSource.DETECTED and c.status is ConflictStatus.PENDING
                   for c in detected)
    assert "conflicts of interest detected" in demo.output


def test_init_demo_creates_demo_accounts_and_private_credentials(demo, runtime, settings):
    with unit_of_work(runtime.sessions) as session:
        users = runtime.identity(session).list_users()
        service = ConsortiumService(session, cipher=runtime.cipher)
        consortia = service.list_for_programme(ProgrammeService(session).by_code(PROGRAMME))
        roles = Counter(user.role for user in users)
        assert roles == {Role.APPLICANT: 15, Role.REVIEWER: 10, Role.OFFICER: 1,
                         Role.AUDITOR: 1, Role.ADMIN: 1}
        assert all(user.demo_account for user in users)

        # Each consortium has exactly one applicant contact, and each applicant one consortium.
        contacted = []
        for applicant in (user for user in users if user.role is Role.APPLICANT):
            (consortium,) = service.consortia_of(applicant)
            contacted.append(consortium.id)
        assert sorted(contacted) == sorted(consortium.id for consortium in consortia)

    credentials = settings.credentials_file
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    text = credentials.read_text(encoding="utf-8")
    assert all(user.email in text for user in users)
    assert (settings.data_dir / DEMO_MARKER).exists()
    assert settings.demo is True
    assert "Demo data created" in demo.output

    # The written password is the real one: the admin can sign in with it.
    (admin_line,) = [line for line in text.splitlines() if line.startswith("admin ")]
    _role, email, password, *_name = admin_line.split()
    with unit_of_work(runtime.sessions) as session:
        assert runtime.identity(session).authenticate(email, password).role is Role.ADMIN


def test_init_demo_again_says_present_and_duplicates_nothing(demo, app, runtime, settings):
    counts = _counts(runtime)
    credentials = settings.credentials_file.read_bytes()
    (settings.data_dir / DEMO_MARKER).unlink()

    again = _invoke(app, "init", "--demo")

    assert again.exit_code == 0, again.output
    assert "Demo data already present" in again.output
    assert _counts(runtime) == counts
    assert counts["User"] == 28 and counts["Consortium"] == 15
    assert counts["DocumentVersion"] > 100 and counts["ResourceRequest"] == 15
    assert counts["SubmissionReceipt"] == 14
    assert settings.credentials_file.read_bytes() == credentials
    assert settings.demo is True  # the marker is restored
