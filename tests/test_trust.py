"""Issue #13, never a wrong pixel: each test is one defect of the hostile-input campaign,
rebuilt from the shared corpus, and fails on the code before its fix.

* a plane Bio-Formats cannot fill never carries another plane's bytes (MRC cut in half);
* damage found while planning or verifying a native plan is never papered over by falling
  back to Bio-Formats (a TIFF whose strips point past its end);
* a truncated LIF series is detected from the LIF's memory blocks whatever its layout;
* a file rewritten in place with its size and modification time kept is caught.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from typing import TYPE_CHECKING

import distributed
import numpy as np
import pytest
import tifffile
from shared_data import DATA, MAKE_LIF, requires_data, requires_make_lif

import bfdask

if TYPE_CHECKING:
    from pathlib import Path


def copy_of(name: str, directory: Path, new_name: str | None = None) -> Path:
    source = DATA / name
    target = directory / (new_name or source.name)
    shutil.copyfile(source, target)
    return target


def still_reads_a_good_file() -> None:
    """After any error the process and its JVM keep working."""
    data = bfdask.open(DATA / "tiff" / "mri.tif", pixels="bioformats")
    assert int(data.isel(T=0, Z=0).max()) > 0


# -- defect 4: a rewrite that keeps size and mtime --------------------------------------------


def rewrite_keeping_size_and_mtime(path: Path, data: np.ndarray) -> None:
    """Rewrite ``path`` in place as ``cp -p`` / ``rsync -t`` / ``touch -r`` leave it: same size,
    same modification time, other pixels."""
    before = path.stat()
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TYX"})
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def write_timepoints(path: Path, value: int) -> np.ndarray:
    data = np.full((4, 32, 32), value, "uint16")
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TYX"})
    return data


@pytest.mark.parametrize("pixels", ["native", "bioformats"])
def test_rewrite_in_place_with_size_and_mtime_kept_raises_on_threads(tmp_path, pixels):
    path = tmp_path / "rewritten.ome.tif"
    write_timepoints(path, 1)
    data = bfdask.open(path, chunks={"T": 1}, pixels=pixels)
    assert int(data.isel(T=0).sum()) == 32 * 32  # the old version, read before the rewrite
    rewrite_keeping_size_and_mtime(path, np.full((4, 32, 32), 9, "uint16"))
    with pytest.raises(bfdask.FileChangedError, match=r"rewritten\.ome\.tif.*rewritten"):
        data.sum().compute(scheduler="threads")
    assert int(bfdask.open(path, pixels=pixels).sum()) == 9 * 4 * 32 * 32  # opened again: new


def test_replaced_by_rename_with_size_and_mtime_kept_raises(tmp_path):
    path = tmp_path / "renamed.ome.tif"
    write_timepoints(path, 1)
    data = bfdask.open(path, chunks={"T": 1})
    other = tmp_path / "other.ome.tif"
    write_timepoints(other, 5)
    stat = path.stat()
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, path)  # what rsync does: a new inode under the old name
    with pytest.raises(bfdask.FileChangedError, match="replaced by another file"):
        data.compute()


@pytest.mark.cluster
def test_rewrite_in_place_with_size_and_mtime_kept_raises_on_a_local_cluster(tmp_path):
    native = tmp_path / "native.ome.tif"
    java = tmp_path / "java.ome.tif"
    for path in (native, java):
        write_timepoints(path, 1)
    arrays = [
        bfdask.open(native, chunks={"T": 1}, pixels="native"),
        bfdask.open(java, chunks={"T": 1}, pixels="bioformats"),
    ]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=":0", silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for data, path in zip(arrays, (native, java), strict=True):
            assert int(client.compute(data.isel(T=0).sum().data).result()) == 32 * 32
            rewrite_keeping_size_and_mtime(path, np.full((4, 32, 32), 9, "uint16"))
            with pytest.raises(bfdask.FileChangedError, match=path.name):
                client.compute(data.sum().data).result()


# -- defect 1: a plane Bio-Formats cannot fill ------------------------------------------------


@requires_data
def test_mrc_cut_in_half_never_returns_another_planes_bytes(tmp_path):
    source = DATA / "mrc" / "EMD-3001.map"  # 25 float planes of 73 x 43, uncompressed
    raw = source.read_bytes()
    half = tmp_path / "half.map"
    half.write_bytes(raw[: len(raw) // 2])
    original = bfdask.open(source).values
    with pytest.warns(bfdask.TruncatedFileWarning, match=r"half\.map.*13 of 25 planes"):
        data = bfdask.open(half, chunks={"Z": 1})  # the MRC header says where planes lie
    assert data.attrs["pixels"] == "bioformats"  # no native plan: Bio-Formats' own reader
    np.testing.assert_array_equal(data.isel(Z=5).values, original[:, :, 5])  # before the cut
    # Bio-Formats leaves its reused buffer as the last read left it: plane 24 came back as
    # plane 5. Now the missing plane is an error naming the file, series and plane.
    with pytest.raises(bfdask.CorruptFileError, match=r"plane 24 of series 0 of .*half\.map"):
        data.isel(Z=24).values
    # Plane 12 straddles the cut: its first rows exist, its last do not.
    with pytest.raises(bfdask.CorruptFileError, match="plane 12 "):
        data.isel(Z=12).values
    np.testing.assert_array_equal(data.isel(Z=slice(0, 12)).values, original[:, :, :12])
    still_reads_a_good_file()


@requires_data
def test_without_the_open_time_check_bioformats_unfilled_planes_still_raise(tmp_path):
    """The check of Bio-Formats' buffer on its own, without the damage known at open: the
    block reader raises on a plane Bio-Formats did not fill, after reading one it did."""
    raw = (DATA / "mrc" / "EMD-3001.map").read_bytes()
    half = tmp_path / "half.map"
    half.write_bytes(raw[: len(raw) // 2])
    spec = bfdask.read_spec(half)
    kwargs = {"dtype": spec.dtype, "stamp": spec.stamp}
    plane5 = bfdask.readers.read_block(
        str(half), 0, 0, (0, 1), (0, 1), (5, 6), (0, 43), (0, 73), **kwargs
    )
    with pytest.raises(bfdask.CorruptFileError, match="plane 24 "):
        bfdask.readers.read_block(
            str(half), 0, 0, (0, 1), (0, 1), (24, 25), (0, 43), (0, 73), **kwargs
        )
    assert plane5.any()


def test_a_plane_that_really_ends_in_the_marker_bytes_reads_exactly(tmp_path):
    """The check for unwritten bytes must not reject a plane whose last bytes are the marker."""
    data = np.arange(4 * 16 * 16, dtype="uint16").reshape(4, 16, 16)
    data[:, -1, :] = 0xA5A5  # the whole last row holds the first marker
    data[1, -1, -3:] = 0x5A5A  # and the end of one plane the second
    path = tmp_path / "marks.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX"})
    read = bfdask.open(path, chunks={"Z": 1}, pixels="bioformats").values
    np.testing.assert_array_equal(read[0, 0], data)


# -- defect 2: damage found by the native plan is never papered over --------------------------


def strip_offsets_past_the_end(source: Path, target: Path) -> None:
    """Copy ``source`` with every StripOffset of its first IFD set to 0xFFFFFF00."""
    raw = bytearray(source.read_bytes())
    with tifffile.TiffFile(source) as tif:
        tag = tif.pages[0].tags["StripOffsets"]
        assert tag.dtype == 4 and tif.byteorder == "<"  # LONG offsets, little-endian file
        for k in range(tag.count):
            raw[tag.valueoffset + 4 * k : tag.valueoffset + 4 * k + 4] = (0xFFFFFF00).to_bytes(
                4, "little"
            )
    target.write_bytes(raw)


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_strip_offsets_past_the_end_raise_instead_of_reading_zeros(tmp_path, pixels):
    bad = tmp_path / "P1_T0.tif"
    strip_offsets_past_the_end(DATA / "tiff" / "P1_T0.tif", bad)
    # Before: the native check raised, pixels="auto" fell back to Bio-Formats, which returned
    # an all-zero image with only a log line.
    with pytest.warns(bfdask.CorruptFileWarning, match=r"P1_T0\.tif"):
        data = bfdask.open(bad, pixels=pixels)
    assert "P1_T0.tif" in data.attrs["damage"]
    with pytest.raises(bfdask.CorruptFileError, match=r"plane 0 of series 0 of .*P1_T0\.tif"):
        data.values
    still_reads_a_good_file()


@requires_data
def test_a_damaged_compressed_plane_found_at_open_is_not_read_through_bioformats(tmp_path):
    """A plane that neither tifffile nor Bio-Formats decodes: the native plan keeps it as
    damage (raising when read), rather than falling back."""
    source = DATA / "tiff" / "stuck.tif"  # 3 planes
    with tifffile.TiffFile(source) as tif:
        planes = tif.asarray()
    path = tmp_path / "zlib.tif"
    tifffile.imwrite(path, planes, compression="zlib")
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[2]  # the last plane: always verified
        start, count = page.dataoffsets[0], page.databytecounts[0]
    raw[start : start + count] = b"\0" * count  # its deflate stream is gone
    path.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match="plane 2 is damaged"):
        data = bfdask.open(path, chunks={"T": 1, "Z": 1}).squeeze()
    assert data.attrs["pixels"] == "native"
    np.testing.assert_array_equal(data[:2].values, planes[:2])
    with pytest.raises(bfdask.CorruptFileError, match="plane 2 "):
        data[2].values


# -- defect 3: a truncated LIF whose layout has no native plan --------------------------------


@requires_make_lif
def test_truncated_lif_of_an_unmapped_layout_warns_and_never_returns_padding(tmp_path):
    whole = tmp_path / "sweep.lif"
    subprocess.run(
        [
            sys.executable,
            str(MAKE_LIF),
            str(whole),
            "--series",
            "1",
            "--t",
            "40",
            "--z",
            "1",
            "--c",
            "1",
            "--y",
            "256",
            "--x",
            "256",
            "--quiet",
        ],
        check=True,
    )
    raw = whole.read_bytes()
    # A wavelength sweep: LAS X's lambda dimension (DimID 5) where make_lif writes T (4).
    sweep = raw.replace('DimID="4"'.encode("utf-16-le"), 'DimID="5"'.encode("utf-16-le"))
    whole.write_bytes(sweep)
    cut = tmp_path / "sweep cut.lif"
    cut.write_bytes(sweep[: len(sweep) * 3 // 4])
    original = bfdask.open(whole, chunks={"T": 1}).values
    with pytest.warns(bfdask.TruncatedFileWarning, match=r"sweep cut\.lif.*series 0"):
        data = bfdask.open(cut, chunks={"T": 1})
    assert data.attrs["pixels"] == "bioformats"  # no plan for the lambda dimension
    readable, failed = [], []
    for t in range(data.sizes["T"]):
        try:
            plane = data.isel(T=t).values
        except bfdask.CorruptFileError as exc:
            assert "sweep cut.lif" in str(exc)
            failed.append(t)
            continue
        np.testing.assert_array_equal(plane, original[t])  # every plane returned is right
        readable.append(t)
    assert readable and failed  # the first planes read; the rest raise (before: zeros)
    assert max(readable) < min(failed)
    still_reads_a_good_file()


@requires_data
def test_a_czi_cut_short_warns_from_its_subblock_directory(tmp_path):
    """Bio-Formats pads the pixels of subblocks a CZI no longer holds with zeros, silently;
    the CZI's own directory says which subblocks the file should hold."""
    raw = (DATA / "czi" / "nuc_small_new_red.czi").read_bytes()
    cut = tmp_path / "cut.czi"
    cut.write_bytes(raw[:7962])  # inside the one subblock's pixels
    with pytest.warns(bfdask.TruncatedFileWarning, match=r"cut\.czi.*1 of its 1 subblocks"):
        data = bfdask.open(cut)
    assert "subblocks" in data.attrs["damage"]
    whole = tmp_path / "whole.czi"
    whole.write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an intact CZI opens without a warning
        bfdask.open(whole)


