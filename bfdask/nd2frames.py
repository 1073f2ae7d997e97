"""Map Bio-Formats' (series, plane index) of a Nikon ND2 file to its frames, read by ``nd2``.

An ND2 file (version 2 and 3) stores one *frame* per point of its experiment's loops -- time
(``T``), XY positions (``P``), Z -- in the loops' nesting order, each frame holding every
channel of one (t, p, z) interleaved. Bio-Formats shows one series per position and one plane
per (z, c, t). The plan keeps the loops' order and sizes; a plane is channel ``c`` of frame
``ravel(t, p, z)``, read through the ``nd2`` package (memory-mapped frames; it decompresses
lossless frames). :mod:`bfdask.pixels` verifies the plan against Bio-Formats before use.

Left to Bio-Formats (:class:`~bfdask.errors.NativePixelsError`): legacy (JPEG 2000) files, RGB
frames, loops other than T, P and Z, loops whose frames are not in one nesting order, a file
whose chunk map is not whole (cut short: Bio-Formats reads it, and its missing planes raise),
and any difference between ``nd2``'s sizes and Bio-Formats'. No Java here.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from . import handles, nd2check
from .errors import NativePixelsError
from .native import NativeRecipe, plane_error

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .metadata import ImageSpec
    from .native import Planes, Window

#: the loops a plan maps, as ``nd2`` names their axes
LOOPS = ("T", "P", "Z")


def _open(path: str) -> Any:
    try:
        import nd2
    except ImportError:
        raise NativePixelsError("the nd2 package is not installed (pip install nd2)") from None
    return nd2.ND2File(path)


def _loops(file: Any) -> tuple[tuple[str, int], ...]:
    """The file's loops, outermost first, as ``(axis, size)``; raises for what is not mapped."""
    sizes = {str(axis): int(size) for axis, size in file.sizes.items()}
    loops = tuple((axis, size) for axis, size in sizes.items() if axis not in ("C", "Y", "X"))
    other = [axis for axis, _ in loops if axis not in LOOPS]
    if other:
        raise NativePixelsError(f"ND2 loops {other} are not mapped (only T, P and Z)")
    count = math.prod(size for _, size in loops)
    indices = file.loop_indices
    if len(indices) != count:
        raise NativePixelsError(f"{len(indices)} frames for loops {dict(loops)}")
    shape = [size for _, size in loops]
    for seq, where in enumerate(indices):  # every frame where the nesting order puts it
        if loops and int(np.ravel_multi_index([where.get(a, 0) for a, _ in loops], shape)) != seq:
            raise NativePixelsError("the ND2's frames are not in one nesting order of its loops")
    return loops


def plan(spec: ImageSpec) -> NativeRecipe:
    """The native recipe of an ND2 series (see :meth:`bfdask.native.NativeFormat.plan`)."""
    if nd2check.inspect(spec.path) is not None:
        raise NativePixelsError("its chunk map is not whole (the file is cut short)")
    if spec.samples != 1:
        raise NativePixelsError("RGB ND2 frames are left to Bio-Formats")
    with _open(spec.path) as file:
        if file.is_legacy:
            raise NativePixelsError("a legacy (JPEG 2000) ND2 file")
        if file.is_rgb:
            raise NativePixelsError("RGB ND2 frames are left to Bio-Formats")
        loops = _loops(file)
        sizes = dict(file.sizes)
        dtype = np.dtype(file.dtype)
    ours = (sizes.get("P", 1), sizes.get("T", 1), sizes.get("C", 1), sizes.get("Z", 1))
    theirs = (spec.series_count, spec.size_t, spec.size_c, spec.size_z)
    if ours != theirs or (sizes["Y"], sizes["X"]) != (spec.size_y, spec.size_x):
        raise NativePixelsError(
            f"nd2 sees positions, T, C, Z {ours} and {sizes['Y']} x {sizes['X']} pixels; "
            f"Bio-Formats {theirs} and {spec.size_y} x {spec.size_x}"
        )
    if dtype != np.dtype(spec.dtype):
        raise NativePixelsError(f"nd2 reads {dtype}, Bio-Formats {spec.dtype}")
    return NativeRecipe.of(spec, "nd2frames", "nd2", layout=loops)


def describe(recipe: NativeRecipe) -> str:
    """How the plan maps planes."""
    return "ND2 frames through nd2 (one per time, position and Z)"


def _strides(recipe: NativeRecipe) -> tuple[int, int, int]:
    """Frames between consecutive (t, position, z) in the loops' row-major order."""
    loops: tuple[tuple[str, int], ...] = recipe.layout  # type: ignore[assignment]
    strides = {"T": 0, "P": 0, "Z": 0}
    step = 1
    for axis, size in reversed(loops):  # the innermost loop varies fastest
        strides[axis] = step
        step *= size
    return strides["T"], strides["P"], strides["Z"]


def frame_of(recipe: NativeRecipe, index: int) -> tuple[int, int]:
    """(frame number, channel) of Bio-Formats' plane ``index``."""
    z, c, t = recipe.zct(index)
    per_t, per_p, per_z = _strides(recipe)
    return t * per_t + recipe.series * per_p + z * per_z, c


def missing_planes(recipe: NativeRecipe) -> NDArray[np.intp]:
    """Plane indices whose frame the chunk map lists past the end of the file, or not at all."""
    chunks = nd2check.chunk_map(recipe.path)
    size = os.path.getsize(recipe.path)
    missing = []
    for index in range(recipe.count):
        seq, _ = frame_of(recipe, index)
        position, length = chunks.get(f"ImageDataSeq|{seq}!".encode(), (size, 1))
        if position + length > size:
            missing.append(index)
    return np.asarray(missing, np.intp)


def rows_in_file(recipe: NativeRecipe, index: int) -> int:
    """0: a frame cut short is not read in part."""
    return 0


def _file(recipe: NativeRecipe) -> Any:
    """The calling thread's open ``nd2.ND2File``, from the process's one handle cache."""
    key = ("nd2", recipe.path, recipe.stamp)
    file = handles.get(key)
    if file is None:
        file = handles.put(key, _open(recipe.path))
    return file


def read_planes(recipe: NativeRecipe, out: NDArray[Any], planes: Planes, window: Window) -> None:
    """Read ``planes``: each frame once (in file order), every channel the block wants."""
    (y0, y1), (x0, x1) = window
    by_frame: dict[int, list[tuple[int, int, tuple[int, int, int]]]] = {}
    per_t, per_p, per_z = _strides(recipe)
    first = recipe.series * per_p
    for index, at in planes:
        z, c, t = recipe.zct(index)
        by_frame.setdefault(first + t * per_t + z * per_z, []).append((index, c, at))
    file = _file(recipe)
    for seq in sorted(by_frame):
        try:
            frame = np.asarray(file.read_frame(seq))
        except Exception as exc:  # a frame nd2 cannot read or decompress
            index = by_frame[seq][0][0]
            problem = f"frame {seq}: {type(exc).__name__}: {exc}"
            raise plane_error(recipe, index, recipe.path, problem) from None
        if frame.ndim == 2:  # one channel
            frame = frame[np.newaxis]
        for _, c, at in by_frame[seq]:
            out[at] = frame[c, y0:y1, x0:x1]
