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

import functools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

try:
    from cedarpy import _internal as _compiled
except ImportError:  # pragma: no cover
    _compiled = None

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


@functools.lru_cache(maxsize=128)
def _schema_problems(text: str, schema: str) -> str:
    """Why the policies in ``text`` are invalid for ``schema`` ("" when they are valid).

    A pure function of the two texts, remembered: validation is most of the cost of loading,
    and a process that builds several apps (the test suite, a CLI command that serves) loads
    the same files each time.
    """
    result = cedarpy.validate_policies(text, schema)
    if result.validation_passed:
        return ""
    names = result.id_annotations_by_policy_id
    return "; ".join(f"{names.get(e.policy_id, e.policy_id) or 'policy'}: {e.error}"
                     for e in result.errors)


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
        #: Every policy in Cedar's JSON form, keyed by the id Cedar generated for it.
        self._static: dict[str, dict[str, Any]] = json.loads(
            cedarpy.policies_to_json_str(self._text))["staticPolicies"]
        self._names = {key: policy["annotations"]["id"] for key, policy in self._static.items()}
        #: Whether no policy names one particular document: then every document of a submission
        #: is decided alike (the entity slice gives a document nothing but its submission).
        self.documents_alike = not _names_entity(self._static, f"{NAMESPACE}::Document")
        self._subsets: dict[tuple[str, str], cedarpy.PolicySet] = {}
        self._last_context: tuple[int, str] = (-1, "")
        self._cache: OrderedDict[str, tuple[cedarpy.Entities, frozenset[tuple[str, str]]]] = \
            OrderedDict()
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
        problems = _schema_problems(text, schema)
        if problems:
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
        """Evaluate the same principal and action on many resources, in one batch.

        A principal or resource without an entity in the slice is denied without evaluation:
        a permit that reads none of its attributes would otherwise match a missing entity.
        """
        if not resources:
            return []
        action = Action(action)
        entities, present = self._entities(principal_entities, resource_entities)
        if _key(principal) not in present:
            return [_missing(principal)] * len(resources)
        context = self._context(now)  # one JSON text per second, shared by every request
        principal_uid = principal.json()
        action_uid = {"type": f"{NAMESPACE}::Action", "id": action.value}
        requests = [{"principal": principal_uid, "action": action_uid,
                     "resource": resource.json(), "context": context}
                    for resource in resources if _key(resource) in present]
        results = iter(_evaluate(requests, self._subset(principal.type, action), entities)
                       if requests else ())
        return [self._decision(next(results)) if _key(resource) in present
                else _missing(resource) for resource in resources]

    def _context(self, now: int) -> str:
        last = self._last_context
        if last[0] != now:
            last = self._last_context = (now, json.dumps({"now": now}))
        return last[1]

    def _subset(self, principal_type: str, action: Action) -> cedarpy.PolicySet:
        """The policies whose scope can match this principal type and action.

        The others cannot be satisfied by such a request (Cedar checks the scope before the
        conditions, so they can neither match nor error): leaving them out changes no decision,
        and evaluates a few policies instead of all of them.
        """
        key = (principal_type, action.value)
        found = self._subsets.get(key)
        if found is None:
            chosen = {name: policy for name, policy in self._static.items()
                      if _scope_admits(policy, f"{NAMESPACE}::{principal_type}", action.value)}
            found = cedarpy.PolicySet.from_json_str(json.dumps(
                {"staticPolicies": chosen, "templates": {}, "templateLinks": []}))
            with self._lock:
                self._subsets[key] = found
        return found

    def _decision(self, result: dict[str, Any]) -> Decision:
        diagnostics = result.get("diagnostics", {})
        names = diagnostics.get("id_annotations_by_reason", {})
        policies = tuple(sorted(names.get(r, r) for r in diagnostics.get("reason", ())))
        errors = diagnostics.get("errors")
        if not errors:
            return Decision(allowed=result["decision"] == "Allow", policies=policies)
        named = tuple(_GENERATED.sub(lambda m: self._names.get(m.group(0), m.group(0)), str(e))
                      for e in errors)
        # An evaluation error denies; the permit that Cedar matched did not decide then.
        return Decision(allowed=False, policies=(), errors=named)

    def _entities(self, principal_entities: str, resource_entities: str
                  ) -> tuple[cedarpy.Entities, frozenset[tuple[str, str]]]:
        combined_key = principal_entities + "\n" + resource_entities
        with self._lock:
            combined = self._cached(combined_key)
            if combined is not None:
                return combined
            base = self._cached(resource_entities)
        if base is None:
            base = (cedarpy.Entities.from_json_str(resource_entities),
                    _uids(resource_entities))
        combined = (base[0].with_added_json_str(principal_entities),
                    base[1] | _uids(principal_entities))
        with self._lock:
            self._remember(resource_entities, base)
            self._remember(combined_key, combined)
        return combined

    def _cached(self, key: str) -> tuple[cedarpy.Entities, frozenset[tuple[str, str]]] | None:
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found

    def _remember(self, key: str,
                  entities: tuple[cedarpy.Entities, frozenset[tuple[str, str]]]) -> None:
        self._cache[key] = entities
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)


