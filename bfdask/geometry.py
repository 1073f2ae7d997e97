"""A line in an image, in pixels: its ends (given in px or µm, or found), the samples along
it, the pixels they touch.

The geometry :func:`bfdask.profile` needs before any pixel is read: the pixel size
(:func:`pixel_scale`), a line's ends from µm to pixels (:func:`to_pixels`), the lines to sample
(:func:`lines_to_sample`), the rows and columns their samples can touch (:func:`crop`: the
part of each plane a task reads), the number of samples and their distances along the line.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .line import find_lines, status_code

if TYPE_CHECKING:
    from collections.abc import Sequence

    import xarray as xr
    from numpy.typing import NDArray

#: per-plane fields describing the line, after the statistics in a task's output
LINE_FIELDS = (
    "line_row0",
    "line_col0",
    "line_row1",
    "line_col1",
    "line_measured_width",
    "linewidth",
    "line_step",
    "line_status",
)


@dataclass(frozen=True)
class SampledLine:
    """A line a task samples: ``(row, col)`` ends in pixels, the ``linewidth`` it is sampled
    with, the structure's width as :func:`bfdask.find_line` measured it (``measured_width``,
    px; NaN for a line given by its ends) and why there is no line (``reason``, ``""`` when
    there is one)."""

    src: tuple[float, float]
    dst: tuple[float, float]
    linewidth: int
    measured_width: float = math.nan
    reason: str = ""

    def moved(self, rows: int, cols: int) -> SampledLine:
        """The same line in a crop whose first pixel is (``rows``, ``cols``)."""
        src = (self.src[0] - rows, self.src[1] - cols)
        return replace(self, src=src, dst=(self.dst[0] - rows, self.dst[1] - cols))


def line_fields(line: SampledLine, scale: tuple[float, float]) -> tuple[NDArray[Any], float]:
    """The :data:`LINE_FIELDS` of ``line`` and the distance between its samples (``scale``:
    distance per pixel along Y and X)."""
    src, dst, reason = line.src, line.dst, line.reason
    n = n_samples(src, dst) if not reason else 1
    length = math.hypot((dst[0] - src[0]) * scale[0], (dst[1] - src[1]) * scale[1])
    step = length / (n - 1) if n > 1 else math.nan
    used = line.linewidth if not reason else math.nan
    fields = [*src, *dst, line.measured_width, used, step, status_code(reason)]
    return np.array(fields, np.float64), step


def n_samples(src: Sequence[float], dst: Sequence[float]) -> int:
    """Samples along the line, as :func:`skimage.measure.profile_line` takes them."""
    return int(np.ceil(np.hypot(dst[0] - src[0], dst[1] - src[1]) + 1))


def longest(lines: Sequence[SampledLine], shape: tuple[int, int]) -> int:
    """Samples along the longest of ``lines`` (the diagonal of a ``shape`` image without lines:
    those found in the tasks)."""
    if not lines:
        return n_samples((0, 0), (shape[0] - 1, shape[1] - 1))
    return max(n_samples(line.src, line.dst) if not line.reason else 1 for line in lines)


def axis_step(data: xr.DataArray, dim: str) -> tuple[float, float] | None:
    """(origin, step) of the physical coordinate of ``dim`` (``"Y"`` or ``"X"``), if any."""
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


def pixel_scale(data: xr.DataArray) -> tuple[tuple[float, float], str]:
    """Distance per pixel along (Y, X) and its unit: µm when ``data`` records the pixel size,
    else ``(1, 1)`` px."""
    y, x = axis_step(data, "Y"), axis_step(data, "X")
    if y is None or x is None:
        return (1.0, 1.0), "px"
    return (y[1], x[1]), "µm"


def to_pixels(
    data: xr.DataArray, point: Sequence[float], units: str, name: str
) -> tuple[float, float]:
    """``point`` (row, col) in ``units`` (``"px"`` or ``"um"``) as pixel indices of ``data``.

    Raises
    ------
    ValueError
        If ``point`` is not a pair, ``units`` is unknown, or µm are given for data without a
        pixel size.
    """
    if len(point) != 2:
        raise ValueError(f"{name} must be a (row, col) pair, not {point!r}")
    row, col = (float(v) for v in point)
    if units in ("px", "pixel", "pixels"):
        return row, col
    if units not in ("um", "µm", "micron"):
        raise ValueError(f"units must be 'px' or 'um', not {units!r}")
    y, x = axis_step(data, "Y"), axis_step(data, "X")
    if y is None or x is None:
        raise ValueError(
            f"{name} given in µm but {data.attrs.get('path', 'the data')!r} records no physical "
            "pixel size (no Y/X coordinates); pass pixel coordinates (units='px')."
        )
    return (row - y[0]) / y[1], (col - x[0]) / x[1]


def crop(
    lines: Sequence[SampledLine], shape: tuple[int, int], order: int | None, mode: str
) -> tuple[slice, slice]:
    """Rows and columns the samples of ``lines`` can touch; the whole plane when unsure.

    Exact for interpolation orders 0 and 1 (a sample only weighs its neighbouring pixels) with
    both ends of every line inside the image; spline orders, wrapping modes and lines leaving
    the image read the whole plane, so the result is always identical to profiling the full
    plane. Lines not found (a ``reason``) sample nothing; without any line, the whole plane.
    """
    full = (slice(0, shape[0]), slice(0, shape[1]))
    sampled = [line for line in lines if not line.reason]
    if not sampled or (order is not None and order > 1) or "wrap" in mode:
        return full
    lo, hi = list(shape), [0, 0]
    for line in sampled:
        for point in (line.src, line.dst):
            if not (0 <= point[0] <= shape[0] - 1 and 0 <= point[1] <= shape[1] - 1):
                return full
        margin = math.ceil(line.linewidth / 2) + 2
        for axis in (0, 1):
            ends = (line.src[axis], line.dst[axis])
            lo[axis] = min(lo[axis], max(0, math.floor(min(ends)) - margin))
            hi[axis] = max(hi[axis], min(shape[axis], math.ceil(max(ends)) + margin + 1))
    return slice(lo[0], hi[0]), slice(lo[1], hi[1])


def lines_to_sample(
    data: xr.DataArray,
    src: Sequence[float] | None,
    dst: Sequence[float] | None,
    *,
    line: str | None,
    each: bool,
    linewidth: int | None,
    units: str,
    mode: str,
    reference: int | str,
    line_channel: int | str,
    z: str | None,
) -> tuple[list[SampledLine], list[int] | None]:
    """The lines :func:`bfdask.profile` samples, in pixels of the whole image: the one given
    (``src``/``dst`` in ``units``; a warning if an end lies outside the image), or with
    ``line="auto"`` one found per position (:func:`bfdask.line.find_lines`) and the timepoint
    each was found in; none with ``each`` (the tasks find them)."""
    if each:
        return [], None
    if line == "auto":
        found = find_lines(data, reference=int(reference), line_channel=line_channel, z=z)
        lines = [
            SampledLine(
                f.src,
                f.dst,
                f.linewidth if linewidth is None else int(linewidth),
                f.width,
                f.reason,
            )
            for f, _ in found
        ]
        return lines, [t for _, t in found]
    assert src is not None and dst is not None
    src_px = to_pixels(data, src, units, "src")
    dst_px = to_pixels(data, dst, units, "dst")
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
            stacklevel=3,  # the caller of bfdask.profile
        )
    return [SampledLine(src_px, dst_px, 1 if linewidth is None else int(linewidth))], None


def distance_coords(
    line: SampledLine, n: int, scale: tuple[float, float], unit: str
) -> dict[str, Any]:
    """Coordinates along one line: ``distance`` from ``src`` (µm or px), ``row``, ``col``."""
    import xarray as xr

    (r0, c0), (r1, c1) = line.src, line.dst
    length = math.hypot((r1 - r0) * scale[0], (c1 - c0) * scale[1])
    return {
        "distance": xr.Variable("distance", np.linspace(0.0, length, n), {"units": unit}),
        "row": xr.Variable("distance", np.linspace(r0, r1, n), {"units": "px"}),
        "col": xr.Variable("distance", np.linspace(c0, c1, n), {"units": "px"}),
    }
