"""A file's identity on disk, and how many planes this process has read (no Java here).

A series is opened once (metadata, plan) and read many times later, by tasks that may run in
other processes. Each read first checks that the file is still the one that was opened: its
:class:`FileStamp` holds what an ordinary copy or rewrite cannot keep, so that one array never
mixes pixels of two versions of a file. ``cp -p``, ``rsync -t`` and ``touch -r`` restore the
size and modification time, but a rewrite in place changes the inode's change time (ctime,
which no user call can set) and a replacement by rename changes the inode number.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .errors import BfdaskFileNotFoundError, FileChangedError


@dataclass(frozen=True)
class FileStamp:
    """What identifies one version of a file: size, mtime, ctime (ns), inode and device."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    def differences(self, other: FileStamp) -> list[str]:
        """Human-readable list of what differs between ``self`` (then) and ``other`` (now)."""
        out = []
        if self.size != other.size:
            out.append(f"size {self.size} -> {other.size} bytes")
        if self.mtime_ns != other.mtime_ns:
            out.append(f"modification time {self.mtime_ns} -> {other.mtime_ns} ns")
        if (self.inode, self.device) != (other.inode, other.device):
            out.append("replaced by another file (inode or device differs)")
        elif self.ctime_ns != other.ctime_ns:
            out.append("rewritten or its attributes changed (inode change time differs)")
        return out


def file_stamp(path: str) -> FileStamp | None:
    """The :class:`FileStamp` of ``path``; None if there is no such file.

    Paths Bio-Formats resolves itself (a ``.fake`` spec that names no file) have no stamp.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileStamp(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def check_unchanged(path: str, stamp: FileStamp | None) -> None:
    """Raise if ``path`` is no longer the version stamped ``stamp`` when it was opened.

    Parameters
    ----------
    path
        The file.
    stamp
        Its stamp at open (None: nothing to check, e.g. a ``.fake`` spec).

    Raises
    ------
    FileNotFoundError
        The file was deleted (or moved) after it was opened.
    FileChangedError
        It was changed, rewritten in place or replaced: reading on would mix two versions.
    """
    if stamp is None:
        return
    now = file_stamp(path)
    if now == stamp:
        return
    if now is None:
        raise BfdaskFileNotFoundError(
            f"{path!r} was deleted or moved after it was opened; "
            "restore it, or open the file at its new place with bfdask.open."
        )
    raise FileChangedError(
        f"{path!r} changed on disk after it was opened ({'; '.join(stamp.differences(now))}); "
        "its pixels may no longer match the metadata read at open. Open it again with "
        "bfdask.open to read the new version."
    )


# -- planes read, by either pixel path (tests and diagnostics) --------------------------------

_planes_read = 0
_count_lock = threading.Lock()


def planes_read() -> int:
    """Number of planes (or plane tiles) this process has read so far, by either pixel path."""
    return _planes_read


def count_planes(n: int) -> None:
    """Add ``n`` planes to :func:`planes_read`."""
    global _planes_read
    with _count_lock:
        _planes_read += n
