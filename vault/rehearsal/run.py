"""A rehearsal of a programme's whole evaluation (``vault demo simulate``), in a scratch copy.

Officers check a programme definition before a call opens by running it end to end: the demo's
fifteen consortia apply (``vault init --demo``'s own functions, every document in order), the
officer screens them and declares them eligible, and every stage runs in order — a panel of
reviewers made for the rehearsal (MFA on, the NDA accepted) is assigned, scores every
submission through ``ScoreSheets`` after the same ``score-sheet:write`` decision the web takes,
imported components arrive as CSV files through ``ComponentImports``, and the officer closes,
confirms and publishes the round through ``StageRounds``, each step authorized like the web.

Everything happens in a temporary data directory with its own SQLite database, keyring, blobs
and secrets, removed afterwards: the operator's vault is never read nor written (the rehearsal
does not even read the ``VAULT_*`` environment). Time is a simulated clock moved into each
window. The same seed gives the same rehearsal byte for byte: scores come from
``random.Random(seed)`` (see ``vault.rehearsal.scores``), the clock advances by one millisecond
per reading, and ids are drawn from the seed too (:func:`_seeded_ids`), so even each confirmed
round's SHA-256, which covers submission ids and times, repeats.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault import crypto, migrate
from vault.audit.service import Tag
from vault.conflicts.service import ConflictService
from vault.consortia.models import Consortium
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.demo.world import DOMAIN, create_demo
from vault.documents.models import Submission, SubmissionState
from vault.evaluation.sheet_values import takes_vote
from vault.evaluation.sheets import ScoreSheets
from vault.identity.models import Role, User
from vault.nda.service import NdaService
from vault.policy.actions import Action, Actor
from vault.programmes.definition import ProgrammeDefinition, Stage
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.rehearsal import scores as rehearsal_scores
from vault.rehearsal.applications import submit_applications
from vault.rehearsal.stages import REQUEST, RehearsalStopped, Row, StageReport, StageRunner
from vault.runtime import Runtime
from vault.screening.service import ScreeningService
from vault.screening.workflow import SubmissionWorkflow
from vault.settings import Settings

__all__ = ["Options", "Rehearsal", "RehearsalStopped", "Row", "StageReport", "rehearse"]

DEFAULT_PROGRAMME = "sovereign-ai-2025"


@dataclass(frozen=True)
class Options:
    """What to rehearse."""

    seed: int
    #: The panel's size (the same reviewers sit on every stage's panel).
    reviewers: int = 10
    #: Another definition file to rehearse; ``None``: the shipped programme.
    definition: ProgrammeDefinition | None = None
    #: Apply the first disqualification rule of the first stage that has one to a team the
    #: seed picks (off by default: a rehearsal shows the definition's normal course).
    disqualify: bool = False


@dataclass(frozen=True)
class Rehearsal:
    """The outcome of a rehearsal; ``timings`` (seconds per phase) are not part of its output."""

    programme: str
    seed: int
    reviewers: int
    stages: tuple[StageReport, ...]
    survivors: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict, compare=False)


class RehearsalClock:
    """Simulated time: moved into each window by the rehearsal, one millisecond on per reading
    so that events keep their order (and two submissions are never handed in at one instant)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def move_to(self, moment: datetime) -> None:
        """Jump to ``moment`` (never backwards)."""
        self.now = max(self.now, moment)


@contextmanager
def _seeded_ids(seed: int) -> Iterator[None]:
    """Draw ``uuid.uuid4`` ids from the seed while the rehearsal runs, then restore it.

    Ids are not secrets (keys, nonces and tokens come from the operating system's generator,
    untouched), but a confirmed round's SHA-256 covers submission ids, so random ids would
    make every rehearsal's output differ. The scratch database is thrown away afterwards.
    """
    # Not for secrets: ids only, reproducible on purpose.
    rng = random.Random(f"{seed}:ids")  # noqa: S311
    original = uuid.uuid4
    uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)  # type: ignore[assignment]
    try:
        yield
    finally:
        uuid.uuid4 = original  # type: ignore[assignment]


