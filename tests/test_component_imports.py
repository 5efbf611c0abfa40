"""Imported score components: the CSV is checked whole (every problem named with its line,
nothing stored on any), values sealed, the file's SHA-256 recorded and audited, a new import
supersedes the previous one with its history kept, and nothing is imported once the ranking is
confirmed."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from tests.conftest import audit_events, snapshot_fixtures
from tests.evaluation_world import EvaluationWorld, actor, world_of
from vault.audit.service import Tag
from vault.evaluation.errors import ImportInvalid, RoundConfirmed, UnknownComponent
from vault.evaluation.models import ComponentImport, RoundState, StageRound
from vault.web.i18n import catalogue

STAGE = "stage_1"
NAMES = ("Baekdu", "Dokdo", "Eunha")


def _in_stage(world) -> None:
    with world.session() as session:
        for name in NAMES:
            world.submission(session, name).stage = STAGE
    world.in_window(STAGE)


built, database_url, data_dir, world = snapshot_fixtures(
    world_of(NAMES, _in_stage), EvaluationWorld.bound)


def _import(world, data: bytes, component: str = "benchmark", filename: str = "bench.csv"):
    with world.session() as session:
        return world.imports(session).import_csv(world.programme(session), STAGE, component,
                                                 data, filename, actor(world.officer))


def _count(world) -> int:
    with world.session() as session:
        return session.scalar(select(func.count()).select_from(ComponentImport))


def _problems(world, data: bytes) -> list[str]:
    with pytest.raises(ImportInvalid) as raised:
        _import(world, data)
    assert _count(world) == 0
    return [template.format(**values) for template, values in raised.value.problems]


def _row(world, name: str) -> str:
    return str(world.teams[name].submission_id)


GOOD = {"Baekdu": "81.5", "Dokdo": "77", "Eunha": "64.25"}


def test_the_template_lists_every_submission_with_an_empty_score(world):
    with world.session() as session:
        csv = world.imports(session).template(world.programme(session), STAGE, "user")
    lines = csv.splitlines()
    # With a byte order mark, so that a spreadsheet shows the Korean names; it imports as is.
    assert lines[0] == "\ufeffsubmission_id,consortium,score"
    assert lines[1:] == [f"{_row(world, name)},{name}," for name in NAMES]
    filled = csv.replace(",\r\n", ",50\r\n").encode("utf-8")
    assert _import(world, filled).rows == len(NAMES)


def test_a_filled_template_is_stored_sealed_with_its_sha256(world):
    data = world.csv(GOOD)
    view = _import(world, data, filename="../../agency/bench.csv")
    assert (view.rows, view.current, view.filename) == (3, True, "bench.csv")
    assert view.sha256 == hashlib.sha256(data).hexdigest()
    assert view.imported_by == "Test officer"
    with world.session() as session:
        scores = world.imports(session).scores(world.programme(session), STAGE)
        [sealed] = session.execute(text("SELECT values_sealed FROM component_imports")).one()
    assert scores == {"benchmark": {world.teams["Baekdu"].submission_id: Decimal("81.5"),
                                    world.teams["Dokdo"].submission_id: Decimal("77"),
                                    world.teams["Eunha"].submission_id: Decimal("64.25")}}
    assert b"81.5" not in bytes(sealed) and b"64.25" not in bytes(sealed)
    [event] = audit_events(world.runtime, Tag.STAGE_COMPONENT_IMPORTED)
    assert event["target"]["sha256"] == view.sha256 and event["target"]["rows"] == "3"
    assert "81.5" not in str(event)


def test_a_byte_order_mark_and_a_file_without_the_consortium_column_are_accepted(world):
    lines = ["Score,Submission_ID", *(f"{value},{_row(world, name)}"
                                      for name, value in GOOD.items())]
    view = _import(world, "\ufeff".encode() + "\n".join(lines).encode())
    assert view.rows == 3


@pytest.mark.parametrize(("content", "expected"), [
    (lambda w: b"id,score\r\n", "line 1: the header must be submission_id,score"),
    (lambda w: b"submission_id,score,notes\r\n", "line 1: the header must be"),
    (lambda w: w.csv({**GOOD, "Baekdu": "104.5"}), "line 2: 104.5 is outside 0-100."),
    (lambda w: w.csv({**GOOD, "Dokdo": "-1"}), "line 3: -1 is outside 0-100."),
    (lambda w: w.csv({**GOOD, "Eunha": "1.234"}), "line 4: 1.234 has more than 2 decimals."),
    (lambda w: w.csv({**GOOD, "Eunha": "abc"}), "line 4: abc is not a number."),
    (lambda w: w.csv({**GOOD, "Eunha": "1e2"}), "line 4: 1e2 is not a number."),
    (lambda w: w.csv({**GOOD, "Eunha": ""}), "line 4: the score is empty."),
    (lambda w: w.csv(GOOD) + f"{_row(w, 'Dokdo')},Dokdo,50\r\n".encode(),
     "line 5: the submission is listed twice (first on line 3)."),
    (lambda w: w.csv(GOOD) + f"{uuid.uuid4()},Stranger,50\r\n".encode(),
     "line 5: unknown submission."),
    (lambda w: w.csv(GOOD) + b"not-an-id,Stranger,50\r\n", "line 5: unknown submission."),
    (lambda w: w.csv({"Baekdu": "1", "Dokdo": "2"}), "missing: Eunha."),
    (lambda w: w.csv(GOOD) + b"a,b\r\n", "line 5: 2 values where the header has 3."),
    (lambda w: w.csv(GOOD).replace(b"Baekdu", "백두".encode("cp949")),
     "The file is not UTF-8 text."),
    (lambda w: b"", "The file is empty."),
    (lambda w: b"\r\n\r\n", "The file is empty."),
    (lambda w: b"submission_id,score\r\n" + b"x" * (1024 * 1024), "larger than 1 MiB"),
    (lambda w: b"submission_id,score\r\n" + b"x,1\r\n" * 1001, "more than 1000 rows"),
])
def test_a_file_with_a_problem_names_it_and_stores_nothing(world, content, expected):
    problems = _problems(world, content(world))
    assert any(expected in problem for problem in problems), problems


def test_every_problem_is_listed_up_to_twenty(world):
    rows = "\r\n".join(f"{uuid.uuid4()},X,1" for _ in range(30))
    with pytest.raises(ImportInvalid) as raised:
        _import(world, f"submission_id,consortium,score\r\n{rows}\r\n".encode())
    problems = raised.value.problems
    assert len(problems) == 21 and problems[-1] == ("and {count} more problems.", {"count": 13})
    assert raised.value.status == 422
    assert str(raised.value).startswith("The file cannot be imported: line 2: unknown")


def test_every_problem_has_korean(world):
    ko = catalogue("ko")
    samples = [b"", b"id\r\n", world.csv({**GOOD, "Eunha": "x"}),
               world.csv({"Baekdu": "1.234", "Dokdo": "200"}) + b"a\r\n"]
    templates = set()
    for data in samples:
        with pytest.raises(ImportInvalid) as raised:
            _import(world, data)
        templates |= {template for template, _ in raised.value.problems}
        korean = raised.value.translated(lambda t, **v: ko[t].format(**v))
        assert korean.startswith("파일을 가져올 수 없습니다")
    assert all(template in ko for template in templates) and len(templates) >= 7


def test_a_new_import_supersedes_the_previous_and_keeps_it(world, clock):
    first = _import(world, world.csv(GOOD))
    clock.advance(minutes=5)
    second = _import(world, world.csv({**GOOD, "Baekdu": "12"}))
    with world.session() as session:
        imports = world.imports(session)
        history = imports.imports(world.programme(session), STAGE)
        scores = imports.scores(world.programme(session), STAGE)
    assert [(view.id, view.current) for view in history] == [(second.id, True),
                                                             (first.id, False)]
    assert scores["benchmark"][world.teams["Baekdu"].submission_id] == Decimal(12)
    assert len(audit_events(world.runtime, Tag.STAGE_COMPONENT_IMPORTED)) == 2


@pytest.mark.parametrize("component", ["expert", "speed"])
def test_only_imported_components_take_a_file(world, component):
    with pytest.raises(UnknownComponent):
        _import(world, world.csv(GOOD), component=component)


def test_nothing_is_imported_once_the_ranking_is_confirmed(world, clock):
    with world.session() as session:
        session.add(StageRound(programme_id=world.programme(session).id, stage=STAGE,
                               state=RoundState.CONFIRMED, closed_at=clock(),
                               confirmed_at=clock(), result_sha256="0" * 64,
                               snapshot_sealed=b"sealed"))
    with pytest.raises(RoundConfirmed):
        _import(world, world.csv(GOOD))
    assert _count(world) == 0
