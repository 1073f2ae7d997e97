"""Z projections folded plane by plane while the planes are read (no Java here).

Projecting a stack the plain way reads the whole ``(Z, Y, X)`` block first (40 planes of
1024 x 1024 uint16 are 80 MiB, larger than any cache) and then walks it again. :func:`fold`
reads one plane at a time and folds it into the projection while it is still in the cache:
``max`` into the first plane, ``sum`` and ``mean`` into the narrowest accumulator that is exact
for the number of planes (``uint32`` for up to 65 537 ``uint16`` planes). The result is what
``stack.sum(axis=-3)`` (``max``, ``mean``) gives -- the same values and dtype: numpy adds the
planes of an outer axis one after the other, as :func:`fold` does, and integer sums are exact
in either accumulator.

A :class:`Footprint` narrows a fold to the pixels a later step reads (the profile's samples
read ~2 % of the rows and columns a line spans): each plane is gathered to those pixels before
it is folded in, and the projection is zero elsewhere -- an intermediate for that step only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

#: the projections :func:`fold` makes
HOWS = ("max", "sum", "mean")


@dataclass(frozen=True)
class Footprint:
    """The pixels of a plane that a computation reads: in row ``top + i``, the columns from
    ``starts[i]`` up to ``stops[i]`` (none where ``stops[i] <= starts[i]``); no row above
    ``top`` or below ``top + len(starts)``. Plane coordinates (small, hashable: it travels with
    every task)."""

    top: int
    starts: tuple[int, ...]
    stops: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.starts) != len(self.stops):
            raise ValueError("a Footprint needs as many starts as stops")

    def size(self) -> int:
        """Pixels in the footprint."""
        return sum(max(0, b - a) for a, b in zip(self.starts, self.stops, strict=True))

    def flat_index(self, rows: tuple[int, int], cols: tuple[int, int]) -> NDArray[np.intp]:
        """Indices, into the box ``rows`` x ``cols`` of a plane flattened row by row, of the
        footprint's pixels inside the box, in increasing order (read-only)."""
        return _flat_index(self, rows, cols)


@functools.lru_cache(maxsize=64)  # one per line and block shape; the same in every task
def _flat_index(
    footprint: Footprint, rows: tuple[int, int], cols: tuple[int, int]
) -> NDArray[np.intp]:
    width = cols[1] - cols[0]
    pieces = []
    for i, (start, stop) in enumerate(zip(footprint.starts, footprint.stops, strict=True)):
        row = footprint.top + i
        start, stop = max(start, cols[0]), min(stop, cols[1])
        if rows[0] <= row < rows[1] and stop > start:
            base = (row - rows[0]) * width - cols[0]
            pieces.append(np.arange(base + start, base + stop, dtype=np.intp))
    index = np.concatenate(pieces) if pieces else np.zeros(0, np.intp)
    index.flags.writeable = False
    return index


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
    the same for every plane; it may return the same buffer each time, refilled) and folded
    in as it comes; as ``stack.<how>(axis=0)`` would be."""
    if how not in HOWS:
        raise ValueError(f"how must be one of {HOWS}, not {how!r}")
    if count < 1:
        raise ValueError("a projection needs at least one plane")
    first = read_plane(0)
    dtype = np.dtype(first.dtype)
    if how == "max":
        acc = first.copy()  # folded into in place (read_plane may reuse one buffer)
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


def fold_pixels(
    read_plane: Callable[[int], NDArray[Any]], count: int, how: str, index: NDArray[Any], lead: int
) -> NDArray[Any]:
    """:func:`fold` of only some pixels of each plane, zero elsewhere.

    Each plane read (``lead`` leading axes, then rows, columns and possibly samples) is
    flattened over its rows and columns, and the pixels ``index`` of that (a
    :meth:`Footprint.flat_index`) are gathered and folded; the result has the plane's shape.
    """
    shape: tuple[int, ...] = ()

    def gathered(z: int) -> NDArray[Any]:
        nonlocal shape
        plane = read_plane(z)
        shape = plane.shape
        flat = plane.reshape(*shape[:lead], -1, *shape[lead + 2 :])
        return np.take(flat, index, axis=lead)  # several times faster than flat[..., index]

    folded = fold(gathered, count, how)
    out = np.zeros(shape, folded.dtype)
    flat = out.reshape(*shape[:lead], -1, *shape[lead + 2 :])  # a view: out is contiguous
    flat[(slice(None),) * lead + (index,)] = folded
    return out
