"""Resource requests: what each consortium asks for (GPUs, a data purchase budget, talent
support), validated against the programme's form and sealed field by field.

A request reveals a consortium's plans, so every value is sealed with the field cipher
(associated data = table, column, submission id) and opened only here, for callers already
authorised to read it. Values never go into logs, URLs or audit events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.consortia.models import Consortium
from vault.crypto import FieldCipher
from vault.documents.models import Submission, SubmissionState
from vault.documents.service import DocumentService
from vault.programmes.models import Programme
from vault.programmes.rules import ResourceForm
from vault.resources.errors import (
    MISSING,
    OUT_OF_RANGE,
    OVER_MODEL_LIMIT,
    UNKNOWN_MODEL,
    InvalidResourceRequest,
)
from vault.resources.models import ResourceRequest
from vault.spreadsheets import spreadsheet_csv

_TABLE = ResourceRequest.__tablename__
#: Sealed column → the name sealed into its associated data, and the value it holds.
_COLUMNS = (("gpu_model_sealed", "gpu_model", "gpu_model"),
            ("gpu_count_sealed", "gpu_count", "gpu_count"),
            ("data_budget_sealed", "data_budget", "data_budget_krw"),
            ("talent_sealed", "talent", "talent_headcount"))
#: The request's fields, in form order.
FIELDS = ("gpu_model", "gpu_count", "data_budget_krw", "talent_headcount")
#: Submissions whose requests no longer count towards the programme totals.
NOT_COUNTED = frozenset({SubmissionState.WITHDRAWN, SubmissionState.INELIGIBLE})
#: A model id echoed in a message is cut to this length (it is the caller's own input).
_ECHO = 64

CSV_COLUMNS = ("row", "consortium", "submission", "state", "counted", "gpu_model", "gpu_count",
               "data_budget_krw", "talent_headcount")


@dataclass(frozen=True)
class ResourceValues:
    """A resource request's values. ``None`` (or an empty model id) is a field left empty;
    values read from the store are always complete."""

    gpu_model: str | None
    gpu_count: int | None
    #: The data purchase budget, in won.
    data_budget_krw: int | None
    talent_headcount: int | None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a field: an English message template and its values."""

    field: str
    template: str
    values: dict[str, object] = field(default_factory=dict)

    def message(self) -> str:
        """The English message."""
        return self.template.format(**self.values)


@dataclass(frozen=True)
class TotalsRow:
    """One submission in the totals: its request (``None`` if not filled in) and whether it
    counts (withdrawn and ineligible submissions do not)."""

    submission: Submission
    values: ResourceValues | None
    counted: bool


@dataclass(frozen=True)
class ResourceTotals:
    """Programme totals over the counted requests, for the budget deliberation."""

    #: GPUs requested, by model id (only models someone requested).
    gpus_by_model: dict[str, int]
    data_budget_krw: int
    talent_headcount: int
    #: How many counted submissions filled in a request.
    requests: int
    rows: tuple[TotalsRow, ...]

    @property
    def gpu_total(self) -> int:
        """GPUs of every model together."""
        return sum(self.gpus_by_model.values())


