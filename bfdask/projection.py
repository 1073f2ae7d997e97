"""Z projections folded plane by plane while the planes are read (no Java here).

Projecting a stack the plain way reads the whole ``(Z, Y, X)`` block first (40 planes of
1024 x 1024 uint16 are 80 MiB, larger than any cache) and then walks it again. :func:`fold`
reads one plane at a time and folds it into the projection while it is still in the cache:
``max`` into the first plane, ``sum`` and ``mean`` into the narrowest accumulator that is exact
for the number of planes (``uint32`` for up to 65 537 ``uint16`` planes). The result is what
``stack.sum(axis=-3)`` (``max``, ``mean``) gives -- the same values and dtype: numpy adds the
planes of an outer axis one after the other, as :func:`fold` does, and integer sums are exact
in either accumulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

#: the projections :func:`fold` makes
HOWS = ("max", "sum", "mean")


def result_dtype(dtype: np.dtype[Any], how: str) -> np.dtype[Any]:
    """The dtype numpy's ``stack.<how>(axis=-3)`` returns for ``dtype`` pixels."""
    return np.dtype(getattr(np.zeros((1, 1, 1), dtype), how)(axis=0).dtype)


def accumulator(dtype: np.dtype[Any], how: str, count: int) -> np.dtype[Any]:
    """The dtype ``count`` planes of ``dtype`` are summed in: 32 bits where that is exact
    for 8- and 16-bit integers, else numpy's own (64-bit integers; a float's own dtype)."""
    if how == "max":
        return dtype
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        narrow = np.dtype(np.uint32 if dtype.kind == "u" else np.int32)
        info, wide = np.iinfo(dtype), np.iinfo(narrow)
        if count * int(info.max) <= wide.max and count * int(info.min) >= wide.min:
            return narrow
    if dtype.kind == "f":
        return dtype
    return result_dtype(dtype, "sum")


def fold(read_plane: Callable[[int], NDArray[Any]], count: int, how: str) -> NDArray[Any]:
    """The ``how`` projection of ``count`` planes, each read by ``read_plane(z)`` (any shape,
    the same for every plane) and folded in as it comes; as ``stack.<how>(axis=0)`` would be."""
    if how not in HOWS:
        raise ValueError(f"how must be one of {HOWS}, not {how!r}")
    if count < 1:
        raise ValueError("a projection needs at least one plane")
    first = read_plane(0)
    dtype = np.dtype(first.dtype)
    if how == "max":
        acc = first  # a fresh array of its own: folded into in place
        for z in range(1, count):
            np.maximum(acc, read_plane(z), out=acc)
        return acc
    acc = first.astype(accumulator(dtype, how, count))
    for z in range(1, count):
        np.add(acc, read_plane(z), out=acc)
    if how == "sum":
        return acc.astype(result_dtype(dtype, "sum"), copy=False)
    # numpy's mean of integers sums in float64 (exact here) and divides; of floats, in their
    # own dtype, the same way
    mean: NDArray[Any] = np.true_divide(acc.astype(result_dtype(dtype, "mean")), count)
    return mean
