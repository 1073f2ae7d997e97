"""Sampling a line: what a profile task does with its block of pixels.

The worker side of :func:`bfdask.profile`, pure numpy/scipy (no dask, no xarray):

* :func:`profile_plane` is :func:`skimage.measure.profile_line` to the last bit, with the
  line's sample points computed once per line and process (:func:`line_coordinates`) instead
  of once per plane;
* :func:`profile_block` is the one module-level function mapped over the (T, Z) blocks: it
  projects each Z stack, finds the line per timepoint when asked, samples every plane and
  returns a few numbers per plane (statistics, the line, optionally the profile), so pixels
  never leave the task that read them.

Where the lines lie (in pixels, found or given) is :mod:`bfdask.geometry`'s.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .geometry import LINE_FIELDS, SampledLine, line_fields
from .line import find_line
from .projection import Footprint
from .stats import StatsSpec, compute_stats

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from numpy.typing import NDArray

#: projections accepted by ``z=`` (None: a profile per Z plane)
Z_PROJECTIONS = ("max", "mean", "sum")

_GRID_MODES = {"constant": "grid-constant", "wrap": "grid-wrap"}  # as skimage maps them


def project(stack: NDArray[Any], how: str) -> NDArray[Any]:
    """Project ``stack`` (..., Z, Y, X) over Z, with numpy's own result dtype.

    The same call a user's plain loop makes, so the profile sees the same numbers.
    """
    if how not in Z_PROJECTIONS:
        raise ValueError(f"z must be one of {Z_PROJECTIONS} or None, not {how!r}")
    projected: NDArray[Any] = getattr(stack, how)(axis=-3)  # stack.max(axis=-3)...
    return projected


@dataclass(frozen=True)
class LineSpec:
    """One line and how to sample it, as :func:`skimage.measure.profile_line` takes them.

    ``src``/``dst`` are (row, col) in the coordinates of the plane handed over.
    """

    src: tuple[float, float]
    dst: tuple[float, float]
    linewidth: int = 1
    order: int | None = 1
    mode: str = "reflect"
    cval: float = 0.0
    reduce_func: Callable[..., Any] | None = None  # None: skimage's default (numpy.mean)


@functools.lru_cache(maxsize=32)  # one line per position, usually; ~N x width x 16 bytes each
def line_coordinates(
    src: tuple[float, float], dst: tuple[float, float], linewidth: int
) -> NDArray[Any]:
    """The (row, col) sample points of a line, shape ``(2, N, linewidth)``, read-only.

    The same points, to the last bit, that :func:`skimage.measure.profile_line` computes (one
    ``numpy.linspace`` across the line per sample, which costs more than the sampling itself);
    computed once per line and process instead of once per plane.
    """
    (src_row, src_col), (dst_row, dst_col) = np.asarray(src, float), np.asarray(dst, float)
    d_row, d_col = dst_row - src_row, dst_col - src_col
    theta = np.arctan2(d_row, d_col)
    length = int(np.ceil(np.hypot(d_row, d_col) + 1))  # both end points are samples
    line_row = np.linspace(src_row, dst_row, length)
    line_col = np.linspace(src_col, dst_col, length)
    row_width = (linewidth - 1) * np.cos(theta) / 2  # pixel centres, hence linewidth - 1
    col_width = (linewidth - 1) * np.sin(-theta) / 2
    rows = np.linspace(line_row - row_width, line_row + row_width, linewidth, axis=-1)
    cols = np.linspace(line_col - col_width, line_col + col_width, linewidth, axis=-1)
    points: NDArray[Any] = np.stack([rows, cols])
    points.flags.writeable = False
    return points


def footprint(
    lines: Sequence[SampledLine], shape: tuple[int, int], order: int | None
) -> Footprint | None:
    """The pixels of a ``shape`` plane that sampling ``lines`` (plane coordinates) can read,
    or None when that is not known to be a small set.

    Orders 0 and 1 (and None) weigh at most the pixels ``floor(p)`` and ``floor(p) + 1`` around
    each sample point ``p``, along each axis; one more on either side is kept, so a point
    computed a last bit differently still lands inside. None for spline orders above 1 (their
    prefilter reads the whole plane), for samples so close to the edge that a boundary mode
    could reflect or wrap them, and without any line to sample.
    """
    sampled = [line for line in lines if not line.reason]
    if not sampled or (order is not None and order > 1):
        return None
    starts = np.full(shape[0], shape[1], np.int64)
    stops = np.zeros(shape[0], np.int64)
    for line in sampled:
        points = line_coordinates(tuple(line.src), tuple(line.dst), line.linewidth)
        if not np.all(np.isfinite(points)):
            return None
        rows = np.floor(points[0]).astype(np.int64).ravel()
        cols = np.floor(points[1]).astype(np.int64).ravel()
        if rows.min() < 1 or cols.min() < 1:
            return None
        if rows.max() + 2 > shape[0] - 1 or cols.max() + 2 > shape[1] - 1:
            return None
        for dr in (-1, 0, 1, 2):
            np.minimum.at(starts, rows + dr, cols - 1)
            np.maximum.at(stops, rows + dr, cols + 3)
    used = np.flatnonzero(stops > starts)
    top, bottom = int(used[0]), int(used[-1]) + 1
    return Footprint(top, tuple(starts[top:bottom].tolist()), tuple(stops[top:bottom].tolist()))


def profile_plane(plane: NDArray[Any], spec: LineSpec) -> NDArray[Any]:
    """``skimage.measure.profile_line(plane, spec.src, spec.dst, ...)`` as float64, with the
    sample points cached (:func:`line_coordinates`); identical results
    (``tests/test_profile.py``)."""
    order = spec.order
    if plane.ndim != 2 or (plane.dtype == bool and order not in (None, 0)):
        from skimage.measure import profile_line  # RGB planes, and its own error for bool

        kwargs: dict[str, Any] = {
            "linewidth": spec.linewidth,
            "order": order,
            "mode": spec.mode,
            "cval": spec.cval,
        }
        if spec.reduce_func is not None:
            kwargs["reduce_func"] = spec.reduce_func
        return np.asarray(profile_line(plane, spec.src, spec.dst, **kwargs), dtype=np.float64)
    from scipy import ndimage

    if order is None:
        order = 0 if plane.dtype == bool else 1
    elif not 0 <= order <= 5:
        raise ValueError("Spline interpolation order has to be in the range 0-5.")
    points = line_coordinates(tuple(spec.src), tuple(spec.dst), spec.linewidth)
    # order and mode as given (scipy's stubs want literals; scipy checks them itself)
    options: dict[str, Any] = {"order": order, "mode": _GRID_MODES.get(spec.mode, spec.mode)}
    samples = ndimage.map_coordinates(
        plane, points, prefilter=order > 1, cval=spec.cval, **options
    )
    samples = np.flip(samples, axis=1)
    reduce = np.mean if spec.reduce_func is None else spec.reduce_func
    try:
        reduced = reduce(samples, axis=1)
    except TypeError:  # a function without an axis argument, as skimage handles it
        reduced = np.apply_along_axis(reduce, arr=samples, axis=1)
    return np.asarray(reduced, dtype=np.float64)


# -- the task -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockTask:
    """What :func:`profile_block` needs (small, picklable: it travels with every task).

    ``lines`` holds one line per position (index along the ``p_axis`` of the block's leading
    axes) or one for everything, in the block's own pixel coordinates; empty with
    ``each=True``: a line per timepoint is found in the task, in channel ``line_channel``
    (axis ``c_axis``; the whole channel axis is in every block).
    """

    lines: tuple[SampledLine, ...]
    p_axis: int | None
    each: bool
    c_axis: int | None
    line_channel: int
    linewidth: int | None  # with each=True: None uses the measured width
    z: str | None  # projection done in the task (None: the block has no Z axis to project)
    order: int | None
    mode: str
    cval: float
    reduce_func: Callable[..., Any] | None
    stats: StatsSpec
    scale: tuple[float, float]  # distance per pixel along (Y, X): µm, or 1 (px)
    n_profile: int  # samples of the returned profile (0: no profile)

    @property
    def width(self) -> int:
        """Output fields per plane: statistics, line (``each``), profile samples."""
        return len(self.stats.names) + (len(LINE_FIELDS) if self.each else 0) + self.n_profile

    def sampling(self, line: SampledLine) -> LineSpec:
        """How ``line`` is sampled."""
        return LineSpec(
            line.src, line.dst, line.linewidth, self.order, self.mode, self.cval, self.reduce_func
        )


def profile_block(
    block: NDArray[Any], task: BlockTask, block_info: dict[Any, Any] | None = None
) -> NDArray[Any]:
    """Statistics, line and (optionally) profile of every plane of one block.

    Parameters
    ----------
    block
        Pixels ``(..., [Z,] Y, X)``: the Z axis only when ``task.z`` projects it.
    task
        The lines, the sampling and the statistics.
    block_info
        dask's description of the block (where it lies along the leading axes).

    Returns
    -------
    numpy.ndarray
        float64 ``(..., F)``: per plane the statistics, then the :data:`LINE_FIELDS` (only
        with ``task.each``: lines found here), then ``task.n_profile`` profile samples
        (NaN-padded), NaN where there is no line.
    """
    if task.z is not None:
        block = project(block, task.z)
    lead = block.shape[:-2]
    k = len(task.stats.names)
    n_line = len(LINE_FIELDS) if task.each else 0
    out = np.full((*lead, task.width), np.nan)
    start = [0] * len(lead)
    if block_info is not None and 0 in block_info:
        start = [lo for lo, _ in block_info[0]["array-location"][: len(lead)]]
    given = [(line, task.sampling(line)) for line in task.lines]
    found: dict[tuple[int, ...], tuple[SampledLine, LineSpec]] = {}  # each=True: by index but C
    for index in np.ndindex(*lead):
        if task.each:
            line, spec = _line_here(block, index, task, found)
        else:
            p = 0 if task.p_axis is None else start[task.p_axis] + index[task.p_axis]
            line, spec = given[p if len(given) > 1 else 0]
        fields, step = line_fields(line, task.scale)
        row = out[index]  # this plane's (F,) values: a view, written in place
        if n_line:
            row[k : k + n_line] = fields
        if line.reason:
            continue
        prof = profile_plane(block[index], spec)
        if k:
            row[:k] = compute_stats(prof, task.stats, step)
        if task.n_profile:
            n = min(prof.size, task.n_profile)
            row[k + n_line : k + n_line + n] = prof[:n]
    return out


def profile_block_kept(
    block: NDArray[Any], task: BlockTask, block_info: dict[Any, Any] | None = None
) -> NDArray[Any]:
    """:func:`profile_block` with as many axes as ``block``: its pixel axes (``[Z,] Y, X``)
    become length 1 but the last, which holds the fields. Mapped this way, dask hands the
    block over as read; to drop axes it would first copy even a single block."""
    out = profile_block(block, task, block_info)
    pixel = block.ndim - (out.ndim - 1)
    return out.reshape(*out.shape[:-1], *(1,) * (pixel - 1), out.shape[-1])


def _line_here(
    block: NDArray[Any],
    index: tuple[int, ...],
    task: BlockTask,
    found: dict[tuple[int, ...], tuple[SampledLine, LineSpec]],
) -> tuple[SampledLine, LineSpec]:
    """The line of plane ``index`` (found in channel ``task.line_channel`` of the same frame,
    once per frame) and how to sample it."""
    key = tuple(i for axis, i in enumerate(index) if axis != task.c_axis)
    if key not in found:
        ref_index = list(index)
        if task.c_axis is not None:
            ref_index[task.c_axis] = task.line_channel
        auto = find_line(block[tuple(ref_index)])
        width = auto.linewidth if task.linewidth is None else task.linewidth
        line = SampledLine(auto.src, auto.dst, width, auto.width, auto.reason)
        found[key] = (line, task.sampling(line))
    return found[key]
