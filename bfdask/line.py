"""Find the line along a bright, elongated structure (an embryo seen as a tube).

:func:`find_line` works on one 2-D image (a Z projection), pure numpy/scipy, on the client or
inside a dask task; :func:`find_lines` finds one per position of a DataArray, in a reference
frame (falling back to the next frames when that one failed). The steps of :func:`find_line`:

1. smooth (Gaussian, ``sigma`` px) and subtract the background (the image's median);
2. no structure if the smoothed peak is not well above the noise (robust noise of the image,
   scaled to the smoothing): a blank frame gives a :class:`Line` with a ``reason``;
3. keep the pixels above half of the peak, in connected pieces of a useful size (a lesion may
   cut the tube in two: every piece at least a tenth of the largest counts);
4. axis: principal direction of those pixels (intensity-weighted); the structure must be
   elongated (length ≥ 3 × width) or there is no line;
5. ends: the extreme projections of those pixels on the axis, the segment clipped to the image;
6. width: full width at half maximum of the mean profile across the axis (the background-free,
   unsmoothed image binned by signed distance from the axis along the whole segment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr
    from numpy.typing import NDArray

#: how many robust noise standard deviations (of the smoothed image) a structure must reach
MIN_SNR = 8.0
#: the smallest length / width of a structure that counts as elongated
MIN_ELONGATION = 3.0
#: ``line_status`` codes of :func:`bfdask.profile`'s result: why there is no line
LINE_STATUS = {0: "found", 1: "blank", 2: "not elongated", 3: "no line"}


def status_code(reason: str) -> int:
    """The :data:`LINE_STATUS` code of a :attr:`Line.reason` (0: a line was found)."""
    if not reason:
        return 0
    if reason.startswith("blank"):
        return 1
    if reason.startswith("not elongated"):
        return 2
    return 3


@dataclass(frozen=True)
class Line:
    """A line found in an image: ``(row, col)`` ends, width (px), or why there is none.

    ``reason`` is ``""`` when a line was found; otherwise ``src``/``dst``/``width`` are NaN.
    """

    src: tuple[float, float]
    dst: tuple[float, float]
    width: float
    reason: str = ""

    @property
    def found(self) -> bool:
        """Whether a line was found."""
        return not self.reason

    @property
    def linewidth(self) -> int:
        """``width`` rounded to a whole number of pixels (>= 1), as ``profile_line`` takes it."""
        return max(1, round(self.width)) if self.found else 1

    @staticmethod
    def none(reason: str) -> Line:
        """No line, and why."""
        nan = float("nan")
        return Line((nan, nan), (nan, nan), nan, reason)


def _clip_segment(
    p0: NDArray[Any], p1: NDArray[Any], shape: tuple[int, int]
) -> tuple[NDArray[Any], NDArray[Any]] | None:
    """The part of segment ``p0 → p1`` inside ``[0, H-1] × [0, W-1]`` (Liang–Barsky)."""
    d = p1 - p0
    lo, hi = 0.0, 1.0
    for axis in (0, 1):
        bound = shape[axis] - 1
        for p, q in ((-d[axis], p0[axis]), (d[axis], bound - p0[axis])):
            if p == 0:
                if q < 0:
                    return None
                continue
            r = q / p
            if p < 0:
                lo = max(lo, r)
            else:
                hi = min(hi, r)
    if lo > hi:
        return None
    return p0 + lo * d, p0 + hi * d


def _fwhm(values: NDArray[Any], step: float) -> float:
    """Full width at half maximum of a peaked 1-D profile (linear interpolation), in units of
    ``step``; NaN if the profile never falls to half on both sides."""
    if not np.isfinite(values).any():
        return float("nan")
    peak = int(np.nanargmax(values))
    half = values[peak] / 2
    left = peak
    while left > 0 and values[left] > half:
        left -= 1
    right = peak
    while right < values.size - 1 and values[right] > half:
        right += 1
    if values[left] > half or values[right] > half:
        return float("nan")
    # interpolate each crossing between the sample below half and its inner neighbour
    x_left = left + (half - values[left]) / (values[left + 1] - values[left])
    x_right = right - (half - values[right]) / (values[right - 1] - values[right])
    return float((x_right - x_left) * step)


def find_line(
    image: NDArray[Any],
    *,
    sigma: float = 2.0,
    min_snr: float = MIN_SNR,
    min_elongation: float = MIN_ELONGATION,
) -> Line:
    """Find the axis, extent and width of the brightest elongated structure in ``image``.

    Parameters
    ----------
    image
        2-D array (a Z projection: sum or max). NaN pixels count as background.
    sigma
        Gaussian smoothing (px) before thresholding; widths are measured unsmoothed.
    min_snr
        How far (in noise standard deviations of the smoothed image) the structure's peak must
        rise above the background.
    min_elongation
        Smallest length/width ratio that counts as a tube.

    Returns
    -------
    Line
        ``src``/``dst`` ``(row, col)`` at the ends of the structure along its axis, clipped to
        the image; ``width`` its half-maximum width across the axis (px). When there is none,
        ``reason`` says why (``"blank: ..."``, ``"not elongated: ..."``) and the rest is NaN.
        Never raises for blank, constant or NaN images.
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"find_line needs a 2-D image, not shape {image.shape}")
    if min(image.shape) < 3:
        return Line.none(f"image too small ({image.shape[0]}x{image.shape[1]} px)")
    finite = np.isfinite(image)
    if not finite.any():
        return Line.none("blank: no finite pixel")
    background = float(np.median(image[finite]))
    flat = np.where(finite, image - background, 0.0)
    noise = 1.4826 * float(np.median(np.abs(flat[finite])))
    smooth = ndimage.gaussian_filter(flat, sigma)
    # noise of a Gaussian-smoothed white-noise image: sigma_n / (2 sqrt(pi) sigma)
    smooth_noise = noise / (2 * math.sqrt(math.pi) * sigma) if sigma > 0 else noise
    peak = float(smooth.max())
    if peak <= 0 or peak < min_snr * smooth_noise:
        return Line.none(
            f"blank: no structure above the noise (peak {peak:.3g} over background "
            f"{background:.3g}, needs {min_snr:g} x noise {smooth_noise:.3g})"
        )
    mask = smooth > peak / 2
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        keep = np.nonzero(sizes >= 0.1 * sizes.max())[0] + 1
        mask = np.isin(labels, keep)
    rows, cols = np.nonzero(mask)
    weights = smooth[rows, cols]
    points = np.stack([rows, cols], axis=1).astype(np.float64)
    centre = np.average(points, axis=0, weights=weights)
    centred = points - centre
    cov = (centred * weights[:, None]).T @ centred / weights.sum()
    _, eigenvectors = np.linalg.eigh(cov)  # ascending
    axis = eigenvectors[:, 1]
    along = centred @ axis
    across = centred @ eigenvectors[:, 0]
    length = float(along.max() - along.min())
    thickness = float(across.max() - across.min()) + 1.0
    if length < min_elongation * thickness:
        return Line.none(
            f"not elongated: the bright region is {length:.0f} px long and {thickness:.0f} px "
            f"wide (needs length >= {min_elongation:g} x width)"
        )
    p0 = centre + along.min() * axis
    p1 = centre + along.max() * axis
    clipped = _clip_segment(p0, p1, (image.shape[0], image.shape[1]))
    if clipped is None:  # cannot happen for pixels of the image; be safe
        return Line.none("the structure's axis lies outside the image")
    p0, p1 = clipped
    extent = (float(along.min()), float(along.max()))
    normal = eigenvectors[:, 0]
    width = _width_across(flat, finite, centre, axis, normal, extent, thickness)
    if width is None:
        return Line.none("no profile across the structure")
    if not math.isfinite(width):
        return Line.none("no half-maximum width across the structure (it fills the image)")
    # order the ends: from the top-left end (smaller col, then smaller row) for stable output
    if (p1[1], p1[0]) < (p0[1], p0[0]):
        p0, p1 = p1, p0
    return Line((float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1])), width)


