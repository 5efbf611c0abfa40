"""How times, sizes and user text are written for people: the programme runs in Korea Standard
Time, and no name an applicant typed may reorder what a reader sees.

Shared by the pages (``vault.web.i18n`` registers these as template filters) and by services
that write text people read (screening evidence, CSV reports).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

#: Korea Standard Time (no daylight saving): the programme office's time.
KST = timezone(timedelta(hours=9), "KST")


def format_kst(moment: datetime) -> str:
    """A timestamp as the programme's people read it, e.g. ``2027-01-15 18:00 KST``."""
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M KST")


def iso_kst(moment: datetime) -> str:
    """A timestamp for exports: ISO 8601 in KST to the second (``2027-01-15T18:00:00+09:00``)."""
    return moment.astimezone(KST).isoformat(timespec="seconds")


def format_size(size: int) -> str:
    """A byte count for people: B, KiB, MiB or GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.2f} GiB"


#: Bidirectional controls: the embeddings and overrides (U+202A..U+202E), the isolates
#: (U+2066..U+2069) and the marks (U+200E, U+200F, U+061C). In a name they make a reader see
#: something else than what is stored: "report\u202efdp.exe" shows as "reportexe.pdf".
_BIDI_CONTROLS = dict.fromkeys(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def neutralise_bidi(text: str) -> str:
    """``text`` without bidirectional controls, so it shows in the order it is stored.

    Applied where text is shown to people (every page, download names, spreadsheets); what is
    stored, and what the API and the audit log report, stays the original.
    """
    return text.translate(_BIDI_CONTROLS)
