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

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

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


def _profile_plane(plane: np.ndarray, spec: LineSpec) -> np.ndarray:
    from skimage.measure import profile_line

    kwargs: dict[str, Any] = {
        "linewidth": spec.linewidth,
        "order": spec.order,
        "mode": spec.mode,
        "cval": spec.cval,
    }
    if spec.reduce_func is not None:
        kwargs["reduce_func"] = spec.reduce_func
    return np.asarray(profile_line(plane, spec.src, spec.dst, **kwargs), dtype=np.float64)


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
    src: Sequence[float],
    dst: Sequence[float],
    *,
    linewidth: int = 1,
    order: int | None = 1,
    mode: str = "reflect",
    cval: float = 0.0,
    reduce_func: Callable[..., Any] | None = None,
    z: str | None = "max",
    units: str = "px",
) -> xr.Dataset:
    """Intensity profile along a line, per timepoint and channel, with its min, max and mean.

    Lazy: returns dask-backed variables; ``.compute()`` (or ``dask.compute`` of several) runs
    one task per (T, Z) block of ``data``, in the process that reads the block's pixels; the
    task keeps only the rows and columns the line can touch. When a Z stack spans several blocks
    (stacks above dask's ``array.chunk-size``), each block is projected where it is read and
    the partial projections are combined (for ``z="mean"`` the result may then differ from
    numpy's in the last bits); ``Y``/``X`` tiles are joined per plane.

    Parameters
    ----------
    data
        A DataArray from :func:`bfdask.open` (or any DataArray with ``Y`` and ``X`` dims, dask or
        numpy backed), possibly already narrowed with ``sel``/``isel``.
    src, dst
        Start and end of the line as ``(row, col)``, like :func:`skimage.measure.profile_line`:
        pixel indices of ``data`` as given, or µm along its ``Y``/``X`` coordinates with
        ``units="um"``. Both ends are included.
    linewidth
        Width of the line in pixels; samples across the width are reduced by ``reduce_func``.
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

    Returns
    -------
    xarray.Dataset
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
    if int(linewidth) != linewidth or linewidth < 1:
        raise ValueError(f"linewidth must be a whole number of pixels >= 1, not {linewidth!r}")
    linewidth = int(linewidth)
    src_px = _to_pixels(data, src, units, "src")
    dst_px = _to_pixels(data, dst, units, "dst")

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
    variables: Sequence[str] = ("mean", "max"),
    window: int = 5,
    threshold: float = 6.0,
    min_change: float = 0.25,
    blank: float = 0.2,
    saturated: float = 0.5,
) -> pd.DataFrame:
    """Timepoints whose profile statistics break from their neighbours: failed acquisitions.

    A real change (a lesion deepening, then recovering) is gradual; a failed frame (the embryo
    moved or died, focus lost, the lamp flickered) jumps away from the frames around it. Per
    channel (and Z plane, for per-plane statistics) and per statistic in ``variables``, each
    value is compared with the median of its ``window - 1`` neighbours (the point excluded). A
    timepoint is flagged when, for any of them:

    * ``blank``: the value is below ``blank`` × the series' median (almost no fluorescence);
    * ``saturated``: more than ``saturated`` of the profile's samples sit at the data type's
      maximum (``stats.attrs["saturation"]``; integer data only);
    * ``outlier``: for *every* statistic of ``variables`` (same channel, same direction), the
      deviation from the neighbours' median exceeds ``threshold`` robust standard deviations
      (1.4826 × the median absolute deviation of all such residuals in the series) *and*
      ``min_change`` × that median. A failed frame shifts the whole profile; a bright speck
      crossing the line moves only its max, and a very regular series does not flag noise.

    The ``min`` statistic is left out by default: a lesion moves it on purpose.

    Parameters
    ----------
    stats
        A Dataset from :func:`profile` (computed or lazy; it is computed here), with a ``T``
        dim.
    variables
        Which statistics to test.
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

    Returns
    -------
    pandas.DataFrame
        One row per flagged timepoint, in time order, with columns ``T`` (index along T),
        ``time`` (the ``T`` coordinate, NaN if none), ``reason`` (``"blank"``, ``"saturated"``
        or ``"outlier"``, the first that applies), ``detail`` (which statistic, channel, value
        and expected value) and ``score`` (robust z-score of the largest deviation). Empty
        (same columns) when nothing is flagged.

    Raises
    ------
    ValueError
        If ``stats`` has no ``T`` dim or lacks a statistic of ``variables``, or ``window`` < 3.
    """
    import pandas as pd

    if "T" not in stats.dims:
        raise ValueError("stats must have a 'T' dim (a time series from bfdask.profile)")
    if window < 3:
        raise ValueError(f"window must be >= 3 timepoints, not {window}")
    missing = [v for v in variables if v not in stats]
    if missing:
        raise ValueError(f"stats has no variable(s) {missing}; it has {list(stats.data_vars)}")
    stats = stats.compute()
    size_t = stats.sizes["T"]
    times = (
        np.asarray(stats["T"].values, dtype=float)
        if "T" in stats.coords
        else np.full(size_t, np.nan)
    )
    half = window // 2
    found: dict[int, tuple[int, str, str, float]] = {}  # t -> (rank, reason, detail, score)
    rank = {"blank": 0, "saturated": 1, "outlier": 2}

    def note(t: int, reason: str, detail: str, score: float) -> None:
        old = found.get(t)
        new = (rank[reason], reason, detail, score)
        if old is None or new[0] < old[0] or (new[0] == old[0] and abs(score) > abs(old[3])):
            found[t] = new

    # per statistic: (T, column) arrays of values, neighbour medians, robust z-scores
    columns: dict[str, tuple[list[str], np.ndarray, np.ndarray, np.ndarray]] = {}
    for name in variables:
        var = stats[name].transpose("T", ...)
        values = np.asarray(var.values, dtype=float).reshape(size_t, -1)
        expected = np.stack([_neighbour_median(v, half) for v in values.T], axis=1)
        residual = values - expected
        scores = np.zeros_like(values)
        for column in range(values.shape[1]):
            r = residual[:, column]
            mad = np.nanmedian(np.abs(r - np.nanmedian(r))) if np.isfinite(r).any() else 0.0
            level = np.nanmedian(values[:, column]) if np.isfinite(values[:, column]).any() else 1
            sigma = max(1.4826 * mad, 1e-12 * max(abs(level), 1.0))
            scores[:, column] = np.where(np.isfinite(r), r / sigma, 0.0)
        columns[name] = (_column_labels(var), values, expected, scores)

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

    # an outlier moves every tested statistic the same way (a failed frame shifts the whole
    # profile; one bright speck moves only the max)
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
        {"T": t, "time": times[t], "reason": reason, "detail": detail, "score": score}
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
