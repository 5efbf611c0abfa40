"""Korean and English text without a build step.

Source strings are English; ``translations/ko.toml`` (and ``ko-<part>.toml`` beside it, one per
feature area) maps them to Korean. The locale comes from a
cookie set by the language switch, else the browser's ``Accept-Language``, else Korean.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from flask import Flask, g, request

from vault.display import format_kst, format_size, neutralise_bidi

LOCALES = ("ko", "en")
DEFAULT_LOCALE = "ko"
COOKIE = "vault_lang"


@cache
def catalogue(locale: str) -> dict[str, str]:
    """The translations for ``locale`` (English is the source language: an empty catalogue)."""
    if locale == "en":
        return {}
    merged: dict[str, str] = {}
    folder = resources.files("vault.web").joinpath("translations")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == f"{locale}.toml" or entry.name.startswith(f"{locale}-"):
            part = tomllib.loads(entry.read_text("utf-8"))
            twice = merged.keys() & part.keys()
            if twice:
                raise ValueError(f"{entry.name} translates again: {sorted(twice)[:3]}")
            merged.update(part)
    return merged


def current_locale() -> str:
    """The locale of the current request."""
    if "locale" not in g:
        chosen = request.cookies.get(COOKIE)
        if chosen not in LOCALES:
            chosen = request.accept_languages.best_match(LOCALES, default=DEFAULT_LOCALE)
        g.locale = chosen
    return g.locale


def gettext(text: str, **values: object) -> str:
    """``text`` in the current locale, with ``{name}`` placeholders filled from ``values``."""
    translated = catalogue(current_locale()).get(text, text)
    return translated.format(**values) if values else translated


def _displayed(value: object) -> object:
    """A template value as shown: text without bidirectional controls (``Markup.translate``
    keeps markup markup)."""
    if isinstance(value, str):
        return neutralise_bidi(value)
    return value


def init_app(app: Flask) -> None:
    """Make ``_``, the current locale and the KST date filter available to templates."""
    app.jinja_env.globals.update(_=gettext, current_locale=current_locale, LOCALES=LOCALES)
    # Every value a template prints passes here: no name, file name or comment an applicant
    # typed can reorder what a reader sees with bidirectional controls.
    app.jinja_env.finalize = _displayed
    app.jinja_env.filters["kst"] = format_kst
    app.jinja_env.filters["filesize"] = format_size
