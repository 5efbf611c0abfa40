"""Functions for the sandbox tests to run in a child process.

A forkserver child finds the function it runs by importing its module, so these live in an
importable module rather than in the test file.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from vault.documents.watermark import WatermarkError


def echo(value: object) -> object:
    """Return the argument unchanged (a round trip through the pipe)."""
    return value


def sleep_after_writing_pid(pid_file: str, seconds: float) -> None:
    """Record our pid (so the test can check we are gone), then sleep."""
    Path(pid_file).write_text(str(os.getpid()), encoding="ascii")
    time.sleep(seconds)


def allocate(size: int) -> int:
    """Allocate and touch ``size`` bytes."""
    block = bytearray(size)
    return len(block)


def spin() -> None:
    """Burn CPU until the limit stops us."""
    while True:
        pass


def raise_watermark_error(message: str) -> None:
    """Fail with a domain error."""
    raise WatermarkError(message)


def raise_value_error(message: str) -> None:
    """Fail with an error the caller did not ask to get back as itself."""
    raise ValueError(message)


def exit_abruptly(code: int) -> None:
    """Leave without an answer, skipping all clean-up."""
    os._exit(code)


def crash() -> None:
    """Die from a segmentation fault, as a crashing C extension would."""
    os.kill(os.getpid(), signal.SIGSEGV)
