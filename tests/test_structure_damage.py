"""Issue #13, silent wrong reads of the fuzz campaign, whole classes at their root: damage a
file's own structure shows cheaply at open (headers, IFDs, chunk maps), which Bio-Formats
reads past with another shape, another pixel type or other pixels and no error.

Each test rebuilds one fuzz case from the shared corpus and failed before its fix.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from shared_data import DATA, requires_data

import bfdask
from bfdask import nd2check

ND2 = DATA / "nd2" / "example-zstack.nd2"


def opens_without_a_warning(path: object, **kwargs: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return bfdask.open(path, **kwargs)  # type: ignore[arg-type]


# -- ND2: the chunk map every complete file ends with ----------------------------------------


@requires_data
@pytest.mark.parametrize("cut", [508871, 505244])
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_an_nd2_cut_before_its_image_attributes_is_refused(tmp_path, cut, pixels):
    """Cut short before its chunk map and its image attributes, example-zstack.nd2 read as
    11 planes of 192 x 192 uint8 instead of 128 x 128 uint16, without a word (nd2#23, #35)."""
    damaged = tmp_path / ND2.name
    damaged.write_bytes(ND2.read_bytes()[:cut])
    with pytest.raises(bfdask.CorruptFileError, match=r"example-zstack\.nd2.*chunk map.*guess"):
        bfdask.open(damaged, pixels=pixels)


@requires_data
def test_an_nd2_that_lost_only_its_chunk_map_warns_and_reads_right(tmp_path):
    """Its image attributes whole, a cut ND2 still has its sizes: it opens with a warning."""
    damaged = tmp_path / ND2.name
    damaged.write_bytes(ND2.read_bytes()[:600_000])
    with pytest.warns(bfdask.TruncatedFileWarning, match=r"chunk map.*attributes are whole"):
        data = bfdask.open(damaged)
    assert "chunk map" in data.attrs["damage"]
    expected = opens_without_a_warning(ND2)
    np.testing.assert_array_equal(data.values, expected.values)  # type: ignore[attr-defined]


@requires_data
def test_nd2_check_passes_intact_files_and_walks_the_chunks_of_a_damaged_one(tmp_path):
    """Every intact ND2 is whole; one whose chunk map position is flipped is not, and the walk
    over its chunks still finds its image attributes."""
    for name in sorted((DATA / "nd2").glob("*.nd2")):
        assert nd2check.inspect(str(name)) is None
    raw = bytearray(ND2.read_bytes())
    raw[-8] ^= 0x10  # the map's position now points where no map is
    damaged = tmp_path / "pointer.nd2"
    damaged.write_bytes(raw)
    finding = nd2check.inspect(str(damaged))
    assert finding is not None and finding.attributes
    assert "is not in the file" in finding.problem


# -- ImageJ: metadata and images that no longer agree ----------------------------------------

IMAGEJ = DATA / "imagej-tiff"


@requires_data
@pytest.mark.parametrize(("at", "flip"), [(189, 0xBD), (186, 0xBE)])
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_an_imagej_description_with_a_damaged_key_warns(tmp_path, at, flip, pixels):
    """One flipped byte in 'channels=2' and Bio-Formats reads 10 timepoints of 1 channel
    instead of 5 of 2, without a word (imagej#6, #24)."""
    raw = bytearray((IMAGEJ / "ijtiff_2ch_ij.tif").read_bytes())
    raw[at] ^= flip
    damaged = tmp_path / "ijtiff_2ch_ij.tif"
    damaged.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match=r"ijtiff_2ch_ij\.tif.*ImageJ metadata"):
        data = bfdask.open(damaged, pixels=pixels)
    assert "ImageJ metadata" in data.attrs["damage"]


@requires_data
def test_imagej_counts_that_do_not_add_up_warn(tmp_path):
    """'channels=2' made 'channels=3' (a valid line): 3 x 5 is not the 10 images stated."""
    raw = (IMAGEJ / "ijtiff_2ch_ij.tif").read_bytes()
    damaged = tmp_path / "ijtiff_2ch_ij.tif"
    damaged.write_bytes(raw.replace(b"channels=2", b"channels=3", 1))
    with pytest.warns(bfdask.CorruptFileWarning, match=r"does not add up.*channels=3"):
        bfdask.open(damaged, pixels="bioformats")


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_an_image_directory_without_its_width_warns(tmp_path, pixels):
    """A flipped byte in image 21's ImageWidth tag id: Bio-Formats leaves that image out and
    reads 49 timepoints instead of 2 channels x 25 slices, without a word (imagej-zc#32)."""
    raw = bytearray((IMAGEJ / "neubias_xyzc_8bit_spheres.tif").read_bytes())
    raw[132220] ^= 0xE6
    damaged = tmp_path / "spheres.tif"
    damaged.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match=r"spheres\.tif.*image 21.*lack a tag"):
        bfdask.open(damaged, pixels=pixels)


