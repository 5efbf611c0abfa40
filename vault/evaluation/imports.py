"""Imported score components: the CSV files of the evaluation agencies (e.g. benchmark and user
evaluation scores of a composite stage).

Format: UTF-8 (a byte-order mark is allowed), a header ``submission_id,score`` (a
``consortium`` column may be added and is ignored, so the downloaded template can be filled
in), one row per submission in the stage, each exactly once, the score a decimal with at most two
decimals inside the component's scale; at most 1 MiB and 1000 rows. The whole file is checked
first and every problem is reported with its line (the first 20); nothing is stored when there
is one. A new import of the component supersedes the previous one, whose row stays as history.

The values are confidential: sealed with the field cipher (associated data = table, column, row
id), never in an error message or an audit event. The file's name, SHA-256 and row count, who
imported it and when are in the clear. Imports stop once the stage's ranking is confirmed.
Callers authorize ``stage:import`` on the programme first.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import PurePosixPath, PureWindowsPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.crypto import FieldCipher
from vault.documents.models import Submission
from vault.evaluation.errors import ImportInvalid, RoundConfirmed, UnknownComponent
from vault.evaluation.models import ComponentImport, RoundState
from vault.evaluation.rounds import (
    canonical,
    definition_stage,
    round_row,
    stage_submissions,
    state_of,
    user_names,
)
from vault.policy.actions import Actor
from vault.programmes.definition import ProgrammeDefinition, Stage
from vault.programmes.evaluation_rules import Component
from vault.programmes.models import Programme
from vault.spreadsheets import spreadsheet_csv

#: The largest file accepted, in bytes, and the most data rows.
MAX_BYTES = 1024 * 1024
MAX_ROWS = 1000
#: Problems listed in the error (the rest are counted).
MAX_PROBLEMS = 20
#: A score: digits, optionally a point and up to two decimals (a sign only to say it is wrong).
_NUMBER = re.compile(r"^[+-]?(\d+)(?:\.(\d+))?$")
_ECHO = 20
_TABLE = ComponentImport.__tablename__


@dataclass(frozen=True)
class ImportView:
    """One import of a component as the officer's history shows it (never its values)."""

    id: uuid.UUID
    component: Component
    filename: str
    sha256: str
    rows: int
    imported_by: str
    imported_at: datetime
    current: bool


