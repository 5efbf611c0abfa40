"""The policy engine: the shipped policy set is valid and fully named, an invalid one stops the
vault at start-up naming the file and the problem, entity slices match the schema, and missing
entities, evaluation errors and unknown actions all deny or raise.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import cedarpy
import pytest

from tests.conftest import Clock
from tests.policy_world import IN_WINDOW, Facts, World, build_world
from vault.app import create_app
from vault.conflicts.models import ConflictStatus
from vault.db import unit_of_work
from vault.policy.actions import Action, Actor
from vault.policy.engine import SCHEMA_FILE, EntityRef, PolicyEngine, entities_json
from vault.policy.entities import EntityBuilder, principal_ref
from vault.policy.errors import PolicyError
from vault.runtime import Runtime
from vault.settings import Settings

POLICIES = Path(__file__).resolve().parent.parent / "policies"
NOW = 1_800_000_000
NDA = "a" * 64


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    """The shipped policy set."""
    return PolicyEngine.load(POLICIES)


def _static_policies(path: Path) -> dict[str, dict]:
    return json.loads(cedarpy.policies_to_json_str(path.read_text("utf-8")))["staticPolicies"]


# -- the shipped policy set -------------------------------------------------------------------

def test_the_shipped_policy_set_loads_and_validates_against_the_schema(
        engine: PolicyEngine) -> None:
    """Every file, and the set as a whole, passes Cedar's strict validator."""
    schema = (POLICIES / SCHEMA_FILE).read_text("utf-8")
    files = sorted(POLICIES.glob("*.cedar"))
    assert files
    for path in files:
        result = cedarpy.validate_policies(path.read_text("utf-8"), schema)
        assert result.validation_passed, (path.name, [str(e) for e in result.errors])
    whole = "\n".join(path.read_text("utf-8") for path in files)
    assert cedarpy.validate_policies(whole, schema).validation_passed
    assert engine.policy_ids


def test_every_policy_has_an_id_and_ids_are_unique(engine: PolicyEngine) -> None:
    """A decision can always name the policies that made it."""
    ids = [policy.get("annotations", {}).get("id")
           for path in sorted(POLICIES.glob("*.cedar"))
           for policy in _static_policies(path).values()]
    assert all(ids), "a policy without @id"
    assert len(ids) == len(set(ids)), "duplicate @id"
    assert set(ids) == engine.policy_ids


# -- an invalid policy set stops the vault --------------------------------------------------

def _replace(name: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(directory: Path) -> None:
        path = directory / name
        text = path.read_text("utf-8")
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1), "utf-8")
    return mutate


def _add_file(name: str, text: str) -> Callable[[Path], None]:
    def mutate(directory: Path) -> None:
        (directory / name).write_text(text, "utf-8")
    return mutate


def _remove_policies(directory: Path) -> None:
    for path in directory.glob("*.cedar"):
        path.unlink()


#: name → (how to break a copy of the policies, fragments the error message must contain)
BROKEN: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "typo'd attribute": (
        _replace("reviewers.cedar", "when { principal.mfa }", "when { principal.mfaa }"),
        ("reviewers.cedar", "invalid for the schema", "reviewer-accepts-nda", "mfaa")),
    "typo'd resource attribute in a new file": (
        _add_file("extra.cedar", '@id("extra")\npermit (principal is Vault::Reviewer, '
                  'action == Vault::Action::"submission:view", resource is Vault::Submission)\n'
                  'when { resource.stagee == "written" };\n'),
        ("extra.cedar", "extra", "stagee")),
    "syntax error": (
        _replace("guards.cedar", "forbid (", "forbid ["),
        ("guards.cedar", "does not parse")),
    "missing @id": (
        _replace("auditors.cedar", '@id("auditor-views-metadata")\n', ""),
        ("auditors.cedar", "no @id")),
    "empty @id": (
        _replace("auditors.cedar", '@id("auditor-views-metadata")', '@id("")'),
        ("auditors.cedar", "no @id")),
    "duplicate @id across files": (
        _replace("officers.cedar", '@id("officer-reads-access-report")',
                 '@id("reviewer-views-programme")'),
        ("reviewers.cedar", "officers.cedar", "reviewer-views-programme")),
    "duplicate @id in one file": (
        _replace("guards.cedar", '@id("guard-no-content-for-admins")',
                 '@id("guard-no-content-for-auditors")'),
        ("guards.cedar", "guard-no-content-for-auditors", "also used")),
    "unknown action": (
        _replace("administrators.cedar", 'Vault::Action::"key:manage"]',
                 'Vault::Action::"key:destroy"]'),
        ("administrators.cedar", "key:destroy", "admin-manages-accounts-and-keys")),
    "unknown entity type": (
        _replace("reviewers.cedar", "principal is Vault::Reviewer,",
                 "principal is Vault::Reviewr,"),
        ("reviewers.cedar", "Reviewr")),
    "a template": (
        _add_file("extra.cedar", '@id("extra")\npermit (principal == ?principal, '
                  'action == Vault::Action::"programme:view", resource);\n'),
        ("extra.cedar", "templates")),
    "broken schema": (
        _replace(SCHEMA_FILE, "nda_version: String,", "nda_version: Strin,"),
        (SCHEMA_FILE, "Strin")),
    "no policy files": (_remove_policies, ("no policy files",)),
}


