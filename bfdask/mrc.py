"""Where the pixels of an MRC file (cryo-EM maps and stacks) lie: its 1024-byte header.

An MRC file is a fixed header (``NX, NY, NZ, MODE`` as int32 at bytes 0-15, ``NSYMBT``, the
extended header's length, at byte 92, the machine stamp at 212) followed by the extended header
and then the planes, uncompressed, one after the other. Bio-Formats numbers the planes in that
order, so the header alone says which planes a file cut short has lost. Nothing here touches
Java.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .metadata import ImageSpec

if TYPE_CHECKING:
    from numpy.typing import NDArray

MRC_FORMAT = "Medical Research Council"
HEADER_BYTES = 1024


def data_offset(path: str) -> int | None:
    """Byte offset of the first plane (1024 + the extended header), or None if the header is
    not one this function can read."""
    try:
        with open(path, "rb") as f:
            header = f.read(HEADER_BYTES)
    except OSError:
        return None
    if len(header) < HEADER_BYTES:
        return None
    stamp = header[212]
    order = ">" if stamp == 0x11 else "<"
    extended: int = struct.unpack_from(order + "i", header, 92)[0]
    if extended < 0:
        return None
    return HEADER_BYTES + extended


def missing_planes(path: str, plane_bytes: int, count: int) -> NDArray[np.int64]:
    """Plane indices (of ``count`` planes of ``plane_bytes`` each) that lie, wholly or in part,
    past the end of the file."""
    start = data_offset(path)
    if start is None or plane_bytes <= 0:
        return np.empty(0, np.int64)
    whole = max(0, (os.path.getsize(path) - start) // plane_bytes)
    return np.arange(min(whole, count), count, dtype=np.int64)


def surplus_note(path: str, plane_bytes: int, count: int) -> str | None:
    """A sentence when the file holds more bytes than its header's sizes account for (its
    header is damaged: e.g. a mode byte flipped from float32 to int8), else None."""
    start = data_offset(path)
    if start is None:
        return None
    expected = start + plane_bytes * count
    size = os.path.getsize(path)
    if size <= expected:
        return None
    return (
        f"{path!r} may be damaged: its MRC header's sizes and mode account for {expected} "
        f"bytes, the file has {size}; the pixels may be read with the wrong shape or type"
    )


#: bytes per voxel of the MRC modes (0 int8, 1 int16, 2 float32, 3/4 complex, 6 uint16,
#: 12 float16)
MODE_BYTES = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2}


def header_note(spec: ImageSpec) -> str:
    """For an MRC file: what its header says, read little-endian, and what the file holds."""
    if "MRC" not in spec.format.upper() and "MEDICAL RESEARCH" not in spec.format.upper():
        return ""
    try:
        with open(spec.path, "rb") as f:
            header = f.read(1024)
    except OSError:
        return ""
    if len(header) < 1024:
        return ""
    nx, ny, nz, mode = struct.unpack_from("<4i", header)
    (extended,) = struct.unpack_from("<i", header, 92)
    if mode not in MODE_BYTES or min(nx, ny, nz) < 1 or extended < 0:
        return ""
    start = 1024 + extended
    needed = nx * ny * nz * MODE_BYTES[mode]
    held = spec.stamp.size if spec.stamp else 0
    if start + needed <= held:
        return ""
    return (
        f" Its MRC header, read little-endian, says {nx} x {ny} x {nz} of mode {mode}: "
        f"{needed} bytes from byte {start}, but the file ends at byte {held}: it is cut "
        "short, and Bio-Formats then reads the header with the wrong byte order."
    )