class ComponentImports:
    """Imports of score components on one database session (flushes; the caller commits)."""

    def __init__(self, session: Session, *, cipher: FieldCipher, clock: Callable[[], datetime],
                 definitions: Mapping[str, ProgrammeDefinition], audit: AuditLog | None = None,
                 request: RequestInfo | None = None) -> None:
        self.session = session
        self.cipher = cipher
        self.clock = clock
        self.definitions = definitions
        self.audit = audit or AuditLog(session, clock=clock)
        self.request = request or RequestInfo()

    def template(self, programme: Programme, stage_id: str, component_id: str) -> str:
        """A CSV to fill in: ``submission_id,consortium,score`` with one row per submission in
        the stage and the score empty. Raises ``UnknownStage`` or ``UnknownComponent``."""
        self._component(programme, stage_id, component_id)
        return spreadsheet_csv(
            ("submission_id", "consortium", "score"),
            ((str(submission.id), submission.consortium.name, "")
             for submission in stage_submissions(self.session, programme, stage_id)))

    def import_csv(self, programme: Programme, stage_id: str, component_id: str, data: bytes,
                   filename: str, actor: Actor) -> ImportView:
        """Check the whole file and store it as the component's current import (the previous
        one is kept as history); audited with the file's SHA-256.

        Raises ``UnknownStage``, ``UnknownComponent``, ``RoundConfirmed`` (the ranking is
        confirmed) or ``ImportInvalid`` (every problem with its line; nothing stored).
        """
        component = self._component(programme, stage_id, component_id)
        if state_of(round_row(self.session, programme, stage_id, lock=True)) in (
                RoundState.CONFIRMED, RoundState.PUBLISHED):
            raise RoundConfirmed(stage=stage_id)
        submissions = stage_submissions(self.session, programme, stage_id)
        values = _parse(data, component, submissions)
        now = self.clock()
        previous = self.session.scalars(select(ComponentImport).where(
            ComponentImport.programme_id == programme.id, ComponentImport.stage == stage_id,
            ComponentImport.component == component.id,
            ComponentImport.superseded_at.is_(None)).with_for_update()).one_or_none()
        if previous is not None:
            previous.superseded_at = now
            self.session.flush()  # before the insert: one current import per component
        row = ComponentImport(
            id=uuid.uuid4(), programme_id=programme.id, stage=stage_id, component=component.id,
            filename=_clean_filename(filename), sha256=hashlib.sha256(data).hexdigest(),
            rows=len(values), imported_by_id=actor.user_id, imported_by_role=actor.role_name,
            imported_at=now)
        row.values_sealed = self.cipher.seal(_TABLE, "values", row.id, canonical(
            {str(submission_id): str(score) for submission_id, score in values.items()}))
        self.session.add(row)
        self.session.flush()
        self.audit.record(Tag.STAGE_COMPONENT_IMPORTED, actor=actor, request=self.request,
                          target={"programme": programme.code, "stage": stage_id,
                                  "component": component.id, "import": row.id,
                                  "sha256": row.sha256, "rows": row.rows,
                                  "superseded": previous.id if previous else None})
        return self._view(row, component, user_names(self.session, [row.imported_by_id]))

    def imports(self, programme: Programme, stage_id: str) -> list[ImportView]:
        """Every import of the stage's components, newest first. Raises ``UnknownStage``."""
        _, stage = definition_stage(self.definitions, programme, stage_id)
        rows = sorted(self.session.scalars(select(ComponentImport).where(
            ComponentImport.programme_id == programme.id, ComponentImport.stage == stage_id)),
            # Current imports first, then by when they were replaced: the newest first even
            # when two imports share a timestamp.
            key=lambda row: (row.superseded_at is None, row.superseded_at or row.imported_at,
                             row.imported_at), reverse=True)
        names = user_names(self.session, (row.imported_by_id for row in rows))
        known = {component.id: component for component in stage.components}
        return [self._view(row, known[row.component], names) for row in rows
                if row.component in known]

    def current(self, programme: Programme, stage_id: str) -> dict[str, ComponentImport]:
        """The current import of each imported component that has one."""
        rows = self.session.scalars(select(ComponentImport).where(
            ComponentImport.programme_id == programme.id, ComponentImport.stage == stage_id,
            ComponentImport.superseded_at.is_(None)))
        return {row.component: row for row in rows}

    def values(self, row: ComponentImport) -> dict[uuid.UUID, Decimal]:
        """One import's values, opened."""
        opened = json.loads(self.cipher.open(_TABLE, "values", row.id, row.values_sealed))
        return {uuid.UUID(key): Decimal(value) for key, value in opened.items()}

    def scores(self, programme: Programme, stage_id: str) -> dict[str, dict[uuid.UUID, Decimal]]:
        """The current imports' values: component id → submission id → score."""
        return {component: self.values(row)
                for component, row in self.current(programme, stage_id).items()}

    # -- helpers ------------------------------------------------------------------------------

    def _component(self, programme: Programme, stage_id: str, component_id: str) -> Component:
        _, stage = definition_stage(self.definitions, programme, stage_id)
        return imported_component(stage, component_id)

    @staticmethod
    def _view(row: ComponentImport, component: Component,
              names: Mapping[uuid.UUID | None, str]) -> ImportView:
        return ImportView(id=row.id, component=component, filename=row.filename,
                          sha256=row.sha256, rows=row.rows,
                          imported_by=names.get(row.imported_by_id, ""),
                          imported_at=row.imported_at, current=row.superseded_at is None)