@pytest.fixture
def broken_policies(tmp_path: Path) -> Callable[[str], Path]:
    """A copy of the shipped policies with one problem."""
    def make(problem: str) -> Path:
        directory = tmp_path / "policies"
        shutil.copytree(POLICIES, directory, ignore=shutil.ignore_patterns("programmes"))
        BROKEN[problem][0](directory)
        return directory
    return make


@pytest.mark.parametrize("problem", BROKEN)
def test_an_invalid_policy_set_stops_the_app_naming_file_and_problem(
        problem: str, broken_policies: Callable[[str], Path], environ: dict[str, str],
        clock: Clock) -> None:
    """``create_app`` (the web server) refuses to start; the message says where and what."""
    settings = Settings.from_env({**environ, "VAULT_POLICIES_DIR": str(broken_policies(problem))},
                                 testing=True)
    with pytest.raises(PolicyError) as caught:
        create_app(settings, clock=clock)
    for fragment in BROKEN[problem][1]:
        assert fragment in str(caught.value)


def test_an_invalid_policy_set_stops_the_runtime(broken_policies: Callable[[str], Path],
                                                 environ: dict[str, str]) -> None:
    """``Runtime.build``, which the command line uses too, loads and validates the policies."""
    directory = broken_policies("unknown action")
    settings = Settings.from_env(environ, policies_dir=directory, testing=True)
    with pytest.raises(PolicyError, match=r"^administrators\.cedar: invalid for the schema"):
        Runtime.build(settings)


def test_an_unreadable_policy_directory_stops_the_runtime(tmp_path: Path,
                                                          environ: dict[str, str]) -> None:
    """A missing directory is named, not silently treated as "no policies"."""
    settings = Settings.from_env(environ, policies_dir=tmp_path / "absent", testing=True)
    with pytest.raises(PolicyError, match="absent: cannot read the policies"):
        Runtime.build(settings)


