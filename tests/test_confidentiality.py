"""The partner list cannot be read from the database without the field key."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests.conftest import PG_URL
from vault.consortia.models import Consortium, ConsortiumMember
from vault.consortia.service import ConsortiumService
from vault.crypto import DecryptionError
from vault.db import unit_of_work
from vault.organizations.models import OrganizationKind
from vault.organizations.service import OrganizationService
from vault.programmes.service import ProgrammeService

PARTNER = "Hidden Partner Graduate School of Quantum Linguistics"
ROLE = "confidential-role-marker"
CONTRIBUTION = "confidential-contribution-marker: 512 B200 GPUs"


@pytest.fixture
def partner_list(runtime):
    """A consortium whose partner list names an organisation known nowhere else."""
    with unit_of_work(runtime.sessions) as session:
        programme, _ = ProgrammeService(session).sync(runtime.definitions["sovereign-ai-2025"])
        lead = OrganizationService(session).get_or_create("Visible Lead Co.",
                                                          OrganizationKind.COMPANY)
        consortia = ConsortiumService(session, cipher=runtime.cipher)
        consortium = consortia.create(programme, "Visible Team", lead)
        consortia.add_member(consortium, name=PARTNER, kind=OrganizationKind.UNIVERSITY,
                             role=ROLE, contribution=CONTRIBUTION)
        return consortium.id


def _database_bytes(runtime, database_url) -> bytes:
    if not PG_URL:
        runtime.engine.dispose()  # checkpoint the WAL into the file
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    # PostgreSQL: every row of every table, as text, as a dump would show it.
    chunks = []
    with runtime.engine.connect() as connection:
        tables = connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        for table in tables:
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608
                chunks.append(repr(tuple(row)).encode())
                chunks.extend(bytes(v) for v in row if isinstance(v, bytes | memoryview))
    return b"\n".join(chunks)


def test_partner_list_is_not_in_the_database_in_plaintext(runtime, database_url, partner_list):
    raw = _database_bytes(runtime, database_url)
    assert b"Visible Team" in raw  # the check can see plaintext when it is there
    for secret in (PARTNER, ROLE, CONTRIBUTION, "Quantum Linguistics"):
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw


def test_partner_list_opens_with_the_key(runtime, partner_list):
    with unit_of_work(runtime.sessions) as session:
        members = ConsortiumService(session, cipher=runtime.cipher).members(
            session.get(Consortium, partner_list))
    assert [(m.organization_name, m.role, m.contribution) for m in members] == [
        (PARTNER, ROLE, CONTRIBUTION)]


def test_a_sealed_entry_moved_to_another_row_does_not_open(runtime, partner_list):
    with unit_of_work(runtime.sessions) as session:
        consortium = session.get(Consortium, partner_list)
        consortia = ConsortiumService(session, cipher=runtime.cipher)
        consortia.add_member(consortium, name="Other", kind=OrganizationKind.COMPANY,
                             role="partner", contribution="x")
        first, second = session.scalars(
            select(ConsortiumMember).order_by(ConsortiumMember.position))
        second.organization_sealed = first.organization_sealed
        session.flush()
        with pytest.raises(DecryptionError):
            consortia.members(consortium)
