"""The RFC 6962 Merkle tree: known vectors, a brute-force reference, and rejected proofs.

Vectors come from transparency-dev/merkle (``proof/verify_test.go``, ``proof/proof_test.go``,
``rfc6962/rfc6962_test.go``), which took them from the RFC 6962 reference implementation. The
reference below is RFC 6962 section 2.1's recursive MTH / PATH / PROOF, written as literally as
possible, and the library must agree with it for every index and size up to 70.
"""

from __future__ import annotations

import functools
import hashlib

import pytest

from vault.audit import merkle
from vault.audit.merkle import (
    EMPTY_ROOT,
    InMemoryTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    parents_to_add,
    root,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

# The standard eight leaves of the RFC 6962 / transparency-dev test data.
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]

# ROOTS[n - 1] is the root of the tree over the first n leaves.
ROOTS = [
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# (index, size, proof); transparency-dev numbers leaves from 1 in these tables, we from 0.
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old_size, new_size, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


@pytest.fixture(scope="module")
def standard_tree() -> InMemoryTree:
    """The tree over the eight standard leaves."""
    tree = InMemoryTree()
    for data in LEAVES:
        tree.append(data)
    return tree


# --- the RFC 6962 section 2.1 definitions, literally ------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    """MTH, PATH and PROOF over fixed leaf data, by RFC 6962's recursion (ranges memoised)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.mth = functools.cache(self._mth)

    def _mth(self, begin: int, end: int) -> bytes:
        n = end - begin
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + self.leaves[begin]).digest()
        k = _split(n)
        return hashlib.sha256(
            b"\x01" + self.mth(begin, begin + k) + self.mth(begin + k, end)
        ).digest()

    def path(self, m: int, begin: int, end: int) -> list[bytes]:
        """PATH(m, D[begin:end])."""
        n = end - begin
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self.path(m, begin, begin + k), self.mth(begin + k, end)]
        return [*self.path(m - k, begin + k, end), self.mth(begin, begin + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true)."""
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, begin: int, end: int, b: bool) -> list[bytes]:
        n = end - begin
        if m == n:
            return [] if b else [self.mth(begin, end)]
        k = _split(n)
        if m <= k:
            return [*self.subproof(m, begin, begin + k, b), self.mth(begin + k, end)]
        return [*self.subproof(m - k, begin + k, end, False), self.mth(begin, begin + k)]


def path_shape(m: int, n: int) -> tuple[str, ...] | None:
    """Which side each PATH(m, D[n]) hash sits on; None when m is not a leaf of D[n]."""
    if not 0 <= m < n:
        return None
    if n == 1:
        return ()
    k = _split(n)
    if m < k:
        return (*path_shape(m, k), "right")  # type: ignore[misc]
    return (*path_shape(m - k, n - k), "left")  # type: ignore[misc]


def proof_shape(m: int, n: int) -> tuple[str, ...] | None:
    """The roles of PROOF(m, D[n])'s hashes; None outside 0 < m < n."""
    if not 0 < m < n:
        return None
    return _subproof_shape(m, n, True)


def _subproof_shape(m: int, n: int, b: bool) -> tuple[str, ...]:
    if m == n:
        return () if b else ("seed",)
    k = _split(n)
    if m <= k:
        return (*_subproof_shape(m, k, b), "right")
    return (*_subproof_shape(m - k, n - k, False), "left")


MAX_SIZE = 70
DATA = [f"event {i}".encode() for i in range(100)]
REFERENCE = Reference(DATA)


@pytest.fixture(scope="module")
def tree() -> InMemoryTree:
    """A tree over DATA; earlier sizes are read from it through the same stored subtrees."""
    tree = InMemoryTree()
    for data in DATA:
        tree.append(data)
    return tree


# --- hashing ----------------------------------------------------------------------------------


def test_hashes_match_rfc6962_vectors():
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaf_and_node_hashes_are_domain_separated():
    left, right = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert node_hash(left, right) != leaf_hash(left + right)
    assert node_hash(left, right) != node_hash(right, left)


def test_module_does_not_import_cryptography():
    source = merkle.__file__
    with open(source, encoding="utf-8") as handle:
        assert "cryptography" not in handle.read()


# --- known vectors -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_standard_tree_match_known_vectors(standard_tree, size):
    assert standard_tree.root(size) == ROOTS[size - 1]
    assert root(size, standard_tree) == ROOTS[size - 1]
    assert root_from_leaf_hashes(leaf_hash(d) for d in LEAVES[:size]) == (size, ROOTS[size - 1])


def test_empty_tree_has_the_empty_root():
    assert InMemoryTree().root() == EMPTY_ROOT
    assert root(0, InMemoryTree()) == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == (0, EMPTY_ROOT)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_proofs_match_known_vectors(standard_tree, index, size, proof):
    assert standard_tree.inclusion_proof(index, size) == proof
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_consistency_proofs_match_known_vectors(standard_tree, old, new, proof):
    assert standard_tree.consistency_proof(old, new) == proof
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def _inclusion_probes(index, size, proof, root_, leaf):
    """transparency-dev's corruptInclusionProof: every probe must fail to verify."""
    probes = [
        ("leafIndex - 1", index - 1, size, root_, leaf, proof),
        ("leafIndex + 1", index + 1, size, root_, leaf, proof),
        ("leafIndex ^ 2", index ^ 2, size, root_, leaf, proof),
        ("treeSize * 2", index, size * 2, root_, leaf, proof),
        ("treeSize / 2", index, size // 2, root_, leaf, proof),
        ("wrong leaf", index, size, root_, b"WrongLeaf", proof),
        ("empty root", index, size, EMPTY_ROOT, leaf, proof),
        ("random root", index, size, SOME_HASH, leaf, proof),
        ("trailing garbage", index, size, root_, leaf, [*proof, b""]),
        ("trailing root", index, size, root_, leaf, [*proof, root_]),
        ("preceding garbage", index, size, root_, leaf, [b"", *proof]),
        ("preceding root", index, size, root_, leaf, [root_, *proof]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((f"modified proof[{i}] bit 3", index, size, root_, leaf, flipped))
    if proof:
        probes.append(("removed component", index, size, root_, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append(
            ("inserted component", index, size, root_, leaf, [proof[0], SOME_HASH, *proof[1:]])
        )
    return probes


def _consistency_probes(old, new, root1, root2, proof):
    """transparency-dev's corruptConsistencyProof: every probe must fail to verify."""
    probes = [
        ("size1 - 1", old - 1, new, root1, root2, proof),
        ("size1 + 1", old + 1, new, root1, root2, proof),
        ("size1 ^ 2", old ^ 2, new, root1, root2, proof),
        ("size2 * 2", old, new * 2, root1, root2, proof),
        ("size2 / 2", old, new // 2, root1, root2, proof),
        ("wrong root1", old, new, b"WrongRoot", root2, proof),
        ("wrong root2", old, new, root1, b"WrongRoot", proof),
        ("swapped roots", old, new, root2, root1, proof),
        ("empty proof", old, new, root1, root2, []),
        ("trailing garbage", old, new, root1, root2, [*proof, b""]),
        ("trailing root1", old, new, root1, root2, [*proof, root1]),
        ("trailing root2", old, new, root1, root2, [*proof, root2]),
        ("preceding garbage", old, new, root1, root2, [b"", *proof]),
        ("preceding root1", old, new, root1, root2, [root1, *proof]),
        ("preceding root2", old, new, root1, root2, [root2, *proof]),
        ("preceding proof[0]", old, new, root1, root2, [proof[0], *proof]),
        ("truncated proof", old, new, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((f"modified proof[{i}] bit 4", old, new, root1, root2, flipped))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS[1:])
def test_transparency_dev_inclusion_probes_are_rejected(index, size, proof):
    leaf = leaf_hash(LEAVES[index])
    for desc, *args in _inclusion_probes(index, size, proof, ROOTS[size - 1], leaf):
        probe_index, probe_size, probe_root, probe_leaf, probe_proof = args
        with pytest.raises(ProofError):
            verify_inclusion(probe_leaf, probe_index, probe_size, probe_proof, probe_root)
            pytest.fail(f"verified a corrupted proof: {desc}")


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS[1:])
def test_transparency_dev_consistency_probes_are_rejected(old, new, proof):
    for desc, *args in _consistency_probes(old, new, ROOTS[old - 1], ROOTS[new - 1], proof):
        with pytest.raises(ProofError):
            verify_consistency(*args)
            pytest.fail(f"verified a corrupted proof: {desc}")


def test_single_entry_inclusion_needs_matching_32_byte_hashes():
    """transparency-dev TestVerifyInclusionSingleEntry: the root of one leaf is its hash."""
    one = leaf_hash(b"data")
    verify_inclusion(one, 0, 1, [], one)
    for leaf, root_ in [(b"", one), (one, b""), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, 0, 1, [], root_)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_with_an_empty_proof_and_a_wrong_root_is_rejected(index, size):
    for leaf, root_ in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [], root_)


ROOT_A, ROOT_B = leaf_hash(b"a"), leaf_hash(b"b")


@pytest.mark.parametrize(
    ("old", "new", "root1", "root2", "proof", "ok"),
    [
        # A tree is consistent with itself, and only with the same root.
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (1, 1, ROOT_A, ROOT_A, [], True),
        (0, 0, EMPTY_ROOT, ROOT_B, [], False),
        (1, 1, ROOT_A, ROOT_B, [], False),
        # Every tree extends the empty tree, whose root is fixed.
        (0, 1, EMPTY_ROOT, ROOT_B, [], True),
        (0, 5, EMPTY_ROOT, ROOT_B, [], True),
        (0, 1, ROOT_A, ROOT_B, [], False),
        # Time travel to the past.
        (1, 0, ROOT_A, ROOT_B, [], False),
        (2, 1, ROOT_A, ROOT_B, [], False),
        # A proof is needed between different non-zero sizes.
        (1, 2, ROOT_A, ROOT_B, [], False),
        # No proof is allowed where none is needed.
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        # Hashes of the wrong length, even where they would otherwise be compared equal.
        (1, 1, b"short", b"short", [], False),
        (0, 0, b"", b"", [], False),
        # Negative sizes.
        (-1, 1, EMPTY_ROOT, ROOT_B, [], False),
    ],
)
def test_consistency_edge_cases(old, new, root1, root2, proof, ok):
    """transparency-dev TestVerifyConsistency, with the empty tree's root pinned to SHA-256('')."""
    if ok:
        verify_consistency(old, new, root1, root2, proof)
    else:
        with pytest.raises(ProofError):
            verify_consistency(old, new, root1, root2, proof)


# --- which stored nodes the proofs read (transparency-dev proof/proof_test.go) ----------------


class SymbolicSource:
    """Any tree size at all: node (level, index) hashes its own coordinates; look-ups counted."""

    def __init__(self) -> None:
        self.lookups = 0

    def subtree(self, level: int, index: int) -> bytes:
        self.lookups += 1
        return _node_id(level, index)


def _node_id(level: int, index: int) -> bytes:
    return hashlib.sha256(f"{level}/{index}".encode()).digest()


def _expected(ids, rehash=None):
    """transparency-dev's Nodes: ids[begin:end] are folded, lowest first, into one hash."""
    hashes = [_node_id(*i) for i in ids]
    if rehash is None:
        return hashes
    begin, end = rehash
    value = hashes[begin]
    for left in hashes[begin + 1 : end]:
        value = node_hash(left, value)
    return [*hashes[:begin], value, *hashes[end:]]


@pytest.mark.parametrize(
    ("size", "index", "ids", "rehash"),
    [
        (1, 0, [], None),
        (2, 0, [(0, 1)], None),
        (2, 1, [(0, 0)], None),
        (3, 1, [(0, 0), (0, 2)], None),
        (7, 0, [(0, 1), (1, 1), (0, 6), (1, 2)], (2, 4)),
        (7, 1, [(0, 0), (1, 1), (0, 6), (1, 2)], (2, 4)),
        (7, 2, [(0, 3), (1, 0), (0, 6), (1, 2)], (2, 4)),
        (7, 3, [(0, 2), (1, 0), (0, 6), (1, 2)], (2, 4)),
        (7, 4, [(0, 5), (0, 6), (2, 0)], None),
        (7, 5, [(0, 4), (0, 6), (2, 0)], None),
        (7, 6, [(1, 2), (2, 0)], None),
        (4, 2, [(0, 3), (1, 0)], None),
        (5, 3, [(0, 2), (1, 0), (0, 4)], None),
        (6, 3, [(0, 2), (1, 0), (1, 2)], None),
        (6, 4, [(0, 5), (2, 0)], None),
        (15, 10, [(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)], (2, 4)),
        (31, 24, [(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)], (2, 4)),
        (95, 81, [(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)], (3, 6)),
    ],
)
def test_inclusion_proofs_read_the_expected_nodes(size, index, ids, rehash):
    assert inclusion_proof(index, size, SymbolicSource()) == _expected(ids, rehash)


@pytest.mark.parametrize(
    ("old", "new", "ids", "rehash"),
    [
        (1, 2, [(0, 1)], None),
        (1, 4, [(0, 1), (1, 1)], None),
        (1, 6, [(0, 1), (1, 1), (1, 2)], None),
        (2, 3, [(0, 2)], None),
        (2, 8, [(1, 1), (2, 1)], None),
        (3, 7, [(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)], (3, 5)),
        (4, 7, [(0, 6), (1, 2)], (0, 2)),
        (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)], None),
        (6, 7, [(1, 2), (0, 6), (2, 0)], None),
        (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)], None),
        (1, 1, [], None),
        (8, 8, [], None),
        (2, 4, [(1, 1)], None),
        (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)], None),
        (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)], None),
        (4, 6, [(1, 2)], None),
        (1, 7, [(0, 1), (1, 1), (0, 6), (1, 2)], (2, 4)),
        (10, 15, [(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)], (2, 4)),
        (24, 31, [(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)], (1, 4)),
        (
            81,
            95,
            [(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)],
            (4, 7),
        ),
    ],
)
def test_consistency_proofs_read_the_expected_nodes(old, new, ids, rehash):
    assert consistency_proof(old, new, SymbolicSource()) == _expected(ids, rehash)


