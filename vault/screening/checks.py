"""The screening checks: a catalogue of stable ids with Korean and English texts, and findings.

Each check has a stable id (``pdf.pages``; API: reports, the checklist and stored findings use
it) and a few *cases*, one per way it can come out, each with a result, a message for the
applicant and an evidence template, in Korean and English, written here next to each other.
A :class:`Finding` stores only the check id, the case and the values its texts are filled from,
so stored findings are shown in the reader's language, and a corrected wording reaches old
findings too.

Values never hold partner names, resource request figures or document text (they are stored
unsealed): a partner is "partner 2" (the position in the partner list) with its entry id, and a
PDF is described by counts, sizes and the programme's own heading texts. A value whose key ends
in ``_en`` or ``_ko`` is shown, without the suffix, in that language only.

The checks themselves are pure functions of the facts (``vault.screening.evaluate``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from vault.programmes.tables import is_korean
from vault.screening.models import CheckResult

PASS, FAIL, WARNING = CheckResult.PASS, CheckResult.FAIL, CheckResult.WARNING


@dataclass(frozen=True)
class Case:
    """One way a check can come out: the result, the applicant's message and the evidence."""

    result: CheckResult
    message_en: str
    message_ko: str
    evidence_en: str
    evidence_ko: str


@dataclass(frozen=True)
class Check:
    """A check of the catalogue: stable id, title and its cases by name."""

    id: str
    title_en: str
    title_ko: str
    cases: Mapping[str, Case]

    def title(self, locale: str) -> str:
        """The check's name in the given locale."""
        return self.title_ko if is_korean(locale) else self.title_en


def _check(id: str, title_en: str, title_ko: str, **cases: tuple[CheckResult, str, str, str, str]
           ) -> Check:
    return Check(id, title_en, title_ko, {name: Case(*texts) for name, texts in cases.items()})


