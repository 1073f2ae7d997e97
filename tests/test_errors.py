"""Bad input gives a clear bfdask error naming the file; the process and its JVM keep working."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
from dask.array.utils import assert_eq
from shared_data import DATA, requires_data

import bfdask
from bfdask.errors import BfdaskFileNotFoundError


@pytest.fixture
def good(fake):
    return fake("good", sizeX=32, sizeY=16, sizeZ=2, sizeT=2, pixelType="uint8")


def still_works(path):
    """A read right after an error succeeds in the same process."""
    assert bfdask.open(path).sum().compute() > 0


def test_missing_file(tmp_path, good):
    missing = tmp_path / "nope.lif"
    with pytest.raises(FileNotFoundError, match=r"nope\.lif") as info:
        bfdask.open(missing)
    assert isinstance(info.value, bfdask.BfdaskError)
    assert isinstance(info.value, BfdaskFileNotFoundError)
    still_works(good)


def test_directory(tmp_path, good):
    with pytest.raises(bfdask.UnsupportedFormatError, match="is a directory") as info:
        bfdask.open(tmp_path)
    assert isinstance(info.value, ValueError)
    still_works(good)


def test_empty_file(tmp_path, good):
    empty = tmp_path / "empty.czi"
    empty.touch()
    with pytest.raises(bfdask.UnsupportedFormatError, match=r"empty\.czi.*empty"):
        bfdask.list_series(empty)
    still_works(good)


def test_unknown_format(tmp_path, good):
    junk = tmp_path / "junk.xyz"
    junk.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(bfdask.UnsupportedFormatError, match=r"junk\.xyz.*unknown"):
        bfdask.open(junk)
    still_works(good)


@pytest.mark.parametrize("suffix", [".tif", ".lif", ".czi", ".nd2", ".ome.tiff"])
def test_random_bytes_with_an_image_suffix(tmp_path, good, suffix):
    junk = tmp_path / f"random{suffix}"
    junk.write_bytes(np.random.default_rng(3).bytes(20000))
    with pytest.raises(bfdask.UnsupportedFormatError, match=rf"random{re.escape(suffix)}"):
        bfdask.open(junk)
    still_works(good)


@pytest.mark.parametrize(
    ("relative", "start", "stop"),
    [
        ("lif/xz-example.lif", 8, 40),  # the XML header's length and first characters
        ("czi/DAPI_GFP.czi", 16, 200),  # inside the file header segment
        ("ome-tiff/s_1_t_1_c_1_z_1.ome.tiff", 16, 200),  # the first IFD
        ("imagej-tiff/neubias_xyz_8bit__nucleus.tif", 4, 8),  # the offset of the first IFD
    ],
)
def test_real_file_with_a_garbled_header(tmp_path, good, relative, start, stop):
    source = DATA / relative
    if not source.exists():
        pytest.skip("shared data not present")
    raw = bytearray(source.read_bytes())
    raw[start:stop] = bytes(b ^ 0xFF for b in raw[start:stop])
    damaged = tmp_path / f"garbled {source.name}"
    damaged.write_bytes(raw)
    with pytest.raises(bfdask.UnsupportedFormatError, match=re.escape(damaged.name)):
        bfdask.open(damaged)
    still_works(good)
    assert bfdask.open(source).shape == bfdask.read_spec(source).shape  # the original still reads


@pytest.mark.parametrize("name", ["Minimal_IMS_File.ims", "cine_legacy.cine"])
def test_the_corpus_unreadable_files(good, name):
    path = DATA / "unreadable" / name
    if not path.exists():
        pytest.skip("shared data not present")
    with pytest.raises(bfdask.UnsupportedFormatError, match=re.escape(name)) as info:
        bfdask.list_series(path)
    assert "Bio-Formats" in str(info.value)
    still_works(good)


@pytest.mark.parametrize(
    "name",
    ["with space.ome.tif", "ünïcødé µm 图像.ome.tif", "a&b.ome.tif", "x&sizeZ=3&sizeT=5.ome.tif"],
)
def test_awkward_paths(tmp_path, name):
    """Spaces, unicode and '&' are plain file names; only a name ending in .fake is a fake spec."""
    source = np.arange(2 * 24 * 32, dtype="uint16").reshape(2, 1, 1, 24, 32)
    path = tmp_path / name
    tifffile.imwrite(path, source, ome=True, metadata={"axes": "TCZYX"})
    data = bfdask.open(path)
    assert data.sizes == {"T": 2, "C": 1, "Z": 1, "Y": 24, "X": 32}  # not sizeZ=3, sizeT=5
    assert_eq(data.data, source)
    assert data.attrs["path"] == str(path)
    assert data.attrs["format"] == "OME-TIFF"


def test_channel_out_of_range_is_an_index_error_before_any_read(fake, good):
    from bfdask import readers

    data = bfdask.open(fake("chans", sizeX=16, sizeY=16, sizeC=2))
    before = readers.planes_read()
    with pytest.raises(IndexError):
        data.isel(C=2)
    with pytest.raises(KeyError, match="not all values found in index 'C'"):
        data.sel(C="nope")
    assert readers.planes_read() == before
    still_works(good)


def test_damaged_plane_names_file_and_plane(tmp_path, good):
    path = tmp_path / "damaged.ome.tif"
    source = np.random.default_rng(2).integers(0, 200, (6, 1, 1, 64, 64), dtype="uint8")
    tifffile.imwrite(path, source, ome=True, compression="zlib", metadata={"axes": "TCZYX"})
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[5].dataoffsets[0], tif.pages[5].databytecounts[0]
    with open(path, "r+b") as f:  # wipe the compressed strip of plane 5
        f.seek(offset)
        f.write(b"\0" * count)
    with pytest.warns(bfdask.CorruptFileWarning, match="plane 5 is damaged"):
        data = bfdask.open(path)  # the last plane is always compared at open
    with pytest.raises(
        bfdask.CorruptFileError, match=r"plane 5 of series 0 of .*damaged\.ome\.tif"
    ):
        data.values
    assert isinstance(bfdask.CorruptFileError("x"), OSError)
    # the other planes of the same file, through the same reader, still read
    assert_eq(data[2].data, source[2])
    still_works(good)


def test_series_out_of_range(fake, good):
    path = fake("three", sizeX=16, sizeY=16, series=3)
    with pytest.raises(IndexError, match=r"has 3 series") as info:
        bfdask.open(path, series=3)
    assert isinstance(info.value, bfdask.SeriesIndexError)
    with pytest.raises(bfdask.SeriesIndexError, match=r"series -4 does not exist"):
        bfdask.open(path, series=-4)  # the index the user gave, not -4 + 3
    assert bfdask.open(path, series=-3).attrs["series"] == 0
    with pytest.raises(bfdask.SeriesIndexError, match="no series named 'bogus'"):
        bfdask.open(path, series="bogus")
    with pytest.raises(bfdask.SeriesIndexError, match="1 resolution"):
        bfdask.open(path, resolution=1)
    still_works(good)


def test_bad_arguments(fake):
    path = fake("args", sizeX=16, sizeY=16)
    with pytest.raises(ValueError, match="dims"):
        bfdask.open(path, dims="TCZY")
    with pytest.raises(ValueError, match="unknown dimension"):
        bfdask.open(path, chunks={"W": 2})
    with pytest.raises(TypeError, match="series"):
        bfdask.open(path, series=1.5)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def test_java_out_of_heap_is_memory_error_and_recoverable(tmp_path):
    big = tmp_path / "big&sizeX=12000&sizeY=12000&pixelType=uint16.fake"
    small = tmp_path / "small&sizeX=64&sizeY=64.fake"
    big.touch()
    small.touch()
    result = run_python(
        f"""
        import bfdask
        try:
            bfdask.open({str(big)!r}).values
        except MemoryError as exc:
            assert isinstance(exc, bfdask.JavaMemoryError), type(exc)
            print("ERR", exc)
        print("SUM", int(bfdask.open({str(small)!r}).sum().compute()))
        """,
        BFDASK_MAX_HEAP="128M",
    )
    assert result.returncode == 0, result.stderr
    assert "ERR Java ran out of heap (0.12 GiB)" in result.stdout
    assert "BFDASK_MAX_HEAP" in result.stdout
    assert "SUM " in result.stdout


def test_every_error_crosses_process_boundaries_intact():
    """A worker's error reaches the client as the same class and message (distributed pickle)."""
    from distributed.protocol.pickle import dumps, loads

    from bfdask import errors

    for name in errors.__all__:
        kind = getattr(errors, name)
        try:
            raise kind(f"{name} for 'x.lif'")
        except kind as exc:
            back = loads(dumps(exc))
        assert type(back) is kind
        assert str(back) == f"{name} for 'x.lif'"


