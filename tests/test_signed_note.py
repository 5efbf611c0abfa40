"""Signed notes and checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint) on their own.

Known answers come from the reference implementation's tests (golang.org/x/mod/sumdb/note,
note_test.go), from the two C2SP specs' examples, and from a checkpoint signed by the real
sum.golang.org log, so notes written here verify elsewhere and the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from vault.crypto import signed_note
from vault.crypto.signed_note import (
    Checkpoint,
    InvalidSignatureError,
    MalformedCheckpointError,
    MalformedKeyError,
    MalformedNoteError,
    NoteError,
    OriginMismatchError,
    UntrustedNoteError,
    format_checkpoint,
    generate_signer,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    vkey_from_skey,
)

# --- golang.org/x/mod/sumdb/note note_test.go (test keys, published on purpose) ------------------
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
    "otpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWL"
    "ox33WWd1RvMc+QQ=\n"
)
PETER_NOTE = TEXT + "\n" + PETER_SIG

# --- a checkpoint signed by sum.golang.org, with the key the go command ships -------------------
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_CHECKPOINT = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    "\u2014 sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfv"
    "imWEPWL+o3GeoWwOoAw=\n"
)

# --- the specs' own examples (their public keys are not published) ------------------------------
SPEC_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed \u00e8 subito sera.\n"
    "\n"
    "\u2014 quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONr"
    "MouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)
SPEC_CHECKPOINT_BODY = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_CHECKPOINT = (
    SPEC_CHECKPOINT_BODY + "\n\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZni"
    "Mp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

ROOT = hashlib.sha256(b"insecure-test-root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()


def _raw_key(name: str, hex_id: str, raw: bytes) -> str:
    return f"{name}+{hex_id}+{base64.b64encode(raw).decode()}"


def _id_for(name: str, encoded_key: bytes) -> str:
    """The key ID the reference implementation would compute for arbitrary key bytes."""
    return hashlib.sha256(name.encode() + b"\n" + encoded_key).digest()[:4].hex()


def _signature_line(name: str, raw: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(raw).decode()}\n"


def _peter_sig_bytes() -> bytes:
    return base64.b64decode(PETER_SIG.split(" ")[2])


# --- known answers ------------------------------------------------------------------------------


def test_reference_signer_key_derives_reference_verifier_key():
    assert vkey_from_skey(PETER_SKEY) == PETER_VKEY


def test_signing_reproduces_reference_note_byte_for_byte():
    assert sign_note(TEXT, PETER_SKEY) == PETER_NOTE


def test_reference_note_opens_with_reference_key():
    assert open_note(PETER_NOTE, [PETER_VKEY]) == TEXT


@pytest.mark.parametrize("vkeys", [[PETER_VKEY], [ENOCH_VKEY], [PETER_VKEY, ENOCH_VKEY]])
def test_note_with_two_reference_signatures_opens_with_either_key(vkeys):
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, vkeys) == TEXT


def test_real_sum_golang_org_checkpoint_verifies():
    checkpoint = verify_checkpoint(SUMDB_CHECKPOINT, SUMDB_VKEY, "go.sum database tree")
    assert checkpoint == Checkpoint(
        "go.sum database tree", 6476701,
        base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="))


@pytest.mark.parametrize("note", [SPEC_NOTE, SPEC_CHECKPOINT])
def test_spec_examples_are_well_formed_but_untrusted_without_their_key(note):
    with pytest.raises(UntrustedNoteError):
        open_note(note, [PETER_VKEY])


def test_spec_checkpoint_body_parses_and_formats_back():
    checkpoint = parse_checkpoint(SPEC_CHECKPOINT_BODY)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert format_checkpoint(checkpoint.origin, checkpoint.size, checkpoint.root) == (
        SPEC_CHECKPOINT_BODY)


def test_mistyped_reference_skey_is_refused_because_its_id_names_another_key():
    # A variant that circulates with a different seed: the id no longer matches the key.
    mistyped = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxEXUsq0w"
    with pytest.raises(MalformedKeyError, match="does not match"):
        sign_note(TEXT, mistyped)


# --- round trips --------------------------------------------------------------------------------


def test_generated_keys_have_the_reference_shape_and_sign_and_verify():
    skey, vkey = generate_signer("vault.example/audit-log")
    # 0x01 || 32 bytes is 33 bytes: 44 base64 characters, no padding.
    assert re.fullmatch(r"PRIVATE\+KEY\+vault\.example/audit-log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}",
                        skey)
    assert re.fullmatch(r"vault\.example/audit-log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", vkey)
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x01
    assert vkey_from_skey(skey) == vkey
    assert open_note(sign_note(TEXT, skey), [vkey]) == TEXT


def test_each_generated_key_is_new():
    assert generate_signer("log")[0] != generate_signer("log")[0]


@pytest.mark.parametrize("text", [
    "\n",
    "one line\n",
    "has\n\nblank lines\n\n",
    "\u2014 looks like a signature line\n",
    "Unicode \u00e8 \u4e2d\u6587 \U0001f510 and U+2028 \u2028 inside a line\n",
])
def test_any_valid_note_text_round_trips(text):
    skey, vkey = generate_signer("example.com/log")
    assert open_note(sign_note(text, skey), [vkey]) == text


def test_note_signed_by_a_rotated_key_opens_when_both_keys_are_trusted():
    _, old_vkey = generate_signer("log")
    new_skey, new_vkey = generate_signer("log")
    assert open_note(sign_note(TEXT, new_skey), [old_vkey, new_vkey]) == TEXT
    with pytest.raises(UntrustedNoteError):
        open_note(sign_note(TEXT, new_skey), [old_vkey])


def test_identical_duplicate_signatures_and_duplicate_vkeys_are_accepted():
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG
    assert open_note(note, [PETER_VKEY, PETER_VKEY]) == TEXT


def test_up_to_one_hundred_signatures_are_accepted_and_more_refused():
    assert open_note(TEXT + "\n" + PETER_SIG * 100, [PETER_VKEY]) == TEXT
    with pytest.raises(MalformedNoteError, match="more than 100"):
        open_note(TEXT + "\n" + PETER_SIG * 101, [PETER_VKEY])


# --- malformed and untrustworthy notes ----------------------------------------------------------


@pytest.mark.parametrize("note", [
    pytest.param(TEXT, id="no-signatures"),
    pytest.param(TEXT + "\n", id="blank-line-but-no-signatures"),
    pytest.param(TEXT + PETER_SIG, id="missing-blank-line"),
    pytest.param(TEXT + "\n" + PETER_SIG[:-1], id="missing-final-newline"),
    pytest.param(TEXT + "\n" + PETER_SIG + "\n", id="blank-line-after-signatures"),
    pytest.param("\x01" + TEXT + "\n" + PETER_SIG, id="control-character-in-text"),
    pytest.param("\t" + TEXT + "\n" + PETER_SIG, id="tab-in-text"),
    pytest.param(TEXT.replace("\n", "\r\n") + "\r\n" + PETER_SIG, id="crlf"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("\n", "\r\n"), id="cr-in-signature-line"),
    pytest.param("\udcff" + TEXT + "\n" + PETER_SIG, id="not-utf8"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name")[:-1],
                 id="space-in-name-reference-case"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
                 id="plus-in-name"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter\u00a0Neumann"),
                 id="unicode-space-in-name"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("PeterNeumann ", " "), id="empty-name"),
    pytest.param(TEXT + "\n" + PETER_SIG + "Unexpected line.\n", id="trailing-non-signature"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("\u2014", "--"), id="ascii-dashes"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("\u2014 ", "\u2014"), id="no-space-after-dash"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("x08go", "x08g!"), id="bad-base64-character"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("AM=\n", "AM\n"), id="missing-padding"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("AM=\n", "AN=\n"), id="non-canonical-padding"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace(" x08go", "  x08go"), id="double-space"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("AM=\n", "AM= \n"), id="trailing-space"),
    pytest.param(TEXT + "\n" + _signature_line("PeterNeumann", b"\xc7\x4f\x20\xa3"),
                 id="key-id-without-signature"),
    pytest.param(TEXT + "\n\u2014 PeterNeumann \n", id="empty-signature"),
])
def test_malformed_note_is_refused(note):
    with pytest.raises(MalformedNoteError):
        open_note(note, [PETER_VKEY])


def test_signature_over_modified_text_is_invalid():
    tampered = PETER_NOTE.replace("answer", "solution")
    with pytest.raises(InvalidSignatureError, match=r"PeterNeumann\+c74f20a3"):
        open_note(tampered, [PETER_VKEY])


def test_corrupted_signature_from_trusted_key_is_invalid():
    # The reference test: four base64 characters inserted into the signature.
    corrupted = PETER_SIG[:58] + "ABCD" + PETER_SIG[58:]
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + "\n" + corrupted, [PETER_VKEY])


@pytest.mark.parametrize("order", ["valid-first", "forged-first"])
def test_second_forged_line_under_trusted_key_rejects_the_whole_note(order):
    sig = bytearray(_peter_sig_bytes())
    sig[-1] ^= 0x01
    forged = _signature_line("PeterNeumann", bytes(sig))
    lines = PETER_SIG + forged if order == "valid-first" else forged + PETER_SIG
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + "\n" + lines, [PETER_VKEY])


def test_forged_lines_under_unknown_keys_are_ignored():
    forged = _signature_line("mallory.example/log", b"\x01\x02\x03\x04" + b"\x00" * 64)
    assert open_note(TEXT + "\n" + forged + PETER_SIG + forged, [PETER_VKEY]) == TEXT


def test_signature_with_known_name_but_wrong_key_id_is_ignored():
    sig = _peter_sig_bytes()
    wrong_id = _signature_line("PeterNeumann", b"\x00\x00\x00\x00" + sig[4:])
    with pytest.raises(UntrustedNoteError):
        open_note(TEXT + "\n" + wrong_id, [PETER_VKEY])
    assert open_note(TEXT + "\n" + wrong_id + PETER_SIG, [PETER_VKEY]) == TEXT


def test_signature_with_known_key_id_but_other_name_is_ignored():
    renamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    with pytest.raises(UntrustedNoteError):
        open_note(TEXT + "\n" + renamed, [PETER_VKEY])


@pytest.mark.parametrize("vkeys", [[ENOCH_VKEY], []])
def test_note_signed_only_by_unknown_keys_is_untrusted(vkeys):
    with pytest.raises(UntrustedNoteError, match="no signature from a trusted key"):
        open_note(PETER_NOTE, vkeys)


def test_vkeys_given_as_one_string_is_a_programming_error():
    with pytest.raises(TypeError):
        open_note(PETER_NOTE, PETER_VKEY)


@pytest.mark.parametrize("text", [
    pytest.param("no final newline", id="no-final-newline"),
    pytest.param("", id="empty"),
    pytest.param("bell \x07\n", id="control-character"),
    pytest.param("crlf\r\n", id="carriage-return"),
    pytest.param("lone surrogate \ud800\n", id="not-utf8"),
])
def test_signing_refuses_text_that_could_not_be_a_note(text):
    with pytest.raises(MalformedNoteError):
        sign_note(text, PETER_SKEY)


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a+b", "a b", "tab\there", "nbsp\u00a0", "ideo\u3000",
                                  "nl\n", "ctl\x01", "surrogate\ud800"])
def test_generating_a_key_refuses_names_the_spec_forbids(name):
    with pytest.raises(MalformedKeyError):
        generate_signer(name)


def _every_mangling(key: str) -> list[str]:
    """The reference tests' manglings: every proper substring and every single-byte increment."""
    mangled = {key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)}
    mangled |= {key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))}
    mangled.discard(key)
    return sorted(mangled)


