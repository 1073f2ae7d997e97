"""Positions stitched across acquisition blocks: :func:`open_positions`.

A Mark-and-Find time-lapse that was stopped and restarted stores every position (an embryo) in
several series, one per acquisition block, e.g. ``Pre lesion 2x/Pos008_S001`` and
``22.5h to 41h pSCI/Pos008_S001``. :func:`open_positions` groups the series of a file by the
``position`` group of a regular expression matched on the series name, orders each group's
series by acquisition time and concatenates them along ``T``, lazily, into one DataArray with
dims ``(P, T, C, Z, Y, X)``. Every series' metadata is read once, from one reader
(:func:`bfdask.metadata.read_specs`); each stitched series is then opened as
:func:`bfdask.open` opens it (:func:`bfdask.array.open_spec`), which for a LIF or a TIFF
verifies its native pixel plan on a few planes.

Time of each timepoint: the series' OME ``AcquisitionDate`` plus the plane's ``DeltaT`` (or
``T × TimeIncrement``), or what a user function returns. Positions acquire at different moments
of each cycle, so times are per (position, timepoint): 2-D coordinates ``time`` (s since the
first acquisition of the file), ``datetime`` and ``block`` over ``(P, T)``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import PaddedPositionsWarning, PositionMismatchError, UnmatchedSeriesWarning

if TYPE_CHECKING:
    import dask.array as da
    import xarray as xr
    from numpy.typing import NDArray

    from .metadata import ImageSpec

#: default pattern: the ``Pos<NNN>`` part of a Leica Mark-and-Find series name
DEFAULT_PATTERN = r"(?P<position>Pos\d+)"

#: what ``z_mismatch=`` accepts: what to do when the Z stacks of the blocks differ
Z_MISMATCH = ("error", "pad", "crop")

#: a user's time function: (series name, ImageSpec) -> seconds of its first timepoint, or one
#: value per timepoint (seconds, any common origin)
TimeFunction = Callable[[str, "ImageSpec"], "float | Sequence[float]"]


@dataclass(frozen=True)
class Acquisition:
    """One series of a position (its acquisition block): the series' metadata, the block's
    label and the absolute time of each T."""

    spec: ImageSpec
    block: str
    seconds: tuple[float, ...]  # per T, on one clock shared by every series of the file
    datetimes: tuple[Any, ...]  # numpy datetime64[ms] per T (NaT if unknown)


def _block_label(name: str, match: re.Match[str]) -> str:
    """The acquisition block of a series: its name before the position part (``Pre lesion 2x``)."""
    head = name[: match.start()].rstrip(" /_-")
    return head or name


def _datetime(text: str | None) -> np.datetime64 | None:
    """An OME AcquisitionDate as a naive UTC ``datetime64[ms]`` (None if absent/unparsable)."""
    if not text:
        return None
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "ms")


def _relative_times(spec: ImageSpec) -> NDArray[Any]:
    """Seconds of each T from the series' start: plane DeltaT, else T × TimeIncrement."""
    if spec.timestamps and len(spec.timestamps) == spec.size_t:
        return np.asarray(spec.timestamps, float)
    if spec.time_increment:
        return np.arange(spec.size_t) * spec.time_increment
    if spec.size_t == 1:
        return np.zeros(1)
    return np.full(spec.size_t, np.nan)


