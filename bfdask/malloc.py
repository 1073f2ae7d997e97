"""glibc settings for processes that read plane-sized buffers (no Java here).

distributed starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also pins glibc's
mmap threshold at 128 KiB: every plane buffer (MBs) is then a fresh mmap, page-faulted in and
unmapped again -- ~570 000 page faults per 2 GiB read, and a worker reading at 0.45x a client
thread (measured; see benchmarks/RESULTS.md). Raising the mmap threshold to 64 MiB and the
trim threshold to 256 MiB keeps those buffers in the heap (+35-42 %). :func:`tune_for_planes`
does it once per process, wherever pixels are first read: the JVM's start, the worker plugin's
setup, the first native read (a worker whose tasks are all native never starts a JVM).
"""

from __future__ import annotations

import ctypes
import functools
import os

_MiB = 1 << 20
#: mallopt parameters (<malloc.h>)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def tune_for_planes() -> bool:
    """Let glibc reuse plane-sized buffers where ``MALLOC_TRIM_THRESHOLD_`` is set small
    (distributed's workers); once per process. Returns whether it changed anything."""
    setting = os.environ.get("MALLOC_TRIM_THRESHOLD_", "")
    if not setting.isdigit() or int(setting) >= _MiB:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, 64 * _MiB)
    libc.mallopt(_M_TRIM_THRESHOLD, 256 * _MiB)
    return True
