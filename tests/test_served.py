"""The vault as ``make run`` serves it: ``vault init --demo``, then gunicorn with two workers on
loopback, driven over real HTTP by a cookie-keeping client."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A demo vault served by gunicorn; yields its base URL and the credentials text."""
    env = {"PATH": os.environ["PATH"], "VAULT_MODE": "development",
           "VAULT_DATA_DIR": str(tmp_path / "instance"), "VAULT_DATABASE_URL": database_url}
    init = subprocess.run([str(BIN / "vault"), "init", "--demo"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert init.returncode == 0, init.stderr
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
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
        yield base, init.stdout
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
