"""The Cedar policy engine: ``policies/vault.cedarschema`` and ``policies/*.cedar``, parsed once.

Loading validates every policy file against the schema and insists that every policy carries a
unique ``@id``, so a decision can always name the policies that made it. Evaluation takes an
entity slice (principal entities plus resource entities, as Cedar JSON) and allows only when
Cedar says Allow *and* reported no evaluation error.

Parsing an entity slice costs far more than evaluating it, so parsed slices are kept in a small
LRU cache keyed by their exact JSON text: a slice that changed in any way is a different key, so
the cache can never answer with stale facts.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cedarpy

from vault.policy.actions import Action
from vault.policy.errors import PolicyError

NAMESPACE = "Vault"
SCHEMA_FILE = "vault.cedarschema"
#: Parsed entity slices kept (resource slices and principal+resource combinations).
CACHE_SIZE = 256


@dataclass(frozen=True)
class EntityRef:
    """A Cedar entity uid: ``Vault::<type>::"<id>"``."""

    type: str
    id: str

    def json(self) -> dict[str, str]:
        """The uid in Cedar's JSON form."""
        return {"type": f"{NAMESPACE}::{self.type}", "id": self.id}

    def attr(self) -> dict[str, dict[str, str]]:
        """The uid as an attribute value (an entity reference)."""
        return {"__entity": self.json()}


@dataclass(frozen=True)
class Decision:
    """The outcome of one evaluation."""

    allowed: bool
    #: The ``@id`` of every policy that decided: permits on Allow, matching forbids on Deny
    #: (none for the default deny).
    policies: tuple[str, ...]
    #: Evaluation errors (any error denies).
    errors: tuple[str, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """What the audit log records: deciding policy ids, else why it denied."""
        if self.errors:
            return tuple(f"error: {e}" for e in self.errors)
        return self.policies or ("default-deny",)


class PolicyEngine:
    """Validated policies and schema, evaluated against entity slices."""

    def __init__(self, schema: str, policy_files: dict[str, str]) -> None:
        """Validate and parse; raises ``PolicyError`` naming the file and the problem."""
        if not policy_files:
            raise PolicyError("no policy files (*.cedar) found")
        try:
            self._schema = cedarpy.Schema.from_str(schema)
        except ValueError as error:
            raise PolicyError(f"{SCHEMA_FILE}: {error}") from None
        ids: dict[str, str] = {}
        for name, text in sorted(policy_files.items()):
            self._check_file(name, text, schema, ids)
        self.policy_ids = frozenset(ids)
        self._text = "\n".join(text for _name, text in sorted(policy_files.items()))
        self._policies = cedarpy.PolicySet.from_str(self._text)
        self._cache: OrderedDict[str, cedarpy.Entities] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, directory: Path) -> PolicyEngine:
        """The schema and every ``*.cedar`` file in ``directory``."""
        schema_path = directory / SCHEMA_FILE
        try:
            schema = schema_path.read_text("utf-8")
            files = {p.name: p.read_text("utf-8") for p in sorted(directory.glob("*.cedar"))}
        except OSError as error:
            raise PolicyError(f"{directory}: cannot read the policies: {error}") from None
        return cls(schema, files)

    @staticmethod
    def _check_file(name: str, text: str, schema: str, ids: dict[str, str]) -> None:
        try:
            parsed = json.loads(cedarpy.policies_to_json_str(text))
        except ValueError as error:
            raise PolicyError(f"{name}: does not parse: {error}") from None
        if parsed.get("templates"):
            raise PolicyError(f"{name}: templates are not used by the vault")
        for generated, policy in parsed.get("staticPolicies", {}).items():
            policy_id = policy.get("annotations", {}).get("id")
            if not policy_id:
                raise PolicyError(f"{name}: policy {generated} has no @id annotation")
            if policy_id in ids:
                raise PolicyError(f"{name}: @id {policy_id!r} is also used in {ids[policy_id]}")
            ids[policy_id] = name
        result = cedarpy.validate_policies(text, schema)
        if not result.validation_passed:
            names = result.id_annotations_by_policy_id
            problems = "; ".join(
                f"{names.get(e.policy_id, e.policy_id) or 'policy'}: {e.error}"
                for e in result.errors)
            raise PolicyError(f"{name}: invalid for the schema: {problems}")

    @property
    def schema(self) -> cedarpy.Schema:
        """The parsed schema (tests validate entity slices against it)."""
        return self._schema

    # -- evaluation ---------------------------------------------------------------------------

    def decide(self, principal: EntityRef, action: Action, resource: EntityRef, *,
               principal_entities: str, resource_entities: str, now: int) -> Decision:
        """Evaluate one request against the slice (entity lists as Cedar JSON text)."""
        return self.decide_many(principal, action, [resource],
                                principal_entities=principal_entities,
                                resource_entities=resource_entities, now=now)[0]

    def decide_many(self, principal: EntityRef, action: Action, resources: Sequence[EntityRef],
                    *, principal_entities: str, resource_entities: str, now: int
                    ) -> list[Decision]:
        """Evaluate the same principal and action on many resources, in one batch."""
        if not resources:
            return []
        entities = self._entities(principal_entities, resource_entities)
        context = json.dumps({"now": now})  # parsed once here, shared by every request
        principal_uid, action_uid = principal.json(), {
            "type": f"{NAMESPACE}::Action", "id": Action(action).value}
        requests = [{"principal": principal_uid, "action": action_uid,
                     "resource": resource.json(), "context": context} for resource in resources]
        return [_decision(result) for result in
                cedarpy.is_authorized_batch(requests, self._policies, entities)]

    def _entities(self, principal_entities: str, resource_entities: str) -> cedarpy.Entities:
        combined_key = principal_entities + "\n" + resource_entities
        with self._lock:
            combined = self._cached(combined_key)
            if combined is not None:
                return combined
            base = self._cached(resource_entities)
        if base is None:
            base = cedarpy.Entities.from_json_str(resource_entities)
        combined = base.with_added_json_str(principal_entities)
        with self._lock:
            self._remember(resource_entities, base)
            self._remember(combined_key, combined)
        return combined

    def _cached(self, key: str) -> cedarpy.Entities | None:
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found

    def _remember(self, key: str, entities: cedarpy.Entities) -> None:
        self._cache[key] = entities
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)


def _decision(result: cedarpy.AuthzResult) -> Decision:
    diagnostics = result.diagnostics
    names = diagnostics.id_annotations_by_reason
    policies = tuple(sorted(names.get(reason, reason) for reason in diagnostics.reasons))
    errors = tuple(str(error) for error in diagnostics.errors)
    return Decision(allowed=result.allowed and not errors, policies=policies, errors=errors)


def entities_json(entities: Iterable[dict[str, object]]) -> str:
    """A list of Cedar entities as JSON text in one canonical form (the cache key)."""
    return json.dumps(list(entities), sort_keys=True, separators=(",", ":"))
