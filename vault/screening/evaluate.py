"""The checks as pure functions: the facts of one submission in, its findings out.

Nothing here touches the database, the blob store or a PDF: :class:`SubmissionFacts` holds
what the screening service gathered (the newest version of every document with the sandboxed
analysis of each PDF, the partner list, the resource request and its problems), and
:func:`evaluate` turns it into the checklist, in a fixed order: each document kind of the
definition (per partner in partner-list order), then the consortium, then the resource request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from vault.display import format_kst, format_size
from vault.documents.models import SubmissionState
from vault.organizations.models import OrganizationKind
from vault.programmes.definition import DocumentKind, ProgrammeDefinition, ResourceForm
from vault.screening.analysis import PdfFacts
from vault.screening.checks import Finding

#: Korea Standard Time: evidence times are shown as the programme office reads them.
PDF = "application/pdf"
#: States whose uploads are judged against the correction deadline (when one is set).
CORRECTION_STATES = frozenset({SubmissionState.RETURNED, SubmissionState.RESUBMITTED})
#: Korean for the reasons a PDF can be unreadable (the analyser reports them in English).
_REASONS_KO = {
    "not a PDF": "PDF 파일이 아님",
    "integrity check failed": "무결성 검사 실패",
    "destroyed": "파기됨",
    "cpu limit exceeded": "CPU 시간 한도 초과",
    "memory limit exceeded": "메모리 한도 초과",
    "damaged: no pages": "손상됨: 쪽 없음",
    "damaged: the object graph nests too deeply or loops": "손상됨: 객체 구조가 너무 깊거나 순환함",
    "failed: the analysis gave no facts": "실패: 분석 결과 없음",
    "network isolation unavailable": "네트워크 격리 불가",
}
#: Korean for the start of the other reasons; the parser's own message follows in English.
_PREFIXES_KO = (("damaged: ", "손상됨: "), ("timed out after ", "시간 초과: "),
                ("crashed ", "비정상 종료 "), ("killed ", "강제 종료 "), ("failed: ", "실패: "))
#: The kinds of active content (``vault.documents.disarm.KINDS``) as shown in English and Korean.
_ACTIVE_KINDS = {
    "javascript": ("JavaScript", "자바스크립트"),
    "launch": ("launch action (runs a program or opens a file)",
               "실행 동작(프로그램 실행·파일 열기)"),
    "uri": ("web link (URI action)", "웹 링크(URI 동작)"),
    "remote_goto": ("link to another file (GoToR/GoToE)", "다른 파일로 가는 링크(GoToR/GoToE)"),
    "submit_form": ("form submission (SubmitForm)", "양식 전송(SubmitForm)"),
    "import_data": ("data import (ImportData)", "데이터 가져오기(ImportData)"),
    "reset_form": ("form reset (ResetForm)", "양식 초기화(ResetForm)"),
    "embedded_file": ("embedded file", "내장 파일"),
    "xfa": ("XFA form", "XFA 양식"),
    "rich_media": ("rich media (video, sound, Flash)", "리치 미디어(동영상·소리·플래시)"),
    "three_d": ("3D content", "3D 콘텐츠"),
    "other_action": ("viewer action", "뷰어 동작"),
}
#: The words of the analyser's places ("page 3 annotation 2") in Korean, longest first.
_PLACES_KO = ((re.compile(r"\bpage (\d+) annotation (\d+)"), r"\1쪽 주석 \2"),
              (re.compile(r"\bpage (\d+)"), r"\1쪽"), (re.compile(r"^outline"), "책갈피"),
              (re.compile(r"^document\b"), "문서"), (re.compile(r"^catalog\b"), "카탈로그"))
#: Resource request fields by the names the resource service's problems use.
_FIELDS = {
    "gpu_model": ("GPU model", "GPU 모델"),
    "gpu_count": ("GPU count", "GPU 수량"),
    "data_budget_krw": ("data purchase budget", "데이터 구매 예산"),
    "talent_headcount": ("talent support headcount", "인재 지원 인원"),
}


@dataclass(frozen=True)
class VersionFacts:
    """The newest version of one document, as screening sees it."""

    document_id: uuid.UUID
    version_id: uuid.UUID
    kind: str
    slot: str
    version: int
    media_type: str
    size_bytes: int
    created_at: datetime
    #: The analysis of a PDF version (``None`` for other media types).
    pdf: PdfFacts | None = None
    #: The PDF's analysis is queued or running (the pre-check shows it as pending).
    pending: bool = False


@dataclass(frozen=True)
class Partner:
    """One partner-list entry: its id, position (0 is the lead) and kind; never its name."""

    id: uuid.UUID
    position: int
    kind: OrganizationKind


class ProblemLike(Protocol):
    """A problem of the resource request (``vault.resources.service.Problem``)."""

    field: str


@dataclass(frozen=True)
class SubmissionFacts:
    """Everything the checks look at for one submission."""

    state: SubmissionState
    correction_deadline: datetime | None
    documents: Sequence[VersionFacts]
    #: The whole partner list, lead included.
    members: Sequence[Partner]
    #: Whether a resource request was saved, and the problems the resource service found in it.
    has_resources: bool = False
    resource_problems: Sequence[ProblemLike] = ()


def evaluate(definition: ProgrammeDefinition, facts: SubmissionFacts) -> list[Finding]:
    """The submission's findings, in checklist order."""
    findings: list[Finding] = []
    by_place = {(d.kind, d.slot): d for d in facts.documents}
    partners = sorted((m for m in facts.members if m.position > 0), key=lambda m: m.position)
    deadline = _deadline(definition, facts)
    for kind in definition.call_kinds:
        places = ([(None, "")] if kind.per == "consortium"
                  else [(partner, str(partner.id)) for partner in partners])
        for partner, slot in places:
            found = by_place.get((kind.id, slot))
            findings += _document(kind, partner, slot, found, deadline)
    findings += _consortium(definition, facts, partners)
    findings += _resources(definition.resources, facts)
    return findings


