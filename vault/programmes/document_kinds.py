"""Document kinds of a programme definition: what applicants upload, in which media types,
how large, once per consortium or per partner, what screening checks in it, and whether it is a
stage artifact uploaded during later stages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from vault.programmes.rules import PdfRules, read_pdf_rules
from vault.programmes.tables import ID_RE, Table, is_korean

#: ``per`` values: one document for the consortium, or one for each partner.
PER_VALUES = ("consortium", "partner")

#: Upper bound of ``max_size_mb``; beyond this a value is a typo, not a real limit.
MAX_SIZE_MB_LIMIT = 100_000

DOCUMENT_KIND_KEYS = frozenset(
    {"id", "title_ko", "title_en", "media_types", "max_size_mb", "required", "per", "screening",
     "stages"}
)

# RFC 6838 restricted names, lowercase only so stored and compared values are canonical;
# parameters (";charset=...") and wildcards are deliberately not allowed.
_MEDIA_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE_RE = re.compile(rf"^{_MEDIA_NAME}/{_MEDIA_NAME}$")
_MEDIA_TYPES_PROBLEM = 'must be a non-empty list of media types like "application/pdf"'


@dataclass(frozen=True)
class DocumentKind:
    """A kind of document applicants upload, e.g. the project proposal."""

    id: str
    title_ko: str
    title_en: str
    media_types: tuple[str, ...]
    max_size_bytes: int
    required: bool
    per: Literal["consortium", "partner"]
    #: What screening checks in the kind's PDF versions.
    screening: PdfRules = field(default_factory=PdfRules)
    #: Empty for the call's documents; otherwise the stages during which a submission in one of
    #: them uploads this kind (a stage artifact such as a technical report), until the stage's
    #: ``artifacts_due``. Screening checks only the call's documents.
    stages: tuple[str, ...] = ()

    @property
    def for_call(self) -> bool:
        """Whether the kind belongs to the application (not to a later stage)."""
        return not self.stages

    def title(self, locale: str) -> str:
        """The title in the given locale (Korean or English)."""
        return self.title_ko if is_korean(locale) else self.title_en


def read_document_kind(file: str, index: int, data: dict[str, Any]) -> DocumentKind:
    table = Table(file, f"document_kinds[{index}]", data, DOCUMENT_KIND_KEYS)
    table.check_keys()
    kind_id = table.slug("id", ID_RE, "a lowercase identifier like proposal or budget_plan")
    title_ko = table.title("title_ko")
    title_en = table.title("title_en")

    media_types = table.get("media_types")
    if not isinstance(media_types, list) or not media_types:
        raise table.error("media_types", _MEDIA_TYPES_PROBLEM)
    for position, media_type in enumerate(media_types):
        if not isinstance(media_type, str) or not _MEDIA_TYPE_RE.fullmatch(media_type):
            raise table.error(
                f"media_types[{position}]",
                f'{media_type!r} is not a lowercase media type like "application/pdf"',
            )
        if media_types.index(media_type) != position:
            raise table.error(f"media_types[{position}]", f"duplicate media type {media_type!r}")

    max_size_mb = table.get("max_size_mb")
    # bool is an int in Python; "max_size_mb = true" is a mistake, not 1 MiB.
    if (
        not isinstance(max_size_mb, int)
        or isinstance(max_size_mb, bool)
        or not 0 < max_size_mb <= MAX_SIZE_MB_LIMIT
    ):
        raise table.error(
            "max_size_mb", f"must be a whole number of MiB from 1 to {MAX_SIZE_MB_LIMIT}"
        )

    required = table.data.get("required", True)
    if not isinstance(required, bool):
        raise table.error("required", "must be true or false")

    per = table.get("per")
    if per not in PER_VALUES:
        raise table.error("per", f'must be "consortium" or "partner", got {per!r}')

    screening = read_pdf_rules(table)
    if screening != PdfRules() and "application/pdf" not in media_types:
        raise table.error("screening", "applies to PDF versions, but the kind accepts no "
                                       "application/pdf")
    stages = table.data.get("stages", [])
    if (not isinstance(stages, list) or not all(isinstance(s, str) for s in stages)
            or len(set(stages)) != len(stages)):
        raise table.error("stages", 'must be a list of distinct stage ids like ["stage_1"]')
    if stages and screening != PdfRules():
        raise table.error("screening", "screening checks the call's documents; a stage "
                                       "artifact has none")
    return DocumentKind(
        id=kind_id,
        title_ko=title_ko,
        title_en=title_en,
        media_types=tuple(media_types),
        max_size_bytes=max_size_mb * 1024 * 1024,
        required=required,
        per=per,
        screening=screening,
        stages=tuple(stages),
    )
