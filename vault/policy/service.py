"""The one enforcement point: ``authorize(actor, action, resource)``.

It builds the entity slice from the database, evaluates the Cedar policies, allows only on Allow
with no evaluation error, records the decision with the deciding policy ids in the audit log, and
raises ``AccessDenied`` on deny. Listings are filtered by the same policies in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.crypto import FieldCipher
from vault.documents.models import Document
from vault.policy.actions import Action, Actor
from vault.policy.engine import Decision, PolicyEngine
from vault.policy.entities import EntityBuilder, Resource, epoch, principal_ref, ref
from vault.policy.errors import AccessDenied
from vault.programmes.definition import ProgrammeDefinition

R = TypeVar("R", bound=Resource)

#: Records a denial so that it survives the failing request (the web layer commits it on its
#: own); receives the keyword arguments of ``AuditLog.record``.
DenialRecorder = Callable[..., None]


class Authorizer:
    """Decides, records and enforces access on one database session."""

    def __init__(self, session: Session, *, engine: PolicyEngine,
                 definitions: Mapping[str, ProgrammeDefinition], clock: Callable[[], datetime],
                 cipher: FieldCipher, request: RequestInfo | None = None,
                 record_denial: DenialRecorder | None = None) -> None:
        self.session = session
        self.engine = engine
        self.clock = clock
        self.request = request or RequestInfo()
        self.builder = EntityBuilder(session, definitions, clock, cipher)
        self._record_denial = record_denial

    def decide(self, actor: Actor, action: Action, resource: Resource) -> Decision:
        """The decision, without recording it (for showing or hiding a button)."""
        return self.decide_many(actor, action, [resource])[0]

    def decide_many(self, actor: Actor, action: Action, resources: Sequence[Resource]
                    ) -> list[Decision]:
        """Decisions for one actor and action on many resources, evaluated in batches (one per
        programme, since the principal's NDA and assignments are per programme).

        Documents of one submission are decided alike, so one of them is evaluated for all:
        the entity slice gives a document nothing but its submission (no entity refers to a
        document), and the engine confirms that no policy names a particular document
        (``documents_alike``). The decision is the same as evaluating each one.
        """
        action = Action(action)  # an unknown action raises ValueError
        representative: dict[object, int] = {}
        classes = [self._class(resource) for resource in resources]
        for index, key in enumerate(classes):
            representative.setdefault(key, index)
        by_programme: dict[object, list[int]] = {}
        programmes = {}
        for index in representative.values():
            programme = self.builder.programme_of(resources[index])
            key = programme.id if programme else None
            programmes[key] = programme
            by_programme.setdefault(key, []).append(index)
        decided: dict[int, Decision] = {}
        now = epoch(self.clock())
        for key, indexes in by_programme.items():
            chosen = [resources[i] for i in indexes]
            results = self.engine.decide_many(
                principal_ref(actor), action, [ref(r) for r in chosen],
                principal_entities=self.builder.principal(actor, programmes[key]),
                resource_entities=self.builder.resources(chosen), now=now)
            decided.update(zip(indexes, results, strict=True))
        return [decided[representative[key]] for key in classes]

    def _class(self, resource: Resource) -> object:
        if isinstance(resource, Document) and self.engine.documents_alike:
            return ("documents of", resource.submission_id)
        return ref(resource)

    def allowed(self, actor: Actor, action: Action, resource: Resource) -> bool:
        """Whether the policies allow it (not recorded)."""
        return self.decide(actor, action, resource).allowed

    def authorize(self, actor: Actor, action: Action, resource: Resource, *,
                  target: Mapping[str, object] | None = None,
                  denied: Exception | None = None) -> Decision:
        """Allow or raise: the decision and its deciding policies are recorded either way.

        Raises ``denied`` (e.g. a not-found error, so that existence is not revealed) or
        ``AccessDenied``.
        """
        decision = self.decide(actor, action, resource)
        # The deciding policies are recorded as they are, a conflict guard's too: the log may
        # say that a conflict (or a sanction) refused a read — that is the accountability it
        # exists for — and it cannot say which partner caused it, because neither a person's
        # organisation nor a conflict's consortium is stored in plaintext.
        details = {"action": action.value, "resource": _describe(resource), **(target or {})}
        event = {"actor": actor, "target": details, "reasons": decision.reasons,
                 "request": self.request}
        if decision.allowed:
            self.audit.record(Tag.ACCESS_DECIDED, decision="allow", **event)
            return decision
        if self._record_denial is not None:
            self._record_denial(Tag.ACCESS_DECIDED, decision="deny", **event)
        else:
            self.audit.record(Tag.ACCESS_DECIDED, decision="deny", **event)
        raise denied or AccessDenied(f"{actor.role_name} may not {action.value}",
                                     policies=decision.policies)

    def permitted(self, actor: Actor, action: Action, resources: Sequence[R]) -> list[R]:
        """The resources the policies allow, in order; the listing is recorded as one event."""
        decisions = self.decide_many(actor, action, resources)
        shown = [r for r, d in zip(resources, decisions, strict=True) if d.allowed]
        if resources:
            self.audit.record(Tag.ACCESS_FILTERED, actor=actor, request=self.request,
                              target={"action": action.value, "shown": len(shown),
                                      "hidden": len(resources) - len(shown)})
        return shown

    @property
    def audit(self) -> AuditLog:
        """The audit log on this session."""
        return AuditLog(self.session, clock=self.clock)


def _describe(resource: Resource) -> str:
    uid = ref(resource)
    return f"{uid.type}:{uid.id}"
