"""OME-Zarr back in (issue #16): ``bfdask.open`` on a store ``bfdask convert`` wrote gives the
source's array (values, dims, coords, channel names), lazily through zarr, no Java."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import dask.array as da
import numpy as np
import pytest
import zarr
from shared_data import DATA, requires_data

import bfdask

if TYPE_CHECKING:
    from pathlib import Path

#: a LIF (4 series), a CZI and an OME-TIFF of the corpus
SOURCES = [
    "lif/PR2729_frameOrderCombinedScanTypes.lif",
    "czi/nuc_small_new_red.czi",
    "ome-tiff/qupath/cells-2z.ome.tif",
]


def assert_same(source, back) -> None:
    assert back.dims == source.dims
    assert isinstance(back.data, da.Array)
    np.testing.assert_array_equal(back.values, source.values)
    assert list(back["C"].values) == list(source["C"].values)
    for dim in "TZYX":
        if dim in source.coords:
            np.testing.assert_allclose(back[dim].values, source[dim].values, rtol=1e-6)
            assert back[dim].attrs["units"] == source[dim].attrs["units"]
        else:
            assert dim not in back.coords
    assert back.attrs["series_name"] == source.attrs["series_name"]


@requires_data
@pytest.mark.parametrize("name", SOURCES)
def test_a_converted_store_reads_back_as_its_source(tmp_path: Path, name: str) -> None:
    path = DATA / name
    store = tmp_path / "back.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bfdask.CorruptFileWarning)
        bfdask.to_ome_zarr(path, store)
        count = len(bfdask.list_series(path))
        for index in range(count):
            source = bfdask.open(path, series=index)
            back = bfdask.open(store, series=index)
            assert back.attrs["format"] == "OME-NGFF" and back.attrs["series"] == index
            assert_same(source, back)
    with pytest.raises(bfdask.SeriesIndexError):
        bfdask.open(store, series=count)


#: 500 x 250 nm pixels
SCALE_NM = {"type": "scale", "scale": [500, 250]}


def test_a_plain_ngff_image_gets_tczyx_and_physical_units(tmp_path: Path) -> None:
    """Any NGFF 0.4 image: a 2D one in nanometres, written with zarr itself."""
    store = tmp_path / "plain.zarr"
    root = zarr.open_group(str(store), mode="w", zarr_format=2)
    pixels = np.arange(6 * 8, dtype=np.uint16).reshape(6, 8)
    root.create_array("0", data=pixels, chunks=(3, 8))
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "name": "plain",
            "axes": [
                {"name": "y", "type": "space", "unit": "nanometer"},
                {"name": "x", "type": "space", "unit": "nanometer"},
            ],
            "datasets": [{"path": "0", "coordinateTransformations": [SCALE_NM]}],
        }
    ]
    data = bfdask.open(store, chunks={"y": 6})
    assert data.dims == tuple("TCZYX") and data.shape == (1, 1, 1, 6, 8)
    assert data.data.chunks[3] == (6,)
    np.testing.assert_array_equal(data.values[0, 0, 0], pixels)
    np.testing.assert_allclose(data["Y"].values, np.arange(6) * 0.5)  # µm
    np.testing.assert_allclose(data["X"].values, np.arange(8) * 0.25)
    assert data.attrs["physical_size_x"] == pytest.approx(0.25)
    assert "T" not in data.coords and "Z" not in data.coords
    assert bfdask.open(store, dims="YXTCZ").dims == tuple("YXTCZ")


def test_a_zarr_group_without_an_image_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "bare.zarr"
    zarr.open_group(str(store), mode="w", zarr_format=2).create_array("a", shape=(2,), dtype="u1")
    with pytest.raises(bfdask.UnsupportedFormatError, match="no OME-NGFF image"):
        bfdask.open(store)


@requires_data
def test_the_xarray_engine_reads_a_store_too(tmp_path: Path) -> None:
    import xarray as xr

    path = DATA / SOURCES[0]
    store = tmp_path / "engine.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bfdask.CorruptFileWarning)
        bfdask.to_ome_zarr(path, store, series=[2])
    dataset = xr.open_dataset(store, engine="bioformats")
    assert_same(bfdask.open(path, series=2), dataset["image"])