#: Every check by id, in checklist order. The ids are a stable interface: never rename one.
CATALOGUE: dict[str, Check] = {check.id: check for check in (
    _check(
        "document.present", "Required document submitted", "필수 서류 제출",
        present=(PASS, "{document} is submitted.", "{document}: 제출되었습니다.",
                 "version {version}", "제{version}판"),
        missing=(FAIL, "{document} is missing.", "{document}: 제출되지 않았습니다.",
                 "no version uploaded{where}", "올린 판 없음{where}"),
        optional_missing=(PASS, "{document} is optional and was not submitted.",
                          "{document}: 선택 서류이며 제출되지 않았습니다.",
                          "optional, not uploaded", "선택 서류, 올리지 않음"),
    ),
    _check(
        "document.on_time", "Uploaded before the deadline", "마감 전 제출",
        on_time=(PASS, "{document} was uploaded before the deadline.",
                 "{document}: 마감 전에 올렸습니다.",
                 "uploaded {uploaded}, deadline {deadline}", "{uploaded} 올림, 마감 {deadline}"),
        late=(FAIL, "{document} was uploaded after the deadline.",
              "{document}: 마감 뒤에 올렸습니다.",
              "uploaded {uploaded}, deadline {deadline}", "{uploaded} 올림, 마감 {deadline}"),
    ),
    _check(
        "document.size", "Within the size limit", "용량 한도",
        within=(PASS, "{document} is within the size limit.", "{document}: 용량 한도 이내입니다.",
                "{size}, limit {limit}", "{size}, 한도 {limit}"),
        over=(FAIL, "{document} is larger than the size limit.",
              "{document}: 용량 한도를 넘습니다.", "{size}, limit {limit}", "{size}, 한도 {limit}"),
    ),
    _check(
        "pdf.readable", "The PDF opens", "PDF 열람 가능",
        readable=(PASS, "{document} opens as a PDF.", "{document}: PDF로 열립니다.",
                  "opened in strict mode", "엄격 모드로 열림"),
        unreadable=(FAIL, "{document} cannot be read ({reason}). Upload a valid PDF.",
                    "{document}: 읽을 수 없습니다({reason}). 올바른 PDF를 올려 주십시오.",
                    "unreadable: {reason}", "읽을 수 없음: {reason}"),
        pending=(WARNING, "{document} is still being checked; the result appears here when it "
                          "is ready.",
                 "{document}: 아직 점검 중입니다. 결과가 나오면 여기에 표시됩니다.",
                 "analysis pending", "분석 대기 중"),
    ),
    _check(
        "pdf.not_encrypted", "Not encrypted", "암호화 없음",
        clear=(PASS, "{document} is not encrypted.", "{document}: 암호화되어 있지 않습니다.",
               "not encrypted", "암호화 안 됨"),
        encrypted=(FAIL, "{document} is encrypted or password-protected. Upload it without a "
                         "password.",
                   "{document}: 암호화되었거나 암호가 걸려 있습니다. 암호 없이 올려 주십시오.",
                   "encrypted", "암호화됨"),
    ),
    _check(
        "pdf.pages", "Page limits", "쪽수 제한",
        within=(PASS, "{document} has {pages} pages.", "{document}: {pages}쪽입니다.",
                "{pages} pages, {limits}", "{pages}쪽, {limits}"),
        over=(FAIL, "{document} has {pages} pages, more than the limit of {maximum}.",
              "{document}: {pages}쪽으로 한도 {maximum}쪽을 넘습니다.",
              "{pages} pages, {limits}", "{pages}쪽, {limits}"),
        under=(FAIL, "{document} has {pages} pages, fewer than the minimum of {minimum}.",
               "{document}: {pages}쪽으로 최소 {minimum}쪽보다 적습니다.",
               "{pages} pages, {limits}", "{pages}쪽, {limits}"),
    ),
    _check(
        "pdf.page_size", "Page size", "용지 크기",
        matches=(PASS, "Every page of {document} is {size}.", "{document}: 모든 쪽이 {size}입니다.",
                 "{pages} pages, all {size}", "{pages}쪽 모두 {size}"),
        off=(FAIL, "{count} of {pages} pages of {document} are not {size}.",
             "{document}: {pages}쪽 중 {count}쪽이 {size} 크기가 아닙니다.",
             "not {size}: pages {numbers} (page {first}: {found})",
             "{size} 아님: {numbers}쪽 ({first}쪽: {found})"),
    ),
    _check(
        "pdf.headings", "Required headings", "필수 목차",
        found=(PASS, "{document} has every required heading.",
               "{document}: 필수 목차가 모두 있습니다.",
               "{count} of {count} headings found", "목차 {count}개 모두 있음"),
        missing=(FAIL, "{document} lacks required headings: {missing}.",
                 "{document}: 필수 목차가 없습니다: {missing}.",
                 "{found} of {count} headings found; missing: {missing}",
                 "목차 {count}개 중 {found}개 있음, 없음: {missing}"),
    ),
    # A signature field that is present but empty is a warning, not a fail: letters are often
    # signed on paper and scanned, leaving the form's field empty, so an officer judges it.
    # A document with no signature field at all fails.
    _check(
        "pdf.signature", "Signature", "서명",
        signed=(PASS, "{document} is signed.", "{document}: 서명되어 있습니다.",
                "signature field signed", "서명란에 서명됨"),
        unsigned=(WARNING, "{document} has a signature field that is not signed; an officer "
                           "will check the signature.",
                  "{document}: 서명란이 비어 있습니다. 담당자가 서명을 확인합니다.",
                  "signature field present, not signed", "서명란 있음, 서명 없음"),
        no_field=(FAIL, "{document} has no signature field. Upload the signed document.",
                  "{document}: 서명란이 없습니다. 서명한 문서를 올려 주십시오.",
                  "no signature field", "서명란 없음"),
    ),
    # Active content is a warning, not a fail: readers never receive it (their copies are
    # rebuilt without it), but an officer should know the applicant's file carried it.
    _check(
        "pdf.active_content", "No active content", "능동 콘텐츠 없음",
        none=(PASS, "{document} holds no scripts, actions or embedded files.",
              "{document}: 스크립트·동작·내장 파일이 없습니다.",
              "no active content", "능동 콘텐츠 없음"),
        found=(WARNING, "{document} holds active content: {what}. Reviewers and officers "
                        "receive a copy without it; an officer will look at the file.",
               "{document}: 능동 콘텐츠({what})가 들어 있습니다. 심사위원과 담당자에게는 이를 "
               "뺀 사본이 제공되며, 담당자가 파일을 확인합니다.",
               "{what} in {places}", "{places}에서 발견: {what}"),
    ),
    _check(
        "consortium.universities", "University member", "대학 참여",
        enough=(PASS, "The consortium has {count} university or graduate school members.",
                "컨소시엄에 대학·대학원이 {count}곳 참여합니다.",
                "{count} universities, at least {minimum}", "대학 {count}곳, 최소 {minimum}곳"),
        too_few=(FAIL, "The consortium needs at least {minimum} university or graduate school "
                       "members; it has {count}.",
                 "컨소시엄에 대학·대학원이 최소 {minimum}곳 있어야 하나 {count}곳입니다.",
                 "{count} universities, at least {minimum}", "대학 {count}곳, 최소 {minimum}곳"),
    ),
    _check(
        "consortium.members", "Number of members", "참여기관 수",
        within=(PASS, "The partner list has {count} entries.",
                "참여기관 목록에 {count}곳이 있습니다.",
                "{count} entries, at most {maximum}", "{count}곳, 최대 {maximum}곳"),
        too_many=(FAIL, "The partner list has {count} entries, more than the maximum of "
                        "{maximum}.",
                  "참여기관 목록이 {count}곳으로 최대 {maximum}곳을 넘습니다.",
                  "{count} entries, at most {maximum}", "{count}곳, 최대 {maximum}곳"),
    ),
    _check(
        "consortium.partner_documents", "Partner documents match the partner list",
        "참여기관 서류와 목록 일치",
        match=(PASS, "Every partner's document belongs to an entry of the partner list.",
               "참여기관별 서류가 모두 참여기관 목록의 항목에 해당합니다.",
               "partner list: {entries}", "참여기관 목록: {entries}"),
        stray=(WARNING, "{document} is filed for a partner that is no longer in the partner "
                        "list.",
               "{document}: 참여기관 목록에 더 이상 없는 기관 앞으로 제출되어 있습니다.",
               "entry {entry} is not in the partner list ({entries})",
               "항목 {entry}은(는) 참여기관 목록에 없음 ({entries})"),
    ),
    _check(
        "resources.complete", "Resource request filled in", "자원 요청서 작성",
        complete=(PASS, "The resource request is filled in.", "자원 요청서를 작성했습니다.",
                  "filled in", "작성됨"),
        missing=(FAIL, "The resource request is not filled in.",
                 "자원 요청서를 작성하지 않았습니다.",
                 "no resource request", "자원 요청서 없음"),
    ),
    _check(
        "resources.in_range", "Resource request within the ranges", "자원 요청 허용 범위",
        within=(PASS, "The resource request is within the programme's ranges.",
                "자원 요청이 사업의 허용 범위 안에 있습니다.",
                "every field within its range", "모든 항목이 범위 안"),
        outside=(FAIL, "The resource request is outside the programme's ranges: {fields}.",
                 "자원 요청이 허용 범위를 벗어났습니다: {fields}.",
                 "outside the allowed range: {fields}", "허용 범위 밖: {fields}"),
    ),
)}


