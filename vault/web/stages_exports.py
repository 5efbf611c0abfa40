"""Downloads of the stage rounds: a component's CSV template and a confirmed ranking as CSV or
JSON. Every one is an attachment that browsers never sniff; exports are recorded by the
service (``stage:exported``, with the snapshot's SHA-256).
"""

from __future__ import annotations

import json

from flask import Response

from vault.display import KST
from vault.policy.actions import Action
from vault.programmes.definition import Stage
from vault.programmes.models import Programme
from vault.spreadsheets import rows_csv
from vault.web.context import actor, runtime
from vault.web.loaders import load_round
from vault.web.stages import bp, imports_service, rounds_service


@bp.get("/stages/<code>/<stage_id>/imports/<component_id>/template.csv")
def import_template(code: str, stage_id: str, component_id: str) -> Response:
    """The CSV to fill in: one row per submission of the stage, the score empty."""
    programme, _definition, stage = load_round(code, stage_id, Action.STAGE_IMPORT)
    text = imports_service().template(programme, stage.id, component_id)
    return attachment(text.encode("utf-8"), "text/csv; charset=utf-8",
                      f"{programme.code}-{stage.id}-{component_id[:64]}.csv")


# -- exports ----------------------------------------------------------------------------------

def attachment(body: bytes, content_type: str, filename: str) -> Response:
    """A download: an attachment the browser never sniffs or renders."""
    return Response(body, content_type=content_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff"})


def export_rows(code: str, stage_id: str, fmt: str
                ) -> tuple[Programme, Stage, list[dict[str, str]]]:
    """The confirmed round's flat rows (the service records the export)."""
    programme, _definition, stage = load_round(code, stage_id, Action.STAGE_EXPORT)
    return programme, stage, rounds_service().export(programme, stage.id, actor(), format=fmt)


def _day() -> str:
    return runtime().clock().astimezone(KST).date().isoformat()


@bp.get("/stages/<code>/<stage_id>/export.csv")
def export_csv(code: str, stage_id: str) -> Response:
    """The confirmed ranking as CSV for a spreadsheet (cells never evaluated as formulas)."""
    programme, stage, rows = export_rows(code, stage_id, "csv")
    return attachment(rows_csv(rows).encode("utf-8"), "text/csv; charset=utf-8",
                      f"{programme.code}-{stage.id}-{_day()}.csv")


@bp.get("/stages/<code>/<stage_id>/export.json")
def export_json(code: str, stage_id: str) -> Response:
    """The confirmed ranking as JSON."""
    programme, stage, rows = export_rows(code, stage_id, "json")
    body = json.dumps({"programme": programme.code, "stage": stage.id, "rows": rows},
                      ensure_ascii=False, default=str, indent=1)
    return attachment(body.encode("utf-8"), "application/json",
                      f"{programme.code}-{stage.id}-{_day()}.json")