def test_every_mangled_reference_vkey_is_refused():
    for mangled in _every_mangling(PETER_VKEY):
        with pytest.raises(MalformedKeyError):
            open_note(PETER_NOTE, [mangled])


def test_every_mangled_reference_skey_is_refused():
    for mangled in _every_mangling(PETER_SKEY):
        with pytest.raises(MalformedKeyError):
            vkey_from_skey(mangled)


def test_reference_vkeys_with_adjusted_ids_but_bad_key_bytes_are_refused():
    # From note_test.go: a wrong-length key and an unknown algorithm, each with a matching id.
    for bad in ["PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"]:
        with pytest.raises(MalformedKeyError):
            open_note(PETER_NOTE, [bad])


@pytest.mark.parametrize("algorithm", [0x00, 0x02, 0x04, 0xFF])
def test_vkey_with_other_algorithm_byte_and_matching_id_is_refused(algorithm):
    encoded = bytes([algorithm]) + base64.b64decode(PETER_VKEY.split("+")[2])[1:]
    bad = _raw_key("PeterNeumann", _id_for("PeterNeumann", encoded), encoded)
    with pytest.raises(MalformedKeyError, match="unsupported signature algorithm"):
        open_note(PETER_NOTE, [bad])


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_vkey_with_wrong_key_length_and_matching_id_is_refused(length):
    encoded = b"\x01" + bytes(range(length))
    bad = _raw_key("PeterNeumann", _id_for("PeterNeumann", encoded), encoded)
    with pytest.raises(MalformedKeyError, match="32-byte Ed25519 key"):
        open_note(PETER_NOTE, [bad])


