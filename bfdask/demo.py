"""A small, embryo-like time-lapse sample for ``bfdask demo``, the notebook and the tests.

:func:`write_sample` writes a multi-series OME-TIFF with tifffile (a real writer that bfdask
does not own; Bio-Formats reads it back). Each series is one "position" of a Mark-and-Find
experiment: a Z stack over time of a bright tube (the embryo's spinal cord) crossing the frame,
with a lesion -- a dip in fluorescence along the tube -- that deepens and then recovers. One
timepoint of one series is a failed acquisition: almost no fluorescence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from numpy.typing import NDArray

#: brightness of the channels (a fifth channel repeats the first)
_BRIGHTNESS = np.array([3000.0, 1800.0, 1200.0, 900.0])


@dataclass(frozen=True)
class Sample:
    """Shape and story of the demo sample (defaults: a few MB, written in well under a second).

    The tube runs along ``line`` (``(row, col)`` ends, pixels); ``line_width`` is its width,
    the natural ``linewidth`` of the profile. ``bad_series``/``bad_timepoint`` locate the one
    failed acquisition.
    """

    series: int = 3
    size_t: int = 16
    size_c: int = 2
    size_z: int = 4
    size_y: int = 96
    size_x: int = 256
    line: tuple[tuple[int, int], tuple[int, int]] = ((40, 12), (56, 243))
    line_width: int = 9
    bad_series: int = 1
    bad_timepoint: int = 9
    physical_size: float = 0.65  # µm per pixel (X and Y)
    z_step: float = 2.0  # µm
    time_increment: float = 1800.0  # s: a stack every 30 min
    channel_names: tuple[str, ...] = ("GFP", "mCherry")
    seed: int = 7
    names: tuple[str, ...] = field(default=())

    def series_names(self) -> list[str]:
        """Names in the style of a Mark-and-Find experiment (``Mark_and_Find_001/Pos001``)."""
        if self.names:
            return list(self.names)
        return [f"Mark_and_Find_001/Pos{i + 1:03d}" for i in range(self.series)]


def lesion_depth(t: int, size_t: int) -> float:
    """Fraction of fluorescence the lesion removes at timepoint ``t``: deepens, then recovers."""
    phase = t / max(1, size_t - 1)
    return 0.75 * float(np.exp(-(((phase - 0.45) / 0.22) ** 2)))


def _tube(
    size_y: int, size_x: int, line: tuple[tuple[float, float], tuple[float, float]], width: float
) -> tuple[NDArray[Any], NDArray[Any]]:
    """An embryo-like tube along ``line`` ((row, col) ends): each pixel's position along the
    axis (0 at the first end, 1 at the second) and the tube's unclipped brightness (0..1)."""
    (r0, c0), (r1, c1) = line
    yy, xx = np.mgrid[0:size_y, 0:size_x].astype(np.float64)
    dr, dc = r1 - r0, c1 - c0
    length = np.hypot(dr, dc)
    along = ((yy - r0) * dr + (xx - c0) * dc) / length**2
    across = np.abs((yy - r0) * dc - (xx - c0) * dr) / length  # distance from the axis
    sigma = width / 2.5
    tube = np.exp(-0.5 * (across / sigma) ** 2) * (0.85 + 0.15 * np.sin(3 * np.pi * along))
    return along, tube


def _render(
    shape: tuple[int, int, int, int],
    along: NDArray[Any],
    tube: NDArray[Any],
    lesion_at: float,
    depths: Sequence[float],
    levels: NDArray[Any],
    rng: np.random.Generator,
) -> NDArray[Any]:
    """Pixels (T, C, Z, Y, X) uint16 of one tube over time: ``shape`` is (C, Z, Y, X); the
    lesion (centred at ``lesion_at`` along the tube) removes ``depths[t]`` of the signal, and
    ``levels[t, c]`` is the brightness of channel ``c`` at ``t``; noise from ``rng``."""
    size_c, size_z = shape[0], shape[1]
    lesion = np.exp(-0.5 * ((along - lesion_at) / 0.05) ** 2)
    focus = np.exp(-0.5 * ((np.arange(size_z) - (size_z - 1) / 2) / 1.2) ** 2)
    out = np.empty((len(depths), *shape), np.uint16)
    for t, depth in enumerate(depths):
        signal = tube * (1 - depth * lesion)
        for c in range(size_c):
            for z in range(size_z):
                mean = 100 + levels[t, c] * focus[z] * signal
                out[t, c, z] = np.clip(rng.normal(mean, np.sqrt(mean) * 2), 0, 65535)
    return out


