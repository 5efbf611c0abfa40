"""CSV for spreadsheets, the way officers open every export of the vault.

A file starts with a byte order mark: Excel on Korean Windows reads a CSV without one in the
ANSI code page (CP949) and garbles every UTF-8 name. Lines end in CRLF and cells are quoted
where needed (RFC 4180). Every cell that a spreadsheet would evaluate as a formula is quoted as
text (``csv_cell``): names, file names and messages come from applicants.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from vault.display import neutralise_bidi

#: A spreadsheet evaluates a cell that starts with one of these as a formula (OWASP "CSV
#: injection"); tab and carriage return are included because Excel strips them and then sees
#: the next character.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

BOM = "\ufeff"


def csv_cell(value: str) -> str:
    """A cell that a spreadsheet shows as text, never evaluates, in the order it is stored: a
    leading formula character gets a ``'`` in front of it, bidirectional controls go."""
    value = neutralise_bidi(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def spreadsheet_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The header and rows as CSV text for a spreadsheet: the BOM, CRLF line ends, and every
    cell made safe with ``csv_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(cell) for cell in header])
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return BOM + buffer.getvalue()


def rows_csv(rows: Sequence[Mapping[str, str]]) -> str:
    """Rows that share their keys (the first row's, in order) as ``spreadsheet_csv``; nothing
    but the BOM when there are none."""
    columns = list(rows[0]) if rows else []
    if not columns:
        return BOM
    return spreadsheet_csv(columns, ([row[column] for column in columns] for row in rows))
