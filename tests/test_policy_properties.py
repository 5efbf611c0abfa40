"""Properties of the real policy set over random worlds, decided by the real ``Authorizer`` on a
real database (each example's facts are rolled back after its decision):

- a reviewer is allowed to read a consortium's material exactly when the NDA is the current one
  and unexpired, the session has MFA, the reviewer is assigned to that submission in its current
  stage, that stage's window is open, there is no conflict in effect and no recent sanction;
  and never to write it, whatever the facts;
- an applicant is allowed a consortium action only for a consortium it acts for (as the
  database says, whatever the actor claims);
- auditors and admins never read content or the partner list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.conftest import Clock
from tests.policy_world import OUTDATED_NDA, PROGRAMME, Facts, World, build_world
from vault.conflicts.models import ConflictStatus
from vault.identity.models import Role
from vault.policy.actions import Action, Actor
from vault.policy.engine import Decision
from vault.runtime import Runtime

A = Action
#: Examples are random on every run (no example database is written to the tree).
SETTINGS = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
TEAMS = ("alpha", "beta")
STAGES = ("written", "presentation")
#: The reviewer's reading actions (and the resource part they apply to).
READS = {A.DOCUMENT_READ: "document", A.DOCUMENT_VIEW: "document",
         A.SUBMISSION_VIEW: "submission", A.PARTNER_LIST_VIEW: "submission"}
#: Consortium actions a reviewer may never take.
WRITES = {A.PARTNER_LIST_EDIT: "submission", A.DOCUMENT_UPLOAD: "submission",
          A.CONFLICT_CHALLENGE: "submission", A.CONSORTIUM_VIEW: ""}
CONSORTIUM_ACTIONS = {**READS, **WRITES}
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
#: During the call for applications.
CALL_OPEN = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def _target(team: str, part: str) -> str:
    return f"{team}.{part}" if part else team


# -- reviewers ----------------------------------------------------------------------------------

@dataclass
class ReviewerFacts:
    """One random world as seen from one reviewer and one consortium."""

    team: str
    now: datetime
    mfa: bool
    #: (version, accepted_at, expires_at), oldest first.
    ndas: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)
    assignments: set[tuple[str, str]] = field(default_factory=set)
    conflicts: dict[str, ConflictStatus] = field(default_factory=dict)
    sanction: date | None = None
    #: What the generator meant to break (for ``event``; the oracle does not read it).
    broken: frozenset[str] = frozenset()


def _windows(runtime: Runtime) -> dict[str, tuple[datetime, datetime]]:
    definition = runtime.definitions[PROGRAMME]
    return {stage.id: (stage.review_opens, stage.review_closes) for stage in definition.stages}


def _years_ago(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


#: Every way each requirement can fail.
WAYS = {
    "mfa": ("off",),
    "nda": ("outdated", "none", "expired", "expires-now"),
    "assigned": ("none", "other-stage", "other-team"),
    "stage": ("call",),
    "window": ("a-second-early", "days-early", "at-close", "days-late"),
    "no-conflict": (ConflictStatus.PENDING, ConflictStatus.CONFIRMED),
    "not-sanctioned": ("today", "last-year", "a-day-inside"),
}
BREAKS = [(requirement, way) for requirement, ways in WAYS.items() for way in ways]
#: The first break of an example: none a quarter of the time (so allowed examples are common),
#: otherwise one of the ways above, evenly (a flat ``sampled_from`` is close to uniform).
FIRST_BREAK = [None] * (len(BREAKS) // 3) + BREAKS


@st.composite
def reviewer_worlds(draw: st.DrawFn, windows: dict[str, tuple[datetime, datetime]],
                    current_nda: str) -> ReviewerFacts:
    """Random facts: each requirement holds or is broken in one of its ways, plus noise about
    the other consortium and the reviewer's history.

    Most examples break exactly one requirement: that is where a permit that forgot one of its
    conditions shows (several breaks at once are usually caught by another condition too)."""
    breaks: dict[str, object] = {}
    first = draw(st.sampled_from(FIRST_BREAK))
    if first is not None:
        breaks[first[0]] = first[1]
        if draw(st.sampled_from(range(5))) == 0:
            for requirement, way in draw(st.lists(st.sampled_from(BREAKS), max_size=3)):
                breaks.setdefault(requirement, way)
    team = draw(st.sampled_from(TEAMS))
    other = "beta" if team == "alpha" else "alpha"
    stage = draw(st.sampled_from(STAGES))
    opens, closes = windows[stage]
    length = closes - opens
    now = {"a-second-early": opens - SECOND, "days-early": opens - 10 * DAY, "at-close": closes,
           "days-late": closes + DAY}.get(breaks.get("window"))  # type: ignore[arg-type]
    if now is None:
        now = opens + draw(st.sampled_from([timedelta(0), SECOND, length / 2, length - SECOND]))
    now = now.replace(microsecond=0)
    facts = ReviewerFacts(team=team, now=now, mfa="mfa" not in breaks, broken=frozenset(breaks))
    facts.stages = {team: "call" if "stage" in breaks else stage,
                    other: draw(st.sampled_from(("call", *STAGES)))}
    # NDA: an older acceptance of an outdated text is history; the latest one counts.
    if draw(st.booleans()):
        facts.ndas.append((OUTDATED_NDA, now - 60 * DAY, now + 60 * DAY))
    way = breaks.get("nda")
    if way is None:
        facts.ndas.append((current_nda, now - DAY,
                           now + draw(st.sampled_from([SECOND, DAY, 700 * DAY]))))
    elif way == "none":
        facts.ndas.clear()
    elif way == "outdated":  # the way no guard catches: only the permit's own condition does
        facts.ndas.append((OUTDATED_NDA, now - DAY, now + 700 * DAY))
    else:
        expiry = now if way == "expires-now" else now - draw(st.sampled_from([SECOND, DAY]))
        facts.ndas.append((current_nda, now - 2 * DAY, expiry))
    # Assignments: the right one, or a near miss; plus random ones elsewhere.
    wanted = (team, facts.stages[team] if facts.stages[team] != "call" else stage)
    way = breaks.get("assigned")
    if way is None:
        facts.assignments.add(wanted)
    elif way == "other-stage":
        facts.assignments.add((team, next(s for s in STAGES if s != wanted[1])))
    elif way == "other-team":
        facts.assignments.add((other, wanted[1]))
    facts.assignments |= draw(st.sets(st.sampled_from([(other, s) for s in STAGES])))
    # Conflicts: with the target (in effect or dismissed) and noise with the other consortium.
    if "no-conflict" in breaks:
        facts.conflicts[team] = breaks["no-conflict"]  # type: ignore[assignment]
    elif draw(st.booleans()):
        facts.conflicts[team] = ConflictStatus.DISMISSED
    if draw(st.booleans()):
        facts.conflicts[other] = draw(st.sampled_from(list(ConflictStatus)))
    # Sanctions: within the programme's three years, or older.
    today = now.date()
    if "not-sanctioned" in breaks:
        facts.sanction = {"today": today, "last-year": today - 365 * DAY,
                          "a-day-inside": _years_ago(today, 3) + DAY}[breaks["not-sanctioned"]]
    elif draw(st.booleans()):
        facts.sanction = draw(st.sampled_from([_years_ago(today, 3) - DAY,
                                               _years_ago(today, 10)]))
    return facts


def _requirements(facts: ReviewerFacts, windows: dict[str, tuple[datetime, datetime]],
                  current_nda: str, years: int) -> dict[str, bool]:
    """The issue's requirements, computed from the facts alone (the oracle)."""
    latest = max(facts.ndas, key=lambda nda: nda[1]) if facts.ndas else None
    stage = facts.stages[facts.team]
    window = windows.get(stage)
    conflict = facts.conflicts.get(facts.team)
    sanctioned = (facts.sanction is not None
                  and facts.sanction > _years_ago(facts.now.date(), years))
    return {
        "mfa": facts.mfa,
        "nda": latest is not None and latest[0] == current_nda and facts.now < latest[2],
        "assigned": (facts.team, stage) in facts.assignments,
        "stage": window is not None,
        "window": window is not None and window[0] <= facts.now < window[1],
        "no-conflict": conflict in (None, ConflictStatus.DISMISSED),
        "not-sanctioned": not sanctioned,
    }


