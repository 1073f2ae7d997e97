"""Intensity profiles along a line per timepoint and channel; frames that break the series.

The analysis bfdask exists for: per timepoint, project the Z stack, take scikit-image's
:func:`skimage.measure.profile_line` along the embryo, reduce the profile to numbers (min, max,
mean) and plot them against time, telling failed acquisitions (:func:`bad_timepoints`) from
biology.

How it runs: :func:`profile` first narrows the array to the rows and columns the line can touch
(dask fuses that slice into the read where the array's getter allows it), then maps one pure,
module-level function, :func:`profile_block`, over the (T, Z) blocks with
:func:`dask.array.blockwise` (the general form of ``map_blocks``). Each task reads
its block and returns only the profile (a few kB), so pixels never leave the process that read
them; min/max/mean are tiny reductions of the profiles.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .stats import StatsArg, StatsSpec, compute_stats, parse_stats

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

#: projections accepted by ``z=`` (None: a profile per Z plane)
Z_PROJECTIONS = ("max", "mean", "sum")
_SPATIAL = ("Z", "Y", "X")


@dataclass(frozen=True)
class LineSpec:
    """Everything a task needs to profile its block (small, picklable, no pixels).

    ``src``/``dst`` are (row, col) in the coordinates of the block handed to the task (that is,
    relative to the crop :func:`profile` reads), not of the whole image.
    """

    src: tuple[float, float]
    dst: tuple[float, float]
    linewidth: int = 1
    order: int | None = 1
    mode: str = "reflect"
    cval: float = 0.0
    reduce_func: Callable[..., Any] | None = None  # None: skimage's default (numpy.mean)
    z: str | None = "max"  # projection over the Z axis of the block, or None (per plane)
    has_z: bool = True  # whether the block has a Z axis (third from last)


def _project(stack: np.ndarray, how: str) -> np.ndarray:
    """Project ``stack`` (..., Z, Y, X) over Z, with numpy's own result dtype.

    The same call a user's plain loop makes, so the profile sees the same numbers.
    """
    if how == "max":
        return stack.max(axis=-3)
    if how == "mean":
        return stack.mean(axis=-3)
    if how == "sum":
        return stack.sum(axis=-3)
    raise ValueError(f"z must be one of {Z_PROJECTIONS} or None, not {how!r}")


@functools.lru_cache(maxsize=32)  # one line per position, usually; ~N x width x 16 bytes each
def line_coordinates(
    src: tuple[float, float], dst: tuple[float, float], linewidth: int
) -> np.ndarray:
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
    points = np.stack([rows, cols])
    points.flags.writeable = False
    return points


_GRID_MODES = {"constant": "grid-constant", "wrap": "grid-wrap"}  # as skimage maps them


def _profile_plane(plane: np.ndarray, spec: LineSpec) -> np.ndarray:
    """``skimage.measure.profile_line(plane, spec.src, spec.dst, ...)``, with the sample
    points cached (:func:`line_coordinates`); identical results (``tests/test_profile.py``)."""
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
    samples = ndimage.map_coordinates(
        plane,
        points,
        prefilter=order > 1,
        order=order,
        mode=_GRID_MODES.get(spec.mode, spec.mode),
        cval=spec.cval,
    )
    samples = np.flip(samples, axis=1)
    reduce = np.mean if spec.reduce_func is None else spec.reduce_func
    try:
        reduced = reduce(samples, axis=1)
    except TypeError:  # a function without an axis argument, as skimage handles it
        reduced = np.apply_along_axis(reduce, arr=samples, axis=1)
    return np.asarray(reduced, dtype=np.float64)


def profile_block(block: np.ndarray, spec: LineSpec) -> np.ndarray:
    """Profile every plane (or Z projection) of one block along ``spec``'s line.

    Parameters
    ----------
    block
        Pixels with the line's plane in the last two axes: ``(..., Z, Y, X)`` when
        ``spec.has_z``, else ``(..., Y, X)``.
    spec
        The line, in the block's own (row, col) coordinates, and how to sample it.

    Returns
    -------
    numpy.ndarray
        float64 profiles: ``(..., N)`` after a Z projection (or without Z), ``(..., Z, N)`` per
        plane, with ``N`` samples along the line as skimage counts them.
    """
    if spec.has_z and spec.z is not None:
        block = _project(block, spec.z)
    lead = block.shape[:-2]
    planes = block.reshape((-1, *block.shape[-2:]))
    profiles = [_profile_plane(plane, spec) for plane in planes]
    if not profiles:  # an empty block (a zero-size dimension)
        n = _n_samples(spec.src, spec.dst)
        return np.empty((*lead, n), np.float64)
    return np.stack(profiles).reshape((*lead, profiles[0].shape[0]))


def _n_samples(src: Sequence[float], dst: Sequence[float]) -> int:
    """Samples along the line, as :func:`skimage.measure.profile_line` takes them."""
    return int(np.ceil(np.hypot(dst[0] - src[0], dst[1] - src[1]) + 1))


# -- from the user's arguments to a LineSpec --------------------------------------------------


def _axis_step(data: xr.DataArray, dim: str) -> tuple[float, float] | None:
    """(origin, step) of a physical coordinate of ``dim``, if it has one."""
    if dim not in data.coords or data.sizes[dim] < 1:
        return None
    values = np.asarray(data.coords[dim].values, dtype=float)
    attr = {"Y": "physical_size_y", "X": "physical_size_x"}[dim]
    step = data.attrs.get(attr)
    if values.size >= 2:
        step = float(values[1] - values[0])
    if not step:
        return None
    return float(values[0]), float(step)


def _to_pixels(
    data: xr.DataArray, point: Sequence[float], units: str, name: str
) -> tuple[float, float]:
    if len(point) != 2:
        raise ValueError(f"{name} must be a (row, col) pair, not {point!r}")
    row, col = (float(v) for v in point)
    if units in ("px", "pixel", "pixels"):
        return row, col
    if units not in ("um", "µm", "micron"):
        raise ValueError(f"units must be 'px' or 'um', not {units!r}")
    y, x = _axis_step(data, "Y"), _axis_step(data, "X")
    if y is None or x is None:
        raise ValueError(
            f"{name} given in µm but {data.attrs.get('path', 'the data')!r} records no physical "
            "pixel size (no Y/X coordinates); pass pixel coordinates (units='px')."
        )
    return (row - y[0]) / y[1], (col - x[0]) / x[1]


def _crop(
    src: tuple[float, float],
    dst: tuple[float, float],
    shape: tuple[int, int],
    linewidth: int,
    order: int | None,
    mode: str,
) -> tuple[slice, slice]:
    """Rows and columns the line's samples can touch; the whole plane when unsure.

    Exact for interpolation orders 0 and 1 (a sample only weighs its neighbouring pixels) with
    both ends inside the image; spline orders, wrapping modes and lines leaving the image read
    the whole plane, so the result is always identical to profiling the full plane.
    """
    full = (slice(0, shape[0]), slice(0, shape[1]))
    if (order is not None and order > 1) or "wrap" in mode:
        return full
    for point in (src, dst):
        if not (0 <= point[0] <= shape[0] - 1 and 0 <= point[1] <= shape[1] - 1):
            return full
    margin = math.ceil(linewidth / 2) + 2
    out = []
    for axis in (0, 1):
        lo = max(0, math.floor(min(src[axis], dst[axis])) - margin)
        hi = min(shape[axis], math.ceil(max(src[axis], dst[axis])) + margin + 1)
        out.append(slice(lo, hi))
    return out[0], out[1]


def _distance(
    data: xr.DataArray, src: tuple[float, float], dst: tuple[float, float], n: int
) -> tuple[np.ndarray, str]:
    """Distance of each sample from ``src``: µm when the pixel size is known, else pixels."""
    dy, dx = dst[0] - src[0], dst[1] - src[1]
    y, x = _axis_step(data, "Y"), _axis_step(data, "X")
    if y is not None and x is not None:
        return np.linspace(0.0, math.hypot(dy * y[1], dx * x[1]), n), "µm"
    return np.linspace(0.0, math.hypot(dy, dx), n), "px"


# -- the public functions --------------------------------------------------------------------


def profile(
    data: xr.DataArray,
    src: Sequence[float] | None = None,
    dst: Sequence[float] | None = None,
    *,
    line: str | None = None,
    linewidth: int | None = None,
    order: int | None = 1,
    mode: str = "reflect",
    cval: float = 0.0,
    reduce_func: Callable[..., Any] | None = None,
    z: str | None = "max",
    units: str = "px",
    stats: StatsArg | None = None,
    profiles: bool = False,
    reference: int | str = 0,
    line_channel: int | str = 0,
    slope_sigma: float = 0.0,
    baseline_n: int = 5,
    baseline: float | None = None,
) -> xr.Dataset:
    """Intensity profile along a line, per timepoint and channel, with its statistics.

    Lazy: returns dask-backed variables; ``.compute()`` (or ``dask.compute`` of several) runs
    one task per (T, Z) block of ``data``, in the process that reads the block's pixels; the
    task keeps only the rows and columns the line can touch. When a Z stack spans several blocks
    (stacks above dask's ``array.chunk-size``), each block is projected where it is read and
    the partial projections are combined (for ``z="mean"`` the result may then differ from
    numpy's in the last bits); ``Y``/``X`` tiles are joined per plane.

    Two forms. ``profile(data, src, dst)`` (no ``line``, no ``stats``) returns the profile and
    its ``min``/``max``/``mean`` as described below. With ``line="auto"`` or ``stats=``, each task
    also reduces its profiles to the chosen statistics, and the result holds one variable per
    statistic, the line used, and the profiles only if ``profiles=True`` (see *Returns*).

    Parameters
    ----------
    data
        A DataArray from :func:`bfdask.open` or :func:`bfdask.open_positions` (or any DataArray
        with ``Y`` and ``X`` dims, dask or numpy backed), possibly narrowed with ``sel``/``isel``.
    src, dst
        Start and end of the line as ``(row, col)``, like :func:`skimage.measure.profile_line`:
        pixel indices of ``data`` as given, or µm along its ``Y``/``X`` coordinates with
        ``units="um"``. Both ends are included. Not with ``line="auto"``.
    line
        ``"auto"``: find the line along the bright elongated structure (the embryo) with
        :func:`bfdask.line.find_line` in the Z projection (``z``; max when ``z=None``) of
        channel ``line_channel``: once per position at timepoint ``reference`` (these
        projections are computed when ``profile`` is called), or in every task for every
        timepoint with ``reference="each"`` (for every plane, with ``z=None``). Endpoints at
        the structure's extent, clipped to the image; ``linewidth`` (unless given) its
        half-maximum width, rounded. A position
        whose ``reference`` frame shows no line is tried at the next 3 timepoints
        (``line_reference`` records the one used).
    linewidth
        Width of the line in pixels; samples across the width are reduced by ``reduce_func``.
        Default 1, or the measured width with ``line="auto"``.
    order
        Spline interpolation order (0-5), as in :func:`skimage.measure.profile_line`.
    mode, cval
        How to sample beyond the image edge, as in :func:`skimage.measure.profile_line`.
    reduce_func
        Reduces the samples across the line's width (called with ``axis=1``); None uses
        skimage's default, :func:`numpy.mean`. On a cluster it must be picklable (a
        module-level function).
    z
        ``"max"``, ``"mean"`` or ``"sum"``: project each Z stack first (numpy's result dtype,
        as a plain loop would), or None for a profile per Z plane. Ignored without a ``Z`` dim.
    units
        Units of ``src``/``dst``: ``"px"`` (default) or ``"um"``.
    stats
        Statistics computed in the tasks, one variable each: names of built-ins (``"min"``,
        ``"max"``, ``"mean"``, ``"min_max_ratio"``, ``"slope"``, ``"missing"``; see
        :mod:`bfdask.stats`), a comma-separated string of them, callables of the 1-D profile
        returning a number (named by ``__name__``; picklable on a cluster), or a mapping
        ``{name: name or callable}``. Default with ``line="auto"``: min, max, mean.
    profiles
        Also return the profiles (``profile`` variable) with ``stats``/``line="auto"``.
    reference
        Timepoint (index along ``T`` of each position) whose projection gives the line with
        ``line="auto"``, or ``"each"``: a line per timepoint, found inside the tasks.
    line_channel
        Channel (index or name) in which the line is found.
    slope_sigma, baseline_n, baseline
        Options of the ``slope`` (Gaussian smoothing, samples) and ``missing`` (baseline from
        the first and last ``baseline_n`` samples, or the ``baseline`` value) statistics.

    Returns
    -------
    xarray.Dataset
        With ``stats`` or ``line="auto"``: one variable per statistic over the dims of ``data``
        but ``Z``/``Y``/``X`` (e.g. ``P, T, C``; ``Z`` too when ``z=None``). The line used:
        ``line_row0``, ``line_col0``, ``line_row1``, ``line_col1``, ``line_width`` (measured,
        px), ``linewidth`` (used), ``line_step`` (distance between samples), ``line_status``
        (0 found, 1 blank, 2 not elongated, 3 other failure; the statistics are NaN where no
        line was found), over ``P`` (one line per position) or, with ``reference="each"``,
        over the dims of the statistics but ``C``; with ``reference`` a timepoint also the
        coordinates ``line_reason`` (``""`` when found) and ``line_reference`` (the timepoint
        used) per position. ``profile`` (dims ``..., distance``, NaN beyond each line's
        length) only with ``profiles=True``. Otherwise:
        ``profile`` (dims: every dim of ``data`` but ``Z``/``Y``/``X``, e.g. ``T, C``; then
        ``Z`` if ``z=None``; then ``distance``), and ``min``, ``max``, ``mean`` of the profile
        over ``distance``. Coordinates of ``data`` are kept (``T`` in s, ``C`` names...);
        ``distance`` is in µm when the pixel size is known (``attrs["units"]``), and
        ``row``/``col`` give the pixel position of each sample. ``attrs`` record the line and
        the source (``path``, ``series``, ``series_name``) and, for integer data, the
        ``saturation`` value a clipped sample would have.

    Raises
    ------
    ValueError
        If ``data`` has no ``Y``/``X`` dims, ``z`` or ``units`` is unknown, ``linewidth`` < 1,
        or µm are asked of data without a pixel size.

    Examples
    --------
    >>> data = bfdask.open("embryos.lif", series=3)
    >>> stats = bfdask.profile(data, (120, 10), (130, 500), linewidth=15).compute()
    >>> stats["min"].sel(C="GFP").plot()
    """
    import dask
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize

    if not isinstance(data, xr.DataArray):
        raise TypeError(f"data must be an xarray.DataArray (from bfdask.open), not {type(data)}")
    if "Y" not in data.dims or "X" not in data.dims:
        raise ValueError(f"data must have 'Y' and 'X' dims; it has {data.dims}")
    if z is not None and z not in Z_PROJECTIONS:
        raise ValueError(f"z must be one of {Z_PROJECTIONS} or None, not {z!r}")
    if line is not None or stats is not None:
        return _profile_stats(
            data,
            src,
            dst,
            line=line,
            linewidth=linewidth,
            order=order,
            mode=mode,
            cval=cval,
            reduce_func=reduce_func,
            z=z,
            units=units,
            stats=("min", "max", "mean") if stats is None else stats,
            profiles=profiles,
            reference=reference,
            line_channel=line_channel,
            slope_sigma=slope_sigma,
            baseline_n=baseline_n,
            baseline=baseline,
        )
    if src is None or dst is None:
        raise ValueError("pass the line's ends src and dst, or line='auto'")
    linewidth = 1 if linewidth is None else linewidth
    if int(linewidth) != linewidth or linewidth < 1:
        raise ValueError(f"linewidth must be a whole number of pixels >= 1, not {linewidth!r}")
    linewidth = int(linewidth)
    src_px = _to_pixels(data, src, units, "src")
    dst_px = _to_pixels(data, dst, units, "dst")
    size_y, size_x = data.sizes["Y"], data.sizes["X"]
    outside = [
        name
        for name, (row, col) in (("src", src_px), ("dst", dst_px))
        if not (-0.5 <= row <= size_y - 0.5 and -0.5 <= col <= size_x - 0.5)
    ]
    if outside:
        warnings.warn(
            f"Line end(s) {' and '.join(outside)} outside the {size_y} x {size_x} image "
            f"(src={tuple(src)}, dst={tuple(dst)} as (row, col) in {units}): samples beyond "
            f"the edge are made up by mode={mode!r}. Check the order (row, col) and the units.",
            UserWarning,
            stacklevel=2,
        )

    has_z = "Z" in data.dims
    loop = [d for d in data.dims if d not in _SPATIAL]
    order_dims = [*loop, *(["Z"] if has_z else []), "Y", "X"]
    rows, cols = _crop(src_px, dst_px, (data.sizes["Y"], data.sizes["X"]), linewidth, order, mode)
    cropped = data.isel(Y=rows, X=cols).transpose(*order_dims)
    array = cropped.data
    if not isinstance(array, da.Array):
        array = da.from_array(array, chunks=-1)
    projected_early = False
    if has_z and z is not None and len(array.chunks[-3]) > 1:
        # A stack split over several Z blocks (it exceeded the chunk budget): project each
        # block where it is read and combine the partial projections (a dask tree reduction),
        # rather than gathering whole stacks into one task.
        array = getattr(array, z)(axis=-3)
        projected_early = True
    # the line's plane must be whole in each task
    whole = {array.ndim - 1: -1, array.ndim - 2: -1}
    if any(len(array.chunks[axis]) > 1 for axis in whole):
        array = array.rechunk(whole)

    spec = LineSpec(
        src=(src_px[0] - rows.start, src_px[1] - cols.start),
        dst=(dst_px[0] - rows.start, dst_px[1] - cols.start),
        linewidth=linewidth,
        order=order,
        mode=mode,
        cval=float(cval),
        reduce_func=reduce_func,
        z=z,
        has_z=has_z and not projected_early,
    )
    n = _n_samples(spec.src, spec.dst)
    keep_z = has_z and z is None
    out_dims = [*loop, *(["Z"] if keep_z else []), "distance"]
    letters = "abcdefghijklmnopqrstuvw"
    in_index = letters[: array.ndim]
    out_index = in_index[: len(loop)] + (in_index[len(loop)] if keep_z else "") + "n"
    profiles = da.blockwise(
        profile_block,
        out_index,
        array,
        in_index,
        new_axes={"n": n},
        concatenate=True,
        dtype=np.float64,
        meta=np.empty((0,) * len(out_index), np.float64),
        name="bfdask-profile-" + tokenize(array.name, spec),
        spec=spec,
    )
    # Fuse each block's read into its profile task now: later, with the profile feeding four
    # variables, dask would no longer fuse them and the cropped pixels would become task outputs.
    (profiles,) = dask.optimize(profiles)

    distance, distance_units = _distance(data, src_px, dst_px, n)
    coords: dict[str, Any] = {
        name: coord for name, coord in data.coords.items() if set(coord.dims) <= set(out_dims)
    }
    coords["distance"] = xr.Variable("distance", distance, {"units": distance_units})
    coords["row"] = xr.Variable("distance", np.linspace(src_px[0], dst_px[0], n), {"units": "px"})
    coords["col"] = xr.Variable("distance", np.linspace(src_px[1], dst_px[1], n), {"units": "px"})
    prof = xr.DataArray(profiles, dims=out_dims, coords=coords, name="profile")
    attrs = {
        key: data.attrs[key]
        for key in ("path", "series", "series_name", "physical_size_x", "physical_size_y")
        if key in data.attrs
    }
    attrs.update(
        src=src_px,
        dst=dst_px,
        linewidth=linewidth,
        order=-1 if order is None else order,
        mode=mode,
        z="none" if z is None else z,
    )
    saturation = _saturation(data, z if has_z else None)
    if saturation is not None:
        attrs["saturation"] = saturation
    return xr.Dataset(
        {
            "profile": prof,
            "min": prof.min("distance"),
            "max": prof.max("distance"),
            "mean": prof.mean("distance"),
        },
        attrs=attrs,
    )


# -- statistics in the tasks (stats=, line="auto") --------------------------------------------

#: per-plane fields a statistics task returns after the statistics (then the profile, if asked)
LINE_FIELDS = (
    "line_row0",
    "line_col0",
    "line_row1",
    "line_col1",
    "line_width",
    "linewidth",
    "line_step",
    "line_status",
)
#: ``line_status`` codes
LINE_STATUS = {0: "found", 1: "blank", 2: "not elongated", 3: "no line"}


def _status(reason: str) -> int:
    if not reason:
        return 0
    if reason.startswith("blank"):
        return 1
    if reason.startswith("not elongated"):
        return 2
    return 3


@dataclass(frozen=True)
class StatsTask:
    """What a statistics task needs (small, picklable): lines, sampling, statistics.

    ``lines`` holds ``(src, dst, linewidth, width, reason)`` per position (index along the
    ``p_axis`` of the block's leading axes), or one entry used everywhere; empty with
    ``each=True`` (a line per timepoint is found in the task, in channel ``line_channel`` of
    axis ``c_axis``).
    """

    lines: tuple[tuple[tuple[float, float], tuple[float, float], int, float, str], ...]
    p_axis: int | None
    each: bool
    c_axis: int | None
    line_channel: int
    linewidth: int | None  # with each=True: None uses the measured width
    z: str | None  # projection applied in the task (None: the block has no Z axis)
    detect_z: str  # projection for finding the line when there is no z (per-plane profiles)
    order: int | None
    mode: str
    cval: float
    reduce_func: Callable[..., Any] | None
    stats: StatsSpec
    scale: tuple[float, float]  # distance per pixel along (Y, X): µm, or 1 (px)
    n_profile: int  # samples of the returned profile (0: no profile)


def _line_fields(
    src: tuple[float, float],
    dst: tuple[float, float],
    linewidth: int,
    width: float,
    reason: str,
    scale: tuple[float, float],
) -> tuple[np.ndarray, float]:
    n = _n_samples(src, dst) if not reason else 1
    length = math.hypot((dst[0] - src[0]) * scale[0], (dst[1] - src[1]) * scale[1])
    step = length / (n - 1) if n > 1 else math.nan
    fields = np.array(
        [*src, *dst, width, linewidth if not reason else math.nan, step, _status(reason)],
        np.float64,
    )
    return fields, step


def stats_block(
    block: np.ndarray, task: StatsTask, block_info: dict[Any, Any] | None = None
) -> np.ndarray:
    """Statistics (and line, and optionally profile) of every plane of one block.

    ``block`` is ``(..., [Z,] Y, X)``; returns float64 ``(..., F)`` with ``F`` = statistics,
    then :data:`LINE_FIELDS` (only with ``task.each``: lines found here), then
    ``task.n_profile`` profile samples (NaN-padded).
    """
    from .line import find_line

    if task.z is not None:
        block = _project(block, task.z)
    lead = block.shape[:-2]
    k = len(task.stats.names)
    n_line = len(LINE_FIELDS) if task.each else 0
    out = np.full((*lead, k + n_line + task.n_profile), np.nan)
    start = [0] * len(lead)
    if block_info is not None and 0 in block_info:
        start = [lo for lo, _ in block_info[0]["array-location"][: len(lead)]]
    found: dict[tuple[int, ...], tuple[Any, ...]] = {}  # each=True: line per index without C
    for index in np.ndindex(*lead):
        plane = block[index]
        if task.each:
            key = tuple(i for axis, i in enumerate(index) if axis != task.c_axis)
            if key not in found:
                ref_index = list(index)
                if task.c_axis is not None:
                    ref_index[task.c_axis] = task.line_channel - start[task.c_axis]
                ref = block[tuple(ref_index)]
                if ref.ndim == 3:  # per-plane profiles: find the line in the projection
                    ref = _project(ref, task.detect_z)
                auto = find_line(ref)
                lw = auto.linewidth if task.linewidth is None else task.linewidth
                found[key] = (auto.src, auto.dst, lw, auto.width, auto.reason)
            src, dst, lw, measured, reason = found[key]
        else:
            p = 0 if task.p_axis is None else start[task.p_axis] + index[task.p_axis]
            src, dst, lw, measured, reason = task.lines[p if len(task.lines) > 1 else 0]
        fields, step = _line_fields(src, dst, lw, measured, reason, task.scale)
        if n_line:
            out[(*index, slice(k, k + n_line))] = fields
        if reason:
            continue
        spec = LineSpec(
            src=src,
            dst=dst,
            linewidth=lw,
            order=task.order,
            mode=task.mode,
            cval=task.cval,
            reduce_func=task.reduce_func,
        )
        prof = _profile_plane(plane, spec)
        out[(*index, slice(0, k))] = compute_stats(prof, task.stats, step)
        if task.n_profile:
            n = min(prof.size, task.n_profile)
            out[(*index, slice(k + n_line, k + n_line + n))] = prof[:n]
    return out


def _channel_index(data: xr.DataArray, channel: int | str) -> int:
    if "C" not in data.dims:
        return 0
    if isinstance(channel, str):
        names = [str(c) for c in data["C"].values] if "C" in data.coords else []
        if channel not in names:
            raise ValueError(f"line_channel {channel!r} is not a channel of the data: {names}")
        return names.index(channel)
    if not -data.sizes["C"] <= channel < data.sizes["C"]:
        raise ValueError(f"line_channel {channel} out of range: the data has {data.sizes['C']}")
    return channel % data.sizes["C"]


def find_lines(
    data: xr.DataArray,
    *,
    reference: int = 0,
    line_channel: int | str = 0,
    z: str | None = "max",
    fallback: int = 3,
) -> list[tuple[Any, int]]:
    """The :class:`bfdask.line.Line` of each position (one if ``data`` has no ``P`` dim), found
    in the Z projection of timepoint ``reference`` of channel ``line_channel``, and the
    timepoint it was found in.

    A position whose reference frame shows no line (a failed acquisition) is tried at the next
    ``fallback`` timepoints; if none shows one, its line is the first frame's reason. Computes
    those projections (one stack per position and try) on the current scheduler.
    """
    from .line import find_line

    size_t = data.sizes.get("T", 1)
    if "T" in data.dims and not -size_t <= reference < size_t:
        raise ValueError(
            f"reference timepoint {reference} out of range: the data has {size_t} timepoints"
        )
    reference %= size_t
    view = data
    if "C" in view.dims:
        view = view.isel(C=_channel_index(data, line_channel))
    if "S" in view.dims:
        view = view.sum("S")
    extra = [d for d in view.dims if d not in ("P", "T", "Z", "Y", "X")]
    if extra:
        view = view.isel(dict.fromkeys(extra, 0))
    if "P" not in view.dims:
        view = view.expand_dims("P")
    count = view.sizes["P"]
    found: list[tuple[Any, int] | None] = [None] * count
    first: list[Any] = [None] * count
    for t in range(reference, min(size_t, reference + fallback + 1)):
        todo = [p for p in range(count) if found[p] is None]
        if not todo:
            break
        frame = view.isel(P=todo)
        if "T" in frame.dims:
            frame = frame.isel(T=t)
        if "Z" in frame.dims:
            frame = getattr(frame, z or "max")("Z")
        images = np.asarray(frame.transpose("P", "Y", "X").values, dtype=np.float64)
        for p, image in zip(todo, images):
            line = find_line(image)
            if first[p] is None:
                first[p] = line
            if line.found:
                found[p] = (line, t)
    return [item if item is not None else (first[p], reference) for p, item in enumerate(found)]


def _profile_stats(
    data: xr.DataArray,
    src: Sequence[float] | None,
    dst: Sequence[float] | None,
    *,
    line: str | None,
    linewidth: int | None,
    order: int | None,
    mode: str,
    cval: float,
    reduce_func: Callable[..., Any] | None,
    z: str | None,
    units: str,
    stats: StatsArg,
    profiles: bool,
    reference: int | str,
    line_channel: int | str,
    slope_sigma: float,
    baseline_n: int,
    baseline: float | None,
) -> xr.Dataset:
    """:func:`profile` with ``stats=`` or ``line="auto"``: statistics computed in the tasks."""
    import dask
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize

    spec_stats = parse_stats(
        stats, slope_sigma=slope_sigma, baseline_n=baseline_n, baseline=baseline
    )
    if linewidth is not None and (int(linewidth) != linewidth or linewidth < 1):
        raise ValueError(f"linewidth must be a whole number of pixels >= 1, not {linewidth!r}")
    if line not in (None, "auto"):
        raise ValueError(f"line must be 'auto' or None (then give src and dst), not {line!r}")
    auto = line == "auto"
    if auto and (src is not None or dst is not None):
        raise ValueError("give either src and dst, or line='auto', not both")
    if not auto and (src is None or dst is None):
        raise ValueError("pass the line's ends src and dst, or line='auto'")
    each = reference == "each"
    if not each and not isinstance(reference, (int, np.integer)):
        raise ValueError(f"reference must be a timepoint index or 'each', not {reference!r}")

    has_z = "Z" in data.dims
    keep_z = has_z and z is None
    loop = [d for d in data.dims if d not in _SPATIAL] + (["Z"] if keep_z else [])
    array_da = data.transpose(*loop, *(["Z"] if has_z and not keep_z else []), "Y", "X")
    array = array_da.data
    if not isinstance(array, da.Array):
        array = da.from_array(array, chunks=-1)
    task_z = z if has_z and not keep_z else None
    if task_z is not None and len(array.chunks[-3]) > 1:
        array = getattr(array, task_z)(axis=-3)  # a stack over several blocks: project early
        task_z = None
    whole = {array.ndim - 1: -1, array.ndim - 2: -1}
    c_axis = loop.index("C") if "C" in loop else None
    if each and c_axis is not None:
        whole[c_axis] = -1  # the line's channel must be in every task
    if any(len(array.chunks[axis]) > 1 for axis in whole):
        array = array.rechunk(whole)

    y_step, x_step = _axis_step(data, "Y"), _axis_step(data, "X")
    scale = (y_step[1], x_step[1]) if y_step and x_step else (1.0, 1.0)
    shape = (data.sizes["Y"], data.sizes["X"])
    line_reasons: list[str] | None = None
    line_references: list[int] = []
    if each:
        lines: tuple[Any, ...] = ()
        n_profile = _n_samples((0, 0), (shape[0] - 1, shape[1] - 1))
    else:
        if auto:
            found = find_lines(data, reference=int(reference), line_channel=line_channel, z=z)
            lines = tuple(
                (
                    f.src,
                    f.dst,
                    f.linewidth if linewidth is None else int(linewidth),
                    f.width,
                    f.reason,
                )
                for f, _ in found
            )
            line_reasons = [f.reason for f, _ in found]
            line_references = [t for _, t in found]
        else:
            assert src is not None and dst is not None
            lw = 1 if linewidth is None else int(linewidth)
            lines = (
                (
                    _to_pixels(data, src, units, "src"),
                    _to_pixels(data, dst, units, "dst"),
                    lw,
                    float("nan"),
                    "",
                ),
            )
        n_profile = max(_n_samples(a, b) if not r else 1 for a, b, _, _, r in lines)
    task = StatsTask(
        lines=lines,
        p_axis=loop.index("P") if "P" in loop and len(lines) > 1 else None,
        each=each,
        c_axis=c_axis,
        line_channel=_channel_index(data, line_channel),
        linewidth=None if linewidth is None else int(linewidth),
        z=task_z,
        detect_z=z or "max",
        order=order,
        mode=mode,
        cval=float(cval),
        reduce_func=reduce_func,
        stats=spec_stats,
        scale=scale,
        n_profile=n_profile if profiles else 0,
    )
    k = len(spec_stats.names)
    n_line = len(LINE_FIELDS) if each else 0
    fields = k + n_line + task.n_profile
    n_loop = len(loop)
    out = da.map_blocks(
        stats_block,
        array,
        drop_axis=list(range(n_loop, array.ndim)),
        new_axis=[n_loop],
        chunks=(*array.chunks[:n_loop], (fields,)),
        dtype=np.float64,
        meta=np.empty((0,) * (n_loop + 1), np.float64),
        name="bfdask-stats-" + tokenize(array.name, task),
        task=task,
    )
    (out,) = dask.optimize(out)  # the read fused into the task: pixels never leave it

    coords: dict[str, Any] = {
        name: coord for name, coord in data.coords.items() if set(coord.dims) <= set(loop)
    }
    table = xr.DataArray(out, dims=[*loop, "field"], coords=coords)
    variables: dict[str, Any] = {}
    for i, name in enumerate(spec_stats.names):
        variables[name] = table.isel(field=i, drop=True)
    if each:  # lines found in the tasks, per timepoint
        line_dims = [d for d in loop if d not in ("C", "S")]
        first = {d: 0 for d in loop if d not in line_dims}
        for j, name in enumerate(LINE_FIELDS):
            variables[name] = table.isel(field=k + j, drop=True).isel(first, drop=True)
    else:  # known before the tasks ran: plain numpy, per position (no tasks, nothing to read)
        per_p = task.p_axis is not None
        rows = np.stack([_line_fields(*line, scale)[0] for line in lines])
        for j, name in enumerate(LINE_FIELDS):
            values = rows[:, j] if per_p else rows[0, j]
            variables[name] = xr.DataArray(
                values, dims=("P",) if per_p else (), coords={"P": data["P"]} if per_p else {}
            )
    if task.n_profile:
        prof = table.isel(field=slice(k + n_line, None)).rename(field="distance")
        variables["profile"] = prof.assign_coords(
            distance=xr.Variable("distance", np.arange(task.n_profile), {"units": "sample"})
        )
    unit = "µm" if scale != (1.0, 1.0) else "px"
    variables["line_step"].attrs["units"] = unit
    if "slope" in spec_stats.names and spec_stats.funcs[spec_stats.names.index("slope")] is None:
        variables["slope"].attrs["units"] = f"intensity / {unit}"
    ds = xr.Dataset(variables)
    if line_reasons is not None:
        per_p = "P" in loop and len(line_reasons) > 1
        dims = ("P",) if per_p else ()
        reasons = np.asarray(line_reasons if per_p else line_reasons[0], dtype=object)
        used = np.asarray(line_references if per_p else line_references[0])
        ds = ds.assign_coords(line_reason=(dims, reasons), line_reference=(dims, used))
    ds.attrs.update(
        {
            key: data.attrs[key]
            for key in ("path", "series", "series_name", "physical_size_x", "physical_size_y")
            if key in data.attrs
        }
    )
    ds.attrs.update(
        line="auto" if auto else "given",
        reference=str(reference),
        z="none" if z is None else z,
        stats=list(spec_stats.names),
        line_status_codes=", ".join(f"{c}: {t}" for c, t in LINE_STATUS.items()),
    )
    saturation = _saturation(data, z if has_z else None)
    if saturation is not None:
        ds.attrs["saturation"] = saturation
    return ds


def _saturation(data: xr.DataArray, z: str | None) -> float | None:
    """The value of a clipped (saturated) sample after the projection, for integer data."""
    if not np.issubdtype(data.dtype, np.integer):
        return None
    top = float(np.iinfo(data.dtype).max)
    if z == "sum":
        top *= data.sizes.get("Z", 1)
    return top


def _series_keys(names: Sequence[str], indices: Sequence[int]) -> list[str]:
    """Series names as dict keys; a repeated name gets its index appended (``"name #3"``)."""
    seen = {name: names.count(name) for name in names}
    return [name if seen[name] == 1 else f"{name} #{i}" for name, i in zip(names, indices)]


def profile_series(
    path: str | os.PathLike[str],
    src: Sequence[float],
    dst: Sequence[float],
    series: int | str | Iterable[int | str] | None = None,
    *,
    chunks: Mapping[str, Any] | None = None,
    compute: bool = True,
    **kwargs: Any,
) -> dict[str, xr.Dataset]:
    """:func:`profile` of the same line in several (default: all) series of one file.

    All series go into one dask graph, computed at once (:func:`dask.compute`) on the current
    scheduler -- a ``distributed.Client`` if one is active -- so the workers stay busy across
    series.

    Parameters
    ----------
    path
        The file.
    src, dst
        The line (see :func:`profile`), the same in every series.
    series
        Index, name, or a list of them; None (default) for every series.
    chunks
        Passed to :func:`bfdask.open`.
    compute
        False returns the lazy Datasets (to compute them yourself, e.g. with
        ``client.compute`` and a progress bar).
    **kwargs
        Passed to :func:`profile` (``linewidth``, ``z``, ``order``, ``units``...).

    Returns
    -------
    dict of str to xarray.Dataset
        By series name, in file order (a repeated name gets ``" #<index>"`` appended); each
        Dataset as :func:`profile` returns it.
    """
    import dask

    from . import list_series
    from . import open as bf_open

    infos = list_series(path)
    if series is None:
        wanted: list[int | str] = [info.index for info in infos]
    elif isinstance(series, (int, str)):
        wanted = [series]
    else:
        wanted = list(series)
    by_name = {info.name: info.index for info in infos}
    indices = []
    for item in wanted:
        if isinstance(item, str):
            if item not in by_name:
                from .errors import SeriesIndexError

                raise SeriesIndexError(
                    f"{os.fspath(path)!r} has no series named {item!r}; "
                    f"bfdask.list_series(path) lists them."
                )
            indices.append(by_name[item])
        else:
            indices.append(item if item >= 0 else item + len(infos))
    datasets = [
        profile(bf_open(path, series=i, chunks=chunks, ome=False), src, dst, **kwargs)
        for i in indices
    ]
    if compute:
        datasets = list(dask.compute(*datasets))
    keys = _series_keys([infos[i].name for i in indices], indices)
    return dict(zip(keys, datasets))


# -- failed acquisitions ----------------------------------------------------------------------


def _neighbour_median(values: np.ndarray, half: int) -> np.ndarray:
    """Median of the ``half`` values each side of every point, the point itself excluded."""
    out = np.full(values.shape, np.nan)
    for i in range(values.size):
        lo, hi = max(0, i - half), min(values.size, i + half + 1)
        around = np.concatenate([values[lo:i], values[i + 1 : hi]])
        around = around[np.isfinite(around)]
        if around.size:
            out[i] = np.median(around)
    return out


def bad_timepoints(
    stats: xr.Dataset,
    *,
    variables: Sequence[str] | None = None,
    window: int = 5,
    threshold: float = 6.0,
    min_change: float = 0.25,
    blank: float = 0.2,
    saturated: float = 0.5,
    low_signal: float | bool | None = None,
) -> pd.DataFrame:
    """Timepoints whose profile statistics break from their neighbours: failed acquisitions.

    A real change (a lesion deepening, then recovering) is gradual; a failed frame (the embryo
    moved or died, focus lost, the lamp flickered) jumps away from the frames around it. Per
    channel (and Z plane, for per-plane statistics) and per statistic in ``variables``, each
    value is compared with the median of its ``window - 1`` neighbours (the point excluded). A
    timepoint is flagged when, for any of them:

    * ``no_line``: no line was found in that frame (``line="auto"``: the statistics are NaN);
    * ``blank``: the value is below ``blank`` × the series' median (almost no fluorescence);
    * ``low_signal``: the frame's ``max`` (else the first of ``variables``) is far below the
      series' typical (median) maximum: below ``low_signal`` × it when given, else below a
      threshold derived from the data, ``min(0.5, 1 - 8 × s)`` with ``s`` the robust spread
      (1.4826 × MAD) of max / median over the series;
    * ``saturated``: more than ``saturated`` of the profile's samples sit at the data type's
      maximum (``stats.attrs["saturation"]``; integer data only);
    * ``outlier``: for *every* statistic of ``variables`` (same channel, same direction), the
      deviation from the neighbours' median exceeds ``threshold`` robust standard deviations
      (1.4826 × the median absolute deviation of all such residuals in the series) *and*
      ``min_change`` × that median. A failed frame shifts the whole profile; a bright speck
      crossing the line moves only its max, and a very regular series does not flag noise.

    The ``min`` statistic is left out by default: a lesion moves it on purpose.

    With a ``P`` dim (from :func:`bfdask.open_positions`) each position is a series of its own
    and the result has a ``position`` column first; timepoints whose ``time`` coordinate is NaN
    (padding of short positions) are never flagged.

    Parameters
    ----------
    stats
        A Dataset from :func:`profile` (computed or lazy; it is computed here), with a ``T``
        dim.
    variables
        Which statistics to test; default ``mean`` and ``max`` (those present, else every
        statistic of ``stats.attrs["stats"]`` but ``min``).
    window
        Odd number of timepoints around each one that define "its neighbours" (>= 3).
    threshold
        Robust z-score above which a deviation counts.
    min_change
        Smallest relative deviation from the neighbours that counts (0.25: 25 %).
    blank
        Fraction of the series' median below which a frame counts as blank.
    saturated
        Fraction of saturated profile samples above which a frame counts as saturated.
    low_signal
        Fraction of the typical maximum below which a frame counts as low signal; None (default)
        derives it from the data, False turns the rule off.

    Returns
    -------
    pandas.DataFrame
        One row per flagged timepoint, in time order, with columns ``T`` (index along T),
        ``time`` (the ``time`` or ``T`` coordinate, NaN if none), ``reason`` (``"no_line"``,
        ``"blank"``, ``"low_signal"``, ``"saturated"`` or ``"outlier"``, the first that
        applies), ``detail`` (which statistic, channel, value and expected value) and ``score``
        (robust z-score of the largest deviation; the fraction of the typical maximum for
        ``low_signal``). Empty (same columns) when nothing is flagged.

    Raises
    ------
    ValueError
        If ``stats`` has no ``T`` dim or lacks a statistic of ``variables``, or ``window`` < 3.
    """
    import pandas as pd
    import xarray as xr

    if not isinstance(stats, xr.Dataset):
        raise TypeError(
            "bad_timepoints takes the Dataset of statistics that bfdask.profile returns "
            f"(e.g. bad_timepoints(bfdask.profile(data, line='auto'))), not a "
            f"{type(stats).__name__}."
        )
    if "T" not in stats.dims:
        raise ValueError("stats must have a 'T' dim (a time series from bfdask.profile)")
    if window < 3:
        raise ValueError(f"window must be >= 3 timepoints, not {window}")
    if variables is None:
        variables = [v for v in ("mean", "max") if v in stats] or [
            v for v in stats.attrs.get("stats", []) if v != "min" and v in stats
        ]
        if not variables:
            raise ValueError(
                f"stats has none of mean/max; pass variables= (it has {list(stats.data_vars)})"
            )
    missing = [v for v in variables if v not in stats]
    if missing:
        raise ValueError(f"stats has no variable(s) {missing}; it has {list(stats.data_vars)}")
    options = {
        "variables": list(variables),
        "window": window,
        "threshold": threshold,
        "min_change": min_change,
        "blank": blank,
        "saturated": saturated,
        "low_signal": low_signal,
    }
    import warnings

    stats = stats.compute()
    with warnings.catch_warnings():
        # all-NaN columns (frames without a line, padding) are expected: no flag, no noise
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        if "P" not in stats.dims:
            return _bad_timepoints_one(stats, **options)
        frames = []
        for p in range(stats.sizes["P"]):
            one = stats.isel(P=p)
            found = _bad_timepoints_one(one, **options)
            label = str(one["P"].values) if "P" in one.coords else str(p)
            found.insert(0, "position", [label] * len(found))
            frames.append(found)
    return pd.concat(frames, ignore_index=True)


def _bad_timepoints_one(
    stats: xr.Dataset,
    *,
    variables: Sequence[str],
    window: int,
    threshold: float,
    min_change: float,
    blank: float,
    saturated: float,
    low_signal: float | bool | None,
) -> pd.DataFrame:
    """:func:`bad_timepoints` of one position (no ``P`` dim), padding left out."""
    import pandas as pd

    full_t = stats.sizes["T"]
    if "time" in stats.coords and stats["time"].dims == ("T",):
        all_times = np.asarray(stats["time"].values, dtype=float)
        real = np.nonzero(np.isfinite(all_times))[0]
    else:
        all_times = (
            np.asarray(stats["T"].values, dtype=float)
            if "T" in stats.coords
            else np.full(full_t, np.nan)
        )
        real = np.arange(full_t)
    if real.size < full_t:
        stats = stats.isel(T=real)
    times = all_times[real]
    size_t = stats.sizes["T"]
    half = window // 2
    found: dict[int, tuple[int, str, str, float]] = {}  # t -> (rank, reason, detail, score)
    rank = {"no_line": 0, "blank": 1, "low_signal": 2, "saturated": 3, "outlier": 4}

    def note(t: int, reason: str, detail: str, score: float) -> None:
        old = found.get(t)
        new = (rank[reason], reason, detail, score)
        if old is None or new[0] < old[0] or (new[0] == old[0] and abs(score) > abs(old[3])):
            found[t] = new

    def score_columns(
        dead: Sequence[int],
    ) -> dict[str, tuple[list[str], np.ndarray, np.ndarray, np.ndarray]]:
        """Per statistic: (T, column) values, neighbour medians, robust z-scores; frames in
        ``dead`` (already flagged) are nobody's neighbour and do not count in the spread."""
        out = {}
        for name in variables:
            var = stats[name].transpose("T", ...)
            values = np.asarray(var.values, dtype=float).reshape(size_t, -1)
            masked = values.copy()
            masked[list(dead)] = np.nan
            expected = np.stack([_neighbour_median(v, half) for v in masked.T], axis=1)
            residual = values - expected
            spread_of = masked - expected
            scores = np.zeros_like(values)
            for column in range(values.shape[1]):
                r = spread_of[:, column]
                mad = np.nanmedian(np.abs(r - np.nanmedian(r))) if np.isfinite(r).any() else 0.0
                finite = np.isfinite(values[:, column]).any()
                level = np.nanmedian(values[:, column]) if finite else 1
                sigma = max(1.4826 * mad, 1e-12 * max(abs(level), 1.0))
                res = residual[:, column]
                scores[:, column] = np.where(np.isfinite(res), res / sigma, 0.0)
            out[name] = (_column_labels(var), values, expected, scores)
        return out

    columns = score_columns(())

    def describe(name: str, t: int, column: int) -> str:
        labels, values, expected, _ = columns[name]
        level = np.nanmedian(values[:, column])
        return (
            f"{name}{labels[column]} = {values[t, column]:.4g}, neighbours "
            f"{expected[t, column]:.4g}, series median {level:.4g}"
        )

    for name, (_, values, _, scores) in columns.items():
        level = np.nanmedian(values, axis=0)
        for t, column in zip(*np.nonzero((level > 0) & (values < blank * level))):
            note(int(t), "blank", describe(name, t, column), float(scores[t, column]))

    if "line_status" in stats:
        status_var = stats["line_status"]
        if "T" not in status_var.dims:  # one line per position: it applies to every frame
            status_var = status_var.expand_dims(T=size_t)
        status = np.asarray(status_var.transpose("T", ...).values, float)
        status = status.reshape(size_t, -1)
        for t in np.nonzero(np.nan_to_num(status, nan=0.0).max(axis=1) > 0)[0]:
            code = int(np.nanmax(status[t]))
            text = LINE_STATUS.get(code, "no line")
            if "line_reason" in stats.coords and stats["line_reason"].ndim == 0:
                text = str(stats["line_reason"].values) or text
            note(int(t), "no_line", text, np.inf)

    if low_signal is not False and size_t >= 3:
        name = "max" if "max" in stats else variables[0]
        var = stats[name].transpose("T", ...)
        values = np.asarray(var.values, dtype=float).reshape(size_t, -1)
        labels = _column_labels(var)
        for column in range(values.shape[1]):
            v = values[:, column]
            finite = v[np.isfinite(v)]
            level = float(np.median(finite)) if finite.size else float("nan")
            if not level > 0:
                continue
            ratio = v / level
            if low_signal is None or low_signal is True:
                r = ratio[np.isfinite(ratio)]
                spread = 1.4826 * float(np.median(np.abs(r - np.median(r))))
                cut = min(0.5, 1.0 - 8.0 * spread)
            else:
                cut = float(low_signal)
            for t in np.nonzero(np.nan_to_num(ratio, nan=np.inf) < cut)[0]:
                detail = (
                    f"{name}{labels[column]} = {v[t]:.4g}, {ratio[t]:.0%} of the series' typical "
                    f"{level:.4g} (threshold {cut:.0%})"
                )
                note(int(t), "low_signal", detail, float(ratio[t]))

    # an outlier moves every tested statistic the same way (a failed frame shifts the whole
    # profile; one bright speck moves only the max); frames flagged above are left out of
    # everybody's neighbours (in a short series a dead frame would make its neighbour jump)
    if found:
        columns = score_columns(sorted(found))
    first = columns[variables[0]]
    for t in range(size_t):
        for column in range(first[1].shape[1]):
            signs = set()
            for name in variables:
                _, values, expected, scores = columns[name]
                change = abs(values[t, column] - expected[t, column])
                if not (
                    abs(scores[t, column]) > threshold
                    and np.isfinite(expected[t, column])
                    and change > min_change * abs(expected[t, column])
                ):
                    break
                signs.add(np.sign(scores[t, column]))
            else:
                if len(signs) == 1:
                    strength = {v: abs(columns[v][3][t, column]) for v in variables}
                    name = max(strength, key=strength.__getitem__)
                    score = float(columns[name][3][t, column])
                    note(t, "outlier", describe(name, t, column), score)

    top = stats.attrs.get("saturation")
    if top is not None and "profile" in stats:
        prof = stats["profile"].transpose("T", ...)
        clipped = np.asarray(prof.values >= top, dtype=float)
        clipped = clipped.reshape(size_t, -1, prof.sizes["distance"])
        fractions = clipped.mean(axis=-1)
        for t in range(size_t):
            worst = float(fractions[t].max()) if fractions[t].size else 0.0
            if worst > saturated:
                note(t, "saturated", f"{worst:.0%} of the profile at {top:g}", np.inf)

    rows = [
        {"T": int(real[t]), "time": times[t], "reason": reason, "detail": detail, "score": score}
        for t, (_, reason, detail, score) in sorted(found.items())
    ]
    return pd.DataFrame(rows, columns=["T", "time", "reason", "detail", "score"])


def _column_labels(var: xr.DataArray) -> list[str]:
    """A label per non-T combination of ``var``'s dims, e.g. ``"[C=GFP]"``."""
    others = [d for d in var.dims if d != "T"]
    if not others:
        return [""]
    import itertools

    values = [
        [str(v) for v in (var[d].values if d in var.coords else range(var.sizes[d]))]
        for d in others
    ]
    return [
        "[" + ", ".join(f"{d}={v}" for d, v in zip(others, combo)) + "]"
        for combo in itertools.product(*values)
    ]
