"""Kept analyses and their claims (``vault.screening.analyses``), and reads that take no lock.

A claim lets one worker analyse a version at a time and is retaken once stale; the queue of
two processes analyses a version once; on SQLite a page view reads while another request holds
the write lock, and takes the lock only to write its audit events.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import wait
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.reviewing import text_pdf
from tests.test_screening_api import bearer
from tests.test_screening_workflow import upload
from vault.db import unit_of_work
from vault.documents.models import Document, DocumentVersion
from vault.screening import analysis
from vault.screening.analyses import AnalysisJob, AnalysisQueue, cached, claim, store
from vault.screening.analysis import PdfFacts
from vault.screening.models import PdfAnalysisClaim
from vault.screening.service import rules_digest

PROGRAMME = "sovereign-ai-2025"


def proposal_job(runtime, team) -> AnalysisJob:
    """The analysis job of the team's newest proposal version."""
    rules = runtime.definitions[PROGRAMME].document_kind("proposal").screening
    with unit_of_work(runtime.sessions) as session:
        version_id = session.scalar(
            select(DocumentVersion.id).join(Document)
            .where(Document.submission_id == team.submission_id, Document.kind == "proposal")
            .order_by(DocumentVersion.version.desc()).limit(1))
    return AnalysisJob(version_id, rules, rules_digest(rules))


def test_a_claim_is_held_by_one_worker_until_it_is_released_or_stale(runtime, make_team, clock):
    team = make_team("Claim Team")
    upload(runtime, team, data=text_pdf(2))
    job = proposal_job(runtime, team)
    stale = timedelta(minutes=2)
    with unit_of_work(runtime.sessions) as session:
        assert claim(session, job, token="a" * 32, now=clock(), stale=stale)
    with unit_of_work(runtime.sessions) as session:
        assert not claim(session, job, token="b" * 32, now=clock() + stale / 2, stale=stale)
    # The first worker was killed: once its claim is stale, another takes it over.
    later = clock() + stale + timedelta(seconds=1)
    with unit_of_work(runtime.sessions) as session:
        assert claim(session, job, token="c" * 32, now=later, stale=stale)
    facts = PdfFacts(unreadable="timed out after 30 s")
    with unit_of_work(runtime.sessions) as session:
        # The killed worker's late store keeps the facts but cannot release another's claim.
        store(session, job, facts, now=later, token="a" * 32)
    with unit_of_work(runtime.sessions) as session:
        assert session.get(PdfAnalysisClaim, job.key).token == "c" * 32
        assert cached(session, [job.key]) == {job.key: facts}
        store(session, job, facts, now=later, token="c" * 32)
    with unit_of_work(runtime.sessions) as session:
        assert session.get(PdfAnalysisClaim, job.key) is None


def test_two_processes_queues_analyse_a_version_once(runtime, make_team, monkeypatch):
    team = make_team("Queue Team")
    upload(runtime, team, data=text_pdf(3))
    job = proposal_job(runtime, team)
    calls = []
    real = analysis.run_limited

    def counting(*args, **kwargs):
        calls.append(1)
        time.sleep(0.5)  # long enough for the other queue to meet the claim
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis, "run_limited", counting)
    queues = [AnalysisQueue(sessions=runtime.sessions, read_sessions=runtime.read_sessions,
                            documents=runtime.documents, limits=runtime.analysis_limits,
                            clock=runtime.clock) for _ in range(2)]
    futures = [future for queue in queues for future in queue.request([job, job])]
    wait(futures, timeout=60)
    for queue in queues:
        queue.shutdown()
    outcomes = [future.result() for future in futures]
    assert len(calls) == 1
    assert sum(1 for facts in outcomes if facts is not None) >= 1
    assert {facts.page_count for facts in outcomes if facts is not None} == {3}
    with unit_of_work(runtime.sessions) as session:
        assert cached(session, [job.key])[job.key].page_count == 3
        assert session.scalars(select(PdfAnalysisClaim)).all() == []


@pytest.fixture
def held_write_lock(runtime):
    """A writer that holds SQLite's write lock for two seconds from the moment it is called."""
    def hold() -> threading.Thread:
        started = threading.Event()

        def writer() -> None:
            with unit_of_work(runtime.sessions) as session:
                session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the lock is held
                started.set()
                time.sleep(2.0)

        thread = threading.Thread(target=writer)
        thread.start()
        started.wait(10)
        return thread
    return hold


def test_a_page_view_reads_while_a_writer_holds_the_lock_and_writes_after_it(
        client, runtime, make_team, held_write_lock):
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite has one write lock for the whole database")
    team = make_team("Reader Team")
    headers = bearer(runtime, team.applicant)
    writer = held_write_lock()
    started = time.monotonic()
    # Reads nothing but takes no lock: answers while the writer still holds it.
    assert client.get("/healthz").status_code == 200
    assert time.monotonic() - started < 1.0
    # Reads, then records its access: the write waits its turn and does not fail.
    response = client.get(f"/api/v1/submissions/{team.submission_id}", headers=headers)
    assert response.status_code == 200
    writer.join()
