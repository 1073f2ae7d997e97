"""The one cache of open file handles: per thread, least recently used closed first.

Bio-Formats readers are not thread-safe, and neither is a ``tifffile.TiffFile`` (it seeks and
reads without a lock), but both release the GIL while reading, so each thread keeps its own
handles and threads read in parallel without locks (a per-file lock would throw that away).
Every kind of handle -- a Java reader, a TiffFile, a file's kept answers -- lives in this one
cache, keyed by ``(kind, path, ...)``, bounded by one setting, ``bfdask.reader.cache-size`` (env
``BFDASK_READER_CACHE_SIZE``) per thread (kept answers, which hold no file, apart), and
closed by one :func:`close_all` (interpreter exit, a worker plugin's teardown). A thread's
handles are closed when the thread ends.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol, TypeVar

from . import config

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable


class Handle(Protocol):
    """Anything with a ``close()``."""

    def close(self) -> None: ...


H = TypeVar("H", bound=Handle)


class _ThreadHandles:
    """One thread's open handles, most recently used last."""

    def __init__(self) -> None:
        self.handles: OrderedDict[Hashable, Handle] = OrderedDict()

    def close_all(self, kind: str | None = None, under: str | None = None) -> None:
        for key in [k for k in self.handles if _matches(k, kind, under)]:
            self.handles.pop(key).close()

    def __del__(self) -> None:  # the thread's local storage is dropped: close its handles
        try:
            self.close_all()
        except Exception:  # at interpreter exit or in a dead thread: best effort
            pass


_local = threading.local()
_all: weakref.WeakSet[_ThreadHandles] = weakref.WeakSet()
_all_lock = threading.Lock()
#: threads holding handles that must be closed from the thread itself before it ends (Java
#: readers: a Java call needs the thread attached). Held strongly, by thread id, because a
#: thread's locals may already be gone when its last callback runs.
_by_thread: dict[int, _ThreadHandles] = {}
#: the key kinds that need it (see :func:`put`)
ATTACHED_KINDS = ("java",)
#: kinds that hold no open file (a file's kept answers, :mod:`bfdask.answers`): bounded by
#: the same setting, but apart, so that they never close a reader
NO_FILE_KINDS = ("answers",)


def _kind(key: Hashable) -> object:
    return key[0] if isinstance(key, tuple) and key else None


def _matches(key: Hashable, kind: str | None, under: str | None) -> bool:
    """Whether ``key`` (``(kind, path, ...)``) is of ``kind`` and its path below ``under``."""
    if kind is not None and _kind(key) != kind:
        return False
    if under is None:
        return True
    path = key[1] if isinstance(key, tuple) and len(key) > 1 else None
    return isinstance(path, str) and path.startswith(under.rstrip("/") + "/")


def _thread() -> _ThreadHandles:
    mine: _ThreadHandles | None = getattr(_local, "handles", None)
    if mine is None:
        mine = _local.handles = _ThreadHandles()
        with _all_lock:
            _all.add(mine)
    return mine


def limit() -> int:
    """Handles kept open per thread (``bfdask.reader.cache-size``, at least 1)."""
    return max(1, int(config.get("bfdask.reader.cache-size") or 16))


def get(key: Hashable, valid: Callable[[H], bool] | None = None) -> H | None:
    """The calling thread's handle for ``key`` (marked most recently used), or None.

    A handle for which ``valid(handle)`` is false (closed meanwhile, its file changed) is
    closed, dropped and None returned.
    """
    mine = _thread()
    handle = mine.handles.get(key)
    if handle is None:
        return None
    if valid is not None and not valid(handle):  # type: ignore[arg-type]
        del mine.handles[key]
        handle.close()
        return None
    mine.handles.move_to_end(key)
    return handle  # type: ignore[return-value]


def put(key: Hashable, handle: H) -> H:
    """Keep ``handle`` under ``key`` for the calling thread; close the least recently used
    handles beyond :func:`limit`."""
    mine = _thread()
    mine.handles[key] = handle
    if _kind(key) in ATTACHED_KINDS:
        with _all_lock:
            _by_thread[threading.get_ident()] = mine
    holds_file = _kind(key) not in NO_FILE_KINDS
    alike = [k for k in mine.handles if (_kind(k) not in NO_FILE_KINDS) == holds_file]
    for old in alike[: max(0, len(alike) - limit())]:  # least recently used first
        mine.handles.pop(old).close()
    return handle


def close_thread(kind: str | None = None) -> None:
    """Close the calling thread's handles (of ``kind`` only, if given); called as the thread
    ends (:func:`bfdask.jvm.at_thread_exit`), when its locals may already be gone."""
    mine: _ThreadHandles | None = getattr(_local, "handles", None)
    with _all_lock:
        held = _by_thread.pop(threading.get_ident(), None) if kind is None else None
    for handles in {id(h): h for h in (mine, held) if h is not None}.values():
        handles.close_all(kind)


def close_all(kind: str | None = None, under: str | None = None) -> None:
    """Close every handle this process holds, in every thread (of ``kind`` only, and on files
    below the folder ``under`` only, if given).

    Call it only while no task is reading: a handle closed under another thread's read fails.
    """
    with _all_lock:
        every = list(_all)
    for handles in every:
        handles.close_all(kind, under)


def _close_files_at_exit() -> None:
    """atexit: close every thread's file handles that need no Java (tifffile, nd2), while the
    modules they call into are still whole; left to thread-local teardown during interpreter
    finalization, an nd2 file's memory map was closed late enough to crash the process.
    (Java readers are closed earlier, by :func:`bfdask.jvm`'s shutdown, with the JVM up.)"""
    with _all_lock:
        every = list(_all)
    for handles in every:
        for key in [k for k in handles.handles if _kind(k) not in ATTACHED_KINDS]:
            try:
                handles.handles.pop(key).close()
            except Exception:  # best effort at exit
                pass


atexit.register(_close_files_at_exit)


def count(kind: str | None = None, *, all_threads: bool = False) -> int:
    """How many handles (of ``kind``) the calling thread -- or every thread -- holds open."""
    if all_threads:
        with _all_lock:
            every = list(_all)
    else:
        mine = getattr(_local, "handles", None)
        every = [] if mine is None else [mine]
    return sum(1 for h in every for k in list(h.handles) if kind is None or _kind(k) == kind)
