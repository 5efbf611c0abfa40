"""Sign-in, second factor, first-login TOTP enrolment, and sign-out.

A user is signed in (``start_session``) only after every required factor has passed. Between
the password and the second factor the session holds a short-lived *pending* reference, which
grants nothing but the next step of the sign-in.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, logout_user

from vault.audit.service import Tag
from vault.identity import mfa
from vault.identity.errors import AccountLocked, InvalidCode, InvalidCredentials
from vault.identity.models import ApiToken, User
from vault.identity.service import email_key
from vault.policy.actions import Actor
from vault.web.context import audit, db, runtime, user
from vault.web.forms import CodeForm, EmptyForm, LoginForm
from vault.web.i18n import gettext as _
from vault.web.security import start_session

bp = Blueprint("auth", __name__)

#: How long the step between password and second factor may take.
PENDING_LIFETIME = timedelta(minutes=10)
ISSUER = "Vault"


def safe_next(target: str | None) -> str:
    r"""A local path to continue to after sign-in; anything else (other hosts) becomes home.

    Browsers drop tabs and newlines and read backslashes as slashes, so ``/\t/evil`` or
    ``/\\evil`` would leave the site: any whitespace, control character or backslash is refused.
    """
    if (
        target
        and len(target) <= 2000
        and target.startswith("/")
        and not target.startswith("//")
        and not any(ord(char) <= 32 or char in "\\\x7f" for char in target)
    ):
        return target
    return url_for("home.index")


def locked_message(error: AccountLocked) -> str:
    """The lockout message with the wait in whole minutes."""
    minutes = max(1, math.ceil(error.retry_after.total_seconds() / 60))
    return _("Too many failed attempts. Try again in {minutes} minutes.", minutes=minutes)


def _set_pending(account: User, step: str, next_url: str) -> None:
    session.clear()
    session["pending"] = {
        "user": account.get_id(),
        "step": step,
        "at": runtime().clock().isoformat(),
        "next": next_url,
    }


def _pending_user(step: str) -> User | None:
    """The user half-way through sign-in at ``step``, if the pending state is still valid."""
    pending = session.get("pending")
    if not isinstance(pending, dict) or pending.get("step") != step:
        return None
    started = datetime.fromisoformat(pending["at"])
    if runtime().clock() - started > PENDING_LIFETIME:
        session.pop("pending", None)
        return None
    user_id, _sep, generation = str(pending["user"]).partition(":")
    account = db().get(User, uuid.UUID(user_id))
    if account is None or not account.active or str(account.session_generation) != generation:
        return None
    return account


def _pending_or_restart(step: str) -> User | Response:
    account = _pending_user(step)
    if account is None:
        flash(_("Your sign-in expired. Please sign in again."), "warning")
        return redirect(url_for("auth.login"))
    return account


def _as_actor(account: User) -> Actor:
    return Actor(user_id=account.id, role=account.role, mfa=account.mfa_enabled)


def _failed(tag: Tag, reason: str, account: User | None = None, email: str = "") -> None:
    """Record a failed step; the address is recorded only as a keyed digest (people type
    passwords into the e-mail field)."""
    target = {"account": account.id} if account else {
        "email_digest": runtime().lookup.digest("audit:" + email_key(email))}
    audit(tag, actor_=_as_actor(account) if account else None, target=target,
          reasons=(reason,))


def record_revoked_tokens(account: User, tokens: list[ApiToken], reason: str) -> None:
    """Record each token a change of credentials revoked (only its shown prefix)."""
    for token in tokens:
        audit(Tag.TOKEN_REVOKED, actor_=_as_actor(account),
              target={"account": account.id, "token": token.prefix}, reasons=(reason,))


def _finish(account: User, *, mfa_skipped: bool = False) -> Response:
    next_url = session.get("pending", {}).get("next") or url_for("home.index")
    runtime().identity(db()).complete_sign_in(account)
    audit(Tag.LOGIN_SUCCEEDED, actor_=_as_actor(account), target={"account": account.id},
          reasons=("second factor skipped (demo)",) if mfa_skipped else ())
    start_session(account, mfa_skipped=mfa_skipped)
    return redirect(safe_next(next_url))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """The sign-in form; on success continue to the second factor or enrolment."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        return render_template("auth/login.html", form=form)
    if not form.validate_on_submit() or not form.email.data or not form.password.data:
        flash(_("Enter your e-mail address and password."), "error")
        return render_template("auth/login.html", form=form), 400
    identity = runtime().identity(db())
    try:
        account = identity.authenticate(form.email.data, form.password.data)
    except AccountLocked as error:
        _failed(Tag.LOGIN_FAILED, "locked", email=form.email.data)
        flash(locked_message(error), "error")
        return render_template("auth/login.html", form=form), 429
    except InvalidCredentials:
        _failed(Tag.LOGIN_FAILED, "invalid credentials", email=form.email.data)
        flash(_("Invalid e-mail address or password."), "error")
        return render_template("auth/login.html", form=form), 401
    next_url = safe_next(form.next.data)
    if account.mfa_enabled:
        _set_pending(account, "mfa", next_url)
        return redirect(url_for("auth.second_factor"))
    if account.role.requires_mfa:
        _set_pending(account, "enrol", next_url)
        return redirect(url_for("auth.enrol"))
    _set_pending(account, "done", next_url)
    return _finish(account)


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor() -> Response | str:
    """Ask for the TOTP code (or a recovery code) of a user whose password was correct."""
    account = _pending_or_restart("mfa")
    if isinstance(account, Response):
        return account
    form = CodeForm()
    if request.method == "GET":
        return render_template("auth/code.html", form=form)
    if not form.validate_on_submit() or not form.code.data:
        flash(_("Enter the code from your authenticator app."), "error")
        return render_template("auth/code.html", form=form), 400
    identity = runtime().identity(db())
    try:
        method = identity.verify_second_factor(account, form.code.data)
    except AccountLocked as error:
        _failed(Tag.MFA_FAILED, "locked", account)
        flash(locked_message(error), "error")
        return render_template("auth/code.html", form=form), 429
    except InvalidCode:
        _failed(Tag.MFA_FAILED, "wrong, expired or reused code", account)
        flash(_("The code is wrong, expired or already used."), "error")
        return render_template("auth/code.html", form=form), 401
    if method == "recovery":
        # A recovery code stands in for a lost device: whatever was made with the old factor
        # ends, since whoever holds the device might be using it.
        revoked = identity.revoke_all_tokens(account)
        record_revoked_tokens(account, revoked, "recovery code used")
        if revoked:
            flash(_("You signed in with a recovery code, so your API tokens were revoked."),
                  "warning")
        flash(
            _("You used a recovery code. {count} remain.",
              count=identity.remaining_recovery_codes(account)),
            "warning",
        )
    return _finish(account)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol() -> Response | str:
    """First sign-in of a role that needs MFA: scan the seed, confirm with a first code."""
    account = _pending_or_restart("enrol")
    if isinstance(account, Response):
        return account
    may_skip = runtime().settings.demo and account.demo_account
    result = enrolment_step(account, url_for("auth.enrol"), may_skip=may_skip)
    if not isinstance(result, list):
        return result
    _finish(account)
    # Rendered in this response (never stored, never cached) so the codes are shown once.
    return render_template("auth/recovery_codes.html", codes=result)


