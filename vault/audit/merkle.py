"""RFC 6962 Merkle trees built from complete subtrees, with proofs and pure verifiers.

The audit log is the Merkle Tree Hash of RFC 6962 section 2.1 (RFC 9162 section 2.1) over the
leaf hashes of its events. Storage keeps only *complete, aligned* subtrees: node
``(level, index)`` is the hash of leaves ``[index * 2**level, (index + 1) * 2**level)``, level 0
being the leaf hashes. Appending leaf ``i`` stores the leaf and then, while the new node's index
is odd, its parent: amortised one row per leaf, never more than ``log2(n) + 1``. Those rows never
change, which is what lets the database refuse UPDATE and DELETE on them.

Every node of every past tree is either a stored node or the fold, right to left, of a few of
them, so roots and proofs for any tree size come from O(log n) look-ups through a
``SubtreeSource``, whatever stores the nodes (database rows in the vault, a dict in tests).

The verifiers take no storage: they follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step,
and raise ``ProofError`` for anything that does not check out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "InMemoryTree",
    "ProofError",
    "SubtreeSource",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "parents_to_add",
    "root",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

#: Bytes in every hash: leaf hashes, node hashes, roots and proof elements (SHA-256).
HASH_SIZE = 32
#: MTH({}) = SHA-256 of the empty string, the root of the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
# The one-byte prefixes keep a leaf from ever hashing like an interior node (second preimages).
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A proof, root or hash that does not verify; the message says which check failed."""


class SubtreeSource(Protocol):
    """Read access to the stored complete subtrees of one log."""

    def subtree(self, level: int, index: int) -> bytes:
        """Return the hash of leaves ``[index * 2**level, (index + 1) * 2**level)``.

        Only complete subtrees are ever asked for; a node that is not stored raises
        ``LookupError``.
        """
        ...


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash SHA-256(0x00 || data)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


# --- building the tree -----------------------------------------------------------------------


def parents_to_add(index: int, leaf: bytes, source: SubtreeSource) -> list[tuple[int, int, bytes]]:
    """Return the ``(level, index, hash)`` nodes to store when leaf number ``index`` is appended.

    ``leaf`` is the leaf *hash*; ``source`` must hold every complete subtree of the tree of size
    ``index``. The first tuple is the leaf itself at level 0; each further one completes a
    subtree whose left half was stored earlier. Raises ``ValueError`` on a negative index or a
    leaf hash of the wrong length.
    """
    _require_size("leaf index", index)
    if len(leaf) != HASH_SIZE:
        raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf)}")
    nodes = [(0, index, leaf)]
    level, position, value = 0, index, leaf
    # An odd index is a right child, so the node completes its parent's subtree.
    while position & 1:
        value = node_hash(source.subtree(level, position - 1), value)
        level += 1
        position >>= 1
        nodes.append((level, position, value))
    return nodes


# --- roots and proofs from stored subtrees ---------------------------------------------------


def root(size: int, source: SubtreeSource) -> bytes:
    """Return the Merkle Tree Hash of the first ``size`` leaves (``EMPTY_ROOT`` for 0)."""
    _require_size("tree size", size)
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, source)


def inclusion_proof(index: int, size: int, source: SubtreeSource) -> list[bytes]:
    """Return PATH(index, D[size]) of RFC 6962 section 2.1.1, lowest level first.

    Raises ``ValueError`` unless ``0 <= index < size``.
    """
    _require_size("leaf index", index)
    _require_size("tree size", size)
    if index >= size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return _path(0, index, size, source)


def consistency_proof(old_size: int, new_size: int, source: SubtreeSource) -> list[bytes]:
    """Return PROOF(old_size, D[new_size]) of RFC 6962 section 2.1.2, lowest level first.

    The proof is empty when the sizes are equal and, as in transparency-dev/merkle, when
    ``old_size`` is 0: every tree extends the empty one. Raises ``ValueError`` unless
    ``0 <= old_size <= new_size``.
    """
    _require_size("old tree size", old_size)
    _require_size("new tree size", new_size)
    if old_size > new_size:
        raise ValueError(f"old tree size {old_size} is larger than new tree size {new_size}")
    if old_size in (0, new_size):
        return []
    # The old tree's right-most complete subtree: the biggest one that ends at old_size.
    level = _trailing_zeros(old_size)
    index = (old_size - 1) >> level
    proof = _path(level, index, new_size, source)
    if index:
        # When old_size is a power of two this node is the old root, which the verifier already
        # has; otherwise it is the seed both roots are rebuilt from.
        proof.insert(0, source.subtree(level, index))
    return proof


def _path(level: int, index: int, size: int, source: SubtreeSource) -> list[bytes]:
    """Return the siblings on the way from complete node ``(level, index)`` to the root."""
    proof = []
    for height in range(level, (size - 1).bit_length()):
        sibling = (index >> (height - level)) ^ 1
        begin = sibling << height
        if begin >= size:
            # No sibling in this tree: RFC 6962's uneven split promotes the node unchanged.
            continue
        end = begin + (1 << height)
        if end <= size:
            proof.append(source.subtree(height, sibling))
        else:
            # The right border of the tree: an incomplete subtree, rebuilt from stored ones.
            proof.append(_range_hash(begin, size, source))
    return proof


