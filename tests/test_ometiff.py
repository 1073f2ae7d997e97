"""OME-TIFFs written by tifffile, read back through Bio-Formats equal to their numpy source."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from dask.array.utils import assert_eq

import bfdask


def write(path, data, axes, **metadata):
    tifffile.imwrite(path, data, ome=True, metadata={"axes": axes, **metadata})
    return str(path)


@pytest.mark.parametrize(
    ("axes", "shape"),
    [("TCZYX", (3, 2, 4, 20, 30)), ("TZCYX", (2, 3, 2, 16, 24)), ("ZTYX", (4, 3, 10, 12)),
     ("CYX", (3, 17, 19)), ("YX", (25, 31))],
)  # fmt: skip
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_roundtrip_axis_orders_and_dtypes(tmp_path, axes, shape, dtype):
    rng = np.random.default_rng(len(axes) + shape[0])
    if np.dtype(dtype).kind == "f":
        source = rng.normal(size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        source = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    path = write(tmp_path / "random.ome.tif", source, axes)
    data = bfdask.open(path)
    assert data.attrs["format"] == "OME-TIFF"
    # put the source in TCZYX order, adding the axes it lacks
    full = source
    present = axes
    for dim in "TCZYX":
        if dim not in present:
            full = full[np.newaxis]
            present = dim + present
    full = np.transpose(full, [present.index(d) for d in "TCZYX"])
    assert data.shape == full.shape
    assert_eq(data.data, full)


def test_physical_sizes_and_channel_names_roundtrip(tmp_path):
    source = np.arange(4 * 2 * 3 * 8 * 10, dtype="uint16").reshape(4, 2, 3, 8, 10)
    path = write(
        tmp_path / "labeled.ome.tif",
        source,
        "TCZYX",
        PhysicalSizeX=0.25,
        PhysicalSizeY=0.5,
        PhysicalSizeZ=2.0,
        TimeIncrement=30.0,
        TimeIncrementUnit="s",
        Channel={"Name": ["DAPI", "GFP"]},
    )
    data = bfdask.open(path)
    assert list(data.C.values) == ["DAPI", "GFP"]
    np.testing.assert_allclose(data.X.values, np.arange(10) * 0.25)
    np.testing.assert_allclose(data.Y.values, np.arange(8) * 0.5)
    np.testing.assert_allclose(data.Z.values, np.arange(3) * 2.0)
    np.testing.assert_allclose(data["T"].values, np.arange(4) * 30.0)  # .T is transpose
    assert data.X.attrs["units"] == "µm" and data["T"].attrs["units"] == "s"
    assert data.attrs["physical_size_z"] == 2.0
    assert 'Name="GFP"' in data.attrs["ome_xml"]
    assert_eq(data.sel(C="GFP").data, source[:, 1])


def test_multi_series_ome_tiff(tmp_path):
    path = tmp_path / "multi.ome.tif"
    series = [np.full((2, 1, 3, 8, 8), i, dtype="uint8") for i in range(3)]
    with tifffile.TiffWriter(path, ome=True) as tif:
        for i, arr in enumerate(series):
            tif.write(arr, metadata={"axes": "TCZYX", "Name": f"pos{i}"})
    listing = bfdask.list_series(path)
    assert [s.name for s in listing] == ["pos0", "pos1", "pos2"]
    for i in range(3):
        assert_eq(bfdask.open(path, series=f"pos{i}").data, series[i])