# -- hangs inside Bio-Formats: a bound on setId ------------------------------------------------

HANG_CHILD = """
import sys, time
import bfdask
started = time.monotonic()
try:
    bfdask.list_series(sys.argv[1])
except bfdask.UnsupportedFormatError as exc:
    print("refused after", round(time.monotonic() - started, 1), "s:", exc)
print("still reads:", bfdask.open(sys.argv[2], pixels="bioformats").shape)
"""


@requires_data
def test_a_structure_bioformats_never_finishes_reading_fails_within_the_bound(tmp_path):
    """An ND2 with 4 KiB of its structure zeroed sends Bio-Formats' ND2Reader recursing in
    setId for minutes (the fuzz campaign's nd2#58); bfdask gives up after the open timeout."""
    raw = bytearray((DATA / "nd2" / "example-zstack.nd2").read_bytes())
    raw[34133 : 34133 + 4096] = bytes(4096)
    damaged = tmp_path / "example-zstack.nd2"
    damaged.write_bytes(raw)
    env = {**os.environ, "BFDASK_OPEN_TIMEOUT": "3"}
    child = subprocess.run(
        [sys.executable, "-c", HANG_CHILD, str(damaged), str(DATA / "tiff" / "mri.tif")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert "refused after" in child.stdout and "did not finish reading" in child.stdout
    assert "within 3 s" in child.stdout and "BFDASK_OPEN_TIMEOUT" in child.stdout
    assert "still reads: (27, 1, 1, 128, 128)" in child.stdout


@requires_data
def test_an_mrc_whose_header_no_longer_accounts_for_its_bytes_warns(tmp_path):
    """A flipped bit in the MRC mode (byte 15) turns float32 pixels into int8 ones; the file
    then holds four times the bytes its header accounts for."""
    raw = bytearray((DATA / "mrc" / "EMD-3001.map").read_bytes())
    raw[15] ^= 0x80
    flipped = tmp_path / "flipped.map"
    flipped.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match=r"flipped\.map.*header's sizes"):
        data = bfdask.open(flipped)
    assert data.dtype == "int8" and "MRC header" in data.attrs["damage"]


# -- TIFF structure Bio-Formats reads past ----------------------------------------------------


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_a_tiff_whose_chain_of_images_is_cut_warns_instead_of_showing_fewer(tmp_path, pixels):
    """Cut inside its pixels, mri.tif loses the directories of its last 6 images: Bio-Formats
    (and tifffile) show 21 timepoints instead of 27, without a word (fuzz tiff-packbits#1)."""
    raw = (DATA / "tiff" / "mri.tif").read_bytes()
    cut = tmp_path / "mri.tif"
    cut.write_bytes(raw[:193107])
    with pytest.warns(bfdask.CorruptFileWarning, match=r"mri\.tif.*chain of images breaks"):
        data = bfdask.open(cut, pixels=pixels)
    assert data.sizes["T"] == 21 and "chain of images" in data.attrs["damage"]


@requires_data
def test_an_ome_tiff_whose_ome_xml_no_longer_parses_warns(tmp_path):
    """Its OME-XML cut, an OME-TIFF reads as a plain TIFF of another shape."""
    source = DATA / "ome-tiff" / "ometiffjl" / "multi-channel-z-series.ome.tif"
    raw = bytearray(source.read_bytes())
    with tifffile.TiffFile(source) as tif:
        tag = tif.pages[0].tags["ImageDescription"]
        start, count = tag.valueoffset, tag.count
    raw[start + count // 2 : start + count - 1] = b" " * (count - 1 - count // 2)
    damaged = tmp_path / source.name
    damaged.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match="OME-XML does not parse"):
        bfdask.open(damaged)


@requires_data
def test_an_imagej_file_whose_chain_holds_fewer_images_than_its_metadata_warns(tmp_path):
    """Zeroing the second image's directory leaves 2 of 10 images in the chain: Bio-Formats
    then reads another shape (22 Z planes instead of 5 T x 2 C), without a word (imagej#1)."""
    raw = bytearray((DATA / "imagej-tiff" / "ijtiff_2ch_ij.tif").read_bytes())
    raw[4283 : 4283 + 256] = bytes(256)
    damaged = tmp_path / "ijtiff_2ch_ij.tif"
    damaged.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match="describes 10 images.*holds 2"):
        bfdask.open(damaged)
