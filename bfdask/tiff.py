"""Map Bio-Formats' (series, plane index) of a TIFF-family file to tifffile's (file, page).

* **OME-TIFF** (one file or many, companion ``.ome`` included): the OME-XML's ``TiffData``
  elements of the series' ``Pixels`` say which IFD of which file (``UUID FileName``) holds
  which (Z, C, T) plane; plane numbers follow the ``Pixels`` dimension order, which is the
  order Bio-Formats reports.
* **Plain TIFF and ImageJ hyperstacks**: one series whose planes are the file's IFDs in order
  (ImageJ writes C, Z, T fastest first, the order Bio-Formats reports for it); in a pyramid
  (or a slide), the full-size IFDs before the reduced ones.

Anything else (LSM, ImageJ files whose IFDs are not all written) has no table here and stays
on Bio-Formats. Compressed strips and tiles must decode to their size
(:mod:`bfdask.tiffsegments`), natively and, through :func:`check_planes`, on the Bio-Formats
path too. Nothing here touches Java; :mod:`bfdask.pixels` verifies a table
against Bio-Formats before it is used. Uncompressed contiguous pages are located by (offset,
size), so they are read with one ``preadv`` straight into the output; other pages are decoded
by tifffile (which needs ``imagecodecs`` for LZW, JPEG and the like).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from . import dataset, handles, safexml, tiffsegments
from .errors import CorruptFileError, NativePixelsError
from .native import NativeRecipe, plane_error, read_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from .files import FileStamp
    from .metadata import ImageSpec
    from .native import Planes, Window


class TiffLayoutError(ValueError):
    """No (file, page) table for this series (the reason is the message)."""


@dataclass(frozen=True)
class PageTable:
    """Where each plane of one series sits: one row per Bio-Formats plane index.

    ``file[i]`` indexes ``files``, ``page[i]`` is the IFD number in that file; ``offset[i]``
    and ``nbytes[i]`` locate the plane's bytes when the page is uncompressed and contiguous
    (``offset[i] = -1`` otherwise: tifffile decodes it).
    """

    files: tuple[str, ...]
    file: NDArray[np.int32]
    page: NDArray[np.int64]
    offset: NDArray[np.int64]
    nbytes: NDArray[np.int64]
    #: the byte just past the plane's last strip or tile, in its file (0: unknown)
    end: NDArray[np.int64]
    big_endian: bool


def _ome_xml(path: str) -> tuple[str, str]:
    """The OME-XML of an OME-TIFF set and the file it came from."""
    import tifffile

    if path.lower().endswith((".ome", ".xml", ".companion.ome")):
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(), path
        except UnicodeDecodeError as exc:
            raise CorruptFileError(
                f"{path!r} is damaged: its OME-XML is not UTF-8 text ({exc}); Bio-Formats "
                "may read past the damage. Restore the companion file from a good copy"
            ) from None
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    if not xml:
        raise TiffLayoutError(f"{path}: no OME-XML in the first IFD")
    return xml, path


def _ome_planes(
    path: str, series: int, order: str, sizes: tuple[int, int, int], samples: int
) -> tuple[tuple[str, ...], list[tuple[int, int]]]:
    """(files, [(file index, IFD)] per plane index) of one series from its TiffData.

    Raises :class:`~bfdask.errors.OutsideDatasetError` when a TiffData names a file outside
    ``path``'s folder (unless the user opted in: :mod:`bfdask.dataset`).
    """
    from . import dataset

    xml, source = _ome_xml(path)
    try:
        root = safexml.fromstring(xml)
    except ET.ParseError as exc:
        if source.lower().endswith((".ome", ".xml")):  # a companion file: nothing else says
            raise CorruptFileError(
                f"{source!r} is damaged: its OME-XML does not parse ({exc}); Bio-Formats "
                "reads past the damage and may take planes from the wrong file or give another "
                "shape. Restore the companion file from a good copy"
            ) from None
        raise TiffLayoutError(f"{path}: OME-XML does not parse: {exc}") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    images = root.findall(f"{ns}Image")
    if series >= len(images):
        raise TiffLayoutError(f"{path}: OME-XML has {len(images)} images, not {series + 1}")
    pixels = images[series].find(f"{ns}Pixels")
    if pixels is None:
        raise TiffLayoutError(f"{path}: image {series} has no Pixels")
    size_z, size_c, size_t = sizes
    ome_order = pixels.get("DimensionOrder", "")
    if ome_order != order:
        raise TiffLayoutError(
            f"Pixels DimensionOrder {ome_order} differs from Bio-Formats' {order}"
        )
    if int(pixels.get("SizeC", "1")) != size_c * samples:
        raise TiffLayoutError("SizeC does not match Bio-Formats' channels x samples")
    if (int(pixels.get("SizeZ", "1")), int(pixels.get("SizeT", "1"))) != (size_z, size_t):
        raise TiffLayoutError("SizeZ/SizeT do not match Bio-Formats'")
    strides = {}
    stride = 1
    for dim in order[2:]:
        strides[dim] = stride
        stride *= {"Z": size_z, "C": size_c, "T": size_t}[dim]
    count = stride
    folder = os.path.dirname(source)
    is_tiff = not source.lower().endswith((".ome", ".xml"))
    files: list[str] = [source] if is_tiff else []
    own_uuid = (root.get("UUID") or "").strip()
    table: list[tuple[int, int] | None] = [None] * count
    tiffdata = pixels.findall(f"{ns}TiffData")
    if not tiffdata:
        raise TiffLayoutError("no TiffData elements")
    allow_outside = dataset.outside_allowed()
    for td in tiffdata:
        uuid = td.find(f"{ns}UUID")
        if uuid is not None and uuid.get("FileName") is not None and not allow_outside:
            dataset.check_name(source, uuid.get("FileName", ""))  # only the dataset's folder
        if uuid is not None and own_uuid and (uuid.text or "").strip() == own_uuid and is_tiff:
            name = source  # this very file, whatever it has been renamed to
        elif uuid is not None and uuid.get("FileName"):
            name = os.path.join(folder, uuid.get("FileName", ""))
        elif is_tiff:
            name = source
        else:
            raise TiffLayoutError("TiffData without a file name in a companion file")
        if name not in files:
            files.append(name)
        index = files.index(name)
        attrs = {k: td.get(k) for k in ("IFD", "FirstZ", "FirstC", "FirstT", "PlaneCount")}
        ifd = int(attrs["IFD"] or 0)
        first = (
            int(attrs["FirstZ"] or 0) * strides["Z"]
            + int(attrs["FirstC"] or 0) * strides["C"]
            + int(attrs["FirstT"] or 0) * strides["T"]
        )
        if attrs["PlaneCount"] is not None:
            n = int(attrs["PlaneCount"])
        elif any(attrs[k] is not None for k in ("IFD", "FirstZ", "FirstC", "FirstT")):
            n = 1
        else:
            n = count - first
        for k in range(n):
            if first + k < count:
                table[first + k] = (index, ifd + k)
    if any(entry is None for entry in table):
        raise TiffLayoutError("TiffData leave some planes without an IFD")
    return tuple(files), [entry for entry in table if entry is not None]


def data_end(page: Any) -> int:
    """The byte just past the page's last strip or tile (0 when it has none)."""
    ends = [
        int(offset) + int(count)
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False)
        if count
    ]
    return max(ends, default=0)