@requires_data
def test_a_name_several_series_share_is_ambiguous_and_every_label_opens_its_series():
    path = DATA / "lif" / "PR2729_frameOrderCombinedScanTypes.lif"  # 4 series "TileScan_001"
    with pytest.raises(bfdask.SeriesIndexError, match=r"4 series .* named 'TileScan_001'") as e:
        bfdask.open(path, series="TileScan_001", ome=False)
    assert "TileScan_001 (3)" in str(e.value)
    tree = bfdask.open_all(path, ome=False)
    assert list(tree.children) == [f"TileScan_001 ({k})" for k in (1, 2, 3, 4)]
    for index, label in enumerate(tree.children):
        assert bfdask.open(path, series=label, ome=False).attrs["series"] == index


def test_selectors_are_keyword_only_and_positional_ones_warn(fake):
    path = fake("kw", sizeX=16, sizeY=16, series=2)
    with pytest.warns(FutureWarning, match=r"open\(path, series\) by position"):
        data = bfdask.open(path, 1)
    assert data.attrs["series"] == 1
    with pytest.warns(FutureWarning, match=r"read_spec\(path, series=\.\.\.\)"):
        assert bfdask.read_spec(path, 1).series == 1
    with (
        pytest.raises(TypeError, match="multiple values for 'series'"),
        pytest.warns(FutureWarning),
    ):
        bfdask.open(path, 1, series=0)
    assert bfdask.open(path, series=1).attrs["series"] == 1
