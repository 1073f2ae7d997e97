"""Keep the JVM's fault handlers in place until it has stopped (POSIX; no Java here).

HotSpot takes SIGSEGV (and SIGBUS, SIGILL, SIGFPE) for its own work: compiled Java code polls
for safepoints by reading a page the JVM protects when it needs every thread to stop, and
checks for null by loading through the pointer. Its handler turns those faults back into
ordinary control flow. Replace that handler while the JVM runs and the next such fault kills
the process with a plain SIGSEGV.

``faulthandler.disable()`` does exactly that when ``enable()`` ran before the JVM started: it
reinstalls the handlers it saved then. pytest's faulthandler plugin enables at configure and
disables at unconfigure, so a suite that starts Java in a test leaves the JVM without its
handler for its stop at interpreter exit, when compiled Java code still runs (shutdown hooks)
and safepoints arm: about one JPype run in four died with SIGSEGV after every test had passed.
(JPype restores the handlers itself from 1.7.2 on; 1.7.1 and javabridge do not.) :func:`save`
takes the JVM's handlers right after it starts; :func:`restore` puts back any that were
replaced, first thing at exit.

HotSpot passes a fault that is not its own to the handler it found at start. When that was
faulthandler's and faulthandler has been disabled since, that handler does nothing and
returns, and the fault repeats forever: a real crash at exit would spin instead of dying.
:func:`restore` therefore enables faulthandler again in that case, so that such a crash prints
its traceback and ends the process.
"""

from __future__ import annotations

import ctypes
import faulthandler
import signal
import sys

#: the signals HotSpot handles for itself (its handler chains any other fault on)
SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE")
    if hasattr(signal, name)
)
#: bytes of a ``struct sigaction`` buffer: more than any libc's (glibc x86-64: 152); kept
#: opaque, since only ``sigaction`` itself reads it
_SIZE = 512

_saved: dict[int, ctypes.Array[ctypes.c_char]] = {}
#: whether faulthandler was enabled when the JVM started (its handler is the one HotSpot
#: chains other faults to)
_faulthandler_chained = False


def _libc() -> ctypes.CDLL | None:
    if sys.platform == "win32":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to ask
        return None


def _current(libc: ctypes.CDLL, signum: int) -> ctypes.Array[ctypes.c_char] | None:
    action = ctypes.create_string_buffer(_SIZE)
    if libc.sigaction(signum, None, action) != 0:
        return None
    return action


def _handler(action: ctypes.Array[ctypes.c_char]) -> int | None:
    """The handler address (``sa_handler`` / ``sa_sigaction``, the first member on Linux and
    macOS)."""
    return ctypes.c_void_p.from_buffer(action).value


def save() -> None:
    """Remember the fault handlers installed now (call right after the JVM starts)."""
    global _faulthandler_chained
    _faulthandler_chained = faulthandler.is_enabled()
    libc = _libc()
    if libc is None:
        return
    for signum in SIGNALS:
        action = _current(libc, signum)
        if action is not None:
            _saved[signum] = action


def restore() -> list[int]:
    """Reinstall every saved handler that was replaced since :func:`save`; returns the signals
    restored. Call it before Java runs at exit (the JVM's stop)."""
    libc = _libc()
    if libc is None or not _saved:
        return []
    replaced = [
        signum
        for signum, saved in _saved.items()
        if (now := _current(libc, signum)) is not None and _handler(now) != _handler(saved)
    ]
    if replaced and _faulthandler_chained and not faulthandler.is_enabled():
        _enable_faulthandler()  # before the JVM's handlers go back over its own
    return [signum for signum in replaced if libc.sigaction(signum, _saved[signum], None) == 0]


def _enable_faulthandler() -> None:
    try:
        stderr = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
    except (OSError, ValueError):  # closed, or not a file
        stderr = 2
    try:
        faulthandler.enable(file=stderr, all_threads=True)
    except (OSError, ValueError, RuntimeError):  # pragma: no cover - best effort at exit
        pass
