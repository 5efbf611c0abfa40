"""Korean and English: every string the web layer shows has a Korean translation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import csrf_from
from vault.documents.models import SubmissionState
from vault.identity import service as identity_service
from vault.identity.models import Role
from vault.organizations.models import OrganizationKind
from vault.web.i18n import catalogue

WEB = Path(__file__).resolve().parent.parent / "vault" / "web"
_CALL = re.compile(r"""\b_\(\s*(["'])((?:\\.|(?!\1).)*)\1""", re.S)


def _source_strings() -> set[str]:
    strings = set()
    files = [*WEB.rglob("*.html"), *WEB.glob("*.py"), WEB.parent / "app.py"]
    for path in files:
        strings.update(match.group(2) for match in _CALL.finditer(path.read_text("utf-8")))
    return strings


def _dynamic_strings() -> set[str]:
    """Values translated through variables: enum values and password-rule messages."""
    values = {member.value for enum in (Role, SubmissionState, OrganizationKind) for member in enum}
    messages = set()
    for password in ("short", "x" * 200, "password1234"):
        try:
            identity_service.check_password_rules(password)
        except identity_service.WeakPassword as error:
            messages.add(error.message_template)
    try:
        identity_service.check_password_rules("someone@example.org", email="someone@example.org")
    except identity_service.WeakPassword as error:
        messages.add(error.message_template)
    return values | messages


def _domain_messages() -> set[str]:
    """Messages of the domain errors users see (``raise SomeDomainError("…")``, read from the
    syntax tree so that messages split over several literals count, and every error class's
    ``template``): the web layer shows them translated."""
    import vault.app
    import vault.evaluation.ranking
    import vault.evaluation.sheets  # noqa: F401
    from vault.errors import DomainError

    def subclasses(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        return found.union(*(subclasses(c) for c in found)) if found else found

    classes = subclasses(DomainError)
    names = {cls.__name__ for cls in classes}
    messages = {cls.__dict__["template"] for cls in classes
                if isinstance(cls.__dict__.get("template"), str)}
    for path in WEB.parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and isinstance(node.exc.func, ast.Name) and node.exc.func.id in names
                    and node.exc.args and isinstance(node.exc.args[0], ast.Constant)
                    and isinstance(node.exc.args[0].value, str)):
                messages.add(node.exc.args[0].value)
    return messages


def _takes_message_first(module_path: Path, name: str) -> bool:
    """Whether ``name``, as the module at ``module_path`` sees it, is a domain error whose first
    argument is the message shown to people (others take a detail for the operators' log or a
    reason for the audit log, with a fixed template)."""
    import importlib
    import inspect

    from vault.errors import DomainError

    parts = module_path.relative_to(WEB.parent.parent).with_suffix("").parts
    module = importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, DomainError)):
        return False
    first = list(inspect.signature(cls.__init__).parameters)[1:2]
    return bool(first) and first[0] in ("message", "template")


def _computed_text(node: ast.expr) -> bool:
    """Whether ``node`` builds text from values: an f-string, ``"…".format(…)``, ``%`` or ``+``."""
    if isinstance(node, ast.JoinedStr):
        return True
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"):
        return True
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add) and any(
        isinstance(side, ast.Constant | ast.JoinedStr) and isinstance(
            getattr(side, "value", ""), str) for side in (node.left, node.right))


def test_no_domain_error_is_raised_with_a_formatted_message():
    # An f-string fills its values in before the catalogue can see the message: a Korean
    # reader would get English, and the translation test above would not notice. Messages are
    # templates with ``{name}`` placeholders and the values as keywords.
    formatted = []
    for path in WEB.parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and isinstance(node.exc.func, ast.Name)
                    and node.exc.args and _computed_text(node.exc.args[0])
                    and _takes_message_first(path, node.exc.func.id)):
                formatted.append(f"{path.relative_to(WEB.parent.parent)}:{node.lineno} "
                                 f"{node.exc.func.id}")
    assert formatted == [], "domain errors raised with a computed message: " + ", ".join(
        formatted)


def test_identity_errors_are_domain_errors():
    from vault.errors import DomainError
    from vault.identity.errors import IdentityError

    assert issubclass(IdentityError, DomainError)


def test_the_extractor_finds_the_domain_errors():
    messages = _domain_messages()
    assert "The file is larger than the limit of {limit} MiB." in messages
    # Split over two literals in the source, and a class's template.
    assert "Reviewer {reviewer} has two sheets for submission {submission}." in messages
    assert "The score sheets cannot be ranked." in messages


@pytest.mark.parametrize("text", sorted(_domain_messages()))
def test_every_domain_error_has_a_korean_translation(text):
    translated = catalogue("ko").get(text)
    assert translated, f"no Korean translation for {text!r}"
    assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", translated))


def test_the_extractor_finds_the_templates_strings():
    assert "Sign in" in _source_strings()
    assert len(_source_strings()) > 50


@pytest.mark.parametrize("text", sorted(_source_strings() | _dynamic_strings()))
def test_every_string_has_a_korean_translation(text):
    translated = catalogue("ko").get(text)
    assert translated, f"no Korean translation for {text!r}"
    placeholders = set(re.findall(r"\{(\w+)\}", text))
    assert placeholders == set(re.findall(r"\{(\w+)\}", translated))


def test_korean_is_the_default_without_a_preference(app):
    client = app.test_client()
    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE", None)
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="ko">' in page and "로그인" in page


def test_the_browser_language_picks_english(client):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in page.get_data(as_text=True)


def test_the_switch_overrides_the_browser(client):
    token = csrf_from(client)
    response = client.post("/language", data={"lang": "ko", "next": "/login",
                                              "csrf_token": token})
    assert response.location == "/login"
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ko">' in page and "비밀번호" in page