def _levels(size_c: int, dimming: Sequence[float], failed: Sequence[bool]) -> NDArray[Any]:
    """Brightness (T, C): each channel's own, times ``dimming[t]``, 3 % in failed frames."""
    return np.array(
        [
            [_BRIGHTNESS[c % 4] * dim * (0.03 if dead else 1.0) for c in range(size_c)]
            for dim, dead in zip(dimming, failed)
        ]
    )


def make_series(sample: Sample, index: int) -> NDArray[Any]:
    """Pixels of one series, shape (T, C, Z, Y, X), uint16."""
    rng = np.random.default_rng(sample.seed + index)
    along, tube = _tube(sample.size_y, sample.size_x, sample.line, sample.line_width)
    tube *= (along > -0.02) & (along < 1.02)
    times = range(sample.size_t)
    depths = [lesion_depth(t, sample.size_t) for t in times]
    failed = [index == sample.bad_series and t == sample.bad_timepoint for t in times]
    levels = _levels(sample.size_c, [1 - 0.01 * t for t in times], failed)
    shape = (sample.size_c, sample.size_z, sample.size_y, sample.size_x)
    return _render(shape, along, tube, 0.5 + 0.05 * (index - 1), depths, levels, rng)


def _write(
    path: Path,
    series: Sequence[tuple[NDArray[Any], dict[str, Any]]],
    physical_size: float,
    z_step: float,
    channel_names: Sequence[str],
) -> Path:
    """Write an OME-TIFF (tifffile), one OME Image per ``(pixels, metadata)`` with the pixel
    sizes and channel names; ``metadata`` adds the rest (``Name``, times...)."""
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path, ome=True) as tif:
        for pixels, metadata in series:
            tif.write(
                pixels,
                photometric="minisblack",
                metadata={
                    "axes": "TCZYX",
                    **metadata,
                    "PhysicalSizeX": physical_size,
                    "PhysicalSizeXUnit": "µm",
                    "PhysicalSizeY": physical_size,
                    "PhysicalSizeYUnit": "µm",
                    "PhysicalSizeZ": z_step,
                    "PhysicalSizeZUnit": "µm",
                    "Channel": {"Name": list(channel_names[: pixels.shape[1]])},
                },
            )
    return path


def write_sample(directory: str | os.PathLike[str], sample: Sample | None = None) -> Path:
    """Write the demo sample as ``<directory>/embryos.ome.tif`` and return its path.

    Parameters
    ----------
    directory
        Created if missing.
    sample
        What to write; default :class:`Sample()`.

    Returns
    -------
    pathlib.Path
        The OME-TIFF, one OME Image (Bio-Formats series) per position, with physical pixel
        sizes, a time increment and channel names.
    """
    sample = Sample() if sample is None else sample
    times = {"TimeIncrement": sample.time_increment, "TimeIncrementUnit": "s"}
    series = [
        (make_series(sample, index), {"Name": name, **times})
        for index, name in enumerate(sample.series_names())
    ]
    path = Path(directory) / "embryos.ome.tif"
    return _write(path, series, sample.physical_size, sample.z_step, sample.channel_names)


# -- a sample shaped like the user's file: positions over several acquisition blocks -----------