def _locate(page: Any, dtype: np.dtype[Any], samples: int) -> tuple[int, int]:
    """(offset, nbytes) of an uncompressed, contiguous page in the plane's layout, else (-1, 0)."""
    if (
        page.compression != 1
        or getattr(page, "predictor", 1) != 1
        or getattr(page, "fillorder", 1) != 1
        or page.is_tiled
        or page.bitspersample != 8 * dtype.itemsize
        or (samples > 1 and page.planarconfig != 1)
        or page.samplesperpixel != samples
        or not page.is_contiguous
    ):
        return -1, 0
    offset = int(page.dataoffsets[0])
    nbytes = int(page.shape[0] * page.shape[1] * samples * dtype.itemsize)
    return offset, nbytes


@lru_cache(maxsize=32)
def page_table(
    path: str,
    stamp: FileStamp | None,
    series: int,
    ome: bool,
    order: str,
    sizes: tuple[int, int, int],
    samples: int,
    dtype: str,
    yx: tuple[int, int],
) -> PageTable:
    """The :class:`PageTable` of one series (cached per process; ``stamp`` is in the key).

    ``ome``: map through the OME-XML's TiffData (OME-TIFF), else IFD i holds plane i.

    ``sizes`` is Bio-Formats' (Z, effective C, T), ``yx`` its plane size. Raises
    :class:`TiffLayoutError` when no table can be built.
    """
    import tifffile

    count = sizes[0] * sizes[1] * sizes[2]
    if ome:
        files, planes = _ome_planes(path, series, order, sizes, samples)
    elif series == 0:
        files, planes = (path,), [(0, k) for k in range(count)]  # checked below
    else:
        raise TiffLayoutError("a plain TIFF with more than one series")
    np_dtype = np.dtype(dtype)
    offsets = np.full(count, -1, np.int64)
    nbytes = np.zeros(count, np.int64)
    ends = np.zeros(count, np.int64)
    big_endian: bool | None = None
    for index, name in enumerate(files):
        with tifffile.TiffFile(name) as tif:
            pages = tif.pages
            order_mark = tif.byteorder == ">"
            if big_endian is not None and order_mark != big_endian:
                raise TiffLayoutError("files of mixed byte order")
            big_endian = order_mark
            if not ome:
                _check_plain(pages, count, yx)
            wanted = [(i, ifd) for i, (f, ifd) in enumerate(planes) if f == index]
            if wanted and max(ifd for _, ifd in wanted) >= len(pages):
                raise TiffLayoutError(f"{name} has {len(pages)} IFDs, fewer than referenced")
            for i, ifd in wanted:
                page = cast("tifffile.TiffPage", pages[ifd])  # a TiffFrame only if useframes
                if page.is_reduced:
                    raise TiffLayoutError(f"IFD {ifd} is a reduced image")
                if (page.imagelength, page.imagewidth) != yx:
                    raise TiffLayoutError(f"IFD {ifd} is not {yx[0]} x {yx[1]} pixels")
                offsets[i], nbytes[i] = _locate(page, np_dtype, samples)
                ends[i] = data_end(page)
    return PageTable(
        files=files,
        file=np.asarray([f for f, _ in planes], np.int32),
        page=np.asarray([p for _, p in planes], np.int64),
        offset=offsets,
        nbytes=nbytes,
        end=ends,
        big_endian=bool(big_endian),
    )


