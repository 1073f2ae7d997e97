"""Issue #13, defect 6: a dataset reads only files in the opened file's folder and below.

An OME-TIFF set whose ``TiffData/UUID@FileName`` reads ``../elsewhere/x.tif`` used to return
that outside file's pixels on both pixel paths (the native plan's verification passed: it
sampled other planes). Now it is refused, before Bio-Formats' ``setId`` opens any file, with an
:class:`bfdask.OutsideDatasetError` naming the file, the name and the opt-in
(``BFDASK_ALLOW_OUTSIDE_FILES``); Bio-Formats' used files are checked after ``setId`` for every
format.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import dask.config
import numpy as np
import pytest
import tifffile
from dask.array.utils import assert_eq
from shared_data import DATA, requires_data

import bfdask
from bfdask import dataset, opening, readers, tiff

if TYPE_CHECKING:
    from pathlib import Path

COMPANION = DATA / "ome-tiff" / "ometiffjl_companion"
OUTSIDE_VALUE = 231  # the outside file's pixels: no plane of the dataset holds this value
OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def outside_file(tmp_path: Path) -> Path:
    """``tmp_path/elsewhere/x.tif``: one 24 x 18 uint8 plane of distinctive pixels."""
    (tmp_path / "elsewhere").mkdir(exist_ok=True)
    path = tmp_path / "elsewhere" / "x.tif"
    tifffile.imwrite(path, np.full((24, 18), OUTSIDE_VALUE, np.uint8))
    return path


@pytest.fixture
def hostile_companion(tmp_path: Path) -> Path:
    """The shared companion dataset copied, its Z=2 plane renamed to ``../elsewhere/x.tif``."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    for tif in COMPANION.glob("*.ome.tiff"):
        shutil.copyfile(tif, folder / tif.name)
    xml = (COMPANION / "multifile.companion.ome").read_text(encoding="utf-8")
    hostile = xml.replace('FileName="multifile-Z3.ome.tiff"', 'FileName="../elsewhere/x.tif"')
    assert hostile != xml
    (folder / "multifile.companion.ome").write_text(hostile, encoding="utf-8")
    outside_file(tmp_path)
    return folder / "multifile.companion.ome"