@dataclass(frozen=True)
class PositionsSample:
    """A Mark-and-Find time-lapse stopped and restarted: positions × acquisition blocks.

    Every position is imaged in every block (but ``absent``), one series per (block,
    position), named ``<block>/<position>_S001`` like a Leica LIF, written to the file in a
    shuffled order, each with its OME ``AcquisitionDate`` (block start + a few minutes per
    position) and plane ``DeltaT``. The tube of each position lies along its own line; a lesion
    appears after the first block, deepens and recovers. One frame (``bad``: position, block,
    timepoint within the block) is a failed acquisition, almost no fluorescence.
    """

    positions: tuple[str, ...] = ("Pos004", "Pos008", "Pos013")
    #: (block name, timepoints, hours from the first acquisition to the block's start)
    blocks: tuple[tuple[str, int, float], ...] = (
        ("Pre lesion 2x", 2, 0.0),
        ("22.5h to 41h pSCI", 6, 22.5),
        ("63 to 72.5hpSCI", 4, 63.0),
    )
    #: (position, block) pairs not acquired (the position has fewer timepoints)
    absent: tuple[tuple[str, str], ...] = (("Pos013", "63 to 72.5hpSCI"),)
    #: the tube of each position, ``(row, col)`` ends in pixels
    lines: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
        ((40, 12), (56, 243)),
        ((70, 20), (22, 236)),
        ((48, 30), (48, 225)),
    )
    line_width: int = 9
    bad: tuple[str, str, int] = ("Pos008", "22.5h to 41h pSCI", 3)
    size_c: int = 2
    size_z: int = 4
    size_y: int = 96
    size_x: int = 256
    interval: float = 1800.0  # s between timepoints within a block
    position_offset: float = 300.0  # s between the positions of one cycle
    start: str = "2026-03-02T09:00:00"
    physical_size: float = 0.65
    z_step: float = 2.0
    channel_names: tuple[str, ...] = ("GFP", "mCherry")
    seed: int = 11

    def series(self) -> list[tuple[str, str, int, float]]:
        """``(series name, position, timepoints, start in s)`` of every series, in the shuffled
        order they are written."""
        out = []
        for block, size_t, hours in self.blocks:
            for p, position in enumerate(self.positions):
                if (position, block) in self.absent:
                    continue
                name = f"{block}/{position}_S001"
                out.append((name, position, size_t, hours * 3600 + p * self.position_offset))
        order = np.random.default_rng(self.seed).permutation(len(out))
        return [out[i] for i in order]

    def timepoints(self, position: str) -> list[tuple[str, int, float]]:
        """``(block, index within the block, s since the first acquisition)`` of every
        timepoint of ``position``, in time order."""
        p = self.positions.index(position)
        out = []
        for block, size_t, hours in self.blocks:
            if (position, block) in self.absent:
                continue
            for t in range(size_t):
                out.append((block, t, hours * 3600 + p * self.position_offset + t * self.interval))
        return out

    def bad_index(self) -> int:
        """Index along the stitched T of the failed acquisition of position ``bad[0]``."""
        position, block, t = self.bad
        return self.timepoints(position).index(
            next(x for x in self.timepoints(position) if x[0] == block and x[1] == t)
        )


def _lesion_at(seconds: float) -> float:
    """Fraction of fluorescence the lesion removes ``seconds`` after the first acquisition:
    none before 12 h, deepest near 40 h, mostly recovered by 72 h."""
    hours = seconds / 3600
    if hours < 12:
        return 0.0
    return 0.7 * float(np.exp(-(((hours - 40) / 18) ** 2)))


def _render_position(
    sample: PositionsSample, p: int, times: list[float], failed: set[int], rng: np.random.Generator
) -> NDArray[Any]:
    """Pixels (T, C, Z, Y, X) uint16 of position ``p`` at the given times (s)."""
    along, tube = _tube(sample.size_y, sample.size_x, sample.lines[p], sample.line_width)
    tube *= (along >= 0) & (along <= 1)
    depths = [_lesion_at(seconds) for seconds in times]
    dimming = [1 - 0.002 * seconds / 3600 for seconds in times]
    levels = _levels(sample.size_c, dimming, [t in failed for t in range(len(times))])
    shape = (sample.size_c, sample.size_z, sample.size_y, sample.size_x)
    return _render(shape, along, tube, 0.5, depths, levels, rng)


def write_positions_sample(
    directory: str | os.PathLike[str], sample: PositionsSample | None = None
) -> Path:
    """Write :class:`PositionsSample` as ``<directory>/positions.ome.tif`` (tifffile).

    Parameters
    ----------
    directory, sample
        Where (created if missing) and what to write (default :class:`PositionsSample()`).

    Returns
    -------
    pathlib.Path
        The OME-TIFF: one OME Image (Bio-Formats series) per (block, position), in shuffled
        order, with names, acquisition dates, plane DeltaT, pixel sizes and channel names.
    """
    sample = PositionsSample() if sample is None else sample
    first = np.datetime64(sample.start, "s")
    series = []
    for index, (name, position, size_t, start) in enumerate(sample.series()):
        block = name.split("/")[0]
        times = [start + t * sample.interval for t in range(size_t)]
        failed = {sample.bad[2]} if (position, block) == sample.bad[:2] else set()
        rng = np.random.default_rng(sample.seed * 1000 + index)
        pixels = _render_position(sample, sample.positions.index(position), times, failed, rng)
        planes = sample.size_c * sample.size_z
        delta = [float(t * sample.interval) for t in range(size_t) for _ in range(planes)]
        metadata = {
            "Name": name,
            "AcquisitionDate": str(first + np.timedelta64(round(start), "s")),
            "Plane": {"DeltaT": delta, "DeltaTUnit": ["s"] * len(delta)},
        }
        series.append((pixels, metadata))
    path = Path(directory) / "positions.ome.tif"
    return _write(path, series, sample.physical_size, sample.z_step, sample.channel_names)
