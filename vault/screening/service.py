"""Screening: the checks run over submissions, the officers' runs and the applicant's pre-check.

For every submission the service gathers the facts the checks look at (the newest version of
each document, the partner list without names, the resource request and its problems) and the
sandboxed analysis of each PDF version. Analyses are kept in ``pdf_analyses`` by version and
by a digest of the kind's rules, failures by limit included (``vault.screening.analyses``), so a
second run, or the applicant's page, analyses only what is new and never the same file twice.

The applicant's pre-check never analyses in the request: with an :class:`AnalysisQueue` it
queues what is missing, ends the request's transaction (``release``), waits a moment for quick
files and shows the rest as pending ("pdf.readable: pending"); the page asks again later.

An analysis decrypts the whole version into memory and only then parses it: the plaintext
stream raises mid-way when a blob was tampered with, so the parser only ever sees verified
plaintext, and a failed check becomes the finding "unreadable: integrity check failed". The
plaintext is never written anywhere; it goes to the sandboxed child over a pipe.

A run is parallel: the database is used only by the calling thread (a session is not
thread-safe), which also opens each version (key unwrap, first chunk) before handing its stream
to a worker thread that reads the rest of the blob and waits for the sandboxed child. At most
``workers`` plaintexts are in memory at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vault.consortia.models import Consortium
from vault.consortia.service import ConsortiumService
from vault.crypto import FieldCipher
from vault.db import unit_of_work
from vault.documents.errors import ContentIntegrityError, DocumentShredded
from vault.documents.models import DocumentVersion, Submission, SubmissionState
from vault.documents.service import DocumentService
from vault.policy.actions import Actor
from vault.programmes.definition import PdfRules, ProgrammeDefinition
from vault.programmes.models import Programme
from vault.resources.service import ResourceService
from vault.sandbox import Limits
from vault.screening import analysis, report
from vault.screening.analyses import (
    AnalysisJob,
    AnalysisQueue,
    cached,
    claim,
    is_kept,
    stale_after,
    store,
)
from vault.screening.analysis import PdfFacts, analyse_pdf
from vault.screening.checks import Finding
from vault.screening.evaluate import PDF, Partner, SubmissionFacts, VersionFacts, evaluate
from vault.screening.models import ScreeningFinding, ScreeningRun
from vault.screening.workflow import SubmissionWorkflow

#: Changes whenever the analyser finds different facts in the same file: cached analyses made
#: by an older analyser are then not used.
ANALYSIS_VERSION = "2"  # 2: active content
#: Submissions a run screens (submitted ones move into screening).
#: How often a run looks whether another worker has finished a version it claimed.
_CLAIM_POLL_SECONDS = 0.5
SCREENED_STATES = (SubmissionState.SUBMITTED, SubmissionState.SCREENING,
                   SubmissionState.RESUBMITTED)


def rules_digest(rules: PdfRules) -> str:
    """SHA-256 of the kind's PDF rules (canonical JSON) and the analyser version."""
    body = {"analysis": ANALYSIS_VERSION, "rules": dataclasses.asdict(rules)}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Job:
    """One PDF version to analyse under one kind's rules."""

    version: DocumentVersion
    rules: PdfRules
    digest: str
    #: Submissions waiting for it.
    waiting: list[uuid.UUID] = field(default_factory=list)


@dataclass
class _Gathered:
    """One submission's facts, before its PDFs' analyses are filled in."""

    submission: Submission
    documents: list[tuple[VersionFacts, str | None]]
    members: list[Partner]
    has_resources: bool
    problems: Sequence[object]
    #: The newest versions by id (the PDFs among them are analysed).
    versions: dict[uuid.UUID, DocumentVersion]

    def facts(self, analyses: Mapping[tuple[uuid.UUID, str], PdfFacts]) -> SubmissionFacts:
        documents = [dataclasses.replace(d, pdf=analyses.get((d.version_id, digest)),
                                         pending=(d.version_id, digest) not in analyses)
                     if digest else d for d, digest in self.documents]
        return SubmissionFacts(
            state=self.submission.state, correction_deadline=self.submission.correction_deadline,
            documents=documents, members=self.members, has_resources=self.has_resources,
            resource_problems=self.problems)  # type: ignore[arg-type]


