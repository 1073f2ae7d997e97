"""The native pixel path (issue #9): LIF offsets and TIFF pages read without Java.

* every file of the corpus: ``pixels="auto"`` gives exactly the pixels of
  ``pixels="bioformats"``, and the native path engaged on every LIF and every uncompressed
  OME-TIFF / ImageJ TIFF;
* LIFs written by ``shared/tools/make_lif.py`` (several series, dtypes, C/Z/T combinations and
  so every dimension order Bio-Formats reports for them) equal ``expected_plane()``;
* a sparse LIF whose last planes sit beyond 4 GiB reads right at its far end;
* a file changed after open raises, a wrong plan fails verification, ``"native"`` raises;
* on a LocalCluster of worker processes, native reads leave the workers without a JVM.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import pickle
import struct
import sys
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile
from dask.array.utils import assert_eq
from shared_data import SHARED

import bfdask
from bfdask import native, pixels

if TYPE_CHECKING:
    from pathlib import Path

DATA = SHARED / "data"
MAKE_LIF = SHARED / "tools" / "make_lif.py"

if not MAKE_LIF.is_file() or not (DATA / "MANIFEST.tsv").is_file():
    pytest.skip(
        f"shared data/tools not found beside the repository: {SHARED}", allow_module_level=True
    )


def _load_make_lif():
    spec = importlib.util.spec_from_file_location("make_lif", MAKE_LIF)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_lif"] = module
    spec.loader.exec_module(module)
    return module


make_lif = _load_make_lif()


def write_lif(path: Path, *, series=1, t=1, z=1, c=1, y=32, x=24, dtype="uint16", seed=0) -> str:
    spec = make_lif.Spec(series, t, z, c, y, x, dtype, "markfind", seed, None)
    make_lif.write_lif(str(path), spec, verbose=False)
    return str(path)


# -- the corpus -------------------------------------------------------------------------------


def _corpus() -> list[str]:
    out = []
    for line in (DATA / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) > 4 and cols[4].strip() and "cannot read" not in cols[4]:
            out.append(cols[0])
    return out


def _uncompressed_tiff(path: Path) -> bool:
    """Every IFD of the file (and of the files a companion names) is uncompressed."""
    files = [path]
    if path.suffix == ".ome" and path.name.endswith(".companion.ome"):
        files = sorted(path.parent.glob("*.ome.tif*"))
    for name in files:
        with tifffile.TiffFile(name) as tif:
            if any(page.compression != 1 for page in tif.pages):
                return False
    return True


#: CZI series Bio-Formats shows otherwise than as one subblock per plane (issue #17): mosaics
#: it stitches, RGB, and the extra series it makes of a file's label or preview image
CZI_NOT_NATIVE = {
    ("czi/1_tileregion.czi", 0): "a mosaic",
    ("czi/1_tileregion.czi", 1): "not one of the CZI's 1 scenes",
    ("czi/RGB-8bit.czi", 0): "RGB",
    ("czi/S3_1Pos_2Mosaic_T1_Z1_CH1.czi", 0): "a mosaic",
    ("czi/S3_1Pos_2Mosaic_T1_Z1_CH1.czi", 2): "a mosaic",
    ("czi/WellD6-7_S2.czi", 1): "not the plane's size",
    ("czi/WellD6-7_S2.czi", 2): "not one of the CZI's 2 scenes",
    ("czi/WellD6-7_S2.czi", 3): "not one of the CZI's 2 scenes",
    ("czi/WellD6_S1.czi", 1): "not one of the CZI's 1 scenes",
    ("czi/mosaic_test.czi", 0): "a mosaic",
    ("czi/tiles.czi", 0): "a mosaic",
    ("czi/tiles_time_z.czi", 0): "a mosaic",
}


def _must_be_native(rel: str, series: int = 0) -> bool:
    path = DATA / rel
    if rel.startswith(("lif/", "nd2/")):  # ND2: frames through nd2 (issue #17)
        return True
    if rel.startswith("czi/"):  # CZI: one subblock per plane (issue #17)
        return (rel, series) not in CZI_NOT_NATIVE
    if rel.startswith(("ome-tiff/", "imagej-tiff/")):
        return _uncompressed_tiff(path)
    return False


@pytest.mark.parametrize("rel", _corpus())
def test_corpus_auto_equals_bioformats(rel: str) -> None:
    path = str(DATA / rel)
    count = len(bfdask.list_series(path))
    for series in range(count):
        auto = bfdask.open(path, series=series, ome=False)
        bf = bfdask.open(path, series=series, ome=False, pixels="bioformats")
        assert bf.attrs["pixels"] == "bioformats"
        if auto.attrs["pixels"] == "native":  # two graphs: the comparison is not with itself
            assert auto.data.name != bf.data.name
        got, want = auto.values, bf.values
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes(), f"{rel} series {series}"
        if _must_be_native(rel, series):
            assert auto.attrs["pixels"] == "native", auto.attrs["pixels_reason"]
            assert "verified against Bio-Formats" in auto.attrs["pixels_reason"]
        elif (rel, series) in CZI_NOT_NATIVE:  # left to Bio-Formats for its layout
            assert CZI_NOT_NATIVE[rel, series] in auto.attrs["pixels_reason"]


# -- LIFs from make_lif.py --------------------------------------------------------------------

LIF_CASES = {
    # name: (series, t, z, c, dtype, the dimension order Bio-Formats reports)
    "czt": (2, 3, 4, 2, "uint16", "XYCZT"),
    "zt": (1, 3, 4, 1, "uint8", "XYZTC"),
    "t-only": (3, 5, 1, 1, "uint16", "XYTZC"),
    "z-only": (1, 1, 6, 1, "uint8", "XYZCT"),
    "c-only": (2, 1, 1, 3, "uint16", "XYCZT"),
    "one-plane": (1, 1, 1, 1, "uint16", "XYZCT"),
}


@pytest.mark.parametrize("case", list(LIF_CASES))
def test_make_lif_pixels(tmp_path: Path, case: str) -> None:
    n_series, t, z, c, dtype, order = LIF_CASES[case]
    y, x = 40, 28
    path = write_lif(tmp_path / f"{case}.lif", series=n_series, t=t, z=z, c=c, y=y, x=x,
                     dtype=dtype, seed=11)  # fmt: skip
    for s in range(n_series):
        data = bfdask.open(path, series=s, ome=False, chunks={"T": 2, "Z": 2}, pixels="native")
        assert data.attrs["pixels"] == "native"
        assert data.attrs["dimension_order"] == order
        assert data.attrs["series_name"] == f"Mark_and_Find_001/Pos{s + 1:03d}"
        values = data.values
        assert values.shape == (t, c, z, y, x) and values.dtype == np.dtype(dtype)
        for ti in range(t):
            for zi in range(z):
                for ci in range(c):
                    want = make_lif.expected_plane(s, ti, zi, ci, y, x, dtype, seed=11)
                    np.testing.assert_array_equal(values[ti, ci, zi], want)
    # a crop, a strided selection and another dim order read the same values
    data = bfdask.open(path, series=n_series - 1, ome=False, dims="TZYXC")
    want = make_lif.expected_plane(n_series - 1, t - 1, z - 1, c - 1, y, x, dtype, seed=11)
    np.testing.assert_array_equal(
        data[t - 1, z - 1, 5:17, 3:20:3, c - 1].values, want[5:17, 3:20:3]
    )


def _write_sparse_lif(path: Path, z: int, y: int, x: int, written: set[int]) -> tuple[int, int]:
    """Two series of z uint16 planes; only the planes ``written`` of the last series hold data
    (the rest are holes that read as zeros). Returns (offset of the last plane, file size)."""
    spec = make_lif.Spec(2, 1, z, 1, y, x, "uint16", "markfind", 0, None)
    xml, blocks = make_lif.build_xml(spec, "sparse")
    encoded = xml.encode("utf-16-le")
    last_offset = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IIBI", make_lif.LIF_MAGIC, 1 + 4 + len(encoded), make_lif.LIF_MEM,
                            len(xml)))  # fmt: skip
        f.write(encoded)
        for block_id, nbytes, s in blocks:
            name = block_id.encode("utf-16-le")
            head = (1 + 8 + 1 + 4 + len(name), make_lif.LIF_MEM, nbytes, make_lif.LIF_MEM)
            f.write(struct.pack("<IIBQBI", make_lif.LIF_MAGIC, *head, len(block_id)))
            f.write(name)
            start = f.tell()
            if s == 1:
                for k in sorted(written):
                    f.seek(start + k * spec.plane_bytes)
                    f.write(make_lif.expected_plane(1, 0, k, 0, y, x).astype("<u2").tobytes())
                last_offset = start + (z - 1) * spec.plane_bytes
            f.seek(start + nbytes)
        f.truncate()
        size = f.tell()
    return last_offset, size


@pytest.mark.slow
def test_sparse_lif_beyond_4_gib(tmp_path: Path) -> None:
    z, y, x = 36, 4096, 8192  # 64 MiB planes, 2.25 GiB per series: series 1 ends at 4.5 GiB
    path = tmp_path / "sparse.lif"
    last_offset, size = _write_sparse_lif(path, z, y, x, written={0, z - 2, z - 1})
    assert last_offset > 4 * 2**30 and size > 4.5 * 2**30
    assert os.stat(path).st_blocks * 512 < 2**30  # really sparse
    data = bfdask.open(str(path), series=1, ome=False, pixels="native")
    assert data.attrs["pixels"] == "native"
    far = data[0, 0, z - 1].values  # the far end of the file, beyond 4 GiB
    np.testing.assert_array_equal(far, make_lif.expected_plane(1, 0, z - 1, 0, y, x))
    assert_eq(data[0, 0, 0, -3:, -5:].data, make_lif.expected_plane(1, 0, 0, 0, y, x)[-3:, -5:])
    assert not data[0, 0, 1, :8].values.any()  # a hole
    # Bio-Formats agrees on the last rows of the last plane
    bf = bfdask.open(str(path), series=1, ome=False, pixels="bioformats")
    assert_eq(bf[0, 0, z - 1, -16:].data, far[-16:])


# -- safety ---------------------------------------------------------------------------------


def test_changed_file_raises(tmp_path: Path) -> None:
    path = write_lif(tmp_path / "changing.lif", t=4, z=2, c=2)
    data = bfdask.open(path, ome=False)
    assert data.attrs["pixels"] == "native"
    first = data[0].values
    np.testing.assert_array_equal(first[1, 1], make_lif.expected_plane(0, 0, 1, 1, 32, 24))
    write_lif(tmp_path / "changing.lif", t=4, z=2, c=2, seed=5)  # same size, new pixels
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    with pytest.raises(bfdask.FileChangedError, match=r"changing\.lif"):
        data[1].values
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=r"changing\.lif"):
        data[2].values


def test_damaged_compressed_plane_names_file_series_and_plane(tmp_path: Path) -> None:
    path = tmp_path / "damaged.ome.tif"
    source = np.random.default_rng(2).integers(0, 200, (8, 1, 1, 64, 64), dtype="uint8")
    tifffile.imwrite(path, source, ome=True, compression="zlib", metadata={"axes": "TCZYX"})
    verified = pixels.verify_planes(native.plan(bfdask.read_spec(str(path))))
    bad = next(k for k in range(8) if k not in verified)  # damage a plane not compared at open
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[bad].dataoffsets[0], tif.pages[bad].databytecounts[0]
    with open(path, "r+b") as f:  # wipe its compressed strip
        f.seek(offset)
        f.write(b"\0" * count)
    data = bfdask.open(str(path), ome=False)
    assert data.attrs["pixels"] == "native"
    with pytest.raises(
        bfdask.CorruptFileError, match=rf"plane {bad} of series 0 of .*damaged\.ome\.tif"
    ):
        data.values
    good = verified[-1]
    assert_eq(data[good].data, source[good])  # the others still read


def test_wrong_plan_fails_verification(tmp_path: Path) -> None:
    path = write_lif(tmp_path / "v.lif", t=3, z=2, c=2)
    spec = bfdask.read_spec(path)
    recipe = native.plan(spec)
    assert pixels.verify(spec, recipe).mismatch is None
    planes = recipe.layout
    swapped = dataclasses.replace(planes, z_stride=planes.t_stride, t_stride=planes.z_stride)
    shifted = dataclasses.replace(recipe, layout=swapped)
    reason = pixels.verify(spec, shifted).mismatch
    assert reason is not None and "differs from Bio-Formats'" in reason
    planes = pixels.verify_planes(recipe)
    assert planes[0] == 0 and planes[-1] == 11 and len(planes) == 5


def test_modes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ics = str(DATA / "ics" / "chromo3d.ics")
    with caplog.at_level(logging.INFO, logger="bfdask.pixels"):
        auto = bfdask.open(ics, ome=False)
    assert any(
        "chromo3d.ics" in r.getMessage() and "Image Cytometry Standard" in r.getMessage()
        for r in caplog.records
    )  # the fallback is logged
    assert auto.attrs["pixels"] == "bioformats"
    assert "no native reader for format 'Image Cytometry Standard'" in auto.attrs["pixels_reason"]
    with pytest.raises(bfdask.NativePixelsError, match=r"chromo3d\.ics"):
        bfdask.open(ics, pixels="native")
    with pytest.raises(ValueError, match="pixels='java'"):
        bfdask.open(ics, pixels="java")
    path = write_lif(tmp_path / "m.lif")
    assert bfdask.open(path, pixels="bioformats").attrs["pixels"] == "bioformats"
    rows = pixels.describe(path)
    assert [(r["series"], r["pixels"]) for r in rows] == [(0, "native")]
    assert rows[0]["name"] == "Mark_and_Find_001/Pos001"


def test_task_recipe_stays_small(tmp_path: Path) -> None:
    # 2 000 planes of one OME-TIFF: the page table is rebuilt per process, never in a task
    path = tmp_path / "many.ome.tif"
    tifffile.imwrite(path, np.zeros((1000, 2, 1, 4, 4), "uint16"),
        photometric="minisblack", ome=True,
                     metadata={"axes": "TCZYX"})  # fmt: skip
    data = bfdask.open(str(path), chunks={"T": 1}, ome=False)
    assert data.attrs["pixels"] == "native"
    graph = dict(data.data.__dask_graph__())
    size = len(pickle.dumps(graph, protocol=5))
    assert size / len(graph) < 1024, f"{size / len(graph):.0f} bytes per task"


# -- light workers ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.cluster
def test_native_workers_start_no_jvm(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    lif = write_lif(tmp_path / "w.lif", series=2, t=6, z=3, c=2, y=64, x=48)
    ome = tmp_path / "w.ome.tif"
    source = np.arange(4 * 3 * 64 * 48, dtype="uint16").reshape(4, 1, 3, 64, 48)
    tifffile.imwrite(ome, source, ome=True, metadata={"axes": "TCZYX"})
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        a = bfdask.open(lif, series=1, ome=False)
        b = bfdask.open(str(ome), ome=False)
        assert a.attrs["pixels"] == b.attrs["pixels"] == "native"
        got_a, got_b = client.compute([a.data, b.data], sync=True)
        running = client.run(bfdask.jvm.is_running)
        assert len(running) == 2 and not any(running.values()), running
        np.testing.assert_array_equal(got_b, source)
        want = make_lif.expected_plane(1, 5, 2, 1, 64, 48)
        np.testing.assert_array_equal(got_a[5, 1, 2], want)
        # a Bio-Formats-path array does start the JVM where it runs: the check can fail
        c = bfdask.open(lif, series=1, ome=False, pixels="bioformats")
        np.testing.assert_array_equal(client.compute(c.data, sync=True), got_a)
        assert any(client.run(bfdask.jvm.is_running).values())