def _record(recorder: Facts, facts: ReviewerFacts) -> None:
    for team, stage in facts.stages.items():
        recorder.stage(stage, team)
    for version, accepted_at, expires_at in facts.ndas:
        recorder.nda(version=version, accepted_at=accepted_at, expires_at=expires_at)
    for team, stage in sorted(facts.assignments):
        recorder.assign(team, stage)
    for team, status in facts.conflicts.items():
        recorder.conflict(team, status=status)
    if facts.sanction is not None:
        recorder.sanction(facts.sanction)


def _check_reviewer(runtime: Runtime, clock: Clock, actions: list[Action],
                    max_examples: int) -> Counter[bool]:
    """Run the reviewer property over ``actions``; returns how many were allowed and denied."""
    world = build_world(runtime)
    windows = _windows(runtime)
    current = world.nda_sha256
    years = runtime.definitions[PROGRAMME].conflicts.sanction_years
    outcomes: Counter[bool] = Counter()
    opens, closes = windows["written"]
    ready = ReviewerFacts(team="alpha", now=opens + (closes - opens) / 2,
                          mfa=True, ndas=[(current, opens - DAY, closes + DAY)],
                          stages={"alpha": "written", "beta": "call"},
                          assignments={("alpha", "written")})

    @settings(SETTINGS, max_examples=max_examples)
    @given(facts=reviewer_worlds(windows, current))
    @example(facts=ready)
    def check(facts: ReviewerFacts) -> None:
        requirements = _requirements(facts, windows, current, years)
        decisions = _decide_all(runtime, clock, world, facts.now,
                                world.actor("reviewer", mfa=facts.mfa),
                                {action: _target(facts.team, CONSORTIUM_ACTIONS[action])
                                 for action in actions},
                                lambda recorder: _record(recorder, facts))
        for action, decision in decisions.items():
            assert not decision.errors
            if decision.allowed:
                assert action in READS
                assert all(requirements.values()), (action, requirements)
            if action in READS and all(requirements.values()):
                assert decision.allowed, (action, requirements)
            outcomes[decision.allowed] += 1
        event("broken: " + (",".join(sorted(facts.broken)) or "nothing"))

    check()
    return outcomes


