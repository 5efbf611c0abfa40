"""The entity slice of a decision, built from the database: the principal with the facts the
policies test (NDA, MFA, assignments, conflicts, grants, sanctions) and the resource with its
containers (document → submission → consortium → programme).

Facts are read fresh for every request, so a conflict, an expired NDA or a removed assignment
takes effect on the very next request. Within one request the principal is built once per
programme (the NDA and the assignments are per programme).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.assignments.models import Assignment
from vault.conflicts.links import conflicted_consortia
from vault.conflicts.models import Conflict, ConflictStatus
from vault.conflicts.rules import recent_sanction, rules_for
from vault.consortia.models import Consortium, ConsortiumContact
from vault.crypto import FieldCipher
from vault.documents.models import Document, Submission, SubmissionState
from vault.evaluation.models import RoundState, StageRound
from vault.grants.models import DualControlGrant
from vault.identity.models import Role
from vault.nda.models import NdaAcceptance
from vault.policy.actions import Actor
from vault.policy.engine import EntityRef, entities_json
from vault.programmes.definition import CALL, ProgrammeDefinition
from vault.programmes.models import Programme

#: The one ``System`` resource: the audit log, accounts and keys.
SYSTEM = EntityRef("System", "vault")

#: What a decision can be about (``None`` is the vault itself, ``SYSTEM``).
Resource = Programme | Consortium | Submission | Document | DualControlGrant | None

_PRINCIPAL_TYPES = {
    Role.APPLICANT: "Applicant",
    Role.REVIEWER: "Reviewer",
    Role.OFFICER: "Officer",
    Role.AUDITOR: "Auditor",
    Role.ADMIN: "Admin",
}


def epoch(moment: datetime) -> int:
    """Unix seconds: how the policies compare times."""
    return int(moment.timestamp())


def ref(resource: Resource) -> EntityRef:
    """The entity uid of a resource."""
    if resource is None:
        return SYSTEM
    kind = {Programme: "Programme", Consortium: "Consortium", Submission: "Submission",
            Document: "Document", DualControlGrant: "Grant"}[type(resource)]
    return EntityRef(kind, str(resource.id))


def principal_ref(actor: Actor) -> EntityRef:
    """The entity uid of an actor."""
    if actor.role is None:
        return EntityRef("Operator", "cli")
    return EntityRef(_PRINCIPAL_TYPES[actor.role], str(actor.user_id))


def _entity(uid: EntityRef, attrs: Mapping[str, object] | None = None,
            parents: Iterable[EntityRef] = ()) -> dict[str, object]:
    return {"uid": uid.json(), "attrs": dict(attrs or {}),
            "parents": [parent.json() for parent in parents]}


class EntityBuilder:
    """Builds entity slices on one database session."""

    def __init__(self, session: Session, definitions: Mapping[str, ProgrammeDefinition],
                 clock: Callable[[], datetime], cipher: FieldCipher) -> None:
        self.session = session
        #: Opens which consortium a conflict is about: that link is sealed in the database.
        self.cipher = cipher
        self.definitions = definitions
        self.clock = clock
        self._principals: dict[tuple[Actor, uuid.UUID | None], str] = {}

    # -- principals -----------------------------------------------------------------------------

    def principal(self, actor: Actor, programme: Programme | None) -> str:
        """The principal's entities (Cedar JSON) for decisions on ``programme``'s material."""
        key = (actor, programme.id if programme else None)
        if key not in self._principals:
            self._principals[key] = entities_json(self._principal(actor, programme))
        return self._principals[key]

    def _principal(self, actor: Actor, programme: Programme | None) -> list[dict[str, object]]:
        uid = principal_ref(actor)
        if actor.role is None:
            return [_entity(uid)]
        assert actor.user_id is not None
        if actor.role is Role.APPLICANT:
            # The consortia the applicant acts for come along with their programme as parent,
            # so that ``principal in <programme>`` holds for the applicant's own programmes.
            rows = self.session.execute(
                select(Consortium.id, Consortium.programme_id).join(ConsortiumContact)
                .where(ConsortiumContact.user_id == actor.user_id).order_by(Consortium.id))
            consortia = [(EntityRef("Consortium", str(c)), EntityRef("Programme", str(p)))
                         for c, p in rows]
            return [_entity(uid, {"mfa": actor.mfa}, parents=[c for c, _p in consortia]),
                    *(_entity(c, parents=[p]) for c, p in consortia)]
        if actor.role is Role.REVIEWER:
            version, expires = self._nda(actor.user_id, programme)
            return [_entity(uid, {
                "mfa": actor.mfa,
                "nda_version": version,
                "nda_expires": expires,
                "assignments": self._assignments(actor.user_id, programme),
                "conflicts": self._conflicts(actor.user_id),
                "sanctioned": self._sanctioned(actor.user_id, programme),
            })]
        if actor.role is Role.OFFICER:
            return [_entity(uid, {"mfa": actor.mfa, "conflicts": self._conflicts(actor.user_id),
                                  "grants": self._grants(actor.user_id),
                                  "conflicted_programmes":
                                      self._conflicted_programmes(actor.user_id)})]
        return [_entity(uid, {"mfa": actor.mfa})]

    def _nda(self, user_id: uuid.UUID, programme: Programme | None) -> tuple[str, int]:
        if programme is None:
            return "", 0
        latest = self.session.execute(
            select(NdaAcceptance.nda_sha256, NdaAcceptance.expires_at)
            .where(NdaAcceptance.user_id == user_id, NdaAcceptance.programme_id == programme.id)
            .order_by(NdaAcceptance.accepted_at.desc(), NdaAcceptance.id.desc()).limit(1)
        ).first()
        if latest is None:
            return "", 0
        return latest.nda_sha256, epoch(latest.expires_at)

    def _assignments(self, user_id: uuid.UUID, programme: Programme | None
                     ) -> list[dict[str, object]]:
        if programme is None:
            return []
        rows = self.session.execute(
            select(Assignment.submission_id, Assignment.stage)
            .where(Assignment.reviewer_id == user_id, Assignment.programme_id == programme.id)
            .order_by(Assignment.submission_id, Assignment.stage)
        )
        return [{"submission": EntityRef("Submission", str(submission)).attr(), "stage": stage}
                for submission, stage in rows]

    def _conflicts(self, user_id: uuid.UUID) -> list[dict[str, object]]:
        # Pending conflicts count: access stays denied until an officer dismisses them. A
        # person has few conflicts, so opening each one's sealed consortium costs microseconds.
        consortia = conflicted_consortia(self.session, self.cipher, user_id)
        return [EntityRef("Consortium", str(c)).attr() for c in sorted(consortia)]

    def _conflicted_programmes(self, user_id: uuid.UUID) -> list[dict[str, object]]:
        # The programmes of the consortia in ``_conflicts``: an officer conflicted with one
        # consortium takes no decision that ranks it against the others.
        programmes = self.session.scalars(
            select(Conflict.programme_id).distinct()
            .where(Conflict.user_id == user_id, Conflict.status != ConflictStatus.DISMISSED)
            .order_by(Conflict.programme_id)
        )
        return [EntityRef("Programme", str(p)).attr() for p in programmes]

    def _grants(self, user_id: uuid.UUID) -> list[dict[str, object]]:
        now = self.clock()
        consortia = self.session.scalars(
            select(DualControlGrant.consortium_id).distinct()
            .where(DualControlGrant.requested_by_id == user_id,
                   DualControlGrant.approved_at.is_not(None),
                   DualControlGrant.revoked_at.is_(None),
                   DualControlGrant.expires_at > now)
            .order_by(DualControlGrant.consortium_id)
        )
        return [EntityRef("Consortium", str(c)).attr() for c in consortia]

    def _sanctioned(self, user_id: uuid.UUID, programme: Programme | None) -> bool:
        rules = rules_for(self.definitions, programme.code if programme else None)
        return recent_sanction(self.session, user_id, rules, self.clock().date()) is not None

    # -- resources ------------------------------------------------------------------------------

    def resources(self, resources: Sequence[Resource]) -> str:
        """The resources and their containers (Cedar JSON), each entity once."""
        entities: dict[EntityRef, dict[str, object]] = {}
        for resource in resources:
            self._add(resource, entities)
        return entities_json(entities[uid] for uid in sorted(entities, key=_sort_key))

    def programme_of(self, resource: Resource) -> Programme | None:
        """The programme whose rules apply to decisions on ``resource``."""
        if resource is None:
            return None
        if isinstance(resource, Programme):
            return resource
        if isinstance(resource, DualControlGrant):
            return resource.consortium.programme
        if isinstance(resource, Consortium):
            return resource.programme
        if isinstance(resource, Document):
            resource = resource.submission
        return resource.consortium.programme

    def _add(self, resource: Resource, out: dict[EntityRef, dict[str, object]]) -> None:
        uid = ref(resource)
        if uid in out:
            return
        if resource is None:
            out[uid] = _entity(uid)
        elif isinstance(resource, Programme):
            definition = self.definitions.get(resource.code)
            nda = definition.nda if definition else None
            out[uid] = _entity(uid, {"nda_version": nda.sha256 if nda else ""})
        elif isinstance(resource, Consortium):
            out[uid] = _entity(uid, parents=[ref(resource.programme)])
            self._add(resource.programme, out)
        elif isinstance(resource, Submission):
            programme = resource.consortium.programme
            opens, closes = self._window(programme, resource.stage)
            out[uid] = _entity(uid, {
                "consortium": ref(resource.consortium).attr(),
                "programme": ref(programme).attr(),
                "stage": resource.stage,
                "review_opens": opens,
                "review_closes": closes,
                "withdrawn": resource.state is SubmissionState.WITHDRAWN,
                "stage_closed": self._stage_closed(programme, resource.stage),
            }, parents=[ref(resource.consortium)])
            self._add(resource.consortium, out)
        elif isinstance(resource, Document):
            out[uid] = _entity(uid, {"submission": ref(resource.submission).attr()},
                               parents=[ref(resource.submission)])
            self._add(resource.submission, out)
        elif isinstance(resource, DualControlGrant):
            requester = EntityRef("Officer", str(resource.requested_by_id))
            out[uid] = _entity(uid, {"consortium": ref(resource.consortium).attr(),
                                     "requested_by": requester.attr()})
            self._add(resource.consortium, out)
        else:
            raise TypeError(f"no entity for {type(resource).__name__}")

    def _stage_closed(self, programme: Programme, stage_id: str) -> bool:
        # A round without a row is open; closed, confirmed and published rounds are closed.
        state = self.session.scalar(select(StageRound.state).where(
            StageRound.programme_id == programme.id, StageRound.stage == stage_id))
        return state is not None and state is not RoundState.OPEN

    def _window(self, programme: Programme, stage_id: str) -> tuple[int, int]:
        definition = self.definitions.get(programme.code)
        if definition is None or stage_id == CALL:
            return 0, 0
        try:
            stage = definition.stage(stage_id)
        except KeyError:
            return 0, 0
        return epoch(stage.review_opens), epoch(stage.review_closes)


def _sort_key(uid: EntityRef) -> tuple[str, str]:
    return uid.type, uid.id

