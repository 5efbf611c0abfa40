"""Programme definitions as officers (and other signed-in roles) see them."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from vault.access import Action, authorize
from vault.programmes.service import ProgrammeService
from vault.web.context import actor, db, runtime

bp = Blueprint("programmes", __name__, url_prefix="/programmes")


@bp.get("/")
def index() -> str:
    """Every programme with its deadline and current stage."""
    authorize(actor(), Action.PROGRAMME_VIEW)
    return render_template("programmes/index.html", programmes=ProgrammeService(db()).list())


@bp.get("/<code>")
def show(code: str) -> str:
    """One programme's definition: deadlines, document kinds and stages."""
    authorize(actor(), Action.PROGRAMME_VIEW)
    programme = ProgrammeService(db()).by_code(code)
    definition = runtime().definitions.get(code)
    if programme is None or definition is None:
        abort(404)
    return render_template(
        "programmes/show.html", programme=programme, definition=definition,
        now=runtime().clock(),
    )