def _deadline(definition: ProgrammeDefinition, facts: SubmissionFacts) -> datetime:
    """Uploads must be in by the call's deadline, or by the correction deadline once returned."""
    deadline = definition.submission_deadline
    if facts.state in CORRECTION_STATES and facts.correction_deadline is not None:
        deadline = max(deadline, facts.correction_deadline)
    return deadline


def _names(kind: DocumentKind, partner: Partner | None) -> dict[str, object]:
    """The document's name in both languages ("Partner letter of commitment (partner 2)")."""
    if partner is None:
        return {"document_en": kind.title_en, "document_ko": kind.title_ko}
    return {"document_en": f"{kind.title_en} (partner {partner.position})",
            "document_ko": f"{kind.title_ko} (참여기관 {partner.position})",
            "partner": partner.position, "entry": _entry(partner.id)}


def _document(kind: DocumentKind, partner: Partner | None, slot: str,
              found: VersionFacts | None, deadline: datetime) -> list[Finding]:
    """Presence, time, size and (for PDFs) the PDF checks of one required place."""
    names = _names(kind, partner)
    if found is None:
        if not kind.required:
            return [Finding.of("document.present", "optional_missing", kind=kind.id, slot=slot,
                               **names)]
        where = ({"where_en": "", "where_ko": ""} if partner is None else
                 {"where_en": f" for partner {partner.position}, entry {_entry(partner.id)}",
                  "where_ko": f" (참여기관 {partner.position}, 항목 {_entry(partner.id)})"})
        return [Finding.of("document.present", "missing", kind=kind.id, slot=slot,
                           **names, **where)]

    def finding(check_id: str, case: str, **values: object) -> Finding:
        return Finding.of(check_id, case, kind=kind.id, slot=slot,
                          document_id=found.document_id, version_id=found.version_id,
                          **names, **values)

    findings = [
        finding("document.present", "present", version=found.version),
        finding("document.on_time", "on_time" if found.created_at <= deadline else "late",
                uploaded=format_kst(found.created_at), deadline=format_kst(deadline)),
        finding("document.size", "within" if found.size_bytes <= kind.max_size_bytes else "over",
                size=format_size(found.size_bytes), limit=format_size(kind.max_size_bytes)),
    ]
    if found.media_type == PDF and found.pending and found.pdf is None:
        findings.append(finding("pdf.readable", "pending"))
    elif found.media_type == PDF:
        findings += _pdf(kind, found.pdf, finding)
    return findings


