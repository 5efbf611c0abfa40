"""The screening checks as a table: the facts of a submission in, its findings out.

The checks are pure functions (``vault.screening.evaluate``) over the shipped programme
definition; every row changes one fact of a complete, valid submission and names the findings
that must change with it (check id, result, and where it matters the evidence in both
languages).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from vault.documents.models import SubmissionState
from vault.organizations.models import OrganizationKind
from vault.programmes.definition import ConsortiumRules, load_definition
from vault.screening.analysis import PdfFacts
from vault.screening.checks import CATALOGUE, Finding, overall
from vault.screening.evaluate import Partner, SubmissionFacts, VersionFacts, evaluate
from vault.screening.models import CheckResult

DEFINITION = load_definition(Path(__file__).resolve().parents[1] / "policies" / "programmes"
                             / "sovereign-ai-2025.toml")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BEFORE = DEFINITION.submission_deadline - timedelta(days=3)
LEAD = Partner(uuid.UUID(int=100), 0, OrganizationKind.COMPANY)
UNIVERSITY = Partner(uuid.UUID(int=101), 1, OrganizationKind.UNIVERSITY)
INSTITUTE = Partner(uuid.UUID(int=102), 2, OrganizationKind.RESEARCH_INSTITUTE)
PASS, FAIL, WARNING = CheckResult.PASS, CheckResult.FAIL, CheckResult.WARNING


@dataclasses.dataclass(frozen=True)
class Problem:
    """A resource problem as the resource service reports it."""

    field: str
    template: str = "out of range"
    values: dict = dataclasses.field(default_factory=dict)


def good_pdf(kind: str) -> PdfFacts:
    """The analysis of a PDF that satisfies the kind's rules."""
    rules = DEFINITION.document_kind(kind).screening
    return PdfFacts(unreadable=None, page_count=rules.min_pages or 2, page_size="595×842 pt",
                    has_signature_field=rules.signature_required,
                    signed=rules.signature_required)


def version(kind: str, slot: str = "", *, pdf: PdfFacts | None = None, media_type: str = "",
            size: int = 200_000, created_at: datetime = BEFORE) -> VersionFacts:
    number = len(kind) + len(slot)
    media = media_type or "application/pdf"
    return VersionFacts(
        document_id=uuid.uuid5(uuid.NAMESPACE_OID, f"d/{kind}/{slot}"),
        version_id=uuid.uuid5(uuid.NAMESPACE_OID, f"v/{kind}/{slot}"), kind=kind, slot=slot,
        version=number % 3 + 1, media_type=media, size_bytes=size, created_at=created_at,
        pdf=(pdf or good_pdf(kind)) if media == "application/pdf" else None)


def complete(**changes) -> SubmissionFacts:
    """A complete, valid submission (lead, a university and an institute), with changes."""
    documents = [version(k) for k in ("proposal", "budget_plan", "business_registration",
                                      "data_management_plan")]
    for partner in (UNIVERSITY, INSTITUTE):
        documents += [version("letter_of_commitment", str(partner.id)),
                      version("partner_nda", str(partner.id))]
    facts = SubmissionFacts(state=SubmissionState.SUBMITTED, correction_deadline=None,
                            documents=documents, members=[LEAD, UNIVERSITY, INSTITUTE],
                            has_resources=True, resource_problems=())
    return dataclasses.replace(facts, **changes)


def replaced(kind: str, slot: str = "", **changes) -> list[VersionFacts]:
    """The complete submission's documents with one replaced."""
    return [version(kind, slot, **changes) if (d.kind, d.slot) == (kind, slot) else d
            for d in complete().documents]


def without(kind: str, slot: str = "") -> list[VersionFacts]:
    return [d for d in complete().documents if (d.kind, d.slot) != (kind, slot)]


def not_passing(findings: list[Finding]) -> list[tuple[str, str, str, CheckResult]]:
    return [(f.check_id, f.kind, f.slot, f.result) for f in findings
            if f.result is not CheckResult.PASS]


