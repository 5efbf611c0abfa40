"""gunicorn's settings for serving the vault:
``gunicorn -c python:vault.web.gunicorn_config wsgi:app``.

Options given on the command line override these. gthread workers keep large uploads from being
cut by gunicorn's worker timeout (a sync worker is killed after ``timeout`` seconds of one
request).
"""

from __future__ import annotations

from gunicorn.http import wsgi as _gunicorn_http

worker_class = "gthread"
threads = 4
workers = 2
bind = "127.0.0.1:5000"


def _without_server(headers: list[str]) -> list[str]:
    """The status line and default headers without ``Server``."""
    return [line for line in headers if not line.lower().startswith("server:")]


def _hide_server_header() -> None:
    """Stop gunicorn from naming itself in a ``Server`` header on every response.

    Naming the software tells a prober which exploits to try and gains a user nothing; gunicorn
    has no setting for it, so its response's default headers are filtered here (the master
    loads this file before it forks, so every worker inherits it). ``tests/test_served.py``
    checks the headers of the real server, so an upgrade that bypasses this is caught.
    """
    original = _gunicorn_http.Response.default_headers
    if getattr(original, "vault_hides_server", False):
        return

    def default_headers(self: _gunicorn_http.Response) -> list[str]:
        return _without_server(original(self))

    default_headers.vault_hides_server = True  # type: ignore[attr-defined]
    _gunicorn_http.Response.default_headers = default_headers  # type: ignore[method-assign]


_hide_server_header()