def _pdf(kind: DocumentKind, facts: PdfFacts | None, finding) -> list[Finding]:
    """The PDF checks; once a file cannot be read (or is encrypted) the rest cannot run."""
    if facts is None:
        facts = PdfFacts(unreadable="not analysed")
    if facts.unreadable is not None:
        reason = facts.unreadable
        return [finding("pdf.readable", "unreadable", reason_en=reason,
                        reason_ko=_reason_ko(reason))]
    findings = [finding("pdf.readable", "readable")]
    if facts.encrypted:
        return [*findings, finding("pdf.not_encrypted", "encrypted")]
    findings.append(finding("pdf.not_encrypted", "clear"))
    rules = kind.screening
    pages = facts.page_count or 0
    limits = _limits(rules.min_pages, rules.max_pages)
    if rules.max_pages is not None and pages > rules.max_pages:
        findings.append(finding("pdf.pages", "over", pages=pages, maximum=rules.max_pages,
                                **limits))
    elif rules.min_pages is not None and pages < rules.min_pages:
        findings.append(finding("pdf.pages", "under", pages=pages, minimum=rules.min_pages,
                                **limits))
    else:
        findings.append(finding("pdf.pages", "within", pages=pages, **limits))
    if rules.page_size is not None:
        if facts.off_size_count:
            numbers = ", ".join(str(n) for n in facts.off_size_pages)
            if facts.off_size_count > len(facts.off_size_pages):
                numbers += ", …"
            first = facts.off_size_pages[0] if facts.off_size_pages else 1
            findings.append(finding("pdf.page_size", "off", size=rules.page_size, pages=pages,
                                    count=facts.off_size_count, numbers=numbers, first=first,
                                    found=facts.page_size or "?"))
        else:
            findings.append(finding("pdf.page_size", "matches", size=rules.page_size,
                                    pages=pages))
    if rules.headings:
        count, missing = len(rules.headings), facts.headings_missing
        if missing:
            findings.append(finding(
                "pdf.headings", "missing", count=count, found=count - len(missing),
                missing_en="; ".join(h.en for h in missing),
                missing_ko="; ".join(h.ko for h in missing)))
        else:
            findings.append(finding("pdf.headings", "found", count=count))
    if rules.signature_required:
        case = ("signed" if facts.signed else "unsigned" if facts.has_signature_field
                else "no_field")
        findings.append(finding("pdf.signature", case))
    return findings + _active_content(facts, finding)


def _active_content(facts: PdfFacts, finding) -> list[Finding]:
    """One warning per kind of active content the file holds, or a pass if it holds none."""
    if not facts.active_content:
        return [finding("pdf.active_content", "none")]
    findings = []
    for found in facts.active_content:
        english, korean = _ACTIVE_KINDS.get(found.kind, (found.kind, found.kind))
        more = len(found.places) < found.count
        findings.append(finding(
            "pdf.active_content", "found", active_kind=found.kind, count=found.count,
            what_en=english, what_ko=korean,
            places_en=", ".join(found.places) + (f", … ({found.count} places)" if more else ""),
            places_ko=", ".join(_place_ko(place) for place in found.places)
            + (f", … (모두 {found.count}곳)" if more else "")))
    return findings


def _place_ko(place: str) -> str:
    """Where the analyser found active content, in Korean ("page 3 annotation 2": "3쪽 주석 2")."""
    where, quote, name = place.partition(" '")  # an embedded file's name stays as it is
    for pattern, korean in _PLACES_KO:
        where = pattern.sub(korean, where)
    return where + quote + name


