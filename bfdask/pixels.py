"""Where a series' pixels come from: a verified native plan, or Bio-Formats.

Bio-Formats stays the authority on what a file contains (series, sizes, dimension order, plane
index). For a Leica LIF (:mod:`bfdask.lif`) and the TIFF family (:mod:`bfdask.tiff`) the
pixels of a plane can be read without Java: from byte offsets in the file (``os.preadv``
straight into the output block) or through tifffile. At open, :func:`choose` builds such a plan
for the series and **verifies** it: a few planes (first, last and some chosen at random) read
both ways must be byte for byte identical. Any mismatch, unsupported layout or error sends the
series to Bio-Formats (``pixels="auto"``, the reason is logged and kept in the DataArray's
attrs) or raises :class:`~bfdask.errors.NativePixelsError` (``pixels="native"``).

A task on the native path (:func:`read_block`) touches no Java: a worker that runs only such
tasks never starts a JVM. Its recipe (:class:`NativeRecipe`) is a few numbers; a TIFF page table
is rebuilt once per worker process from the file and cached there, never sent with the tasks.
The file's (size, mtime) stamp taken at open is checked before and after every read.
"""

from __future__ import annotations

import logging
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import config, files, mrc, readers
from .damage import Damage, runs
from .errors import CorruptFileError, CorruptFileWarning, NativePixelsError, TruncatedFileWarning
from .files import FileStamp
from .metadata import ImageSpec

log = logging.getLogger(__name__)

MODES = ("auto", "bioformats", "native")

#: planes compared with Bio-Formats besides the first and the last
RANDOM_PLANES = 3
#: at most this many bytes of each verified plane are compared (rows from the top)
VERIFY_BYTES = 32 << 20

LIF_FORMAT = "Leica Image File Format"
TIFF_FORMATS = ("OME-TIFF", "Tagged Image File Format")


@dataclass(frozen=True)
class NativeRecipe:
    """What a task needs to read any block of one series without Java (plain values).

    ``kind`` is ``"lif"`` (byte offsets: ``offset + c_offsets[c] + z * z_stride + t *
    t_stride``, rows ``row_stride`` apart) or ``"ome-tiff"`` / ``"tiff"`` (a page table,
    rebuilt once per process by :func:`bfdask.tiff.page_table` from these fields).
    """

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
    offset: int = 0
    row_stride: int = 0
    z_stride: int = 0
    t_stride: int = 0
    c_offsets: tuple[int, ...] = field(default=())

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    def plane_index(self, z: int, c: int, t: int) -> int:
        """Bio-Formats' plane index of (z, c, t) (rasterised by the dimension order)."""
        position = {"Z": z, "C": c, "T": t}
        sizes = {"Z": self.size_z, "C": self.size_c, "T": self.size_t}
        index, stride = 0, 1
        for dim in self.order[2:]:
            index += position[dim] * stride
            stride *= sizes[dim]
        return index

    def zct(self, index: int) -> tuple[int, int, int]:
        """(z, c, t) of Bio-Formats' plane ``index`` (the inverse of :meth:`plane_index`)."""
        sizes = {"Z": self.size_z, "C": self.size_c, "T": self.size_t}
        position = {}
        for dim in self.order[2:]:
            index, position[dim] = divmod(index, sizes[dim])
        return position["Z"], position["C"], position["T"]


@dataclass(frozen=True)
class Choice:
    """The pixel source chosen for one series: ``recipe`` None means Bio-Formats."""

    recipe: NativeRecipe | None
    reason: str
    verify_seconds: float = 0.0
    damage: Damage = field(default_factory=Damage)  # found at open; enforced on both paths

    @property
    def source(self) -> str:
        """``"native"`` or ``"bioformats"``."""
        return "bioformats" if self.recipe is None else "native"


def resolve_mode(pixels: str | None) -> str:
    """The pixel mode from the keyword, ``BFDASK_PIXELS`` or dask config ``bfdask.pixels``."""
    mode = str(config.get("bfdask.pixels", pixels) or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"pixels={mode!r} must be one of {', '.join(map(repr, MODES))}")
    return mode


