"""Accounts: creation, sign-in with throttling, TOTP enrolment and verification, recovery codes,
password changes and server-side session revocation.

The service only flushes; the caller's unit of work commits. Failed attempts are recorded by
the caller committing even though the attempt failed (see ``vault.web.auth``).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault import crypto
from vault.identity import mfa
from vault.identity.errors import (
    AccountLocked,
    DuplicateEmail,
    InvalidCode,
    InvalidCredentials,
    InvalidEmail,
    InvalidToken,
    UnknownOrganization,
    UnknownUser,
    WeakPassword,
)
from vault.identity.models import ApiToken, LoginThrottle, RecoveryCode, Role, User
from vault.organizations.models import Organization

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
RECOVERY_CODE_COUNT = 10
TOKEN_PREFIX = "vault_"  # noqa: S105 - a public prefix that marks tokens, not a secret
#: The lifetime a token is given when its creator names none (shortened to the maximum).
DEFAULT_TOKEN_DAYS = 30
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many consecutive failures lock an account identifier, and for how long."""

    max_failures: int
    lockout: timedelta


def email_key(email: str) -> str:
    """The case-insensitive identity of an e-mail address."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


@cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("vault.identity").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check_password_rules(password: str, *, email: str = "", display_name: str = "") -> None:
    """Enforce length 12 to 128 and refuse common or personal passwords; raises ``WeakPassword``.

    There are deliberately no composition rules (NIST SP 800-63B, ASVS 5.0).
    """
    length = len(password)
    if length < MIN_PASSWORD_LENGTH:
        raise WeakPassword("Passwords must be at least {limit} characters long.",
                           limit=MIN_PASSWORD_LENGTH)
    if length > MAX_PASSWORD_LENGTH:
        raise WeakPassword("Passwords must be at most {limit} characters long.",
                           limit=MAX_PASSWORD_LENGTH)
    lowered = password.casefold()
    if lowered in _common_passwords() or len(set(lowered)) <= 2:
        raise WeakPassword("This password is too common. Choose another one.")
    personal = {email_key(email), email_key(email).split("@")[0], display_name.casefold()}
    if lowered in {value for value in personal if value}:
        raise WeakPassword("The password must not be your e-mail address or name.")


def seal_employer(cipher: crypto.FieldCipher, user_id: uuid.UUID,
                  organization: Organization | None) -> bytes | None:
    """A person's organisation id sealed for ``users.organization_sealed`` (``None`` for none)."""
    if organization is None:
        return None
    return cipher.seal(User.__tablename__, "organization", user_id, str(organization.id))


def employer_id(cipher: crypto.FieldCipher, user: User) -> uuid.UUID | None:
    """The id of the person's organisation, opened; raises ``DecryptionError`` if altered."""
    if user.organization_sealed is None:
        return None
    return uuid.UUID(cipher.open(User.__tablename__, "organization", user.id,
                                 user.organization_sealed))


