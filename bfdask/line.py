"""Find the line along a bright, elongated structure (an embryo seen as a tube): :func:`find_line`.

Pure numpy/scipy/scikit-image on one 2-D image (a Z projection); runs on the client or inside a
dask task. The steps:

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

import numpy as np

#: how many robust noise standard deviations (of the smoothed image) a structure must reach
MIN_SNR = 8.0
#: the smallest length / width of a structure that counts as elongated
MIN_ELONGATION = 3.0


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
    p0: np.ndarray, p1: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray] | None:
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


def _fwhm(values: np.ndarray, step: float) -> float:
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
    image: np.ndarray,
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
    # width: mean background-free intensity binned by distance across the axis
    yy, xx = np.nonzero(finite)
    rel = np.stack([yy, xx], axis=1) - centre
    t = rel @ axis
    d = rel @ eigenvectors[:, 0]
    span = float(min(3 * thickness + 10, max(image.shape)))
    inside = (t >= along.min()) & (t <= along.max()) & (np.abs(d) <= span)
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
        return Line.none("no profile across the structure")
    grid = np.arange(across_profile.size)
    across_profile = np.interp(grid, grid[filled], across_profile[filled])
    width = _fwhm(across_profile, step)
    if not math.isfinite(width):
        return Line.none("no half-maximum width across the structure (it fills the image)")
    # order the ends: from the top-left end (smaller col, then smaller row) for stable output
    if (p1[1], p1[0]) < (p0[1], p0[0]):
        p0, p1 = p1, p0
    return Line((float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1])), width)
