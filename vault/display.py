"""How times and sizes are written for people: the programme runs in Korea Standard Time.

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
