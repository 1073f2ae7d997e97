"""Where the pixels of a Leica LIF series sit in the file, read from the file's own structure.

A LIF file is an XML header block followed by one memory block per element (LAS X layout, see
``shared/tools/make_lif.py``)::

    header block   int32 0x70 | int32 length | byte 0x2A | int32 nchars | XML (UTF-16LE)
    memory block   int32 0x70 | int32 length | byte 0x2A | size (int64; int32 in version 1) |
                   byte 0x2A | int32 nchars | block id (UTF-16LE) | data

Each image element's ``ImageDescription`` gives its dimensions (DimID 1 = X, 2 = Y, 3 = Z,
4 = T, 10 = tiles) and channels, each with its byte increment in the memory block, so the byte
offset of any (z, c, t) plane is ``block start + c_offset[c] + z * z_stride + t * t_stride``.
Bio-Formats' LIF reader makes one series per image element with data, and one per tile of a
tile scan, in document order; a scan whose second dimension is Z (an XZ scan) has Z as its rows.

Nothing here touches Java; :mod:`bfdask.pixels` matches this layout to Bio-Formats' series and
verifies it before use.
"""

from __future__ import annotations

import os
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from . import safexml
from .errors import CorruptFileError, NativePixelsError
from .native import NativeRecipe, plane_error, read_rows, read_runs
from .order import plane_position

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from .files import FileStamp
    from .metadata import ImageSpec
    from .native import Planes, Window

LIF_MAGIC = 0x70
LIF_MEM = 0x2A


class LifLayoutError(ValueError):
    """A LIF layout this module does not map (the reason is the message): not damage."""


def _damaged(path: str, problem: str) -> CorruptFileError:
    return CorruptFileError(
        f"{path!r} is damaged: {problem}. Bio-Formats may still open it, but bfdask cannot "
        "tell which of its bytes are pixels; check it opens in LAS X or Fiji."
    )


@dataclass(frozen=True)
class LifImage:
    """Byte layout of one Bio-Formats series of a LIF file (plain ints, picklable)."""

    name: str
    offset: int  # absolute file offset of the series' first byte (block start + tile offset)
    nbytes: int  # bytes the series may span from ``offset`` (its memory block's rest)
    extent: int  # bytes of this series alone (its tile's share of the block, or the block)
    size_x: int
    size_y: int
    size_z: int
    size_c: int
    size_t: int
    x_stride: int  # bytes between neighbouring pixels of a row
    row_stride: int  # bytes between rows
    z_stride: int
    t_stride: int
    c_offsets: tuple[int, ...]  # byte offset of each channel
    bits: tuple[int, ...]  # bits per sample of each channel (Resolution)
    rgb: bool  # a channel has a ChannelTag (RGB data)
    unsupported: str = ""  # why the pixel layout is not mapped ("": it is); sizes are then 0

    def truncated(self, file_size: int) -> bool:
        """Whether the series' bytes run past ``file_size`` (the file was cut short)."""
        return self.offset + self.extent > file_size