def test_a_reviewer_reads_exactly_when_every_requirement_holds(runtime: Runtime,
                                                               clock: Clock) -> None:
    """Allow ⇒ NDA ∧ MFA ∧ assigned in the current stage ∧ window open ∧ no conflict ∧ not
    sanctioned, and conversely, for every reading action (documents, submission, partners)."""
    outcomes = _check_reviewer(runtime, clock, list(READS), max_examples=200)
    assert outcomes[True] >= 1 and outcomes[False] >= 1, outcomes


def test_a_reviewer_never_writes_whatever_the_facts(runtime: Runtime, clock: Clock) -> None:
    """Partner list edits, uploads, challenges and the consortium page: never, even when every
    reading requirement holds."""
    outcomes = _check_reviewer(runtime, clock, list(WRITES), max_examples=100)
    assert outcomes == Counter({False: sum(outcomes.values())})


def _decide_all(runtime: Runtime, clock: Clock, world: World, now: datetime, actor: Actor,
                requests: dict[Action, str], record: Callable[[Facts], None]
                ) -> dict[Action, Decision]:
    """Record the example's facts, decide each action on its target, roll the facts back."""
    clock.now = now
    session = runtime.sessions()
    try:
        record(Facts(session, world, runtime))
        return {action: runtime.authorizer(session).decide(
                    actor, action, world.resource(session, target))
                for action, target in requests.items()}
    finally:
        session.rollback()
        session.close()