@pytest.mark.parametrize("size", [1, 2, 3, 1000, 2**20 - 1, 2**40 + 12345, 2**62 + 3])
def test_roots_and_proofs_need_logarithmically_many_lookups(size):
    """At most one stored node per level, plus one fold of the right border (another per level)."""
    levels = max(size - 1, 1).bit_length()
    for index in {0, size // 3, size // 2, size - 1}:
        for build, bound in (
            (lambda source: root(size, source), levels + 1),
            (lambda source, i=index: inclusion_proof(i, size, source), 2 * levels),
            (lambda source, i=index: consistency_proof(max(i, 1), size, source), 2 * levels + 1),
        ):
            source = SymbolicSource()
            build(source)
            assert source.lookups <= bound, (index, size, source.lookups)


# --- the brute-force reference, every index and size -------------------------------------------


def test_roots_match_the_reference_for_every_size(tree):
    for size in range(MAX_SIZE + 1):
        expected = REFERENCE.mth(0, size)
        assert tree.root(size) == expected
        assert root_from_leaf_hashes(leaf_hash(d) for d in DATA[:size]) == (size, expected)


def test_inclusion_proofs_match_the_reference_for_every_index(tree):
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == REFERENCE.path(index, 0, size), (index, size)
            verify_inclusion(leaf_hash(DATA[index]), index, size, proof, tree.root(size))


def test_consistency_proofs_match_the_reference_for_every_pair_of_sizes(tree):
    for new in range(1, MAX_SIZE + 1):
        for old in range(new + 1):
            proof = tree.consistency_proof(old, new)
            expected = REFERENCE.proof(old, new) if 0 < old < new else []
            assert proof == expected, (old, new)
            verify_consistency(old, new, tree.root(old), tree.root(new), proof)


def test_parents_to_add_stores_exactly_the_complete_subtrees():
    stored: dict[tuple[int, int], bytes] = {}

    class DictSource:
        def subtree(self, level: int, index: int) -> bytes:
            return stored[(level, index)]

    for size in range(1, 101):
        added = parents_to_add(size - 1, leaf_hash(DATA[size - 1]), DictSource())
        assert added[0] == (0, size - 1, leaf_hash(DATA[size - 1]))
        for level, index, value in added:
            assert (level, index) not in stored
            stored[(level, index)] = value
        complete = {
            (level, index): REFERENCE.mth(index << level, (index + 1) << level)
            for level in range(size.bit_length())
            for index in range(size >> level)
        }
        assert stored == complete, size


# --- corrupted proofs, every index and size ---------------------------------------------------

MUTATION_SIZE = 40


def _bit_flips(proof):
    for i in range(len(proof)):
        for bit in (0, 7 * 8 + 3, 31 * 8 + 7):
            flipped = bytearray(proof[i])
            flipped[bit // 8] ^= 1 << (bit % 8)
            yield f"bit {bit} of proof[{i}]", [*proof[:i], bytes(flipped), *proof[i + 1 :]]


def _structural_mutations(proof, extra):
    """Proofs that must fail whatever the sizes: changed, extended, truncated or mis-sized."""
    yield from _bit_flips(proof)
    for i in range(len(proof)):
        yield f"removed proof[{i}]", [*proof[:i], *proof[i + 1 :]]
    for garbage in (SOME_HASH, *extra):
        yield "appended garbage", [*proof, garbage]
        yield "prepended garbage", [garbage, *proof]
    if proof:
        yield "duplicated proof[0]", [proof[0], *proof]
        yield "empty proof", []
    for i in range(len(proof)):
        for length in (0, 31, 33):
            bad = (proof[i] * 2)[:length]
            yield f"{length}-byte proof[{i}]", [*proof[:i], bad, *proof[i + 1 :]]


def test_corrupted_inclusion_proofs_are_rejected(tree):
    for size in range(1, MUTATION_SIZE + 1):
        root_ = tree.root(size)
        for index in range(size):
            leaf = leaf_hash(DATA[index])
            proof = tree.inclusion_proof(index, size)
            for desc, bad in _structural_mutations(proof, (root_, leaf)):
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, index, size, bad, root_)
                    pytest.fail(f"{desc} verified for leaf {index} of {size}")
            for wrong_leaf in (leaf_hash(b"wrong"), leaf[:31], leaf + b"\x00", b""):
                with pytest.raises(ProofError):
                    verify_inclusion(wrong_leaf, index, size, proof, root_)
            for wrong_root in (EMPTY_ROOT, leaf_hash(b"wrong"), root_[:31], b""):
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, index, size, proof, wrong_root)
            for wrong_index in (size, size + 1, -1):
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, wrong_index, size, proof, root_)