@contextmanager
def scratch_runtime(definition: ProgrammeDefinition | None, clock: RehearsalClock,
                    parent: Path | None = None) -> Iterator[Runtime]:
    """A vault in a new temporary directory (database, keyring, blobs, secrets), migrated and
    with its key provider ready; removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="vault-rehearsal-", dir=parent) as folder:
        root = Path(folder)
        environ = {"VAULT_MODE": "development", "VAULT_DATA_DIR": str(root / "instance"),
                   "VAULT_AUDIT_SEQUENCE_MS": "0"}
        if definition is not None:
            (root / "programmes").mkdir()
            environ["VAULT_PROGRAMMES_DIR"] = str(root / "programmes")
        runtime = Runtime.build(Settings.from_env(environ), clock=clock)
        if definition is not None:
            runtime.definitions = {definition.code: definition}
        try:
            migrate.upgrade(runtime.engine, field_key=runtime.settings.field_key)
            runtime.keys.check()
            yield runtime
        finally:
            runtime.engine.dispose()


def rehearse(options: Options, *, scratch_parent: Path | None = None,
             progress: Callable[[str], None] | None = None) -> Rehearsal:
    """Run the programme's evaluation end to end in a scratch copy and return what happened.

    ``progress(phase)`` is called as each phase starts. Raises ``RehearsalStopped`` when a
    stage cannot be confirmed, and what the services raise for a definition they refuse.
    """
    definition = options.definition
    clock = RehearsalClock(datetime(2000, 1, 1, tzinfo=UTC))
    with _seeded_ids(options.seed), scratch_runtime(definition, clock, scratch_parent) as rt:
        if definition is None:
            code = DEFAULT_PROGRAMME if DEFAULT_PROGRAMME in rt.definitions else min(
                rt.definitions)
            definition = rt.definitions[code]
        clock.now = definition.submission_opens + timedelta(hours=1)
        run = _Run(rt, clock, definition, options, progress or (lambda _phase: None))
        run.timed("applications", run.apply)
        run.timed("screening", run.screen)
        runner = StageRunner(run)
        reports = [run.timed(stage.id, lambda s=stage: runner.stage(s))
                   for stage in definition.stages]
        return Rehearsal(programme=definition.code, seed=options.seed,
                         reviewers=options.reviewers, stages=tuple(reports),
                         survivors=runner.survivors(), timings=run.timings)


class _Run:
    """The rehearsal's shared state: the scratch vault, the officer, the panel, the teams."""

    def __init__(self, runtime: Runtime, clock: RehearsalClock, definition: ProgrammeDefinition,
                 options: Options, progress: Callable[[str], None]) -> None:
        self.runtime = runtime
        self.clock = clock
        self.definition = definition
        self.options = options
        self.progress = progress
        # Not for secrets: the rehearsal's made-up scores, reproducible from the seed.
        self.rng = random.Random(options.seed)  # noqa: S311
        self.timings: dict[str, float] = {}
        self.officer = Actor(user_id=None, role=Role.OFFICER)
        self.reviewers: list[Actor] = []
        self.reviewer_names: list[str] = []
        self.programme_id: uuid.UUID | None = None

    def timed(self, phase: str, step: Callable[[], object]) -> object:
        """Run one phase, noting how long it took."""
        self.progress(phase)
        started = time.perf_counter()
        try:
            return step()
        finally:
            self.timings[phase] = time.perf_counter() - started

    @contextmanager
    def work(self) -> Iterator[Session]:
        """One unit of work (a request's or a command's transaction)."""
        with unit_of_work(self.runtime.sessions) as session:
            yield session

    def programme(self, session: Session) -> Programme:
        """The rehearsed programme on ``session``."""
        programme = ProgrammeService(session).by_code(self.definition.code)
        assert programme is not None, "synced by apply()"
        return programme

    def authorize(self, session: Session, actor: Actor, action: Action, resource: object,
                  ) -> None:
        """The one chokepoint, exactly as the web passes through it (recorded in the log)."""
        self.runtime.authorizer(session, request=REQUEST).authorize(
            actor, action, resource)  # type: ignore[arg-type]

    def audit(self, session: Session, tag: Tag, actor: Actor, target: dict[str, object]) -> None:
        """Record what the web would record for the same step."""
        self.runtime.audit(session).record(tag, actor=actor, target=target, request=REQUEST,
                                           reasons=("rehearsal",))

    def teams(self, session: Session, stage: str | None = None) -> list[Submission]:
        """The programme's submissions (in ``stage`` if given), by consortium name."""
        query = (select(Submission).join(Consortium)
                 .where(Submission.programme_id == self.programme(session).id)
                 .order_by(Consortium.name))
        if stage is not None:
            query = query.where(Submission.stage == stage)
        return list(session.scalars(query))

    # -- the call -----------------------------------------------------------------------------

    def apply(self) -> None:
        """``vault init --demo`` in the scratch vault, with every consortium's documents in
        order and submitted; the officer and the panel get a second factor, the panel the
        NDA."""
        rt = self.runtime
        with self.work() as session:
            programme, _changed = ProgrammeService(session).sync(self.definition)
            self.programme_id = programme.id
            create_demo(session, rt.identity(session),
                        ConsortiumService(session, cipher=rt.cipher), programme)
            ConflictService(session, cipher=rt.cipher, clock=rt.clock,
                            definitions=rt.definitions, audit=rt.audit(session),
                            request=REQUEST).detect(programme)
            submit_applications(session, programme, self.definition,
                                documents=rt.documents(session), cipher=rt.cipher,
                                audit=rt.audit(session), request=REQUEST)
            officer = rt.identity(session).find_by_email(f"officer@{DOMAIN}")
            assert officer is not None, "create_demo makes the officer"
            self._second_factor(session, officer)
            self.officer = Actor(user_id=officer.id, role=Role.OFFICER, mfa=True)
            nda = NdaService(session, clock=rt.clock, audit=rt.audit(session), request=REQUEST)
            for number in range(1, self.options.reviewers + 1):
                name = f"Rehearsal Reviewer {number:02d}"
                user = rt.identity(session).create_user(
                    email=f"rehearsal.reviewer{number:02d}@{DOMAIN}", display_name=name,
                    role=Role.REVIEWER, password=crypto.random_password(), demo_account=True)
                self._second_factor(session, user)
                actor = Actor(user_id=user.id, role=Role.REVIEWER, mfa=True)
                if self.definition.nda is not None:
                    nda.accept(actor, programme, self.definition,
                               sha256=self.definition.nda.sha256, typed_name=name,
                               client_address="127.0.0.1", user_agent="vault demo simulate",
                               channel="web")
                self.reviewers.append(actor)
                self.reviewer_names.append(name)

    def _second_factor(self, session: Session, user: User) -> None:
        identity = self.runtime.identity(session)
        secret = identity.begin_totp_enrolment(user)
        identity.confirm_totp_enrolment(user, pyotp.TOTP(secret).at(self.clock.now))

    # -- screening ----------------------------------------------------------------------------

    def screen(self) -> None:
        """After the deadline: the officer screens, declares every submission eligible and
        moves them into the first stage."""
        rt = self.runtime
        self.clock.move_to(self.definition.submission_deadline + timedelta(days=1))
        with self.work() as session:
            programme = self.programme(session)
            self.authorize(session, self.officer, Action.SCREENING_RUN, programme)
            screening = ScreeningService(session, documents=rt.documents(session),
                                         cipher=rt.cipher, clock=rt.clock,
                                         definitions=rt.definitions)
            done = screening.run(programme, self.officer, workers=os.cpu_count() or 1)
            self.audit(session, Tag.SCREENING_RAN, self.officer,
                       {"programme": programme.code, "run": done.id,
                        "submissions": done.submission_count})
        with self.work() as session:
            programme = self.programme(session)
            workflow = SubmissionWorkflow(session, cipher=rt.cipher, clock=rt.clock,
                                          documents=rt.documents(session),
                                          definitions=rt.definitions)
            for submission in self.teams(session):
                if submission.state is not SubmissionState.SCREENING:
                    continue
                self.authorize(session, self.officer, Action.SCREENING_DECIDE, submission)
                event = workflow.decide(submission, self.officer, SubmissionState.ELIGIBLE,
                                        "Rehearsal: every document is in order.")
                self.audit(session, Tag.SCREENING_DECIDED, self.officer, {
                    "programme": programme.code, "submission": submission.id,
                    "outcome": "eligible", "event": event.id})
            self.authorize(session, self.officer, Action.PROGRAMME_MANAGE, programme)
            first = workflow.first_stage(programme)
            for submission in workflow.advance(programme, self.officer):
                self.audit(session, Tag.SUBMISSION_STAGE_ENTERED, self.officer, {
                    "programme": programme.code, "submission": submission.id, "stage": first})

    # -- a panel's sheets ---------------------------------------------------------------------

    def score(self, stage: Stage, forms: dict[str, float], biases: dict[str, float]) -> None:
        """Every reviewer scores (or votes on) every submission of the stage, one sitting per
        reviewer, each sheet after the ``score-sheet:write`` decision."""
        rt = self.runtime
        for actor, name in zip(self.reviewers, self.reviewer_names, strict=True):
            with self.work() as session:
                sheets = ScoreSheets(session, cipher=rt.cipher, clock=rt.clock,
                                     definitions=rt.definitions)
                for submission in self.teams(session, stage.id):
                    team = submission.consortium.name
                    self.authorize(session, actor, Action.SCORE_SHEET_WRITE, submission)
                    scores = rehearsal_scores.sheet_scores(self.rng, stage, forms[team],
                                                          biases[name])
                    vote = (rehearsal_scores.vote(self.rng, forms[team], biases[name])
                            if takes_vote(stage) else None)
                    sheet = sheets.save(submission, stage.id, actor, scores, {}, vote=vote)
                    sheets.submit(sheet, actor)
                    target = {"programme": self.definition.code, "stage": stage.id,
                              "consortium": submission.consortium_id,
                              "submission": submission.id, "sheet": sheet.id,
                              "revision": sheet.revision}
                    self.audit(session, Tag.SCORE_SHEET_SAVED, actor, target)
                    self.audit(session, Tag.SCORE_SHEET_SUBMITTED, actor, target)