def _consortium(definition: ProgrammeDefinition, facts: SubmissionFacts,
                partners: list[Partner]) -> list[Finding]:
    """Membership rules, and per-partner documents filed for entries no longer in the list."""
    rules = definition.consortium
    findings = []
    if rules.min_universities:
        count = sum(1 for m in facts.members if m.kind is OrganizationKind.UNIVERSITY)
        findings.append(Finding.of(
            "consortium.universities", "enough" if count >= rules.min_universities
            else "too_few", count=count, minimum=rules.min_universities))
    if rules.max_members is not None:
        count = len(facts.members)
        findings.append(Finding.of(
            "consortium.members", "within" if count <= rules.max_members else "too_many",
            count=count, maximum=rules.max_members))
    per_partner = {kind.id: kind for kind in definition.call_kinds if kind.per == "partner"}
    if not per_partner:
        return findings
    listed = {str(p.id) for p in partners}
    entries = {"entries_en": _entries(partners, "partner"),
               "entries_ko": _entries(partners, "참여기관")}
    stray = [d for d in facts.documents if d.kind in per_partner and d.slot not in listed]
    for document in sorted(stray, key=lambda d: (d.kind, d.slot)):
        kind = per_partner[document.kind]
        findings.append(Finding.of(
            "consortium.partner_documents", "stray", kind=kind.id, slot=document.slot,
            document_id=document.document_id, version_id=document.version_id,
            document_en=kind.title_en, document_ko=kind.title_ko,
            entry=_entry_text(document.slot), **entries))
    if not stray:
        findings.append(Finding.of("consortium.partner_documents", "match", **entries))
    return findings


def _resources(form: ResourceForm | None, facts: SubmissionFacts) -> list[Finding]:
    """The resource request: saved at all, and within the form's ranges (no figures shown)."""
    if form is None:
        return []
    if not facts.has_resources:
        return [Finding.of("resources.complete", "missing")]
    findings = [Finding.of("resources.complete", "complete")]
    if not facts.resource_problems:
        return [*findings, Finding.of("resources.in_range", "within")]
    fields = list(dict.fromkeys(problem.field for problem in facts.resource_problems))
    findings.append(Finding.of(
        "resources.in_range", "outside",
        fields_en=", ".join(_field(form, name, korean=False) for name in fields),
        fields_ko=", ".join(_field(form, name, korean=True) for name in fields)))
    return findings


def _field(form: ResourceForm, name: str, *, korean: bool) -> str:
    """A resource field with its allowed range, e.g. "GPU count (0-2,048)" (with an en dash)."""
    label = _FIELDS.get(name, (name, name))[1 if korean else 0]
    allowed = {"gpu_count": form.gpu_count, "data_budget_krw": form.data_budget_krw,
               "talent_headcount": form.talent_headcount}.get(name)
    if allowed is not None:
        return f"{label} ({allowed.minimum:,}–{allowed.maximum:,})"
    if name == "gpu_model":
        offered = ", ".join(model.id for model in form.gpu_models)
        return f"{label} ({offered})"
    return label


def _reason_ko(reason: str) -> str:
    """Why a PDF is unreadable, in Korean as far as the analyser's words go."""
    if reason in _REASONS_KO:
        return _REASONS_KO[reason]
    for english, korean in _PREFIXES_KO:
        if reason.startswith(english):
            return korean + reason.removeprefix(english)
    return reason


def _limits(minimum: int | None, maximum: int | None) -> dict[str, str]:
    """The page limits as evidence ("limit 40" / "한도 40쪽")."""
    if minimum is not None and maximum is not None:
        return {"limits_en": f"limits {minimum}–{maximum}",
                "limits_ko": f"한도 {minimum}–{maximum}쪽"}
    if maximum is not None:
        return {"limits_en": f"limit {maximum}", "limits_ko": f"한도 {maximum}쪽"}
    if minimum is not None:
        return {"limits_en": f"at least {minimum}", "limits_ko": f"최소 {minimum}쪽"}
    return {"limits_en": "no limit", "limits_ko": "제한 없음"}


def _entries(partners: list[Partner], word: str) -> str:
    """The partner list as evidence: positions and entry ids, never names."""
    if not partners:
        return "—"
    return ", ".join(f"{word} {p.position} = {_entry(p.id)}" for p in partners)


def _entry(member_id: uuid.UUID) -> str:
    """A partner-list entry id, shortened for people (the report has it in full)."""
    return str(member_id)[:8]


def _entry_text(slot: str) -> str:
    return slot[:8] if slot else "—"

