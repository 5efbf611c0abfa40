"""Conflict-of-interest rules shared by the access policies' entity slices and the services:
how far back an affiliation or a sanction counts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.conflicts.models import Sanction
from vault.programmes.definition import ConflictRules, ProgrammeDefinition


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def rules_for(definitions: Mapping[str, ProgrammeDefinition], code: str | None) -> ConflictRules:
    """The programme's conflict rules (the defaults for an unknown programme)."""
    definition = definitions.get(code) if code else None
    return definition.conflicts if definition else ConflictRules()


def recent_sanction(session: Session, user_id: uuid.UUID, rules: ConflictRules,
                    today: date) -> date | None:
    """The latest sanction of the user within the rules' ``sanction_years``, if any: such a
    reviewer is excluded from every consortium."""
    since = years_before(today, rules.sanction_years)
    return session.scalar(select(func.max(Sanction.imposed_on))
                          .where(Sanction.user_id == user_id, Sanction.imposed_on > since))
