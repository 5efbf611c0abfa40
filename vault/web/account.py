"""The signed-in user's own account: password change, TOTP enrolment, recovery codes."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_login import logout_user

from vault.audit.service import Tag
from vault.identity import mfa
from vault.identity.errors import AccountLocked, InvalidCode, InvalidCredentials, WeakPassword
from vault.web.auth import enrolment_step, locked_message
from vault.web.context import audit, db, runtime, user
from vault.web.forms import CodeForm, PasswordChangeForm
from vault.web.i18n import gettext as _

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("/")
def index() -> str:
    """Account overview: profile, second factor, recovery codes, password."""
    account = user()
    remaining = runtime().identity(db()).remaining_recovery_codes(account)
    return render_template(
        "account/index.html",
        account=account,
        remaining_codes=remaining,
        password_form=PasswordChangeForm(),
        regenerate_form=CodeForm(),
    )


@bp.post("/password")
def change_password() -> Response | tuple[str, int]:
    """Change the password; every session of the user ends, this one included."""
    form = PasswordChangeForm()
    account = user()
    identity = runtime().identity(db())
    remaining = identity.remaining_recovery_codes(account)

    def again(message: str, status: int) -> tuple[str, int]:
        flash(message, "error")
        page = render_template(
            "account/index.html", account=account, remaining_codes=remaining,
            password_form=form, regenerate_form=CodeForm(),
        )
        return page, status

    if not form.validate_on_submit():
        return again(_("The form was incomplete. Please try again."), 400)
    if form.new_password.data != form.confirm_password.data:
        return again(_("The new password and its confirmation differ."), 400)
    try:
        identity.change_password(
            account, form.current_password.data or "", form.new_password.data or ""
        )
    except AccountLocked as error:
        return again(locked_message(error), 429)
    except InvalidCredentials:
        return again(_("The current password is wrong."), 400)
    except WeakPassword as error:
        return again(_(str(error)), 400)
    audit(Tag.PASSWORD_CHANGED, target={"account": account.id})
    logout_user()
    flash(_("Your password was changed. Every session has ended; sign in again."), "info")
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
            raise InvalidCode("not a TOTP code")
        identity.verify_second_factor(account, code)
    except AccountLocked as error:
        flash(locked_message(error), "error")
        return redirect(url_for("account.index"))
    except InvalidCode:
        flash(_("The code is wrong, expired or already used."), "error")
        return redirect(url_for("account.index"))
    return render_template("auth/recovery_codes.html",
                           codes=identity.regenerate_recovery_codes(account))


