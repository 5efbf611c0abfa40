"""NDA endpoints of the JSON API (``/api/v1/nda``), registered on the API blueprint."""

from __future__ import annotations

from typing import Any

from vault.web.api import bp  # noqa: F401 - routes below are registered on the API blueprint

#: This module's part of the OpenAPI document (merged by ``vault.web.openapi``).
OPENAPI_PATHS: dict[str, Any] = {}
