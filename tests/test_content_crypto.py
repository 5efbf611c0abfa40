"""The blob format on its own (no database): round trips, sizes, and every kind of tampering.

A blob is ``VLTB`` + format byte, then Cobblestone-256 (c2sp.org/chunked-encryption): a 24-byte
salt and a 32-byte key commitment, then chunks of 16 KiB plaintext + 16-byte tag, the last one
always shorter (see docs/FORMAT.md). Every tampering test checks two things: an
``IntegrityError`` is raised, and what the decryptor released before that is an authenticated
prefix, never the whole plaintext.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.crypto import content
from vault.crypto.content import (
    CHUNK_SIZE,
    HEADER,
    ContentDecryptor,
    ContentEncryptor,
    IntegrityError,
    content_context,
    encrypted_size,
    new_data_key,
)

KIB = 1024
MIB = 1024 * KIB
#: Cobblestone's fixed overhead: 24-byte salt + 32-byte key commitment.
COBBLESTONE_PREFIX = 56
#: One full ciphertext chunk: 16 KiB of plaintext and a 16-byte GCM tag.
CHUNK = CHUNK_SIZE + 16
#: Where the first ciphertext chunk starts in a blob.
FIRST_CHUNK = len(HEADER) + COBBLESTONE_PREFIX

PROGRAMME = "sovereign-ai-2025"
CONSORTIUM = uuid.UUID("0f8e6c4a-1b2d-4e3f-9a8b-7c6d5e4f3a2b")
DOCUMENT = uuid.UUID("5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d")


def plaintext_of(size: int) -> bytes:
    """Deterministic, non-repeating plaintext (so swapped or repeated chunks differ)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def context(**changes: object) -> bytes:
    """The context of version 1 of the test document, with some fields changed."""
    fields: dict[str, object] = {
        "programme": PROGRAMME, "consortium_id": CONSORTIUM, "document_id": DOCUMENT,
        "version": 1,
    }
    fields.update(changes)
    return content_context(**fields)  # type: ignore[arg-type]


def pieces(data: bytes, size: int | None) -> list[bytes]:
    """``data`` cut into pieces of ``size`` bytes (one piece when ``size`` is None)."""
    if size is None:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def encrypt(plaintext: bytes, key: bytes, ctx: bytes, piece: int | None = None) -> bytes:
    """A whole blob, the plaintext fed to the encryptor in pieces of ``piece`` bytes."""
    encryptor = ContentEncryptor(key, ctx)
    out = [encryptor.header()]
    out.extend(encryptor.update(part) for part in pieces(plaintext, piece))
    out.append(encryptor.finalize())
    return b"".join(out)


def decrypt(blob: bytes, key: bytes, ctx: bytes, piece: int | None = None) -> bytes:
    """The plaintext of a blob fed to the decryptor in pieces; raises ``IntegrityError``."""
    decryptor = ContentDecryptor(key, ctx)
    out = [decryptor.update(part) for part in pieces(blob, piece)]
    out.append(decryptor.finalize())
    return b"".join(out)


def released_until_failure(blob: bytes, key: bytes, ctx: bytes,
                           piece: int | None = None) -> tuple[bytes, bool]:
    """Everything the decryptor returned, and whether it raised ``IntegrityError``."""
    decryptor = ContentDecryptor(key, ctx)
    released = b""
    try:
        for part in pieces(blob, piece):
            released += decryptor.update(part)
        released += decryptor.finalize()
    except IntegrityError:
        return released, True
    return released, False


def assert_rejected(blob: bytes, key: bytes, ctx: bytes, plaintext: bytes,
                    piece: int | None = None) -> None:
    """The blob fails authentication and never yields the complete plaintext."""
    released, failed = released_until_failure(blob, key, ctx, piece)
    assert failed, "tampered blob decrypted without an IntegrityError"
    assert released != plaintext
    # Only authenticated chunks are released: whatever came out is a true prefix.
    assert plaintext.startswith(released)
    assert len(released) < len(plaintext) or not plaintext


@pytest.fixture(scope="module")
def key() -> bytes:
    """One data key for the module."""
    return new_data_key()


# -- the context -------------------------------------------------------------------------------

