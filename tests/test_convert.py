"""OME-Zarr conversion: stores read back with zarr itself (no bfdask code) equal the source."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr
from conftest import expected_fake_plane, plane_index
from shared_data import DATA, requires_data

import bfdask
from bfdask import readers
from bfdask.cli import main

if TYPE_CHECKING:
    from pathlib import Path

LIF = DATA / "lif" / "PR2729_frameOrderCombinedScanTypes.lif"  # 4 series
CZI = DATA / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi"  # 3 scenes of different sizes


def read_store(store: Path) -> dict[str, dict]:
    """Everything in an OME-Zarr store, read with zarr only: {group: {attrs, levels}}."""
    root = zarr.open_group(str(store), mode="r")
    assert root.attrs["bioformats2raw.layout"] == 3
    out = {}
    for group in root["OME"].attrs["series"]:
        attrs = root[group].attrs.asdict()
        paths = [d["path"] for d in attrs["multiscales"][0]["datasets"]]
        out[group] = {"attrs": attrs, "levels": [root[group][p] for p in paths]}
    return out


def mean_2x2(array: np.ndarray) -> np.ndarray:
    """The next pyramid level, computed here with numpy: 2x2 mean in Y/X, rounded half up."""
    h, w = array.shape[-2] // 2 * 2, array.shape[-1] // 2 * 2
    a = array[..., :h, :w].astype(float)
    mean = (a[..., 0::2, 0::2] + a[..., 1::2, 0::2] + a[..., 0::2, 1::2] + a[..., 1::2, 1::2]) / 4
    if array.dtype.kind == "f":
        return mean.astype(array.dtype)
    return np.floor(mean + 0.5).astype(array.dtype)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


def test_fake_multi_series_round_trip(fake, tmp_path):
    sizes = {"Z": 3, "C": 2, "T": 2}
    path = fake("conv", sizeX=40, sizeY=24, sizeZ=3, sizeC=2, sizeT=2, series=3, pixelType="int16")
    store = tmp_path / "fake.zarr"
    assert bfdask.to_ome_zarr(path, store, pyramid=1, tile=16) == ["0", "1", "2"]
    images = read_store(store)
    assert list(images) == ["0", "1", "2"]
    for s, image in images.items():
        level0, level1 = image["levels"]
        assert level0.shape == (2, 2, 3, 24, 40) and level0.dtype == np.int16
        assert level0.chunks == (1, 1, 1, 16, 16)  # a plane, tiled; inside one read block
        pixels = level0[:]
        for t in range(2):
            for c in range(2):
                for z in range(3):
                    no = plane_index("XYZCT", sizes, z, c, t)
                    expected = expected_fake_plane(
                        "int16", 24, 40, series=int(s), no=no, z=z, channel=c, t=t
                    )
                    np.testing.assert_array_equal(pixels[t, c, z], expected)
        np.testing.assert_array_equal(level1[:], mean_2x2(pixels))
        multiscale = image["attrs"]["multiscales"][0]
        assert multiscale["version"] == "0.4"
        assert [a["name"] for a in multiscale["axes"]] == ["t", "c", "z", "y", "x"]
        assert [a["type"] for a in multiscale["axes"]] == ["time", "channel"] + ["space"] * 3
        scales = [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]]
        assert scales[1][3:] == [2 * scales[0][3], 2 * scales[0][4]]
        omero = image["attrs"]["omero"]
        names = bfdask.read_spec(path, series=int(s)).channel_names
        assert tuple(ch["label"] for ch in omero["channels"]) == names
        for c, channel in enumerate(omero["channels"]):
            assert channel["window"]["start"] == pixels[:, c].min()
            assert channel["window"]["end"] == pixels[:, c].max()
            assert channel["window"]["min"] == -(2**15)


def test_ome_tiff_round_trip_with_physical_sizes_and_names(tmp_path):
    rng = np.random.default_rng(3)
    source = rng.integers(0, 60000, (3, 2, 4, 32, 48), dtype="uint16")
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(
        path,
        source,
        ome=True,
        metadata={
            "axes": "TCZYX",
            "PhysicalSizeX": 0.25,
            "PhysicalSizeY": 0.25,
            "PhysicalSizeZ": 1.5,
            "TimeIncrement": 30.0,
            "TimeIncrementUnit": "s",
            "Channel": {"Name": ["DAPI", "GFP"]},
        },
    )
    store = tmp_path / "cells.zarr"
    bfdask.to_ome_zarr(path, store)
    image = read_store(store)["0"]
    (level0,) = image["levels"]
    np.testing.assert_array_equal(level0[:], source)
    multiscale = image["attrs"]["multiscales"][0]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(
        [30.0, 1.0, 1.5, 0.25, 0.25]
    )
    assert {a["name"]: a.get("unit") for a in multiscale["axes"]} == {
        "t": "second",
        "c": None,
        "z": "micrometer",
        "y": "micrometer",
        "x": "micrometer",
    }
    assert [c["label"] for c in image["attrs"]["omero"]["channels"]] == ["DAPI", "GFP"]
    assert image["attrs"]["omero"]["channels"][1]["window"]["end"] == source[:, 1].max()
    xml = (store / "OME" / "METADATA.ome.xml").read_text()
    assert xml.count("<Image ") == 1 and 'Name="GFP"' in xml
    # a DataArray in another dim order, with T dropped, round-trips to TCZYX with T=1
    data = bfdask.open(path, dims="TZYXC").isel(T=1)
    bfdask.to_ome_zarr(data, tmp_path / "one.zarr")
    np.testing.assert_array_equal(
        read_store(tmp_path / "one.zarr")["0"]["levels"][0][:], source[1:2]
    )


@requires_data
@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("path", [LIF, CZI], ids=["lif-4-series", "czi-3-scenes"])
def test_cli_convert_real_files_on_a_cluster(cluster, path, tmp_path, capsys, monkeypatch):
    from distributed import Client

    monkeypatch.setenv("BFDASK_PROGRESS", "yes")  # a bar although stderr is no terminal here
    store = tmp_path / "real.zarr"
    planes = sum(
        s.shape[0] * s.shape[1] * s.shape[2] for s in bfdask.list_series(path)
    )  # T x C x Z of every series
    with Client(cluster, set_as_default=False) as client:
        before_workers = sum(client.run(readers.planes_read).values())
        before_here = readers.planes_read()
        argv = ["convert", str(path), str(store), "--scheduler", cluster.scheduler_address]
        assert main([*argv, "--pyramid", "1"]) == 0
        # every plane was read (once) by the workers, none by this (the client's) process
        assert readers.planes_read() == before_here
        assert sum(client.run(readers.planes_read).values()) - before_workers == planes
    printed = capsys.readouterr()
    assert "100% Completed" in printed.err and "wrote" in printed.out  # the bar on stderr
    assert "Completed" not in printed.out
    images = read_store(store)
    series = bfdask.list_series(path)
    assert list(images) == [str(s.index) for s in series]
    for info in series:
        level0, level1 = images[str(info.index)]["levels"]
        source = bfdask.open(path, series=info.index).values
        np.testing.assert_array_equal(level0[:], source)
        np.testing.assert_array_equal(level1[:], mean_2x2(source))
        assert images[str(info.index)]["attrs"]["multiscales"][0]["name"] == info.name
    xml = (store / "OME" / "METADATA.ome.xml").read_text()
    assert xml.count("<Image ") == len(series)


def test_cli_convert_locally_a_subset_with_progress(fake, tmp_path, capsys, monkeypatch):
    path = fake("sub", sizeX=20, sizeY=10, sizeT=3, series=4, pixelType="uint8")
    store = tmp_path / "sub.zarr"
    monkeypatch.setenv("BFDASK_PROGRESS", "yes")
    assert main(["convert", path, str(store), "--series", "3", "1", "--pyramid", "2"]) == 0
    printed = capsys.readouterr()
    assert "100% Completed" in printed.err  # dask's local ProgressBar, on stderr
    assert "Completed" not in printed.out
    monkeypatch.delenv("BFDASK_PROGRESS")  # stderr captured, not a terminal: no bar
    assert main(["convert", path, str(tmp_path / "quiet.zarr"), "--series", "0"]) == 0
    assert "Completed" not in capsys.readouterr().err
    images = read_store(store)
    assert list(images) == ["3", "1"]  # the order asked; OME-XML Images in the same order
    assert [lvl.shape[3:] for lvl in images["3"]["levels"]] == [(10, 20), (5, 10), (2, 5)]
    np.testing.assert_array_equal(images["1"]["levels"][0][:], bfdask.open(path, series=1).values)
    # the store exists now: refuse, then replace on request
    assert main(["convert", path, str(store)]) == 1
    assert "exists" in capsys.readouterr().err
    with pytest.raises(bfdask.OutputExistsError, match="overwrite=True"):
        bfdask.to_ome_zarr(path, store)
    assert main(["convert", path, str(store), "--overwrite", "--series", "0"]) == 0
    assert list(read_store(store)) == ["0"]
    precious = tmp_path / "not-a-store"
    (precious / "sub").mkdir(parents=True)
    with pytest.raises(bfdask.OutputExistsError, match="not a zarr store"):
        bfdask.to_ome_zarr(path, precious, overwrite=True)
    assert (precious / "sub").is_dir()  # untouched


def test_rgb_samples_become_channels(fake, tmp_path):
    path = fake("rgb", sizeX=24, sizeY=12, sizeC=3, rgb=3, sizeT=2, pixelType="uint8")
    store = tmp_path / "rgb.zarr"
    bfdask.to_ome_zarr(path, store)
    image = read_store(store)["0"]
    source = bfdask.open(path).values  # (T, C=1, Z, Y, X, S=3)
    np.testing.assert_array_equal(image["levels"][0][:], np.moveaxis(source, 5, 2)[:, 0])
    assert len(image["attrs"]["omero"]["channels"]) == 3


def test_datatree_input_and_bad_arguments(tmp_path, fake):
    path = fake("tree", sizeX=16, sizeY=8, series=2, pixelType="uint16")
    tree = bfdask.open_all(path)
    assert bfdask.to_ome_zarr(tree, tmp_path / "tree.zarr") == ["0", "1"]
    images = read_store(tmp_path / "tree.zarr")
    second = list(tree.children.values())[1]
    np.testing.assert_array_equal(images["1"]["levels"][0][:], second["image"].values)
    lazy = xr.open_dataset(path, engine="bioformats", series=1)["image"]  # not dask
    bfdask.to_ome_zarr(lazy.isel(X=slice(2, 9)), tmp_path / "lazy.zarr")
    np.testing.assert_array_equal(
        read_store(tmp_path / "lazy.zarr")["1"]["levels"][0][:], second["image"].values[..., 2:9]
    )
    with pytest.raises(ValueError, match="too deep"):
        bfdask.to_ome_zarr(path, tmp_path / "deep.zarr", pyramid=4)  # 8 rows: 4, 2, 1, none
    assert not (tmp_path / "deep.zarr").exists()  # checked before anything is written
    with pytest.raises(ValueError, match="ds\\['image'\\]"):
        bfdask.to_ome_zarr(xr.open_dataset(path, engine="bioformats"), tmp_path / "ds.zarr")
    with pytest.raises(bfdask.SeriesIndexError):
        bfdask.to_ome_zarr(path, tmp_path / "none.zarr", series=[5])
    assert json.loads(json.dumps(images["0"]["attrs"]))  # attrs are plain JSON


@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint32", "float32", "bool"])
@pytest.mark.parametrize("chunks", [(23, 17), (5, 4), ((6, 6, 11), (3, 14))], ids=str)
def test_pyramid_level_from_any_blocks(dtype, chunks):
    import dask.array as da

    from bfdask.pyramid import halve as _halve

    rng = np.random.default_rng(1)
    source = rng.integers(-1000 if dtype == "int16" else 0, 5000, (2, 1, 3, 23, 17))
    source = (source % 2 == 0) if dtype == "bool" else source.astype(dtype)
    array = da.from_array(source, chunks=(1, 1, 3, *chunks))
    level = _halve(array)
    assert level.shape == (2, 1, 3, 11, 8) and level.dtype == source.dtype
    expected = mean_2x2(source.astype(float)) if dtype == "bool" else mean_2x2(source)
    if dtype == "bool":
        expected = np.floor(expected + 0.5).astype(bool)
    np.testing.assert_array_equal(level.compute(), expected)


def test_split_planes_keep_chunks_inside_blocks_and_whole_tiles(fake, tmp_path):
    import dask

    path = fake("tiles", sizeX=48, sizeY=64, sizeT=2, pixelType="uint8")
    store = tmp_path / "tiles.zarr"
    with dask.config.set({"array.chunk-size": "1KiB"}):  # the plan splits planes into rows
        assert bfdask.open(path).chunks[3][0] == 21  # 1024 B / 48 px: not a multiple of 16
        before = readers.planes_read()
        bfdask.to_ome_zarr(path, store, tile=16, pyramid=2)
    # reads re-planned to 16-row blocks: 4 reads per plane, each row read once for all levels
    assert readers.planes_read() - before == 2 * 4
    levels = read_store(store)["0"]["levels"]
    # halved 8-row blocks merged back to 16-row tiles; level 2 is 16 x 12 px in all
    assert [lvl.chunks[3:] for lvl in levels] == [(16, 16), (16, 16), (16, 12)]
    source = bfdask.open(path).values
    np.testing.assert_array_equal(levels[0][:], source)
    np.testing.assert_array_equal(levels[2][:], mean_2x2(mean_2x2(source)))


# -- issue #13, defect 9: --overwrite never deletes an input, nor through a link --------------


def store_holding_its_input(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """``tmp_path/STORE``, an OME-Zarr store holding ``in.ome.tif`` (to be converted into it),
    that file and its bytes."""
    store = tmp_path / "STORE"
    source = np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5)
    first = tmp_path / "first.ome.tif"
    tifffile.imwrite(first, source, ome=True, metadata={"axes": "ZYX"})
    bfdask.to_ome_zarr(first, store)
    inside = store / "in.ome.tif"
    tifffile.imwrite(inside, source, ome=True, metadata={"axes": "ZYX"})
    return store, inside, inside.read_bytes()


def test_cli_overwrite_never_deletes_the_input_it_converts(tmp_path, capsys):
    store, path, content = store_holding_its_input(tmp_path)
    assert main(["convert", str(path), str(store), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bfdask: error:") and repr(str(path)) in err
    assert "would delete it" in err and "another store" in err
    assert path.read_bytes() == content  # before: deleted, then "was deleted or moved"
    assert (store / ".zgroup").is_file() and (store / "0").is_dir()  # the store is untouched


@pytest.mark.parametrize("given", ["path", "link to the path", "DataArray", "DataTree"])
def test_overwrite_never_deletes_an_input_in_the_store(tmp_path, given):
    store, path, content = store_holding_its_input(tmp_path)
    link = tmp_path / "link.ome.tif"
    link.symlink_to(path)
    source = {
        "path": lambda: path,
        "link to the path": lambda: link,
        "DataArray": lambda: bfdask.open(path).isel(Z=slice(0, 1)),
        "DataTree": lambda: bfdask.open_all(path),
    }[given]()
    with pytest.raises(bfdask.OutputExistsError, match="would delete it"):
        bfdask.to_ome_zarr(source, store, overwrite=True)
    assert path.read_bytes() == content
    assert (store / ".zgroup").is_file()


@requires_data
def test_overwrite_never_deletes_any_file_of_a_multi_file_input(tmp_path):
    # the companion file lies outside the store, one of the TIFFs it names inside it
    companion = DATA / "ome-tiff" / "ometiffjl_companion"
    folder = tmp_path / "dataset"
    store = folder / "STORE"
    folder.mkdir()
    bfdask.to_ome_zarr(companion / "multifile.companion.ome", store)
    for tif in companion.glob("*.ome.tiff"):
        target = store if tif.name == "multifile-Z3.ome.tiff" else folder
        (target / tif.name).write_bytes(tif.read_bytes())
    xml = (companion / "multifile.companion.ome").read_text(encoding="utf-8")
    xml = xml.replace('FileName="multifile-Z3', 'FileName="STORE/multifile-Z3')
    (folder / "multifile.companion.ome").write_text(xml, encoding="utf-8")
    with pytest.raises(bfdask.OutputExistsError, match=r"multifile-Z3\.ome\.tiff"):
        bfdask.to_ome_zarr(folder / "multifile.companion.ome", store, overwrite=True)
    assert (store / "multifile-Z3.ome.tiff").read_bytes() == (
        companion / "multifile-Z3.ome.tiff"
    ).read_bytes()


def test_overwrite_refuses_a_store_that_is_a_symbolic_link(fake, tmp_path, capsys):
    path = fake("linked", sizeX=8, sizeY=6, pixelType="uint8")
    real = tmp_path / "real.zarr"
    bfdask.to_ome_zarr(path, real)
    link = tmp_path / "link.zarr"
    link.symlink_to(real, target_is_directory=True)
    before = sorted(p.relative_to(real) for p in real.rglob("*"))
    assert main(["convert", path, str(link), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "symbolic link" in err and repr(str(real)) in err  # before: a raw rmtree OSError
    with pytest.raises(bfdask.OutputExistsError, match="symbolic link"):
        bfdask.to_ome_zarr(path, link, overwrite=True)
    assert link.is_symlink() and sorted(p.relative_to(real) for p in real.rglob("*")) == before
    assert bfdask.to_ome_zarr(path, real, overwrite=True) == ["0"]  # the real path: replaced


def test_cli_convert_options_before_the_positionals(fake, tmp_path):
    """Issue #16: `bfdask convert --series 1 in out` (the option first) works as written last."""
    path = fake("first", sizeX=8, sizeY=6, sizeT=2, series=3, pixelType="uint8")
    store = tmp_path / "first.zarr"
    assert main(["convert", "--series", "2", "0", path, str(store)]) == 0
    assert list(read_store(store)) == ["2", "0"]
    again = tmp_path / "again.zarr"
    assert main(["convert", "--overwrite", path, str(again), "--series", "1"]) == 0
    assert list(read_store(again)) == ["1"]
