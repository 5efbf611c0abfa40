"""No plaintext in the database ties a sealed partner to its consortium.

A partner list is sealed, but a fact derived from it — a detected conflict, its evidence, a
dual-control grant, an audit event — can name the partner just as well if its plaintext links a
person (whose employer is known) to the consortium. This test looks at the demo's database the
way someone holding a copy without the keys would: every plaintext value of every table, and
every row reachable from it through foreign keys or through ids written inside plaintext
(the audit log's event JSON), and asks for each sealed partner whether any row reaches both the
partner organisation and its consortium. New tables are covered by walking the metadata.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import LargeBinary, inspect, select, text
from sqlalchemy.orm import Session

import vault.models  # noqa: F401 - registers every table on Base.metadata
from vault import migrate
from vault.cli import cli
from vault.conflicts.detection import affiliation_organization_id
from vault.conflicts.links import conflict_link, conflicts_between, consortium_of
from vault.conflicts.models import Affiliation, Conflict
from vault.conflicts.service import ConflictService
from vault.consortia.models import ConsortiumContact
from vault.consortia.service import ConsortiumService
from vault.crypto import FieldCipher
from vault.db import Base, make_engine, unit_of_work
from vault.demo.world import DOMAIN
from vault.documents.models import Submission
from vault.grants.service import GrantService
from vault.identity.models import Role, User
from vault.identity.service import employer_id
from vault.organizations.models import OrganizationKind
from vault.organizations.service import OrganizationService
from vault.policy.actions import Action, Actor
from vault.policy.errors import AccessDenied
from vault.programmes.service import ProgrammeService

PROGRAMME = "sovereign-ai-2025"
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)


@dataclass
class Row:
    """One row as the plaintext shows it: its text, and the rows it points at."""

    name: str
    texts: list[str] = field(default_factory=list)
    refers: set[uuid.UUID] = field(default_factory=set)


def _plaintext(value: object) -> str | None:
    """A value as plaintext, or ``None`` for ciphertext and digests (bytes that are not JSON)."""
    if value is None:
        return None
    if isinstance(value, bytes | memoryview):
        try:
            decoded = bytes(value).decode("utf-8")
            json.loads(decoded)
        except (UnicodeDecodeError, ValueError):
            return None  # sealed or hashed: unreadable without a key
        return decoded
    return str(value)


def _rows(connection) -> Iterator[tuple[uuid.UUID | str, Row]]:
    """Every row of every table; a row's key is its id (or table and primary key), its
    references the rows named by its foreign keys and by ids written in its plaintext."""
    for table in Base.metadata.sorted_tables:
        fk_columns = {fk.parent.name for fk in table.foreign_keys}
        opaque = {c.name for c in table.columns if isinstance(c.type, LargeBinary)}
        for record in connection.execute(select(table)).mappings():
            pk = [record[c.name] for c in table.primary_key.columns]
            key = pk[0] if len(pk) == 1 and isinstance(pk[0], uuid.UUID) else (
                f"{table.name}:{pk}")
            row = Row(table.name)
            for column, value in record.items():
                shown = _plaintext(value) if column in opaque else (
                    None if value is None else str(value))
                if shown is None:
                    continue
                row.texts.append(shown)
                if isinstance(value, uuid.UUID):
                    if column in fk_columns:
                        row.refers.add(value)
                    elif value != key:
                        row.refers.add(value)  # an id in a plain column: a join by hand
                else:
                    row.refers.update(uuid.UUID(m.replace("-", "")) for m in _UUID.findall(shown))
            yield key, row


def _reach(rows: dict, start, *, through_consortia: bool = True) -> set:
    """``start`` and every row reachable from it by following references; without
    ``through_consortia``, a consortium's own references (its programme and its public lead)
    are not followed."""
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        if not through_consortia and here != start and rows[here].name == "consortia":
            continue
        for target in rows[here].refers:
            if target in rows and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.fixture
def demo(app, runtime):
    """The test vault after ``vault init --demo`` (detection has run)."""
    result = app.test_cli_runner().invoke(cli, ["init", "--demo"])
    assert result.exit_code == 0, result.output
    with unit_of_work(runtime.sessions) as session:
        runtime.audit(session).sequence()  # the events in the log, as an export shows them
    return result


def _sealed_partners(runtime) -> list[tuple[str, uuid.UUID, str]]:
    """(partner name, consortium id, consortium name) for every partner that is not the lead."""
    found = []
    with unit_of_work(runtime.sessions) as session:
        programme = ProgrammeService(session).by_code(PROGRAMME)
        service = ConsortiumService(session, cipher=runtime.cipher)
        for consortium in service.list_for_programme(programme):
            lead = consortium.lead_organization.name
            for member in service.members(consortium):
                if member.position > 0 and member.organization_name != lead:
                    found.append((member.organization_name, consortium.id, consortium.name))
    return found


def _links(runtime, partners) -> list[str]:
    """Every row whose plaintext reaches both a sealed partner and that partner's consortium."""
    with runtime.engine.connect() as connection:
        rows = dict(_rows(connection))
    # The log is scanned, its events' JSON read for the ids they name.
    assert any(row.name == "audit_events" and row.refers for row in rows.values())
    # Where each partner's name stands in plaintext (its registered organisation, if any).
    by_name: dict[str, set] = defaultdict(set)
    for key, row in rows.items():
        for shown in row.texts:
            for name, _c, _n in partners:
                if name.casefold() in shown.casefold():
                    by_name[name].add(key)
    # A row links a partner to its consortium if it reaches both; so do two rows that reach
    # the same person, one the consortium and the other the partner (a join on the person).
    # The partner counts only when reached other than through a consortium's public lead.
    leaks = []
    consortia_of: dict[object, set] = defaultdict(set)
    names_of: dict[object, set] = defaultdict(set)
    for start in rows:
        reached = _reach(rows, start)
        named = _reach(rows, start, through_consortia=False)
        for name, consortium_id, consortium_name in partners:
            if consortium_id in reached and by_name[name] & named:
                leaks.append(f"{rows[start].name} {start}: {name!r} ↔ {consortium_name!r}")
        for person in (key for key in reached if rows[key].name == "users"):
            consortia_of[person] |= reached
            names_of[person] |= named
    for person in consortia_of:
        for name, consortium_id, consortium_name in partners:
            if consortium_id in consortia_of[person] and by_name[name] & names_of[person]:
                leaks.append(f"joined on users {person}: {name!r} ↔ {consortium_name!r}")
    return leaks