def _width_across(
    flat: NDArray[Any],
    finite: NDArray[Any],
    centre: NDArray[Any],
    axis: NDArray[Any],
    normal: NDArray[Any],
    extent: tuple[float, float],
    thickness: float,
) -> float | None:
    """Full width at half maximum (px) of the mean background-free intensity ``flat`` binned
    by signed distance across the axis (``normal``), along the segment's ``extent`` on
    ``axis``; NaN if it never falls to half, None if there is no profile across at all."""
    yy, xx = np.nonzero(finite)
    rel = np.stack([yy, xx], axis=1) - centre
    t = rel @ axis
    d = rel @ normal
    span = float(min(3 * thickness + 10, max(flat.shape)))
    inside = (t >= extent[0]) & (t <= extent[1]) & (np.abs(d) <= span)
    step = 1.0
    bins = np.round(d[inside] / step).astype(np.int64)
    offset = round(span / step)
    counts = np.bincount(bins + offset, minlength=2 * offset + 1)
    sums = np.bincount(
        bins + offset, weights=flat[yy[inside], xx[inside]], minlength=2 * offset + 1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        across_profile = sums / counts
    filled = np.isfinite(across_profile)
    if filled.sum() < 3:
        return None
    grid = np.arange(across_profile.size)
    across_profile = np.interp(grid, grid[filled], across_profile[filled])
    return _fwhm(across_profile, step)


def channel_index(data: xr.DataArray, channel: int | str) -> int:
    """Index along ``C`` of ``channel`` (index, negative from the end, or name); 0 without C.

    Raises
    ------
    ValueError
        If ``data`` has no such channel.
    """
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
) -> list[tuple[Line, int]]:
    """The :class:`Line` of each position of ``data`` and the timepoint it was found in.

    Each position's line is found (:func:`find_line`) in the Z projection (``z``; max when
    None) of timepoint ``reference`` of channel ``line_channel``. A position whose reference
    frame shows no line (a failed acquisition) is tried at the next ``fallback`` timepoints; if
    none shows one, its line is the reference frame's (with its ``reason``). Computes those
    projections (one stack per position and try) on the current scheduler.

    Parameters
    ----------
    data
        Dims ``Y``, ``X`` and any of ``P`` (positions), ``T``, ``C``, ``Z``, ``S`` (summed).
    reference
        Timepoint index (negative from the end).
    line_channel
        Channel index or name.
    z
        Projection of the Z stack: ``"max"``, ``"mean"`` or ``"sum"``.
    fallback
        How many later timepoints to try when the reference frame shows no line.

    Returns
    -------
    list of (Line, int)
        One per position (one if ``data`` has no ``P`` dim), in order.

    Raises
    ------
    ValueError
        If ``reference`` or ``line_channel`` is out of range.
    """
    size_t = data.sizes.get("T", 1)
    if "T" in data.dims and not -size_t <= reference < size_t:
        raise ValueError(
            f"reference timepoint {reference} out of range: the data has {size_t} timepoints"
        )
    reference %= size_t
    view = _reference_view(data, line_channel)
    count = view.sizes["P"]
    found: list[tuple[Line, int] | None] = [None] * count
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
        for p, line in zip(todo, _find_each(frame.transpose("P", "Y", "X").data), strict=True):
            if first[p] is None:
                first[p] = line
            if line.found:
                found[p] = (line, t)
    return [item if item is not None else (first[p], reference) for p, item in enumerate(found)]


