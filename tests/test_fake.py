"""Reading Bio-Formats fake files: shapes, dims, dtypes, orders, series, RGB, pixel values."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import PIXEL_TYPE_DTYPES, expected_fake_plane, plane_index
from dask.array.utils import assert_eq

import bfdask
from bfdask import readers

PIXEL_TYPES = PIXEL_TYPE_DTYPES
ORDERS = ["XYZCT", "XYZTC", "XYCZT", "XYCTZ", "XYTCZ", "XYTZC"]


def expected_series(order, sizes, dtype, series, samples=1):
    """The whole TCZYX(S) array a fake series holds."""
    t_, c_, z_, y_, x_ = (sizes[d] for d in "TCZYX")
    shape = (t_, c_, z_, y_, x_) + ((samples,) if samples > 1 else ())
    out = np.empty(shape, np.dtype("bool") if dtype == "bool" else dtype)
    for t in range(t_):
        for c in range(c_):
            for z in range(z_):
                no = plane_index(order, {"Z": z_, "C": c_, "T": t_}, z, c, t)
                planes = [
                    expected_fake_plane(
                        dtype, y_, x_, series=series, no=no, z=z, channel=c * samples + s, t=t
                    )
                    for s in range(samples)
                ]
                out[t, c, z] = np.stack(planes, -1) if samples > 1 else planes[0]
    return out


@pytest.mark.parametrize("pixel_type", sorted(PIXEL_TYPES))
def test_every_pixel_type(fake, pixel_type):
    path = fake(sizeX=70, sizeY=12, sizeZ=2, sizeC=1, sizeT=2, pixelType=pixel_type)
    data = bfdask.open(path)
    assert data.dtype == np.dtype(PIXEL_TYPES[pixel_type])
    assert data.dims == ("T", "C", "Z", "Y", "X")
    assert data.shape == (2, 1, 2, 12, 70)
    expected = expected_series("XYZCT", dict(data.sizes), PIXEL_TYPES[pixel_type], 0)
    assert_eq(data.data, expected)


@pytest.mark.parametrize("order", ORDERS)
def test_every_dimension_order(fake, order):
    path = fake(sizeX=60, sizeY=11, sizeZ=3, sizeC=2, sizeT=4, dimOrder=order, pixelType="uint16")
    spec = bfdask.read_spec(path)
    assert spec.dimension_order == order
    data = bfdask.open(path)
    assert data.shape == (4, 2, 3, 11, 60)
    assert_eq(data.data, expected_series(order, dict(data.sizes), "uint16", 0))


@pytest.mark.parametrize("dims", ["TZYXC", "ZCTXY", "CTZYX"])
def test_dims_order_is_a_transpose(fake, dims):
    path = fake(sizeX=50, sizeY=10, sizeZ=3, sizeC=2, sizeT=3, pixelType="int16")
    canonical = bfdask.open(path).values
    data = bfdask.open(path, dims=dims)
    assert data.dims == tuple(dims)
    assert_eq(data.data, canonical.transpose(["TCZYX".index(d) for d in dims]))


def test_several_series_by_index_and_name(fake):
    path = fake("multi", sizeX=60, sizeY=10, sizeZ=2, sizeT=3, series=4, pixelType="uint8")
    listing = bfdask.list_series(path)
    assert [s.index for s in listing] == [0, 1, 2, 3]
    assert [s.name for s in listing] == ["multi", "multi 2", "multi 3", "multi 4"]
    assert all(s.shape == (3, 1, 2, 10, 60) and s.dtype == "uint8" for s in listing)
    for series in (2, "multi 3", -2):
        data = bfdask.open(path, series=series)
        assert data.attrs["series"] == 2
        assert data.attrs["series_name"] == "multi 3"
        assert data.attrs["series_count"] == 4
        assert_eq(data.data, expected_series("XYZCT", dict(data.sizes), "uint8", 2))


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize(("size_c", "rgb"), [(3, 3), (6, 3), (4, 4)])
def test_rgb_samples_become_s(fake, size_c, rgb, interleaved):
    path = fake(
        sizeX=64,
        sizeY=12,
        sizeZ=2,
        sizeC=size_c,
        rgb=rgb,
        sizeT=2,
        interleaved=interleaved,
        pixelType="uint16",
    )
    data = bfdask.open(path)
    assert data.dims == ("T", "C", "Z", "Y", "X", "S")
    assert data.shape == (2, size_c // rgb, 2, 12, 64, rgb)
    order = bfdask.read_spec(path).dimension_order  # Bio-Formats puts C first for RGB
    expected = expected_series(order, dict(data.sizes), "uint16", 0, samples=rgb)
    assert_eq(data.data, expected)
    # S can be placed, and is appended when not named
    assert bfdask.open(path, dims="TZYXC").dims == ("T", "Z", "Y", "X", "C", "S")
    assert bfdask.open(path, dims="STCZYX").dims == ("S", "T", "C", "Z", "Y", "X")


def test_default_chunks_one_block_per_timepoint(fake):
    path = fake(sizeX=128, sizeY=64, sizeZ=5, sizeC=2, sizeT=7, pixelType="uint16")
    data = bfdask.open(path)
    assert data.chunks == ((1,) * 7, (2,), (5,), (64,), (128,))


def test_chunks_by_dim_name(fake):
    path = fake(sizeX=128, sizeY=64, sizeZ=5, sizeC=2, sizeT=7, pixelType="uint16")
    whole = bfdask.open(path).values
    data = bfdask.open(path, chunks={"Z": 1, "T": 3, "Y": 32, "X": (100, 28)})
    assert data.chunks == ((3, 3, 1), (2,), (1,) * 5, (32, 32), (100, 28))
    assert_eq(data.data, whole)
    with pytest.raises(ValueError, match="unknown dimension"):
        bfdask.open(path, chunks={"Q": 1})


def test_big_blocks_split_along_z_then_tiles(fake):
    import dask

    path = fake(sizeX=1024, sizeY=1024, sizeZ=10, sizeC=1, sizeT=2, pixelType="uint16")
    with dask.config.set({"array.chunk-size": "4MiB"}):  # one 2 MiB plane = half a block
        data = bfdask.open(path)
    assert data.chunks[2] == (2,) * 5
    with dask.config.set({"array.chunk-size": "1MiB"}):  # a plane is larger than a block
        tiled = bfdask.open(path)
    assert tiled.chunks[2] == (1,) * 10
    assert tiled.chunks[3] == (512, 512)
    assert_eq(tiled[1, 0, 3].data, data[1, 0, 3].data)


def test_task_keys_are_deterministic(fake):
    path = fake(sizeX=64, sizeY=64, sizeZ=2, sizeT=3)
    a, b = bfdask.open(path), bfdask.open(path)
    assert a.data.name == b.data.name
    assert a.data.name != bfdask.open(path, chunks={"Z": 1}).data.name
    assert a.data.name != bfdask.open(path, dims="TZYXC").data.name


def test_400_gb_file_opens_without_reading_pixels(fake):
    path = fake("huge", sizeX=2048, sizeY=2048, sizeZ=100, sizeC=1, sizeT=500, pixelType="uint16")
    before = readers.planes_read()
    start = time.perf_counter()
    data = bfdask.open(path)
    elapsed = time.perf_counter() - start
    assert data.nbytes == 2048 * 2048 * 100 * 500 * 2  # 419 GB
    assert readers.planes_read() == before  # metadata only
    # one (T, Z-slab) block per task, each under dask's chunk-size
    assert data.data.npartitions == 500 * len(data.chunks[2])
    # The benchmark reports the time; this only guards against an order-of-magnitude slip.
    assert elapsed < 30, elapsed
    # and one block is readable
    block = data[499, 0, 99, :20, :60].values
    np.testing.assert_array_equal(
        block,
        expected_fake_plane(
            "uint16", 2048, 2048, series=0, no=99 + 100 * 499, z=99, channel=0, t=499
        )[:20, :60],
    )


def test_selections_read_only_what_they_need(fake):
    path = fake("sel", sizeX=80, sizeY=40, sizeZ=6, sizeC=2, sizeT=5, pixelType="uint16")
    data = bfdask.open(path)
    whole = data.values
    before = readers.planes_read()
    assert_eq(data[3, 1, 4].data, whole[3, 1, 4])
    assert readers.planes_read() - before == 1  # one plane, not the timepoint's 12
    selections = [
        {"T": slice(1, 4), "Y": slice(5, 30, 3), "X": -1},
        {"Z": [0, 4, 5], "C": 1},
        {"T": [4, 0], "X": slice(None, None, -7)},
        {"Y": slice(10, 10)},
    ]
    in_memory = data.compute()
    for sel in selections:
        expected = in_memory.isel(**sel).values
        assert_eq(data.isel(**sel).data, expected)


def test_empty_selection_in_a_fresh_thread(fake):
    """A thread's first read being empty once met a null Java buffer ("buf" is null)."""
    path = fake("empty", sizeX=80, sizeY=40, sizeZ=2, pixelType="uint16")
    data = bfdask.open(path)
    results: list[object] = []

    def first_read_is_empty() -> None:  # a new thread: a new reader, no buffer yet
        try:
            results.append(data.isel(Y=slice(10, 10)).compute(scheduler="sync").shape)
            results.append(int(data.isel(Z=1, Y=slice(0, 3)).max().compute(scheduler="sync")))
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=first_read_is_empty)
    thread.start()
    thread.join()
    assert results == [(1, 1, 2, 0, 80), int(data.isel(Z=1, Y=slice(0, 3)).max())]


