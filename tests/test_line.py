"""Automatic line: synthetic tubes at every angle, several widths, noise, crossing the border."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

import bfdask
from bfdask.line import find_line

SHAPE = (128, 200)


def tube(p0, p1, fwhm: float, *, seed: int = 0, noise: float = 20.0) -> np.ndarray:
    """A Gaussian-profiled tube of the given full width at half maximum along p0 → p1 (only
    between the ends), on a background of 100 with Gaussian noise."""
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(float)
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    length = np.hypot(*(p1 - p0))
    u = (p1 - p0) / length
    along = (yy - p0[0]) * u[0] + (xx - p0[1]) * u[1]
    across = -(yy - p0[0]) * u[1] + (xx - p0[1]) * u[0]
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    signal = 1000 * np.exp(-0.5 * (across / sigma) ** 2) * ((along >= 0) & (along <= length))
    return 100 + signal + np.random.default_rng(seed).normal(0, noise, SHAPE)


def visible_ends(p0, p1) -> tuple[np.ndarray, np.ndarray]:
    """First and last points of the segment inside the image (dense sampling)."""
    s = np.linspace(0, 1, 20001)[:, None]
    points = np.asarray(p0, float) + s * (np.asarray(p1, float) - np.asarray(p0, float))
    inside = (
        (points[:, 0] >= 0)
        & (points[:, 0] <= SHAPE[0] - 1)
        & (points[:, 1] >= 0)
        & (points[:, 1] <= SHAPE[1] - 1)
    )
    kept = points[inside]
    return kept[0], kept[-1]


def end_error(line: bfdask.line.Line, a: np.ndarray, b: np.ndarray) -> float:
    src, dst = np.asarray(line.src), np.asarray(line.dst)
    same = max(np.hypot(*(src - a)), np.hypot(*(dst - b)))
    swapped = max(np.hypot(*(src - b)), np.hypot(*(dst - a)))
    return float(min(same, swapped))


@pytest.mark.parametrize("angle", list(range(0, 180, 15)))
@pytest.mark.parametrize("fwhm", [4.0, 8.0, 14.0])
def test_tube_at_any_angle(angle: int, fwhm: float) -> None:
    centre = np.array([64.0, 100.0])
    u = np.array([math.sin(math.radians(angle)), math.cos(math.radians(angle))])
    p0, p1 = centre - 60 * u, centre + 60 * u  # crosses the top/bottom border near 90°
    line = find_line(tube(p0, p1, fwhm, seed=angle))
    assert line.found, line.reason
    a, b = visible_ends(p0, p1)
    assert end_error(line, a, b) < 3.0
    assert line.width == pytest.approx(fwhm, rel=0.2)
    for point in (line.src, line.dst):  # clipped to the image
        assert 0 <= point[0] <= SHAPE[0] - 1 and 0 <= point[1] <= SHAPE[1] - 1


@pytest.mark.parametrize(
    ("p0", "p1"),
    [((-30, 20), (150, 180)), ((64, -50), (80, 260)), ((10, 150), (140, 230))],
    ids=["corner-to-corner", "both-sides", "bottom-right"],
)
def test_tube_crossing_the_border(p0, p1) -> None:
    line = find_line(tube(p0, p1, 9.0, seed=3, noise=40.0))
    assert line.found, line.reason
    a, b = visible_ends(p0, p1)
    assert end_error(line, a, b) < 3.0
    assert line.width == pytest.approx(9.0, rel=0.2)


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (np.random.default_rng(5).normal(100, 20, SHAPE), "blank"),
        (np.zeros(SHAPE), "blank"),
        (np.full(SHAPE, np.nan), "blank"),
        (tube((60, 95), (66, 105), 10.0), "not elongated"),
    ],
    ids=["noise", "zeros", "nan", "blob"],
)
def test_no_structure_gives_a_reason(image: np.ndarray, reason: str) -> None:
    line = find_line(image)
    assert not line.found and line.reason.startswith(reason)
    assert math.isnan(line.width) and math.isnan(line.src[0])


def test_blank_frame_gives_nan_statistics_with_reason() -> None:
    good = tube((30, 10), (90, 190), 8.0)
    frames = np.stack([good, np.random.default_rng(9).normal(100, 20, SHAPE)])
    data = xr.DataArray(frames[:, None, None], dims=("P", "T", "Z", "Y", "X"))
    data = data.assign_coords(P=["good", "blank"])
    stats = bfdask.profile(data, line="auto", stats=["min", "max"]).compute(scheduler="sync")
    assert stats["line_reason"].values[0] == ""
    assert stats["line_reason"].values[1].startswith("blank")
    assert np.isfinite(stats["max"].values[0]).all() and np.isnan(stats["max"].values[1]).all()
    assert stats["line_status"].values.tolist() == [0, 1]  # one line per position
    assert stats["linewidth"].values[0] == round(stats["line_measured_width"].values[0])
    bad = bfdask.bad_timepoints(stats, variables=["max"])
    assert bad[["position", "T", "reason"]].values.tolist() == [["blank", 0, "no_line"]]
    # per timepoint, inside the tasks: the same result
    each = bfdask.profile(data, line="auto", reference="each", stats=["max"]).compute()
    np.testing.assert_allclose(each["max"].values, stats["max"].values)


def test_dead_reference_frame_falls_back_to_the_next() -> None:
    rng = np.random.default_rng(4)
    good = [tube((30, 10), (90, 190), 8.0, seed=s) for s in range(3)]
    dead = rng.normal(100, 20, SHAPE)
    frames = np.stack([good, [dead, good[1], good[2]]])  # position 1: T=0 failed
    data = xr.DataArray(frames, dims=("P", "T", "Y", "X")).assign_coords(P=["a", "b"])
    stats = bfdask.profile(data, line="auto", stats="max").compute()
    assert stats["line_reference"].values.tolist() == [0, 1]
    assert stats["line_reason"].values.tolist() == ["", ""]
    np.testing.assert_allclose(stats["line_row0"].values[1], stats["line_row0"].values[0], atol=1)
    assert np.isfinite(stats["max"].values).all()
    bad = bfdask.bad_timepoints(stats)
    assert bad[["position", "T", "reason"]].values.tolist() == [["b", 0, "blank"]]