def test_the_command_line_refuses_to_start_on_an_invalid_policy_set_in_one_line(
        broken_policies: Callable[[str], Path], environ: dict[str, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``vault …`` prints ``error: <file>: <problem>`` and exits with status 2."""
    from vault.cli import main

    for name, value in {**environ, "VAULT_POLICIES_DIR": str(broken_policies("syntax error"))
                        }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["vault", "programme", "list"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert "error: guards.cedar: does not parse" in capsys.readouterr().err


# -- entity slices ----------------------------------------------------------------------------

@pytest.fixture
def world(runtime: Runtime, clock: Clock) -> World:
    """A world where every kind of fact exists: NDA, assignments, conflicts, sanction, grant."""
    clock.now = IN_WINDOW
    world = build_world(runtime)
    with unit_of_work(runtime.sessions) as session:
        facts = Facts(session, world, runtime)
        facts.nda()
        facts.assign()
        facts.assign("beta", stage="presentation")
        facts.stage("written")
        facts.conflict("beta", status=ConflictStatus.CONFIRMED)
        facts.conflict("alpha", status=ConflictStatus.DISMISSED)
        facts.sanction(IN_WINDOW.date().replace(year=2020))
        facts.conflict(user="officer")
        facts.grant()
    return world


ACTORS = ("applicant_alpha", "reviewer", "officer", "officer2", "auditor", "admin", "operator")
TARGETS = ("system", "programme", "other-programme", "alpha", "beta", "alpha.submission",
           "beta.submission", "alpha.document", "beta.document", "grant")


@pytest.mark.parametrize("name", ACTORS)
def test_entity_slices_built_from_the_database_match_the_schema(
        name: str, runtime: Runtime, clock: Clock, world: World, engine: PolicyEngine) -> None:
    """Principal and resource slices (and their union, as evaluated) validate against the
    schema, so the policies are evaluated on exactly the shapes the validator checked."""
    with unit_of_work(runtime.sessions) as session:
        builder = EntityBuilder(session, runtime.definitions, clock, runtime.cipher)
        resources = [world.resource(session, target) for target in TARGETS]
        resource_json = builder.resources(resources)
        base = cedarpy.Entities.from_json_str(resource_json, schema=engine.schema)
        assert len(base) >= len(TARGETS)
        for programme in (world.resource(session, "programme"),
                          world.resource(session, "other-programme"), None):
            principal_json = builder.principal(world.actor(name), programme)
            cedarpy.Entities.from_json_str(principal_json, schema=engine.schema)
            base.with_added_json_str(principal_json, schema=engine.schema)


def test_the_reviewer_slice_carries_the_facts_of_the_database(
        runtime: Runtime, clock: Clock, world: World) -> None:
    """NDA, assignments, conflicts in effect (not dismissed) and the sanction window."""
    with unit_of_work(runtime.sessions) as session:
        builder = EntityBuilder(session, runtime.definitions, clock, runtime.cipher)
        [entity] = json.loads(builder.principal(world.actor("reviewer"),
                                                world.resource(session, "programme")))
    attrs = entity["attrs"]
    assert attrs["nda_version"] == world.nda_sha256 and attrs["nda_expires"] > NOW
    assert {(a["submission"]["__entity"]["id"], a["stage"]) for a in attrs["assignments"]} == {
        (str(world.teams["alpha"].submission), "written"),
        (str(world.teams["beta"].submission), "presentation")}
    assert [c["__entity"]["id"] for c in attrs["conflicts"]] == [
        str(world.teams["beta"].consortium)]
    assert attrs["sanctioned"] is False  # 2020 is outside the three-year exclusion


def test_a_slice_that_does_not_match_the_schema_is_rejected(engine: PolicyEngine) -> None:
    """The schema check above is not vacuous: a wrongly typed attribute fails it."""
    reviewer = _reviewer(nda_expires="2028-12-31")
    with pytest.raises(ValueError):
        cedarpy.Entities.from_json_str(entities_json([reviewer]), schema=engine.schema)
    cedarpy.Entities.from_json_str(entities_json([_reviewer()]), schema=engine.schema)


# -- hand-made slices: missing entities and evaluation errors -----------------------------------

PROGRAMME = EntityRef("Programme", "p")
CONSORTIUM = EntityRef("Consortium", "c")
SUBMISSION = EntityRef("Submission", "s")
DOCUMENT = EntityRef("Document", "d")
ABSENT = EntityRef("Document", "absent")


def _entity(uid: EntityRef, attrs: dict | None = None, parents: tuple[EntityRef, ...] = ()
            ) -> dict[str, object]:
    return {"uid": uid.json(), "attrs": attrs or {}, "parents": [p.json() for p in parents]}


def _resources(**submission: object) -> str:
    """A programme, consortium, submission (in its open written window) and document."""
    attrs = {"consortium": CONSORTIUM.attr(), "programme": PROGRAMME.attr(), "stage": "written",
             "review_opens": NOW - 3600, "review_closes": NOW + 3600, "withdrawn": False,
             "stage_closed": False,
             **submission}
    return entities_json([
        _entity(PROGRAMME, {"nda_version": NDA}),
        _entity(CONSORTIUM, parents=(PROGRAMME,)),
        _entity(SUBMISSION, attrs, parents=(CONSORTIUM,)),
        _entity(DOCUMENT, {"submission": SUBMISSION.attr()}, parents=(SUBMISSION,)),
    ])


def _reviewer(uid: str = "r", **attrs: object) -> dict[str, object]:
    """A reviewer who meets every requirement for the document above."""
    values = {"mfa": True, "nda_version": NDA, "nda_expires": NOW + 86400,
              "assignments": [{"submission": SUBMISSION.attr(), "stage": "written"}],
              "conflicts": [], "sanctioned": False, **attrs}
    return _entity(EntityRef("Reviewer", uid), values)


#: role → (principal entity, an action it is allowed on DOCUMENT in the full slice)
PRINCIPALS = {
    "applicant": (_entity(EntityRef("Applicant", "a"), {"mfa": False}, (CONSORTIUM,)),
                  Action.DOCUMENT_READ),
    "reviewer": (_reviewer(), Action.DOCUMENT_READ),
    "officer": (_entity(EntityRef("Officer", "o"), {"mfa": True, "conflicts": [], "grants": []}),
                Action.DOCUMENT_READ),
    "auditor": (_entity(EntityRef("Auditor", "u"), {"mfa": True}), Action.DOCUMENT_VIEW),
}


def _decide(engine: PolicyEngine, principal: dict, action: Action, resource: EntityRef, *,
            principal_entities: list[dict] | None = None, resources: str | None = None):
    uid = principal["uid"]
    ref = EntityRef(uid["type"].removeprefix("Vault::"), uid["id"])
    return engine.decide(ref, action, resource,
                         principal_entities=entities_json(
                             [principal] if principal_entities is None else principal_entities),
                         resource_entities=resources or _resources(), now=NOW)


@pytest.mark.parametrize("role", PRINCIPALS)
def test_the_full_hand_made_slice_allows(role: str, engine: PolicyEngine) -> None:
    """The control for the missing-entity tests below: with every entity present, allowed."""
    principal, action = PRINCIPALS[role]
    decision = _decide(engine, principal, action, DOCUMENT)
    assert decision.allowed and not decision.errors


@pytest.mark.parametrize("role", [
    "applicant", "reviewer",
    "officer", "auditor",
])
def test_a_resource_missing_from_the_slice_denies(role: str, engine: PolicyEngine) -> None:
    """A request about a document the slice does not contain is denied."""
    principal, action = PRINCIPALS[role]
    assert not _decide(engine, principal, action, ABSENT).allowed


@pytest.mark.parametrize("role", [
    "applicant", "reviewer", "officer", "auditor",
])
def test_a_principal_missing_from_the_slice_denies(role: str, engine: PolicyEngine) -> None:
    """A request whose principal has no entity in the slice is denied."""
    principal, action = PRINCIPALS[role]
    assert not _decide(engine, principal, action, DOCUMENT, principal_entities=[]).allowed


def test_a_reviewer_without_an_entity_is_denied_with_the_errors(engine: PolicyEngine) -> None:
    """An absent reviewer is refused before evaluation, and the decision says why."""
    decision = _decide(engine, _reviewer(), Action.DOCUMENT_READ, DOCUMENT,
                       principal_entities=[_reviewer(uid="someone-else")])
    assert not decision.allowed and decision.policies == ()
    assert decision.errors == ("no entity Reviewer::'r' in the slice",)
    assert decision.reasons[0].startswith("error: ")


def test_a_document_without_its_submission_is_denied(engine: PolicyEngine) -> None:
    """A document whose submission is absent cannot be placed in a window or an assignment."""
    resources = entities_json([_entity(DOCUMENT, {"submission": SUBMISSION.attr()},
                                       parents=(SUBMISSION,))])
    decision = _decide(engine, _reviewer(), Action.DOCUMENT_READ, DOCUMENT, resources=resources)
    assert not decision.allowed and decision.errors


def test_an_evaluation_error_denies_what_the_right_type_would_allow(
        engine: PolicyEngine) -> None:
    """A window bound of the wrong type (not validated here, as a buggy builder might send it)
    makes the permit error: denied, and the decision carries the error."""
    good = _decide(engine, _reviewer(), Action.DOCUMENT_READ, DOCUMENT)
    assert good.allowed and good.policies == ("reviewer-reads-assigned-documents",)
    decision = _decide(engine, _reviewer(), Action.DOCUMENT_READ, DOCUMENT,
                       resources=_resources(review_opens="2027-01-25"))
    assert not decision.allowed
    assert decision.policies == ()
    assert any("type error" in error for error in decision.errors)
    assert decision.reasons == tuple(f"error: {e}" for e in decision.errors)


def test_an_evaluation_error_denies_even_when_cedar_allows(engine: PolicyEngine) -> None:
    """Cedar skips a policy that errors and may still say Allow; the engine denies then.

    The shipped forbids read the same attributes as the permits they guard, so a probe forbid
    is added to the real set: it reads the officer's ``conflicted_programmes`` (which no permit
    of this action reads), which this slice gives as text.
    """
    schema = (POLICIES / SCHEMA_FILE).read_text("utf-8")
    files = {p.name: p.read_text("utf-8") for p in POLICIES.glob("*.cedar")}
    files["zz-probe.cedar"] = (
        '@id("probe-officer-programmes")\nforbid (principal is Vault::Officer, '
        'action == Vault::Action::"document:read", resource is Vault::Document)\n'
        'when { principal.conflicted_programmes.contains(resource.submission.programme) };\n')
    probed = PolicyEngine(schema, files)
    officer = _entity(EntityRef("Officer", "o"), {"mfa": True, "conflicts": [], "grants": [],
                                                  "conflicted_programmes": "yes"})
    raw = cedarpy.is_authorized(
        {"principal": officer["uid"], "action": {"type": "Vault::Action", "id": "document:read"},
         "resource": DOCUMENT.json(), "context": {"now": NOW}},
        cedarpy.PolicySet.from_str("\n".join(files.values())),
        [officer, *json.loads(_resources())])
    assert raw.allowed and raw.diagnostics.errors  # Cedar alone would let this through
    decision = _decide(probed, officer, Action.DOCUMENT_READ, DOCUMENT)
    assert not decision.allowed
    assert decision.errors and "expected set" in decision.errors[0]
    assert decision.reasons[0].startswith("error: ")


def test_a_changed_slice_is_never_answered_from_the_cache(engine: PolicyEngine) -> None:
    """Parsed slices are cached by their exact text: a new conflict changes the answer."""
    assert _decide(engine, _reviewer(), Action.DOCUMENT_READ, DOCUMENT).allowed
    conflicted = _reviewer(conflicts=[CONSORTIUM.attr()])
    decision = _decide(engine, conflicted, Action.DOCUMENT_READ, DOCUMENT)
    assert (decision.allowed, decision.policies) == (False, ("guard-conflicted-reviewer",))
    assert _decide(engine, _reviewer(), Action.DOCUMENT_READ, DOCUMENT).allowed


# -- unknown actions ------------------------------------------------------------------------

def test_an_unknown_action_raises_in_the_engine(engine: PolicyEngine) -> None:
    """Only the actions of ``Action`` exist; anything else is a programming error."""
    with pytest.raises(ValueError):
        engine.decide(EntityRef("Reviewer", "r"), "document:delete",  # type: ignore[arg-type]
                      DOCUMENT, principal_entities=entities_json([_reviewer()]),
                      resource_entities=_resources(), now=NOW)


def test_an_unknown_action_raises_in_the_authorizer(runtime: Runtime, world: World) -> None:
    """The enforcement point refuses it before building any slice."""
    with unit_of_work(runtime.sessions) as session:
        authorizer = runtime.authorizer(session)
        document = world.resource(session, "alpha.document")
        with pytest.raises(ValueError):
            authorizer.decide(world.actor("reviewer"), "document:delete",  # type: ignore[arg-type]
                              document)


def test_the_operator_is_its_own_principal() -> None:
    """The command line acts as ``Operator``, never as a user of some role."""
    assert principal_ref(Actor.operator()) == EntityRef("Operator", "cli")