def test_context_is_canonical_json_with_sorted_keys_and_lowercase_hyphenated_uuids():
    ctx = content_context(
        programme=PROGRAMME,
        consortium_id=uuid.UUID("0F8E6C4A-1B2D-4E3F-9A8B-7C6D5E4F3A2B"),
        document_id=DOCUMENT,
        version=3,
    )
    assert ctx == (
        b'{"consortium":"0f8e6c4a-1b2d-4e3f-9a8b-7c6d5e4f3a2b",'
        b'"document":"5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",'
        b'"format":1,"programme":"sovereign-ai-2025",'
        b'"purpose":"document-content","version":3}'
    )


def test_context_keeps_non_ascii_programme_codes_as_utf8():
    ctx = context(programme="독자-ai")
    assert '"programme":"독자-ai"'.encode() in ctx


def test_data_keys_are_fresh_and_256_bit():
    first, second = new_data_key(), new_data_key()
    assert len(first) == len(second) == content.DATA_KEY_BYTES == 32
    assert first != second


# -- round trips ------------------------------------------------------------------------------

SIZES = [0, 1, 16 * KIB - 1, 16 * KIB, 16 * KIB + 1, 3 * MIB + 7]
PIECES = [None, 1, 7, 4096, MIB]


# Feeding megabytes byte by byte only slows the suite; tiny pieces are covered up to 16 KiB + 1.
ROUND_TRIPS = [
    (size, piece) for size in SIZES for piece in PIECES
    if piece is None or piece >= 4096 or size <= MIB
]


@pytest.mark.parametrize(("size", "piece"), ROUND_TRIPS)
def test_round_trip_in_pieces(key, size, piece):
    plaintext = plaintext_of(size)
    blob = encrypt(plaintext, key, context(), piece)
    assert blob.startswith(b"VLTB\x01")
    assert len(blob) == encrypted_size(size)
    assert decrypt(blob, key, context(), piece) == plaintext
    # Encrypting and decrypting in different piece sizes meet in the same blob format.
    assert decrypt(blob, key, context(), 4093) == plaintext


@pytest.mark.parametrize("size", SIZES)
def test_encrypted_size_is_header_plus_cobblestone_overhead(size):
    chunks = size // CHUNK_SIZE + 1
    assert encrypted_size(size) == 5 + 56 + size + 16 * chunks


def test_the_same_plaintext_encrypts_differently_each_time(key):
    plaintext = plaintext_of(100)
    first, second = encrypt(plaintext, key, context()), encrypt(plaintext, key, context())
    assert first != second  # a fresh random salt per blob
    assert first[:5] == second[:5] == HEADER


def test_no_plaintext_is_visible_in_the_blob(key):
    marker = b"CONFIDENTIAL-PROPOSAL-MARKER "
    blob = encrypt(marker * 2000, key, context())
    assert marker not in blob
    assert marker[:12] not in blob