def test_inclusion_with_a_wrong_index_or_size_is_rejected_unless_the_proof_shape_is_the_same(
    tree,
):
    """Index ± 1 always changes the proof's shape; size ± 1 sometimes does not.

    A proof only carries hashes, so one for leaf 0 of 3 leaves, [leaf 1, leaf 2], verifies as
    one for leaf 0 of 4 leaves against the same root: leaf 2's hash stands in for the subtree
    of leaves 2-3. That claim pairs a size with a root no honest checkpoint ever signed, so it
    is harmless; the verifier must reject every other change of index or size.
    """
    for size in range(1, MUTATION_SIZE + 1):
        root_ = tree.root(size)
        for index in range(size):
            leaf = leaf_hash(DATA[index])
            proof = tree.inclusion_proof(index, size)
            for wrong_index, wrong_size in (
                (index - 1, size),
                (index + 1, size),
                (index ^ 2, size),
                (index, size - 1),
                (index, size + 1),
                (index, size * 2),
                (index, size // 2),
            ):
                if (wrong_index, wrong_size) == (index, size):
                    continue
                same_shape = path_shape(wrong_index, wrong_size) == path_shape(index, size)
                try:
                    verify_inclusion(leaf, wrong_index, wrong_size, proof, root_)
                except ProofError:
                    accepted = False
                else:
                    accepted = True
                assert accepted == same_shape, (index, size, wrong_index, wrong_size)
                if wrong_index != index:
                    assert not accepted


def test_corrupted_consistency_proofs_are_rejected(tree):
    for new in range(2, MUTATION_SIZE + 1):
        new_root = tree.root(new)
        for old in range(1, new):
            old_root = tree.root(old)
            proof = tree.consistency_proof(old, new)
            for desc, bad in _structural_mutations(proof, (old_root, new_root)):
                with pytest.raises(ProofError):
                    verify_consistency(old, new, old_root, new_root, bad)
                    pytest.fail(f"{desc} verified from {old} to {new}")
            with pytest.raises(ProofError):
                verify_consistency(old, new, new_root, old_root, proof)  # swapped roots
            for wrong in (EMPTY_ROOT, leaf_hash(b"wrong"), old_root[:31], old_root + b"\x00"):
                with pytest.raises(ProofError):
                    verify_consistency(old, new, wrong, new_root, proof)
                with pytest.raises(ProofError):
                    verify_consistency(old, new, old_root, wrong, proof)
            with pytest.raises(ProofError):
                verify_consistency(new, old, new_root, old_root, proof)  # time travel


def test_consistency_with_wrong_sizes_is_rejected_unless_the_proof_shape_is_the_same(tree):
    """As for inclusion: a changed old size is always caught, a changed new size nearly always."""
    for new in range(2, MUTATION_SIZE + 1):
        new_root = tree.root(new)
        for old in range(1, new):
            old_root = tree.root(old)
            proof = tree.consistency_proof(old, new)
            for wrong_old, wrong_new in (
                (old - 1, new),
                (old + 1, new),
                (old ^ 2, new),
                (old, new - 1),
                (old, new + 1),
                (old, new * 2),
                (old, new // 2),
            ):
                if (wrong_old, wrong_new) == (old, new):
                    continue
                same_shape = proof_shape(wrong_old, wrong_new) == proof_shape(old, new)
                try:
                    verify_consistency(wrong_old, wrong_new, old_root, new_root, proof)
                except ProofError:
                    accepted = False
                else:
                    accepted = True
                assert accepted == same_shape, (old, new, wrong_old, wrong_new)
                if wrong_old != old:
                    assert not accepted


def test_wrong_length_errors_name_the_expected_count(tree):
    proof = tree.inclusion_proof(5, 13)
    with pytest.raises(ProofError, match=f"has {len(proof) + 1} hashes where .* need {len(proof)}"):
        verify_inclusion(leaf_hash(DATA[5]), 5, 13, [*proof, SOME_HASH], tree.root(13))
    proof = tree.consistency_proof(5, 13)
    with pytest.raises(ProofError, match=f"has {len(proof) - 1} hashes where .* need {len(proof)}"):
        verify_consistency(5, 13, tree.root(5), tree.root(13), proof[:-1])


def test_hashes_of_the_wrong_length_are_named_in_the_error(tree):
    leaf, root_ = leaf_hash(DATA[5]), tree.root(13)
    proof = tree.inclusion_proof(5, 13)
    short = [proof[0], proof[1][:31], *proof[2:]]
    with pytest.raises(ProofError, match="proof hash 1 must be 32 bytes, got 31"):
        verify_inclusion(leaf, 5, 13, short, root_)
    with pytest.raises(ProofError, match="leaf hash must be 32 bytes, got 33"):
        verify_inclusion(leaf + b"\x00", 5, 13, proof, root_)
    with pytest.raises(ProofError, match="root must be 32 bytes, got 0"):
        verify_inclusion(leaf, 5, 13, proof, b"")
    proof = tree.consistency_proof(5, 13)
    long = [*proof[:-1], proof[-1] + b"\x00"]
    with pytest.raises(ProofError, match=f"proof hash {len(proof) - 1} must be 32 bytes, got 33"):
        verify_consistency(5, 13, tree.root(5), root_, long)
    with pytest.raises(ProofError, match="old root must be 32 bytes"):
        verify_consistency(5, 13, tree.root(5)[:16], root_, proof)
    with pytest.raises(ProofError, match="new root must be 32 bytes"):
        verify_consistency(5, 13, tree.root(5), b"", proof)


# --- building blocks and the in-memory tree ----------------------------------------------------


def test_in_memory_tree_appends_by_data_or_by_leaf_hash():
    by_data, by_hash = InMemoryTree(), InMemoryTree()
    for i, data in enumerate(DATA[:10]):
        assert by_data.append(data) == i
        assert by_hash.append_leaf_hash(leaf_hash(data)) == i
    assert by_data.size == by_hash.size == 10
    assert by_data.root() == by_hash.root() == REFERENCE.mth(0, 10)
    assert by_data.subtree(1, 2) == REFERENCE.mth(4, 6)


def test_in_memory_tree_refuses_sizes_beyond_its_leaves(tree):
    small = InMemoryTree()
    small.append(b"only")
    with pytest.raises(ValueError, match="beyond"):
        small.root(2)
    with pytest.raises(ValueError, match="beyond"):
        small.inclusion_proof(0, 2)
    with pytest.raises(ValueError, match="beyond"):
        small.consistency_proof(1, 2)
    with pytest.raises(LookupError):
        small.subtree(1, 0)


def test_proof_builders_reject_impossible_arguments(tree):
    for index, size in [(0, 0), (3, 3), (4, 3), (-1, 3)]:
        with pytest.raises(ValueError):
            inclusion_proof(index, size, tree)
    for old, new in [(4, 3), (-1, 3)]:
        with pytest.raises(ValueError):
            consistency_proof(old, new, tree)
    with pytest.raises(ValueError):
        root(-1, tree)
    with pytest.raises(ValueError, match="32 bytes"):
        parents_to_add(0, b"not a leaf hash", tree)


def test_root_from_leaf_hashes_streams_a_generator():
    count = 5000
    hashes = (leaf_hash(b"%d" % i) for i in range(count))
    expected = InMemoryTree()
    for i in range(count):
        expected.append(b"%d" % i)
    assert root_from_leaf_hashes(hashes) == (count, expected.root())