def test_no_plaintext_join_ties_a_sealed_partner_to_its_consortium(demo, runtime):
    partners = _sealed_partners(runtime)
    assert len(partners) > 30
    leaks = _links(runtime, partners)
    assert leaks == [], f"{len(leaks)} plaintext links, e.g. " + "; ".join(leaks[:20])

    # The scan sees a link when there is one: a consortium's contact renamed after a partner
    # (plaintext, reached from the contact row that names the consortium).
    name, consortium_id, consortium_name = partners[0]
    with unit_of_work(runtime.sessions) as session:
        contact = session.scalar(select(ConsortiumContact).where(
            ConsortiumContact.consortium_id == consortium_id))
        session.get(User, contact.user_id).display_name = f"Liaison at {name}"
    found = _links(runtime, partners)
    assert any(name in leak and consortium_name in leak and "consortium_contacts" in leak
               for leak in found), found


def test_acting_on_conflicts_leaves_no_plaintext_link_either(demo, runtime, clock):
    """After the demo: a second officer employed by a partner (detected at once), a past
    affiliation with another partner, a dual-control grant asked and approved, a conflicted
    reviewer refused a read, an applicant's challenge, officers' decisions — and still no
    row or event of the log joins a partner to its consortium."""
    partners = _sealed_partners(runtime)
    by_consortium = defaultdict(list)
    for name, consortium_id, _n in partners:
        by_consortium[consortium_id].append(name)
    with unit_of_work(runtime.sessions) as session:
        identity = runtime.identity(session)
        conflicts = ConflictService(session, cipher=runtime.cipher, clock=runtime.clock,
                                    definitions=runtime.definitions,
                                    audit=runtime.audit(session), lookup=runtime.lookup)
        programme = ProgrammeService(session).by_code(PROGRAMME)
        consortia = {c.id: c for c in ConsortiumService(
            session, cipher=runtime.cipher).list_for_programme(programme)}
        first, second = list(consortia)[:2]
        organizations = OrganizationService(session)
        officer = identity.find_by_email("officer@" + DOMAIN)
        chief = Actor(officer.id, Role.OFFICER, mfa=True)
        deputy_user = identity.create_user(
            email="deputy@" + DOMAIN, display_name="Deputy Officer", role=Role.OFFICER,
            password="insecure-deputy-password")
        deputy = Actor(deputy_user.id, Role.OFFICER, mfa=True)
        employer = organizations.get_or_create(by_consortium[first][0], OrganizationKind.COMPANY)
        found = conflicts.set_affiliation(chief, deputy_user, employer)
        former = organizations.get_or_create(by_consortium[second][-1],
                                             OrganizationKind.COMPANY)
        found += conflicts.add_affiliation(chief, deputy_user, former,
                                           ends_on=clock().date())
        assert len(found) >= 2
        grants = GrantService(session, clock=runtime.clock, definitions=runtime.definitions,
                              cipher=runtime.cipher, audit=runtime.audit(session))
        grant = grants.request_grant(deputy, consortia[first], "insecure test: a re-check")
        grants.approve(chief, grant)
        for conflict in found:
            conflicts.decide(chief, conflict, confirm=True, reason="insecure test decision")

        # A reviewer with a detected conflict is refused that consortium's proposal.
        detected = [c for c in conflicts.for_programme(programme)
                    if c.conflict.user.role is Role.REVIEWER]
        view = detected[0]
        reviewer = Actor(view.conflict.user_id, Role.REVIEWER, mfa=True)
        submission = session.scalar(select(Submission).where(
            Submission.consortium_id == view.consortium.id))
        with pytest.raises(AccessDenied):
            runtime.authorizer(session).authorize(reviewer, Action.SUBMISSION_VIEW, submission)
        contact = session.scalar(select(ConsortiumContact).where(
            ConsortiumContact.consortium_id == view.consortium.id))
        applicant = Actor(contact.user_id, Role.APPLICANT,
                          consortium_ids=frozenset({view.consortium.id}))
        conflicts.challenge(applicant, submission, view.conflict.user.email,
                            "insecure test: works with our partner")
        runtime.audit(session).sequence()
    leaks = _links(runtime, partners)
    assert leaks == [], f"{len(leaks)} plaintext links, e.g. " + "; ".join(leaks[:20])


