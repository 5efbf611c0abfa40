"""Forms: they carry the CSRF token and the raw fields; handlers validate the values."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length

from vault.organizations.models import OrganizationKind


class EmptyForm(FlaskForm):
    """A form with nothing but the CSRF token (logout, cancel, regenerate, …)."""


class LoginForm(FlaskForm):
    """E-mail address and password."""

    email = StringField("email", validators=[Length(max=254)])
    password = PasswordField("password", validators=[Length(max=1024)])
    next = HiddenField("next", validators=[Length(max=2000)])


class CodeForm(FlaskForm):
    """A TOTP code (or, where allowed, a recovery code)."""

    code = StringField("code", validators=[Length(max=64)])


class PasswordChangeForm(FlaskForm):
    """Current password, new password and its confirmation."""

    current_password = PasswordField("current_password", validators=[Length(max=1024)])
    new_password = PasswordField("new_password", validators=[Length(max=1024)])
    confirm_password = PasswordField("confirm_password", validators=[Length(max=1024)])


class LanguageForm(FlaskForm):
    """The language switch."""

    lang = HiddenField("lang", validators=[Length(max=8)])
    next = HiddenField("next", validators=[Length(max=2000)])


class PartnerForm(FlaskForm):
    """One entry of the confidential partner list."""

    name = StringField("name", validators=[DataRequired(), Length(max=200)])
    kind = StringField("kind", validators=[AnyOf([k.value for k in OrganizationKind])])
    role = StringField("role", validators=[DataRequired(), Length(max=100)])
    contribution = TextAreaField("contribution", validators=[DataRequired(), Length(max=2000)])