@pytest.mark.parametrize("algorithm", [0x00, 0x02, 0xFF])
def test_skey_with_other_algorithm_byte_is_refused(algorithm):
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
    bad = "PRIVATE+KEY+PeterNeumann+c74f20a3+" + base64.b64encode(
        bytes([algorithm]) + seed).decode()
    with pytest.raises(MalformedKeyError, match="unsupported signature algorithm"):
        sign_note(TEXT, bad)


@pytest.mark.parametrize("skey", [
    pytest.param(PETER_VKEY, id="vkey-as-skey"),
    pytest.param(PETER_SKEY.replace("PRIVATE+KEY", "PUBLIC+KEY"), id="wrong-prefix"),
    pytest.param(PETER_SKEY.replace("c74f20a3", "c74f20a4"), id="wrong-id"),
    pytest.param(PETER_SKEY.replace("+c74f20a3", ""), id="missing-id"),
    pytest.param(PETER_SKEY.replace("PeterNeumann", "Peter Neumann"), id="space-in-name"),
    pytest.param(PETER_SKEY + "=", id="bad-padding"),
    pytest.param(PETER_SKEY[:-4], id="short-seed"),
])
def test_corrupted_skey_is_refused(skey):
    with pytest.raises(MalformedKeyError):
        sign_note(TEXT, skey)


