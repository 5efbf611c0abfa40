"""The JSON API of screening (registered on the API blueprint)."""

from __future__ import annotations

from typing import Any

#: OpenAPI path items of these endpoints, merged into ``/api/v1/openapi.json``.
OPENAPI_PATHS: dict[str, Any] = {}
