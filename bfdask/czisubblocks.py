"""Map Bio-Formats' (series, plane index) of a Zeiss CZI to its subblocks, and read them.

A CZI's subblock directory (:func:`bfdask.czi.directory`) lists every subblock -- one plane or
tile of pixels -- with its coordinates (``Z``, ``C``, ``T``, scene ``S``, tile ``M``, ``X``,
``Y``...), pixel type and compression. Bio-Formats shows one series per scene and one plane per
(z, c, t). Where each plane of a scene is exactly **one** full-resolution subblock of
Bio-Formats' plane size, the plan keeps each plane's data position, size and compression; a
task reads raw planes with ``preadv`` straight into the block and decompresses zstd ones
(``imagecodecs``). :mod:`bfdask.pixels` verifies the plan against Bio-Formats before use.

Left to Bio-Formats (:class:`~bfdask.errors.NativePixelsError`): mosaics (several tiles per
plane, which Bio-Formats stitches), pyramid levels, RGB and other pixel types, JPEG, JPEG-XR
and LZW subblocks, and files whose directory or subblock headers are cut short or damaged
(Bio-Formats reads those, their damage warned and enforced as before: :mod:`bfdask.czi`).
No Java here.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from . import czi
from .errors import NativePixelsError
from .native import NativeRecipe, plane_error, read_rows

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .metadata import ImageSpec
    from .native import Planes, Window

#: CZI pixel types read natively -> numpy dtype (little-endian)
PIXEL_TYPES = {0: "uint8", 1: "uint16", 2: "float32", 12: "int32"}
#: compressions read natively: 0 raw, 5 zstd, 6 zstd with a small header (hi/lo byte packing)
COMPRESSIONS = {0: "raw", 5: "zstd", 6: "zstd1"}
#: dimensions a plan maps; any other must hold one value in the series
_MAPPED = ("X", "Y", "Z", "C", "T", "S", "M")


def _scene_entries(spec: ImageSpec, entries: list[czi.Entry]) -> list[czi.Entry]:
    """The full-resolution entries of the scene Bio-Formats shows as ``spec.series``."""
    full = [e for e in entries if all(size == stored for _, _, size, stored in e.dims)]
    scenes = sorted({e.dim("S")[0] for e in full})
    if spec.series >= len(scenes):
        raise NativePixelsError(
            f"series {spec.series} is not one of the CZI's {len(scenes)} scenes"
        )
    if len(scenes) > 1 and spec.series_count < len(scenes):
        raise NativePixelsError(f"{len(scenes)} scenes, {spec.series_count} series")
    return [e for e in full if e.dim("S")[0] == scenes[spec.series]]


def _plane_entries(
    spec: ImageSpec, scene: list[czi.Entry]
) -> dict[tuple[int, int, int], czi.Entry]:
    """(z, c, t) -> the one entry holding that plane; raises where it is not one subblock."""
    lows = {d: min(e.dim(d)[0] for e in scene) for d in "ZCT"}
    by_plane: dict[tuple[int, int, int], list[czi.Entry]] = defaultdict(list)
    for e in scene:
        by_plane[tuple(e.dim(d)[0] - lows[d] for d in "ZCT")].append(e)  # type: ignore[index]
    count = spec.size_z * spec.size_c * spec.size_t
    if len(by_plane) != count or any(len(group) > 1 for group in by_plane.values()):
        raise NativePixelsError(
            f"{len(scene)} subblocks for {count} planes: a mosaic (Bio-Formats stitches tiles)"
        )
    for dim in {d for e in scene for d, *_ in e.dims} - set(_MAPPED):
        if len({e.dim(dim)[0] for e in scene}) > 1:
            raise NativePixelsError(f"CZI dimension {dim!r} is not mapped")
    return {zct: group[0] for zct, group in by_plane.items()}


def plan(spec: ImageSpec) -> NativeRecipe:
    """The native recipe of a CZI series (see :meth:`bfdask.native.NativeFormat.plan`)."""
    if czi.damage_note(spec.path) is not None or czi.header_note(spec.path) is not None:
        raise NativePixelsError("its directory or subblock headers are damaged or cut short")
    if spec.samples != 1:
        raise NativePixelsError("RGB CZI subblocks are left to Bio-Formats")
    planes = _plane_entries(spec, _scene_entries(spec, czi.directory(spec.path)))
    layout = []
    numbering = NativeRecipe.of(spec, "czisubblocks", "czi")  # Bio-Formats' plane order
    with open(spec.path, "rb") as f:
        for index in range(numbering.count):
            z, c, t = numbering.zct(index)
            if (z, c, t) not in planes:
                raise NativePixelsError(f"no subblock for plane (z={z}, c={c}, t={t})")
            entry = planes[(z, c, t)]
            if PIXEL_TYPES.get(entry.pixel_type) != spec.dtype:
                raise NativePixelsError(f"CZI pixel type {entry.pixel_type} for {spec.dtype}")
            if entry.compression not in COMPRESSIONS:
                raise NativePixelsError(f"CZI compression {entry.compression} is not read")
            if (
                entry.dim("X")[1:] != (spec.size_x,) * 2
                or entry.dim("Y")[1:] != (spec.size_y,) * 2
            ):
                raise NativePixelsError("a subblock is not the plane's size")
            if entry.compression and not _have_zstd():
                raise NativePixelsError(
                    "zstd subblocks need imagecodecs (pip install imagecodecs)"
                )
            offset, nbytes = czi.data_span(f, entry)
            layout.append((offset, nbytes, entry.compression))
    return NativeRecipe.of(spec, "czisubblocks", "czi", layout=tuple(layout))


def _have_zstd() -> bool:
    import importlib.util

    return importlib.util.find_spec("imagecodecs") is not None


def describe(recipe: NativeRecipe) -> str:
    """How the plan maps planes."""
    kinds = sorted({COMPRESSIONS[c] for _, _, c in _layout(recipe)})
    return f"CZI subblocks, one per plane ({', '.join(kinds)})"


def _layout(recipe: NativeRecipe) -> tuple[tuple[int, int, int], ...]:
    return recipe.layout  # type: ignore[return-value]


def missing_planes(recipe: NativeRecipe) -> NDArray[np.intp]:
    """Plane indices whose subblock data runs past the end of the file."""
    size = os.path.getsize(recipe.path)
    ends = np.array([offset + nbytes for offset, nbytes, _ in _layout(recipe)], np.int64)
    return np.flatnonzero(ends > size)


def rows_in_file(recipe: NativeRecipe, index: int) -> int:
    """Whole rows of a raw plane still in a truncated file (0 for a compressed one)."""
    offset, _, compression = _layout(recipe)[index]
    if compression:
        return 0
    left = os.path.getsize(recipe.path) - offset
    return max(0, min(recipe.size_y, left // recipe.row_bytes))


def _decode_into(plane: NDArray[Any], data: bytes, compression: int) -> None:
    """Decompress a zstd subblock into ``plane`` (a whole ``(Y, X)`` plane, contiguous);
    raises ``ValueError`` if it does not decode to exactly the plane's bytes."""
    import imagecodecs

    hilo = False
    if compression == 6:  # a header: its size, then (size 3) a chunk type and the hi/lo flag
        size = data[0]
        hilo = size == 3 and data[1] == 1 and bool(data[2] & 1)
        data = data[size:]
    target = plane.reshape(-1).view(np.uint8)
    # one byte more than the plane: a stream that decodes longer shows it
    scratch = np.empty(target.size + 1, np.uint8)
    decoded = np.frombuffer(imagecodecs.zstd_decode(data, out=scratch.data), np.uint8)
    if decoded.size != target.size:
        raise ValueError(f"it decodes to {decoded.size} bytes, not the plane's {target.size}")
    if hilo and plane.itemsize == 2:  # all low bytes first, then all high bytes
        half = target.size // 2
        high = decoded[half:].astype(np.uint16) << 8  # little-endian words, as raw planes
        np.bitwise_or(decoded[:half], high, out=target.view("<u2"))
    elif hilo:
        raise ValueError(f"hi/lo byte packing of {plane.itemsize}-byte samples")
    else:
        target[:] = decoded