def enrolment_step(
    account: User, action: str, *, may_skip: bool
) -> list[str] | str | tuple[str, int]:
    """Show the TOTP seed (GET) or confirm it with a first code (POST).

    Returns the new recovery codes once enrolment is confirmed, otherwise the page to show.
    """
    identity = runtime().identity(db())
    secret = identity.begin_totp_enrolment(account)
    form = CodeForm()
    context = {
        "form": form,
        "skip_form": EmptyForm(),
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        "qr_svg": mfa.qr_svg(mfa.provisioning_uri(secret, account.email, ISSUER)),
        "may_skip": may_skip,
        "action": action,
    }
    if request.method == "GET":
        return render_template("auth/enrol.html", **context)
    if not form.validate_on_submit() or not form.code.data:
        flash(_("Enter the code from your authenticator app."), "error")
        return render_template("auth/enrol.html", **context), 400
    try:
        codes = identity.confirm_totp_enrolment(account, form.code.data.strip())
    except AccountLocked as error:
        flash(locked_message(error), "error")
        return render_template("auth/enrol.html", **context), 429
    except InvalidCode:
        _failed(Tag.MFA_FAILED, "wrong enrolment code", account)
        flash(_("The code is wrong or has expired. Check your device's clock and try again."),
              "error")
        return render_template("auth/enrol.html", **context), 400
    audit(Tag.MFA_ENROLLED, actor_=_as_actor(account), target={"account": account.id})
    return codes


@bp.post("/login/enrol/skip")
def skip_enrolment() -> Response:
    """Demo accounts may skip enrolment, and only while the data directory is in demo mode."""
    account = _pending_or_restart("enrol")
    if isinstance(account, Response):
        return account
    if not EmptyForm().validate_on_submit():
        abort(400)
    if not (runtime().settings.demo and account.demo_account):
        abort(403)
    flash(_("Demo mode: you signed in without a second factor."), "warning")
    return _finish(account, mfa_skipped=True)


@bp.post("/login/cancel")
def cancel() -> Response:
    """Abandon a half-finished sign-in."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    session.pop("pending", None)
    return redirect(url_for("auth.login"))


@bp.post("/logout")
def logout() -> Response:
    """Sign out everywhere: the session generation moves on, so every session of the user ends."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    account = user()
    revoked = runtime().identity(db()).end_all_sessions(account)
    audit(Tag.LOGOUT, target={"account": account.id})
    record_revoked_tokens(account, revoked, "signed out everywhere")
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))
