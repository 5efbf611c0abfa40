"""Resumable uploads (tus 1.0 core, creation, termination, expiration) over the JSON API."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.http import http_date

from tests.conftest import audit_events, csrf_from, pdf_bytes, sign_in
from vault.audit.service import Tag
from vault.consortia.models import Consortium
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.documents.models import (
    DocumentVersion,
    Submission,
    SubmissionState,
    UploadSegment,
    UploadSession,
)
from vault.identity.models import Role, User

TUS = {"Tus-Resumable": "1.0.0"}
MARKER = b"PLAINTEXT-MARKER-7f3a9c"


def _token(runtime, account) -> str:
    with unit_of_work(runtime.sessions) as session:
        token, _ = runtime.identity(session).create_token(session.get(User, account.id),
                                                          "test", 30)
    return token


def _auth(token: str) -> dict[str, str]:
    return {**TUS, "Authorization": f"Bearer {token}"}


def _metadata(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}"
                    for key, value in values.items())


def _create(client, token, team, length, *, kind="proposal", filename="proposal.pdf",
            filetype="application/pdf", headers=None):
    meta = _metadata(submission=str(team.submission_id), kind=kind, filename=filename,
                     filetype=filetype)
    return client.post("/api/v1/uploads", headers={
        **_auth(token), "Upload-Length": str(length), "Upload-Metadata": meta,
        **(headers or {})})


class Body:
    """A request body as a client sends it: ``announced`` bytes promised (Content-Length),
    ``data`` actually sent before the connection drops; ``on_first_read`` runs when the server
    starts reading."""

    def __init__(self, data: bytes, announced: int | None = None, on_first_read=None) -> None:
        self._data = io.BytesIO(data)
        self._announced = len(data) if announced is None else announced
        self._hook = on_first_read
        self._at_end = False

    def seek(self, offset: int, whence: int = 0) -> int:
        self._at_end = whence == 2
        return self.tell()

    def tell(self) -> int:
        return self._announced if self._at_end else 0

    def read(self, size: int = -1) -> bytes:
        if self._hook is not None:
            hook, self._hook = self._hook, None
            hook()
        return self._data.read(size)


def _patch(client, token, location, offset, body, *, headers=None, content_length=None,
           on_first_read=None):
    return client.patch(location, input_stream=Body(body, content_length, on_first_read),
                        headers={**_auth(token), "Upload-Offset": str(offset),
                                 "Content-Type": "application/offset+octet-stream",
                                 **(headers or {})})


def _head(client, token, location):
    return client.head(location, headers=_auth(token))


def _count(runtime, model) -> int:
    with unit_of_work(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(model))


def _files(settings) -> list:
    return [p for p in settings.data_dir.rglob("*") if p.is_file()]


def _upload_in_pieces(client, token, location, body, piece):
    for offset in range(0, len(body), piece):
        response = _patch(client, token, location, offset, body[offset:offset + piece])
        assert response.status_code == 204, response.get_data(as_text=True)
        assert response.headers["Upload-Offset"] == str(min(offset + piece, len(body)))
    return response


@pytest.fixture
def team(make_team):
    return make_team("Team Alpha")


@pytest.fixture
def token(runtime, team):
    return _token(runtime, team.applicant)


def _set_submission(runtime, team, *, state=None, stage=None):
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        if state is not None:
            submission.state = state
        if stage is not None:
            submission.stage = stage


# -- protocol -----------------------------------------------------------------------------

def test_options_announces_version_extensions_and_the_largest_size(client, token):
    response = client.options("/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation", "termination", "expiration"}
    assert int(response.headers["Tus-Max-Size"]) == 16384 * 1048576  # the training logs


def test_an_upload_in_pieces_becomes_one_version_with_the_whole_files_sha256(
        client, token, team, runtime):
    body = pdf_bytes(300_000, MARKER)
    created = _create(client, token, team, len(body))
    assert created.status_code == 201
    assert created.headers["Tus-Resumable"] == "1.0.0"
    location = created.headers["Location"]
    assert location.startswith("/api/v1/uploads/")
    assert created.headers["Upload-Expires"] == http_date(runtime.clock() + timedelta(hours=24))
    head = _head(client, token, location)
    assert (head.status_code, head.headers["Upload-Offset"], head.headers["Upload-Length"]) \
        == (200, "0", str(len(body)))
    assert head.headers["Cache-Control"] == "no-store"

    last = _upload_in_pieces(client, token, location, body, 100_000)
    digest = hashlib.sha256(body).hexdigest()
    assert last.headers["Upload-Receipt-Sha256"] == digest
    receipt = client.get(location, headers={"Authorization": f"Bearer {token}"}).json
    assert receipt["state"] == "completed"
    assert receipt["receipt"]["sha256"] == digest
    assert receipt["receipt"]["version_id"] == last.headers["Upload-Receipt-Version-Id"]
    assert receipt["receipt"]["size"] == len(body)
    content = client.get(receipt["receipt"]["content_url"],
                         headers={"Authorization": f"Bearer {token}"})
    assert content.data == body
    assert _count(runtime, DocumentVersion) == 1
    assert _count(runtime, UploadSegment) == 0  # the segments are gone
    assert len(audit_events(runtime, Tag.UPLOAD_CREATED)) == 1
    assert len(audit_events(runtime, Tag.UPLOAD_COMPLETED)) == 1
    uploaded = audit_events(runtime, Tag.DOCUMENT_UPLOADED)
    assert len(uploaded) == 1 and uploaded[0]["target"]["size"] == str(len(body))
    # The finished upload takes no more bytes.
    again = _patch(client, token, location, len(body), b"x")
    assert (again.status_code, again.json["error"]) == (409, "upload_complete")


def test_the_whole_file_in_one_patch_is_accepted(client, token, team):
    body = pdf_bytes(5000)
    location = _create(client, token, team, len(body)).headers["Location"]
    response = _patch(client, token, location, 0, body)
    assert response.status_code == 204
    assert response.headers["Upload-Receipt-Sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("method", ["post", "head", "patch", "delete"])
def test_another_protocol_version_is_refused_with_412(client, token, team, method):
    location = _create(client, token, team, 100).headers["Location"]
    path = "/api/v1/uploads" if method == "post" else location
    response = getattr(client, method)(path, headers={
        "Authorization": f"Bearer {token}", "Tus-Resumable": "0.2.2", "Upload-Length": "10",
        "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"


def test_a_patch_at_the_wrong_offset_is_409_and_stores_nothing(client, token, team, runtime):
    body = pdf_bytes(2000)
    location = _create(client, token, team, len(body)).headers["Location"]
    assert _patch(client, token, location, 0, body[:1000]).status_code == 204
    for offset in (0, 500, 1500):
        response = _patch(client, token, location, offset, body[offset:])
        assert (response.status_code, response.json["error"]) == (409, "offset_mismatch")
    assert _head(client, token, location).headers["Upload-Offset"] == "1000"
    assert _count(runtime, UploadSegment) == 1


def test_patch_bodies_must_be_offset_octet_streams(client, token, team):
    location = _create(client, token, team, 100).headers["Location"]
    response = _patch(client, token, location, 0, pdf_bytes(100),
                      headers={"Content-Type": "application/pdf"})
    assert response.status_code == 415


def test_sizes_over_the_kinds_limit_or_the_uploads_length_are_413(client, token, team, runtime):
    over = 50 * 1048576 + 1  # the proposal's limit is 50 MiB
    response = _create(client, token, team, over)
    assert (response.status_code, response.json["error"]) == (413, "too_large")
    location = _create(client, token, team, 100).headers["Location"]
    response = _patch(client, token, location, 0, pdf_bytes(101))
    assert (response.status_code, response.json["error"]) == (413, "past_upload_length")
    assert _count(runtime, UploadSegment) == 0


def test_creation_checks_what_an_ordinary_upload_checks(client, token, team, runtime):
    assert _create(client, token, team, 0).status_code == 400  # empty
    assert _create(client, token, team, 100, kind="nonsense").status_code == 404
    assert _create(client, token, team, 100, filename="").status_code == 400
    assert _create(client, token, team, 100, filetype="image/png").status_code == 415
    missing = client.post("/api/v1/uploads", headers={**_auth(token), "Upload-Length": "5"})
    assert missing.status_code == 400
    assert _count(runtime, UploadSession) == 0


def test_the_first_bytes_must_be_of_the_kinds_type(client, token, team, runtime, settings):
    location = _create(client, token, team, 2000).headers["Location"]
    response = _patch(client, token, location, 0, b"GIF89a" + b"x" * 994)
    assert response.status_code == 415
    assert _head(client, token, location).headers["Upload-Offset"] == "0"
    assert _count(runtime, UploadSegment) == 0


def test_only_the_uploader_can_see_or_continue_an_upload(app, client, token, team, runtime,
                                                         make_user, make_team):
    location = _create(client, token, team, 1000).headers["Location"]
    colleague = make_user(Role.APPLICANT)
    with unit_of_work(runtime.sessions) as session:
        ConsortiumService(session, cipher=runtime.cipher).add_contact(
            session.get(Consortium, team.consortium_id), session.get(User, colleague.id))
    other = make_team("Team Beta").applicant
    for account in (colleague, other):
        theirs = _token(runtime, account)
        assert _head(client, theirs, location).status_code == 404
        assert _patch(client, theirs, location, 0, pdf_bytes(1000)).status_code == 404
        assert client.delete(location, headers=_auth(theirs)).status_code == 404
        assert client.get(location, headers={"Authorization": f"Bearer {theirs}"}) \
            .status_code == 404
    assert _head(client, token, location).headers["Upload-Offset"] == "0"


def test_browser_sessions_need_the_csrf_header(client, team):
    sign_in(client, team.applicant)
    meta = _metadata(submission=str(team.submission_id), kind="proposal", filename="p.pdf")
    headers = {**TUS, "Upload-Length": "100", "Upload-Metadata": meta}
    assert client.post("/api/v1/uploads", headers=headers).status_code == 400
    csrf = csrf_from(client, "/")
    created = client.post("/api/v1/uploads", headers={**headers, "X-CSRFToken": csrf})
    assert created.status_code == 201
    response = client.patch(created.headers["Location"], data=pdf_bytes(100), headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
        "X-CSRFToken": csrf})
    assert response.status_code == 204


# -- interruptions, concurrency, crypto -------------------------------------------------------

def test_an_upload_cut_off_twice_resumes_to_the_right_file(client, token, team, runtime,
                                                          settings):
    body = pdf_bytes(3 * 1048576 + 123, MARKER)
    location = _create(client, token, team, len(body)).headers["Location"]
    assert _patch(client, token, location, 0, body[:1048576]).status_code == 204
    # The connection drops after 1.5 MiB of a 2 MiB piece: nothing of that piece counts.
    cut = _patch(client, token, location, 1048576, body[1048576:1048576 + 1572864],
                 content_length=2 * 1048576)
    assert (cut.status_code, cut.json["error"]) == (400, "incomplete_body")
    offset = int(_head(client, token, location).headers["Upload-Offset"])
    assert offset == 1048576
    # Again, a few bytes in.
    cut = _patch(client, token, location, offset, body[offset:offset + 10],
                 content_length=len(body) - offset)
    assert cut.status_code == 400
    offset = int(_head(client, token, location).headers["Upload-Offset"])
    assert offset == 1048576
    done = _patch(client, token, location, offset, body[offset:])
    assert done.status_code == 204
    assert done.headers["Upload-Receipt-Sha256"] == hashlib.sha256(body).hexdigest()
    receipt = client.get(location, headers={"Authorization": f"Bearer {token}"}).json["receipt"]
    downloaded = client.get(receipt["content_url"], headers={"Authorization": f"Bearer {token}"})
    assert downloaded.data == body
    assert _count(runtime, UploadSegment) == 0
    # Aborted writes leave no temp files behind either.
    assert not list((settings.data_dir / "blobs" / ".tmp").iterdir())


def test_no_plaintext_byte_is_ever_on_disk(client, token, team, settings):
    body = pdf_bytes(200_000, MARKER * 100)
    location = _create(client, token, team, len(body)).headers["Location"]
    _patch(client, token, location, 0, body[:150_000])
    _patch(client, token, location, 150_000, body[150_000:160_000], content_length=50_000)
    for path in _files(settings):
        assert MARKER not in path.read_bytes(), path
    _patch(client, token, location, 150_000, body[150_000:])
    for path in _files(settings):
        assert MARKER not in path.read_bytes(), path


def test_a_second_patch_while_one_streams_is_409(app, client, token, team, runtime):
    body = pdf_bytes(400_000)
    location = _create(client, token, team, len(body)).headers["Location"]
    seen = {}

    def second_patch() -> None:
        # Another connection, on its own thread, while this request streams its body (and
        # holds no transaction: on SQLite the second request would wait for it otherwise).
        racer = threading.Thread(target=lambda: seen.update(
            second=_patch(app.test_client(), token, location, 0, body[:1000])))
        racer.start()
        racer.join(timeout=60)

    response = _patch(client, token, location, 0, body[:200_000], on_first_read=second_patch)
    assert response.status_code == 204
    assert (seen["second"].status_code, seen["second"].json["error"]) == (409, "upload_busy")
    assert _head(client, token, location).headers["Upload-Offset"] == "200000"
    assert _count(runtime, UploadSegment) == 1


def test_segments_swapped_in_the_store_fail_completion_and_keep_the_upload_resumable(
        client, token, team, runtime):
    body = pdf_bytes(30_000)
    location = _create(client, token, team, len(body)).headers["Location"]
    _upload_in_pieces(client, token, location, body[:20_000], 10_000)
    with unit_of_work(runtime.sessions) as session:
        first, second = session.scalars(select(UploadSegment).order_by(UploadSegment.seq))
        names = first.blob_name, second.blob_name
        first.blob_name, second.blob_name = "0" * 32, "1" * 32
        session.flush()
        first.blob_name, second.blob_name = names[1], names[0]
    response = _patch(client, token, location, 20_000, body[20_000:])
    assert response.status_code == 500
    assert _head(client, token, location).headers["Upload-Offset"] == "20000"
    assert _count(runtime, DocumentVersion) == 0
    assert _count(runtime, UploadSegment) == 2


# -- expiry, termination, windows ---------------------------------------------------------------

def test_expired_uploads_are_410_and_the_purge_removes_them(client, token, team, runtime, clock,
                                                           settings):
    body = pdf_bytes(2000, MARKER)
    location = _create(client, token, team, len(body)).headers["Location"]
    _patch(client, token, location, 0, body[:1000])
    clock.advance(hours=24, seconds=1)
    assert _head(client, token, location).status_code == 410
    assert _patch(client, token, location, 1000, body[1000:]).status_code == 410
    blobs_before = len(_files(settings))
    from vault.documents.resumable import ResumableUploads
    with unit_of_work(runtime.sessions) as session:
        service = ResumableUploads(session, documents=runtime.documents(session),
                                   audit=runtime.audit(session), clock=runtime.clock)
        assert service.purge_expired() == 1
    assert _count(runtime, UploadSession) == 0 and _count(runtime, UploadSegment) == 0
    assert len(_files(settings)) == blobs_before - 1
    assert _head(client, token, location).status_code == 404
    [event] = audit_events(runtime, Tag.UPLOAD_TERMINATED)
    assert event["target"]["reason"] == "expired"


def test_the_purge_command_removes_expired_uploads(client, token, team, runtime, clock):
    from contextlib import contextmanager

    import click
    from click.testing import CliRunner

    from vault.cli_uploads import register

    @contextmanager
    def work():
        with unit_of_work(runtime.sessions) as session:
            yield session

    group = click.Group("vault")
    register(group, lambda: runtime, work, click.ClickException)
    fresh = _create(client, token, team, 1000).headers["Location"]
    clock.advance(hours=12)
    _create(client, token, team, 1000)
    clock.advance(hours=12, seconds=1)
    result = CliRunner().invoke(group, ["uploads", "purge-expired", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert result.output == "Removed 1 expired uploads.\n"
    assert _count(runtime, UploadSession) == 1
    assert _head(client, _token(runtime, team.applicant), fresh).status_code == 404


def test_termination_removes_the_upload_and_its_bytes(client, token, team, runtime, settings):
    location = _create(client, token, team, 2000).headers["Location"]
    _patch(client, token, location, 0, pdf_bytes(1000))
    segments = len(_files(settings))
    response = client.delete(location, headers=_auth(token))
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert _head(client, token, location).status_code == 404
    assert len(_files(settings)) == segments - 1
    assert _count(runtime, UploadSession) == 0
    assert audit_events(runtime, Tag.UPLOAD_TERMINATED)[0]["target"]["reason"] == "terminated"


def test_uploads_stop_when_the_call_closes(client, team, clock, runtime):
    clock.now = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)  # an hour before 18:00 KST
    token = _token(runtime, team.applicant)
    body = pdf_bytes(2000)
    location = _create(client, token, team, len(body)).headers["Location"]
    _patch(client, token, location, 0, body[:1000])
    clock.advance(hours=1)
    response = _patch(client, token, location, 1000, body[1000:])
    assert (response.status_code, response.json["error"]) == (409, "deadline_passed")
    assert _create(client, token, team, 100).status_code == 409
    assert _count(runtime, DocumentVersion) == 0


def test_submitted_applications_take_no_resumable_upload(client, token, team, runtime):
    _set_submission(runtime, team, state=SubmissionState.SUBMITTED)
    response = _create(client, token, team, 100)
    assert (response.status_code, response.json["error"]) == (409, "submission_locked")


def _report(client, token, team, length=4000):
    return _create(client, token, team, length, kind="technical_report",
                   filename="report.pdf")


def test_stage_artifacts_are_accepted_only_in_their_stages_until_artifacts_are_due(
        client, token, team, runtime, clock):
    # During the call: a draft is no eligible submission in a stage.
    response = _report(client, token, team)
    assert (response.status_code, response.json["error"]) == (409, "submission_locked")
    clock.now = datetime(2027, 8, 20, tzinfo=UTC)
    token = _token(runtime, team.applicant)
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="written")
    assert _report(client, token, team).status_code == 409  # a stage without artifacts
    _set_submission(runtime, team, stage="stage_1")
    body = pdf_bytes(4000)
    location = _report(client, token, team).headers["Location"]
    done = _patch(client, token, location, 0, body)
    assert done.status_code == 204
    assert done.headers["Upload-Receipt-Sha256"] == hashlib.sha256(body).hexdigest()
    # Call documents are closed meanwhile.
    assert _create(client, token, team, 100).status_code == 409
    # Until stage_1's artifacts_due, 2027-09-03 18:00 KST.
    clock.now = datetime(2027, 9, 3, 8, 0, tzinfo=UTC)
    location = _report(client, token, team).headers["Location"]
    assert _patch(client, token, location, 0, body[:1000]).status_code == 204
    clock.advance(hours=1)
    response = _patch(client, token, location, 1000, body[1000:])
    assert (response.status_code, response.json["error"]) == (409, "deadline_passed")
    assert _report(client, token, team).status_code == 409


@pytest.mark.parametrize("state", [SubmissionState.WITHDRAWN, SubmissionState.INELIGIBLE,
                                   SubmissionState.SUBMITTED])
def test_stage_artifacts_need_an_eligible_submission(client, team, runtime, clock, state):
    clock.now = datetime(2027, 8, 1, tzinfo=UTC)
    token = _token(runtime, team.applicant)
    _set_submission(runtime, team, state=state, stage="stage_1")
    response = _report(client, token, team)
    assert (response.status_code, response.json["error"]) == (409, "submission_locked")
