"""The xarray engine "bioformats": open_dataset with xarray's chunks, lazily indexed access,
open_datatree and bfdask.open_all."""

from __future__ import annotations

import subprocess
import sys

import dask
import numpy as np
import pytest
import tifffile
import xarray as xr
from dask.array.utils import assert_eq
from shared_data import DATA, MAKE_LIF, requires_data, requires_make_lif

import bfdask
from bfdask import readers
from bfdask.backend import BioformatsBackendEntrypoint
from bfdask.lazy import BioformatsBackendArray
from bfdask.tree import node_names

LIF = DATA / "lif" / "PR2729_frameOrderCombinedScanTypes.lif"  # 4 series, all "TileScan_001"
CZI = DATA / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi"  # 3 scenes of different sizes


@pytest.fixture
def ome_tiff(tmp_path):
    source = np.arange(4 * 2 * 3 * 20 * 30, dtype="uint16").reshape(4, 2, 3, 20, 30)
    path = tmp_path / "engine.ome.tif"
    tifffile.imwrite(path, source, ome=True, metadata={"axes": "TCZYX"})
    return path, source


@pytest.fixture(scope="module")
def markfind_lif(tmp_path_factory):
    """A LAS X-style LIF whose series are named 'Mark_and_Find_001/Pos001', ..."""
    path = tmp_path_factory.mktemp("lif") / "markfind.lif"
    sizes = ["--series", "3", "--t", "2", "--z", "2", "--c", "2", "--y", "24", "--x", "40"]
    subprocess.run(
        [sys.executable, str(MAKE_LIF), str(path), *sizes, "--dtype", "uint16"],
        check=True,
        capture_output=True,
    )
    return path


def expected_markfind(series: int, t: int, z: int, c: int, y: int, x: int) -> np.ndarray:
    """make_lif.py's documented pixel formula, written out here."""
    k = np.arange(x)[None, :] + 3 * np.arange(y)[:, None]
    base = 50021 * series + 7919 * t + 1009 * z + 257 * c
    return ((base + k) % 2**16).astype("uint16")


def test_open_dataset_with_engine(ome_tiff):
    path, source = ome_tiff
    ds = xr.open_dataset(path, engine="bioformats", chunks={})
    assert ds["image"].dims == ("T", "C", "Z", "Y", "X")
    assert_eq(ds["image"].data, source)
    assert ds["image"].encoding["preferred_chunks"] == {"T": 1}
    # chunks={} gives bfdask's own plan: the blocks bfdask.open makes
    assert ds["image"].chunks == bfdask.open(path).chunks == ((1,) * 4, (2,), (3,), (20,), (30,))
    # the engine and bfdask.open agree on everything else too
    xr.testing.assert_identical(ds["image"].drop_encoding(), bfdask.open(path).rename("image"))
    assert ds.attrs["series_name"] == bfdask.open(path).attrs["series_name"]
    assert "ome_xml" not in ds.attrs and "<Image" in ds["image"].attrs["ome_xml"]


def test_xarray_chunks_are_honoured_without_warnings(ome_tiff):
    path, source = ome_tiff
    ds = xr.open_dataset(path, engine="bioformats", chunks={"T": 2, "Z": 1, "X": 16})
    assert ds["image"].chunks == ((2, 2), (2,), (1, 1, 1), (20,), (16, 14))
    assert_eq(ds["image"].data, source)
    whole = xr.open_dataset(path, engine="bioformats", chunks=-1)
    assert whole["image"].chunks == ((4,), (2,), (3,), (20,), (30,))
    # user chunks through bfdask.open give the same blocks (one chunk planner)
    same = bfdask.open(path, chunks={"T": 2, "Z": 1, "X": 16})
    assert same.chunks == ds["image"].chunks


def test_chunks_none_is_lazy_and_reads_only_what_is_indexed(ome_tiff):
    path, source = ome_tiff
    ds = xr.open_dataset(path, engine="bioformats", chunks=None)
    assert not dask.is_dask_collection(ds["image"]) and ds["image"].chunks is None
    before = readers.planes_read()
    picked = ds["image"].isel(T=2, Z=[0, 2], Y=slice(5, 9)).values
    # the smallest box holding the selection: T=2, 2 channels x Z 0..2 (of 4 x 2 x 3 planes)
    assert readers.planes_read() - before == 2 * 3
    np.testing.assert_array_equal(picked, source[2, :, [0, 2], 5:9].transpose(1, 0, 2, 3))
    before = readers.planes_read()
    assert ds["image"].sel(C=ds["C"][1]).isel(T=-1, Z=1).values[0, 0] == source[-1, 1, 1, 0, 0]
    assert readers.planes_read() - before == 1
    # the array the engine hands xarray is small and picklable (path and sizes, no Java)
    raw = BioformatsBackendArray(bfdask.array.block_source(bfdask.read_spec(path)))
    import pickle

    assert len(pickle.dumps(raw)) < 1000
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(raw)).source[1, 0, 2], source[1, 0, 2])