@requires_data
def test_every_corpus_tiff_has_a_sound_structure():
    """No false alarm: the structure checks pass every TIFF-based file of the corpus."""
    from bfdask import tiffcheck

    files = [p for p in sorted(DATA.rglob("*")) if p.is_file() and tiffcheck.is_tiff(str(p))]
    assert len(files) > 40
    notes = [(p.name, tiffcheck.structure_note(str(p))) for p in files]
    assert notes == [(p.name, None) for p in files]


# -- TIFF: images without their required tags, strips that overlap or hold nothing -----------


@requires_data
@pytest.mark.parametrize(("start", "length"), [(246, 920), (259, 256)])
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_an_ome_tiff_whose_second_directory_is_zeroed_warns(tmp_path, start, length, pixels):
    """Zeroing the second IFD (and the OME-XML) of a 2-channel OME-TIFF: Bio-Formats reads
    1 channel, without a word (ome-tiff-tiny#23, #59)."""
    raw = bytearray((DATA / "ome-tiff" / "ome-types_ome.tiff").read_bytes())
    raw[start : start + length] = bytes(length)
    damaged = tmp_path / "ome-types_ome.tiff"
    damaged.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match=r"ome-types_ome\.tiff.*image 1.*lack"):
        bfdask.open(damaged, pixels=pixels)


@requires_data
@pytest.mark.parametrize(("at", "flip"), [(491, 0x80), (343, 0x87), (15856, 0x02), (15859, 0x19)])
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_an_ome_tiff_whose_strips_overlap_warns(tmp_path, at, flip, pixels):
    """A flipped byte in a strip offset or byte count makes strips overlap: both paths read
    other bytes for those rows, without a word (ome-tiff#17, #35, #32, #50)."""
    raw = bytearray((DATA / "ome-tiff" / "qupath" / "cells-2z.ome.tif").read_bytes())
    raw[at] ^= flip
    damaged = tmp_path / "cells-2z.ome.tif"
    damaged.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match=r"cells-2z\.ome\.tif.*overlap"):
        data = bfdask.open(damaged, pixels=pixels)
    assert "overlap" in data.attrs["damage"]


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_strips_whose_byte_counts_are_zeroed_warn(tmp_path, pixels):
    """4 KiB zeroed over the second image's StripByteCounts: its rows read as zeros on both
    paths, without a word (ome-tiff-lzw#57)."""
    raw = bytearray((DATA / "ome-tiff" / "qupath" / "cells-2t.ome.tif").read_bytes())
    raw[14818 : 14818 + 4096] = bytes(4096)
    damaged = tmp_path / "cells-2t.ome.tif"
    damaged.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match=r"cells-2t\.ome\.tif.*hold 0 bytes"):
        bfdask.open(damaged, pixels=pixels)


# -- OME companion file: XML that no longer parses -------------------------------------------


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_a_companion_file_whose_xml_is_damaged_warns(tmp_path, pixels):
    """Two NULs in a TiffData file name of a companion .ome: Bio-Formats reads past it and
    takes plane Z=1 from elsewhere; bfdask's plan took the broken XML for 'no plan' and fell
    back without a word (ome-companion#58)."""
    source = DATA / "ome-tiff" / "ometiffjl_companion"
    folder = tmp_path / "companion"
    folder.mkdir()
    for name in source.iterdir():
        (folder / name.name).write_bytes(name.read_bytes())
    companion = folder / "multifile.companion.ome"
    raw = bytearray(companion.read_bytes())
    raw[908:910] = b"\0\0"
    companion.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match=r"companion\.ome.*does not parse"):
        data = bfdask.open(companion, pixels=pixels)
    assert "does not parse" in data.attrs["damage"]


# -- CZI: a subblock whose own header contradicts the directory ------------------------------

CZI_5D = DATA / "czi" / "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi"


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_a_czi_subblock_whose_header_is_damaged_warns(tmp_path, pixels):
    """The copy of its directory entry a subblock starts with, zeroed over its compression:
    Bio-Formats decodes zstd data as raw pixels, without a word (czi-5d#37)."""
    raw = bytearray(CZI_5D.read_bytes())
    raw[439258 : 439258 + 16] = bytes(16)
    damaged = tmp_path / CZI_5D.name
    damaged.write_bytes(raw)
    with pytest.warns(bfdask.CorruptFileWarning, match=r"1 of its 30 subblocks.*contradicts"):
        data = bfdask.open(damaged, pixels=pixels)
    assert "contradicts" in data.attrs["damage"]


@requires_data
def test_every_corpus_czi_has_subblocks_that_match_their_directory():
    from bfdask import czi

    files = sorted((DATA / "czi").glob("*.czi"))
    assert files
    assert [(p.name, czi.header_note(str(p))) for p in files] == [(p.name, None) for p in files]
