"""Compressed TIFF data that decodes to the wrong size raises on both pixel paths (issue #13).

LZW, PackBits and JPEG carry no checksum and a deflate stream can break mid-way: a damaged
strip or tile then decodes to more or fewer bytes than its rows hold, or not at all. tifffile
trims or reshapes such a strip and Bio-Formats pads it with zeros, both silently; bfdask decodes
the strips a block needs once more and raises. Each case below is one the fuzz campaign found
reading silently wrong (``python -m benchmarks fuzz``, seed 13), rebuilt from the shared file.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

import imagecodecs
import numpy as np
import pytest
import tifffile
from shared_data import DATA, requires_data

import bfdask

if TYPE_CHECKING:
    from pathlib import Path

#: (file, damage): ``("flip", offset, mask)`` xors one byte, ``("zero", offset, n)`` zeroes n
CASES = {
    "lzw strip decodes one byte long": ("ome-tiff/qupath/cells-2t.ome.tif", ("flip", 9586, 0xE3)),
    "packbits strip decodes short": ("tiff/mri.tif", ("zero", 147429, 4096)),
    "deflate tile breaks": ("tiff/openslide_boxes.tiff", ("flip", 907, 0xA3)),
    "jpeg tile loses its markers": ("svs/small.svs", ("zero", 35, 64)),
}
DECODERS = {
    5: imagecodecs.lzw_decode,
    32773: imagecodecs.packbits_decode,
    8: imagecodecs.zlib_decode,
    32946: imagecodecs.zlib_decode,
}


def damaged_copy(name: str, damage: tuple[str, int, int], directory: Path) -> Path:
    """A copy of shared file ``name`` with ``damage`` done to it."""
    raw = bytearray((DATA / name).read_bytes())
    kind, offset, value = damage
    if kind == "flip":
        raw[offset] ^= value
    else:
        raw[offset : offset + value] = bytes(value)
    path = directory / (DATA / name).name
    path.write_bytes(raw)
    return path


def segment_outcomes(path: Path) -> list[object]:
    """What every strip or tile of ``path`` decodes to: its byte count, or the codec's error
    (image codecs, JPEG: tifffile's decode of the segment)."""
    out: list[object] = []
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            for k, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
                tif.filehandle.seek(offset)
                data = tif.filehandle.read(count)
                try:
                    if page.compression in DECODERS:
                        out.append(len(DECODERS[page.compression](data)))
                    else:
                        out.append(page.decode(data, k, jpegtables=page.jpegtables)[0].shape)
                except Exception as exc:
                    out.append(type(exc).__name__)
    return out


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_compressed_segment_that_decodes_to_the_wrong_size_raises(tmp_path, case, pixels):
    name, damage = CASES[case]
    path = damaged_copy(name, damage, tmp_path)
    # the damage is real: some segment no longer decodes to what the original's did
    assert segment_outcomes(path) != segment_outcomes(DATA / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bfdask.CorruptFileWarning)  # found at open, or not
        data = bfdask.open(path, pixels=pixels)
    codec_said = r"(decodes to \d+ bytes|does not decode)"
    with pytest.raises(bfdask.CorruptFileError) as raised:
        data.values
    if "checked when it was opened" in str(raised.value):  # found while verifying at open
        assert re.search(codec_said, data.attrs["damage"]), data.attrs["damage"]
    else:
        assert re.search(codec_said, str(raised.value)), raised.value
    # the process and its JVM go on: the undamaged file reads
    good = bfdask.open(DATA / name, pixels=pixels)
    assert good.values.any()


@requires_data
def test_a_pyramid_tiff_reads_its_full_size_image_natively_and_identically():
    """A tiled, deflate-compressed pyramid: Bio-Formats' one plane is its first IFD, which
    bfdask now maps (the reduced images after it are not planes) and verifies."""
    path = DATA / "tiff" / "openslide_boxes.tiff"
    native = bfdask.open(path)
    assert native.attrs["pixels"] == "native", native.attrs["pixels_reason"]
    reference = bfdask.open(path, pixels="bioformats")
    np.testing.assert_array_equal(native.values, reference.values)
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(native.values.squeeze(), tif.pages[0].asarray())