class ScreeningService:
    """Screening on one database session (flushes; the caller commits and audits)."""

    def __init__(self, session: Session, *, documents: DocumentService, cipher: FieldCipher,
                 clock: Callable[[], datetime],
                 definitions: Mapping[str, ProgrammeDefinition],
                 limits: Limits | None = None, queue: AnalysisQueue | None = None,
                 sessions: sessionmaker[Session] | None = None) -> None:
        self.session = session
        #: Sessions for the short transactions of a run's claims and stores (the background
        #: queue's protocol); without them a run stores its analyses in the caller's
        #: transaction and takes no claims.
        self.sessions = sessions
        #: Where the pre-check queues analyses; without one it analyses in this thread (the
        #: command line, the tests), in the caller's transaction.
        self.queue = queue
        #: The sandbox's limits for one analysis (``analysis.ANALYSIS_LIMITS`` by default).
        self.limits = limits or analysis.ANALYSIS_LIMITS
        self.documents = documents
        self.cipher = cipher
        self.clock = clock
        self.definitions = definitions

    # -- running the checks -------------------------------------------------------------------

    def submissions(self, programme: Programme) -> list[Submission]:
        """Every submission of the programme, by consortium name (for overviews and reports)."""
        return list(self.session.scalars(
            select(Submission).join(Consortium)
            .where(Submission.programme_id == programme.id)
            .order_by(Consortium.name, Submission.id)))

    def screenable(self, programme: Programme) -> list[Submission]:
        """The submissions a run screens (submitted, screening, resubmitted), by name."""
        return list(self.session.scalars(
            select(Submission).join(Consortium)
            .where(Submission.programme_id == programme.id,
                   Submission.state.in_(SCREENED_STATES))
            .order_by(Consortium.name, Submission.id)))

    def precheck(self, submission: Submission, *, release: Callable[[], None] | None = None,
                 wait: float = 0.0) -> list[Finding]:
        """The live checklist of the submission's current documents; nothing is stored but
        new PDF analyses.

        With a queue, PDFs not analysed yet are queued; if there are any, ``release()`` is
        called (the caller ends its transaction there) before waiting for them up to ``wait``
        seconds after they were first queued; those still running are pending findings.
        Without a queue they are analysed here.
        """
        definition = self._definition(submission)
        gathered = self._gather(submission, definition)
        if self.queue is None:
            analyses = self._analyses([gathered], definition, workers=1)
            return evaluate(definition, gathered.facts(analyses))
        kinds = {kind.id: kind for kind in definition.document_kinds}
        wanted = {(d.version_id, digest): d for d, digest in gathered.documents if digest}
        analyses = cached(self.session, wanted)
        jobs = [AnalysisJob(version_id, kinds[d.kind].screening, digest)
                for (version_id, digest), d in wanted.items()
                if (version_id, digest) not in analyses]
        if jobs:
            if release is not None:
                release()
            futures = self.queue.request(jobs)
            # Every view of a page shares the one wait: a long analysis is waited for once.
            wait_for(futures, timeout=max(0.0, wait - self.queue.waited(jobs)))
            for job, future in zip(jobs, futures, strict=True):
                if future.done() and future.result() is not None:
                    analyses[job.key] = future.result()  # type: ignore[assignment]
            missing = [job.key for job in jobs if job.key not in analyses]
            if missing:  # another worker may have finished them meanwhile
                analyses.update(cached(self.session, missing))
        return evaluate(definition, gathered.facts(analyses))

    def run(self, programme: Programme, actor: Actor, *, workers: int = 1,
            progress: Callable[[int], None] | None = None,
            release: Callable[[], None] | None = None) -> ScreeningRun:
        """Screen every submitted, screening or resubmitted submission of the programme and
        store the run with its findings; submitted ones move into screening.

        ``progress(n)`` is called as ``n`` more submissions are ready (their PDFs analysed).
        ``release()``, if given, is called once everything is read and before the analyses
        start: the caller commits there, so no transaction is held while the PDFs are analysed
        (on SQLite an open transaction holds the one write lock and would stall every other
        request for the length of the run). A service with ``sessions`` claims each new PDF
        and stores its facts in short transactions of their own, as the background queue
        does, so it needs ``release``. Raises ``KeyError`` for a programme without a
        loaded definition; what ``SubmissionWorkflow.start_screening`` raises.
        """
        definition = self.definitions[programme.code]
        started = self._start_time(programme)
        submissions = self.screenable(programme)
        gathered = [self._gather(submission, definition) for submission in submissions]
        analyses = self._analyses(gathered, definition, workers=max(1, workers),
                                  progress=progress, release=release)
        run = ScreeningRun(id=uuid.uuid4(), programme_id=programme.id, started_at=started,
                           actor_id=actor.user_id, actor_role=actor.role_name,
                           definition_sha256=definition.sha256,
                           submission_count=len(submissions))
        self.session.add(run)
        self.session.flush()
        workflow = SubmissionWorkflow(self.session, cipher=self.cipher, clock=self.clock,
                                      documents=self.documents, definitions=self.definitions)
        for item in gathered:
            findings = evaluate(definition, item.facts(analyses))
            workflow.start_screening(item.submission, actor)
            self.session.add_all(
                ScreeningFinding(run_id=run.id, submission_id=item.submission.id,
                                 document_id=f.document_id, version_id=f.version_id,
                                 kind=f.kind, slot=f.slot, check_id=f.check_id,
                                 result=f.result, values=f.values_json(), position=position)
                for position, f in enumerate(findings))
        run.finished_at = max(self.clock(), started)
        self.session.flush()
        return run

    def _start_time(self, programme: Programme) -> datetime:
        """Now, or just after the programme's previous run: runs are ordered by their start,
        and a coarse (or a test's frozen) clock must not make two of them tie."""
        now = self.clock()
        last = self.session.scalar(select(ScreeningRun.started_at)
                                   .where(ScreeningRun.programme_id == programme.id)
                                   .order_by(ScreeningRun.started_at.desc()).limit(1))
        return max(now, last + timedelta(microseconds=1)) if last is not None else now

    # -- reading results ----------------------------------------------------------------------

    def latest(self, submission: Submission) -> tuple[ScreeningRun | None, list[Finding]]:
        """The latest run that screened the submission and its findings (``None, []`` if no
        run did yet)."""
        return report.latest_findings(self.session, submission)

    #: Another name for ``latest``.
    latest_findings = latest

    def overview(self, programme: Programme, submissions: Sequence[Submission]
                 ) -> list[report.OverviewRow]:
        """One row per submission: consortium, state, fails, warnings, latest run, decision."""
        return report.overview(self.session, self._workflow(), submissions)

    def report_rows(self, programme: Programme, submissions: Sequence[Submission]
                    ) -> list[dict[str, str]]:
        """One row per submission, document and check of the latest run (see ``report``)."""
        return report.report_rows(self.session, programme, submissions)

    def _workflow(self) -> SubmissionWorkflow:
        return SubmissionWorkflow(self.session, cipher=self.cipher, clock=self.clock,
                                  documents=self.documents, definitions=self.definitions)

    # -- gathering the facts ------------------------------------------------------------------

    def _definition(self, submission: Submission) -> ProgrammeDefinition:
        return self.definitions[submission.consortium.programme.code]

    def _gather(self, submission: Submission, definition: ProgrammeDefinition) -> _Gathered:
        """The submission's facts, read in this (the session's) thread."""
        kinds = {kind.id: kind for kind in definition.document_kinds}
        documents: list[tuple[VersionFacts, str | None]] = []
        versions: dict[uuid.UUID, DocumentVersion] = {}
        for listed in self.documents.listing(submission):
            version, kind = listed.latest, kinds.get(listed.document.kind)
            if kind is not None and not kind.for_call:
                continue  # a stage artifact: screening checks the application only
            versions[version.id] = version
            documents.append((VersionFacts(
                document_id=listed.document.id, version_id=version.id,
                kind=listed.document.kind, slot=listed.document.slot, version=version.version,
                media_type=version.media_type, size_bytes=version.size_bytes,
                created_at=version.created_at),
                rules_digest(kind.screening) if kind and version.media_type == PDF else None))
        members = [Partner(m.id, m.position, m.organization_kind) for m in
                   ConsortiumService(self.session, cipher=self.cipher).members(
                       submission.consortium)]
        has_resources, problems = False, []
        if definition.resources is not None:
            values = ResourceService(self.session, cipher=self.cipher).get(submission)
            if values is not None:
                has_resources = True
                problems = ResourceService.problems(values, definition.resources)
        return _Gathered(submission, documents, members, has_resources, problems, versions)

    # -- analysing the PDFs -------------------------------------------------------------------

    def _analyses(self, gathered: Sequence[_Gathered], definition: ProgrammeDefinition, *,
                  workers: int, progress: Callable[[int], None] | None = None,
                  release: Callable[[], None] | None = None
                  ) -> dict[tuple[uuid.UUID, str], PdfFacts]:
        """The facts of every PDF version of the submissions: cached ones, then new ones
        (analysed after ``release()``, without touching the database; stored afterwards)."""
        wanted = {(d.version_id, digest): item.submission.id
                  for item in gathered for d, digest in item.documents if digest}
        results = cached(self.session, wanted)
        kinds = {kind.id: kind for kind in definition.document_kinds}
        jobs: dict[tuple[uuid.UUID, str], _Job] = {}
        pending = {item.submission.id: 0 for item in gathered}
        for item in gathered:
            for facts, digest in item.documents:
                key = (facts.version_id, digest)
                if not digest or key in results:
                    continue
                job = jobs.setdefault(key, _Job(item.versions[facts.version_id],
                                                kinds[facts.kind].screening, digest))
                job.waiting.append(item.submission.id)
                pending[item.submission.id] += 1
        ready = sum(1 for count in pending.values() if count == 0)
        if progress and ready:
            progress(ready)

        kept_facts: list[tuple[_Job, PdfFacts]] = []

        def finished(job: _Job, facts: PdfFacts) -> None:
            results[(job.version.id, job.digest)] = facts
            if is_kept(facts):
                kept_facts.append((job, facts))
            for submission_id in job.waiting:
                pending[submission_id] -= 1
                if progress and pending[submission_id] == 0:
                    progress(1)

        for job in jobs.values():
            # Loaded now, so that opening the version later reads nothing from the database.
            _ = job.version.document.submission.consortium.programme.code
        if release is not None:
            release()
        if self.sessions is None:
            self._run_jobs(list(jobs.values()), workers, finished)
            for job, facts in kept_facts:
                store(self.session, _analysis_job(job), facts, now=self.clock())
            return results
        self._run_claimed(list(jobs.values()), workers, finished)
        return results

    def _run_claimed(self, jobs: list[_Job], workers: int,
                     finished: Callable[[_Job, PdfFacts], None]) -> None:
        """Analyse the jobs as the background queue does: each claimed first (in a short
        transaction of its own), its facts stored and the claim released as soon as it is
        done; a job another worker holds is waited for (its facts read when stored), or taken
        over when its claim is released without facts or goes stale."""
        assert self.sessions is not None
        tokens: dict[tuple[uuid.UUID, str], str] = {}
        stale = stale_after(self.limits)

        def take(job: _Job) -> PdfFacts | bool:
            """The kept facts, or whether the caller now holds the claim."""
            key, token = (job.version.id, job.digest), secrets.token_hex(16)
            with unit_of_work(self.sessions) as side:  # type: ignore[arg-type]
                kept = cached(side, [key]).get(key)
                if kept is not None:
                    return kept
                if not claim(side, _analysis_job(job), token=token, now=self.clock(),
                             stale=stale):
                    return False
            tokens[key] = token
            return True

        def done(job: _Job, facts: PdfFacts) -> None:
            with unit_of_work(self.sessions) as side:  # type: ignore[arg-type]
                store(side, _analysis_job(job), facts, now=self.clock(),
                      token=tokens.pop((job.version.id, job.digest), None))
            finished(job, facts)

        mine, waiting = [], []
        for job in jobs:
            taken = take(job)
            if isinstance(taken, PdfFacts):
                finished(job, taken)
            else:
                (mine if taken else waiting).append(job)
        self._run_jobs(mine, workers, done)
        while waiting:
            time.sleep(_CLAIM_POLL_SECONDS)
            still = []
            for job in waiting:
                taken = take(job)
                if isinstance(taken, PdfFacts):
                    finished(job, taken)
                elif taken:
                    self._run_jobs([job], 1, done)
                else:
                    still.append(job)
            waiting = still

    def _run_jobs(self, jobs: list[_Job], workers: int,
                  finished: Callable[[_Job, PdfFacts], None]) -> None:
        """Analyse the jobs with ``workers`` threads; ``finished`` runs in this thread."""
        if not jobs:
            return
        queue = iter(jobs)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="screening") as pool:
            running: dict[Future[PdfFacts], _Job] = {}

            def start_next() -> bool:
                job = next(queue, None)
                if job is None:
                    return False
                try:
                    # In this thread: the session's lazy loads and the key unwrap.
                    stream = self.documents.plaintext(job.version)
                except ContentIntegrityError:
                    finished(job, PdfFacts(unreadable="integrity check failed"))
                except DocumentShredded:
                    finished(job, PdfFacts(unreadable="destroyed"))
                else:
                    running[pool.submit(_read_and_analyse, stream, job.rules, self.limits)] = job
                return True

            while len(running) < workers and start_next():
                pass
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    finished(job, future.result())
                while len(running) < workers and start_next():
                    pass


def _analysis_job(job: _Job) -> AnalysisJob:
    return AnalysisJob(job.version.id, job.rules, job.digest)


def _read_and_analyse(stream: Iterator[bytes], rules: PdfRules, limits: Limits) -> PdfFacts:
    """In a worker thread: the rest of the verified plaintext, then the sandboxed analysis."""
    try:
        data = b"".join(stream)
    except ContentIntegrityError:
        return PdfFacts(unreadable="integrity check failed")
    facts = analyse_pdf(data, rules, limits=limits)
    del data
    return facts