def _acquisition_times(
    spec: ImageSpec, times: TimeFunction | None, path: str
) -> tuple[NDArray[Any], NDArray[Any]]:
    """(seconds on the file's shared clock, datetime64) of each T of one series."""
    relative = _relative_times(spec)
    acquired = _datetime(spec.acquisition_date)
    if times is not None:
        given = np.asarray(times(spec.series_name, spec), dtype=float)
        if given.ndim == 0:
            if not np.isfinite(relative).all():
                raise ValueError(
                    f"times({spec.series_name!r}) returned one number, but the series records "
                    f"neither plane DeltaT nor a time increment in {path!r}: return one time "
                    f"(s) per timepoint ({spec.size_t})."
                )
            seconds = float(given) + relative - relative[0]
        elif given.shape == (spec.size_t,):
            seconds = given
        else:
            raise ValueError(
                f"times({spec.series_name!r}) returned {given.shape[0]} values for a series "
                f"of {spec.size_t} timepoints in {path!r}: return one number (the start, s) "
                "or one per timepoint."
            )
        if acquired is not None:
            offsets = ((seconds - seconds[0]) * 1000).round().astype("timedelta64[ms]")
            return seconds, acquired + offsets
        return seconds, np.full(spec.size_t, np.datetime64("NaT"), "datetime64[ms]")
    if acquired is None:
        raise ValueError(
            f"series {spec.series_name!r} of {path!r} records no acquisition date (OME "
            "Image AcquisitionDate), so its block cannot be placed in time; pass "
            "times=function(name, spec) returning its start in seconds (e.g. parsed from the "
            "block name)."
        )
    if not np.isfinite(relative).all():
        raise ValueError(
            f"series {spec.series_name!r} of {path!r} records neither plane DeltaT nor a time "
            "increment, so its timepoints cannot be placed in time; pass times=function(name, "
            "spec) returning one time (s) per timepoint."
        )
    epoch = acquired.astype("datetime64[ms]").astype(np.int64) / 1000.0
    offsets = (relative * 1000).round().astype("timedelta64[ms]")
    return epoch + relative, acquired + offsets


def _natural_key(label: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label)]


def _check_same(path: str, first: ImageSpec, spec: ImageSpec, z_mismatch: str) -> None:
    """Raise :class:`PositionMismatchError` if ``spec`` cannot be stacked with ``first``."""
    checks = [
        ("Y/X size", (first.size_y, first.size_x), (spec.size_y, spec.size_x)),
        ("channel count", first.size_c, spec.size_c),
        ("channel names", first.channel_names, spec.channel_names),
        ("samples per pixel", first.samples, spec.samples),
        ("data type", first.dtype, spec.dtype),
    ]
    if z_mismatch == "error":
        checks.append(("Z size", first.size_z, spec.size_z))
    for what, a, b in checks:
        if a != b:
            hint = (
                " Pass z_mismatch='pad' (zeros beyond a short stack) or z_mismatch='crop' "
                "(central planes of the smallest stack) to stitch them anyway."
                if what == "Z size"
                else " Only series of the same kind can be stitched; choose them with a "
                "narrower pattern."
            )
            raise PositionMismatchError(
                f"cannot stitch series {first.series_name!r} and {spec.series_name!r} of "
                f"{path!r}: {what} {a} vs {b}.{hint}"
            )


def _fit_z(array: xr.DataArray, size_z: int, how: str) -> xr.DataArray:
    """Pad (zeros at the end) or crop (central planes) the Z axis to ``size_z``."""
    have = array.sizes["Z"]
    if have == size_z:
        return array
    if how == "crop":
        from .projected import z_fit

        start, _ = z_fit(have, size_z, how)
        cropped: xr.DataArray = array.isel(Z=slice(start, start + size_z))
        return cropped
    padded: xr.DataArray = array.pad(Z=(0, size_z - have), constant_values=0)
    if "Z" in padded.coords:
        step = float(array["Z"][1] - array["Z"][0]) if have > 1 else 1.0
        padded = padded.assign_coords(Z=np.arange(size_z) * step)
    return padded


