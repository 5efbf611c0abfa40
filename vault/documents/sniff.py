"""Media types from content, not from names: uploads are typed by their magic bytes."""

from __future__ import annotations

PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ZIP = "application/zip"
GZIP = "application/gzip"
ZSTD = "application/zstd"
TAR = "application/x-tar"
PLAIN = "text/plain"

#: Where a POSIX (and GNU) tar header keeps its magic: ``ustar`` at byte 257 of the first block.
TAR_MAGIC_OFFSET = 257
TAR_MAGIC = b"ustar"
#: How many leading bytes ``sniff`` needs at most: up to the end of the tar magic. Callers read
#: this much when the file has it; a shorter file is sniffed on what there is.
SNIFF_BYTES = TAR_MAGIC_OFFSET + len(TAR_MAGIC)

#: Magic numbers at the very start of the file, and the type each announces.
_LEADING = (
    (b"%PDF-", PDF),
    (b"PK\x03\x04", ZIP),
    (b"\x1f\x8b", GZIP),
    (b"\x28\xb5\x2f\xfd", ZSTD),  # a Zstandard frame (RFC 8878, 0xFD2FB528 little-endian)
)


def sniff(head: bytes) -> str | None:
    """The media type the leading bytes announce, or ``None`` when unrecognised.

    Office Open XML files are ZIP archives; they are told apart by the declared type (the ZIP
    magic is accepted for any of them), since the part names sit deep in the archive. Magic at
    the start wins over the tar magic further in: a tar header begins with a member's name,
    which is arbitrary text, while the leading magics are what the formats' readers check.
    """
    for magic, media_type in _LEADING:
        if head.startswith(magic):
            return media_type
    if head[TAR_MAGIC_OFFSET:SNIFF_BYTES] == TAR_MAGIC:
        return TAR
    return None


def matches(declared: str, head: bytes) -> bool:
    """Whether content starting with ``head`` really is of the declared media type."""
    found = sniff(head)
    if declared == PDF:
        return found == PDF
    if declared in (XLSX, DOCX, ZIP):
        return found == ZIP
    if declared in (GZIP, ZSTD, TAR):
        return found == declared
    if declared == PLAIN:
        # A NUL byte never occurs in text; a tar header is full of them.
        return found is None and b"\x00" not in head
    return False
