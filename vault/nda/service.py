"""The programme NDA: published versions, reviewers' acceptances and the officers' report.

A version is the SHA-256 of the NDA text (``NdaTerms.sha256``): a changed text is a new version
and every reviewer must accept again before the policies let them read anything. The typed full
name is the signature; it is stored with the time, the client address and the user agent.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.display import iso_kst
from vault.identity.models import Role, User
from vault.nda.errors import NameMismatch, NdaChanged, NdaClosed, NoNda
from vault.nda.models import NdaAcceptance, NdaVersion
from vault.policy.actions import Actor
from vault.programmes.definition import NdaTerms, ProgrammeDefinition
from vault.programmes.models import Programme
from vault.spreadsheets import spreadsheet_csv

#: How an acceptance arrived.
CHANNELS = ("web", "api")

#: Column limits of ``NdaAcceptance`` (longer values are cut, never refused).
_MAX_TYPED_NAME = 200
_MAX_ADDRESS = 64
_MAX_USER_AGENT = 300

CSV_COLUMNS = ("name", "email", "status", "version", "accepted_at", "expires_at", "typed_name",
               "client_address", "user_agent")


class NdaState(StrEnum):
    """Where a reviewer stands with a programme's NDA."""

    #: Never accepted (or the programme has no NDA).
    NONE = "none"
    #: Accepted the current version; the acceptance still holds.
    CURRENT = "current"
    #: Accepted an older version: the text changed since.
    OUTDATED = "outdated"
    #: Accepted the current version, but the acceptance ran out.
    EXPIRED = "expired"


@dataclass(frozen=True)
class NdaStanding:
    """A reviewer's state and the acceptance it rests on (their latest, if any)."""

    state: NdaState
    acceptance: NdaAcceptance | None = None

    @property
    def valid_until(self) -> datetime | None:
        """Until when the acceptance holds (only for ``CURRENT``)."""
        if self.state is NdaState.CURRENT and self.acceptance is not None:
            return self.acceptance.expires_at
        return None


@dataclass(frozen=True)
class NdaReportRow:
    """One reviewer account in the officers' acceptance report."""

    name: str
    email: str
    state: NdaState
    acceptance: NdaAcceptance | None

    def cells(self) -> list[str]:
        """The row as CSV text cells (``CSV_COLUMNS``)."""
        accepted = self.acceptance
        if accepted is None:
            return [self.name, self.email, self.state.value, "", "", "", "", "", ""]
        return [self.name, self.email, self.state.value, accepted.nda_sha256,
                iso_kst(accepted.accepted_at), iso_kst(accepted.expires_at), accepted.typed_name,
                accepted.client_address, accepted.user_agent]


def normalise_name(name: str) -> str:
    """A name as typed, made comparable: Unicode NFC and single spaces, trimmed.

    NFC matters for Korean: a name typed as decomposed jamo (some macOS input methods) must
    match the same name stored precomposed.
    """
    return " ".join(unicodedata.normalize("NFC", name).split())


def names_match(typed: str, display_name: str) -> bool:
    """Whether a typed signature is the account's name (case-insensitively, after
    ``normalise_name``)."""
    return normalise_name(typed).casefold() == normalise_name(display_name).casefold()


