"""Intensity profiles along a line, per timepoint and channel: :func:`profile`.

The client side of the analysis: the arguments checked, the lines in pixels
(:mod:`bfdask.geometry`), the dask graph and the labeled Dataset. Every form of :func:`profile`
builds the same graph: the array narrowed to the rows and columns the lines can touch (dask
fuses that slice into the read), then :func:`bfdask.sampling.profile_block` mapped over the
(T, Z) blocks; each task returns a few numbers per plane, never pixels. The plain form
``profile(data, src, dst)`` is that graph returning the profile, min/max/mean reduced from it.
(A private name: a module ``bfdask.profile`` would replace the function ``bfdask.profile``.)
"""

from __future__ import annotations

import copy
import inspect
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .geometry import (
    LINE_FIELDS,
    SampledLine,
    crop,
    distance_coords,
    line_fields,
    lines_to_sample,
    longest,
    pixel_scale,
)
from .line import LINE_STATUS, channel_index
from .projected import project_z
from .sampling import Z_PROJECTIONS, BlockTask, footprint, profile_block_kept
from .stats import StatsArg, StatsSpec, parse_stats

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

    import dask.array as da
    import xarray as xr

    from .projection import Footprint

_SPATIAL = ("Z", "Y", "X")
#: the attrs of the data a result keeps
_SOURCE_ATTRS = ("path", "series", "series_name", "physical_size_x", "physical_size_y")


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
        half-maximum width, rounded. A position whose ``reference`` frame shows no line is
        tried at the next 3 timepoints (``line_reference`` records the one used).
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
        ``"max"``, ``"mean"`` or ``"sum"``: project each Z stack first (numpy's values and
        dtype, as a plain loop gets), or None for a profile per Z plane; ignored without a
        ``Z`` dim. Each task folds its planes in as it reads them (:mod:`bfdask.projection`).
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
        With ``line="auto"``: the timepoint (index along ``T`` of each position) whose
        projection gives the line, or ``"each"``: a line per timepoint, found inside the tasks.
    line_channel
        Channel (index or name) in which the line is found.
    slope_sigma, baseline_n, baseline
        Options of the ``slope`` (Gaussian smoothing, samples) and ``missing`` (baseline from
        the first and last ``baseline_n`` samples, or the ``baseline`` value) statistics.

    Returns
    -------
    xarray.Dataset
        With ``stats`` or ``line="auto"``: one variable per statistic over the dims of ``data`` but
        ``Z``/``Y``/``X`` (e.g. ``P, T, C``; ``Z`` too when ``z=None``). The line used:
        ``line_row0``, ``line_col0``, ``line_row1``, ``line_col1``, ``line_measured_width`` (the
        structure's width as :func:`find_line` measured it, px; NaN for a line given by its ends;
        also as ``line_width``, its former name, until the next release), ``linewidth`` (the width
        sampled), ``line_step`` (distance between samples), ``line_status`` (0 found, 1 blank, 2
        not elongated, 3 other failure; the statistics are NaN where no line was found), over ``P``
        (one line per position) or, with ``reference="each"``, over the dims of the statistics but
        ``C``; with ``reference`` a timepoint also the coordinates ``line_reason`` (``""`` when
        found) and ``line_reference`` (the timepoint used) per position. ``profile`` (dims ``...,
        distance``, NaN beyond each line's length) only with ``profiles=True``. Otherwise:
        ``profile`` (dims: every dim of ``data`` but ``Z``/``Y``/``X``, e.g. ``T, C``; then ``Z``
        if ``z=None``; then ``distance``), and ``min``, ``max``, ``mean`` of the profile over
        ``distance``. Coordinates of ``data`` are kept (``T`` in s, ``C`` names...). When one line
        is sampled everywhere, ``distance`` is each sample's distance from ``src``, in µm when the
        pixel size is known (``attrs["units"]``, else px), and ``row``/``col`` give each sample's
        pixel position; when the lines differ (per position, per timepoint) ``distance`` is the
        sample index (``units="sample"``; times ``line_step`` gives the distance). ``attrs`` record
        the line and the source (``path``, ``series``, ``series_name``) and, for integer data, the
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
    return _plan(
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
        stats=stats,
        profiles=profiles,
        reference=reference,
        line_channel=line_channel,
        slope_sigma=slope_sigma,
        baseline_n=baseline_n,
        baseline=baseline,
    ).dataset()


def _plan(
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
    stats: StatsArg | None,
    profiles: bool,
    reference: int | str,
    line_channel: int | str,
    slope_sigma: float,
    baseline_n: int,
    baseline: float | None,
) -> ProfilePlan:
    """The body of :func:`profile` (its arguments, every one given): the graph and the
    recipe of its Dataset."""
    _check(data, src, dst, line=line, linewidth=linewidth, z=z, reference=reference)
    tabulate = line is not None or stats is not None  # else the plain form
    statistics = StatsSpec((), ())  # the plain form: min/max/mean are reduced from the profile
    if tabulate:
        chosen = ("min", "max", "mean") if stats is None else stats
        statistics = parse_stats(
            chosen, slope_sigma=slope_sigma, baseline_n=baseline_n, baseline=baseline
        )
    each = line == "auto" and reference == "each"
    lines, found_at = lines_to_sample(
        data,
        src,
        dst,
        line=line,
        each=each,
        linewidth=linewidth,
        units=units,
        mode=mode,
        reference=reference,
        line_channel=line_channel,
        z=z,
    )
    keep_z = "Z" in data.dims and z is None
    loop: list[Hashable] = [d for d in data.dims if d not in _SPATIAL]
    loop += ["Z"] if keep_z else []
    shape = (data.sizes["Y"], data.sizes["X"])
    rows, cols = crop(lines, shape, order, mode)  # the whole plane with each
    band = None if each else footprint(lines, shape, order)  # the pixels the samples read
    array, task_z = _block_array(
        data, loop, rows, cols, z=None if keep_z else z, whole_c=each, band=band
    )
    scale, unit = pixel_scale(data)
    task = BlockTask(
        lines=tuple(item.moved(rows.start, cols.start) for item in lines),
        p_axis=loop.index("P") if "P" in loop and len(lines) > 1 else None,
        each=each,
        c_axis=loop.index("C") if "C" in loop else None,
        line_channel=channel_index(data, line_channel) if line == "auto" else 0,
        linewidth=None if linewidth is None else int(linewidth),
        z=task_z,
        order=order,
        mode=mode,
        cval=float(cval),
        reduce_func=reduce_func,
        stats=statistics,
        scale=scale,
        n_profile=longest(lines, shape) if profiles or not tabulate else 0,
    )
    table = _table(data, array, task, loop, "stats" if tabulate else "profile")
    attrs: dict[str, Any] = {key: data.attrs[key] for key in _SOURCE_ATTRS if key in data.attrs}
    if tabulate:
        attrs.update(line="auto" if line == "auto" else "given", reference=str(reference))
        attrs.update(z="none" if z is None else z, stats=list(statistics.names))
        attrs["line_status_codes"] = ", ".join(f"{c}: {t}" for c, t in LINE_STATUS.items())
    else:
        (given,) = lines
        attrs.update(src=given.src, dst=given.dst, linewidth=given.linewidth)
        attrs.update(order=-1 if order is None else order, mode=mode)
        attrs["z"] = "none" if z is None else z
    top = saturation(data, z if "Z" in data.dims else None)
    if top is not None:
        attrs["saturation"] = top
    found = None if found_at is None else tuple(found_at)
    return ProfilePlan(table, task, tuple(lines), found, unit, attrs, tabulate)


@dataclass(frozen=True, eq=False)
class ProfilePlan:
    """A profile before its Dataset is built: the tasks' results as one lazy ``table``
    (dims ``(*loop, field)``), and what turns that table, lazy or computed, into the Dataset
    :func:`profile` returns.

    The Dataset's variables are slices of the table. Computed lazily, each slice of each block
    is a task of its own; on a ``distributed`` cluster each such task costs a worker a few
    milliseconds between two reads (72 of them in the user's job of issue #18, a third of a
    warm run). Computing the tables alone, then building the Datasets from numpy
    (:func:`compute_plans`), gives the same Datasets with one task per block.

    Attributes
    ----------
    table
        The tasks' results, one row of ``field`` per plane (statistics, the line found in the
        task, the profile), lazy: one task per block, under the table's own keys.
    task
        What each task does (travels to the workers).
    lines
        The lines sampled (one, or one per position).
    found_at
        With ``line="auto"``: the timepoint whose projection gave each line, else None.
    unit
        The unit of distances along the line (``"µm"`` or ``"px"``).
    attrs
        The Dataset's attrs.
    tabulate
        The statistics form (``stats=`` or ``line="auto"``), else the plain form.
    """

    table: xr.DataArray
    task: BlockTask
    lines: tuple[SampledLine, ...]
    found_at: tuple[int, ...] | None
    unit: str
    attrs: Mapping[str, Any]
    tabulate: bool

    def dataset(self, table: xr.DataArray | None = None) -> xr.Dataset:
        """The Dataset of ``table`` (default: the lazy table; else this table computed)."""
        import xarray as xr

        table = self.table if table is None else table
        # numpy's reductions, as dask's: no bottleneck or numbagg for a computed table
        with xr.set_options(use_bottleneck=False, use_numbagg=False):
            if self.tabulate:
                ds = _stats_dataset(table, self.task, self.lines, self.found_at, self.unit)
            else:
                (given,) = self.lines
                ds = _plain_dataset(table, given, self.task.scale, self.unit)
        ds.attrs = copy.deepcopy(dict(self.attrs))
        return ds


def plan_profile(
    data: xr.DataArray,
    src: Sequence[float] | None = None,
    dst: Sequence[float] | None = None,
    **options: Any,
) -> ProfilePlan:
    """The :class:`ProfilePlan` of ``profile(data, src, dst, **options)``: the same checks,
    defaults and errors (an unknown option is a ``TypeError`` as :func:`profile` raises it)."""
    try:
        bound = inspect.signature(profile).bind(data, src, dst, **options)
    except TypeError as exc:  # as profile() itself would say it
        raise TypeError(f"profile() {exc}") from None
    bound.apply_defaults()
    return _plan(**bound.arguments)


def compute_plans(*plans: ProfilePlan, **kwargs: Any) -> list[xr.Dataset]:
    """The Datasets of ``plans``, their tables computed in one graph.

    Parameters
    ----------
    *plans
        From :func:`plan_profile` or :func:`series_plans`.
    **kwargs
        Passed to :func:`bfdask.schedulers.compute` (``scheduler=``...).

    Returns
    -------
    list of xarray.Dataset
        In the order of ``plans``, numpy-backed; each as ``plan.dataset()`` computes it.
    """
    from .schedulers import compute

    tables = compute(*[plan.table for plan in plans], **kwargs)
    return [plan.dataset(table) for plan, table in zip(plans, tables)]


def _check(
    data: xr.DataArray,
    src: Sequence[float] | None,
    dst: Sequence[float] | None,
    *,
    line: str | None,
    linewidth: int | None,
    z: str | None,
    reference: int | str,
) -> None:
    """The argument checks of :func:`profile` that need no work."""
    import xarray as xr

    if not isinstance(data, xr.DataArray):
        raise TypeError(f"data must be an xarray.DataArray (from bfdask.open), not {type(data)}")
    if "Y" not in data.dims or "X" not in data.dims:
        raise ValueError(f"data must have 'Y' and 'X' dims; it has {data.dims}")
    if z is not None and z not in Z_PROJECTIONS:
        raise ValueError(f"z must be one of {Z_PROJECTIONS} or None, not {z!r}")
    if linewidth is not None and (int(linewidth) != linewidth or linewidth < 1):
        raise ValueError(f"linewidth must be a whole number of pixels >= 1, not {linewidth!r}")
    if line not in (None, "auto"):
        raise ValueError(f"line must be 'auto' or None (then give src and dst), not {line!r}")
    if line == "auto" and (src is not None or dst is not None):
        raise ValueError("give either src and dst, or line='auto', not both")
    if line is None and (src is None or dst is None):
        raise ValueError("pass the line's ends src and dst, or line='auto'")
    if line == "auto" and reference != "each" and not isinstance(reference, (int, np.integer)):
        raise ValueError(f"reference must be a timepoint index or 'each', not {reference!r}")


def _block_array(
    data: xr.DataArray,
    loop: Sequence[Hashable],
    rows: slice,
    cols: slice,
    *,
    z: str | None,
    whole_c: bool,
    band: Footprint | None = None,
) -> tuple[da.Array, str | None]:
    """The pixels the tasks read, ``(*loop, [Z,] Y, X)``, and the projection left to them.

    Cropped to ``rows``/``cols``; a Z stack split over several blocks is projected by dask
    where each block is read (a tree reduction, not whole stacks gathered in one task); each
    task gets whole planes (and every channel with ``whole_c``). A projection folded while it
    is read (:func:`bfdask.projected.project_z`) folds only the pixels ``band`` (zero elsewhere).
    """
    import dask.array as da

    project = z is not None and "Z" in data.dims
    folded = project_z(data, z, band) if project and z is not None else None
    if folded is not None:  # read and projected plane by plane in each task (issue #18)
        data, project = folded, False
    view = data.isel(Y=rows, X=cols).transpose(*loop, *(["Z"] if project else []), "Y", "X")
    array = view.data
    if not isinstance(array, da.Array):
        array = da.from_array(array, chunks=-1)
    if project and len(array.chunks[-3]) > 1:
        array = getattr(array, str(z))(axis=-3)
        project = False
    whole = {array.ndim - 1: -1, array.ndim - 2: -1}
    if whole_c and "C" in loop:
        whole[list(loop).index("C")] = -1  # the line's channel must be in every task
    if any(len(array.chunks[axis]) > 1 for axis in whole):
        array = array.rechunk(whole)
    return array, z if project else None


def _table(
    data: xr.DataArray, array: da.Array, task: BlockTask, loop: Sequence[Hashable], kind: str
) -> xr.DataArray:
    """:func:`profile_block` mapped over ``array``: dims ``(*loop, field)``, the coordinates
    of ``data`` over ``loop``; one task per block, the read fused into it (pixels never leave
    it), under the table's own keys."""
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize

    n_loop, pixel = len(loop), array.ndim - len(loop)  # pixel axes: [Z,] Y, X, a block each
    name = f"bfdask-{kind}-" + tokenize(array.name, task)
    out = da.map_blocks(
        profile_block_kept,  # not drop_axis: dask would copy each block to contract the axes
        array,
        chunks=(*array.chunks[:n_loop], *[(1,)] * (pixel - 1), (task.width,)),
        dtype=np.float64,
        meta=np.empty((0,) * array.ndim, np.float64),
        name=name + "-kept",
        task=task,
    )[(Ellipsis,) + (0,) * (pixel - 1) + (slice(None),)]
    # Fuse each block's read into its task now: later, with the result feeding several
    # variables, dask would no longer fuse them and the pixels would become task outputs.
    out = _fused(out, name)
    coords = {key: c for key, c in data.coords.items() if set(c.dims) <= set(loop)}
    return xr.DataArray(out, dims=[*loop, "field"], coords=coords)


def _fused(array: da.Array, name: str) -> da.Array:
    """``array`` optimized as dask computes it, its blocks stored as ``(name, *index)`` and no
    alias left that a cluster would run as a task.

    dask's linear fusion names a fused task anew and leaves, under the key asked for, an alias
    of it. Threads resolve an alias for free; a ``distributed`` cluster runs it as a task of its
    own, a scheduler round trip between two reads. Here a task that only an alias uses is
    stored under the alias's key instead (an alias whose target has other users stays).
    """
    import dask
    import dask.array as da
    from dask.core import flatten

    (array,) = dask.optimize(array)
    try:
        from dask._task_spec import Alias, GraphNode, Task
    except ImportError:  # dask < 2024.12: graphs of tuples, left as they are
        return array
    graph = dict(array.__dask_graph__())
    if not all(isinstance(node, GraphNode) for node in graph.values()):
        return array
    renamed = {key: (name, *key[1:]) for key in flatten(array.__dask_keys__())}
    users: dict[Any, int] = {}
    for node in graph.values():
        for dependency in node.dependencies:
            users[dependency] = users.get(dependency, 0) + 1

    def target_of(alias: Any) -> Any:
        return getattr(alias.target, "key", alias.target)  # a TaskRef in dask 2024.12

    for key in list(graph):
        node = graph.get(key)  # None: already moved under its alias's key
        if isinstance(node, Alias):
            target = target_of(node)
            alone = users.get(target) == 1 and target not in renamed
            if alone and isinstance(graph.get(target), Task):
                graph[key] = graph.pop(target).substitute({}, key=key)
    out: dict[Any, Any] = {}
    for key, node in graph.items():
        new_key = renamed.get(key, key)
        if isinstance(node, Alias):
            out[new_key] = Alias(new_key, target=renamed.get(target_of(node), target_of(node)))
        else:
            out[new_key] = node.substitute(renamed, key=new_key)
    return da.Array(out, name, array.chunks, meta=array._meta)


def _plain_dataset(
    table: xr.DataArray, line: SampledLine, scale: tuple[float, float], unit: str
) -> xr.Dataset:
    """The plain form: the profile, and its min, max and mean over ``distance``."""
    import xarray as xr

    prof = table.rename(field="distance")
    prof = prof.assign_coords(distance_coords(line, prof.sizes["distance"], scale, unit))
    prof = prof.rename("profile")
    return xr.Dataset(
        {
            "profile": prof,
            "min": prof.min("distance"),
            "max": prof.max("distance"),
            "mean": prof.mean("distance"),
        }
    )


def _stats_dataset(
    table: xr.DataArray,
    task: BlockTask,
    lines: Sequence[SampledLine],
    found_at: Sequence[int] | None,
    unit: str,
) -> xr.Dataset:
    """The statistics form: a variable per statistic, the line, the profile if asked."""
    import xarray as xr

    loop = [str(d) for d in table.dims[:-1]]
    names = task.stats.names
    k = len(names)
    n_line = len(LINE_FIELDS) if task.each else 0
    variables: dict[str, Any] = {}
    for i, name in enumerate(names):
        variables[name] = table.isel(field=i, drop=True)
    if task.each:  # lines found in the tasks, per timepoint
        first = {d: 0 for d in loop if d in ("C", "S")}
        for j, name in enumerate(LINE_FIELDS):
            variables[name] = table.isel(field=k + j, drop=True).isel(first, drop=True)
    else:  # known before the tasks ran: plain numpy, per position (no tasks, nothing to read)
        per_p = task.p_axis is not None
        rows = np.stack([line_fields(line, task.scale)[0] for line in lines])
        p_coords = {"P": table["P"]} if per_p else {}
        for j, name in enumerate(LINE_FIELDS):
            values = rows[:, j] if per_p else rows[0, j]
            variables[name] = xr.DataArray(values, dims=("P",) if per_p else (), coords=p_coords)
    if task.n_profile:
        prof = table.isel(field=slice(k + n_line, None)).rename(field="distance")
        if len(lines) == 1 and not lines[0].reason:  # one line: distances along it
            coords = distance_coords(lines[0], task.n_profile, task.scale, unit)
        else:
            index = np.arange(task.n_profile)
            coords = {"distance": xr.Variable("distance", index, {"units": "sample"})}
        variables["profile"] = prof.assign_coords(coords)
    variables["line_step"].attrs["units"] = unit
    # the former name of line_measured_width, kept one release (it read like `linewidth`)
    former = variables["line_measured_width"].copy()
    former.attrs["deprecated"] = (
        "renamed line_measured_width (the width measured, not the linewidth sampled); "
        "line_width will be removed in the next release"
    )
    variables["line_width"] = former
    if "slope" in names and task.stats.funcs[names.index("slope")] is None:
        variables["slope"].attrs["units"] = f"intensity / {unit}"
    ds = xr.Dataset(variables)
    if found_at is not None:
        per_p = "P" in loop and len(lines) > 1
        dims = ("P",) if per_p else ()
        reasons = [line.reason for line in lines]
        reasons_array = np.asarray(reasons if per_p else reasons[0], dtype=object)
        used = np.asarray(found_at if per_p else found_at[0])
        ds = ds.assign_coords(line_reason=(dims, reasons_array), line_reference=(dims, used))
    return ds


def saturation(data: xr.DataArray, z: str | None) -> float | None:
    """The value of a clipped (saturated) sample after the projection, for integer data."""
    if not np.issubdtype(data.dtype, np.integer):
        return None
    top = float(np.iinfo(data.dtype).max)
    return top * data.sizes.get("Z", 1) if z == "sum" else top


# -- several series -----------------------------------------------------------------------------


def profile_series(
    path: str | os.PathLike[str],
    src: Sequence[float] | None = None,
    dst: Sequence[float] | None = None,
    series: int | str | Iterable[int | str] | None = None,
    *,
    chunks: Mapping[str, Any] | str | None = None,
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
        The line (see :func:`profile`), the same in every series; None with ``line="auto"``
        in ``kwargs`` (a line found in each series).
    series
        Index, name, or a list of them; None (default) for every series.
    chunks
        Passed to :func:`bfdask.open`.
    compute
        False returns the lazy Datasets (to compute them yourself, e.g. with
        ``client.compute`` and a progress bar).
    **kwargs
        Passed to :func:`profile` (``linewidth``, ``z``, ``order``, ``units``, ``stats``...).

    Returns
    -------
    dict of str to xarray.Dataset
        By series name, in file order (a repeated name gets ``" #<index>"`` appended); each
        Dataset as :func:`profile` returns it.

    Raises
    ------
    SeriesIndexError
        A series name the file does not have.
    """
    plans = series_plans(path, src, dst, series, chunks=chunks, **kwargs)
    if compute:  # the tables alone: one task per block, not one per variable too
        return dict(zip(plans, compute_plans(*plans.values())))
    return {key: plan.dataset() for key, plan in plans.items()}


def series_plans(
    path: str | os.PathLike[str],
    src: Sequence[float] | None = None,
    dst: Sequence[float] | None = None,
    series: int | str | Iterable[int | str] | None = None,
    *,
    chunks: Mapping[str, Any] | str | None = None,
    **kwargs: Any,
) -> dict[str, ProfilePlan]:
    """The :class:`ProfilePlan` of each series :func:`profile_series` profiles, by its key."""
    from .array import open_series
    from .errors import SeriesIndexError
    from .metadata import list_series
    from .seriesnames import series_keys

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
                raise SeriesIndexError(
                    f"{os.fspath(path)!r} has no series named {item!r}; "
                    f"bfdask.list_series(path) lists them."
                )
            indices.append(by_name[item])
        else:
            indices.append(item if item >= 0 else item + len(infos))
    plans = [
        plan_profile(open_series(path, series=i, chunks=chunks, ome=False), src, dst, **kwargs)
        for i in indices
    ]
    keys = series_keys([infos[i].name for i in indices], indices)
    return dict(zip(keys, plans))
