"""The login gate, security headers and error responses, checked across the whole URL map."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_from, sign_in
from vault.identity.models import Role
from vault.web.security import PUBLIC_ENDPOINTS

EXPECTED_PUBLIC = {
    "static", "auth.login", "auth.second_factor", "auth.enrol", "auth.skip_enrolment",
    "auth.cancel", "i18n.set_language", "api.health", "api.openapi", "health.healthz",
}


def _concrete_paths(app):
    """Every rule with its URL variables filled with a plausible value."""
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        yield rule.endpoint, path, methods


def test_public_allowlist_is_exactly_the_sign_in_flow_and_health():
    assert set(PUBLIC_ENDPOINTS) == EXPECTED_PUBLIC


def test_every_non_public_route_needs_a_signed_in_user(app, client):
    checked = 0
    for endpoint, path, methods in _concrete_paths(app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        for method in methods:
            response = client.open(path, method=method)
            checked += 1
            if path.startswith("/api/"):
                assert response.status_code == 401, (method, path)
                assert response.is_json and response.json["error"] == "unauthenticated"
            elif method == "GET":
                assert response.status_code == 302, (method, path)
                assert response.location.startswith("/login"), (method, path)
            else:
                # Unsafe methods without a session: refused before the handler runs (the CSRF
                # check or the gate); never a 2xx.
                assert response.status_code in (302, 400), (method, path)
    assert checked >= 8


def test_unknown_paths_reveal_nothing_before_sign_in(client):
    assert client.get("/no/such/page").location == "/login"


def test_unknown_paths_are_404_after_sign_in(client, make_user):
    sign_in(client, make_user(Role.APPLICANT))
    response = client.get("/no/such/page")
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/login", "/api/v1/health", "/healthz", "/static/vault.css"])
def test_every_response_carries_security_headers(client, path):
    response = client.get(path)
    response.close()  # static files are streamed from an open file
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_pages_are_not_cached(client, make_user):
    sign_in(client, make_user(Role.APPLICANT))
    for path in ("/", "/account/", "/login"):
        assert client.get(path).headers["Cache-Control"] == "no-store"


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    assert "Strict-Transport-Security" in client.get("/login", base_url="https://localhost").headers


def test_api_reports_the_signed_in_user(client, make_user):
    account = make_user(Role.APPLICANT)
    sign_in(client, account)
    me = client.get("/api/v1/me").json
    assert me["email"] == account.email and me["role"] == "applicant" and me["mfa"] is False


def test_api_errors_are_json(client, make_user):
    sign_in(client, make_user(Role.APPLICANT))
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_csrf_failure_is_a_clear_400(client, make_user):
    sign_in(client, make_user(Role.APPLICANT))
    response = client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200


def test_healthz_checks_the_database(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_language_switch_needs_csrf(client):
    assert client.post("/language", data={"lang": "en"}).status_code == 400
    token = csrf_from(client)
    assert client.post("/language", data={"lang": "xx", "csrf_token": token}).status_code == 400