class NdaService:
    """NDA operations on one database session; records its own audit events."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime],
                 audit: AuditLog | None = None, request: RequestInfo | None = None) -> None:
        self.session = session
        self.clock = clock
        self.audit = audit or AuditLog(session, clock=clock)
        self.request = request or RequestInfo()

    # -- versions ---------------------------------------------------------------------------

    def publish(self, programme: Programme, definition: ProgrammeDefinition
                ) -> NdaVersion | None:
        """Record the definition's NDA text as a version of the programme, once; returns the
        version (``None`` when the definition has no NDA). Idempotent."""
        terms = definition.nda
        if terms is None:
            return None
        found = self._version(programme, terms.sha256)
        if found is not None:
            return found
        version = NdaVersion(programme_id=programme.id, sha256=terms.sha256, text=terms.text,
                             published_at=self.clock())
        self.session.add(version)
        try:
            # Two workers publishing the same new text at once: one insert wins, the other
            # reads the winner's row instead of failing the request.
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            found = self._version(programme, terms.sha256)
            assert found is not None
            return found
        return version

    def current(self, programme: Programme, definition: ProgrammeDefinition
                ) -> NdaVersion | None:
        """The version reviewers must accept now (``None`` when the programme has no NDA).

        Published on first use if the definition changed since the last sync, so that every
        accepted hash has its text on record.
        """
        return self.publish(programme, definition)

    def is_published(self, programme: Programme, sha256: str) -> bool:
        """Whether this version of the programme's NDA is on record."""
        return self._version(programme, sha256) is not None

    def _version(self, programme: Programme, sha256: str) -> NdaVersion | None:
        return self.session.scalar(select(NdaVersion).where(
            NdaVersion.programme_id == programme.id, NdaVersion.sha256 == sha256))

    # -- acceptance -------------------------------------------------------------------------

    def accept(self, actor: Actor, programme: Programme, definition: ProgrammeDefinition, *,
               sha256: str, typed_name: str, client_address: str, user_agent: str,
               channel: str) -> NdaAcceptance:
        """Record the reviewer's acceptance of the current NDA version, signed with their typed
        full name; it holds until the programme's ``accepted_until``.

        Raises ``NoNda`` (the programme has none), ``NdaChanged`` (``sha256`` is not the current
        version), ``NdaClosed`` (``accepted_until`` has passed) or ``NameMismatch`` (the typed
        name is not the account's name). Nothing is stored when it raises.
        """
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        terms = definition.nda
        if terms is None:
            raise NoNda("This programme has no NDA to accept.")
        if sha256 != terms.sha256:
            raise NdaChanged("The NDA text changed; read the current version and accept it "
                             "again.")
        now = self.clock()
        if terms.accepted_until <= now:
            raise NdaClosed("The period for accepting this NDA has ended.")
        account = self.session.get(User, actor.user_id) if actor.user_id else None
        if account is None:
            raise ValueError("only an account can accept an NDA")
        if not names_match(typed_name, account.display_name):
            raise NameMismatch("The typed name does not match the name on your account. Type "
                               "your full name as your account page shows it.")
        version = self.current(programme, definition)
        assert version is not None and version.sha256 == terms.sha256
        acceptance = NdaAcceptance(
            user_id=account.id,
            programme_id=programme.id,
            nda_sha256=version.sha256,
            typed_name=normalise_name(typed_name)[:_MAX_TYPED_NAME],
            accepted_at=now,
            expires_at=terms.accepted_until,
            client_address=client_address[:_MAX_ADDRESS],
            user_agent=user_agent[:_MAX_USER_AGENT],
            channel=channel,
        )
        self.session.add(acceptance)
        self.session.flush()
        # Minimal on purpose: who (the actor), which programme and version, how. The signature,
        # address and user agent stay in the acceptance row (the event's request part already
        # carries the address).
        self.audit.record(Tag.NDA_ACCEPTED, actor=actor, request=self.request, target={
            "programme": programme.code, "nda": version.sha256, "account": account.id,
            "channel": channel, "expires": terms.accepted_until.isoformat()})
        return acceptance

    # -- standing and report ----------------------------------------------------------------

    def status(self, user: User, programme: Programme, definition: ProgrammeDefinition
               ) -> NdaStanding:
        """Where the reviewer stands: none, current (valid until …), outdated or expired.

        Decided on the latest acceptance, exactly as the policies decide access.
        """
        latest = self.session.scalars(
            select(NdaAcceptance)
            .where(NdaAcceptance.user_id == user.id, NdaAcceptance.programme_id == programme.id)
            .order_by(NdaAcceptance.accepted_at.desc(), NdaAcceptance.id.desc()).limit(1)
        ).first()
        return self._standing(latest, definition.nda, self.clock())

    @staticmethod
    def _standing(latest: NdaAcceptance | None, terms: NdaTerms | None, now: datetime
                  ) -> NdaStanding:
        if latest is None or terms is None:
            return NdaStanding(NdaState.NONE, latest)
        # A changed text is reported before an expiry: it is what the reviewer must act on
        # (read the new text), and accepting it again fixes both.
        if latest.nda_sha256 != terms.sha256:
            return NdaStanding(NdaState.OUTDATED, latest)
        if latest.expires_at <= now:
            return NdaStanding(NdaState.EXPIRED, latest)
        return NdaStanding(NdaState.CURRENT, latest)

    def report(self, programme: Programme, definition: ProgrammeDefinition
               ) -> list[NdaReportRow]:
        """One row per active reviewer account, by name: their state and latest acceptance."""
        reviewers = self.session.scalars(
            select(User).where(User.role == Role.REVIEWER, User.active.is_(True))
            .order_by(User.display_name, User.email_key)
        ).all()
        latest: dict[object, NdaAcceptance] = {}
        acceptances = self.session.scalars(
            select(NdaAcceptance).where(NdaAcceptance.programme_id == programme.id)
            .order_by(NdaAcceptance.accepted_at)
        )
        for acceptance in acceptances:
            latest[acceptance.user_id] = acceptance  # later rows replace earlier ones
        now = self.clock()
        rows = []
        for reviewer in reviewers:
            standing = self._standing(latest.get(reviewer.id), definition.nda, now)
            rows.append(NdaReportRow(reviewer.display_name, reviewer.email, standing.state,
                                     standing.acceptance))
        return rows

    def report_csv(self, actor: Actor, programme: Programme,
                   definition: ProgrammeDefinition) -> str:
        """The report as CSV text for a spreadsheet (``vault.spreadsheets``), recording the
        export in the audit log. Times are ISO 8601 in KST (+09:00), the programme office's
        time."""
        rows = self.report(programme, definition)
        text = spreadsheet_csv(CSV_COLUMNS, (row.cells() for row in rows))
        self.audit.record(Tag.NDA_REPORT_EXPORTED, actor=actor, request=self.request,
                          target={"programme": programme.code, "rows": len(rows),
                                  "nda": definition.nda.sha256 if definition.nda else ""})
        return text