@pytest.mark.parametrize("chunks", [None, {"Z": 1}], ids=["stack-blocks", "plane-blocks"])
@pytest.mark.parametrize("pixel_type", ["int16", "uint32", "double"])
def test_big_endian_files_read_native(fake, pixel_type, chunks):
    path = fake(sizeX=64, sizeY=12, sizeZ=3, sizeT=2, little=False, pixelType=pixel_type)
    assert not bfdask.read_spec(path).little_endian
    data = bfdask.open(path, chunks=chunks).values
    assert data.dtype.isnative
    expected = expected_series("XYZCT", {"T": 2, "C": 1, "Z": 3, "Y": 12, "X": 64},
                               PIXEL_TYPES[pixel_type], 0)  # fmt: skip
    np.testing.assert_array_equal(data, expected)


@pytest.mark.parametrize("interleaved", [False, True])
def test_one_plane_blocks_of_rgb(fake, interleaved):
    path = fake(sizeX=64, sizeY=12, sizeZ=2, sizeC=3, rgb=3, sizeT=2, interleaved=interleaved)
    whole = bfdask.open(path).values
    planes = bfdask.open(path, chunks={"Z": 1})
    assert_eq(planes.data, whole)
    assert_eq(planes[1, 0, 1].data, whole[1, 0, 1])
