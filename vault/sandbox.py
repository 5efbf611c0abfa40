"""Run a function on untrusted input in a child process with CPU, memory and time limits.

Parsing files uploaded by applicants (stamping PDFs, later screening them) can be made to
loop, to allocate without bound or to crash the interpreter. :func:`run_limited` runs such work
in a child process: the child sets ``RLIMIT_CPU`` and ``RLIMIT_AS`` on itself before it sees the
input, the parent waits at most ``wall_seconds`` and then kills it. Whatever goes wrong comes
back as :class:`SandboxError` with a short reason, or as one of the caller's domain errors.

The children come from a ``forkserver``: a small single-threaded server process, started on
first use, that has already imported pypdf and the watermark module and forks a fresh child for
each call. Forking the multi-threaded gunicorn worker itself would be unsafe (locks held by
other threads stay locked in the child; Python 3.12+ warns about it), and a ``spawn`` start
would import pypdf anew on every call (about 250 ms). The server is started with fork+exec and
only ever forks itself, single-threaded, so that warning never arises.

Measured on a 2-CPU development VM: a call costs about 10-15 ms more than the work itself, plus
about 4 ms per MB of arguments and result (copies into the fresh child's memory); stamping a
2 MB, 100-page PDF takes about 35 ms longer than in process (``bench/watermark.py``). A fresh
process per call, rather than a pool of reused workers, keeps each applicant's document alone
in its process and makes the CPU limit a limit per call.

Arguments and the result travel over a pipe (pickled), never through files: the data is
plaintext of confidential documents. Core dumps are switched off in the child for the same
reason. This is a resource limit, not a privilege boundary: the child runs as the same user,
so a child that is taken over could do what the parent can (seccomp or a separate user would
be needed for that); the pickled result is trusted no more than the child is.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import multiprocessing
import multiprocessing.connection
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

#: Modules the fork server imports once, so each child starts with them loaded (pypdf imports
#: its filters only when it first decodes or encodes a stream).
PRELOAD = ["pypdf", "pypdf.filters", "vault.documents.watermark"]
#: Extra seconds the child's own alarm allows beyond the wall limit, in case the parent is gone.
_ALARM_GRACE = 5
#: Seconds a child that has answered (or hung up) gets to exit before it is killed.
_EXIT_GRACE = 1.0
#: Pipe buffer size asked for (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default).
_PIPE_BYTES = 1024 * 1024
_context = multiprocessing.get_context("forkserver")


class SandboxError(Exception):
    """The limited call failed: timed out, hit a limit, crashed, or raised an unexpected error.

    ``reason`` is short and fit for logs and for an error page ("timed out after 10 s").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """Resource limits for one call: CPU seconds, address space in bytes, wall-clock seconds."""

    cpu_seconds: int = 20
    memory_bytes: int = 1024**3
    wall_seconds: float = 30.0


def run_limited(func: Callable[..., Any], *args: Any, cpu_seconds: int, memory_bytes: int,
                wall_seconds: float, passthrough: tuple[type[Exception], ...] = ()) -> Any:
    """``func(*args)`` in a limited child process; raises SandboxError or a passthrough error.

    ``func`` must be a module-level function (the child imports it by name). An exception
    raised by ``func`` that is an instance of one of ``passthrough`` is raised again in the
    parent as that class, built from its message (so such classes take one message argument,
    plus the ``values`` of a message template when the exception carries them);
    any other exception becomes ``SandboxError`` with the exception's type and message.
    """
    _context.set_forkserver_preload(_preload())  # takes effect when the server first starts
    receiver, sender = _context.Pipe(duplex=False)
    arguments, feeder = _context.Pipe(duplex=False)
    for end in (sender, feeder):
        _widen(end)
    child = _context.Process(
        target=_child_main,
        args=(sender, arguments, cpu_seconds, memory_bytes, wall_seconds + _ALARM_GRACE),
        name="vault-sandbox", daemon=True)
    deadline = time.monotonic() + wall_seconds
    outcome: Any = None
    answered = False
    try:
        child.start()
        sender.close()
        arguments.close()
        try:
            feeder.send((func, args, passthrough))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child died before reading; its exit code says why
        finally:
            feeder.close()
        if not receiver.poll(max(0.0, deadline - time.monotonic())):
            raise SandboxError(f"timed out after {wall_seconds:g} s")
        with contextlib.suppress(EOFError):  # no answer: the exit code says why
            outcome = receiver.recv()
        answered = True
    finally:
        # Always kill (unless it is finishing after its answer) and reap, also on errors.
        _reap(child, _EXIT_GRACE if answered else 0.0)
        exitcode = child.exitcode
        child.close()
        for end in (receiver, sender, arguments, feeder):
            end.close()
    return _unpack(outcome, exitcode, passthrough, wall_seconds)