def _pad_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The float dtype that holds ``dtype`` and NaN."""
    if np.issubdtype(dtype, np.floating):
        return dtype
    return np.dtype(np.float32) if dtype.itemsize <= 2 else np.dtype(np.float64)


def open_positions(
    path: str | os.PathLike[str],
    pattern: str | re.Pattern[str] = DEFAULT_PATTERN,
    *,
    times: TimeFunction | None = None,
    z_mismatch: str = "error",
    chunks: Mapping[str, Any] | str | None = None,
    z: str | None = None,
) -> xr.DataArray:
    """Open every position of a file, its series stitched along T in acquisition order.

    Series are grouped by the ``position`` group of ``pattern`` searched in each series name;
    each group's series (acquisition blocks) are ordered by the time of their first timepoint
    and concatenated along ``T``. Every series' metadata is read once (one reader); each
    stitched series is then opened as :func:`bfdask.open` opens it, which for a LIF or a TIFF
    verifies its native pixel plan on a few planes (read both natively and through
    Bio-Formats). No other pixel is read until the array is computed.

    Parameters
    ----------
    path
        Any file Bio-Formats reads with several series (LIF, CZI, OME-TIFF...).
    pattern
        Regular expression with a named group ``position``, searched in each series name
        (:func:`re.search`). Default ``(?P<position>Pos\\d+)``: ``Pre lesion 2x/Pos008_S001``
        belongs to position ``Pos008``, block ``Pre lesion 2x`` (the name before the match).
    times
        Optional ``times(series_name, spec)`` giving the time of a series in seconds (any
        origin shared by all series): one number (its first timepoint; the others follow from
        its DeltaT/TimeIncrement) or one number per timepoint. Default: the series' OME
        ``AcquisitionDate`` plus each plane's ``DeltaT`` (else ``T × TimeIncrement``).
    z_mismatch
        When the blocks' Z stacks differ: ``"error"`` (default), ``"pad"`` (zeros after the
        shorter stacks: they add nothing to a sum or max projection of non-negative data) or
        ``"crop"`` (the central planes of every stack, as many as the smallest has).
    chunks
        Passed to :func:`bfdask.open` for every series.
    z
        Former name of ``z_mismatch`` (a ``FutureWarning``; removed in the next release).

    Returns
    -------
    xarray.DataArray
        Dims ``(P, T, C, Z, Y, X)`` (``S`` last for RGB), backed by dask. ``P`` holds the
        position labels (natural order); ``T`` the timepoint index within each position.
        Coordinates over ``(P, T)``: ``time`` (s since the first acquisition of the stitched
        series, ``units="s"``), ``datetime`` (absolute, ``datetime64``; NaT when the file has
        no date), ``block`` (block name) and ``series`` (series index, -1 for padding).
        Positions with fewer timepoints than the longest are padded with NaN (the array is
        then float; ``attrs["padded"]`` says how many per position and a
        :class:`PaddedPositionsWarning` says so); padded timepoints have ``time`` NaN.

    Raises
    ------
    ValueError
        ``pattern`` has no ``position`` group, matches no series, a series has no time (no
        AcquisitionDate and no ``times``), or ``z_mismatch`` is unknown.
    PositionMismatchError
        Two series to be stitched differ in Y/X size, channel count or names, samples per
        pixel, data type, or Z size (with ``z_mismatch="error"``); the message names both
        series (a ``ValueError``).

    Warns
    -----
    UnmatchedSeriesWarning
        Naming the series ``pattern`` does not match (they are left out, never silently).
    PaddedPositionsWarning
        When short positions were padded with NaN.
    """
    import dask.array as da
    import xarray as xr

    from .array import open_spec
    from .metadata import read_specs
    from .projected import Parts, with_parts

    if z is not None:
        if z_mismatch != "error":
            raise TypeError("open_positions takes z_mismatch= (or the old name z=), not both")
        warnings.warn(
            "open_positions(z=...) is now open_positions(z_mismatch=...): z= names the Z "
            "projection in bfdask.profile. z= will be removed in the next release.",
            FutureWarning,
            stacklevel=2,
        )
        z_mismatch = z
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    if "position" not in regex.groupindex:
        raise ValueError(
            f"pattern {regex.pattern!r} has no named group 'position'; write it as e.g. "
            r"r'(?P<position>Pos\d+)'."
        )
    if z_mismatch not in Z_MISMATCH:
        raise ValueError(f"z_mismatch must be one of {Z_MISMATCH}, not {z_mismatch!r}")
    where = os.fspath(path)
    groups = _group(read_specs(path), regex, where)
    first = next(iter(groups.values()))[0][0]
    members = [spec for group in groups.values() for spec, _ in group]
    for spec in members:
        _check_same(where, first, spec, z_mismatch)
    size_z = {
        "error": first.size_z,
        "pad": max(spec.size_z for spec in members),
        "crop": min(spec.size_z for spec in members),
    }[z_mismatch]
    positions = {
        label: sorted(
            (_acquisition(spec, block, times, where) for spec, block in group),
            key=lambda a: (a.seconds[0], a.spec.series),
        )
        for label, group in groups.items()
    }
    labels = sorted(positions, key=_natural_key)
    # One series is labeled (dims, coords): the series were checked to match, so its coords
    # hold for all; every other series joins as a dask array (a DataArray per series costs
    # ~5 ms, seconds on a file of thousands of positions).
    template = open_spec(positions[labels[0]][0].spec, chunks=chunks)
    template = template.drop_vars("T", errors="ignore")
    parts = [  # each position's series, as opened
        _parts(positions[label], chunks, head=None if i else template.data)
        for i, label in enumerate(labels)
    ]
    if z_mismatch != "error":
        template = _fit_z(template, size_z, z_mismatch)
    fitted = [[_fit_z_data(part, size_z, z_mismatch) for part in items] for items in parts]
    stacked = [items[0] if len(items) == 1 else da.concatenate(items, axis=0) for items in fitted]
    data, padded = _pad(where, labels, stacked, np.dtype(first.dtype))
    if not padded:  # kept in the graph: profile folds each series' Z where it is read
        data = with_parts(data, Parts(tuple(map(tuple, parts)), size_z, z_mismatch))
    coords: dict[Hashable, Any] = {
        name: coord for name, coord in template.coords.items() if "T" not in coord.dims
    }
    coords.update(_time_coords(labels, positions, data.shape[1]))
    attrs: dict[str, Any] = {
        "path": first.path,
        "pattern": regex.pattern,
        "positions": len(labels),
        "padded": padded,
        "z_policy": z_mismatch,
    }
    for key in ("physical_size_x", "physical_size_y", "physical_size_z"):
        value = getattr(first, key)
        if value is not None:
            attrs[key] = value
    dims = ("P", *template.dims)
    return xr.DataArray(data, dims=dims, coords=coords, attrs=attrs, name="positions")


def _group(
    specs: Sequence[ImageSpec], regex: re.Pattern[str], where: str
) -> dict[str, list[tuple[ImageSpec, str]]]:
    """The series of each position (``(spec, block label)``, file order), positions in the
    order first met; warns about the series ``regex`` does not match."""
    groups: dict[str, list[tuple[ImageSpec, str]]] = {}
    unmatched = []
    for spec in specs:
        match = regex.search(spec.series_name)
        if match is None or match.group("position") is None:
            unmatched.append(spec.series_name)
            continue
        block = _block_label(spec.series_name, match)
        groups.setdefault(match.group("position"), []).append((spec, block))
    if not groups:
        raise ValueError(
            f"pattern {regex.pattern!r} matches none of the {len(specs)} series of {where!r} "
            f"(e.g. {[s.series_name for s in specs[:5]]}); bfdask.list_series(path) lists them."
        )
    if unmatched:
        warnings.warn(
            f"{len(unmatched)} series of {where!r} do not match {regex.pattern!r} and are left "
            f"out: {unmatched}",
            UnmatchedSeriesWarning,
            stacklevel=3,
        )
    return groups


def _acquisition(
    spec: ImageSpec, block: str, times: TimeFunction | None, where: str
) -> Acquisition:
    seconds, stamps = _acquisition_times(spec, times, where)
    return Acquisition(spec, block, tuple(seconds), tuple(stamps))


def _parts(
    acquisitions: Sequence[Acquisition],
    chunks: Mapping[str, Any] | str | None,
    head: da.Array | None = None,
) -> list[da.Array]:
    """One position: its series opened (as :func:`bfdask.open` opens them, without labels),
    to be fitted in Z and concatenated along T; ``head`` is the first series' array if
    already open."""
    from .array import open_dask

    return [
        head if i == 0 and head is not None else open_dask(acquisition.spec, chunks=chunks)
        for i, acquisition in enumerate(acquisitions)
    ]


def _fit_z_data(data: da.Array, size_z: int, how: str) -> da.Array:
    """:func:`_fit_z` on a (T, C, Z, Y, X[, S]) dask array (``how="error"``: as it is)."""
    import dask.array as da

    have = data.shape[2]
    if have == size_z or how == "error":
        return data
    if how == "crop":
        from .projected import z_fit

        start, _ = z_fit(have, size_z, how)
        cropped: da.Array = data[:, :, start : start + size_z]
        return cropped
    widths = [(0, 0)] * data.ndim
    widths[2] = (0, size_z - have)
    padded: da.Array = da.pad(data, widths, mode="constant", constant_values=0)
    return padded


def _pad(
    where: str, labels: Sequence[str], stacked: Sequence[da.Array], dtype: np.dtype[Any]
) -> tuple[da.Array, dict[str, int]]:
    """The positions stacked along a new first axis, the short ones padded with NaN at the end
    of T (and the timepoints added to each, by label)."""
    import dask.array as da

    lengths = [item.shape[0] for item in stacked]
    size_t = max(lengths)
    padded = {label: size_t - n for label, n in zip(labels, lengths) if n < size_t}
    if padded:
        dtype = _pad_dtype(dtype)
        warnings.warn(
            f"positions with fewer timepoints than the longest ({size_t}) are padded with NaN "
            f"in {where!r}: " + ", ".join(f"{k} +{n}" for k, n in padded.items()),
            PaddedPositionsWarning,
            stacklevel=3,
        )
    arrays = []
    for item in stacked:
        array = item.astype(dtype) if item.dtype != dtype else item
        missing = size_t - item.shape[0]
        if missing:
            tail = da.full(
                (missing, *array.shape[1:]),
                np.nan,
                dtype=dtype,
                chunks=(1, *array.chunksize[1:]),
            )
            array = da.concatenate([array, tail], axis=0)
        arrays.append(array)
    return da.stack(arrays, axis=0), padded


def _time_coords(
    labels: Sequence[str], positions: Mapping[str, Sequence[Acquisition]], size_t: int
) -> dict[str, Any]:
    """The coordinates ``P``, ``T`` and, over ``(P, T)``, ``time``, ``datetime``, ``block``,
    ``series``."""
    import xarray as xr

    origin = min(a.seconds[0] for acquisitions in positions.values() for a in acquisitions)
    time = np.full((len(labels), size_t), np.nan)
    stamp = np.full((len(labels), size_t), np.datetime64("NaT"), "datetime64[ms]")
    block = np.full((len(labels), size_t), "", dtype=object)
    series = np.full((len(labels), size_t), -1, dtype=np.int64)
    for p, label in enumerate(labels):
        t = 0
        for a in positions[label]:
            n = len(a.seconds)
            time[p, t : t + n] = np.asarray(a.seconds) - origin
            stamp[p, t : t + n] = np.asarray(a.datetimes, "datetime64[ms]")
            block[p, t : t + n] = a.block
            series[p, t : t + n] = a.spec.series
            t += n
    return {
        "P": xr.Variable("P", np.asarray(labels, dtype=object)),
        "T": xr.Variable("T", np.arange(size_t), {"long_name": "timepoint of the position"}),
        "time": xr.Variable(("P", "T"), time, {"units": "s", "since": _origin_text(stamp)}),
        "datetime": xr.Variable(("P", "T"), stamp),
        "block": xr.Variable(("P", "T"), block),
        "series": xr.Variable(("P", "T"), series),
    }


def _origin_text(stamps: NDArray[Any]) -> str:
    """The first acquisition as ISO text ('' when the file records no dates)."""
    valid = stamps[~np.isnat(stamps)]
    return str(valid.min()) if valid.size else ""


__all__ = [
    "DEFAULT_PATTERN",
    "PaddedPositionsWarning",
    "PositionMismatchError",
    "UnmatchedSeriesWarning",
    "open_positions",
]