def test_skey_passed_as_vkey_is_refused_without_echoing_the_secret():
    with pytest.raises(MalformedKeyError) as caught:
        open_note(PETER_NOTE, [PETER_SKEY])
    assert "AYEKFALV" not in str(caught.value)


def test_distinct_vkeys_sharing_name_and_id_are_refused_as_ambiguous(monkeypatch):
    # A real 32-bit id collision takes ~2^32 tries, so the key id function is pinned instead.
    monkeypatch.setattr(signed_note, "_key_id", lambda name, key: b"\xc7\x4f\x20\xa3")
    other = _raw_key("PeterNeumann", "c74f20a3", b"\x01" + bytes(32))
    with pytest.raises(MalformedKeyError, match="ambiguous"):
        open_note(PETER_NOTE, [PETER_VKEY, other])


# --- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_formats_to_the_spec_layout():
    assert format_checkpoint("example.com/log", 12, ROOT) == f"example.com/log\n12\n{ROOT_B64}\n"
    assert format_checkpoint("example.com/log", 0, ROOT, ["ext one", "ext\u2014two"]) == (
        f"example.com/log\n0\n{ROOT_B64}\next one\next\u2014two\n")


@pytest.mark.parametrize("size", [0, 1, 10, 2**63, 2**64 - 1])
@pytest.mark.parametrize("extensions", [(), ("one",), ("one", "two words")])
def test_checkpoint_round_trips(size, extensions):
    checkpoint = Checkpoint("example.com/log", size, ROOT, extensions)
    assert parse_checkpoint(format_checkpoint("example.com/log", size, ROOT, extensions)) == (
        checkpoint)


def test_checkpoint_is_frozen_and_keeps_extensions_as_a_tuple():
    checkpoint = Checkpoint("o", 1, ROOT, ["ext"])  # type: ignore[arg-type]
    assert checkpoint.extensions == ("ext",)
    with pytest.raises(AttributeError):
        checkpoint.size = 2  # type: ignore[misc]


@pytest.mark.parametrize("size_line", [
    "01", "00", "007", "-1", "+1", " 1", "1 ", "1_000", "1e3", "0x10", "1.0", "",
    "\u0661", "\uff11", str(2**64),
])
def test_checkpoint_with_invalid_tree_size_is_refused(size_line):
    with pytest.raises(MalformedCheckpointError, match="tree size"):
        parse_checkpoint(f"example.com/log\n{size_line}\n{ROOT_B64}\n")


@pytest.mark.parametrize("root_line", [
    pytest.param(base64.b64encode(ROOT[:31]).decode(), id="31-bytes"),
    pytest.param(base64.b64encode(ROOT + b"\x00").decode(), id="33-bytes"),
    pytest.param(ROOT_B64.rstrip("="), id="no-padding"),
    pytest.param(base64.urlsafe_b64encode(b"\xfb" * 32).decode(), id="url-safe-alphabet"),
    pytest.param(ROOT_B64[:-2] + chr(ord(ROOT_B64[-2]) ^ 1) + "=", id="non-canonical-bits"),
    pytest.param(ROOT.hex(), id="hex"),
    pytest.param(" " + ROOT_B64, id="leading-space"),
    pytest.param("", id="empty"),
])
def test_checkpoint_with_invalid_root_hash_is_refused(root_line):
    with pytest.raises(MalformedCheckpointError, match="root hash"):
        parse_checkpoint(f"example.com/log\n5\n{root_line}\n")


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty"),
    pytest.param("example.com/log\n", id="origin-only"),
    pytest.param("example.com/log\n5\n", id="no-root-line"),
    pytest.param(f"example.com/log\n5\n{ROOT_B64}", id="no-final-newline"),
    pytest.param(f"\n5\n{ROOT_B64}\n", id="empty-origin"),
    pytest.param(f"example.com/log\n5\n{ROOT_B64}\n\n", id="empty-trailing-line"),
    pytest.param(f"example.com/log\n5\n{ROOT_B64}\n\next\n", id="empty-extension-line"),
    pytest.param(f"example.com/log\r\n5\r\n{ROOT_B64}\r\n", id="crlf"),
    pytest.param(f"example.com/log\n5\n{ROOT_B64}\next\x00\n", id="control-in-extension"),
    pytest.param(f"example.com/\x1blog\n5\n{ROOT_B64}\n", id="control-in-origin"),
])
def test_checkpoint_with_missing_or_bad_lines_is_refused(text):
    with pytest.raises(MalformedCheckpointError):
        parse_checkpoint(text)


