"""One applicant's worst-case PDF stalls nobody: its analysis hits a limit once, outside any
transaction and outside the request, the failure is kept, and other users' requests stay fast.

The served test runs the vault as ``make run`` does (gunicorn, two workers, real HTTP) with the
analysis limit lowered to one second so that a 20,000-page PDF hits it quickly; the mechanism is
the real one.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import database_copy
from tests.test_screening_corpus_findings import screening
from tests.test_screening_workflow import upload
from tests.test_served import Served, _serve, demo_vault  # noqa: F401 - a fixture
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.sandbox import Limits
from vault.screening import analysis
from vault.screening.models import PdfAnalysis

#: Pages of the worst-case file: a few seconds of analysis, far below the size limit.
WORST_PAGES = 20_000
#: The slowest request another user may see while the worst-case file is viewed (generous:
#: unloaded they take tens of milliseconds; today's code makes them wait for the analysis).
OTHER_USERS_BOUND = 2.5
#: How long the applicant, the officer and the eight others keep working.
WORK_SECONDS = 10.0


def many_pages(count: int) -> bytes:
    """A valid PDF of ``count`` A4 pages sharing one small text content stream."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
                            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    text = b"BT /F1 12 Tf 72 720 Td (A page of a long appendix) Tj ET"
    objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text))
    kids = []
    for _ in range(count):
        kids.append(b"%d 0 R" % (len(objects) + 1))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>")
    objects[1] = b"<< /Type /Pages /Count %d /Kids [%s] >>" % (count, b" ".join(kids))
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def call(base: str, path: str, token: str | None = None, *, method: str = "GET",
         body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 60) -> tuple[int, bytes, float]:
    """One request on a fresh connection: status, body and seconds taken (599 if it failed)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=timeout)
    sent = {"Accept-Language": "en", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        status, data = response.status, response.read()
    except OSError:
        status, data = 599, b""
    finally:
        connection.close()
    return status, data, time.monotonic() - started


@pytest.fixture
def limited(demo_vault, tmp_path: Path) -> Iterator[Served]:  # noqa: F811 - the fixture
    """The demo vault served with the analysis limit lowered to one second."""
    template, demo_data_dir, printed = demo_vault
    with database_copy(template, tmp_path) as database_url:
        shutil.copytree(demo_data_dir, tmp_path / "instance")
        env = {"PATH": os.environ["PATH"], "VAULT_MODE": "development",
               "VAULT_DATA_DIR": str(tmp_path / "instance"), "VAULT_DATABASE_URL": database_url,
               "VAULT_ANALYSIS_SECONDS": "1"}
        yield from _serve(env, printed, tmp_path / "instance")


def _token(served: Served, email: str) -> str:
    return served.vault("token", "create", "--email", email, "--name", "load").splitlines()[0]


def test_a_worst_case_pdf_viewed_and_read_does_not_stall_eight_other_users(limited):
    base = limited.base
    applicant = _token(limited, "applicant01@demo.example")
    status, data, _ = call(base, "/api/v1/submissions", applicant)
    submission = json.loads(data)["submissions"][0]["id"]
    status, data, _ = call(
        base, f"/api/v1/submissions/{submission}/documents/proposal", applicant, method="PUT",
        body=many_pages(WORST_PAGES),
        headers={"Content-Type": "application/pdf",
                 "Content-Disposition": "attachment; filename=appendix.pdf"})
    assert status == 201, data
    content_url = json.loads(data)["content_url"]
    officer = limited.verified_token("officer@demo.example")
    others = [_token(limited, f"applicant{number:02d}@demo.example") for number in range(2, 10)]

    stop = threading.Event()
    seen: dict[str, list[tuple[str, int, float]]] = {"applicant": [], "officer": [], "others": []}

    def work(who: str, token: str | None, paths: list[str], pause: float) -> None:
        while not stop.is_set():
            for path in paths:
                status, _, took = call(base, path, token)
                seen[who].append((path, status, took))
                time.sleep(pause)

    threads = [
        threading.Thread(target=work, args=(
            "applicant", applicant, [f"/api/v1/submissions/{submission}/checklist"], 0.2)),
        threading.Thread(target=work, args=("officer", officer, [content_url], 0.2)),
        *(threading.Thread(target=work, args=(
            "others", token, ["/api/v1/me", "/api/v1/submissions", "/healthz"], 0.05))
          for token in others),
    ]
    for thread in threads:
        thread.start()
    time.sleep(WORK_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)

    assert seen["others"], "the other users made no request"
    failed = [(path, status) for path, status, _ in seen["others"] if status != 200]
    assert failed == []
    slowest = max(took for _, _, took in seen["others"])
    assert slowest < OTHER_USERS_BOUND, f"another user waited {slowest:.1f} s"
    assert {status for _, status, _ in seen["applicant"]} == {200}
    assert {status for _, status, _ in seen["officer"]} == {200}
    # The analysis hit its limit; the failure is the applicant's finding, kept for every view.
    status, data, took = call(base, f"/api/v1/submissions/{submission}/checklist", applicant)
    readable = [f for f in json.loads(data)["findings"]
                if f["check"] == "pdf.readable" and f["kind"] == "proposal"]
    assert status == 200 and readable[0]["result"] == "fail"
    assert "timed out" in readable[0]["evidence"]
    assert took < OTHER_USERS_BOUND


class _Counting:
    """``run_limited`` that counts its calls (the real one does the work)."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = analysis.run_limited

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


def test_an_analysis_that_hits_its_limit_is_stored_and_not_run_again(
        runtime, make_team, monkeypatch):
    team = make_team("Appendix Team")
    upload(runtime, team, data=many_pages(WORST_PAGES))
    counting = _Counting()
    monkeypatch.setattr(analysis, "run_limited", counting)
    # The wall clock ends it (a CPU limit was always kept; a time-out was not).
    limits = Limits(cpu_seconds=20, memory_bytes=768 * 1024**2, wall_seconds=1.0)
    for _view in range(3):
        with unit_of_work(runtime.sessions) as session:
            findings = screening(runtime, session, limits=limits).precheck(
                session.get(Submission, team.submission_id))
        (readable,) = [f for f in findings
                       if f.check_id == "pdf.readable" and f.kind == "proposal"]
        assert readable.values["case"] == "unreadable"
        assert readable.values["reason_en"].startswith("timed out")
    assert counting.calls == 1
    with unit_of_work(runtime.sessions) as session:
        (stored,) = session.scalars(select(PdfAnalysis)).all()
        assert json.loads(stored.facts)["unreadable"] == readable.values["reason_en"]
