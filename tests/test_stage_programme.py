"""A full programme through every stage of the shipped definition: fifteen consortia, written
(15 → 10), presentation (10 → 5), the first stage evaluation (composite with imported benchmark
and user scores; the best team disqualified for the from-scratch rule, the last eliminated:
5 → 3), an additional-team call whose one candidate a majority of its panel accepts (3 + 1),
the second (4 → 3) and the third stage evaluation (3 → 2, the two selected). Scores come from
``tests/evaluation_world.py`` (per-team qualities, seeded noise)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from tests.evaluation_world import TEAM_NAMES, actor, build_world
from vault.evaluation.models import RetentionSchedule, StageOutcome, StageOutcomeKind
from vault.evaluation.ranking import CENT, Outcome

WRITTEN = {"Baekdu": 95, "Eunha": 90, "Haneul": 85, "Hangang": 80, "Mirae": 75, "Nuri": 70,
           "Jeju": 65, "Hanbit": 60, "Gaon": 55, "Dokdo": 50, "Pureun": 45, "Saebyeok": 40,
           "Seorak": 35, "Taebaek": 30, "Uri": 25}
PRESENTATION = {"Dokdo": 90, "Gaon": 85, "Hanbit": 80, "Jeju": 75, "Nuri": 70, "Mirae": 65,
                "Hangang": 60, "Haneul": 55, "Eunha": 50, "Baekdu": 45}
STAGE_1 = {"Dokdo": 90, "Gaon": 70, "Hanbit": 80, "Jeju": 60, "Nuri": 50}
STAGE_1_BENCHMARK = {"Dokdo": "95", "Gaon": "80", "Hanbit": "70.5", "Jeju": "60", "Nuri": "55"}
STAGE_1_USERS = {"Dokdo": "90", "Gaon": "85", "Hanbit": "70", "Jeju": "75.25", "Nuri": "40"}
STAGE_2 = {"Gaon": 70, "Hanbit": 80, "Jeju": 60, "Pureun": 65}
STAGE_3 = {"Gaon": 85, "Hanbit": 75, "Pureun": 70}


def _composite_stage(world, stage_id, panel_quality, benchmark, users):
    world.in_window(stage_id)
    world.panel(stage_id, 3)
    world.score(stage_id, panel_quality)
    world.import_csv(stage_id, "benchmark", benchmark)
    world.import_csv(stage_id, "user", users)


def test_a_full_programme_from_fifteen_consortia_to_the_final_two(runtime, clock, make_user,
                                                                 make_team):
    world = build_world(runtime, clock, make_user, make_team)
    assert world.names_in("written") == sorted(TEAM_NAMES)

    world.in_window("written")
    world.panel("written", 5)
    world.score("written", WRITTEN)
    world.conclude("written")
    with world.session() as session:
        assert world.programme(session).current_stage == "presentation"
    assert world.names_in("presentation") == sorted(PRESENTATION)
    assert world.names_in("written") == ["Pureun", "Saebyeok", "Seorak", "Taebaek", "Uri"]

    world.in_window("presentation")
    world.panel("presentation", 5)
    world.score("presentation", PRESENTATION)
    world.conclude("presentation")
    assert world.names_in("stage_1") == ["Dokdo", "Gaon", "Hanbit", "Jeju", "Nuri"]

    _composite_stage(world, "stage_1", STAGE_1, STAGE_1_BENCHMARK, STAGE_1_USERS)
    with world.session() as session:
        world.rounds(session).disqualify(world.submission(session, "Dokdo"), "stage_1",
                                         "from_scratch", "The weights are another model's",
                                         actor(world.officer))
    ranking = world.ranking("stage_1")
    for entry in ranking.result.entries:      # the composite is the weighted components
        name = ranking.names[entry.submission_id]
        expected = (Decimal(40) * Decimal(STAGE_1_BENCHMARK[name])
                    + 35 * entry.components["expert"]
                    + 25 * Decimal(STAGE_1_USERS[name])) / 100
        assert entry.composite == expected.quantize(CENT), name
    order = [ranking.names[e.submission_id] for e in ranking.result.entries]
    assert order == ["Gaon", "Hanbit", "Jeju", "Nuri", "Dokdo"]
    assert ranking.result.with_outcome(Outcome.ELIMINATED) == tuple(world.ids(["Nuri"]))
    world.conclude("stage_1")
    assert world.names_in("stage_2") == ["Gaon", "Hanbit", "Jeju"]

    world.in_window("additional_call")
    with world.session() as session:
        world.rounds(session).enter_candidate(world.submission(session, "Pureun"),
                                              "additional_call", actor(world.officer))
    world.panel("additional_call", 3)
    world.vote("additional_call", "Pureun", (True, True, False))
    world.act("close", "additional_call")
    assert not world.ranking("additional_call").result.no_selection
    world.act("confirm", "additional_call")
    world.act("publish", "additional_call")
    assert world.names_in("stage_2") == ["Gaon", "Hanbit", "Jeju", "Pureun"]

    _composite_stage(world, "stage_2", STAGE_2,
                     {"Gaon": 80, "Hanbit": 85, "Jeju": 50, "Pureun": 75},
                     {"Gaon": 75, "Hanbit": 70, "Jeju": 55, "Pureun": 60})
    world.conclude("stage_2")
    assert world.names_in("stage_3") == ["Gaon", "Hanbit", "Pureun"]

    _composite_stage(world, "stage_3", STAGE_3, {"Gaon": 90, "Hanbit": 70, "Pureun": 65},
                     {"Gaon": 80, "Hanbit": 75, "Pureun": 60})
    world.conclude("stage_3")
    with world.session() as session:  # the last stage: the programme stays there
        assert world.programme(session).current_stage == "stage_3"
    # The last stage moves no one on: the two selected stay in it, with their outcome.
    assert world.names_in("stage_3") == ["Gaon", "Hanbit", "Pureun"]

    with world.session() as session:
        finals = {world.teams[n].submission_id: n for n in TEAM_NAMES}
        outcomes = [(finals[row.submission_id], row.stage, row.outcome)
                    for row in session.scalars(select(StageOutcome))]
        pending = {finals[row.submission_id]: row.stage for row in session.scalars(
            select(RetentionSchedule).where(RetentionSchedule.cancelled_at.is_(None)))}
        funnel = world.rounds(session).funnel(world.programme(session))
    assert sorted((n, s) for n, s, o in outcomes if o is StageOutcomeKind.SELECTED) == [
        ("Gaon", "stage_3"), ("Hanbit", "stage_3"), ("Pureun", "additional_call")]
    assert ("Dokdo", "stage_1", StageOutcomeKind.DISQUALIFIED) in outcomes
    assert ("Jeju", "stage_2", StageOutcomeKind.ELIMINATED) in outcomes
    assert ("Pureun", "stage_3", StageOutcomeKind.ELIMINATED) in outcomes
    assert set(pending) == set(TEAM_NAMES) - {"Gaon", "Hanbit"}
    # Pureun's schedule from the written evaluation ended when it became a candidate.
    assert pending["Pureun"] == "stage_3" and pending["Jeju"] == "stage_2"
    assert [(s.stage.id, s.entered, s.passed, s.out) for s in funnel] == [
        ("written", 15, 10, 5), ("presentation", 10, 5, 5), ("stage_1", 5, 3, 2),
        ("additional_call", 1, 1, 0), ("stage_2", 4, 3, 1), ("stage_3", 3, 2, 1)]
