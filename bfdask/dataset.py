"""Which files a dataset may read: the opened file's folder and below, nothing else.

A multi-file dataset names its other files: an OME-TIFF's ``TiffData/UUID@FileName`` and
``BinaryOnly@MetadataFile``, a companion ``.companion.ome``'s TiffData, an ICS header its
``.ids``, a pattern file its members. A crafted name such as ``../../elsewhere/x.tif`` or
``/home/me/secret.tif`` would make Bio-Formats -- and bfdask's native TIFF path -- read pixels
from a file the user never opened. So every file a dataset names must lie, after
``os.path.normpath(os.path.join(folder, name))`` (lexical, absolute names included), in the
opened file's folder or below. A name that climbs through a symbolic link (``link/../x``) must
also stay inside once the link is resolved, since that is the file the system would open.

Two checks, both raising :class:`~bfdask.errors.OutsideDatasetError`:

* :func:`check_dataset_files` runs **before** Bio-Formats' ``setId`` (which opens the named
  files): it reads the OME-XML of an OME-TIFF (first IFD's ImageDescription) or companion OME-XML
  file, and the metadata file a ``BinaryOnly`` element points to, in Python (and the pattern
  of a ``.pattern`` file).
* :func:`check_used_files` runs **after** ``setId`` on Bio-Formats' ``getUsedFiles()``, for every
  format (ICS/IDS, pattern files, plate formats...).

The user opts in to datasets spread over several folders with the setting
``bfdask.reader.allow-outside-files`` (env ``BFDASK_ALLOW_OUTSIDE_FILES=1``). Nothing here
touches Java.
"""

from __future__ import annotations

import html
import os
import re
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import config, safexml
from .errors import OutsideDatasetError

if TYPE_CHECKING:
    from collections.abc import Iterable

#: the setting that lets a dataset read files outside its folder
ALLOW_KEY = "bfdask.reader.allow-outside-files"
#: what the error messages tell the user to do to opt in
OPT_IN = (
    "If you trust this dataset, allow it: set BFDASK_ALLOW_OUTSIDE_FILES=1 (or the dask "
    f"config key '{ALLOW_KEY}': True) where the files are read (on dask workers too)."
)

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_XML_SUFFIXES = (".ome", ".xml")
# fallback for OME-XML that does not parse: the attributes Bio-Formats follows
_UUID_NAME = re.compile(r"<(?:[\w.-]+:)?UUID\b[^>]*?\bFileName\s*=\s*(\"[^\"]*\"|'[^']*')")
_BINARY_ONLY = re.compile(
    r"<(?:[\w.-]+:)?BinaryOnly\b[^>]*?\bMetadataFile\s*=\s*(\"[^\"]*\"|'[^']*')"
)


@dataclass(frozen=True)
class NamedFile:
    """A file name found in a dataset's metadata, and the document that names it."""

    name: str
    source: str


def outside_allowed() -> bool:
    """Whether the user opted in to datasets that read files outside their folder."""
    return config.flag(ALLOW_KEY)


def escapes(folder: str, name: str) -> bool:
    """Whether ``name`` (relative to ``folder``, or absolute) lies outside ``folder``.

    Lexical: ``os.path.normpath(os.path.join(folder, name))`` must be ``folder`` or below it.
    A name with a ``..`` component is also resolved on disk (``os.path.realpath``), because
    ``link/../x`` opens the parent of the link's target, wherever that is.
    """
    base = os.path.normpath(folder)
    joined = os.path.join(base, name)
    if not _below(base, os.path.normpath(joined)):
        return True
    if ".." in name.replace("\\", "/").split("/"):
        return not _below(os.path.realpath(base), os.path.realpath(joined))
    return False


def _below(folder: str, target: str) -> bool:
    try:
        return os.path.commonpath([folder, target]) == folder
    except ValueError:  # one relative, one absolute (cannot happen with absolute inputs)
        return False


# -- before setId: the names in the OME-XML ---------------------------------------------------


def check_dataset_files(path: str) -> None:
    """Refuse ``path`` if its metadata names a file outside its folder (before ``setId``).

    Looks at OME-TIFFs (any file with TIFF magic whose first ImageDescription is OME-XML) and
    OME-XML files (``.companion.ome``, ``.ome``, ``.xml``): their ``TiffData/UUID@FileName``
    and ``BinaryOnly@MetadataFile``, and the TiffData of the metadata file the latter names;
    and at the file pattern of a ``.pattern`` file. Other files, paths that are not regular
    files and documents that cannot be read pass: :func:`check_used_files` checks them after
    ``setId``. Does nothing when the user opted in.

    Parameters
    ----------
    path
        Absolute path of the file being opened.

    Raises
    ------
    OutsideDatasetError
        A named file lies outside ``path``'s folder; the message names both and the opt-in.
    """
    if outside_allowed():
        return
    folder = os.path.dirname(path)
    for named in named_files(path):
        if escapes(folder, named.name):
            raise _refusal(path, named)


def check_name(path: str, name: str) -> None:
    """Refuse ``name``, named by ``path``'s metadata, if it lies outside ``path``'s folder.

    For readers that resolve names themselves (the native TIFF path); the caller checks the
    opt-in (:func:`outside_allowed`) once rather than for each name.

    Raises
    ------
    OutsideDatasetError
        ``name`` lies outside the folder.
    """
    if escapes(os.path.dirname(path), name):
        raise _refusal(path, NamedFile(name, path))