# -- building a plan --------------------------------------------------------------------------


def _base(spec: ImageSpec, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "path": spec.path,
        "stamp": spec.stamp,
        "series": spec.series,
        "order": spec.dimension_order,
        "size_z": spec.size_z,
        "size_c": spec.size_c,
        "size_t": spec.size_t,
        "size_y": spec.size_y,
        "size_x": spec.size_x,
        "samples": spec.samples,
        "dtype": spec.dtype,
        "little_endian": spec.little_endian,
    }


def _lif_recipe(spec: ImageSpec) -> NativeRecipe:
    from . import lif

    images = lif.layout(spec.path, spec.stamp)
    if len(images) != spec.series_count:
        raise NativePixelsError(
            f"the LIF header lists {len(images)} images with data, "
            f"Bio-Formats {spec.series_count} series"
        )
    image = images[spec.series]
    if image.unsupported:
        raise NativePixelsError(image.unsupported)
    itemsize = np.dtype(spec.dtype).itemsize
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
    plane = image.size_y * image.row_stride
    last = (
        max(image.c_offsets)
        + (image.size_z - 1) * image.z_stride
        + (image.size_t - 1) * image.t_stride
        + plane
    )
    if min(image.c_offsets) < 0 or image.z_stride < 0 or image.t_stride < 0:
        raise NativePixelsError("negative LIF byte increments")
    if last > image.nbytes:
        raise NativePixelsError(
            f"LIF planes would span {last} bytes, the memory block holds {image.nbytes}"
        )
    return NativeRecipe(
        **_base(spec, "lif"),
        offset=image.offset,
        row_stride=image.row_stride,
        z_stride=image.z_stride,
        t_stride=image.t_stride,
        c_offsets=image.c_offsets,
    )


