"""``bfdask info [--json] [--java]``: checked against list_series / read_spec, no pixel read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from shared_data import DATA, requires_data

import bfdask
from bfdask import readers
from bfdask.cli import main

FILES = [
    DATA / "lif" / "LeicaLASX_xz-plane_example.lif",
    DATA / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi",
    DATA / "ics" / "chromo3d.ics",  # two files: .ics + .ids
    DATA / "czi" / "RGB-8bit.czi",
]


def info_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main(["info", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@requires_data
def test_json_matches_list_series(path, capsys):
    before = readers.planes_read()
    info = info_json(capsys, str(path))
    assert readers.planes_read() == before  # metadata only
    series = bfdask.list_series(path)
    assert info["series_count"] == len(info["series"]) == len(series)
    for row, expected in zip(info["series"], series):
        spec = bfdask.read_spec(path, series=expected.index)
        assert row["index"] == expected.index and row["name"] == expected.name
        assert row["dims"] == expected.dims and tuple(row["shape"].values()) == expected.shape
        assert list(row["shape"]) == list(expected.dims)
        assert row["dtype"] == expected.dtype
        assert row["dimension_order"] == expected.dimension_order
        assert row["channels"] == list(spec.channel_names)
        assert row["physical_size"] == {
            "X": spec.physical_size_x,
            "Y": spec.physical_size_y,
            "Z": spec.physical_size_z,
        }
        assert row["resolutions"] == 1 and row["nbytes"] == spec.nbytes
    assert info["format"] == bfdask.read_spec(path).format
    assert info["files"][0] == os.path.realpath(path)
    assert info["file_size"] == sum(os.path.getsize(f) for f in info["files"])
    assert 0 < info["open_seconds"] < 30
    assert info["bioformats_version"] == bfdask.jvm_info()["bioformats_version"]


@requires_data
def test_reader_class_and_companion_files(capsys):
    lif = info_json(capsys, str(FILES[0]))
    assert lif["reader"] == "loci.formats.in.LIFReader"
    ics = info_json(capsys, str(FILES[2]))
    assert ics["reader"] == "loci.formats.in.ICSReader"
    assert [Path(f).suffix for f in ics["files"]] == [".ics", ".ids"]
    rgb = info_json(capsys, str(FILES[3]))["series"][0]
    assert rgb["dims"] == "TCZYXS" and rgb["shape"]["S"] == 3


def test_huge_fake_file_is_fast_and_reads_no_pixels(fake, capsys):
    path = fake("huge", sizeX=4096, sizeY=4096, sizeZ=100, sizeT=200, sizeC=3, pixelType="uint16")
    before = readers.planes_read()
    info = info_json(capsys, path)
    assert readers.planes_read() == before
    assert info["series"][0]["nbytes"] == 4096 * 4096 * 100 * 200 * 3 * 2  # 2 TB
    assert info["open_seconds"] < 5


@requires_data
def test_java_and_text_output(capsys):
    java = info_json(capsys, "--java")
    expected = bfdask.jvm_info()
    for key in ("java_version", "libjvm", "max_heap", "bioformats_version", "pid"):
        assert java[key] == expected[key]
    assert java["libjvm"].endswith("libjvm.so")
    both = info_json(capsys, str(FILES[1]), "--java")
    assert set(both) == {"file", "java"}
    assert main(["info", str(FILES[1]), "--java"]) == 0
    text = capsys.readouterr().out
    for s in bfdask.list_series(FILES[1]):
        assert s.name in text and "x".join(map(str, s.shape)) in text
    assert "loci.formats.in.ZeissCZIReader" in text and "max_heap" in text
    assert main(["info"]) == 1
    assert "needs a PATH" in capsys.readouterr().err


@pytest.mark.parametrize("path", [FILES[0], FILES[1]], ids=lambda p: p.name)
@requires_data
def test_pixels_option_says_which_source_each_series_uses(path, capsys):
    info = info_json(capsys, str(path), "--pixels")
    for row in info["series"]:
        data = bfdask.open(path, series=row["index"], ome=False)
        assert row["pixels"] == data.attrs["pixels"]
        assert row["pixels_reason"] == data.attrs["pixels_reason"]
    # the LIF reads natively; of this CZI's three scenes two are mosaics (Bio-Formats stitches
    # them) and one is a single subblock per plane, read natively (issue #17)
    expected = {"native"} if path.suffix == ".lif" else {"native", "bioformats"}
    assert {row["pixels"] for row in info["series"]} == expected
    capsys.readouterr()
    assert main(["info", str(path), "--pixels"]) == 0
    text = capsys.readouterr().out
    assert f"   0  {info['series'][0]['pixels']}" in text


def test_info_lists_a_datasets_files_and_never_cuts_a_name_silently(fake):
    """Issue #16: a multi-file dataset lists its files; a long series name ends in an
    ellipsis, not cut without a sign."""
    from bfdask import info

    described = info.describe(fake("short", sizeX=8, sizeY=8))
    described["files"] = ["/data/set.companion.ome", "/data/set-Z1.ome.tiff"]
    described["series"][0]["name"] = "Mark_and_Find_001/Position_with_a_very_long_name_042"
    text = info.format_file(described)
    assert "/data/set-Z1.ome.tiff" in text and "/data/set.companion.ome" in text
    assert "Mark_and_Find_001/Position_with…" in text
