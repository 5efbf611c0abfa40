"""The kept analyses of PDF versions, and the small background queue that makes them.

An analysis (``vault.screening.analysis.analyse_pdf``) runs in a sandboxed child for up to the
analysis limit (30 s by default). Its facts — failures by limit included — are kept in
``pdf_analyses`` per document version and digest of the rules, and never computed again; the
applicant's pre-check, the officers' screening runs and the reports all read the same rows.

Nothing here holds a transaction while a PDF is analysed. :func:`analyse_version` is one job:

1. a short write transaction *claims* the version (``pdf_analysis_claims``; the primary key
   lets one claim exist, a stale one is retaken by a conditional UPDATE, so two workers never
   analyse the same version at once; a worker killed mid-analysis leaves a claim that goes
   stale after twice the analysis limit plus a minute);
2. a short read transaction opens the version (key unwrap, first chunk verified);
3. with no transaction open the rest of the plaintext is read and verified and the sandboxed
   analysis runs;
4. a short write transaction stores the facts and releases the claim.

:class:`AnalysisQueue` runs such jobs in a small thread pool inside the web process, so the
request that asks for an analysis only queues it (and may wait a moment, with no transaction
open, for a quick file). :meth:`AnalysisQueue.request` is the one seam a job engine replaces:
it takes jobs and gives back futures of their facts.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from vault.db import unit_of_work
from vault.documents.errors import ContentIntegrityError, DocumentShredded
from vault.documents.models import DocumentVersion
from vault.documents.service import DocumentService
from vault.programmes.definition import PdfRules
from vault.sandbox import MOMENTARY_FAILURES, Limits
from vault.screening.analysis import PdfFacts, analyse_pdf
from vault.screening.models import PdfAnalysis, PdfAnalysisClaim

log = logging.getLogger(__name__)

#: Key of a kept analysis: the version and the digest of the rules it answers.
Key = tuple[uuid.UUID, str]
#: Outcomes that are not facts of the file but of its storage or of this machine: they are
#: not kept, and the next request tries again. Everything else is kept, a time-out or a
#: CPU or memory limit included: a file that needs more than the limit always will.
_PASSING_REASONS = ("integrity check failed", "destroyed", *MOMENTARY_FAILURES)
#: Rows read per query when looking analyses up.
_CHUNK = 500


@dataclass(frozen=True)
class AnalysisJob:
    """One PDF version to analyse under one kind's rules (``digest`` is their digest)."""

    version_id: uuid.UUID
    rules: PdfRules
    digest: str

    @property
    def key(self) -> Key:
        """Where its facts are kept."""
        return (self.version_id, self.digest)


def is_kept(facts: PdfFacts) -> bool:
    """Whether the facts are facts of the file (kept for good) rather than of the moment."""
    return facts.unreadable is None or not facts.unreadable.startswith(_PASSING_REASONS)


def stale_after(limits: Limits) -> timedelta:
    """How old a claim is before another worker may take it over: no live analysis lasts
    longer than its wall limit, and the reading around it takes seconds."""
    return timedelta(seconds=2 * limits.wall_seconds + 60)


def cached(session: Session, wanted: Iterable[Key]) -> dict[Key, PdfFacts]:
    """The kept analyses among ``wanted``; a row that does not parse is ignored (made again)."""
    keys = set(wanted)
    found: dict[Key, PdfFacts] = {}
    ids = sorted({version_id for version_id, _ in keys})
    for start in range(0, len(ids), _CHUNK):
        rows = session.scalars(select(PdfAnalysis).where(
            PdfAnalysis.version_id.in_(ids[start:start + _CHUNK])))
        for row in rows:
            if (row.version_id, row.rules_sha256) in keys:
                try:
                    found[(row.version_id, row.rules_sha256)] = PdfFacts.from_json(row.facts)
                except ValueError:
                    continue
    return found


def claim(session: Session, job: AnalysisJob, *, token: str, now: datetime,
          stale: timedelta) -> bool:
    """Claim the job for the caller (flushed; the caller commits at once). False when another
    worker holds a claim younger than ``stale``."""
    try:
        with session.begin_nested():
            session.add(PdfAnalysisClaim(version_id=job.version_id, rules_sha256=job.digest,
                                         claimed_at=now, token=token))
        return True
    except IntegrityError:
        pass
    # Retaking a stale claim: the WHERE is evaluated under the row's lock (PostgreSQL) or the
    # write lock (SQLite), so of two workers retaking the same claim only one sees a row.
    result = session.execute(
        update(PdfAnalysisClaim)
        .where(PdfAnalysisClaim.version_id == job.version_id,
               PdfAnalysisClaim.rules_sha256 == job.digest,
               PdfAnalysisClaim.claimed_at < now - stale)
        .values(claimed_at=now, token=token))
    return result.rowcount == 1  # type: ignore[attr-defined]