def _line_in(image: NDArray[Any]) -> Line:
    return find_line(np.asarray(image, dtype=np.float64))


def _find_each(frames: Any) -> list[Line]:
    """:func:`find_line` in each of ``frames`` (``(P, Y, X)``, numpy or dask). For dask, each
    image is found in the task that projects it, all in one graph on the current scheduler:
    the frames are read and the lines found in parallel, and only the lines come back."""
    import dask
    import dask.array as da

    from .schedulers import compute

    if not isinstance(frames, da.Array):
        return [_line_in(image) for image in np.asarray(frames)]
    tasks = [dask.delayed(_line_in, pure=True)(frames[p]) for p in range(frames.shape[0])]
    return list(compute(*tasks))


def _reference_view(data: xr.DataArray, line_channel: int | str) -> xr.DataArray:
    """``data`` narrowed to the channel the lines are found in, with a ``P`` dim."""
    view = data
    if "C" in view.dims:
        view = view.isel(C=channel_index(data, line_channel))
    if "S" in view.dims:
        view = view.sum("S")
    extra = [d for d in view.dims if d not in ("P", "T", "Z", "Y", "X")]
    if extra:
        view = view.isel(dict.fromkeys(extra, 0))
    if "P" not in view.dims:
        view = view.expand_dims("P")
    return view
