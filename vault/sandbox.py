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
reason.

The child has no network. A parser that is taken over by a crafted file could otherwise send
the plaintext it holds anywhere, or reach the database on loopback. Before it reads its input
the child installs a seccomp filter (with ``PR_SET_NO_NEW_PRIVS``, so no privilege is needed):
``socket()`` fails with ``EACCES`` for every address family but ``AF_UNIX``, and so does
``io_uring_setup`` (io_uring can open sockets without the ``socket`` system call), as does
every system call made through another architecture's entry (x86_64's x32 and i386 ones), which
the filter's numbers would not describe. The filter cannot be removed, and children of the
child inherit it. The child holds no network socket to begin with: the fork server was started
with fork+exec and passes on only the pipes of each call (``multiprocessing`` pipes are
``os.pipe``, not sockets). On a machine where the filter cannot be installed (an architecture
other than x86_64 and aarch64, or a kernel without seccomp) the call fails with "network
isolation unavailable" instead of running unisolated. When the server runs as root the child
also moves into a new, empty network namespace first (about a millisecond); that is belt and
braces, the filter is the guarantee.

Beyond that this is a resource limit, not a privilege boundary: the child runs as the same
user and can read what the parent can read; the pickled result is trusted no more than the
child is.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import gc
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import signal
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

#: Modules the fork server imports once, so each child starts with them loaded (pypdf imports
#: its filters only when it first decodes or encodes a stream).
PRELOAD = ["pypdf", "pypdf.filters", "vault.documents.watermark", "vault.screening.analysis"]
#: Extra seconds the child's own alarm allows beyond the wall limit, in case the parent is gone.
_ALARM_GRACE = 5
#: Seconds a child that has answered (or hung up) gets to exit before it is killed.
_EXIT_GRACE = 1.0
#: Pipe buffer size asked for (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default).
_PIPE_BYTES = 1024 * 1024
_context = multiprocessing.get_context("forkserver")


#: Reasons of failures of the moment rather than of the work: the machine lacks the network
#: filter, or the child crashed or was killed from outside. Any other failure (a time, CPU or
#: memory limit, an error raised by the work) happens again on the same input, so callers may
#: keep it instead of trying again.
MOMENTARY_FAILURES = ("network isolation unavailable", "crashed", "killed")


class SandboxError(Exception):
    """The limited call failed: timed out, hit a limit, crashed, or raised an unexpected error.

    ``reason`` is short and fit for logs and for an error page ("timed out after 10 s").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def momentary(self) -> bool:
        """Whether trying again may succeed (see :data:`MOMENTARY_FAILURES`)."""
        return self.reason.startswith(MOMENTARY_FAILURES)


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
        if outcome[0] == "isolation":
            raise SandboxError("network isolation unavailable")
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
    """In the child: isolate and limit ourselves, read the call, run it, send the outcome."""
    # The objects inherited from the fork server are never garbage: keeping the collector off
    # them saves its time and the copy-on-write page copies its bookkeeping would cause.
    gc.freeze()
    try:
        _isolate_network()
    except OSError:
        # Never run the call without isolation; the input is not even read.
        with contextlib.suppress(OSError):
            sender.send(("isolation",))
        return
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


# -- network isolation (see the module docstring) ----------------------------------------

#: Per architecture: the ``AUDIT_ARCH_*`` value seccomp reports, and the numbers of ``socket``
#: and of the three io_uring calls (``io_uring_setup``, ``_enter``, ``_register``).
_ARCHES = {
    "x86_64": (0xC000003E, 41, (425, 426, 427)),
    "aarch64": (0xC00000B7, 198, (425, 426, 427)),
}
#: x86_64 system call numbers with this bit set are x32 ABI calls (a second ``socket`` number).
_X32_SYSCALL_BIT = 0x40000000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_DENY = 0x00050000 | errno.EACCES  # SECCOMP_RET_ERRNO with EACCES
_CLONE_NEWNET = 0x40000000
# Classic BPF opcodes: load a 32-bit word of ``struct seccomp_data``, compare, return.
_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JUMP_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
# Offsets in ``struct seccomp_data``: nr, arch, then args[0] (its low half: little-endian).
_NR, _ARCH, _ARG0 = 0, 4, 16


class _SockFilter(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


def network_filter(machine: str) -> list[tuple[int, int, int, int]]:
    """The seccomp program (code, jump-if-true, jump-if-false, k) for ``machine``.

    Raises OSError for an architecture it has no system call numbers for.
    """
    if machine not in _ARCHES or struct.calcsize("P") != 8:
        raise OSError(errno.ENOSYS, f"no seccomp filter for {machine}")
    arch, socket_nr, io_uring = _ARCHES[machine]
    deny = (_RETURN, 0, 0, _SECCOMP_RET_DENY)
    program = [
        (_LOAD_WORD, 0, 0, _ARCH),
        (_JUMP_EQUAL, 1, 0, arch),  # our architecture: skip the denial
        deny,
        (_LOAD_WORD, 0, 0, _NR),
    ]
    if machine == "x86_64":
        program += [(_JUMP_AT_LEAST, 0, 1, _X32_SYSCALL_BIT), deny]
    for number in io_uring:
        program += [(_JUMP_EQUAL, 0, 1, number), deny]
    program += [
        (_JUMP_EQUAL, 1, 0, socket_nr),  # socket(): go on to look at its address family
        (_RETURN, 0, 0, _SECCOMP_RET_ALLOW),
        (_LOAD_WORD, 0, 0, _ARG0),
        (_JUMP_EQUAL, 0, 1, 1),  # AF_UNIX
        (_RETURN, 0, 0, _SECCOMP_RET_ALLOW),
        deny,
    ]
    return program


def _isolate_network() -> None:
    """Take away this process's network for good; raises OSError if that is impossible."""
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() == 0:
        libc.unshare(ctypes.c_int(_CLONE_NEWNET))  # extra; a refusal changes nothing
    program = network_filter(platform.machine())
    filters = (_SockFilter * len(program))(*program)
    prog = _SockFprog(len(program), filters)
    for option, args in ((_PR_SET_NO_NEW_PRIVS, (1, 0, 0, 0)),
                         (_PR_SET_SECCOMP, (_SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0))):
        if libc.prctl(ctypes.c_int(option), *(ctypes.c_ulong(a) for a in args)) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"prctl({option}): {os.strerror(code)}")