def _check_plain(pages: Any, count: int, yx: tuple[int, int]) -> None:
    """Raise unless a plain TIFF's first ``count`` IFDs are its planes: all its IFDs, or, in
    a pyramid or a slide (SVS), the full-size images before the others (reduced images,
    a thumbnail, a label)."""
    if len(pages) == count:
        return
    full = [
        i
        for i, page in enumerate(pages)
        if not page.is_reduced and (page.imagelength, page.imagewidth) == yx
    ]
    if len(pages) < count or full[:count] != list(range(count)):
        raise TiffLayoutError(f"{len(pages)} IFDs for {count} planes")


# -- decoding pages through tifffile (compressed or scattered) ------------------------------


def _tifffile(path: str, stamp: FileStamp | None) -> Any:
    """The calling thread's open ``tifffile.TiffFile`` of ``path``, from the process's one
    handle cache (:mod:`bfdask.handles`).

    One per thread, as Bio-Formats readers are: a shared handle would interleave the seeks
    and reads of two threads (tifffile locks nothing by default).
    """
    import tifffile

    key = ("tiff", path, stamp)
    tif = handles.get(key)
    if tif is None:
        tif = handles.put(key, tifffile.TiffFile(path))
    return tif


def decode_page(path: str, stamp: FileStamp | None, page: int, window: Window) -> NDArray[Any]:
    """IFD ``page`` of ``path`` decoded by tifffile, as ``(Y, X[, S])``, once the strips or
    tiles holding ``window`` are found to decode to their size (else ``CorruptFileError``)."""
    tif = _tifffile(path, stamp)
    tiff_page = tif.pages[page]
    problem = tiffsegments.page_problem(tiff_page, window)
    if problem is not None:
        raise CorruptFileError(problem)
    data: NDArray[Any] = tiff_page.asarray()
    if tiff_page.samplesperpixel > 1 and tiff_page.planarconfig == 2:
        data = np.moveaxis(data, 0, -1)
    return data


# -- the native reader (bfdask.native.NativeFormat) ------------------------------------------


def table_of(recipe: NativeRecipe) -> PageTable:
    """The page table of ``recipe``'s series (rebuilt once per process, then cached)."""
    return page_table(
        recipe.path,
        recipe.stamp,
        recipe.series,
        recipe.kind == "ome-tiff",
        recipe.order,
        (recipe.size_z, recipe.size_c, recipe.size_t),
        recipe.samples,
        recipe.dtype,
        (recipe.size_y, recipe.size_x),
    )