# -- applicants ---------------------------------------------------------------------------------

def test_an_applicant_is_allowed_only_on_consortia_it_acts_for(runtime: Runtime,
                                                               clock: Clock) -> None:
    """Allow ⇔ the database links the applicant to the consortium, for every consortium action;
    the consortium ids the actor carries, MFA and conflicts change nothing."""
    world = build_world(runtime)
    outcomes: Counter[bool] = Counter()

    @settings(SETTINGS, max_examples=100)
    @given(applicant=st.sampled_from(["applicant_alpha", "applicant_beta"]),
           also=st.sets(st.sampled_from(TEAMS)),
           claimed=st.sets(st.sampled_from(TEAMS)),
           mfa=st.booleans(), team=st.sampled_from(TEAMS),
           conflict=st.sampled_from([None, *ConflictStatus]))
    def check(applicant: str, also: set[str], claimed: set[str], mfa: bool, team: str,
              conflict: ConflictStatus | None) -> None:
        own = applicant.removeprefix("applicant_")
        member_of = {own} | also

        def record(recorder: Facts) -> None:
            for extra in also - {own}:
                recorder.contact(applicant, extra)
            if conflict is not None:
                recorder.conflict(team, status=conflict)

        actor = Actor(user_id=world.users[applicant], role=Role.APPLICANT, mfa=mfa,
                      consortium_ids=frozenset(world.teams[t].consortium for t in claimed))
        decisions = _decide_all(runtime, clock, world, CALL_OPEN, actor,
                                {action: _target(team, part)
                                 for action, part in CONSORTIUM_ACTIONS.items()}, record)
        for action, decision in decisions.items():
            assert not decision.errors
            if decision.allowed:
                assert team in member_of, action
            assert decision.allowed == (team in member_of), action
            outcomes[decision.allowed] += 1
        event("member" if team in member_of else "outsider")

    check()
    assert outcomes[True] >= 1 and outcomes[False] >= 1, outcomes


# -- auditors and admins ----------------------------------------------------------------------

#: What auditors and admins may never do to a consortium's material.
NO_CONTENT = {A.DOCUMENT_READ: "document", A.PARTNER_LIST_VIEW: "submission",
              A.PARTNER_LIST_EDIT: "submission", A.DOCUMENT_UPLOAD: "submission"}


def test_auditors_and_admins_never_read_content_or_the_partner_list(runtime: Runtime,
                                                                     clock: Clock) -> None:
    """Whatever facts exist about them (an NDA, assignments, grants, the stage), no content."""
    world = build_world(runtime)
    opens, _closes = _windows(runtime)["written"]

    @settings(SETTINGS, max_examples=100)
    @given(who=st.sampled_from(["auditor", "admin"]), mfa=st.booleans(),
           team=st.sampled_from(TEAMS), nda=st.booleans(), assigned=st.booleans(),
           stage=st.sampled_from(("call", *STAGES)), grant=st.booleans(),
           offset=st.sampled_from([timedelta(0), DAY, 10 * DAY]))
    def check(who: str, mfa: bool, team: str, nda: bool, assigned: bool, stage: str,
              grant: bool, offset: timedelta) -> None:
        def record(recorder: Facts) -> None:
            recorder.stage(stage, team)
            if nda:
                recorder.nda(who, accepted_at=opens - DAY, expires_at=opens + 100 * DAY)
            if assigned and stage != "call":
                recorder.assign(team, stage, user=who)
            if grant:
                recorder.grant(team, requester=who, approver="officer", now=opens + offset)

        decisions = _decide_all(runtime, clock, world, opens + offset, world.actor(who, mfa=mfa),
                                {action: _target(team, part)
                                 for action, part in NO_CONTENT.items()}, record)
        for action, decision in decisions.items():
            assert not decision.allowed, (who, action, decision)

    check()