def store(session: Session, job: AnalysisJob, facts: PdfFacts, *, now: datetime,
          token: str | None = None) -> None:
    """Keep the facts if they are facts of the file, and release the caller's claim
    (``token``), in the caller's transaction. A concurrent store of the same facts wins."""
    if is_kept(facts):
        row = session.get(PdfAnalysis, job.key)
        if row is not None:
            row.facts, row.analysed_at = facts.to_json(), now
            session.flush()
        else:
            try:
                with session.begin_nested():
                    session.add(PdfAnalysis(version_id=job.version_id, rules_sha256=job.digest,
                                            analysed_at=now, facts=facts.to_json()))
            except IntegrityError:
                pass  # the same facts, stored by another worker meanwhile
    if token is not None:
        session.execute(delete(PdfAnalysisClaim).where(
            PdfAnalysisClaim.version_id == job.version_id,
            PdfAnalysisClaim.rules_sha256 == job.digest, PdfAnalysisClaim.token == token))


def analyse_version(job: AnalysisJob, *, sessions: sessionmaker[Session],
                    read_sessions: sessionmaker[Session],
                    documents: Callable[[Session], DocumentService], limits: Limits,
                    clock: Callable[[], datetime]) -> PdfFacts | None:
    """Analyse one version as described in the module's docstring: the facts (kept ones if
    another worker stored them first), or ``None`` when another worker holds a live claim or
    the version is gone. Never holds a transaction while the PDF is read or analysed."""
    token = secrets.token_hex(16)
    with unit_of_work(sessions) as session:
        if not claim(session, job, token=token, now=clock(), stale=stale_after(limits)):
            return None
        # Claimed after a worker that stored the facts and released its claim: done already.
        kept = cached(session, [job.key]).get(job.key)
        if kept is not None:
            store(session, job, kept, now=clock(), token=token)
            return kept
    stream = None
    with unit_of_work(read_sessions) as session:
        version = session.get(DocumentVersion, job.version_id)
        facts: PdfFacts | None = None
        if version is not None:
            try:
                stream = documents(session).plaintext(version)
            except ContentIntegrityError:
                facts = PdfFacts(unreadable="integrity check failed")
            except DocumentShredded:
                facts = PdfFacts(unreadable="destroyed")
    if stream is not None:
        # No transaction is open from here until the facts are stored.
        try:
            data = b"".join(stream)
        except ContentIntegrityError:
            facts = PdfFacts(unreadable="integrity check failed")
        else:
            facts = analyse_pdf(data, job.rules, limits=limits)
            del data
    with unit_of_work(sessions) as session:
        if facts is None:  # the version is gone: nothing to keep
            store(session, job, PdfFacts(unreadable="destroyed"), now=clock(), token=token)
            return None
        store(session, job, facts, now=clock(), token=token)
    return facts


class AnalysisQueue:
    """Analyses run by a small thread pool of this process (see the module's docstring).

    The pool starts on first use (never before a server forks its workers). A job already
    queued or running here for the same version is not queued twice; across processes the
    claim keeps it to one worker.
    """

    def __init__(self, *, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 documents: Callable[[Session], DocumentService], limits: Limits,
                 clock: Callable[[], datetime], workers: int = 1) -> None:
        self.sessions = sessions
        self.read_sessions = read_sessions
        self.documents = documents
        self.limits = limits
        self.clock = clock
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._queued: dict[Key, Future[PdfFacts | None]] = {}
        #: When each queued job was first asked for (``time.monotonic``).
        self._since: dict[Key, float] = {}

    def request(self, jobs: Iterable[AnalysisJob]) -> list[Future[PdfFacts | None]]:
        """Queue the jobs; a future per job gives its facts, or ``None`` if another worker
        holds the claim (its facts appear in ``pdf_analyses`` when it is done)."""
        futures = []
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix="pdf-analysis")
            for job in jobs:
                future = self._queued.get(job.key)
                if future is None:
                    self._since[job.key] = time.monotonic()
                    future = self._pool.submit(self._run, job)
                    self._queued[job.key] = future
                    future.add_done_callback(lambda _f, key=job.key: self._forget(key))
                futures.append(future)
        return futures

    def waited(self, jobs: Iterable[AnalysisJob]) -> float:
        """Seconds since the youngest of the jobs was first queued here (0 for none queued):
        a page asked again while a long analysis runs does not wait for it again."""
        now = time.monotonic()
        with self._lock:
            return min((now - self._since.get(job.key, now) for job in jobs), default=0.0)

    def shutdown(self) -> None:
        """Wait for running analyses and stop the pool (a later request starts a new one)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _forget(self, key: Key) -> None:
        with self._lock:
            self._queued.pop(key, None)
            self._since.pop(key, None)

    def _run(self, job: AnalysisJob) -> PdfFacts | None:
        try:
            return analyse_version(job, sessions=self.sessions, read_sessions=self.read_sessions,
                                   documents=self.documents, limits=self.limits,
                                   clock=self.clock)
        except Exception:  # a background job has no caller to raise to: log it; the claim
            # goes stale and the next request queues the version again
            log.exception("the analysis of document version %s failed", job.version_id)
            return None