def one(findings: list[Finding], check_id: str, kind: str = "", slot: str = "") -> Finding:
    matches = [f for f in findings if (f.check_id, f.kind, f.slot) == (check_id, kind, slot)]
    assert len(matches) == 1, (check_id, kind, slot, matches)
    return matches[0]


U, INST = str(UNIVERSITY.id), str(INSTITUTE.id)

#: (case, facts, definition changes, the findings that do not pass, one finding's evidence
#: (check, kind, slot, English, Korean) or None)
TABLE = [
    ("complete and valid", complete(), {}, [], None),
    ("a document missing", complete(documents=without("proposal")), {},
     [("document.present", "proposal", "", FAIL)],
     ("document.present", "proposal", "", "no version uploaded", "올린 판 없음")),
    ("an optional document missing passes", complete(documents=without("data_management_plan")),
     {}, [], ("document.present", "data_management_plan", "", "optional, not uploaded",
              "선택 서류, 올리지 않음")),
    ("a partner's letter missing", complete(documents=without("letter_of_commitment", INST)), {},
     [("document.present", "letter_of_commitment", INST, FAIL)],
     ("document.present", "letter_of_commitment", INST,
      f"no version uploaded for partner 2, entry {INST[:8]}",
      f"올린 판 없음 (참여기관 2, 항목 {INST[:8]})")),
    ("uploaded after the deadline",
     complete(documents=replaced("proposal", created_at=DEFINITION.submission_deadline
                                 + timedelta(minutes=1))), {},
     [("document.on_time", "proposal", "", FAIL)],
     ("document.on_time", "proposal", "",
      "uploaded 2027-01-15 18:01 KST, deadline 2027-01-15 18:00 KST",
      "2027-01-15 18:01 KST 올림, 마감 2027-01-15 18:00 KST")),
    ("a returned submission's correction is on time until its correction deadline",
     complete(state=SubmissionState.RESUBMITTED,
              correction_deadline=DEFINITION.submission_deadline + timedelta(days=10),
              documents=replaced("proposal", created_at=DEFINITION.submission_deadline
                                 + timedelta(days=9))), {}, [], None),
    ("a correction after the correction deadline is late",
     complete(state=SubmissionState.RESUBMITTED,
              correction_deadline=DEFINITION.submission_deadline + timedelta(days=10),
              documents=replaced("proposal", created_at=DEFINITION.submission_deadline
                                 + timedelta(days=11))), {},
     [("document.on_time", "proposal", "", FAIL)], None),
    ("larger than the kind's limit",
     complete(documents=replaced("business_registration", size=11 * 1024 * 1024)), {},
     [("document.size", "business_registration", "", FAIL)],
     ("document.size", "business_registration", "", "11.0 MiB, limit 10.0 MiB",
      "11.0 MiB, 한도 10.0 MiB")),
    ("an unreadable PDF", complete(documents=replaced(
        "proposal", pdf=PdfFacts(unreadable="damaged: Stream has ended unexpectedly"))), {},
     [("pdf.readable", "proposal", "", FAIL)],
     ("pdf.readable", "proposal", "", "unreadable: damaged: Stream has ended unexpectedly",
      "읽을 수 없음: 손상됨: Stream has ended unexpectedly")),
    ("not a PDF", complete(documents=replaced("proposal", pdf=PdfFacts(unreadable="not a PDF"))),
     {}, [("pdf.readable", "proposal", "", FAIL)],
     ("pdf.readable", "proposal", "", "unreadable: not a PDF", "읽을 수 없음: PDF 파일이 아님")),
    ("an encrypted PDF", complete(documents=replaced(
        "proposal", pdf=PdfFacts(unreadable=None, encrypted=True))), {},
     [("pdf.not_encrypted", "proposal", "", FAIL)],
     ("pdf.not_encrypted", "proposal", "", "encrypted", "암호화됨")),
    ("over the page limit", complete(documents=replaced(
        "proposal", pdf=dataclasses.replace(good_pdf("proposal"), page_count=42))), {},
     [("pdf.pages", "proposal", "", FAIL)],
     ("pdf.pages", "proposal", "", "42 pages, limits 5–40", "42쪽, 한도 5–40쪽")),
    ("under the page minimum", complete(documents=replaced(
        "proposal", pdf=dataclasses.replace(good_pdf("proposal"), page_count=3))), {},
     [("pdf.pages", "proposal", "", FAIL)], None),
    ("over a maximum-only limit", complete(documents=replaced(
        "business_registration",
        pdf=dataclasses.replace(good_pdf("business_registration"), page_count=6))), {},
     [("pdf.pages", "business_registration", "", FAIL)],
     ("pdf.pages", "business_registration", "", "6 pages, limit 5", "6쪽, 한도 5쪽")),
    ("pages off the page size", complete(documents=replaced(
        "proposal", pdf=dataclasses.replace(good_pdf("proposal"), off_size_pages=(3, 4),
                                            off_size_count=2, page_size="612×792 pt"))), {},
     [("pdf.page_size", "proposal", "", FAIL)],
     ("pdf.page_size", "proposal", "", "not A4: pages 3, 4 (page 3: 612×792 pt)",
      "A4 아님: 3, 4쪽 (3쪽: 612×792 pt)")),
    ("required headings missing", complete(documents=replaced(
        "proposal", pdf=dataclasses.replace(
            good_pdf("proposal"),
            headings_missing=DEFINITION.document_kind("proposal").screening.headings[3:]))), {},
     [("pdf.headings", "proposal", "", FAIL)],
     ("pdf.headings", "proposal", "",
      "3 of 5 headings found; missing: Open-source strategy; Ripple effect and contribution plan",
      "목차 5개 중 3개 있음, 없음: 오픈소스 전략; 파급효과 및 기여 계획")),
    ("a signature field that is not signed is a warning", complete(documents=replaced(
        "partner_nda", U, pdf=PdfFacts(unreadable=None, page_count=3, has_signature_field=True))),
     {}, [("pdf.signature", "partner_nda", U, WARNING)],
     ("pdf.signature", "partner_nda", U, "signature field present, not signed",
      "서명란 있음, 서명 없음")),
    ("no signature field fails", complete(documents=replaced(
        "letter_of_commitment", U, pdf=PdfFacts(unreadable=None, page_count=1))), {},
     [("pdf.signature", "letter_of_commitment", U, FAIL)], None),
    ("an xlsx budget plan passes presence only",
     complete(documents=replaced("budget_plan", media_type=XLSX)), {}, [], None),
    ("no university member",
     complete(members=[LEAD, INSTITUTE], documents=without("letter_of_commitment", U)), {},
     [("consortium.universities", "", "", FAIL), ("consortium.partner_documents",
                                                  "partner_nda", U, WARNING)],
     ("consortium.universities", "", "", "0 universities, at least 1", "대학 0곳, 최소 1곳")),
    ("too many members", complete(),
     {"consortium": ConsortiumRules(min_universities=1, max_members=2)},
     [("consortium.members", "", "", FAIL)],
     ("consortium.members", "", "", "3 entries, at most 2", "3곳, 최대 2곳")),
    ("a partner's document filed for an entry no longer in the list",
     complete(documents=[*complete().documents,
                         version("partner_nda", str(uuid.UUID(int=999)))]), {},
     [("consortium.partner_documents", "partner_nda", str(uuid.UUID(int=999)), WARNING)],
     ("consortium.partner_documents", "partner_nda", str(uuid.UUID(int=999)),
      f"entry 00000000 is not in the partner list (partner 1 = {U[:8]}, partner 2 = {INST[:8]})",
      f"항목 00000000은(는) 참여기관 목록에 없음 (참여기관 1 = {U[:8]}, 참여기관 2 = {INST[:8]})")),
    ("no resource request", complete(has_resources=False), {},
     [("resources.complete", "", "", FAIL)], None),
    ("a resource request out of range",
     complete(resource_problems=[Problem("gpu_count"), Problem("gpu_count"),
                                 Problem("talent_headcount")]), {},
     [("resources.in_range", "", "", FAIL)],
     ("resources.in_range", "", "",
      "outside the allowed range: GPU count (0–2,048), talent support headcount (0–200)",
      "허용 범위 밖: GPU 수량 (0–2,048), 인재 지원 인원 (0–200)")),
    ("a programme without a resource form checks no request",
     complete(has_resources=False), {"resources": None}, [], None),
]


