"""Retention: a submission that is out gets a schedule at publication; the runner sends the
notice first, shreds the consortium's key once the shredding is due (never before the notice
period has run), re-entering a stage cancels the schedule, and every step is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import audit_events, snapshot_fixtures
from tests.evaluation_world import PRESENTATION, SIX, EvaluationWorld, actor, world_of
from vault.audit.service import Tag
from vault.consortia.models import Consortium
from vault.evaluation.errors import NotACandidate
from vault.evaluation.models import RetentionSchedule
from vault.evaluation.retention import Retention
from vault.policy.actions import Actor


def _concluded_presentation(world) -> None:
    """Six teams through the presentation: Hanbit is out, its schedule set."""
    world.scored("presentation", PRESENTATION)
    world.conclude("presentation")


built, database_url, data_dir, world = snapshot_fixtures(
    world_of(SIX, _concluded_presentation), EvaluationWorld.bound)


def _run(world):
    with world.session() as session:
        return Retention(session, clock=world.runtime.clock, keys=world.runtime.keys,
                         audit=world.runtime.audit(session)).run(Actor.operator())


def _schedule(world) -> RetentionSchedule:
    with world.session() as session:
        return session.scalars(select(RetentionSchedule)).one()


def _shredded(world, name) -> bool:
    with world.session() as session:
        consortium = session.get(Consortium, world.teams[name].consortium_id)
        return (consortium.shredded_at is not None
                and world.runtime.keys.is_destroyed(consortium.key_id))


def test_nothing_happens_before_the_notice_is_due(world, clock):
    schedule = _schedule(world)
    clock.now = schedule.notice_at - timedelta(seconds=1)
    done = _run(world)
    assert (done.notices, done.shredded) == ([], [])
    assert _schedule(world).notice_sent_at is None


def test_the_notice_comes_before_the_shredding_which_comes_when_due(world, clock):
    schedule = _schedule(world)
    clock.now = schedule.notice_at
    done = _run(world)
    assert done.notices == [("Hanbit", schedule.shred_due)] and done.shredded == []
    assert _schedule(world).notice_sent_at == schedule.notice_at
    with world.session() as session:
        [outcome] = world.rounds(session).outcomes(world.submission(session, "Hanbit"))
    assert outcome.shred_due == schedule.shred_due and outcome.notice_sent_at is not None
    assert not _shredded(world, "Hanbit")
    clock.now = schedule.shred_due - timedelta(seconds=1)
    assert _run(world).shredded == []
    clock.now = schedule.shred_due
    assert _run(world).shredded == ["Hanbit"]
    assert _shredded(world, "Hanbit") and not _shredded(world, "Baekdu")
    assert _run(world).shredded == []              # done once
    [notice] = audit_events(world.runtime, Tag.RETENTION_NOTICE)
    assert notice["target"]["consortium"] == str(world.teams["Hanbit"].consortium_id)
    shredded = [e for e in audit_events(world.runtime, Tag.KEY_SHREDDED)
                if e["reasons"] == ["retention"]]
    assert len(shredded) == 1


def test_a_late_run_gives_the_full_notice_period_before_shredding(world, clock):
    schedule = _schedule(world)
    clock.now = schedule.shred_due + timedelta(days=5)
    done = _run(world)
    assert len(done.notices) == 1 and done.shredded == []
    clock.advance(days=29)
    assert _run(world).shredded == []
    clock.advance(days=1)
    assert _run(world).shredded == ["Hanbit"]


def test_re_entering_as_a_candidate_cancels_the_schedule(world, clock):
    world.in_window("additional_call")
    with world.session() as session:
        world.rounds(session).enter_candidate(world.submission(session, "Hanbit"),
                                              "additional_call", actor(world.officer))
    assert _schedule(world).cancelled_at is not None
    clock.now += timedelta(days=400)
    done = _run(world)
    assert (done.notices, done.shredded) == ([], [])
    assert not _shredded(world, "Hanbit")
    [cancelled] = audit_events(world.runtime, Tag.RETENTION_CANCELLED)
    assert cancelled["target"]["submission"] == str(world.teams["Hanbit"].submission_id)


def test_a_shredded_consortium_cannot_re_enter(world, clock):
    schedule = _schedule(world)
    clock.now = schedule.notice_at
    _run(world)
    clock.now = schedule.shred_due
    _run(world)
    world.in_window("additional_call")
    with pytest.raises(NotACandidate), world.session() as session:
        world.rounds(session).enter_candidate(world.submission(session, "Hanbit"),
                                              "additional_call", actor(world.officer))