def _evaluate(requests: list[dict[str, object]], policies: cedarpy.PolicySet,
              entities: cedarpy.Entities) -> list[dict[str, Any]]:
    """Cedar's answers, one per request. cedarpy's public ``is_authorized_batch`` is a thin
    wrapper around its compiled ``_internal`` function that also builds result objects; the
    engine calls the compiled function with the same arguments and reads the same JSON, which
    saves a fifth of a decision's time (``tests/test_policy_engine.py`` checks both agree)."""
    if _compiled is None:  # pragma: no cover - every cedarpy 4 wheel has it
        return [r._authz_resp for r in cedarpy.is_authorized_batch(requests, policies, entities)]
    return [json.loads(text) for text in _compiled.is_authorized_batch(
        requests, policies, entities._inner, None, False)]


#: Cedar's generated policy ids (``policy12``), as they appear in its error messages.
_GENERATED = re.compile(r"\bpolicy\d+\b")


def _key(ref: EntityRef) -> tuple[str, str]:
    return f"{NAMESPACE}::{ref.type}", ref.id


def _uids(entities: str) -> frozenset[tuple[str, str]]:
    return frozenset((e["uid"]["type"], e["uid"]["id"]) for e in json.loads(entities))


def _missing(ref: EntityRef) -> Decision:
    return Decision(allowed=False, policies=(),
                    errors=(f"no entity {ref.type}::{ref.id!r} in the slice",))


def _scope_admits(policy: dict[str, Any], principal_type: str, action: str) -> bool:
    """Whether a policy's scope can match a request of this principal type and action
    (conservatively: anything not understood admits)."""
    constraint = policy["action"]
    if constraint["op"] == "==":
        actions = [constraint["entity"]]
    elif constraint["op"] == "in" and "entities" in constraint:
        actions = constraint["entities"]
    else:
        actions = None
    # Only plain actions are understood (action groups would need the hierarchy; the vault's
    # schema has none): a list of them that lacks this action cannot match.
    if (actions is not None
            and all(a["type"] == f"{NAMESPACE}::Action" and a["id"] in _ACTIONS for a in actions)
            and not any(a["id"] == action for a in actions)):
        return False
    who = policy["principal"]
    if who["op"] == "is":  # with or without "in": the type must match
        return who["entity_type"] == principal_type
    if who["op"] == "==" and "entity" in who:
        return who["entity"]["type"] == principal_type
    return True


_ACTIONS = frozenset(a.value for a in Action)


def _names_entity(value: object, entity_type: str) -> bool:
    """Whether a policy (in Cedar's JSON form) names a particular entity of this type."""
    if isinstance(value, dict):
        if value.get("type") == entity_type and "id" in value:
            return True
        return any(_names_entity(v, entity_type) for v in value.values())
    if isinstance(value, list):
        return any(_names_entity(v, entity_type) for v in value)
    return False


def entities_json(entities: Iterable[dict[str, object]]) -> str:
    """A list of Cedar entities as JSON text in one canonical form (the cache key)."""
    return json.dumps(list(entities), sort_keys=True, separators=(",", ":"))