def test_open_dataset_keywords(ome_tiff, fake):
    path, source = ome_tiff
    ds = xr.open_dataset(path, engine="bioformats", dims="TZYXC", ome=False)
    assert ds["image"].dims == ("T", "Z", "Y", "X", "C")
    np.testing.assert_array_equal(ds["image"].values, source.transpose(0, 2, 3, 4, 1))
    assert "ome_xml" not in ds["image"].attrs
    assert list(xr.open_dataset(path, engine="bioformats", drop_variables="image")) == []
    f = fake("k", sizeX=16, sizeY=8, sizeT=3, series=3, pixelType="int16")
    last = xr.open_dataset(f, engine="bioformats", series=-1)  # engine guessed from .fake too
    assert last.attrs["series"] == 2 and last["image"].shape == (3, 1, 1, 8, 16)
    with pytest.raises(bfdask.SeriesIndexError, match="has 3 series"):
        xr.open_dataset(f, engine="bioformats", series=3)


@requires_data
def test_guess_can_open_claims_only_bioformats_suffixes():
    entry = BioformatsBackendEntrypoint()
    assert entry.guess_can_open("x.lif") and entry.guess_can_open("a/b.CZI")
    assert entry.guess_can_open("x.ome.tif")
    assert not entry.guess_can_open("x.nc") and not entry.guess_can_open("plain.tif")
    assert "bioformats" in xr.backends.list_engines()
    ds = xr.open_dataset(LIF)  # no engine given: xarray asks guess_can_open
    assert ds.attrs["format"] == "Leica Image File Format"


def test_node_names_are_valid_and_unique():
    names = ["Block 1/Pos001_S001", "A", "A", "", "..", "A (2)", "A", "x/y/z"]
    assert node_names(names) == [
        "Block 1:Pos001_S001",
        "A (1)",
        "A (series 2)",  # "A (2)" is another series' own name
        "Series 3",
        "Series 4",
        "A (2)",
        "A (3)",
        "x:y:z",
    ]


@pytest.mark.parametrize("path", [LIF, CZI], ids=["lif", "czi"])
@requires_data
def test_open_datatree_one_node_per_series(path):
    series = bfdask.list_series(path)
    tree = xr.open_datatree(path, engine="bioformats")
    assert tree.attrs["series_count"] == len(series) >= 3
    assert list(tree.children) == node_names([s.name for s in series])
    for info, node in zip(series, tree.children.values()):
        image = node["image"]
        assert image.shape == info.shape and str(image.dtype) == info.dtype
        assert node.attrs["series"] == info.index and node.attrs["series_name"] == info.name
        assert not image.chunks  # chunks=None: lazily indexed, not dask
        expected = bfdask.open(path, series=info.index)
        xr.testing.assert_identical(image.drop_encoding(), expected.rename("image"))
    if path == LIF:  # four series all named TileScan_001
        assert list(tree.children) == [
            "TileScan_001 (1)",
            "TileScan_001 (2)",
            "TileScan_001 (3)",
            "TileScan_001 (4)",
        ]


@pytest.mark.parametrize("path", [LIF, CZI], ids=["lif", "czi"])
@requires_data
def test_open_all_is_the_engines_tree(path):
    tree = bfdask.open_all(path)
    chunked = xr.open_datatree(path, engine="bioformats", chunks={})
    assert list(tree.children) == list(chunked.children)
    for name, node in tree.children.items():
        assert node["image"].chunks == chunked[name]["image"].chunks
        assert node["image"].chunks == bfdask.open(path, series=node.attrs["series"]).chunks
    xr.testing.assert_identical(tree, chunked.map_over_datasets(lambda ds: ds.drop_encoding()))


@requires_make_lif
def test_datatree_of_markfind_lif_with_slashes(markfind_lif):
    tree = bfdask.open_all(markfind_lif, chunks={"Z": 1})
    names = [s.name for s in bfdask.list_series(markfind_lif)]
    assert names == [f"Mark_and_Find_001/Pos00{i}" for i in (1, 2, 3)]
    assert list(tree.children) == [f"Mark_and_Find_001:Pos00{i}" for i in (1, 2, 3)]
    node = tree["Mark_and_Find_001:Pos002"]
    assert node.attrs["series_name"] == "Mark_and_Find_001/Pos002"
    assert node["image"].chunks[2] == (1, 1)
    np.testing.assert_array_equal(
        node["image"].isel(T=1, C=0, Z=1).values, expected_markfind(1, 1, 1, 0, 24, 40)
    )
    engine = xr.open_datatree(markfind_lif, engine="bioformats", dims="TZYXC", ome=False)
    image = engine["Mark_and_Find_001:Pos003"]["image"]
    assert image.dims == ("T", "Z", "Y", "X", "C") and "ome_xml" not in image.attrs
    np.testing.assert_array_equal(
        image[0, 1, :, :, 1].values, expected_markfind(2, 0, 1, 1, 24, 40)
    )
    groups = xr.open_groups(markfind_lif, engine="bioformats")
    assert list(groups) == ["/"] + [f"/Mark_and_Find_001:Pos00{i}" for i in (1, 2, 3)]
