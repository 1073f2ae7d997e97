"""Native pixel readers: one small protocol, one module per format, no Java.

Bio-Formats stays the authority on what a file contains (series, sizes, dimension order, plane
index: the :class:`~bfdask.metadata.ImageSpec`). For some formats bfdask can then read the
pixels of a plane itself, from the file's own structure: a Leica LIF (:mod:`bfdask.lif`) and
the TIFF family (:mod:`bfdask.tiff`). Each such format is one module implementing
:class:`NativeFormat` -- plan a series from its spec, say which planes lie past the end of the
file, read planes into a block -- and one line in :data:`READERS`. :mod:`bfdask.pixels`
verifies a plan against Bio-Formats before any task uses it.

A task on the native path (:func:`read_block`) touches no Java: a worker that runs only such
tasks never starts a JVM. Its recipe (:class:`NativeRecipe`) is a few plain values; the file's
stamp taken at open is checked before and after every read.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from . import files, malloc
from .errors import BfdaskError, CorruptFileError, NativePixelsError
from .order import plane_index, plane_position

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .files import FileStamp
    from .metadata import ImageSpec

#: Bio-Formats format name -> the module (in this package) that reads it natively
READERS = {
    "Leica Image File Format": "lif",
    "Nikon ND2": "nd2frames",
    "Zeiss CZI": "czisubblocks",
    "OME-TIFF": "tiff",
    "Tagged Image File Format": "tiff",
}

#: a plane to read: (its Bio-Formats index, its (t, c, z) position in the output block)
Plane = tuple[int, tuple[int, int, int]]
Planes = Sequence[Plane]
#: the part of each plane to read: rows ``(y0, y1)``, columns ``(x0, x1)``
Window = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class NativeRecipe:
    """What a task needs to read any block of one series without Java (plain values).

    ``reader`` names the format's module (:data:`READERS`), ``kind`` the variant it planned
    (``"lif"``, ``"ome-tiff"``, ``"tiff"``), ``layout`` that module's own plain values (e.g.
    a LIF's byte offsets and strides; None where the module rebuilds its table per process).
    """

    reader: str
    kind: str
    path: str
    stamp: FileStamp | None
    series: int
    order: str  # Bio-Formats' dimension order, e.g. "XYCZT"
    size_z: int
    size_c: int  # effective channels
    size_t: int
    size_y: int
    size_x: int
    samples: int
    dtype: str
    little_endian: bool
    layout: Hashable = None

    @classmethod
    def of(cls, spec: ImageSpec, reader: str, kind: str, layout: Hashable = None) -> NativeRecipe:
        """The recipe of ``spec`` for the module ``reader``."""
        same = ("path", "stamp", "series", "samples", "dtype", "little_endian")
        sizes = {f"size_{d}": getattr(spec, f"size_{d}") for d in "zctyx"}
        return cls(
            reader=reader,
            kind=kind,
            order=spec.dimension_order,
            layout=layout,
            **sizes,
            **{name: getattr(spec, name) for name in same},
        )

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def sizes(self) -> dict[str, int]:
        """``{"Z": ..., "C": ..., "T": ...}``."""
        return {"Z": self.size_z, "C": self.size_c, "T": self.size_t}

    @property
    def count(self) -> int:
        """Number of planes of the series."""
        return self.size_z * self.size_c * self.size_t

    @property
    def row_bytes(self) -> int:
        """Bytes of one row of pixels (all samples)."""
        return self.size_x * self.samples * self.itemsize

    @property
    def swap(self) -> bool:
        """Whether the file's byte order differs from this machine's."""
        return self.itemsize > 1 and self.little_endian != (np.little_endian)

    def plane_index(self, z: int, c: int, t: int) -> int:
        """Bio-Formats' plane index of (z, c, t)."""
        return plane_index(self.order, self.sizes, z, c, t)

    def zct(self, index: int) -> tuple[int, int, int]:
        """(z, c, t) of Bio-Formats' plane ``index``."""
        z, c, t = plane_position(self.order, self.sizes, index)
        return z, c, t


class NativeFormat(Protocol):
    """What a native format module provides (e.g. :mod:`bfdask.lif`)."""

    def plan(self, spec: ImageSpec) -> NativeRecipe:
        """A recipe for ``spec``, not yet verified.

        Raises :class:`~bfdask.errors.NativePixelsError` for a layout the module does not map
        (Bio-Formats then reads it) and :class:`~bfdask.errors.CorruptFileError` for a damaged
        structure (never papered over).
        """

    def describe(self, recipe: NativeRecipe) -> str:
        """How the plan maps planes, in a few words (for ``attrs["pixels_reason"]``)."""

    def missing_planes(self, recipe: NativeRecipe) -> NDArray[np.integer[Any]]:
        """Plane indices whose bytes lie (partly) past the end of their file."""

    def rows_in_file(self, recipe: NativeRecipe, index: int) -> int:
        """How many whole rows of plane ``index`` a truncated file still holds."""

    def read_planes(
        self, recipe: NativeRecipe, out: NDArray[Any], planes: Planes, window: Window
    ) -> None:
        """Read ``planes`` (the rows and columns of ``window``) into ``out``, shaped
        ``(T, C, Z, Y, X[, S])``, in native byte order; a plane that cannot be read raises
        :func:`plane_error`."""


