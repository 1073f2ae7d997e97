"""Bio-Formats' plane numbering: the one definition of (z, c, t) <-> plane index.

``FormatTools.getIndex`` rasterises (z, c, t) by the series' dimension order, e.g. ``"XYZCT"``:
the first letter after ``XY`` varies fastest. Computing it here (no JNI call) is as Bio-Formats
does; the fake-file tests check it for every dimension order. Works on ints and on numpy arrays
alike. No Java here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from collections.abc import Mapping

Index = TypeVar("Index", int, NDArray[np.integer[Any]])


def plane_index(order: str, sizes: Mapping[str, int], z: Index, c: Index, t: Index) -> Index:
    """Bio-Formats' plane index of ``(z, c, t)`` for dimension ``order`` and ``sizes``
    (``{"Z": ..., "C": ..., "T": ...}``, C counting effective channels)."""
    position = {"Z": z, "C": c, "T": t}
    index = 0 * z
    stride = 1
    for dim in order[2:]:
        index = index + position[dim] * stride
        stride *= sizes[dim]
    return index


def plane_position(order: str, sizes: Mapping[str, int], index: Index) -> tuple[Index, ...]:
    """``(z, c, t)`` of plane ``index``: the inverse of :func:`plane_index`."""
    position = {}
    for dim in order[2:]:
        index, position[dim] = divmod(index, sizes[dim])
    return position["Z"], position["C"], position["T"]