def _read_exact(f: BinaryIO, n: int, path: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _damaged(path, f"its LIF structure ends early (at byte {f.tell()})")
    return data


def read_header(path: str) -> tuple[str, int]:
    """The XML header of ``path`` and the file offset just after it."""
    with open(path, "rb") as f:
        magic, _length, mem, nchars = struct.unpack("<IIBI", _read_exact(f, 13, path))
        if magic != LIF_MAGIC or mem != LIF_MEM:
            raise _damaged(path, f"no LIF header (magic {magic:#x})")
        try:
            xml = _read_exact(f, 2 * nchars, path).decode("utf-16-le")
        except UnicodeDecodeError as exc:
            raise _damaged(path, f"its XML header is not UTF-16 text ({exc})") from None
        return xml, f.tell()


def memory_blocks(path: str, start: int, version: int) -> dict[str, tuple[int, int]]:
    """Every memory block of the file: ``{block id: (data offset, data size)}``.

    Walks the block headers only (one small read each), seeking over the data; 64-bit sizes
    and offsets throughout. The last block's data may run past the end of a file that was
    cut short: its declared size is kept (see :meth:`LifImage.truncated`).
    """
    blocks: dict[str, tuple[int, int]] = {}
    size_format = "<Q" if version >= 2 else "<I"
    size_len = struct.calcsize(size_format)
    with open(path, "rb") as f:
        end = f.seek(0, 2)
        pos = start
        while pos + 9 <= end:
            f.seek(pos)
            magic, _length, mem = struct.unpack("<IIB", _read_exact(f, 9, path))
            if magic != LIF_MAGIC or mem != LIF_MEM:
                raise _damaged(path, f"bad memory block header at byte {pos}")
            (size,) = struct.unpack(size_format, _read_exact(f, size_len, path))
            mem2, nchars = struct.unpack("<BI", _read_exact(f, 5, path))
            if mem2 != LIF_MEM:
                raise _damaged(path, f"bad memory block header at byte {pos}")
            try:
                block_id = _read_exact(f, 2 * nchars, path).decode("utf-16-le")
            except UnicodeDecodeError:
                raise _damaged(path, f"bad memory block name at byte {pos}") from None
            data = f.tell()
            blocks[block_id] = (data, size)
            pos = data + size
    return blocks


_ATTACHMENT = re.compile(r"<Attachment\b[^>]*?(/?)>|</Attachment>")


def without_attachments(xml: str) -> str:
    """``xml`` without its ``<Attachment>`` elements (instrument settings, markers...).

    They hold nothing about the pixel layout but most of the header of a real LAS X file
    (~90 %), so parsing is ~10x faster without them. Unbalanced tags: ``xml`` unchanged.
    """
    parts: list[str] = []
    depth = 0
    keep = 0
    for match in _ATTACHMENT.finditer(xml):
        if match.group(0).startswith("</"):
            depth -= 1
            if depth < 0:
                return xml
            if depth == 0:
                keep = match.end()
        elif match.group(1):  # <Attachment .../>
            if depth == 0:
                parts.append(xml[keep : match.start()])
                keep = match.end()
        else:
            if depth == 0:
                parts.append(xml[keep : match.start()])
            depth += 1
    if depth != 0:
        return xml
    parts.append(xml[keep:])
    return "".join(parts)


def _images(root: ET.Element) -> list[tuple[str, ET.Element]]:
    """Image elements with data, in document order, with their names below the root."""
    out: list[tuple[str, ET.Element]] = []

    def walk(element: ET.Element, prefix: str) -> None:
        for child in element.findall("./Children/Element"):
            name = child.get("Name", "")
            full = f"{prefix}/{name}" if prefix else name
            image = child.find("./Data/Image")
            memory = child.find("./Memory")
            if image is not None and memory is not None and int(memory.get("Size", "0")) > 0:
                out.append((full, child))
            walk(child, full)

    top = root.find("./Element")
    if top is None:
        raise LifLayoutError("no root Element in the LIF header")  # caught as damage
    walk(top, "")
    return out


def _dims(name: str, description: ET.Element) -> list[tuple[int, int, int]]:
    """``(DimID, NumberOfElements, BytesInc)`` of each dimension, in the header's order."""
    try:
        return [
            (
                int(d.get("DimID", "0")),
                int(d.get("NumberOfElements", "1")),
                int(d.get("BytesInc", "0")),
            )
            for d in description.findall("./Dimensions/DimensionDescription")
        ]
    except ValueError as exc:
        raise LifLayoutError(f"{name}: a dimension is not a number ({exc})") from None


def _unsupported(name: str, dims: list[tuple[int, int, int]], channels: list[ET.Element]) -> str:
    """Why this image's pixel layout is not mapped here ("" when it is)."""
    if not channels or len(dims) < 2:
        return f"{name}: fewer than two dimensions or no channel"
    unknown = {d for d, _, _ in dims} - {1, 2, 3, 4, 10}
    if unknown:
        return f"{name}: dimension ids {sorted(unknown)} are not handled"
    if dims[0][0] != 1:
        return f"{name}: first dimension is not X"
    if len({d for d, _, _ in dims}) != len(dims):
        return f"{name}: a dimension id repeats"
    if dims[1][0] not in (2, 3):
        return f"{name}: second dimension (id {dims[1][0]}) is neither Y nor Z"
    return ""


def _layout(
    path: str, name: str, element: ET.Element, blocks: dict[str, tuple[int, int]]
) -> list[LifImage]:
    """The series (one, or one per tile) of one image element.

    An image whose layout is not mapped still gets its place in the file (``offset``,
    ``extent``), so that a truncated file is detected whatever reads its pixels.
    """
    description = element.find("./Data/Image/ImageDescription")
    memory = element.find("./Memory")
    if description is None or memory is None:
        raise LifLayoutError(f"{name}: no ImageDescription")
    block_id = memory.get("MemoryBlockID", "")
    if block_id not in blocks:
        raise _damaged(path, f"the memory block {block_id!r} of {name!r} is not in the file")
    start, size = blocks[block_id]
    channels = description.findall("./Channels/ChannelDescription")
    dims = _dims(name, description)
    by_id = {d: (n, inc) for d, n, inc in dims}
    tiles, tile_inc = by_id.get(10, (1, 0))
    if tiles < 1 or tile_inc < 0 or (tiles > 1 and tile_inc == 0):
        raise LifLayoutError(f"{name}: {tiles} tiles {tile_inc} bytes apart")
    extent = tile_inc if tiles > 1 else size
    reason = _unsupported(name, dims, channels)
    if reason:
        return [
            LifImage(
                name,
                start + k * tile_inc,
                size - k * tile_inc,
                extent,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                (),
                (),
                False,
                unsupported=reason,
            )
            for k in range(tiles)
        ]
    row_id = dims[1][0]  # 2 normally; 3 for an XZ scan, whose Z Bio-Formats shows as Y
    z_id = 3 if row_id == 2 else 2
    z_n, z_inc = by_id.get(z_id, (1, 0))
    t_n, t_inc = by_id.get(4, (1, 0))
    try:
        c_offsets = tuple(int(c.get("BytesInc", "0")) for c in channels)
        bits = tuple(int(c.get("Resolution", "0")) for c in channels)
    except ValueError as exc:
        raise LifLayoutError(f"{name}: a channel field is not a number ({exc})") from None
    common: dict[str, Any] = {  # the LifImage fields every tile shares
        "size_x": by_id[1][0],
        "size_y": by_id[row_id][0],
        "size_z": z_n,
        "size_c": len(channels),
        "size_t": t_n,
        "x_stride": by_id[1][1],
        "row_stride": by_id[row_id][1],
        "z_stride": z_inc,
        "t_stride": t_inc,
        "c_offsets": c_offsets,
        "bits": bits,
        "rgb": any(c.get("ChannelTag", "0") != "0" for c in channels),
    }
    return [
        LifImage(
            name=name,
            offset=start + k * tile_inc,
            nbytes=size - k * tile_inc,
            extent=extent,
            **common,
        )
        for k in range(tiles)
    ]


@lru_cache(maxsize=32)
def layout(path: str, stamp: FileStamp | None) -> tuple[LifImage, ...]:
    """Every Bio-Formats series of the LIF file ``path``, in Bio-Formats' order (cached).

    ``stamp`` (the file's identity, a :class:`~bfdask.files.FileStamp`) is part of the cache
    key: a changed file is parsed again.

    Raises
    ------
    LifLayoutError
        The file's structure is not one this module maps (images of unmapped layouts do not
        raise: they come with :attr:`LifImage.unsupported` set).
    CorruptFileError
        The file's structure is damaged (its header, a memory block).
    """
    xml, after = read_header(path)
    try:
        root = safexml.fromstring(without_attachments(xml))
    except ET.ParseError as exc:
        raise _damaged(path, f"its XML header does not parse ({exc})") from None
    try:
        version = int(root.get("Version", "2"))
    except ValueError:
        raise _damaged(path, "its XML header's Version is not a number") from None
    blocks = memory_blocks(path, after, version)
    out: list[LifImage] = []
    for name, element in _images(root):
        out.extend(_layout(path, name, element, blocks))
    return tuple(out)


# -- the native reader (bfdask.native.NativeFormat) ------------------------------------------


@dataclass(frozen=True)
class LifPlanes:
    """Where the planes of one series lie: plane (z, c, t) starts at ``offset + c_offsets[c]
    + z * z_stride + t * t_stride``; its rows are ``row_stride`` bytes apart."""

    offset: int
    row_stride: int
    z_stride: int
    t_stride: int
    c_offsets: tuple[int, ...]


def plan(spec: ImageSpec) -> NativeRecipe:
    """The native recipe of a LIF series (see :meth:`bfdask.native.NativeFormat.plan`)."""
    try:
        images = layout(spec.path, spec.stamp)
    except LifLayoutError as exc:
        raise NativePixelsError(f"LifLayoutError: {exc}") from None
    if len(images) != spec.series_count:
        raise NativePixelsError(
            f"the LIF header lists {len(images)} images with data, "
            f"Bio-Formats {spec.series_count} series"
        )
    image = images[spec.series]
    if image.unsupported:
        raise NativePixelsError(image.unsupported)
    itemsize = spec.itemsize
    if image.rgb or spec.samples != 1:
        raise NativePixelsError("RGB LIF images are left to Bio-Formats")
    found = (image.size_z, image.size_c, image.size_t, image.size_y, image.size_x)
    wanted = (spec.size_z, spec.size_c, spec.size_t, spec.size_y, spec.size_x)
    if found != wanted:
        raise NativePixelsError(f"LIF sizes ZCTYX {found} differ from Bio-Formats' {wanted}")
    if image.x_stride != itemsize or image.row_stride != image.size_x * itemsize:
        raise NativePixelsError("LIF planes are not contiguous rows of pixels")
    if any(b > 8 * itemsize for b in image.bits):
        raise NativePixelsError(f"LIF channel bit depths {image.bits} exceed {spec.dtype}")
    if min(image.c_offsets) < 0 or image.z_stride < 0 or image.t_stride < 0:
        raise NativePixelsError("negative LIF byte increments")
    last = (
        max(image.c_offsets)
        + (image.size_z - 1) * image.z_stride
        + (image.size_t - 1) * image.t_stride
        + image.size_y * image.row_stride
    )
    if last > image.nbytes:
        raise NativePixelsError(
            f"LIF planes would span {last} bytes, the memory block holds {image.nbytes}"
        )
    planes = LifPlanes(
        image.offset, image.row_stride, image.z_stride, image.t_stride, image.c_offsets
    )
    return NativeRecipe.of(spec, "lif", "lif", planes)


def describe(recipe: NativeRecipe) -> str:
    """How the plan maps planes."""
    return "byte offsets from the LIF header"


def _planes(recipe: NativeRecipe) -> LifPlanes:
    planes = recipe.layout
    assert isinstance(planes, LifPlanes)
    return planes


def _offset(recipe: NativeRecipe, index: Any) -> Any:
    """Byte offset of plane ``index`` (an int or an array of them)."""
    planes = _planes(recipe)
    z, c, t = plane_position(recipe.order, recipe.sizes, index)
    c_offsets = np.asarray(planes.c_offsets, np.int64)
    return planes.offset + c_offsets[c] + z * planes.z_stride + t * planes.t_stride


def spans(
    recipe: NativeRecipe, indices: Sequence[int], y: tuple[int, int]
) -> list[tuple[int, int]]:
    """``(offset, length)`` of the bytes holding rows ``y`` of the planes ``indices``."""
    offsets = _offset(recipe, np.asarray(indices, np.int64)) + y[0] * _planes(recipe).row_stride
    length = (y[1] - y[0] - 1) * _planes(recipe).row_stride + recipe.row_bytes
    return [(int(offset), length) for offset in offsets.tolist()]


def missing_planes(recipe: NativeRecipe) -> NDArray[np.intp]:
    """Plane indices whose bytes lie (partly) past the end of the file."""
    ends = (
        _offset(recipe, np.arange(recipe.count, dtype=np.int64))
        + (recipe.size_y - 1) * _planes(recipe).row_stride
        + recipe.row_bytes
    )
    return np.flatnonzero(ends > os.path.getsize(recipe.path))


def rows_in_file(recipe: NativeRecipe, index: int) -> int:
    """How many whole rows of plane ``index`` the (truncated) file still holds."""
    stride = _planes(recipe).row_stride or recipe.row_bytes
    left = os.path.getsize(recipe.path) - int(_offset(recipe, index))
    return max(0, min(recipe.size_y, left // stride))


def read_planes(recipe: NativeRecipe, out: NDArray[Any], planes: Planes, window: Window) -> None:
    """Read ``planes`` with ``preadv`` straight into ``out``: whole planes that follow each
    other in the file in one call, the others (or tiles) row by row."""
    y, x = window
    offsets = _offset(recipe, np.fromiter((i for i, _ in planes), np.int64, len(planes)))
    located = sorted(zip(offsets.tolist(), (at for _, at in planes), strict=True))
    row_bytes = recipe.row_bytes
    fd = os.open(recipe.path, os.O_RDONLY)
    try:
        if y == (0, recipe.size_y) and x == (0, recipe.size_x):
            located = read_runs(fd, out, located, recipe.size_y * row_bytes)
        for offset, at in located:  # partial planes, or what a run could not read
            try:
                read_rows(fd, out[at], offset, row_bytes, recipe.size_x, y, x)
            except OSError as exc:  # EOFError included: the file ends before the plane
                index = next(i for i, where in planes if where == at)
                raise plane_error(recipe, index, recipe.path, str(exc)) from None
    finally:
        os.close(fd)
    if recipe.swap:
        out.byteswap(inplace=True)