def test_the_demo_has_partners_that_are_registered_employers(demo, runtime):
    """The scan above is meaningful only if some sealed partners are also plaintext
    organisations (the reviewers' employers) — the case a join could exploit."""
    partners = _sealed_partners(runtime)
    with runtime.engine.connect() as connection:
        rows = dict(_rows(connection))
    registered = {shown for row in rows.values() if row.name == "organizations"
                  for shown in row.texts}
    assert sum(1 for name, _c, _n in partners if name in registered) >= 9


# -- migration 0011 converts what is there --------------------------------------------------


def test_migration_seals_existing_links_and_downgrade_opens_them(database_url, settings):
    engine = make_engine(database_url)
    cipher = FieldCipher(settings.field_key)
    sqlite = engine.dialect.name == "sqlite"
    ids = {name: uuid.uuid4() for name in (
        "org", "lead", "programme", "consortium", "user", "affiliation", "conflict")}
    value = {k: (v.hex if sqlite else str(v)) for k, v in ids.items()}
    try:
        migrate.downgrade(engine, "0009")
        with engine.begin() as connection:
            for org in ("org", "lead"):
                connection.execute(text(
                    "INSERT INTO organizations (id, name, kind, created_at) "
                    "VALUES (:id, :name, 'company', CURRENT_TIMESTAMP)"),
                    {"id": value[org], "name": f"Migrated {org}"})
            connection.execute(text(
                "INSERT INTO programmes (id, code, title_ko, title_en, submission_deadline, "
                "current_stage, definition_sha256, created_at) VALUES (:id, 'p', 'ko', 'en', "
                "CURRENT_TIMESTAMP, 'call', :sha, CURRENT_TIMESTAMP)"),
                {"id": value["programme"], "sha": "0" * 64})
            connection.execute(text(
                "INSERT INTO consortia (id, programme_id, lead_organization_id, name, created_at)"
                " VALUES (:id, :p, :o, 'Team', CURRENT_TIMESTAMP)"),
                {"id": value["consortium"], "p": value["programme"], "o": value["lead"]})
            connection.execute(text(
                "INSERT INTO users (id, email, email_key, display_name, organization_id, role, "
                "active, password_hash, password_changed_at, session_generation, demo_account, "
                "created_at) VALUES (:id, 'r@x.example', 'r@x.example', 'R', :o, 'reviewer', "
                ":t, 'x', CURRENT_TIMESTAMP, 0, :f, CURRENT_TIMESTAMP)"),
                {"id": value["user"], "o": value["org"], "t": True, "f": False})
            connection.execute(text(
                "INSERT INTO affiliations (id, user_id, organization_id, created_at) "
                "VALUES (:id, :u, :o, CURRENT_TIMESTAMP)"),
                {"id": value["affiliation"], "u": value["user"], "o": value["org"]})
            connection.execute(text(
                "INSERT INTO conflicts (id, programme_id, user_id, consortium_id, source, status,"
                " details_sealed, created_at) VALUES (:id, :p, :u, :c, 'detected', 'pending', "
                ":d, CURRENT_TIMESTAMP)"),
                {"id": value["conflict"], "p": value["programme"], "u": value["user"],
                 "c": value["consortium"], "d": b"sealed"})
        with pytest.raises(RuntimeError, match="VAULT_FIELD_KEY"):
            migrate.upgrade(engine)  # rows to seal, no key: refused, nothing changed
        assert "organization_id" in {c["name"] for c in inspect(engine).get_columns("users")}

        migrate.upgrade(engine, field_key=settings.field_key)
        with Session(engine) as session:
            user = session.get(User, ids["user"])
            assert employer_id(cipher, user) == ids["org"]
            (past,) = session.scalars(select(Affiliation))
            assert affiliation_organization_id(cipher, past) == ids["org"]
            (conflict,) = session.scalars(select(Conflict))
            assert consortium_of(cipher, conflict) == ids["consortium"]
            assert conflict.link_digest == conflict_link(cipher, ids["user"], ids["consortium"])
            assert conflicts_between(session, cipher, ids["user"], ids["consortium"]) == [
                conflict]

        migrate.downgrade(engine, "0009", field_key=settings.field_key)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT organization_id FROM users")).scalar() in (
                ids["org"], value["org"])
            assert connection.execute(text("SELECT organization_id FROM affiliations")
                                      ).scalar() in (ids["org"], value["org"])
            assert connection.execute(text("SELECT consortium_id FROM conflicts")).scalar() in (
                ids["consortium"], value["consortium"])
        migrate.upgrade(engine, field_key=settings.field_key)
    finally:
        engine.dispose()