def imported_component(stage: Stage, component_id: str) -> Component:
    """The stage's imported component; raises ``UnknownComponent``."""
    for component in stage.components:
        if component.id == component_id and component.source == "import":
            return component
    raise UnknownComponent(stage=stage.id, component=component_id[:64])


def _clean_filename(filename: str) -> str:
    """The last part of the name as given, at most 255 characters (shown, never a path)."""
    name = PureWindowsPath(PurePosixPath(filename or "").name).name.strip()
    name = "".join(char for char in name if char.isprintable())
    return name[:255] or "import.csv"


def _parse(data: bytes, component: Component,
           submissions: list[Submission]) -> dict[uuid.UUID, Decimal]:
    """The file's scores by submission; raises ``ImportInvalid`` with every problem."""
    if len(data) > MAX_BYTES:
        raise ImportInvalid([("The file is larger than {limit} MiB.", {"limit": 1})])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportInvalid([("The file is not UTF-8 text.", {})]) from None
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        raise ImportInvalid([("The file is not a CSV file.", {})]) from None
    numbered = [(number, cells) for number, cells in enumerate(lines, start=1)
                if any(cell.strip() for cell in cells)]
    if not numbered:
        raise ImportInvalid([("The file is empty.", {})])
    header_line, header = numbered[0]
    names = [cell.strip().lower() for cell in header]
    if (sorted(names) not in (["score", "submission_id"], ["consortium", "score",
                                                            "submission_id"])):
        raise ImportInvalid([("line {line}: the header must be submission_id,score (a "
                              "consortium column may be added).", {"line": header_line})])
    if len(numbered) - 1 > MAX_ROWS:
        raise ImportInvalid([("The file has more than {limit} rows.", {"limit": MAX_ROWS})])
    in_stage = {submission.id: submission for submission in submissions}
    problems: list[tuple[str, dict[str, object]]] = []
    values: dict[uuid.UUID, Decimal] = {}
    first_line: dict[uuid.UUID, int] = {}
    id_at, score_at = names.index("submission_id"), names.index("score")
    for line, cells in numbered[1:]:
        if len(cells) != len(names):
            problems.append(("line {line}: {found} values where the header has {count}.",
                             {"line": line, "found": len(cells), "count": len(names)}))
            continue
        submission_id = _uuid(cells[id_at].strip())
        if submission_id is None or submission_id not in in_stage:
            problems.append(("line {line}: unknown submission.", {"line": line}))
            continue
        if submission_id in first_line:
            problems.append(("line {line}: the submission is listed twice (first on line "
                             "{first}).", {"line": line, "first": first_line[submission_id]}))
            continue
        first_line[submission_id] = line
        score, problem = _score(cells[score_at].strip(), component)
        if problem is not None:
            problems.append((problem, {"line": line, "value": cells[score_at].strip()[:_ECHO],
                                       "minimum": component.scale.minimum,
                                       "maximum": component.scale.maximum}))
            continue
        values[submission_id] = score
    problems += [("missing: {name}.", {"name": submission.consortium.name})
                 for submission in submissions if submission.id not in first_line]
    if problems:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(("and {count} more problems.", {"count": len(problems) - MAX_PROBLEMS}))
        raise ImportInvalid(shown)
    return values


def _score(text: str, component: Component) -> tuple[Decimal, str | None]:
    """The score, or a problem template (with ``line``, ``value``, ``minimum``, ``maximum``)."""
    if not text:
        return Decimal(0), "line {line}: the score is empty."
    match = _NUMBER.match(text)
    if match is None:
        return Decimal(0), "line {line}: {value} is not a number."
    if match.group(2) is not None and len(match.group(2)) > 2:
        return Decimal(0), "line {line}: {value} has more than 2 decimals."
    value = Decimal(text) + 0   # "-0" and "+5" read as 0 and 5
    if not component.scale.minimum <= value <= component.scale.maximum:
        return Decimal(0), "line {line}: {value} is outside {minimum}-{maximum}."
    return value, None


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