def reader(name: str) -> NativeFormat:
    """The module named ``name`` (a value of :data:`READERS`) as a :class:`NativeFormat`."""
    return cast("NativeFormat", importlib.import_module(f"{__package__}.{name}"))


def plan(spec: ImageSpec) -> NativeRecipe:
    """A native recipe for ``spec``, not yet verified (see :meth:`NativeFormat.plan`).

    Raises
    ------
    NativePixelsError
        No native reader for this format, resolution or pixel type, or a layout not mapped.
    CorruptFileError
        The file's structure is damaged (or does not parse): no plan, and the damage must not
        be papered over.
    """
    name = READERS.get(spec.format)
    if name is None:
        raise NativePixelsError(f"no native reader for format {spec.format!r}")
    if spec.resolution != 0:
        raise NativePixelsError("only resolution 0 has a native plan")
    if spec.dtype == "bool":
        raise NativePixelsError("1-bit pixels are left to Bio-Formats")
    try:
        return reader(name).plan(spec)
    except BfdaskError:  # no plan for this layout, damage, a file outside the dataset...
        raise
    except Exception as exc:  # tifffile, struct, XML... on a structure that does not parse
        raise CorruptFileError(
            f"bfdask cannot read the structure of {spec.path!r} ({type(exc).__name__}: {exc})"
        ) from None


# -- reading --------------------------------------------------------------------------------


class DamagedPlaneError(CorruptFileError):
    """A plane whose data the file's own structure shows damaged (a strip that does not
    decode to its size): damage, whatever Bio-Formats makes of the same bytes."""


def plane_error(
    recipe: NativeRecipe, index: int, path: str, problem: str, *, damaged: bool = False
) -> CorruptFileError:
    """The error for a plane that cannot be read, worded as Bio-Formats' errors are
    (a :class:`DamagedPlaneError` when ``damaged``: the data itself is shown broken)."""
    kind = DamagedPlaneError if damaged else CorruptFileError
    return kind(
        f"Reading plane {index} of series {recipe.series} of {path!r} failed: {problem}. "
        "The file may be truncated or damaged; check it opens in Fiji/showinf."
    )


def pread_into(fd: int, target: NDArray[Any], offset: int) -> None:
    """Fill ``target`` (contiguous) with the file's bytes from ``offset``; EOFError if short."""
    view = target.data.cast("B")  # target.data: memoryview(target)
    done = os.preadv(fd, [view], offset)
    while 0 < done < len(view):  # a short read (rare): go on from where it stopped
        step = os.preadv(fd, [view[done:]], offset + done)
        if step <= 0:
            break
        done += step
    if done != len(view):
        raise EOFError(f"the file ends before byte {offset + len(view)} of this plane")


def read_runs(
    fd: int, out: NDArray[Any], planes: list[tuple[int, Any]], plane_bytes: int
) -> list[tuple[int, Any]]:
    """Read whole planes ``(file offset, where in out)`` that follow each other in the file
    with one ``preadv`` per run (one buffer per plane, up to IOV_MAX of them). Returns the
    planes of runs that came back short (to be read one by one, naming the plane that fails)."""
    left: list[tuple[int, Any]] = []
    limit = min(1024, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024)
    start = 0
    while start < len(planes):
        stop = start + 1
        while (
            stop < len(planes)
            and stop - start < limit
            and planes[stop][0] == planes[stop - 1][0] + plane_bytes
        ):
            stop += 1
        run = planes[start:stop]
        views = [memoryview(out[at]).cast("B") for _, at in run]
        if os.preadv(fd, views, run[0][0]) != plane_bytes * len(run):
            left.extend(run)
        start = stop
    return left


def read_rows(
    fd: int,
    out: NDArray[Any],
    plane_offset: int,
    row_bytes: int,
    full_x: int,
    y: tuple[int, int],
    x: tuple[int, int],
) -> None:
    """Rows ``y`` (all columns on disk) of a plane at ``plane_offset`` into ``out``
    (``(h, w[, S])``)."""
    start = plane_offset + y[0] * row_bytes
    if x == (0, full_x):
        pread_into(fd, out, start)
        return
    rows = np.empty((y[1] - y[0], full_x, *out.shape[2:]), out.dtype)
    pread_into(fd, rows, start)
    out[...] = rows[:, x[0] : x[1]]


