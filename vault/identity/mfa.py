"""TOTP (RFC 6238) helpers: seeds, provisioning URIs, QR codes and single-use step matching."""

from __future__ import annotations

import hmac
import re
from datetime import datetime

import pyotp
import segno

#: Codes from one step before and after the current one are accepted, for clock drift.
VALID_WINDOW = 1
_TOTP_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    """A fresh 160-bit base32 TOTP seed."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """An inline SVG QR code of the URI (no external image, allowed by the CSP)."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#111", light="#fff")


def looks_like_totp(code: str) -> bool:
    """Whether the text has the shape of a TOTP code (six digits)."""
    return bool(_TOTP_CODE.match(code))


def matching_step(secret: str, code: str, now: datetime, *, after_step: int | None) -> int | None:
    """The time step whose code equals ``code``, if it is within the window and newer than
    ``after_step`` (so a used code, or an older one, is refused); otherwise ``None``."""
    if not looks_like_totp(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def normalise_recovery_code(code: str) -> str:
    """Recovery codes are compared without dashes, spaces or case."""
    return re.sub(r"[\s-]", "", code).upper()
