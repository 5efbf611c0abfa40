"""A throw-away SoftHSM2 token for tests of the ``pkcs11`` key provider.

Not a test module: ``softhsm_token()`` makes a real PKCS#11 token in a temporary directory so the
provider is tested against an HSM implementation rather than a mock. SoftHSM2 is a system package
(``apt-get install softhsm2``); when it is missing the helper fails loudly instead of skipping, so
a machine without it cannot pass the suite by silently testing nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pkcs11

#: Where Debian and Ubuntu put the module (the first is a compatibility path to the second).
MODULE_CANDIDATES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
)

INSTALL_HINT = "SoftHSM2 is required for the pkcs11 key provider tests: apt-get install softhsm2"


class SoftHsmToken(NamedTuple):
    """What a ``Pkcs11KeyProvider`` needs to reach the token."""

    module_path: str
    label: str
    pin: str


class SoftHsmMissing(RuntimeError):
    """SoftHSM2 (its module or its ``softhsm2-util``) is not installed."""


def module_path() -> str:
    """The path of ``libsofthsm2.so``; raises ``SoftHsmMissing`` naming the package to install."""
    for candidate in MODULE_CANDIDATES:
        if candidate.is_file():
            return str(candidate)
    searched = ", ".join(str(candidate) for candidate in MODULE_CANDIDATES)
    raise SoftHsmMissing(f"libsofthsm2.so not found (searched {searched}). {INSTALL_HINT}")


def _util() -> str:
    util = shutil.which("softhsm2-util")
    if util is None:
        raise SoftHsmMissing(f"softhsm2-util not found on PATH. {INSTALL_HINT}")
    return util


@contextmanager
def softhsm_token(
    label: str = "vault-test",
    pin: str = "insecure-user-pin",
    so_pin: str = "insecure-so-pin",
) -> Iterator[SoftHsmToken]:
    """Initialise a SoftHSM2 token in a temporary directory and point ``SOFTHSM2_CONF`` at it.

    Yields ``(module_path, label, pin)``. On exit the PKCS#11 module is unloaded (so a later token
    in another directory is seen by a fresh ``C_Initialize``), the environment is restored and the
    token directory removed.
    """
    module = module_path()
    util = _util()
    with tempfile.TemporaryDirectory(prefix="vault-softhsm-") as tmp:
        tokendir = Path(tmp) / "tokens"
        tokendir.mkdir(mode=0o700)
        conf = Path(tmp) / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {tokendir}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
            "slots.mechanisms = ALL\n",
            encoding="utf-8",
        )
        previous = os.environ.get("SOFTHSM2_CONF")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        # SoftHSM reads SOFTHSM2_CONF in C_Initialize: a module loaded earlier in this process
        # for another token would not see this one, so start from an unloaded module.
        pkcs11.unload(module)
        try:
            result = subprocess.run(
                [util, "--init-token", "--free", "--label", label,
                 "--so-pin", so_pin, "--pin", pin],
                check=False,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"softhsm2-util --init-token failed ({result.returncode}): "
                    f"{result.stderr.strip() or result.stdout.strip()}"
                )
            yield SoftHsmToken(module, label, pin)
        finally:
            pkcs11.unload(module)
            if previous is None:
                os.environ.pop("SOFTHSM2_CONF", None)
            else:
                os.environ["SOFTHSM2_CONF"] = previous
