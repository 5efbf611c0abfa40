"""Account models: users, their recovery codes, and login throttling state."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.db import Base, UTCDateTime, enum_type, new_id, utcnow


class Role(StrEnum):
    """What an account is for. One role per account keeps duties separated: an administrator
    who also reviews needs two accounts, and every action says in which capacity it was taken."""

    APPLICANT = "applicant"
    REVIEWER = "reviewer"
    OFFICER = "officer"
    AUDITOR = "auditor"
    ADMIN = "admin"

    @property
    def requires_mfa(self) -> bool:
        """Everyone but applicants must use a second factor (applicants may opt in)."""
        return self is not Role.APPLICANT


class User(Base):
    """A person who signs in to the vault."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("session_generation >= 0", name="session_generation_not_negative"),
        CheckConstraint("email_key = lower(email_key)", name="email_key_lowercase"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: The address as the person typed it, for display and mail.
    email: Mapped[str] = mapped_column(String(254))
    #: The case-folded address: unique, so ``Alice@X`` and ``alice@x`` are one account.
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    #: The current employer (affiliation) for the conflict-of-interest rules: the organisation's
    #: id, sealed with the field key (associated data = table, column, row id). Sealed because
    #: a plain link from a person to an organisation joins, through anything that links the
    #: person to a consortium (a conflict, a grant, a refused read in the log), to "this
    #: organisation is one of that consortium's confidential partners". Open it with
    #: ``IdentityService.employer``.
    organization_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    role: Mapped[Role] = mapped_column(enum_type(Role, "user_role"))
    active: Mapped[bool] = mapped_column(default=True)
    #: argon2id PHC string.
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Part of every session; incremented on logout, deactivation and password change so that
    #: every session of the user, on every device, stops working at once.
    session_generation: Mapped[int] = mapped_column(Integer, default=0)
    #: The TOTP seed once enrolment is confirmed, sealed with the field key.
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: A seed shown during enrolment, sealed, until the first code confirms it.
    totp_pending_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The last TOTP time step accepted; a code for the same or an earlier step is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    #: Created by ``vault init --demo``: may skip MFA enrolment while the data dir is in demo mode.
    demo_account: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def mfa_enabled(self) -> bool:
        """Whether a confirmed TOTP seed is on file."""
        return self.totp_secret_sealed is not None

    # The four members below make a User usable as flask-login's user object without the
    # model importing the web framework.
    @property
    def is_authenticated(self) -> bool:
        """Loaded users are authenticated (the loader has checked the session)."""
        return True

    @property
    def is_active(self) -> bool:
        """Deactivated accounts cannot sign in."""
        return self.active

    @property
    def is_anonymous(self) -> bool:
        """Never anonymous."""
        return False

    def get_id(self) -> str:
        """The session's user reference: the id and the session generation it was issued in."""
        return f"{self.id}:{self.session_generation}"

    def __repr__(self) -> str:
        return f"<User {self.email!r} {self.role.value}>"


class RecoveryCode(Base):
    """A one-time code that replaces a TOTP code once, stored as a digest."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    #: SHA-256 of the normalised code; the code itself is shown once and never stored.
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginThrottle(Base):
    """Failed sign-in attempts per account identifier.

    Keyed by a keyed digest of the case-folded e-mail address, whether or not an account exists,
    so that throttling behaves the same for unknown addresses and does not reveal which exist.
    """

    __tablename__ = "login_throttles"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures_not_negative"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A bearer token for scripts. Only its SHA-256 digest is stored; it expires and can be
    revoked, and it acts with its user's role."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    #: What the token is for, chosen by its creator.
    name: Mapped[str] = mapped_column(String(100))
    #: SHA-256 of the token; the token itself is shown once and never stored.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the token, so people can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Created from a session that passed a second factor: the token may do what needs MFA.
    mfa_verified: Mapped[bool] = mapped_column(default=False, server_default=false())

    user: Mapped[User] = relationship(lazy="joined")
