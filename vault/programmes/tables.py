"""Reading programme definition tables strictly: every error names the file, the dotted field
and the problem (shared by ``definition`` and ``rules``)."""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime, time
from typing import Any

#: Titles are stored in ``String(300)`` columns.
MAX_TITLE_LENGTH = 300

#: Ids of document kinds, stages, criteria, components, rules and GPU models.
ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class DefinitionError(ValueError):
    """A programme definition file is unreadable or invalid."""

    def __init__(self, file: str, field: str | None, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {problem}")


def is_korean(locale: str) -> bool:
    # Accept "ko", "ko-KR" and "ko_KR"; everything else falls back to English.
    return re.split(r"[-_]", locale, maxsplit=1)[0].lower() == "ko"


class Table:
    """One TOML table being read: tracks its dotted path and which keys were consumed."""

    def __init__(self, file: str, path: str, data: dict[str, Any], allowed: frozenset[str]):
        self.file = file
        self.path = path
        self.data = data
        self.allowed = allowed

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> DefinitionError:
        return DefinitionError(self.file, self.field(key), problem)

    def check_keys(self) -> None:
        # Checked first so a misspelt key is reported as a typo rather than as "missing".
        for key in sorted(set(self.data) - self.allowed):
            close = difflib.get_close_matches(key, sorted(self.allowed), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            raise self.error(key, f"unknown key{hint}")

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, "required key is missing")
        return self.data[key]

    def slug(self, key: str, pattern: re.Pattern[str], shape: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.error(key, f"must be {shape}, got {value!r}")
        return value

    def title(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "must be a non-empty string")
        if len(value) > MAX_TITLE_LENGTH:
            raise self.error(key, f"must be at most {MAX_TITLE_LENGTH} characters")
        return value

    def aware_datetime(self, key: str) -> datetime:
        value = self.get(key)
        # A local date-time would be read in whatever zone the server runs in, and a deadline
        # must mean the same instant for everybody, so an explicit offset is required.
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise self.error(
                    key,
                    "must have a UTC offset, e.g. 2027-01-15T18:00:00+09:00 (got a local "
                    "date-time without offset)",
                )
            return value
        if isinstance(value, date | time):
            kind = "a date" if isinstance(value, date) else "a time"
            raise self.error(
                key,
                f"must be a date-time with a UTC offset, e.g. 2027-01-15T18:00:00+09:00 "
                f"(got {kind})",
            )
        raise self.error(key, f"must be a date-time with a UTC offset, got {value!r}")

    def array_of_tables(self, key: str) -> list[dict[str, Any]]:
        value = self.get(key)
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(key, f"must be an array of tables ([[{key}]])")
        if not value:
            raise self.error(key, "must have at least one entry")
        return value


    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        """A whole number in [low, high]; ``default`` when absent (required if None)."""
        value = self.data.get(key, default) if default is not None else self.get(key)
        # bool is an int in Python; "max_pages = true" is a mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.error(key, f"must be a whole number from {low} to {high}")
        return value

    def optional_integer(self, key: str, low: int, high: int) -> int | None:
        """A whole number in [low, high], or None when the key is absent."""
        return self.integer(key, low, high) if key in self.data else None

    def boolean(self, key: str, default: bool) -> bool:
        """true or false; ``default`` when absent."""
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def sub_table(self, key: str, allowed: frozenset[str]) -> Table:
        """The sub-table ``[<path>.<key>]``, its keys checked."""
        value = self.get(key)
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table ([{self.field(key)}])")
        table = Table(self.file, self.field(key), value, allowed)
        table.check_keys()
        return table