class IdentityService:
    """Account operations on one database session."""

    def __init__(
        self,
        session: Session,
        *,
        cipher: crypto.FieldCipher,
        lookup: crypto.LookupKey,
        throttle: ThrottlePolicy,
        clock: Callable[[], datetime],
        token_max_days: int = 90,
    ) -> None:
        self.session = session
        self.cipher = cipher
        self.lookup = lookup
        self.throttle = throttle
        self.clock = clock
        #: The longest lifetime a new API token may have (``VAULT_TOKEN_MAX_DAYS``).
        self.token_max_days = token_max_days

    # -- accounts -------------------------------------------------------------------------

    def create_user(
        self,
        *,
        email: str,
        display_name: str,
        role: Role,
        password: str,
        organization: Organization | None = None,
        demo_account: bool = False,
    ) -> User:
        """Create an account; raises ``InvalidEmail``, ``DuplicateEmail`` or ``WeakPassword``."""
        email = email.strip()
        if not _EMAIL.match(email) or len(email) > 254:
            raise InvalidEmail("{email} is not a valid e-mail address.", email=repr(email))
        display_name = display_name.strip()
        if not display_name or len(display_name) > 200:
            raise InvalidEmail("A display name of 1 to 200 characters is required.")
        key = email_key(email)
        if self.find_by_email(email) is not None:
            raise DuplicateEmail("An account with e-mail {email} already exists.", email=email)
        check_password_rules(password, email=email, display_name=display_name)
        user = User(
            id=uuid.uuid4(),
            email=email,
            email_key=key,
            display_name=display_name,
            role=role,
            password_hash=crypto.hash_password(password),
            password_changed_at=self.clock(),
            demo_account=demo_account,
            session_generation=0,
            active=True,
        )
        user.organization_sealed = seal_employer(self.cipher, user.id, organization)
        self.session.add(user)
        try:
            # A concurrent insert of the same address loses here rather than at commit.
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise DuplicateEmail("An account with e-mail {email} already exists.",
                                 email=email) from None
        return user

    def find_by_email(self, email: str) -> User | None:
        """The account with this address (case-insensitively), if any."""
        return self.session.scalar(select(User).where(User.email_key == email_key(email)))

    def get(self, user_id: uuid.UUID) -> User | None:
        """The account with this id, if any."""
        return self.session.get(User, user_id)

    def list_users(self) -> list[User]:
        """Every account, ordered by role and e-mail address."""
        return list(self.session.scalars(select(User).order_by(User.role, User.email_key)))

    def employer(self, user: User) -> Organization | None:
        """The person's current organisation (opened from its sealed column), if any; raises
        ``DecryptionError`` if the sealed value was altered or moved to another row."""
        organization_id = employer_id(self.cipher, user)
        return self.session.get(Organization, organization_id) if organization_id else None

    def employers(self, users: Iterable[User]) -> dict[uuid.UUID, Organization]:
        """Each person's current organisation (people without one are left out)."""
        ids = {user.id: employer_id(self.cipher, user) for user in users}
        wanted = {i for i in ids.values() if i is not None}
        if not wanted:
            return {}
        found = {org.id: org for org in self.session.scalars(
            select(Organization).where(Organization.id.in_(wanted)))}
        return {user_id: found[org] for user_id, org in ids.items() if org in found}

    def set_employer(self, user: User, organization: Organization | None) -> None:
        """Record the person's current organisation (sealed); flushes."""
        user.organization_sealed = seal_employer(self.cipher, user.id, organization)
        self.session.flush()

    def find_organization(self, name: str) -> Organization:
        """The registered organisation with this name; raises ``UnknownOrganization``."""
        organization = self.session.scalar(select(Organization).where(Organization.name == name))
        if organization is None:
            raise UnknownOrganization("No organisation named {name} is registered.",
                                      name=repr(name))
        return organization

    def deactivate(self, email: str) -> tuple[User, list[ApiToken]]:
        """Deactivate an account and end all its sessions and tokens; returns the account and
        the tokens revoked now. Raises ``UnknownUser``."""
        user = self.find_by_email(email)
        if user is None:
            raise UnknownUser("No account has e-mail {email}.", email=email)
        user.active = False
        return user, self.end_all_sessions(user)

    def end_all_sessions(self, user: User) -> list[ApiToken]:
        """Invalidate every session of the user, on every device, and every API token
        (sign-out everywhere, deactivation, password change, second-factor reset); returns the
        tokens revoked now, for the caller to record."""
        self.session.execute(
            update(User)
            .where(User.id == user.id)
            .values(session_generation=User.session_generation + 1)
        )
        self.session.refresh(user, ["session_generation"])
        # A token is a session that outlives the browser: whatever ends every session of the
        # account ends its tokens too, or a stolen token would survive the owner's remedy.
        return self.revoke_all_tokens(user)

    def change_password(self, user: User, current: str, new: str) -> list[ApiToken]:
        """Replace the password and end every session and token; returns the tokens revoked.
        Raises ``InvalidCredentials``, ``AccountLocked`` or ``WeakPassword``."""
        self.check_not_locked(user.email_key)
        if not crypto.verify_password(user.password_hash, current):
            self.record_failure(user.email_key)
            raise InvalidCredentials("The current password is wrong.")
        check_password_rules(new, email=user.email, display_name=user.display_name)
        user.password_hash = crypto.hash_password(new)
        user.password_changed_at = self.clock()
        return self.end_all_sessions(user)

    def reauthenticate(self, user: User, password: str, code: str) -> None:
        """Confirm that the person at the session still holds the account's credentials: the
        password, and a TOTP code when the account has a second factor (a recovery code is
        not accepted here: it is for a lost device, not for everyday confirmation).

        Failures count toward throttling like a sign-in. Raises ``AccountLocked``,
        ``InvalidCredentials`` or ``InvalidCode``.
        """
        self.check_not_locked(user.email_key)
        if not user.active or not crypto.verify_password(user.password_hash, password):
            self.record_failure(user.email_key)
            raise InvalidCredentials("The password is wrong.")
        if user.mfa_enabled:
            cleaned = code.strip().replace(" ", "")
            if not mfa.looks_like_totp(cleaned):
                self.record_failure(user.email_key)
                raise InvalidCode("Enter the six-digit code from your authenticator app.")
            self.verify_second_factor(user, cleaned)

    def reset_second_factor(self, email: str) -> tuple[User, list[ApiToken]]:
        """The operator's remedy for a lost device and lost recovery codes: forget the TOTP
        seed and the recovery codes, end every session and token; the next sign-in asks for a
        new enrolment (roles that require a second factor). Returns the account and the tokens
        revoked now; raises ``UnknownUser``."""
        user = self.find_by_email(email)
        if user is None:
            raise UnknownUser("No account has e-mail {email}.", email=email)
        user.totp_secret_sealed = None
        user.totp_pending_sealed = None
        user.totp_enabled_at = None
        user.totp_last_step = None
        self.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
        return user, self.end_all_sessions(user)

    # -- sign-in --------------------------------------------------------------------------

    def authenticate(self, email: str, password: str) -> User:
        """Check a password sign-in; raises ``AccountLocked`` or ``InvalidCredentials``.

        Unknown address, wrong password and inactive account are one error with the same cost
        (the password is verified against a dummy hash when there is no account).
        """
        key = email_key(email)
        self.check_not_locked(key)
        user = self.session.scalar(select(User).where(User.email_key == key))
        valid = crypto.verify_password(user.password_hash if user else None, password)
        if not valid or user is None or not user.active:
            self.record_failure(key)
            raise InvalidCredentials("Invalid e-mail address or password.")
        if crypto.password_needs_rehash(user.password_hash):
            user.password_hash = crypto.hash_password(password)
        return user

    def complete_sign_in(self, user: User) -> None:
        """Record a fully authenticated sign-in (all factors passed) and clear the failures."""
        user.last_login_at = self.clock()
        self.session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == self._throttle_key(user.email_key))
            .values(failures=0, locked_until=None)
        )

    def check_not_locked(self, key: str) -> None:
        """Raise ``AccountLocked`` while the identifier is locked out."""
        throttle = self.session.get(LoginThrottle, self._throttle_key(key))
        now = self.clock()
        if throttle is not None and throttle.locked_until and throttle.locked_until > now:
            raise AccountLocked(throttle.locked_until - now)

    def record_failure(self, key: str) -> None:
        """Count a failed attempt for the identifier; lock it after too many in a row."""
        now = self.clock()
        digest = self._throttle_key(key)
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # One atomic upsert, so concurrent failures are all counted.
        statement = insert(LoginThrottle).values(key=digest, failures=1, last_failure_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={"failures": LoginThrottle.failures + 1, "last_failure_at": now},
        )
        self.session.execute(statement)
        self.session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == digest)
            .where(LoginThrottle.failures >= self.throttle.max_failures)
            .values(failures=0, locked_until=now + self.throttle.lockout)
        )
        self.session.expire_all()

    def _throttle_key(self, key: str) -> str:
        return self.lookup.digest("login:" + key)

    # -- TOTP -----------------------------------------------------------------------------

    def begin_totp_enrolment(self, user: User) -> str:
        """A new TOTP seed for the user to scan, kept sealed until confirmed; returns the seed."""
        if user.totp_pending_sealed is not None:
            return self.pending_totp_secret(user)
        secret = mfa.new_secret()
        user.totp_pending_sealed = self.cipher.seal("users", "totp_pending", user.id, secret)
        self.session.flush()
        return secret

    def pending_totp_secret(self, user: User) -> str:
        """The seed shown during enrolment (the one ``begin_totp_enrolment`` created)."""
        if user.totp_pending_sealed is None:
            raise InvalidCode("No enrolment is in progress.")
        return self.cipher.open("users", "totp_pending", user.id, user.totp_pending_sealed)

    def confirm_totp_enrolment(self, user: User, code: str) -> list[str]:
        """Activate the pending seed with a first valid code; returns fresh recovery codes.

        Raises ``InvalidCode`` (counted toward throttling) or ``AccountLocked``.
        """
        self.check_not_locked(user.email_key)
        secret = self.pending_totp_secret(user)
        step = mfa.matching_step(secret, code, self.clock(), after_step=None)
        if step is None:
            self.record_failure(user.email_key)
            raise InvalidCode("The code is wrong or has expired.")
        user.totp_secret_sealed = self.cipher.seal("users", "totp_secret", user.id, secret)
        user.totp_pending_sealed = None
        user.totp_enabled_at = self.clock()
        user.totp_last_step = step
        return self.regenerate_recovery_codes(user)

    def verify_second_factor(self, user: User, code: str) -> str:
        """Check a TOTP code or a recovery code; returns ``"totp"`` or ``"recovery"``.

        Each code works once: a TOTP code for a time step already used, or a used recovery code,
        is refused. Raises ``InvalidCode`` (counted toward throttling) or ``AccountLocked``.
        """
        self.check_not_locked(user.email_key)
        if user.totp_secret_sealed is None:
            raise InvalidCode("No second factor is enrolled.")
        cleaned = code.strip().replace(" ", "")
        if mfa.looks_like_totp(cleaned):
            secret = self.cipher.open("users", "totp_secret", user.id, user.totp_secret_sealed)
            step = mfa.matching_step(secret, cleaned, self.clock(), after_step=user.totp_last_step)
            # Claim the step with a conditional update: of two concurrent requests with the same
            # code, only one can move totp_last_step forward.
            if step is not None and self._claim_step(user, step):
                return "totp"
        elif self._use_recovery_code(user, cleaned):
            return "recovery"
        self.record_failure(user.email_key)
        raise InvalidCode("The code is wrong, expired or already used.")

    def _claim_step(self, user: User, step: int) -> bool:
        result = self.session.execute(
            update(User)
            .where(User.id == user.id)
            .where((User.totp_last_step.is_(None)) | (User.totp_last_step < step))
            .values(totp_last_step=step)
        )
        self.session.refresh(user, ["totp_last_step"])
        return result.rowcount == 1

    def _use_recovery_code(self, user: User, code: str) -> bool:
        digest = crypto.digest_secret(mfa.normalise_recovery_code(code))
        result = self.session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.user_id == user.id)
            .where(RecoveryCode.code_digest == digest)
            .where(RecoveryCode.used_at.is_(None))
            .values(used_at=self.clock())
        )
        return result.rowcount == 1

    def regenerate_recovery_codes(self, user: User) -> list[str]:
        """Replace the user's recovery codes; returns the new codes (shown once, stored hashed)."""
        self.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
        codes = [crypto.random_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        for code in codes:
            digest = crypto.digest_secret(mfa.normalise_recovery_code(code))
            self.session.add(RecoveryCode(user_id=user.id, code_digest=digest))
        self.session.flush()
        return codes

    def remaining_recovery_codes(self, user: User) -> int:
        """How many unused recovery codes the user has."""
        return self.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        ) or 0

    # -- API tokens -----------------------------------------------------------------------

    @property
    def default_token_days(self) -> int:
        """The lifetime of a token whose creator names none: 30 days, or the maximum if less."""
        return min(DEFAULT_TOKEN_DAYS, self.token_max_days)

    def create_token(self, user: User, name: str, days: int | None, *,
                     mfa_verified: bool = False) -> tuple[str, ApiToken]:
        """A new bearer token for the user, valid for ``days`` (at most ``token_max_days``;
        ``None``: the default, shortened to the maximum); returns it once with its row.

        ``mfa_verified``: created from a session that passed a second factor, so the token may
        do what the policies allow only with MFA (a reviewer reading documents, an officer
        reading anything of a consortium).

        Raises ``InvalidToken`` for a bad name or lifetime, ``UnknownUser`` for an inactive user.
        """
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidToken("A token name of 1 to 100 characters is required.")
        if days is None:
            days = self.default_token_days
        if not 1 <= days <= self.token_max_days:
            raise InvalidToken("A token lives 1 to {max} days.", max=self.token_max_days)
        if not user.active:
            raise UnknownUser("{email} is deactivated.", email=user.email)
        token = TOKEN_PREFIX + crypto.random_token(32)
        row = ApiToken(
            user_id=user.id, name=name, digest=crypto.digest_secret(token),
            prefix=token[: len(TOKEN_PREFIX) + 6], created_at=self.clock(),
            expires_at=self.clock() + timedelta(days=days), mfa_verified=mfa_verified,
        )
        self.session.add(row)
        self.session.flush()
        return token, row

    def authenticate_token(self, token: str) -> User | None:
        """The active user of a valid, unexpired, unrevoked token; ``None`` otherwise."""
        row = self.find_token(token)
        return row.user if row is not None else None

    def find_token(self, token: str) -> ApiToken | None:
        """The valid, unexpired, unrevoked token of an active user; ``None`` otherwise."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        # Looked up by its SHA-256: the token has 256 random bits, so the digest reveals
        # nothing and an index lookup does not leak timing about the secret.
        row = self.session.scalar(
            select(ApiToken).where(ApiToken.digest == crypto.digest_secret(token))
        )
        now = self.clock()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        if not crypto.secrets_equal(row.digest, crypto.digest_secret(token)):
            return None
        if not row.user.active:
            return None
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
            row.last_used_at = now  # coarse, so busy scripts do not write on every call
        return row

    def tokens(self, user: User | None = None) -> list[ApiToken]:
        """Tokens (of one user, or all), newest first."""
        query = select(ApiToken).order_by(ApiToken.created_at.desc())
        if user is not None:
            query = query.where(ApiToken.user_id == user.id)
        return list(self.session.scalars(query))

    def revoke_all_tokens(self, user: User) -> list[ApiToken]:
        """Revoke every live (unrevoked, unexpired) token of the user; returns them."""
        now = self.clock()
        live = list(self.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
                                   ApiToken.expires_at > now).order_by(ApiToken.created_at)))
        for token in live:
            token.revoked_at = now
        self.session.flush()
        return live

    def owned_token(self, user: User, token_id: uuid.UUID) -> ApiToken | None:
        """The user's own token with this id; ``None`` for another user's or an unknown id."""
        return self.session.scalar(
            select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))

    def revoke_token(self, prefix: str) -> ApiToken:
        """Revoke the token whose shown prefix (or id) this is; raises ``InvalidToken``."""
        matches = [t for t in self.tokens() if t.prefix == prefix or str(t.id) == prefix]
        if len(matches) != 1:
            raise InvalidToken("No single token matches {prefix}.", prefix=repr(prefix))
        token = matches[0]
        if token.revoked_at is None:
            token.revoked_at = self.clock()
        self.session.flush()
        return token
