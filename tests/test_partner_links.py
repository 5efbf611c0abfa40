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
from sqlalchemy import LargeBinary, select

import vault.models  # noqa: F401 - registers every table on Base.metadata
from vault.cli import cli
from vault.consortia.service import ConsortiumService
from vault.db import Base, unit_of_work
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
                text = _plaintext(value) if column in opaque else (
                    None if value is None else str(value))
                if text is None:
                    continue
                row.texts.append(text)
                if isinstance(value, uuid.UUID):
                    if column in fk_columns:
                        row.refers.add(value)
                    elif value != key:
                        row.refers.add(value)  # an id in a plain column: a join by hand
                else:
                    row.refers.update(uuid.UUID(m.replace("-", "")) for m in _UUID.findall(text))
            yield key, row


def _reach(rows: dict, start) -> set:
    """``start`` and every row reachable from it by following references."""
    seen, todo = {start}, [start]
    while todo:
        for target in rows[todo.pop()].refers:
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


def test_no_plaintext_join_ties_a_sealed_partner_to_its_consortium(demo, runtime):
    partners = _sealed_partners(runtime)
    assert len(partners) > 30
    with runtime.engine.connect() as connection:
        rows = dict(_rows(connection))
    assert any(row.name == "audit_events" for row in rows.values())  # the log is scanned

    # The check can see a link when there is one: a row holding the consortium and a name.
    by_name: dict[str, set] = defaultdict(set)
    for key, row in rows.items():
        for text in row.texts:
            for name, _c, _n in partners:
                if name.casefold() in text.casefold():
                    by_name[name].add(key)
    leader = next(k for k, r in rows.items() if r.name == "consortia")
    assert rows[leader].refers, "a consortium refers to its programme and lead"

    leaks = []
    for start in rows:
        reached = _reach(rows, start)
        for name, consortium_id, consortium_name in partners:
            if consortium_id in reached and by_name[name] & reached:
                leaks.append(f"{rows[start].name} {start}: {name!r} ↔ {consortium_name!r}")
    assert leaks == [], f"{len(leaks)} plaintext links, e.g. " + "; ".join(leaks[:40])


def test_the_demo_has_partners_that_are_registered_employers(demo, runtime):
    """The scan above is meaningful only if some sealed partners are also plaintext
    organisations (the reviewers' employers) — the case a join could exploit."""
    partners = _sealed_partners(runtime)
    with runtime.engine.connect() as connection:
        rows = dict(_rows(connection))
    registered = {text for row in rows.values() if row.name == "organizations"
                  for text in row.texts}
    assert sum(1 for name, _c, _n in partners if name in registered) >= 9
