"""The signed-in user's own account: password change, TOTP enrolment, recovery codes, API
tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, session, url_for
from flask_login import logout_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from wtforms import IntegerField, PasswordField, StringField
from wtforms.validators import Length, Optional

from vault.audit.service import Tag
from vault.identity import mfa
from vault.identity.errors import (
    AccountLocked,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    WeakPassword,
)
from vault.web.auth import enrolment_step, locked_message, record_revoked_tokens
from vault.web.context import actor, audit, db, runtime, user
from vault.web.forms import CodeForm, EmptyForm, PasswordChangeForm
from vault.web.i18n import gettext as _

bp = Blueprint("account", __name__, url_prefix="/account")


#: How long a re-authentication (or a sign-in) lets the session create API tokens. A stolen
#: session cookie alone cannot mint a long-lived token: it needs the password (and the code).
REAUTH_WINDOW = timedelta(minutes=5)


class TokenForm(FlaskForm):
    """A new API token: what it is for and how many days it lives."""

    name = StringField("name", validators=[Length(max=100)])
    days = IntegerField("days", validators=[Optional()])


class ReauthForm(FlaskForm):
    """Confirm the password (and the current code, with a second factor) before a sensitive
    step."""

    password = PasswordField("password", validators=[Length(max=1024)])
    code = StringField("code", validators=[Length(max=64)])


def _reauthenticated_until() -> datetime | None:
    """Until when this session may create tokens, if its re-authentication is recent."""
    stamp = session.get("reauthenticated_at")
    if not isinstance(stamp, str):
        return None
    until = datetime.fromisoformat(stamp) + REAUTH_WINDOW
    return until if runtime().clock() < until else None


def _page(status: int = 200, **overrides: object) -> tuple[str, int]:
    """The account page (forms may be replaced by submitted ones, to show their errors)."""
    account = user()
    identity = runtime().identity(db())
    max_days = runtime().settings.token_max_days
    context: dict[str, object] = {
        "account": account,
        "employer": identity.employer(account),
        "remaining_codes": identity.remaining_recovery_codes(account),
        "password_form": PasswordChangeForm(formdata=None),
        "regenerate_form": CodeForm(formdata=None),
        "token_form": TokenForm(formdata=None),
        "reauth_form": ReauthForm(formdata=None),
        "reauthenticated_until": _reauthenticated_until(),
        "max_days": max_days,
        "tokens": identity.tokens(account),
        "now": runtime().clock(),
        "session_mfa": actor().mfa,
        "default_days": identity.default_token_days,
        "new_token": None,
    }
    context.update(overrides)
    return render_template("account/index.html", **context), status


@bp.get("/")
def index() -> tuple[str, int]:
    """Account overview: profile, second factor, recovery codes, password, API tokens."""
    return _page()


@bp.post("/password")
def change_password() -> Response | tuple[str, int]:
    """Change the password; every session of the user ends, this one included."""
    form = PasswordChangeForm()
    account = user()
    identity = runtime().identity(db())

    def again(message: str, status: int) -> tuple[str, int]:
        flash(message, "error")
        return _page(status, password_form=form)

    if not form.validate_on_submit():
        return again(_("The form was incomplete. Please try again."), 400)
    if form.new_password.data != form.confirm_password.data:
        return again(_("The new password and its confirmation differ."), 400)
    try:
        revoked = identity.change_password(
            account, form.current_password.data or "", form.new_password.data or ""
        )
    except AccountLocked as error:
        return again(locked_message(error), 429)
    except InvalidCredentials:
        return again(_("The current password is wrong."), 400)
    except WeakPassword as error:
        return again(error.translated(_), 400)
    audit(Tag.PASSWORD_CHANGED, target={"account": account.id})
    record_revoked_tokens(account, revoked, "password changed")
    logout_user()
    flash(_("Your password was changed. Every session and API token has ended; sign in again."),
          "info")
    return redirect(url_for("auth.login"))


@bp.route("/mfa", methods=["GET", "POST"])
def enrol_mfa() -> Response | str | tuple[str, int]:
    """Enrol a TOTP authenticator (optional for applicants; demo accounts that skipped it)."""
    account = user()
    if account.mfa_enabled:
        flash(_("Two-step verification is already on."), "info")
        return redirect(url_for("account.index"))
    result = enrolment_step(account, url_for("account.enrol_mfa"), may_skip=False)
    if not isinstance(result, list):
        return result
    return render_template("auth/recovery_codes.html", codes=result)


@bp.post("/recovery-codes")
def regenerate_codes() -> str | tuple[str, int] | Response:
    """New recovery codes (the old ones stop working); needs a current TOTP code."""
    account = user()
    form = CodeForm()
    if not form.validate_on_submit():
        abort(400)
    if not account.mfa_enabled:
        return redirect(url_for("account.enrol_mfa"))
    identity = runtime().identity(db())
    code = (form.code.data or "").strip()
    try:
        if not mfa.looks_like_totp(code):
            raise InvalidCode("Enter the six-digit code from your authenticator app.")
        identity.verify_second_factor(account, code)
    except AccountLocked as error:
        flash(locked_message(error), "error")
        return redirect(url_for("account.index"))
    except InvalidCode:
        flash(_("The code is wrong, expired or already used."), "error")
        return redirect(url_for("account.index"))
    codes = identity.regenerate_recovery_codes(account)
    # New recovery codes replace the old fallback factor: tokens made under it end.
    revoked = identity.revoke_all_tokens(account)
    record_revoked_tokens(account, revoked, "recovery codes replaced")
    if revoked:
        flash(_("Your API tokens were revoked with the old recovery codes. Create new ones if your scripts need them."), "warning")  # noqa: E501 - one literal for the catalogue test
    return render_template("auth/recovery_codes.html", codes=codes)


@bp.post("/reauth")
def reauthenticate() -> Response | tuple[str, int]:
    """Confirm the password (and the current TOTP code, with a second factor) so that this
    session may create API tokens for the next few minutes."""
    form = ReauthForm()
    if not form.validate_on_submit():
        abort(400)
    account = user()
    try:
        runtime().identity(db()).reauthenticate(account, form.password.data or "",
                                                form.code.data or "")
    except AccountLocked as error:
        flash(locked_message(error), "error")
        return _page(429)
    except (InvalidCredentials, InvalidCode) as error:
        audit(Tag.MFA_FAILED if isinstance(error, InvalidCode) else Tag.LOGIN_FAILED,
              target={"account": account.id}, reasons=("re-authentication failed",))
        flash(_("The password or the code is wrong. Nothing was confirmed."), "error")
        return _page(401)
    session["reauthenticated_at"] = runtime().clock().isoformat()
    audit(Tag.REAUTHENTICATED, target={"account": account.id})
    flash(_("Confirmed. You may create tokens for the next {minutes} minutes.",
            minutes=int(REAUTH_WINDOW.total_seconds() // 60)), "info")
    return redirect(url_for("account.index", _anchor="tokens"))


@bp.post("/tokens")
def create_token() -> tuple[str, int]:
    """A new API token for the signed-in user, shown once on the page that answers.

    Only within a few minutes of a sign-in or a re-authentication (``REAUTH_WINDOW``). The
    token may do what needs a second factor only if this session passed one; tokens from
    ``vault token create`` never may.
    """
    form = TokenForm()
    if not form.validate_on_submit():
        flash(_("Give the token a name of up to 100 characters and a lifetime in days."),
              "error")
        return _page(400, token_form=form)
    if _reauthenticated_until() is None:
        minutes = int(REAUTH_WINDOW.total_seconds() // 60)
        # One literal on one line, so that the catalogue test finds it.
        flash(_("Confirm your password first: tokens are created only within {minutes} minutes of confirming it.", minutes=minutes), "error")  # noqa: E501
        return _page(403, token_form=form)
    account = user()
    mfa_verified = actor().mfa
    try:
        token, row = runtime().identity(db()).create_token(
            account, (form.name.data or "").strip(), form.days.data,
            mfa_verified=mfa_verified)
    except InvalidToken as error:
        flash(error.translated(_), "error")
        return _page(400, token_form=form)
    audit(Tag.TOKEN_CREATED, target={"account": account.id, "token": row.prefix,
                                     "expires": row.expires_at.isoformat(),
                                     "mfa_verified": mfa_verified})
    # Rendered, not redirected: the token must not pass through the session or a URL.
    return _page(new_token=token)


@bp.post("/tokens/<uuid:token_id>/revoke")
def revoke_token(token_id: uuid.UUID) -> Response:
    """Revoke one of the signed-in user's own tokens; another user's token is 404."""
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    account = user()
    identity = runtime().identity(db())
    # ``revoke_token`` searches every account's tokens: the ownership check is here.
    owned = identity.owned_token(account, token_id)
    if owned is None:
        raise NotFound()
    token = identity.revoke_token(str(owned.id))
    audit(Tag.TOKEN_REVOKED, target={"account": account.id, "token": token.prefix})
    flash(_("The token {prefix}… was revoked.", prefix=token.prefix), "info")
    return redirect(url_for("account.index"))