@dataclass(frozen=True)
class Finding:
    """One check's result for a submission (and one document, where it is about one)."""

    check_id: str
    result: CheckResult
    #: The document kind ("" when the finding is about the submission as a whole).
    kind: str
    #: The partner-list entry id for per-partner documents, else "".
    slot: str
    document_id: uuid.UUID | None
    version_id: uuid.UUID | None
    #: What the texts are filled from; ``case`` names the catalogue case.
    values: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, check_id: str, case: str, *, kind: str = "", slot: str = "",
           document_id: uuid.UUID | None = None, version_id: uuid.UUID | None = None,
           **values: object) -> Finding:
        """A finding of a catalogue case (its result comes from the catalogue)."""
        result = CATALOGUE[check_id].cases[case].result
        return cls(check_id, result, kind, slot, document_id, version_id,
                   {"case": case, **values})

    @property
    def check(self) -> Check:
        """The catalogue entry (KeyError for an id the catalogue no longer has)."""
        return CATALOGUE[self.check_id]

    @property
    def case(self) -> Case:
        """The catalogue case the finding came out as."""
        return self.check.cases[str(self.values.get("case", ""))]

    def title(self, locale: str) -> str:
        """The check's name in the given locale."""
        return self.check.title(locale)

    def message(self, locale: str) -> str:
        """The message for the applicant, in Korean or English."""
        korean = is_korean(locale)
        return _fill(self.case.message_ko if korean else self.case.message_en, self.values,
                     korean)

    def evidence(self, locale: str = "en") -> str:
        """What the check found, e.g. "42 pages, limit 40" (Korean or English)."""
        korean = is_korean(locale)
        return _fill(self.case.evidence_ko if korean else self.case.evidence_en, self.values,
                     korean)

    def values_json(self) -> str:
        """The values as stored in ``screening_findings.values`` (compact, sorted JSON)."""
        return json.dumps(dict(self.values), ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"))


def _fill(template: str, values: Mapping[str, object], korean: bool) -> str:
    """``template`` with its placeholders filled, ``x_ko``/``x_en`` values as ``x``."""
    wanted, other = ("_ko", "_en") if korean else ("_en", "_ko")
    filled: dict[str, object] = {}
    for key, value in values.items():
        if key.endswith(other):
            continue
        filled[key.removesuffix(wanted)] = f"{value:,}" if isinstance(value, int) and not \
            isinstance(value, bool) and key not in _PLAIN_NUMBERS else value
    return template.format_map(filled)


#: Values shown as they are (numbers that are names, not amounts).
_PLAIN_NUMBERS = frozenset({"version", "first"})


def overall(findings: list[Finding]) -> CheckResult | None:
    """The worst result of the findings (fail, then warning, then pass); None if there are none."""
    results = {finding.result for finding in findings}
    for result in (FAIL, WARNING, PASS):
        if result in results:
            return result
    return None