def _widen(end: multiprocessing.connection.Connection) -> None:
    """Give the pipe a 1 MiB buffer: a 100 MB PDF then crosses in 100 writes, not 1,600."""
    with contextlib.suppress(OSError):  # the default (64 KiB) still works, only slower
        fcntl.fcntl(end.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _preload() -> list[str]:
    """:data:`PRELOAD`, plus the modules that the main script's top-level names come from.

    A forkserver child re-runs the parent's main script before it runs anything (so that
    functions defined there could be unpickled). With the script's imports already loaded in
    the server that costs about a millisecond; otherwise, under gunicorn's console script for
    instance, each call would import gunicorn anew (about 60 ms).
    """
    main = sys.modules.get("__main__")
    found = set()
    for value in vars(main).values() if main is not None else ():
        name = value.__name__ if isinstance(value, ModuleType) else getattr(
            value, "__module__", None)
        if isinstance(name, str) and name not in ("__main__", "builtins"):
            found.add(name)
    return [*PRELOAD, *sorted(found - set(PRELOAD))]


def _reap(child: multiprocessing.process.BaseProcess, grace: float) -> None:
    """Wait up to ``grace`` seconds for ``child`` to exit, then kill it; wait until it is gone."""
    if child.pid is None:
        return  # never started
    child.join(grace)
    if child.exitcode is None:
        child.kill()
        child.join()


def _unpack(outcome: Any, exitcode: int | None, passthrough: tuple[type[Exception], ...],
            wall_seconds: float) -> Any:
    """The result, or the exception, that the child's answer and exit code stand for."""
    if isinstance(outcome, tuple) and outcome:
        if outcome[0] == "ok":
            return outcome[1]
        if outcome[0] == "passthrough":
            index, message, values = outcome[1:]
            raise passthrough[index](message, **values)
        if outcome[0] == "memory":
            raise SandboxError("memory limit exceeded")
        if outcome[0] == "error":
            raise SandboxError(f"failed: {outcome[1]}: {outcome[2]}")
    if exitcode == -signal.SIGXCPU:
        raise SandboxError("cpu limit exceeded")
    if exitcode == -signal.SIGALRM:
        raise SandboxError(f"timed out after {wall_seconds:g} s")
    if exitcode == -signal.SIGKILL:  # not by us: the CPU hard limit or the kernel's OOM killer
        raise SandboxError("killed (signal 9)")
    if exitcode is not None and exitcode < 0:
        raise SandboxError(f"crashed (signal {-exitcode})")
    raise SandboxError(f"crashed (exit code {exitcode})")


def _child_main(sender: multiprocessing.connection.Connection,
                arguments: multiprocessing.connection.Connection,
                cpu_seconds: int, memory_bytes: int, alarm_seconds: float) -> None:
    """In the child: limit ourselves, read the call, run it, send back the outcome."""
    # The objects inherited from the fork server are never garbage: keeping the collector off
    # them saves its time and the copy-on-write page copies its bookkeeping would cause.
    gc.freeze()
    _limit(resource.RLIMIT_CORE, 0)  # a core dump would write plaintext to disk
    # SIGXCPU at the soft limit; the kernel's SIGKILL one second later if that is ignored.
    _limit(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1)
    _limit(resource.RLIMIT_AS, memory_bytes)
    # Ends the child even if the parent is gone and cannot kill it (default SIGALRM action).
    signal.setitimer(signal.ITIMER_REAL, alarm_seconds)
    passthrough: tuple[type[Exception], ...] = ()
    try:
        func, args, passthrough = arguments.recv()  # under the limits: the input counts too
        arguments.close()
        outcome: tuple[Any, ...] = ("ok", func(*args))
    except MemoryError:
        outcome = ("memory",)
    except Exception as exc:
        matches = [i for i, cls in enumerate(passthrough) if isinstance(exc, cls)]
        # A message with placeholders travels as its template and values, so the parent's
        # error can still be shown translated (see ``vault.errors.DomainError``).
        outcome = (("passthrough", matches[0], getattr(exc, "message_template", str(exc)),
                    getattr(exc, "values", {})) if matches
                   else ("error", type(exc).__name__, str(exc)))
    try:
        sender.send(outcome)
    except OSError:
        pass  # the parent is gone (it gave up waiting): nobody to tell
    except MemoryError:
        sender.send(("memory",))  # e.g. the result was too large to pickle within the limit
    except Exception as exc:  # e.g. a result that cannot be pickled
        sender.send(("error", type(exc).__name__, str(exc)))


def _limit(kind: int, soft: int, hard: int | None = None) -> None:
    """Lower a resource limit (never above the current hard limit, which cannot be raised)."""
    _, current_hard = resource.getrlimit(kind)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(kind, (soft, hard))
