"""Requests record events with their change; the sequencer then places them in the log."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import sign_in
from vault.audit.models import AuditEvent, AuditPending
from vault.audit.service import Tag
from vault.db import unit_of_work


def _counts(runtime) -> tuple[int, int]:
    with unit_of_work(runtime.sessions) as session:
        return (session.scalar(select(func.count()).select_from(AuditPending)),
                session.scalar(select(func.count()).select_from(AuditEvent)))


def test_recorded_events_wait_for_the_sequencer_then_keep_their_order(runtime):
    with unit_of_work(runtime.sessions) as session:
        log = runtime.audit(session)
        for number in range(5):
            log.record(Tag.KEY_ROTATED, target={"n": number})
    assert _counts(runtime) == (5, 0)
    with unit_of_work(runtime.sessions) as session:
        assert runtime.audit(session).sequence() == 5
    assert _counts(runtime) == (0, 5)
    with unit_of_work(runtime.sessions) as session:
        leaves = session.scalars(select(AuditEvent.leaf).order_by(AuditEvent.seq)).all()
    assert [f'"n":"{n}"'.encode() in leaf for n, leaf in enumerate(leaves)] == [True] * 5


def test_an_event_rolls_back_with_the_change_it_records(runtime):
    with pytest.raises(RuntimeError), unit_of_work(runtime.sessions) as session:
        runtime.audit(session).record(Tag.KEY_ROTATED, target={"n": 1})
        raise RuntimeError("the change failed")
    assert _counts(runtime) == (0, 0)


def test_append_places_waiting_events_first(runtime):
    with unit_of_work(runtime.sessions) as session:
        runtime.audit(session).record(Tag.KEY_ROTATED, target={"n": "first"})
    with unit_of_work(runtime.sessions) as session:
        event = runtime.audit(session).append(Tag.KEY_RETIRED)
        assert event.seq == 1
    assert _counts(runtime) == (0, 2)


def test_requests_sequence_their_events_before_they_finish(client, make_user, runtime):
    sign_in(client, make_user())
    pending, events = _counts(runtime)
    assert pending == 0 and events >= 1


def test_pending_events_cannot_be_changed(runtime):
    with unit_of_work(runtime.sessions) as session:
        runtime.audit(session).record(Tag.KEY_ROTATED)
    with pytest.raises(DBAPIError), runtime.engine.begin() as connection:
        connection.execute(text("UPDATE audit_pending SET body = :b"), {"b": b"{}"})


def test_a_busy_sequencer_is_not_waited_for(runtime):
    """With ``wait=False`` a request never queues behind another sequencer (PostgreSQL)."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has a single writer: there is no second sequencer to meet")
    with unit_of_work(runtime.sessions) as first:
        runtime.audit(first).lock()
        with unit_of_work(runtime.sessions) as second:
            runtime.audit(second).record(Tag.KEY_ROTATED)
        with unit_of_work(runtime.sessions) as third:
            assert runtime.audit(third).sequence(wait=False) == 0
    with unit_of_work(runtime.sessions) as session:
        assert runtime.audit(session).sequence() == 1