def test_decryptor_releases_each_chunk_once_it_authenticates(key):
    plaintext = plaintext_of(3 * CHUNK_SIZE + 100)
    blob = encrypt(plaintext, key, context())
    for chunks in range(4):
        decryptor = ContentDecryptor(key, context())
        released = decryptor.update(blob[: FIRST_CHUNK + chunks * CHUNK])
        # Authenticated chunks come out at once, less the last byte, which only a successful
        # finalize() releases (so no tampered ending can look complete).
        assert released == plaintext[: max(0, chunks * CHUNK_SIZE - 1)]


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    plaintext=st.binary(max_size=40 * KIB),
    cuts=st.lists(st.integers(min_value=0, max_value=50 * KIB), max_size=8),
    blob_cuts=st.lists(st.integers(min_value=0, max_value=50 * KIB), max_size=8),
)
def test_any_plaintext_split_anywhere_round_trips(plaintext, cuts, blob_cuts):
    key = new_data_key()
    encryptor = ContentEncryptor(key, context())
    blob = encryptor.header()
    bounds = sorted({0, len(plaintext), *(c % (len(plaintext) + 1) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        blob += encryptor.update(plaintext[start:end])
    blob += encryptor.finalize()
    assert len(blob) == encrypted_size(len(plaintext))

    decryptor = ContentDecryptor(key, context())
    out = b""
    bounds = sorted({0, len(blob), *(c % (len(blob) + 1) for c in blob_cuts)})
    for start, end in itertools.pairwise(bounds):
        out += decryptor.update(blob[start:end])
        assert plaintext.startswith(out)
    out += decryptor.finalize()
    assert out == plaintext


# -- tampering --------------------------------------------------------------------------------

@pytest.mark.parametrize("bit", [0x01, 0x80])
def test_a_flipped_bit_anywhere_in_a_small_blob_is_detected(key, bit):
    plaintext = plaintext_of(100)
    blob = encrypt(plaintext, key, context())
    assert len(blob) == 5 + 56 + 100 + 16
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= bit
        released, failed = released_until_failure(bytes(tampered), key, context())
        assert failed, f"flipping bit {bit:#04x} of byte {position} went unnoticed"
        assert released == b"", f"byte {position}: a single-chunk blob released plaintext"


def test_a_flipped_bit_is_detected_when_fed_byte_by_byte(key):
    plaintext = plaintext_of(100)
    blob = encrypt(plaintext, key, context())
    for position in (0, 4, 5, 28, 29, 60, 61, 100, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        assert_rejected(bytes(tampered), key, context(), plaintext, piece=1)


@pytest.mark.parametrize(
    "header", [b"VLTA\x01", b"vltb\x01", b"VLTB\x00", b"VLTB\x02", b"\x00" * 5]
)
def test_a_foreign_or_future_header_is_refused(key, header):
    plaintext = plaintext_of(100)
    blob = header + encrypt(plaintext, key, context())[5:]
    with pytest.raises(IntegrityError, match="not a vault blob"):
        ContentDecryptor(key, context()).update(blob)


def chunks_of(blob: bytes) -> tuple[bytes, list[bytes]]:
    """The blob's prefix (header, salt, commitment) and its ciphertext chunks."""
    return blob[:FIRST_CHUNK], [blob[i : i + CHUNK] for i in range(FIRST_CHUNK, len(blob), CHUNK)]


@pytest.fixture(scope="module")
def multi_chunk(key) -> tuple[bytes, bytes]:
    """A plaintext of three full chunks and a short last one, and its blob."""
    plaintext = plaintext_of(3 * CHUNK_SIZE + 1000)
    return plaintext, encrypt(plaintext, key, context())


def test_chunk_boundaries_are_where_the_format_says(multi_chunk):
    _plaintext, blob = multi_chunk
    prefix, chunks = chunks_of(blob)
    assert len(prefix) == 61
    assert [len(c) for c in chunks] == [CHUNK, CHUNK, CHUNK, 1000 + 16]
    assert len(blob) == encrypted_size(3 * CHUNK_SIZE + 1000)


@pytest.mark.parametrize("piece", [None, 7, 4096])
def test_two_swapped_chunks_are_detected(key, multi_chunk, piece):
    plaintext, blob = multi_chunk
    prefix, chunks = chunks_of(blob)
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        swapped = list(chunks)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        assert_rejected(prefix + b"".join(swapped), key, context(), plaintext, piece)


@pytest.mark.parametrize("piece", [None, 7, 4096])
def test_a_dropped_chunk_is_detected(key, multi_chunk, piece):
    plaintext, blob = multi_chunk
    prefix, chunks = chunks_of(blob)
    for dropped in range(len(chunks)):
        rest = chunks[:dropped] + chunks[dropped + 1 :]
        assert_rejected(prefix + b"".join(rest), key, context(), plaintext, piece)


@pytest.mark.parametrize("piece", [None, 7, 4096])
def test_a_duplicated_chunk_is_detected(key, multi_chunk, piece):
    plaintext, blob = multi_chunk
    prefix, chunks = chunks_of(blob)
    for duplicated in range(len(chunks)):
        more = chunks[: duplicated + 1] + chunks[duplicated:]
        assert_rejected(prefix + b"".join(more), key, context(), plaintext, piece)


def test_truncation_at_every_chunk_boundary_is_detected(key, multi_chunk):
    plaintext, blob = multi_chunk
    for chunks in range(4):
        end = FIRST_CHUNK + chunks * CHUNK
        released, failed = released_until_failure(blob[:end], key, context())
        assert failed
        # The whole chunks before the cut authenticate (less the held-back last byte), but the
        # end is never accepted.
        assert released == plaintext[: max(0, chunks * CHUNK_SIZE - 1)]


@pytest.mark.parametrize(
    "end",
    [0, 1, 4, 5, 6, 29, 60, 61, 62, 76, 77, FIRST_CHUNK + CHUNK - 1, FIRST_CHUNK + CHUNK + 1,
     FIRST_CHUNK + 2 * CHUNK + 16, FIRST_CHUNK + 3 * CHUNK + 15, FIRST_CHUNK + 3 * CHUNK + 1015],
)
def test_truncation_at_other_offsets_is_detected(key, multi_chunk, end):
    plaintext, blob = multi_chunk
    assert end < len(blob)
    assert_rejected(blob[:end], key, context(), plaintext)
    assert_rejected(blob[:end], key, context(), plaintext, piece=7)


@pytest.mark.parametrize("size", [0, 100, 16 * KIB - 1, 16 * KIB + 1, 3 * CHUNK_SIZE + 1000])
@pytest.mark.parametrize("extra", [b"\x00", b"\xff", b"\x00" * 16])
def test_appended_bytes_are_detected(key, size, extra):
    plaintext = plaintext_of(size)
    blob = encrypt(plaintext, key, context())
    if plaintext:
        assert_rejected(blob + extra, key, context(), plaintext)
    else:
        assert released_until_failure(blob + extra, key, context()) == (b"", True)


# A plaintext of an exact multiple of 16 KiB ends in an empty final chunk (16 bytes, the tag).
# Tampering with only that ending is detected, but only at finalize(): by then update() has
# already released every byte of the plaintext, so a consumer that streams the output (an HTTP
# download with Content-Length = size) has seen the complete document with a clean end.
_ENDINGS = {
    "one-byte-appended": lambda blob: blob + b"\x00",
    "empty-final-chunk-dropped": lambda blob: blob[:-16],
    "empty-final-chunk-duplicated": lambda blob: blob + blob[-16:],
    "truncated-inside-final-tag": lambda blob: blob[:-1],
}


@pytest.mark.parametrize("size", [16 * KIB, 3 * CHUNK_SIZE])
@pytest.mark.parametrize("ending", sorted(_ENDINGS))
def test_a_tampered_ending_after_whole_chunks_raises(key, size, ending):
    plaintext = plaintext_of(size)
    blob = _ENDINGS[ending](encrypt(plaintext, key, context()))
    released, failed = released_until_failure(blob, key, context())
    assert failed
    assert plaintext.startswith(released)


@pytest.mark.parametrize("size", [16 * KIB, 3 * CHUNK_SIZE])
@pytest.mark.parametrize("ending", sorted(_ENDINGS))
def test_a_tampered_ending_after_whole_chunks_never_releases_the_whole_plaintext(
    key, size, ending
):
    plaintext = plaintext_of(size)
    blob = _ENDINGS[ending](encrypt(plaintext, key, context()))
    assert_rejected(blob, key, context(), plaintext)


def test_an_appended_copy_of_the_last_chunk_is_detected(key, multi_chunk):
    plaintext, blob = multi_chunk
    _prefix, chunks = chunks_of(blob)
    assert_rejected(blob + chunks[-1], key, context(), plaintext)


def test_a_wrong_data_key_is_refused_before_any_plaintext(key, multi_chunk):
    plaintext, blob = multi_chunk
    assert_rejected(blob, new_data_key(), context(), plaintext)
    released, failed = released_until_failure(blob, new_data_key(), context(), piece=1)
    assert failed and released == b""


@pytest.mark.parametrize(
    "changes",
    [
        {"document_id": uuid.UUID("5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1e")},  # another document
        {"version": 2},  # a newer version's context: blob v1 served as v2 (rollback)
        {"version": 0},
        {"consortium_id": uuid.UUID("0f8e6c4a-1b2d-4e3f-9a8b-7c6d5e4f3a2c")},
        {"programme": "sovereign-ai-2026"},
        {"purpose": "screening-extract"},
        {"format_version": 2},
    ],
    ids=["document", "rollback", "version-0", "consortium", "programme", "purpose", "format"],
)
def test_a_different_context_is_refused_before_any_plaintext(key, multi_chunk, changes):
    _plaintext, blob = multi_chunk
    assert context(**changes) != context()
    released, failed = released_until_failure(blob, key, context(**changes))
    assert failed and released == b""


def test_a_rolled_back_version_does_not_decrypt_as_the_newer_one(key):
    """Version 1's blob put where version 2's belongs fails under version 2's context."""
    old = encrypt(b"%PDF-1.7 version one", key, context(version=1))
    released, failed = released_until_failure(old, key, context(version=2))
    assert failed and released == b""


def test_finalize_on_a_blob_that_ends_inside_its_header_is_refused(key):
    decryptor = ContentDecryptor(key, context())
    assert decryptor.update(b"VLT") == b""
    with pytest.raises(IntegrityError, match="header"):
        decryptor.finalize()
