"""What the operator commands share: the request the audit log records for them, and the
programme a command acts on with the operator's access decided (and recorded)."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from vault.audit.service import RequestInfo
from vault.policy.actions import Action, Actor
from vault.policy.errors import AccessDenied
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.runtime import Runtime

#: The audit log's record of where an operator command came from.
CLI_REQUEST = RequestInfo(client="cli")


def operator_programme(runtime: Runtime, session: Session, code: str, action: Action,
                       error: type[click.ClickException]) -> Programme:
    """The programme ``code`` (with a loaded definition), once the policies let the operator
    do ``action`` on it; raises ``error`` with a one-line message otherwise."""
    programme = ProgrammeService(session).by_code(code)
    if programme is None or code not in runtime.definitions:
        raise error(f"No programme {code}. Loaded programmes: 'vault programme list'.")
    try:
        runtime.authorizer(session, request=CLI_REQUEST).authorize(
            Actor.operator(), action, programme, target={"programme": programme.code})
    except AccessDenied:
        raise error(f"The operator may not {action.value} {code}.") from None
    return programme