@pytest.mark.parametrize(("facts", "changes", "expected", "evidence"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_checks_table(facts, changes, expected, evidence):
    definition = dataclasses.replace(DEFINITION, **changes)
    findings = evaluate(definition, facts)
    assert sorted(not_passing(findings)) == sorted(expected)
    if evidence is not None:
        check_id, kind, slot, english, korean = evidence
        found = one(findings, check_id, kind, slot)
        assert found.evidence("en") == english
        assert found.evidence("ko") == korean
    for finding in findings:  # every finding's texts fill without a missing value
        assert finding.message("en") and finding.message("ko-KR")
        assert finding.title("en") and finding.evidence()


def test_a_complete_submission_lists_every_check_in_order():
    findings = evaluate(DEFINITION, complete())
    assert overall(findings) is PASS
    proposal = [f.check_id for f in findings if f.kind == "proposal"]
    assert proposal == ["document.present", "document.on_time", "document.size", "pdf.readable",
                        "pdf.not_encrypted", "pdf.pages", "pdf.page_size", "pdf.headings",
                        "pdf.active_content"]
    letters = [f.slot for f in findings
               if f.kind == "letter_of_commitment" and f.check_id == "document.present"]
    assert letters == [U, INST]  # partner-list order, the lead has none
    assert [f.check_id for f in findings if not f.kind] == [
        "consortium.universities", "consortium.members", "consortium.partner_documents",
        "resources.complete", "resources.in_range"]
    assert {f.check_id for f in findings} == set(CATALOGUE)


def test_pdf_checks_stop_at_an_unreadable_or_encrypted_file():
    broken = evaluate(DEFINITION, complete(documents=replaced(
        "proposal", pdf=PdfFacts(unreadable="timed out after 30 s"))))
    assert [f.check_id for f in broken if f.kind == "proposal"] == [
        "document.present", "document.on_time", "document.size", "pdf.readable"]
    locked = evaluate(DEFINITION, complete(documents=replaced(
        "proposal", pdf=PdfFacts(unreadable=None, encrypted=True))))
    assert [f.check_id for f in locked if f.kind == "proposal"][-2:] == [
        "pdf.readable", "pdf.not_encrypted"]


def test_messages_are_korean_or_english_and_name_the_partner_by_position():
    findings = evaluate(DEFINITION, complete(documents=without("partner_nda", INST)))
    missing = one(findings, "document.present", "partner_nda", INST)
    assert missing.message("en") == ("Non-disclosure agreement between lead and partner "
                                     "(partner 2) is missing.")
    assert missing.message("ko") == ("비밀유지계약서(주관기관-참여기관) (참여기관 2): "
                                     "제출되지 않았습니다.")
    pages = one(evaluate(DEFINITION, complete(documents=replaced(
        "proposal", pdf=dataclasses.replace(good_pdf("proposal"), page_count=42)))),
        "pdf.pages", "proposal")
    assert pages.message("en") == "Project proposal has 42 pages, more than the limit of 40."
    assert pages.message("ko") == "사업계획서: 42쪽으로 한도 40쪽을 넘습니다."


def test_values_are_json_and_round_trip():
    for finding in evaluate(DEFINITION, complete(documents=without("proposal"))):
        values = json.loads(finding.values_json())
        again = Finding(finding.check_id, finding.result, finding.kind, finding.slot,
                        finding.document_id, finding.version_id, values)
        assert again.message("ko") == finding.message("ko")
        assert again.evidence("en") == finding.evidence("en")


def test_every_case_fills_in_both_languages_from_its_placeholders():
    import re
    for check in CATALOGUE.values():
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", check.id)
        for case in check.cases.values():
            for english, korean in ((case.message_en, case.message_ko),
                                    (case.evidence_en, case.evidence_ko)):
                assert set(re.findall(r"\{(\w+)\}", english)) == set(
                    re.findall(r"\{(\w+)\}", korean)), (check.id, english)
                assert re.search(r"[가-힣]", korean), korean