def _tiff_table(recipe: NativeRecipe) -> Any:
    from . import tiff

    return tiff.page_table(
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


def _tiff_recipe(spec: ImageSpec) -> NativeRecipe:
    kind = "ome-tiff" if spec.format == "OME-TIFF" else "tiff"
    recipe = NativeRecipe(**_base(spec, kind))
    table = _tiff_table(recipe)  # raises if there is none
    if table.big_endian == spec.little_endian and spec.itemsize > 1:
        raise NativePixelsError("the TIFF's byte order differs from Bio-Formats'")
    return recipe


def build_recipe(spec: ImageSpec) -> NativeRecipe:
    """A native recipe for ``spec``, not yet verified.

    Raises
    ------
    NativePixelsError
        The series has no native plan (a layout or format not mapped); the message says why.
    CorruptFileError
        The file's structure is damaged (or cannot be read for another reason): no plan, and
        the damage must not be papered over.
    """
    from .lif import LifLayoutError
    from .tiff import TiffLayoutError

    if spec.resolution != 0:
        raise NativePixelsError("only resolution 0 has a native plan")
    if spec.dtype == "bool":
        raise NativePixelsError("1-bit pixels are left to Bio-Formats")
    try:
        if spec.format == LIF_FORMAT:
            return _lif_recipe(spec)
        if spec.format in TIFF_FORMATS:
            return _tiff_recipe(spec)
    except (NativePixelsError, CorruptFileError):
        raise
    except (LifLayoutError, TiffLayoutError) as exc:  # a layout not mapped: Bio-Formats reads
        raise NativePixelsError(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # tifffile, struct, XML... on a structure that does not parse
        raise CorruptFileError(
            f"bfdask cannot read the structure of {spec.path!r} ({type(exc).__name__}: {exc})"
        ) from None
    raise NativePixelsError(f"no native reader for format {spec.format!r}")


# -- verification ---------------------------------------------------------------------------


def verify_planes(recipe: NativeRecipe) -> list[int]:
    """The plane indices compared with Bio-Formats: first, last, a few at random (seeded)."""
    count = recipe.size_z * recipe.size_c * recipe.size_t
    chosen = {0, count - 1}
    rng = random.Random(f"{recipe.path}:{recipe.series}")
    others = range(1, count - 1)
    chosen.update(rng.sample(others, min(RANDOM_PLANES, len(others))))
    return sorted(chosen)


def missing_planes(recipe: NativeRecipe) -> np.ndarray:
    """Bio-Formats plane indices whose bytes, by the plan, lie (partly) past the end of their
    file: the file is truncated there (or its offsets are damaged). TIFF pages count by their
    strips or tiles, compressed or not."""
    count = recipe.size_z * recipe.size_c * recipe.size_t
    if recipe.kind == "lif":
        index = np.arange(count, dtype=np.int64)
        sizes = {"Z": recipe.size_z, "C": recipe.size_c, "T": recipe.size_t}
        position: dict[str, np.ndarray] = {}
        for dim in recipe.order[2:]:
            index, position[dim] = np.divmod(index, sizes[dim])
        row_bytes = recipe.size_x * recipe.samples * recipe.itemsize
        ends = (
            recipe.offset
            + np.asarray(recipe.c_offsets, np.int64)[position["C"]]
            + position["Z"] * recipe.z_stride
            + position["T"] * recipe.t_stride
            + (recipe.size_y - 1) * recipe.row_stride
            + row_bytes
        )
        return np.flatnonzero(ends > os.path.getsize(recipe.path))
    table = _tiff_table(recipe)
    sizes_on_disk = np.array([os.path.getsize(name) for name in table.files], np.int64)
    return np.flatnonzero(table.end > sizes_on_disk[table.file])


def _rows_in_file(recipe: NativeRecipe, index: int) -> int:
    """How many whole rows of plane ``index`` the (truncated) file still holds."""
    z, c, t = recipe.zct(index)
    row_bytes = recipe.size_x * recipe.samples * recipe.itemsize
    if recipe.kind == "lif":
        start = recipe.offset + recipe.c_offsets[c] + z * recipe.z_stride + t * recipe.t_stride
        name, stride = recipe.path, recipe.row_stride or row_bytes
    else:
        table = _tiff_table(recipe)
        start, name, stride = int(table.offset[index]), table.files[table.file[index]], row_bytes
    if start < 0:
        return 0
    return max(0, min(recipe.size_y, (os.path.getsize(name) - start) // stride))


@dataclass
class Verdict:
    """What comparing a few planes both ways found (:func:`verify`)."""

    mismatch: str | None = None  # the plan and Bio-Formats disagree: the plan is not used
    compared: int = 0  # planes read both ways and found identical
    damaged: list[int] = field(default_factory=list)  # planes neither path can read
    notes: list[str] = field(default_factory=list)  # what the damaged planes showed


def _compare(spec: ImageSpec, recipe: NativeRecipe, index: int, y: tuple[int, int]) -> Verdict:
    """Read plane ``index`` (rows ``y``) through Bio-Formats and natively, and compare."""
    z, c, t = recipe.zct(index)
    reader = readers.get_reader(spec.path, spec.series, spec.resolution)
    if reader.plane_index(z, c, t) != index:
        return Verdict(f"plane {index}: Bio-Formats' index of (z={z}, c={c}, t={t}) differs")
    expected: np.ndarray | None = None
    java_error: CorruptFileError | None = None
    try:
        expected = reader.read_plane(
            index,
            y,
            (0, spec.size_x),
            np.dtype(spec.dtype),
            spec.little_endian,
            spec.samples,
            spec.interleaved,
        )
    except CorruptFileError as exc:
        java_error = exc
    try:
        got = read_block(
            recipe, (t, t + 1), (c, c + 1), (z, z + 1), y, (0, spec.size_x), count=False
        )[0, 0, 0]
    except CorruptFileError as exc:  # the file's bytes for this plane are not there or broken
        if expected is not None and expected.any():  # Bio-Formats reads real pixels there
            return Verdict(f"plane {index}: bfdask cannot read it ({exc}), Bio-Formats can")
        how = "fails too" if java_error is not None else "pads it with zeros"
        return Verdict(
            damaged=[index], notes=[f"plane {index} is damaged ({exc}); Bio-Formats {how}"]
        )
    except Exception as exc:  # any other failure of the native path: the plan is wrong
        return Verdict(f"plane {index}: native read failed: {type(exc).__name__}: {exc}")
    if java_error is not None:
        return Verdict(f"plane {index}: Bio-Formats cannot read it ({java_error}), bfdask can")
    assert expected is not None
    if got.shape != expected.shape or got.tobytes() != expected.tobytes():
        return Verdict(f"plane {index} (z={z}, c={c}, t={t}) differs from Bio-Formats'")
    return Verdict()


def verify(spec: ImageSpec, recipe: NativeRecipe, missing: np.ndarray | None = None) -> Verdict:
    """Compare a few planes read natively with Bio-Formats' ``openBytes``.

    ``missing`` (:func:`missing_planes`) are left out: the last plane still in the file is
    compared instead of the last one. A plane that neither path can read (or that
    Bio-Formats pads with zeros where the plan finds it broken) is damage, not a mismatch.
    """
    row_bytes = spec.size_x * spec.samples * spec.itemsize
    rows = max(1, min(spec.size_y, VERIFY_BYTES // max(1, row_bytes)))
    y = (0, rows)
    planes = verify_planes(recipe)
    if missing is not None and missing.size:
        gone = set(missing.tolist())
        present = [i for i in range(spec.size_z * spec.size_c * spec.size_t) if i not in gone]
        if present:
            planes = sorted({i for i in planes if i not in gone} | {present[-1]})
        else:  # the file ends inside its first plane: compare the rows it still holds
            rows = min(rows, _rows_in_file(recipe, 0))
            if rows == 0:  # nothing left to compare: every plane raises when read
                return Verdict(compared=0)
            planes, y = [0], (0, rows)
    verdict = Verdict()
    for index in planes:
        one = _compare(spec, recipe, index, y)
        if one.mismatch is not None:
            return one
        verdict.damaged += one.damaged
        verdict.notes += one.notes
        verdict.compared += 0 if one.damaged else 1
    return verdict


def _truncation_note(spec: ImageSpec, missing: np.ndarray) -> str:
    count = spec.size_z * spec.size_c * spec.size_t
    return (
        f"{spec.path!r} is truncated or damaged: {missing.size} of {count} planes of series "
        f"{spec.series} (plane {int(missing[0])} on) lie past its end "
        f"({os.path.getsize(spec.path)} bytes); the others read, and reading those "
        "raises CorruptFileError. Is the file still being copied?"
    )


def _lif_cut(spec: ImageSpec) -> str | None:
    """For a LIF series of any layout, a note if its memory block runs past the file's end."""
    from . import lif

    if spec.format != LIF_FORMAT or spec.resolution != 0:
        return None
    try:
        images = lif.layout(spec.path, spec.stamp)
    except (lif.LifLayoutError, CorruptFileError, OSError):
        return None  # damage in the structure is reported by the plan
    size = os.path.getsize(spec.path)
    if len(images) != spec.series_count or not images[spec.series].truncated(size):
        return None
    image = images[spec.series]
    return (
        f"{spec.path!r} is truncated: the data of series {spec.series} needs bytes "
        f"{image.offset}..{image.offset + image.extent}, the file ends at {size}; planes "
        "past the end raise CorruptFileError when read (Bio-Formats would return zeros). "
        "Is the file still being copied?"
    )


@dataclass
class _Plan:
    """Everything opening learnt about one series' pixels (internal to :func:`choose`)."""

    recipe: NativeRecipe | None = None
    problem: str | None = None  # why the recipe is not used
    level: int = logging.INFO  # how loudly to log ``problem``
    missing: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    compared: int = 0  # planes found identical both ways
    zero_planes_missing: bool = False
    truncation: list[str] = field(default_factory=list)  # TruncatedFileWarning
    damage: list[str] = field(default_factory=list)  # CorruptFileWarning


def _plan(spec: ImageSpec) -> _Plan:
    """Build and verify the native plan of ``spec`` and collect the damage it shows."""
    plan = _Plan()
    try:
        recipe = build_recipe(spec)
        plan.missing = missing_planes(recipe)
        verdict = verify(spec, recipe, plan.missing)
    except NativePixelsError as exc:  # no plan for this layout: expected, e.g. any CZI
        plan.problem = str(exc)
    except CorruptFileError as exc:  # damage found while planning: never papered over
        plan.problem = str(exc)
        plan.damage.append(
            f"{exc}; its pixels come from Bio-Formats, which may pad damaged parts with zeros"
        )
    else:
        if verdict.mismatch is not None:  # Bio-Formats contradicts the plan: it is not used
            plan.problem, plan.level = verdict.mismatch, logging.WARNING
            plan.damage.append(
                f"bfdask's reading of {spec.path!r} series {spec.series} disagrees with "
                f"Bio-Formats' ({verdict.mismatch}): the file may be damaged; its pixels come "
                "from Bio-Formats"
            )
            plan.missing = np.empty(0, np.int64)  # a plan Bio-Formats contradicts says nothing
        else:
            plan.recipe, plan.compared = recipe, verdict.compared
            if plan.missing.size:
                plan.truncation.append(_truncation_note(spec, plan.missing))
            plan.damage += verdict.notes
            plan.missing = np.union1d(plan.missing, verdict.damaged).astype(np.int64)
    if plan.recipe is None:
        cut = _lif_cut(spec)
        if cut is not None:
            plan.truncation.append(cut)
            plan.zero_planes_missing = True
        if spec.format == mrc.MRC_FORMAT:
            plane_bytes = spec.size_y * spec.size_x * spec.samples * spec.itemsize
            count = spec.size_z * spec.size_c * spec.size_t
            plan.missing = mrc.missing_planes(spec.path, plane_bytes, count)
            if plan.missing.size:
                plan.truncation.append(_truncation_note(spec, plan.missing))
    return plan


def choose(spec: ImageSpec, pixels: str | None = None) -> Choice:
    """Pick the pixel source of ``spec``: a verified native recipe, or Bio-Formats.

    Whatever the source, opening asks the file's structure (LIF memory blocks, TIFF strips)
    where each plane lies and compares a few planes both ways; damage found there is warned
    (:class:`~bfdask.errors.TruncatedFileWarning`, :class:`~bfdask.errors.CorruptFileWarning`)
    and kept in the choice's :class:`~bfdask.damage.Damage`, which makes the damaged planes
    raise when read on either path. A fallback to Bio-Formats is for a layout with no native
    plan, never a way around damage.

    Parameters
    ----------
    spec
        The series, as Bio-Formats describes it.
    pixels
        ``"auto"`` (default: native where a plan exists and verifies, else Bio-Formats),
        ``"bioformats"`` or ``"native"``; None reads ``BFDASK_PIXELS`` / ``bfdask.pixels``.

    Raises
    ------
    NativePixelsError
        With ``pixels="native"``, when the series has no plan or it fails verification.
    """
    mode = resolve_mode(pixels)
    started = time.perf_counter()
    plan = _plan(spec)
    seconds = time.perf_counter() - started
    where = f"{spec.path!r} series {spec.series}"
    for note in plan.truncation:
        warnings.warn(note, TruncatedFileWarning, stacklevel=3)
    for note in plan.damage:
        warnings.warn(note, CorruptFileWarning, stacklevel=3)
    damage = Damage(
        missing=runs(plan.missing.tolist()),
        zero_planes_missing=plan.zero_planes_missing,
        notes=tuple(plan.truncation + plan.damage),
    )
    recipe = plan.recipe
    if recipe is not None and mode != "bioformats":
        how = {
            "lif": "byte offsets from the LIF header",
            "ome-tiff": "OME-TIFF TiffData pages",
            "tiff": "TIFF pages in IFD order",
        }[recipe.kind]
        reason = f"{how}, verified against Bio-Formats on {plan.compared} plane(s)"
        if plan.compared == 0:
            reason = f"{how}; no plane left to verify against Bio-Formats: every one is damaged"
        log.debug("native pixels for %s: %s (%.1f ms)", where, reason, seconds * 1e3)
        return Choice(recipe, reason, seconds, damage)
    if mode == "bioformats":
        return Choice(None, "pixels='bioformats' was asked", seconds, damage)
    if mode == "native":
        raise NativePixelsError(
            f"pixels='native' was asked for {where}, but it has no verified native plan: "
            f"{plan.problem}. Use pixels='auto' (falls back to Bio-Formats) or 'bioformats'."
        )
    log.log(plan.level, "Bio-Formats pixels for %s: %s", where, plan.problem)
    return Choice(None, f"no native plan: {plan.problem}", seconds, damage)


def describe(path: str | os.PathLike[str], pixels: str | None = None) -> list[dict[str, Any]]:
    """Which pixel source each series of ``path`` uses, and why (for ``bfdask info``).

    Returns
    -------
    list of dict
        One per series: ``series`` (index), ``name``, ``pixels`` (``"native"`` or
        ``"bioformats"``), ``reason``, ``verify_ms``.
    """
    from .metadata import read_spec

    checked = readers.check_path(path)
    count = readers.get_reader(checked).series_count
    out = []
    for index in range(count):
        spec = read_spec(checked, index)
        choice = choose(spec, pixels)
        out.append(
            {
                "series": index,
                "name": spec.series_name,
                "pixels": choice.source,
                "reason": choice.reason,
                "verify_ms": round(choice.verify_seconds * 1e3, 2),
            }
        )
    return out


# -- reading a block ------------------------------------------------------------------------


def _plane_error(recipe: NativeRecipe, index: int, path: str, problem: str) -> CorruptFileError:
    """The error for a plane that cannot be read, worded as Bio-Formats' errors are."""
    return CorruptFileError(
        f"Reading plane {index} of series {recipe.series} of {path!r} failed: {problem}. "
        "The file may be truncated or damaged; check it opens in Fiji/showinf."
    )


def _pread_into(fd: int, target: np.ndarray, offset: int) -> None:
    view = memoryview(target).cast("B")
    done = os.preadv(fd, [view], offset)
    while 0 < done < len(view):  # a short read (rare): go on from where it stopped
        step = os.preadv(fd, [view[done:]], offset + done)
        if step <= 0:
            break
        done += step
    if done != len(view):
        raise EOFError(f"the file ends before byte {offset + len(view)} of this plane")


def _read_runs(
    fd: int, out: np.ndarray, planes: list[tuple[int, Any]], plane_bytes: int
) -> list[tuple[int, Any]]:
    """Read whole planes that follow each other in the file with one ``preadv`` per run (one
    buffer per plane, up to IOV_MAX of them). Returns the planes of runs that came back short
    (to be read one by one, which names the plane that fails)."""
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


def _read_rows(
    fd: int,
    out: np.ndarray,
    plane_offset: int,
    row_bytes: int,
    full_x: int,
    y: tuple[int, int],
    x: tuple[int, int],
) -> None:
    """Rows ``y`` (all columns on disk) of a plane into ``out`` (``(h, w[, S])``)."""
    start = plane_offset + y[0] * row_bytes
    if x == (0, full_x):
        _pread_into(fd, out, start)
        return
    rows = np.empty((y[1] - y[0], full_x, *out.shape[2:]), out.dtype)
    _pread_into(fd, rows, start)
    out[...] = rows[:, x[0] : x[1]]


def read_block(
    recipe: NativeRecipe,
    t: tuple[int, int],
    c: tuple[int, int],
    z: tuple[int, int],
    y: tuple[int, int],
    x: tuple[int, int],
    *,
    count: bool = True,
) -> np.ndarray:
    """Pixels ``[t0:t1, c0:c1, z0:z1, y0:y1, x0:x1]`` of the series, without Java.

    Returns an array of shape ``(T, C, Z, Y, X[, S])`` in native byte order, as
    :func:`bfdask.readers.read_block` does. ``count=False`` (verification) leaves
    :func:`bfdask.files.planes_read` alone, which counts the planes tasks read.

    Raises
    ------
    FileChangedError, FileNotFoundError
        The file is not the one opened (size or mtime changed, deleted).
    CorruptFileError
        The file ends before a plane's bytes.
    """
    files.check_unchanged(recipe.path, recipe.stamp)
    dtype = np.dtype(recipe.dtype)
    shape = (t[1] - t[0], c[1] - c[0], z[1] - z[0], y[1] - y[0], x[1] - x[0])
    if recipe.samples > 1:
        shape = (*shape, recipe.samples)
    out = np.empty(shape, dtype)
    if out.size == 0:
        return out
    positions = [(ti, ci, zi) for ti in range(*t) for ci in range(*c) for zi in range(*z)]
    swap = recipe.itemsize > 1 and recipe.little_endian != np.little_endian
    row_bytes = recipe.size_x * recipe.samples * recipe.itemsize
    if recipe.kind == "lif":
        planes = sorted(
            (
                recipe.offset + recipe.c_offsets[ci] + zi * recipe.z_stride + ti * recipe.t_stride,
                (ti - t[0], ci - c[0], zi - z[0]),
            )
            for ti, ci, zi in positions
        )
        fd = os.open(recipe.path, os.O_RDONLY)
        try:
            if y == (0, recipe.size_y) and x == (0, recipe.size_x):
                planes = _read_runs(fd, out, planes, recipe.size_y * row_bytes)
            for offset, at in planes:  # partial planes, or what a run could not read
                try:
                    _read_rows(fd, out[at], offset, row_bytes, recipe.size_x, y, x)
                except (EOFError, OSError) as exc:
                    ti, ci, zi = (a + o for a, o in zip(at, (t[0], c[0], z[0]), strict=True))
                    index = recipe.plane_index(zi, ci, ti)
                    raise _plane_error(recipe, index, recipe.path, str(exc)) from None
        finally:
            os.close(fd)
        if swap:
            out.byteswap(inplace=True)
    else:
        _read_tiff(recipe, out, positions, (t[0], c[0], z[0]), y, x, row_bytes, swap)
    files.check_unchanged(recipe.path, recipe.stamp)  # changed while we read: may be mixed
    if count:
        files.count_planes(len(positions))
    return out


def _read_tiff(
    recipe: NativeRecipe,
    out: np.ndarray,
    positions: list[tuple[int, int, int]],
    origin: tuple[int, int, int],
    y: tuple[int, int],
    x: tuple[int, int],
    row_bytes: int,
    swap: bool,
) -> None:
    from . import tiff

    table = _tiff_table(recipe)
    jobs = sorted(
        (
            int(table.file[index]),
            int(table.offset[index]),
            index,
            (ti - origin[0], ci - origin[1], zi - origin[2]),
        )
        for ti, ci, zi in positions
        for index in [recipe.plane_index(zi, ci, ti)]
    )
    fds: dict[int, int] = {}
    try:
        for file, offset, index, at in jobs:
            name = table.files[file]
            try:
                if offset >= 0:
                    fd = fds.get(file)
                    if fd is None:
                        fd = fds[file] = os.open(name, os.O_RDONLY)
                    _read_rows(fd, out[at], offset, row_bytes, recipe.size_x, y, x)
                    if swap:
                        out[at].byteswap(inplace=True)
                    continue
                stamp = recipe.stamp if name == recipe.path else None
                plane = tiff.decode_page(name, stamp, int(table.page[index]))
            except Exception as exc:  # a codec's error, a short file, a bad IFD
                problem = f"IFD {int(table.page[index])}: {type(exc).__name__}: {exc}"
                raise _plane_error(recipe, index, name, problem) from None
            out[at] = plane[y[0] : y[1], x[0] : x[1]]  # values: any byte order converts
    finally:
        for fd in fds.values():
            os.close(fd)
