"""Functions for the sandbox tests to run in a child process.

A forkserver child finds the function it runs by importing its module, so these live in an
importable module rather than in the test file.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import socket
import time
from pathlib import Path

import pypdf

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


def open_sockets(host: str, port: int) -> dict[str, str]:
    """Try each kind of socket; say for each "ok" or the error it failed with."""
    outcomes = {}
    attempts = {
        "inet": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close(),
        "inet6": lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close(),
        "netlink": lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close(),
        "packet": lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close(),
        "connect": lambda: socket.create_connection((host, port), timeout=2).close(),
        "unix": lambda: [end.close() for end in socket.socketpair(socket.AF_UNIX)],
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            outcomes[name] = "ok"
        except OSError as exc:
            outcomes[name] = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return outcomes


def pypdf_configuration() -> dict[str, object]:
    """pypdf's limits in force here (its configuration, as a dict)."""
    return dataclasses.asdict(pypdf.get_configuration())
