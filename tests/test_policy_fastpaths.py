"""The engine's shortcuts give exactly the decisions of plain Cedar evaluation: policy subsets
per principal type and action, the compiled evaluator, and one evaluation per submission for
its documents."""

from __future__ import annotations

import itertools

import cedarpy
import pytest
from sqlalchemy import select

from tests.conftest import Clock
from tests.policy_world import IN_WINDOW, STAGE, Facts, World, build_world
from vault.db import unit_of_work
from vault.documents.models import Document
from vault.policy.actions import Action
from vault.policy.entities import epoch, principal_ref, ref
from vault.runtime import Runtime


@pytest.fixture
def world(runtime: Runtime, clock: Clock) -> World:
    """A world with the reviewer ready for Alpha (not Beta), three documents per team."""
    clock.now = IN_WINDOW
    world = build_world(runtime)
    with unit_of_work(runtime.sessions) as session:
        facts = Facts(session, world, runtime)
        facts.nda()
        facts.assign("alpha")
        facts.stage(STAGE, "alpha")
        facts.stage(STAGE, "beta")
        facts.conflict("beta", user="officer")
        for team in ("alpha", "beta"):
            submission_id = world.teams[team].submission
            for slot in ("a", "b"):
                session.add(Document(submission_id=submission_id, kind="letter_of_commitment",
                                     slot=slot))
    return world


PEOPLE = ["reviewer", "applicant_alpha", "applicant_beta", "officer", "auditor", "admin"]
ACTIONS = [Action.DOCUMENT_VIEW, Action.DOCUMENT_READ, Action.SUBMISSION_VIEW,
           Action.PARTNER_LIST_VIEW, Action.DOCUMENT_UPLOAD, Action.CONSORTIUM_VIEW,
           Action.PROGRAMME_VIEW, Action.AUDIT_LOG_VIEW, Action.USER_LIST]


def test_every_decision_equals_plain_cedar_with_every_policy(world, runtime):
    """The full policy text, parsed by cedarpy on each call, decides the same requests."""
    policy_text = "\n".join(p.read_text("utf-8") for p in
                            sorted(runtime.settings.policies_dir.glob("*.cedar")))
    now = epoch(runtime.clock())
    compared = 0
    with unit_of_work(runtime.sessions) as session:
        authorizer = runtime.authorizer(session)
        resources = [world.resource(session, name) for name in (
            "system", "programme", "alpha", "alpha.submission", "alpha.document", "beta",
            "beta.submission", "beta.document")]
        for person, action in itertools.product(PEOPLE, ACTIONS):
            actor = world.actor(person)
            for resource in resources:
                try:
                    decision = authorizer.decide(actor, action, resource)
                except ValueError:
                    continue
                programme = authorizer.builder.programme_of(resource)
                slice_ = (authorizer.builder.principal(actor, programme)[:-1] + ","
                          + authorizer.builder.resources([resource])[1:])
                plain = cedarpy.is_authorized(
                    {"principal": principal_ref(actor).json(), "resource": ref(resource).json(),
                     "action": {"type": "Vault::Action", "id": action.value},
                     "context": {"now": now}}, policy_text, slice_)
                if plain.diagnostics.errors:
                    assert not decision.allowed
                    continue
                assert decision.allowed == plain.allowed, (person, action, resource)
                expected = sorted(plain.diagnostics.id_annotations_by_reason.values())
                assert list(decision.policies) == expected, (person, action, resource)
                compared += 1
    assert compared > 200


def test_documents_of_one_submission_are_decided_as_if_one_by_one(world, runtime):
    assert runtime.policy.documents_alike
    with unit_of_work(runtime.sessions) as session:
        authorizer = runtime.authorizer(session)
        documents = list(session.scalars(select(Document).order_by(Document.submission_id,
                                                                   Document.slot)))
        assert len(documents) == 6
        for person, action in itertools.product(PEOPLE, (Action.DOCUMENT_VIEW,
                                                         Action.DOCUMENT_READ)):
            actor = world.actor(person)
            together = authorizer.decide_many(actor, action, documents)
            alone = [authorizer.decide_many(actor, action, [d])[0] for d in documents]
            assert together == alone, (person, action)
        reviewer = [d.allowed for d in authorizer.decide_many(
            world.actor("reviewer"), Action.DOCUMENT_READ, documents)]
        alpha = world.teams["alpha"].submission
        assert reviewer == [d.submission_id == alpha for d in documents]


def test_a_policy_naming_one_document_turns_the_shortcut_off(tmp_path):
    from pathlib import Path

    from vault.policy.engine import PolicyEngine

    source = Path(__file__).resolve().parents[1] / "policies"
    files = {p.name: p.read_text("utf-8") for p in source.glob("*.cedar")}
    files["extra.cedar"] = (
        '@id("one-document")\n'
        'forbid (principal, action, resource == Vault::Document::"d1");\n')
    engine = PolicyEngine((source / "vault.cedarschema").read_text("utf-8"), files)
    assert not engine.documents_alike
