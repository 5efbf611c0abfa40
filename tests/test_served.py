"""The vault as ``make run`` serves it: ``vault init --demo``, then gunicorn with two workers on
loopback, driven over real HTTP by a cookie-keeping client."""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PG_URL, database_copy
from vault.db import unit_of_work
from vault.runtime import Runtime
from vault.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Just enough of a browser: cookies, forms with CSRF tokens, no automatic redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())

    def request(self, path: str, data: dict[str, str] | None = None) -> tuple[int, dict, str]:
        """GET (or POST ``data``); returns status, headers and body."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body,  # noqa: S310 - loopback
                                         headers={"Accept-Language": "en"})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def submit(self, form_path: str, action: str, fields: dict[str, str]) -> tuple[int, dict, str]:
        """Load the page with the form, then post it with its CSRF token."""
        _, _, page = self.request(form_path)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        return self.request(action, {**fields, "csrf_token": token})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """A running demo vault."""

    base: str
    credentials: str
    env: dict[str, str]
    data_dir: Path
    server: subprocess.Popen

    def __iter__(self) -> Iterator[str]:  # ``base, credentials = served``
        return iter((self.base, self.credentials))

    def vault(self, *args: str) -> str:
        """Run the ``vault`` command against this vault; returns its standard output."""
        result = subprocess.run([str(BIN / "vault"), *args], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60, check=True)
        return result.stdout

    def verified_token(self, email: str) -> str:
        """A token of ``email`` as the account page makes it after a sign-in that passed a
        second factor (``vault token create`` makes tokens without one: an officer's cannot
        read documents)."""
        runtime = Runtime.build(Settings.from_env(self.env))
        try:
            with unit_of_work(runtime.sessions) as session:
                identity = runtime.identity(session)
                token, _ = identity.create_token(identity.find_by_email(email), "test", 1,
                                                 mfa_verified=True)
        finally:
            runtime.close()
        return token

    def workers(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.server.pid:
                children.append(int(stat.parent.name))
        return children


@pytest.fixture(scope="module")
def demo_vault(template_database: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[str, Path, str]]:
    """``vault init --demo`` run once for the module: its database (to copy as a template), its
    data directory (to copy) and what it printed."""
    directory = tmp_path_factory.mktemp("demo")
    with database_copy(template_database, directory, template=True) as url:
        env = {"PATH": os.environ["PATH"], "VAULT_MODE": "development",
               "VAULT_DATA_DIR": str(directory / "instance"), "VAULT_DATABASE_URL": url}
        init = subprocess.run([str(BIN / "vault"), "init", "--demo"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
        assert init.returncode == 0, init.stderr
        template = url if PG_URL else str(directory / "vault.db")
        yield template, directory / "instance", init.stdout


@pytest.fixture
def served(demo_vault: tuple[str, Path, str], tmp_path: Path) -> Iterator[Served]:
    """A copy of the demo vault served by gunicorn; yields its base URL and the credentials
    text."""
    template, demo_data_dir, printed = demo_vault
    with database_copy(template, tmp_path) as database_url:
        shutil.copytree(demo_data_dir, tmp_path / "instance")
        env = {"PATH": os.environ["PATH"], "VAULT_MODE": "development",
               "VAULT_DATA_DIR": str(tmp_path / "instance"), "VAULT_DATABASE_URL": database_url}
        yield from _serve(env, printed, tmp_path / "instance")


def _serve(env: dict[str, str], printed: str, data_dir: Path) -> Iterator[Served]:
    """gunicorn with two workers on a free loopback port, until the generator is closed."""
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "python:vault.web.gunicorn_config", "--workers", "2",
         "--threads", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("gunicorn did not start: " + server.stderr.read().decode()[-2000:])
                time.sleep(0.2)
        yield Served(base, printed, env, data_dir, server)
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()


def _password(credentials: str, email: str) -> str:
    return re.search(re.escape(email) + r"\s+(\S+)", credentials).group(1)


def test_demo_applicant_signs_in_to_the_served_vault(served):
    base, credentials = served
    browser = Browser(base)
    status, headers, _ = browser.request("/")
    assert status == 302 and headers["Location"].startswith("/login")
    email = "applicant01@demo.example"
    status, headers, _ = browser.submit("/login", "/login", {
        "email": email, "password": _password(credentials, email)})
    assert status == 302 and headers["Location"] == "/"
    # Two workers, one session: several requests land on both and all are signed in.
    for _ in range(6):
        status, _, page = browser.request("/")
        assert status == 200 and "Hanbit Foundation Model Team" in page
    assert browser.request("/api/v1/me")[2].count(email) == 1


def test_demo_officer_enrols_or_skips_in_the_served_demo(served):
    base, credentials = served
    browser = Browser(base)
    email = "officer@demo.example"
    status, headers, _ = browser.submit("/login", "/login", {
        "email": email, "password": _password(credentials, email)})
    assert headers["Location"] == "/login/enrol"
    status, _, page = browser.request("/login/enrol")
    assert "<svg" in page and "Skip for now (demo only)" in page
    status, _, _ = browser.submit("/login/enrol", "/login/enrol/skip", {})
    assert status == 302
    status, _, page = browser.request("/")
    assert status == 200 and "Programme overview" in page and "Demo mode" in page


def test_unauthenticated_api_calls_get_401_from_the_served_vault(served):
    base, _ = served
    status, _headers, body = Browser(base).request("/api/v1/me")
    assert status == 401 and '"unauthenticated"' in body


def test_no_response_of_the_served_vault_names_the_server_software(served):
    base, _ = served
    browser = Browser(base)
    for path in ("/healthz", "/login", "/", "/api/v1/me", "/no-such-page",
                 "/static/vault.css"):
        _status, headers, _body = browser.request(path)
        names = {name.lower() for name in headers}
        assert "server" not in names and "x-powered-by" not in names, (path, headers)


# -- the encrypted store over real HTTP ------------------------------------------------------

def _token_and_submission(served: Served) -> tuple[str, str]:
    token = served.vault("token", "create", "--email", "applicant01@demo.example",
                         "--name", "test").splitlines()[0]
    connection = http.client.HTTPConnection(served.base.removeprefix("http://"), timeout=30)
    connection.request("GET", "/api/v1/submissions", headers={"Authorization": f"Bearer {token}"})
    submissions = json.loads(connection.getresponse().read())["submissions"]
    connection.close()
    return token, submissions[0]["id"]


def _put(served: Served, token: str, submission: str, body: bytes,
         kind: str = "proposal") -> dict:
    connection = http.client.HTTPConnection(served.base.removeprefix("http://"), timeout=60)
    connection.request("PUT", f"/api/v1/submissions/{submission}/documents/{kind}", body=body,
                       headers={"Authorization": f"Bearer {token}",
                                "Content-Type": "application/pdf",
                                "Content-Disposition": "attachment; filename=p.pdf"})
    response = connection.getresponse()
    data = json.loads(response.read())
    connection.close()
    assert response.status == 201, data
    return data


def _blob_files(served: Served) -> set[Path]:
    """The stored blobs (the demo's own documents among them)."""
    root = served.data_dir / "blobs"
    return {p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts}


def _version_count(served: Served) -> int:
    """How many document versions the database holds (the demo's own among them)."""
    count = subprocess.run(
        [sys.executable, "-c", (
            "from sqlalchemy import func, select\n"
            "from vault.documents.models import DocumentVersion\n"
            "from vault.runtime import Runtime\n"
            "from vault.settings import Settings\n"
            "with Runtime.build(Settings.from_env()).sessions() as s:\n"
            "    print(s.scalar(select(func.count()).select_from(DocumentVersion)))\n"
        )], env={**os.environ, **served.env}, cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=True)
    return int(count.stdout)


def _download(served: Served, token: str, url: str) -> tuple[int, int | None, bytes, bool]:
    """Status, announced length, the bytes that arrived, and whether the body was complete."""
    connection = http.client.HTTPConnection(served.base.removeprefix("http://"), timeout=60)
    connection.request("GET", url, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    announced = response.getheader("Content-Length")
    try:
        body = response.read()
        complete = True
    except http.client.IncompleteRead as partial:
        body, complete = partial.partial, False
    connection.close()
    return response.status, int(announced) if announced else None, body, complete


@pytest.mark.parametrize("where", [0.1, 0.75])
def test_a_tampered_blob_never_downloads_as_a_complete_200(served, where):
    token, submission = _token_and_submission(served)
    body = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024)
    demo_blobs = _blob_files(served)
    receipt = _put(served, token, submission, body)
    status, _, received, complete = _download(served, token, receipt["content_url"])
    assert (status, complete, received) == (200, True, body)  # intact before tampering
    (blob,) = _blob_files(served) - demo_blobs
    data = bytearray(blob.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    blob.write_bytes(bytes(data))
    status, announced, received, complete = _download(served, token, receipt["content_url"])
    assert received != body
    assert not (status == 200 and complete and announced == len(received))
    if where < 0.3:
        assert status == 500  # detected before the first byte: a clean error response


def test_a_worker_killed_mid_upload_leaves_no_document_and_no_blob(served):
    token, submission = _token_and_submission(served)
    demo_blobs, demo_versions = _blob_files(served), _version_count(served)
    connection = http.client.HTTPConnection(served.base.removeprefix("http://"), timeout=30)
    connection.putrequest("PUT", f"/api/v1/submissions/{submission}/documents/proposal")
    for name, value in (("Authorization", f"Bearer {token}"),
                        ("Content-Type", "application/pdf"),
                        ("Content-Disposition", "attachment; filename=p.pdf"),
                        ("Content-Length", str(40 * 1024 * 1024))):
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(b"%PDF-1.7\n" + b"x" * (6 * 1024 * 1024))
    time.sleep(1.0)  # let the worker encrypt what arrived
    workers = served.workers()
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    connection.close()
    assert _blob_files(served) == demo_blobs
    assert _version_count(served) == demo_versions


# -- in a real browser ---------------------------------------------------------------------

def test_browser_upload_shows_live_progress_and_lands_on_the_receipt(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")  # a dev dependency; always installed
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is required (make test installs it)"
    base, credentials = served
    document = tmp_path / "proposal.pdf"
    document.write_bytes(b"%PDF-1.7\n" + os.urandom(6 * 1024 * 1024))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(locale="en-US")
            page.goto(base + "/login")
            email = "applicant01@demo.example"
            page.fill("#email", email)
            page.fill("#password", _password(credentials, email))
            page.click("main button[type=submit]")
            page.click("text=Open the submission")
            # Slow the upload down (4 MiB/s) so the progress bar can be watched moving.
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": 0, "downloadThroughput": -1,
                "uploadThroughput": 4 * 1024 * 1024})
            page.set_input_files("div.upload input[type=file] >> nth=0", str(document))
            page.wait_for_function(
                "() => { const b = document.querySelector('div.upload progress');"
                " return b && !b.hidden && b.value > 0 && b.value < 100; }", timeout=20_000)
            progress = page.text_content("div.upload .progress-text")
            assert re.search(r"iB / 6\.0 MiB \(\d+%\)", progress), progress
            page.wait_for_url("**/documents/**", timeout=60_000)
            receipt = page.text_content("main")
            assert "This is your receipt" in receipt
            assert hashlib.sha256(document.read_bytes()).hexdigest() in receipt
        finally:
            browser.close()


def test_a_slow_upload_does_not_block_other_requests(served):
    token, submission = _token_and_submission(served)
    total = 12 * 1024 * 1024
    slow = http.client.HTTPConnection(served.base.removeprefix("http://"), timeout=60)
    slow.putrequest("PUT", f"/api/v1/submissions/{submission}/documents/proposal")
    for name, value in (("Authorization", f"Bearer {token}"),
                        ("Content-Type", "application/pdf"),
                        ("Content-Disposition", "attachment; filename=slow.pdf"),
                        ("Content-Length", str(total))):
        slow.putheader(name, value)
    slow.endheaders()
    first = b"%PDF-1.7\n" + b"s" * (2 * 1024 * 1024 - 9)
    slow.send(first)
    time.sleep(0.5)  # the slow upload is now inside its handler, waiting for more body
    # While it waits, other requests, writes included, go through at once (a transaction held
    # open for the whole upload would make them wait for SQLite's lock and fail after 30 s).
    status, _, _, _ = _download(served, token, "/api/v1/me")
    assert status == 200
    quick = _put(served, token, submission, b"%PDF-1.7\nquick", kind="budget_plan")
    assert quick["version"] == 1
    slow.send(b"s" * (total - len(first)))
    response = slow.getresponse()
    receipt = json.loads(response.read())
    slow.close()
    assert response.status == 201 and receipt["size"] == total
