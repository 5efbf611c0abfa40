"""Media types from content, not from names: uploads are typed by their magic bytes."""

from __future__ import annotations

PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ZIP = "application/zip"
PLAIN = "text/plain"

#: How many leading bytes ``sniff`` needs at most.
SNIFF_BYTES = 8


def sniff(head: bytes) -> str | None:
    """The media type the leading bytes announce, or ``None`` when unrecognised.

    Office Open XML files are ZIP archives; they are told apart by the declared type (the ZIP
    magic is accepted for any of them), since the part names sit deep in the archive.
    """
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    return None


def matches(declared: str, head: bytes) -> bool:
    """Whether content starting with ``head`` really is of the declared media type."""
    found = sniff(head)
    if declared == PDF:
        return found == PDF
    if declared in (XLSX, DOCX, ZIP):
        return found == ZIP
    if declared == PLAIN:
        return found is None and b"\x00" not in head
    return False
