"""Sizes that cannot be in the file: refused before anything of their size is built.

Bio-Formats reads a damaged header at its word: an MRC cut to 32 KiB claims 10^9 x 10^9 x 10^9
voxels, a flipped byte makes a TIFF 1.4 million pixels wide. Checked right after the metadata
is read (:func:`bfdask.metadata.spec_from_reader`), before chunk tuples or buffers of that size
exist. No Java here.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from . import mrc
from .errors import CorruptFileError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .metadata import ImageSpec

#: claimed pixel bytes above this multiple of the file's bytes cannot be real in any format
#: (no codec packs a million bytes into one; sparse mosaics and cut copies stay far below)
ABSURD_RATIO = 1 << 20


def check_claimed_sizes(spec: ImageSpec, used_files: Callable[[], list[str]]) -> None:
    """Refuse sizes that cannot be in the file(s), before anything of their size is built.

    Every plane takes at least one byte in any format, and no format packs more than
    :data:`ABSURD_RATIO` bytes of pixels into one byte of file. Bio-Formats' generated
    ``.fake`` images (0 bytes, any size) are exempt. ``used_files`` lists the dataset's files;
    it is only called when the opened file alone is too small.

    Raises
    ------
    CorruptFileError
        Names the file, the series and the numbers.
    """
    if spec.stamp is None or spec.path.lower().endswith(".fake"):
        return
    planes = spec.size_z * spec.size_c * spec.size_t
    bits = 1 if spec.dtype == "bool" else 8 * spec.itemsize
    pixel_bytes = math.prod(spec.shape) * bits // 8
    held = spec.stamp.size
    if planes <= held and pixel_bytes <= held * ABSURD_RATIO:
        return
    held = _dataset_bytes(used_files(), held)
    if planes <= held and pixel_bytes <= held * ABSURD_RATIO:
        return
    shape = " x ".join(f"{k} {v}" for k, v in spec.sizes.items())
    why = (
        f"{planes} planes, and every plane takes at least one byte"
        if planes > held
        else f"{pixel_bytes} bytes of pixels, more than {ABSURD_RATIO} times the file's bytes"
    )
    raise CorruptFileError(
        f"{spec.path!r} is damaged: Bio-Formats reads series {spec.series} ({spec.format}) as "
        f"{shape} {spec.dtype}, {why}, but the file(s) hold {held} bytes.{mrc.header_note(spec)} "
        "Its header's sizes cannot be right; check that the file is complete, or restore it "
        "from a good copy."
    )


def _dataset_bytes(files: list[str], default: int) -> int:
    total = 0
    for name in files:
        try:
            total += os.stat(name).st_size
        except OSError:
            continue
    return max(total, default)