def prefetch(
    recipe: NativeRecipe,
    t: tuple[int, int],
    c: tuple[int, int],
    z: tuple[int, int],
    y: tuple[int, int],
) -> None:
    """Ask the kernel to start reading the bytes of a block now (``POSIX_FADV_WILLNEED``),
    for formats whose module says where they lie (``spans``, e.g. :mod:`bfdask.lif`).

    A task folding a Z stack reads it plane by plane; cold, each read would wait for the disk
    in turn. Told the whole block at once, the disk works on every plane of it (and of the
    other threads' blocks) while the task folds the first ones in. Pages already cached cost
    a lookup; nothing is read into this process, and a platform without ``posix_fadvise`` or
    a file that cannot be opened is left to the read itself to report.
    """
    spans = getattr(reader(recipe.reader), "spans", None)
    if spans is None or not hasattr(os, "posix_fadvise"):
        return
    indices = [
        recipe.plane_index(zi, ci, ti) for ti in range(*t) for ci in range(*c) for zi in range(*z)
    ]
    if len(indices) < 2:
        return
    try:
        fd = os.open(recipe.path, os.O_RDONLY)
    except OSError:
        return
    try:
        merged = _merged(spans(recipe, indices, y))
        if _cached(fd, merged[-1][0] + merged[-1][1] - 1):
            return  # the block's last byte is in the page cache: the block is, most likely
        for offset, length in merged:
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
    except OSError:  # advice only
        pass
    finally:
        os.close(fd)


def _cached(fd: int, offset: int) -> bool:
    """Whether the byte at ``offset`` is in the page cache: a read the kernel may only answer
    from its cache (``RWF_NOWAIT``). False where that cannot be asked."""
    flag = getattr(os, "RWF_NOWAIT", None)
    if flag is None:
        return False
    try:
        return os.preadv(fd, [bytearray(1)], offset, flag) == 1
    except OSError:  # EAGAIN: not cached; EOPNOTSUPP: a file system that cannot say
        return False


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(offset, length)`` spans sorted, those that touch or overlap joined (whole planes
    that follow each other in the file become one request)."""
    out: list[list[int]] = []
    for offset, length in sorted(spans):
        if out and offset <= out[-1][0] + out[-1][1]:
            out[-1][1] = max(out[-1][1], offset + length - out[-1][0])
        else:
            out.append([offset, length])
    return [(offset, length) for offset, length in out]


def read_block(
    recipe: NativeRecipe,
    t: tuple[int, int],
    c: tuple[int, int],
    z: tuple[int, int],
    y: tuple[int, int],
    x: tuple[int, int],
    *,
    count: bool = True,
    out: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """Pixels ``[t0:t1, c0:c1, z0:z1, y0:y1, x0:x1]`` of the series, without Java.

    Returns an array of shape ``(T, C, Z, Y, X[, S])`` in native byte order, as
    :func:`bfdask.readers.read_block` does: ``out`` when given (a C-contiguous array of that
    shape and the pixels' dtype, reused from block to block), else a new one. ``count=False``
    (verification) leaves :func:`bfdask.files.planes_read` alone, which counts the planes
    tasks read.

    Raises
    ------
    FileChangedError, FileNotFoundError
        The file is not the one opened (changed, replaced, deleted).
    CorruptFileError
        A plane's bytes are not in the file, or do not decode.
    """
    malloc.tune_for_planes()  # once per process: a worker of native tasks starts no JVM
    files.check_unchanged(recipe.path, recipe.stamp)
    shape: tuple[int, ...] = (t[1] - t[0], c[1] - c[0], z[1] - z[0], y[1] - y[0], x[1] - x[0])
    if recipe.samples > 1:
        shape = (*shape, recipe.samples)
    if out is None:
        out = np.empty(shape, np.dtype(recipe.dtype))
    elif out.shape != shape or out.dtype != np.dtype(recipe.dtype) or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {recipe.dtype} array of shape {shape}")
    if out.size == 0:
        return out
    planes = [
        (recipe.plane_index(zi, ci, ti), (ti - t[0], ci - c[0], zi - z[0]))
        for ti in range(*t)
        for ci in range(*c)
        for zi in range(*z)
    ]
    reader(recipe.reader).read_planes(recipe, out, planes, (y, x))
    files.check_unchanged(recipe.path, recipe.stamp)  # changed while we read: may be mixed
    if count:
        files.count_planes(len(planes))
    return out