def write_set(folder: Path, second: str) -> Path:
    """A one-file OME-TIFF of 2 Z planes whose OME-XML puts plane 1 in the file ``second``
    (``folder/sub`` exists, so that names through it resolve)."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME_NS}" UUID="urn:uuid:a">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" '
        'SizeX="18" SizeY="24" SizeZ="2" SizeC="1" SizeT="1">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        '<TiffData FirstZ="0" IFD="0" PlaneCount="1">'
        '<UUID FileName="a.ome.tif">urn:uuid:a</UUID></TiffData>'
        '<TiffData FirstZ="1" IFD="0" PlaneCount="1">'
        f'<UUID FileName="{second}">urn:uuid:b</UUID></TiffData>'
        "</Pixels></Image></OME>"
    )
    path = folder / "a.ome.tif"
    tifffile.imwrite(path, np.full((24, 18), 7, np.uint8), description=xml, metadata=None)
    return path


def still_reads_a_good_file(tmp_path: Path) -> None:
    """After the refusal, this process (and its JVM) reads a good file."""
    good = tmp_path / "good.ome.tif"
    source = np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5)
    tifffile.imwrite(good, source, ome=True, metadata={"axes": "ZYX"})
    np.testing.assert_array_equal(bfdask.open(good, pixels="bioformats").values[0, 0], source)


def assert_refusal(exc: pytest.ExceptionInfo[bfdask.OutsideDatasetError], opened: Path) -> None:
    message = str(exc.value)
    assert isinstance(exc.value, PermissionError) and isinstance(exc.value, bfdask.BfdaskError)
    assert repr(str(opened)) in message and "BFDASK_ALLOW_OUTSIDE_FILES" in message


# -- the hostile companion dataset ------------------------------------------------------------


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
@pytest.mark.parametrize("opened", ["multifile.companion.ome", "multifile-Z1.ome.tiff"])
def test_a_name_outside_the_folder_is_refused_before_bioformats_opens_it(
    hostile_companion, tmp_path, pixels, opened, monkeypatch
):
    set_ids = []
    quiet = opening.call_quietly

    def recording(obj, name, signature, *args):  # every Java setId bfdask makes
        if name == "setId":
            set_ids.append(args)
        return quiet(obj, name, signature, *args)

    monkeypatch.setattr(opening, "call_quietly", recording)
    path = hostile_companion.parent / opened
    with pytest.raises(bfdask.OutsideDatasetError) as exc:
        bfdask.open(path, pixels=pixels)
    assert_refusal(exc, path)
    assert "'../elsewhere/x.tif'" in str(exc.value)
    assert repr(str(tmp_path / "elsewhere" / "x.tif")) in str(exc.value)
    assert set_ids == []  # refused before Bio-Formats' setId, which opens the named files
    monkeypatch.undo()
    still_reads_a_good_file(tmp_path)


@requires_data
def test_with_the_opt_in_both_paths_read_the_outside_file(hostile_companion, monkeypatch):
    monkeypatch.setenv("BFDASK_ALLOW_OUTSIDE_FILES", "1")
    native = bfdask.open(hostile_companion, pixels="auto")
    java = bfdask.open(hostile_companion, pixels="bioformats")
    assert native.attrs["pixels"] == "native"
    assert_eq(native.data, java.data)
    assert (native.isel(T=0, C=0, Z=2).values == OUTSIDE_VALUE).all()


@requires_data
def test_the_opt_in_through_dask_config(hostile_companion):
    with dask.config.set({"bfdask.reader.allow-outside-files": True}):  # open AND compute
        data = bfdask.open(hostile_companion, pixels="bioformats")
        assert (data.isel(T=0, C=0, Z=2).values == OUTSIDE_VALUE).all()


@requires_data
def test_the_native_path_refuses_outside_names_too(hostile_companion, monkeypatch):
    with pytest.raises(bfdask.OutsideDatasetError) as exc:  # e.g. a worker without the opt-in
        tiff._ome_planes(str(hostile_companion), 0, "XYCTZ", (5, 1, 1), 1)
    assert_refusal(exc, hostile_companion)
    monkeypatch.setenv("BFDASK_ALLOW_OUTSIDE_FILES", "yes")
    files, _ = tiff._ome_planes(str(hostile_companion), 0, "XYCTZ", (5, 1, 1), 1)
    assert any(name.endswith("x.tif") for name in files)


@requires_data
@pytest.mark.parametrize("pixels", ["native", "bioformats"])
def test_the_opt_in_is_read_at_compute_too(hostile_companion, monkeypatch, pixels):
    """Opted in at open, not where the pixels are read: refused there, on both paths, even in
    the process that opened it (whose native page table already holds the outside file)."""
    monkeypatch.setenv("BFDASK_ALLOW_OUTSIDE_FILES", "1")
    data = bfdask.open(hostile_companion, pixels=pixels, chunks={"Z": 1})
    assert (data.isel(T=0, C=0, Z=2).values == OUTSIDE_VALUE).all()
    readers.close_all()  # a Java reader opened with the opt-in would be reused as it is
    monkeypatch.delenv("BFDASK_ALLOW_OUTSIDE_FILES")
    with pytest.raises(bfdask.OutsideDatasetError) as exc:
        data.isel(T=0, C=0, Z=2).values
    assert_refusal(exc, hostile_companion)


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_the_shared_companion_dataset_still_reads_identically(pixels):
    data = bfdask.open(COMPANION / "multifile.companion.ome", pixels=pixels)
    expected = [tifffile.imread(COMPANION / f"multifile-Z{z}.ome.tiff") for z in range(1, 6)]
    assert data.attrs["pixels"] == ("native" if pixels == "auto" else "bioformats")
    assert_eq(data.isel(T=0, C=0).data, np.stack(expected))


@requires_data
def test_a_multi_file_ics_still_opens():
    data = bfdask.open(DATA / "ics" / "chromo3d.ics")
    assert data.shape == (1, 1, 16, 140, 160)


# -- an OME-TIFF's own OME-XML (no corpus needed) ---------------------------------------------


@pytest.mark.parametrize("name", ["../elsewhere/x.tif", "sub/../../elsewhere/x.tif", "ABSOLUTE"])
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
def test_an_ome_tiff_naming_a_file_outside_is_refused(tmp_path, name, pixels):
    outside = outside_file(tmp_path)
    name = str(outside) if name == "ABSOLUTE" else name
    path = write_set(tmp_path / "dataset", name)
    with pytest.raises(bfdask.OutsideDatasetError) as exc:
        bfdask.open(path, pixels=pixels)
    assert_refusal(exc, path)
    assert repr(name) in str(exc.value)


def test_an_ome_tiff_naming_a_file_in_a_subfolder_opens(tmp_path):
    path = write_set(tmp_path / "dataset", "sub/x.tif")
    tifffile.imwrite(tmp_path / "dataset" / "sub" / "x.tif", np.full((24, 18), 9, np.uint8))
    data = bfdask.open(path)
    np.testing.assert_array_equal(data.isel(T=0, C=0).values[:, 0, 0], [7, 9])


def test_used_files_are_checked_after_setid_for_any_format(tmp_path, monkeypatch):
    # a Bio-Formats pattern file: setId stitches the files its pattern matches
    outside_file(tmp_path)
    (tmp_path / "dataset").mkdir()
    pattern = tmp_path / "dataset" / "stack.pattern"
    pattern.write_text(str(tmp_path / "elsewhere" / "<x,x>.tif"))
    with pytest.raises(bfdask.OutsideDatasetError, match="names the file"):  # before setId
        bfdask.open(pattern)
    monkeypatch.setattr(dataset, "check_dataset_files", lambda path: None)
    before = readers.open_readers()
    with pytest.raises(bfdask.OutsideDatasetError, match="Bio-Formats lists") as exc:
        bfdask.open(pattern)  # the check after setId, on getUsedFiles()
    assert_refusal(exc, pattern)
    assert readers.open_readers() == before  # the refused reader was closed, not cached


@pytest.mark.parametrize(
    "xml",
    [
        # an entity defined in the document's DTD (Bio-Formats' parser would expand it)
        '<?xml version="1.0"?><!DOCTYPE OME [<!ENTITY up "../elsewhere/x.tif">]>'
        f'<OME xmlns="{OME_NS}"><Image><Pixels><TiffData><UUID FileName="&up;">u</UUID>'
        "</TiffData></Pixels></Image></OME>",
        # OME-XML that Python's parser rejects (a stray '&'), with a namespace prefix
        f'<ome:OME xmlns:ome="{OME_NS}"><ome:BinaryOnly MetadataFile="../m.ome" UUID="a & b"/>'
        "</ome:OME>",
    ],
    ids=["dtd-entity", "unparsable"],
)
def test_names_python_cannot_parse_are_still_checked(tmp_path, xml):
    path = tmp_path / "dataset" / "set.companion.ome"
    path.parent.mkdir()
    path.write_text(xml, encoding="utf-8")
    with pytest.raises(bfdask.OutsideDatasetError):
        dataset.check_dataset_files(str(path))


# -- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "outside"),
    [("x.tif", False), ("sub/x.tif", False), ("sub/../x.tif", False), ("./x.tif", False),
     ("../x.tif", True), ("sub/../../x.tif", True), ("/etc/passwd", True), ("..", True),
     ("..\\x.tif", False)],  # a backslash is part of a file name on POSIX
)  # fmt: skip
def test_escapes_is_lexical(tmp_path, name, outside):
    assert dataset.escapes(str(tmp_path / "folder"), name) is outside


def test_a_name_climbing_out_through_a_symbolic_link_escapes(tmp_path):
    folder = tmp_path / "folder"
    (tmp_path / "secret" / "inner").mkdir(parents=True)
    folder.mkdir()
    os.symlink(tmp_path / "secret" / "inner", folder / "link")
    assert not dataset.escapes(str(folder), "link/x.tif")  # a link in the folder: the user's
    assert dataset.escapes(str(folder), "link/../x.tif")  # opens secret/x.tif


def test_the_opt_in_setting_must_be_yes_or_no(monkeypatch):
    monkeypatch.setenv("BFDASK_ALLOW_OUTSIDE_FILES", "maybe")
    with pytest.raises(ValueError, match="BFDASK_ALLOW_OUTSIDE_FILES"):
        dataset.outside_allowed()
    monkeypatch.setenv("BFDASK_ALLOW_OUTSIDE_FILES", "0")
    assert dataset.outside_allowed() is False