def read_planes(recipe: NativeRecipe, out: NDArray[Any], planes: Planes, window: Window) -> None:
    """Read ``planes`` in file order: raw ones with ``preadv`` into ``out``, zstd ones decoded."""
    y, x = window
    layout = _layout(recipe)
    shape = (recipe.size_y, recipe.size_x)
    fd = os.open(recipe.path, os.O_RDONLY)
    try:
        for index, at in sorted(planes, key=lambda plane: layout[plane[0]][0]):
            offset, nbytes, compression = layout[index]
            try:
                if compression == 0:
                    read_rows(fd, out[at], offset, recipe.row_bytes, recipe.size_x, y, x)
                    if recipe.swap:
                        out[at].byteswap(inplace=True)
                    continue
                data = os.pread(fd, nbytes, offset)
                if len(data) != nbytes:
                    raise EOFError(f"{nbytes - len(data)} bytes of its subblock are missing")
                whole = out[at].flags.c_contiguous and out[at].shape[:2] == shape
                plane = out[at] if whole else np.empty(shape, out.dtype)
                _decode_into(plane, data, compression)  # little-endian: swap as raw planes
                if recipe.swap:
                    plane.byteswap(inplace=True)
                if not whole:
                    out[at] = plane[y[0] : y[1], x[0] : x[1]]
            except Exception as exc:  # a short file, a zstd stream that does not decode
                problem = f"subblock at byte {offset}: {type(exc).__name__}: {exc}"
                raise plane_error(recipe, index, recipe.path, problem, damaged=True) from None
    finally:
        os.close(fd)