def _range_hash(begin: int, end: int, source: SubtreeSource) -> bytes:
    """Return MTH(D[begin:end]) for a range that starts on a boundary of its own size.

    Such a range (a whole tree, or the right border of one) is a run of complete subtrees of
    decreasing size; RFC 6962's split puts the larger on the left, so the hash is their fold
    from right to left.
    """
    width = end - begin
    hashes = []
    position = begin
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            hashes.append(source.subtree(level, position >> level))
            position += 1 << level
    value = hashes.pop()
    while hashes:
        value = node_hash(hashes.pop(), value)
    return value


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """Return ``(size, root)`` of the tree over ``leaf_hashes``, streamed in O(log n) memory.

    The stack holds one complete subtree per set bit of the count so far. Inputs must be
    32-byte leaf hashes (``leaf_hash``); they are not checked one by one, to keep the offline
    verifier fast over millions of entries, and a wrong one only yields a root that won't match.
    """
    sha256 = _sha256
    prefix = _NODE_PREFIX
    stack: list[bytes] = []
    push = stack.append
    pop = stack.pop
    size = 0
    for value in leaf_hashes:
        size += 1
        # Each trailing zero bit of the new count is a subtree the new leaf just completed.
        count = size
        while not count & 1:
            value = sha256(prefix + pop() + value).digest()
            count >>= 1
        push(value)
    if not stack:
        return 0, EMPTY_ROOT
    value = pop()
    while stack:
        value = sha256(prefix + pop() + value).digest()
    return size, value


# --- verifiers (RFC 9162 sections 2.1.3.2 and 2.1.4.2) ---------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Raises ``ProofError`` on an index outside the tree, a hash that is not 32 bytes, a proof
    with the wrong number of hashes, or a computed root that differs from ``root``.
    """
    _check_size("leaf index", index)
    _check_size("tree size", size)
    # Step 1: leaf_index < tree_size.
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    _check_proof_hashes(proof)
    # Steps 2-4.
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise _wrong_length("inclusion", proof, _path_length(0, index, size))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise _wrong_length("inclusion", proof, _path_length(0, index, size))
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the tree's root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the one of ``old_size``.

    Equal sizes need an empty proof and equal roots. An old size of 0 needs an empty proof and
    ``old_root == EMPTY_ROOT`` (transparency-dev/merkle accepts any old root there; the empty
    tree has only one). Raises ``ProofError`` on sizes that shrink, a hash that is not 32
    bytes, a proof with the wrong number of hashes, or a root that is not rebuilt by the proof.
    """
    _check_size("old tree size", old_size)
    _check_size("new tree size", new_size)
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}")
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    _check_proof_hashes(proof)
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal tree sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"trees of the same size {old_size} have different roots")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("root of the empty tree must be SHA-256 of the empty string")
        return
    # Step 1.
    if not proof:
        raise ProofError("consistency proof is empty")
    # Step 2.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Steps 3-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise _wrong_length("consistency", proof, _consistency_length(old_size, new_size))
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise _wrong_length("consistency", proof, _consistency_length(old_size, new_size))
    if fr != old_root:
        raise ProofError(f"consistency proof does not rebuild the root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not rebuild the root of size {new_size}")


def _wrong_length(kind: str, proof: Sequence[bytes], expected: int) -> ProofError:
    """Return the error for a proof whose length does not fit its tree sizes."""
    return ProofError(f"{kind} proof has {len(proof)} hashes where the tree sizes need {expected}")


def _consistency_length(old_size: int, new_size: int) -> int:
    """Return the length of a consistency proof between sizes with ``0 < old_size < new_size``."""
    level = _trailing_zeros(old_size)
    index = (old_size - 1) >> level
    return _path_length(level, index, new_size) + (1 if index else 0)


def _path_length(level: int, index: int, size: int) -> int:
    """Return how many siblings ``_path`` yields: one per level that has one."""
    return sum(
        1
        for height in range(level, (size - 1).bit_length())
        if ((index >> (height - level)) ^ 1) << height < size
    )


def _trailing_zeros(value: int) -> int:
    """Return the number of trailing zero bits of a positive integer."""
    return (value & -value).bit_length() - 1


def _require_size(name: str, value: int) -> None:
    """Reject a negative index or size given to a proof builder."""
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _check_size(name: str, value: int) -> None:
    """Reject a negative index or size given to a verifier."""
    if value < 0:
        raise ProofError(f"{name} must not be negative, got {value}")


def _check_hash(name: str, value: bytes) -> None:
    """Reject a hash that is not exactly 32 bytes."""
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    """Reject a proof with an element that is not exactly 32 bytes."""
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofError(f"proof hash {position} must be {HASH_SIZE} bytes, got {len(value)}")


# --- an in-memory log ------------------------------------------------------------------------


class InMemoryTree:
    """An append-only tree over a dict of complete subtrees, the vault's storage in miniature.

    It is its own ``SubtreeSource``, so appends, roots and proofs run exactly the code the
    database-backed log runs.
    """

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._size = 0

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def subtree(self, level: int, index: int) -> bytes:
        """Return a stored complete subtree; raises ``LookupError`` if it is not stored."""
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise LookupError(f"no complete subtree at level {level}, index {index}") from None

    def append(self, data: bytes) -> int:
        """Append a leaf by its data and return its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, hash_: bytes) -> int:
        """Append a leaf by its 32-byte leaf hash and return its index."""
        index = self._size
        for level, position, value in parents_to_add(index, hash_, self):
            self._nodes[(level, position)] = value
        self._size += 1
        return index

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the tree now or at an earlier ``size``."""
        return root(self._at(size), self)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of leaf ``index`` in the tree now or at ``size``."""
        return inclusion_proof(index, self._at(size), self)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Return the proof that the tree now (or at ``new_size``) extends ``old_size``."""
        return consistency_proof(old_size, self._at(new_size), self)

    def _at(self, size: int | None) -> int:
        """Resolve an optional tree size, refusing one beyond what was appended."""
        if size is None:
            return self._size
        if size > self._size:
            raise ValueError(f"tree size {size} is beyond the {self._size} leaves appended")
        return size