class ResourceService:
    """Resource request operations on one database session.

    ``documents`` is needed by ``save`` only: it says whether the submission still accepts
    changes (``DocumentService.check_open``) and what time it is.
    """

    def __init__(self, session: Session, *, cipher: FieldCipher,
                 documents: DocumentService | None = None) -> None:
        self.session = session
        self.cipher = cipher
        self.documents = documents

    # -- reading ----------------------------------------------------------------------------

    def get(self, submission: Submission) -> ResourceValues | None:
        """The submission's request, opened (``None`` if never saved)."""
        row = self.session.get(ResourceRequest, submission.id)
        return self._open(row) if row is not None else None

    def updated_at(self, submission: Submission) -> datetime | None:
        """When the request was last saved (``None`` if never)."""
        row = self.session.get(ResourceRequest, submission.id)
        return row.updated_at if row is not None else None

    def submissions(self, programme: Programme) -> list[Submission]:
        """The programme's submissions, by consortium name."""
        return list(self.session.scalars(
            select(Submission).join(Consortium)
            .where(Submission.programme_id == programme.id)
            .order_by(Consortium.name, Submission.id)))

    def _open(self, row: ResourceRequest) -> ResourceValues:
        opened = {name: self.cipher.open(_TABLE, sealed_as, row.submission_id,
                                         getattr(row, column))
                  for column, sealed_as, name in _COLUMNS}
        return ResourceValues(
            gpu_model=opened["gpu_model"], gpu_count=int(opened["gpu_count"]),
            data_budget_krw=int(opened["data_budget_krw"]),
            talent_headcount=int(opened["talent_headcount"]))

    # -- validation and saving --------------------------------------------------------------

    @staticmethod
    def problems(values: ResourceValues, form: ResourceForm) -> list[Problem]:
        """Everything wrong with ``values`` under the programme's form, in field order: empty
        fields, values out of range, a GPU model the form does not offer, and more GPUs than
        the chosen model allows. Empty when the values can be saved."""
        found: list[Problem] = []
        for name in FIELDS:
            value = getattr(values, name)
            if value is None or value == "":
                found.append(Problem(name, MISSING[name]))
        model = form.gpu_model(values.gpu_model) if values.gpu_model else None
        if values.gpu_model and model is None:
            found.append(Problem("gpu_model", UNKNOWN_MODEL, {
                "model": values.gpu_model[:_ECHO],
                "allowed": ", ".join(m.id for m in form.gpu_models)}))
        for name, allowed in (("gpu_count", form.gpu_count),
                              ("data_budget_krw", form.data_budget_krw),
                              ("talent_headcount", form.talent_headcount)):
            value = getattr(values, name)
            if value is not None and value not in allowed:
                found.append(Problem(name, OUT_OF_RANGE[name],
                                     {"minimum": allowed.minimum, "maximum": allowed.maximum}))
        if (model is not None and values.gpu_count is not None
                and values.gpu_count > model.max_count):
            found.append(Problem("gpu_count", OVER_MODEL_LIMIT,
                                 {"maximum": model.max_count, "model": model.title}))
        order = {name: index for index, name in enumerate(FIELDS)}
        return sorted(found, key=lambda problem: order.get(problem.field, len(order)))

    def save(self, submission: Submission, values: ResourceValues, form: ResourceForm, *,
             user_id: uuid.UUID | None) -> None:
        """Store the submission's request, replacing any earlier one.

        Raises what ``DocumentService.check_open`` raises when the submission no longer accepts
        changes (``UploadClosed``, ``SubmissionLocked``), then ``InvalidResourceRequest`` with
        every problem. Nothing is stored when it raises.
        """
        if self.documents is None:
            raise TypeError("ResourceService.save needs the document service")
        self.documents.check_open(submission)
        problems = self.problems(values, form)
        if problems:
            raise InvalidResourceRequest(problems)
        row = self.session.get(ResourceRequest, submission.id)
        if row is None:
            row = ResourceRequest(submission_id=submission.id)
            self._fill(row, values, user_id)
            try:
                # Two first saves at once: the loser updates the winner's row instead (the
                # savepoint's rollback takes the losing insert out of the session).
                with self.session.begin_nested():
                    self.session.add(row)
                    self.session.flush()
                return
            except IntegrityError:
                row = self.session.get(ResourceRequest, submission.id)
                assert row is not None
        self._fill(row, values, user_id)
        self.session.flush()

    def _fill(self, row: ResourceRequest, values: ResourceValues,
              user_id: uuid.UUID | None) -> None:
        for column, sealed_as, name in _COLUMNS:
            setattr(row, column, self.cipher.seal(_TABLE, sealed_as, row.submission_id,
                                                  str(getattr(values, name))))
        assert self.documents is not None
        row.updated_at = self.documents.clock()
        row.updated_by_id = user_id

    # -- totals -----------------------------------------------------------------------------

    def totals(self, submissions: Sequence[Submission]) -> ResourceTotals:
        """Totals over the requests of ``submissions`` (the caller passes only those the reader
        may see), with one row per submission in the given order."""
        stored = {}
        ids = [submission.id for submission in submissions]
        if ids:
            stored = {row.submission_id: row for row in self.session.scalars(
                select(ResourceRequest).where(ResourceRequest.submission_id.in_(ids)))}
        gpus: dict[str, int] = {}
        budget = talent = requests = 0
        rows = []
        for submission in submissions:
            row = stored.get(submission.id)
            values = self._open(row) if row is not None else None
            counted = submission.state not in NOT_COUNTED
            rows.append(TotalsRow(submission, values, counted))
            if values is None or not counted:
                continue
            requests += 1
            assert values.gpu_model is not None and values.gpu_count is not None
            gpus[values.gpu_model] = gpus.get(values.gpu_model, 0) + values.gpu_count
            budget += values.data_budget_krw or 0
            talent += values.talent_headcount or 0
        return ResourceTotals(gpus_by_model=gpus, data_budget_krw=budget,
                              talent_headcount=talent, requests=requests, rows=tuple(rows))

    @staticmethod
    def totals_csv(totals: ResourceTotals, form: ResourceForm | None) -> str:
        """The totals as CSV text for a spreadsheet (``vault.spreadsheets``): a ``request`` row
        per submission, then a ``total`` row per GPU model and one for everything."""
        rows: list[list[str]] = []
        for row in totals.rows:
            values = row.values
            numbers = ([values.gpu_model or "", *(str(getattr(values, name))
                                                  for name in FIELDS[1:])]
                       if values is not None else ["", "", "", ""])
            rows.append(["request", row.submission.consortium.name, str(row.submission.id),
                         row.submission.state.value, "yes" if row.counted else "no", *numbers])
        for model_id in model_order(totals.gpus_by_model, form):
            rows.append(["total", "", "", "", "", model_id,
                         str(totals.gpus_by_model.get(model_id, 0)), "", ""])
        rows.append(["total", "", "", "", "", "", str(totals.gpu_total),
                     str(totals.data_budget_krw), str(totals.talent_headcount)])
        return spreadsheet_csv(CSV_COLUMNS, rows)


def model_order(gpus: dict[str, int], form: ResourceForm | None) -> list[str]:
    """GPU model ids to list in totals: the form's, in its order, then any requested model the
    form no longer offers."""
    offered = [model.id for model in form.gpu_models] if form is not None else []
    return [*offered, *sorted(set(gpus) - set(offered))]
