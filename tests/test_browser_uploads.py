"""Resumable uploads in a real browser: Debian's Chromium, driven by Playwright, uploads a stage
artifact through vault/web/static/resumable.js against the vault served over loopback HTTP, loses
one PATCH on the way and resumes where the server says it stands."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from tests.conftest import audit_events
from tests.test_resumable_uploads import _set_submission
from vault.audit.service import Tag
from vault.db import unit_of_work
from vault.documents.models import DocumentVersion, SubmissionState, UploadSession

CHUNK = 512 * 1024
SIZE = 3 * 1024 * 1024 + 12345  # six full PATCHes and a short last one
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def server(app) -> Iterator[str]:
    """The test app (its settable clock and database) served on loopback in a thread."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


def test_a_stage_artifact_upload_survives_a_lost_patch_in_the_browser(
        server, make_team, runtime, clock, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")  # a dev dependency; always installed
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is required (make test installs it)"
    team = make_team("Team Alpha")
    # Eligible, in stage_1, inside the window of its artifacts (due 2027-09-03 18:00 KST).
    clock.now = datetime(2027, 8, 20, tzinfo=UTC)
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="stage_1")
    report = tmp_path / "technical-report.pdf"
    report.write_bytes(b"%PDF-1.7\n" + os.urandom(SIZE - 9))
    digest = hashlib.sha256(report.read_bytes()).hexdigest()

    patches: list[tuple[str, str]] = []  # (Upload-Offset, what became of it)
    heads_after_loss: list[str] = []

    def intercept(route, request):
        if request.method == "PATCH":
            offset = request.headers["upload-offset"]
            # The third PATCH is lost on the network; the client must ask and resend it.
            if len(patches) == 2:
                patches.append((offset, "lost"))
                route.abort("connectionreset")
                return
            patches.append((offset, "sent"))
        elif request.method == "HEAD" and any(fate == "lost" for _, fate in patches):
            heads_after_loss.append(request.url)
        route.continue_()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(locale="en-US")
            page.goto(server + "/login")
            page.fill("#email", team.applicant.email)
            page.fill("#password", team.applicant.password)
            page.click("main button[type=submit]")
            page.wait_for_url(server + "/")
            page.goto(f"{server}/submissions/{team.submission_id}")
            box = page.locator("div.upload[data-kind=technical_report]")
            assert box.get_attribute("data-tus") == "/api/v1/uploads"
            # Small PATCHes, so that a few MiB make several of them.
            box.evaluate(f"b => {{ b.dataset.chunk = '{CHUNK}'; }}")
            page.route("**/api/v1/uploads/**", intercept)
            box.locator("input[type=file]").set_input_files(str(report))
            # The loss is shown while the client waits to ask the server where it stands.
            page.wait_for_function(
                "() => document.querySelector('div.upload[data-kind=technical_report]"
                " .progress-text').textContent.startsWith('Connection lost; retrying…')",
                timeout=10_000)
            page.wait_for_url("**/documents/**", timeout=15_000)
            receipt = page.text_content("main")
        finally:
            browser.close()

    assert "This is your receipt" in receipt
    assert digest in receipt
    offsets = [int(offset) for offset, _ in patches]
    lost = patches.index(next(p for p in patches if p[1] == "lost"))
    # Resumed: after asking where it stands, the lost piece is sent again from the same offset,
    # and the upload goes on to the end in pieces of the page's size.
    assert heads_after_loss
    assert offsets[lost + 1] == offsets[lost] == 2 * CHUNK
    assert offsets == [0, CHUNK, 2 * CHUNK, *range(2 * CHUNK, SIZE, CHUNK)]
    with unit_of_work(runtime.sessions) as session:
        versions = list(session.scalars(select(DocumentVersion)))
        assert [(v.sha256, v.size_bytes) for v in versions] == [(digest, SIZE)]
        # One upload, continued: no second upload was opened.
        assert session.scalar(select(func.count()).select_from(UploadSession)) == 1
    assert len(audit_events(runtime, Tag.UPLOAD_CREATED)) == 1
    assert len(audit_events(runtime, Tag.UPLOAD_COMPLETED)) == 1
