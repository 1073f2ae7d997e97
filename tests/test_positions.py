"""bfdask.open_positions on shuffled multi-series OME-TIFFs written with tifffile."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile
from dask.array.utils import assert_eq
from shared_data import MAKE_LIF

import bfdask
from bfdask.positions import PaddedPositionsWarning, UnmatchedSeriesWarning

if TYPE_CHECKING:
    from pathlib import Path

START = np.datetime64("2025-01-10T08:00:00", "s")

# (name, acquisition offset from START in s, T, DeltaT step in s); written in this order
SERIES = [
    ("63 to 72.5hpSCI/Pos004_S001", 63 * 3600 + 60, 2, 1800.0),
    ("Pre lesion 2x/Pos013_S001", 300, 2, 900.0),
    ("22.5h to 41h pSCI/Pos013_S001", 22.5 * 3600 + 300, 3, 1800.0),
    ("Pre lesion 2x/Pos004_S001", 60, 2, 900.0),
    ("22.5h to 41h pSCI/Pos004_S001", 22.5 * 3600 + 60, 3, 1800.0),
]
SHAPE = (2, 3, 12, 10)  # C, Z, Y, X


def pixels(index: int, size_t: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """Distinct content per series and timepoint: 1000 * (index + 1) + 10 * t + c."""
    out = np.zeros((size_t, *shape), np.uint16)
    for t in range(size_t):
        for c in range(shape[0]):
            out[t, c] = 1000 * (index + 1) + 10 * t + c
    out[:, :, :, 2, 3] += np.arange(shape[1], dtype=np.uint16)  # Z varies too
    return out


def write(path: Path, series: list[tuple], shapes: dict[int, tuple] | None = None) -> Path:
    shapes = shapes or {}
    with tifffile.TiffWriter(path, ome=True) as tif:
        for index, (name, offset, size_t, step) in enumerate(series):
            shape = shapes.get(index, SHAPE)
            planes = shape[0] * shape[1]
            delta = [t * step for t in range(size_t) for _ in range(planes)]
            metadata = {
                "axes": "TCZYX",
                "Name": name,
                "Channel": {"Name": ["GFP", "RFP", "X", "Y"][: shape[0]]},
                "Plane": {"DeltaT": delta, "DeltaTUnit": ["s"] * len(delta)},
            }
            if offset is not None:
                metadata["AcquisitionDate"] = str(START + np.timedelta64(int(offset), "s"))
            tif.write(pixels(index, size_t, shape), photometric="minisblack", metadata=metadata)
    return path


@pytest.fixture(scope="module")
def stitched_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("pos") / "shuffled.ome.tif", SERIES)


def test_stitched_in_acquisition_order(stitched_file: Path) -> None:
    from bfdask import readers

    before = readers.planes_read()
    with pytest.warns(PaddedPositionsWarning, match=r"Pos013 \+2"):
        data = bfdask.open_positions(stitched_file)
    assert readers.planes_read() == before  # metadata only
    assert data.dims == ("P", "T", "C", "Z", "Y", "X")
    assert list(data["P"].values) == ["Pos004", "Pos013"]
    assert data.sizes["T"] == 7 and data.attrs["padded"] == {"Pos013": 2}
    # Pos004: Pre lesion (series 3), 22.5h (series 4), 63h (series 0): in time, not file order
    assert list(data["series"].values[0]) == [3, 3, 4, 4, 4, 0, 0]
    assert list(data["series"].values[1]) == [1, 1, 2, 2, 2, -1, -1]
    assert (
        list(data["block"].values[0])
        == ["Pre lesion 2x"] * 2 + ["22.5h to 41h pSCI"] * 3 + ["63 to 72.5hpSCI"] * 2
    )
    # seconds since the first acquisition of the file (Pos004's pre-lesion block, START + 60 s)
    expected = np.array(
        [
            [
                0,
                900,
                22.5 * 3600,
                22.5 * 3600 + 1800,
                22.5 * 3600 + 3600,
                63 * 3600,
                63 * 3600 + 1800,
            ],
            [240, 1140, 22.5 * 3600 + 240, 22.5 * 3600 + 2040, 22.5 * 3600 + 3840, np.nan, np.nan],
        ]
    )
    np.testing.assert_allclose(data["time"].values, expected)
    assert data["time"].attrs["units"] == "s"
    assert data["datetime"].values[0, 0] == START + np.timedelta64(60, "s")
    assert data["datetime"].values[1, 4] == START + np.timedelta64(
        int(22.5 * 3600 + 300 + 3600), "s"
    )
    assert np.isnat(data["datetime"].values[1, 5])
    # pixels equal the source series, the padding is NaN
    values = data.values
    assert values.dtype == np.float32
    with tifffile.TiffFile(stitched_file) as tif:
        source = {i: tif.series[i].asarray() for i in range(len(SERIES))}
    for p, row in enumerate(data["series"].values):
        t = 0
        for index in dict.fromkeys(row):
            if index < 0:
                assert np.isnan(values[p, t:]).all()
                break
            n = source[index].shape[0]
            np.testing.assert_array_equal(values[p, t : t + n], source[index])
            t += n


def test_no_padding_keeps_dtype_and_is_lazy(stitched_file: Path) -> None:
    with pytest.warns(UnmatchedSeriesWarning):
        data = bfdask.open_positions(stitched_file, r"(?P<position>Pos004)", z_mismatch="error")
    assert data.dtype == np.uint16 and data.sizes["P"] == 1 and data.attrs["padded"] == {}
    assert data.chunks is not None  # dask, nothing read


def test_unmatched_series_are_named(stitched_file: Path) -> None:
    with pytest.warns(UnmatchedSeriesWarning) as caught:
        data = bfdask.open_positions(stitched_file, r"(?P<position>Pos004)")
    message = str(caught[0].message)
    assert "2 series" in message
    assert (
        "'Pre lesion 2x/Pos013_S001'" in message and "'22.5h to 41h pSCI/Pos013_S001'" in message
    )
    assert list(data["P"].values) == ["Pos004"]
    with pytest.raises(ValueError, match="named group 'position'"):
        bfdask.open_positions(stitched_file, r"Pos\d+")
    with pytest.raises(ValueError, match="matches none"):
        bfdask.open_positions(stitched_file, r"(?P<position>Well\d+)")


def test_user_time_function(stitched_file: Path) -> None:
    def from_name(name: str, spec: bfdask.ImageSpec) -> float:
        block = name.split("/")[0]
        hours = 0.0 if block.startswith("Pre") else float(re.match(r"[\d.]+", block).group())
        return hours * 3600

    with pytest.warns(PaddedPositionsWarning):
        data = bfdask.open_positions(stitched_file, times=from_name)
    np.testing.assert_allclose(data["time"].values[0, :3], [0, 900, 22.5 * 3600])
    np.testing.assert_allclose(data["time"].values[1, :3], [0, 900, 22.5 * 3600])


def test_mismatches(tmp_path: Path) -> None:
    two = [("A/Pos001_S001", 0, 2, 60.0), ("B/Pos001_S001", 600, 2, 60.0)]
    wide = write(tmp_path / "wide.ome.tif", two, {1: (2, 3, 12, 11)})
    with pytest.raises(
        bfdask.PositionMismatchError, match=r"'A/Pos001_S001' and 'B/Pos001_S001'.*Y/X"
    ):
        bfdask.open_positions(wide)
    chans = write(tmp_path / "chans.ome.tif", two, {1: (1, 3, 12, 10)})
    with pytest.raises(bfdask.PositionMismatchError, match="channel count 2 vs 1"):
        bfdask.open_positions(chans)
    deep = write(tmp_path / "deep.ome.tif", two, {1: (2, 5, 12, 10)})
    with pytest.raises(bfdask.PositionMismatchError, match=r"Z size 3 vs 5.*z_mismatch=.pad."):
        bfdask.open_positions(deep)
    padded = bfdask.open_positions(deep, z_mismatch="pad")
    assert padded.sizes["Z"] == 5
    np.testing.assert_array_equal(padded.values[0, :2, :, 3:], 0)
    assert_eq(padded.data[0, 2:], pixels(1, 2, (2, 5, 12, 10)))
    cropped = bfdask.open_positions(deep, z_mismatch="crop")
    assert_eq(cropped.data[0, 2:], pixels(1, 2, (2, 5, 12, 10))[:, :, 1:4])
    with pytest.warns(FutureWarning, match="z_mismatch"):  # the old name, for one release
        old = bfdask.open_positions(deep, z="crop")
    assert_eq(old.data, cropped.data)
    undated = write(tmp_path / "undated.ome.tif", [("A/Pos001_S001", None, 2, 60.0)])
    with pytest.raises(ValueError, match=r"no acquisition date.*times="):
        bfdask.open_positions(undated)
    assert bfdask.open_positions(undated, times=lambda name, spec: 0.0).sizes["T"] == 2


def test_channel_names_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "names.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        for index, (name, channels) in enumerate(
            [("A/Pos001_S001", ["GFP", "RFP"]), ("B/Pos001_S001", ["RFP", "GFP"])]
        ):
            tif.write(
                pixels(index, 1),
                photometric="minisblack",
                metadata={
                    "axes": "TCZYX",
                    "Name": name,
                    "AcquisitionDate": str(START + np.timedelta64(index * 60, "s")),
                    "Channel": {"Name": channels},
                },
            )
    with pytest.raises(bfdask.PositionMismatchError, match="channel names"):
        bfdask.open_positions(path)


@pytest.mark.skipif(not MAKE_LIF.exists(), reason="shared tools not present")
def test_leica_lif_times_from_its_timestamps(tmp_path: Path) -> None:
    """A LIF (Leica's format, written by the project's make_lif tool): start dates and
    per-plane time stamps come from the LIF's TimeStampList (s * 60 s + t * 2 s)."""
    import importlib.util
    import subprocess
    import sys

    path = tmp_path / "mf.lif"
    subprocess.run(
        [
            *(sys.executable, str(MAKE_LIF), str(path), "--series", "3", "--t", "3"),
            *("--z", "2", "--c", "2", "--y", "16", "--x", "20", "--dtype", "uint16"),
        ],
        check=True,
        capture_output=True,
    )
    spec = importlib.util.spec_from_file_location("make_lif", MAKE_LIF)
    make_lif = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_lif)
    data = bfdask.open_positions(path)
    assert list(data["P"].values) == ["Pos001", "Pos002", "Pos003"]
    expected = np.array([[60.0 * s + 2.0 * t for t in range(3)] for s in range(3)])
    np.testing.assert_allclose(data["time"].values, expected)
    assert data["datetime"].values[2, 1] == np.datetime64("2024-01-01T00:02:02")
    assert set(data["block"].values.ravel()) == {"Mark_and_Find_001"}
    np.testing.assert_array_equal(
        data.isel(P=2, T=1, C=1, Z=0).values, make_lif.expected_plane(2, 1, 0, 1, 16, 20)
    )
