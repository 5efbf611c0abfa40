"""WSGI app for ``bench/store_throughput.py`` only: the vault plus unencrypted baseline routes.

    gunicorn ... bench._plain_app:app     (environment as for ``wsgi:app``, plus BENCH_PLAIN_DIR)

The vault is built exactly as ``wsgi.py`` builds it. A separate tiny Flask app, mounted under
``/bench`` with werkzeug's ``DispatcherMiddleware``, serves the baseline in the same worker
process (so on the same HTTP stack) without touching the vault's login gate:

* ``PUT /bench/plain-upload/<name>`` streams the raw request body to ``BENCH_PLAIN_DIR/<name>``
  in 1 MiB reads, unencrypted, and fsyncs it at the end (the vault's file store fsyncs too);
* ``GET /bench/plain-download/<name>`` is a plain ``send_file`` of that file.

Never deploy this: the baseline routes are unauthenticated by design.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from flask import Flask, Response, abort, jsonify, request, send_file
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from vault.app import create_app
from vault.settings import Settings

#: The same read size as the vault's upload route (``vault.web.documents.READ_SIZE``).
READ_SIZE = 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _path(directory: Path, name: str) -> Path:
    if not _NAME.fullmatch(name) or name.startswith("."):
        abort(404)
    return directory / name


def create_plain_app(directory: Path) -> Flask:
    """The baseline routes, storing under ``directory``."""
    plain = Flask("bench_plain")

    @plain.put("/plain-upload/<name>")
    def plain_upload(name: str) -> tuple[Response, int]:
        path = _path(directory, name)
        size = 0
        with open(path, "wb") as handle:
            while chunk := request.stream.read(READ_SIZE):
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        return jsonify(size=size), 201

    @plain.get("/plain-download/<name>")
    def plain_download(name: str) -> Response:
        path = _path(directory, name)
        if not path.is_file():
            abort(404)
        return send_file(path, mimetype="application/pdf", as_attachment=True,
                         download_name="bench.pdf", max_age=0)

    return plain


def create_bench_app() -> DispatcherMiddleware:
    """The vault at ``/`` and the baseline at ``/bench``, in one WSGI callable."""
    vault_app = create_app(Settings.from_env())
    directory = Path(os.environ["BENCH_PLAIN_DIR"])
    return DispatcherMiddleware(vault_app, {"/bench": create_plain_app(directory)})


app = create_bench_app()