def test_checkpoint_with_crlf_line_endings_says_so():
    with pytest.raises(MalformedCheckpointError, match="CRLF"):
        parse_checkpoint(f"example.com/log\r\n5\r\n{ROOT_B64}\r\n")


@pytest.mark.parametrize(("origin", "size", "root", "extensions"), [
    pytest.param("", 1, ROOT, (), id="empty-origin"),
    pytest.param("two\nlines", 1, ROOT, (), id="newline-in-origin"),
    pytest.param("o", -1, ROOT, (), id="negative-size"),
    pytest.param("o", 2**64, ROOT, (), id="size-too-large"),
    pytest.param("o", True, ROOT, (), id="bool-size"),
    pytest.param("o", 1.0, ROOT, (), id="float-size"),
    pytest.param("o", 1, ROOT[:31], (), id="31-byte-root"),
    pytest.param("o", 1, ROOT + b"\x00", (), id="33-byte-root"),
    pytest.param("o", 1, ROOT_B64, (), id="root-as-base64-text"),
    pytest.param("o", 1, ROOT, ("",), id="empty-extension"),
    pytest.param("o", 1, ROOT, ("a\nb",), id="newline-in-extension"),
    pytest.param("o", 1, ROOT, ("a\rb",), id="cr-in-extension"),
])
def test_formatting_an_invalid_checkpoint_is_refused(origin, size, root, extensions):
    with pytest.raises(MalformedCheckpointError):
        format_checkpoint(origin, size, root, extensions)


def test_signed_checkpoint_verifies_against_its_origin():
    skey, vkey = generate_signer("vault.example/audit")
    note = sign_checkpoint("vault.example/audit", 42, ROOT, ["ext"], skey=skey)
    body = f"vault.example/audit\n42\n{ROOT_B64}\next\n"
    assert note.startswith(body + "\n\u2014 vault.example/audit ")
    expected = Checkpoint("vault.example/audit", 42, ROOT, ("ext",))
    assert verify_checkpoint(note, vkey, "vault.example/audit") == expected
    assert verify_checkpoint(note, vkey) == expected


def test_checkpoint_from_another_origin_is_refused():
    skey, vkey = generate_signer("vault.example/audit")
    note = sign_checkpoint("vault.example/other-log", 42, ROOT, skey=skey)
    with pytest.raises(OriginMismatchError, match="other-log"):
        verify_checkpoint(note, vkey, "vault.example/audit")


def test_checkpoint_signed_by_another_key_is_untrusted():
    skey, _ = generate_signer("vault.example/audit")
    _, other_vkey = generate_signer("vault.example/audit")
    with pytest.raises(UntrustedNoteError):
        verify_checkpoint(sign_checkpoint("vault.example/audit", 1, ROOT, skey=skey), other_vkey)


def test_checkpoint_with_tampered_size_has_invalid_signature():
    skey, vkey = generate_signer("vault.example/audit")
    note = sign_checkpoint("vault.example/audit", 41, ROOT, skey=skey)
    with pytest.raises(InvalidSignatureError):
        verify_checkpoint(note.replace("\n41\n", "\n42\n", 1), vkey)


def test_signed_note_that_is_not_a_checkpoint_is_refused():
    with pytest.raises(MalformedCheckpointError):
        verify_checkpoint(PETER_NOTE, PETER_VKEY)


# --- the error hierarchy ------------------------------------------------------------------------


@pytest.mark.parametrize("error", [MalformedNoteError, MalformedKeyError, UntrustedNoteError,
                                   InvalidSignatureError, MalformedCheckpointError,
                                   OriginMismatchError])
def test_every_refusal_is_a_note_error_and_a_value_error(error):
    assert issubclass(error, NoteError) and issubclass(error, ValueError)