def plan(spec: ImageSpec) -> NativeRecipe:
    """The native recipe of a TIFF-family series (see :meth:`bfdask.native.NativeFormat.plan`).

    The page table itself is not part of the recipe: each process rebuilds it from these
    fields once (:func:`page_table`), so tasks carry a few numbers.
    """
    kind = "ome-tiff" if spec.format == "OME-TIFF" else "tiff"
    recipe = NativeRecipe.of(spec, "tiff", kind)
    try:
        table = table_of(recipe)
    except TiffLayoutError as exc:  # a layout not mapped: Bio-Formats reads it
        raise NativePixelsError(f"TiffLayoutError: {exc}") from None
    if table.big_endian == spec.little_endian and spec.itemsize > 1:
        raise NativePixelsError("the TIFF's byte order differs from Bio-Formats'")
    return recipe


def describe(recipe: NativeRecipe) -> str:
    """How the plan maps planes."""
    return "OME-TIFF TiffData pages" if recipe.kind == "ome-tiff" else "TIFF pages in IFD order"


def missing_planes(recipe: NativeRecipe) -> NDArray[np.intp]:
    """Plane indices whose strips or tiles (compressed or not) end past the end of their file
    (truncated, or offsets damaged)."""
    table = table_of(recipe)
    sizes = np.array([os.path.getsize(name) for name in table.files], np.int64)
    return np.flatnonzero(table.end > sizes[table.file])


def rows_in_file(recipe: NativeRecipe, index: int) -> int:
    """How many whole rows of plane ``index`` the (truncated) file still holds (0 for a page
    that is not one contiguous run of raw rows)."""
    table = table_of(recipe)
    start = int(table.offset[index])
    if start < 0:
        return 0
    left = os.path.getsize(table.files[table.file[index]]) - start
    return max(0, min(recipe.size_y, left // recipe.row_bytes))


def read_planes(recipe: NativeRecipe, out: NDArray[Any], planes: Planes, window: Window) -> None:
    """Read ``planes``: uncompressed contiguous pages with ``preadv`` straight into ``out``,
    the others decoded by tifffile; in (file, offset) order."""
    y, x = window
    table = table_of(recipe)
    jobs = sorted((int(table.file[i]), int(table.offset[i]), i, at) for i, at in planes)
    if len(table.files) > 1 and not dataset.outside_allowed():
        # the opt-in is read where and when pixels are read, as on the Bio-Formats path (the
        # table may have been built in this process while it was on)
        for file in {job[0] for job in jobs}:
            dataset.check_name(recipe.path, table.files[file])
    fds: dict[int, int] = {}
    try:
        for file, offset, index, at in jobs:
            name = table.files[file]
            try:
                if offset >= 0:
                    fd = fds.get(file)
                    if fd is None:
                        fd = fds[file] = os.open(name, os.O_RDONLY)
                    read_rows(fd, out[at], offset, recipe.row_bytes, recipe.size_x, y, x)
                    if recipe.swap:
                        out[at].byteswap(inplace=True)
                    continue
                stamp = recipe.stamp if name == recipe.path else None
                plane = decode_page(name, stamp, int(table.page[index]), window)
            except CorruptFileError as exc:  # a strip or tile that does not decode to its size
                problem = f"IFD {int(table.page[index])}: {exc}"
                raise plane_error(recipe, index, name, problem, damaged=True) from None
            except Exception as exc:  # a codec's error, a short file, a bad IFD
                problem = f"IFD {int(table.page[index])}: {type(exc).__name__}: {exc}"
                raise plane_error(recipe, index, name, problem) from None
            out[at] = plane[y[0] : y[1], x[0] : x[1]]  # values: any byte order converts
    finally:
        for fd in fds.values():
            os.close(fd)


def check_planes(recipe: NativeRecipe, indices: Sequence[int], window: Window) -> None:
    """Raise :class:`CorruptFileError` if a compressed strip or tile holding ``window`` of
    one of the planes ``indices`` does not decode to its size (:mod:`bfdask.tiffsegments`).

    The Bio-Formats path calls this before it reads such a series (``Damage.segments``):
    Bio-Formats pads a strip that decodes short with zeros, and uses a long one's first bytes.
    """
    table = table_of(recipe)
    for index in indices:
        if table.offset[index] >= 0:  # raw and contiguous: nothing to decode
            continue
        name = table.files[table.file[index]]
        page = int(table.page[index])
        stamp = recipe.stamp if name == recipe.path else None
        problem = tiffsegments.page_problem(_tifffile(name, stamp).pages[page], window)
        if problem is not None:
            raise plane_error(recipe, index, name, f"IFD {page}: {problem}", damaged=True)


def compressed(recipe: NativeRecipe) -> bool:
    """Whether some plane of the series is not one raw contiguous run (so it is decoded)."""
    return bool((table_of(recipe).offset < 0).any())