def named_files(path: str) -> list[NamedFile]:
    """Every file the OME-XML of ``path`` (and its BinaryOnly metadata file) names, or the
    file pattern of a ``.pattern`` file.

    Names are as written (relative to ``path``'s folder, as Bio-Formats resolves them, or
    absolute). Empty for any other file.
    """
    if path.lower().endswith(".pattern"):
        return _pattern_names(path)
    xml = _own_ome_xml(path)
    if xml is None:
        return []
    tiffdata, metadata_files = _names(xml)
    found = [NamedFile(name, path) for name in (*metadata_files, *tiffdata)]
    folder = os.path.dirname(path)
    for name in metadata_files:  # Bio-Formats reads it and uses its TiffData instead
        if escapes(folder, name):
            continue  # refused by the caller; never read here either
        companion = os.path.join(folder, name)
        text = _read_text(companion)
        if text is not None:
            found += [NamedFile(n, companion) for n in _names(text)[0]]
    return found


def _pattern_names(path: str) -> list[NamedFile]:
    """The file pattern of a Bio-Formats ``.pattern`` file, resolved as Bio-Formats does: a bare
    name in the file's folder, any other relative pattern from the working directory."""
    text = _read_text(path)
    if text is None or not text.strip():
        return []
    pattern = text.strip()
    if os.path.dirname(pattern) and not os.path.isabs(pattern):
        pattern = os.path.join(os.getcwd(), pattern)
    return [NamedFile(pattern, path)]


def _own_ome_xml(path: str) -> str | None:
    """The OME-XML ``path`` carries: the text of an XML file, a TIFF's first description."""
    head = _head(path, 4)
    if head is None:
        return None
    if head in _TIFF_MAGIC:
        return _tiff_description(path)
    if path.lower().endswith(_XML_SUFFIXES):
        return _read_text(path)
    return None


def _head(path: str, size: int) -> bytes | None:
    """The first ``size`` bytes of ``path`` if it is a regular file (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, size)
    finally:
        os.close(fd)


def _read_text(path: str) -> str | None:
    """The text of the regular file ``path`` (UTF-8, or UTF-16 with a byte order mark), or None.

    Other encodings decode to text in which ``..`` and ``/`` (ASCII) still read right.
    """
    if _head(path, 0) is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8", errors="replace")


def _tiff_description(path: str) -> str | None:
    """The first ImageDescription of the first IFD (where OME-TIFF keeps its OME-XML)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            description = getattr(tif.pages[0], "description", None)
    except Exception:  # not a TIFF tifffile reads: nothing to check before setId
        return None
    return description if isinstance(description, str) else None


def _names(xml: str) -> tuple[list[str], list[str]]:
    """(TiffData ``UUID@FileName`` values, ``BinaryOnly@MetadataFile`` values) of OME-XML."""
    if "FileName" not in xml and "MetadataFile" not in xml:
        return [], []  # attribute names are literal text in any XML document
    try:
        root = safexml.fromstring(xml)
    except ET.ParseError:  # malformed, or a DTD (safexml never expands one): by pattern
        return _names_by_pattern(xml)
    if _local(root.tag) != "OME":
        return [], []
    tiffdata: list[str] = []
    metadata: list[str] = []
    for element in root.iter():
        tag = _local(element.tag)
        if tag == "UUID" and element.get("FileName") is not None:
            tiffdata.append(element.get("FileName", ""))
        elif tag == "BinaryOnly" and element.get("MetadataFile") is not None:
            metadata.append(element.get("MetadataFile", ""))
    return tiffdata, metadata


def _names_by_pattern(xml: str) -> tuple[list[str], list[str]]:
    """The names of OME-XML that does not parse in Python (Bio-Formats' parser may accept it)
    or that declares a DTD (which no parser here expands).

    A value still holding an entity reference (``&name;``, defined in a DTD) cannot be resolved
    here; it is returned as ``/`` (outside every folder), so that it is refused.
    """

    def values(pattern: re.Pattern[str]) -> list[str]:
        out = []
        for quoted in pattern.findall(xml):
            value = html.unescape(quoted[1:-1])
            out.append("/" if "&" in value else value)
        return out

    return values(_UUID_NAME), values(_BINARY_ONLY)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# -- after setId: Bio-Formats' used files -----------------------------------------------------


def check_used_files(path: str, used: Iterable[str]) -> None:
    """Refuse ``path`` if Bio-Formats lists a file of its dataset outside its folder.

    Parameters
    ----------
    path
        Absolute path of the opened file.
    used
        ``getUsedFiles()`` of the reader that opened it (absolute paths).

    Raises
    ------
    OutsideDatasetError
        One of ``used`` lies outside ``path``'s folder (unless the user opted in).
    """
    if outside_allowed():
        return
    folder = os.path.dirname(path)
    for name in used:
        if escapes(folder, name):
            raise OutsideDatasetError(
                f"Bio-Formats lists {name!r} among the files of {path!r}, outside the opened "
                f"file's folder {folder!r}: bfdask reads only files in that folder and below, "
                f"and closed it. {OPT_IN}"
            )


def _refusal(path: str, named: NamedFile) -> OutsideDatasetError:
    folder = os.path.dirname(path)
    target = os.path.normpath(os.path.join(folder, named.name))
    where = "" if named.source == path else f" (in its metadata file {named.source!r})"
    return OutsideDatasetError(
        f"{path!r}{where} names the file {named.name!r} ({target!r}), outside the opened "
        f"file's folder {folder!r}: bfdask reads only files in that folder and below, and did "
        f"not open it. {OPT_IN}"
    )
