"""Build the dask array and the labeled xarray.DataArray of one series.

Each dask task holds a reference to one tiny :class:`BlockSource` (path, series, resolution,
dtype, dims: no Java object, no OME metadata) and the slices of its block; on the worker it
calls :func:`bfdask.readers.read_block`, which starts or reuses that process's JVM and reader,
or, when the series has a verified native plan (:mod:`bfdask.pixels`), reads the bytes with
:func:`bfdask.native.read_block` and never touches Java.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np

from . import chunks as chunks_mod
from . import jvm, metadata, projection, readers
from . import native as native_mod
from . import pixels as pixels_mod

if TYPE_CHECKING:
    from collections.abc import Mapping

    import xarray as xr
    from numpy.typing import NDArray

    from .damage import Damage
    from .files import FileStamp
    from .metadata import ImageSpec
    from .native import NativeRecipe
    from .pixels import Choice

#: arrays of at most this many blocks get a plain graph (:func:`_small_array`): building
#: ``from_array``'s blockwise layer costs ~1.5 ms an array, seconds over thousands of series
SMALL_GRAPH = 64


@dataclass(frozen=True)
class BlockSource:
    """What a task needs to read any block of one series, in the user's dim order.

    ``source[key]`` returns the selected pixels as numpy, read through this process's cached
    reader; dask fuses slicing of the array into this read.
    """

    path: str
    series: int
    resolution: int
    dims: str  # the user's order, a permutation of TCZYX(+S)
    shape: tuple[int, ...]  # in the user's order
    dtype: str
    samples: int
    little_endian: bool
    interleaved: bool
    stamp: FileStamp | None = None  # the file at open: a changed file raises
    native: NativeRecipe | None = None  # a verified native plan: read without Java
    damage: Damage | None = None  # damage found at open: those planes raise on either path
    #: a Z projection ("max", "sum", "mean") folded in as the planes of each block are read
    #: (:mod:`bfdask.projection`): ``dims`` and ``shape`` then have no Z, ``z_size`` planes:
    #: the series' planes from ``z_offset`` on, then ``z_pad`` planes of zeros (the Z stack
    #: ``open_positions`` fitted with ``z_mismatch="crop"`` or ``"pad"``)
    project: str | None = None
    z_size: int = 0
    z_offset: int = 0
    z_pad: int = 0
    #: with ``project``: only these pixels are folded, the projection is zero elsewhere (an
    #: intermediate of :func:`bfdask.profile`, whose samples read nothing else; never a user's)
    footprint: projection.Footprint | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> NDArray[Any]:
        """Read the pixels ``key`` selects: numpy basic and orthogonal indexing per axis.

        The smallest (T, C, Z, Y, X) box holding the selection is read (so dask can fuse a
        later ``isel`` into this read and fetch only that), then the selection is taken from it.
        """
        if not isinstance(key, tuple):
            key = (key,)
        if any(item is Ellipsis for item in key):
            at = next(i for i, item in enumerate(key) if item is Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        ranges: dict[str, tuple[int, int]] = {}
        residual: list[Any] = []
        for dim, size, item in zip(self.dims, self.shape, key, strict=True):
            if isinstance(item, slice) and item.step in (None, 1):  # the common case, fast
                start, stop, _ = item.indices(size)
                ranges[dim] = (start, max(start, stop))
                residual.append(slice(None))
                continue
            index = np.arange(size)[item]
            if index.ndim == 0:  # an integer: read one, drop the axis
                ranges[dim] = (int(index), int(index) + 1)
                residual.append(0)
            elif index.size == 0:
                ranges[dim] = (0, 0)
                residual.append(slice(None))
            else:
                low, high = int(index.min()), int(index.max()) + 1
                ranges[dim] = (low, high)
                contiguous = index.size == high - low and bool(np.all(np.diff(index) == 1))
                residual.append(slice(None) if contiguous else index - low)
        if self.native is not None:  # the disk reads every plane while the first are used
            z = ranges.get("Z", (self.z_offset, self.z_offset + self.z_size - self.z_pad))
            native_mod.prefetch(self.native, ranges["T"], ranges["C"], z, ranges["Y"])
        if self.project is None:
            block = self._read(ranges)
            canonical = "TCZYX" + ("S" if self.samples > 1 else "")
        else:  # one plane at a time, folded in: the (Z, Y, X) block is never whole in memory
            block = self._fold(ranges)
            canonical = "TCYX" + ("S" if self.samples > 1 else "")
        if self.dims != canonical:
            block = block.transpose([canonical.index(d) for d in self.dims])
        for axis in reversed(range(self.ndim)):  # last first: dropped axes keep numbering
            item = residual[axis]
            if not isinstance(item, slice):
                block = np.take(block, item, axis=axis)
        return block

    def _fold(self, ranges: dict[str, tuple[int, int]]) -> NDArray[Any]:
        """The box ``ranges`` (T, C, Y, X) projected over every Z plane, ``(T, C, Y, X[, S])``.

        Natively, rows lie whole on disk: reading a row's every column and cropping the
        projection once costs less than cropping each plane as it is read (a copy a plane),
        unless the window is narrow (tiles it does not touch); and every plane is read into
        one buffer. With a ``footprint`` only its pixels are gathered from each plane and
        folded (zero elsewhere)."""
        x0, x1 = ranges["X"]
        width = self.shape[self.dims.index("X")]
        wide = self.native is not None and 2 * (x1 - x0) >= width
        read = {**ranges, "X": (0, width)} if wide else ranges
        how, box = str(self.project), [read[d] for d in "TCYX"]
        shape = [b - a for a, b in box] + ([self.samples] if self.samples > 1 else [])
        shape.insert(2, 1)  # one Z plane at a time, natively into one buffer, refilled
        buffer = np.empty(shape, self.dtype) if self.native is not None else None

        def plane(z: int) -> NDArray[Any]:
            if z >= self.z_size - self.z_pad:  # numpy would add (compare) these zeros too
                return np.zeros(shape[:2] + shape[3:], self.dtype)
            z += self.z_offset
            return self._read({**read, "Z": (z, z + 1)}, out=buffer)[:, :, 0]

        if self.footprint is None:
            block = projection.fold(plane, self.z_size, how)
        else:  # only the pixels the footprint holds, gathered as each plane is read
            index = self.footprint.flat_index(read["Y"], read["X"])
            block = projection.fold_pixels(plane, self.z_size, how, index, 2)
        return block[:, :, :, x0:x1] if wide and (x0, x1) != (0, width) else block

    def _read(
        self, ranges: dict[str, tuple[int, int]], out: NDArray[Any] | None = None
    ) -> NDArray[Any]:
        """The box ``ranges`` (T, C, Z, Y, X), as ``(T, C, Z, Y, X[, S])`` (natively into
        ``out`` when given)."""
        if self.native is not None:
            box = (ranges[dim] for dim in "TCZYX")
            return native_mod.read_block(self.native, *box, out=out)
        return self._read_bioformats(ranges)

    def _read_bioformats(self, ranges: dict[str, tuple[int, int]]) -> NDArray[Any]:
        layout = ("dtype", "samples", "little_endian", "interleaved", "stamp", "damage")
        return readers.read_block(
            self.path,
            self.series,
            self.resolution,
            *(ranges[dim] for dim in "TCZYX"),
            **{name: getattr(self, name) for name in layout},
        )


def normalize_dims(dims: str, spec: ImageSpec) -> str:
    """Validate ``dims`` (a permutation of TCZYX, with S for RGB) and return it complete."""
    if not isinstance(dims, str):
        raise TypeError(f"dims must be a string such as 'TCZYX', not {dims!r}")
    dims = dims.upper()
    wanted = set(spec.sizes)
    if spec.samples > 1 and "S" not in dims:
        dims += "S"
    if len(dims) != len(set(dims)) or set(dims) != wanted:
        raise ValueError(
            f"dims={dims!r} must name each of {''.join(spec.sizes)} exactly once "
            "(S: samples per pixel, only for RGB series), e.g. 'TCZYX' or 'TZYXC'."
        )
    return dims


def block_source(
    spec: ImageSpec, dims: str = "TCZYX", choice: Choice | None = None
) -> BlockSource:
    """The :class:`BlockSource` of ``spec`` with axes in the order ``dims`` (as
    :func:`normalize_dims` returns them).

    ``choice`` is the series' pixel source (:func:`bfdask.pixels.choose`): its verified
    native recipe, or Bio-Formats, and the damage found at open. None: Bio-Formats, no check.
    """
    if choice is None or choice.recipe is None:  # Bio-Formats reads: a forked child of a
        jvm.check_not_forked()  # process whose JVM runs fails here, at open, not in a task
    sizes = spec.sizes
    return BlockSource(
        path=spec.path,
        series=spec.series,
        resolution=spec.resolution,
        dims=dims,
        shape=tuple(sizes[d] for d in dims),
        dtype=spec.dtype,
        samples=spec.samples,
        little_endian=spec.little_endian,
        interleaved=spec.interleaved,
        stamp=spec.stamp,
        native=None if choice is None else choice.recipe,
        damage=None if choice is None or not choice.damage else choice.damage,
    )


def to_dask(
    spec: ImageSpec,
    dims: str = "TCZYX",
    chunks: Mapping[str, Any] | str | None = None,
    choice: Choice | None = None,
) -> da.Array:
    """The lazy dask array of ``spec``, with axes in the order ``dims`` (normalized).

    ``choice`` as for :func:`block_source`.
    """
    plan = chunks_mod.plan(spec, chunks)
    source = block_source(spec, dims, choice)
    source_kind = "bioformats" if source.native is None else source.native.kind
    name = "bfdask-" + name_hash(
        spec.path,
        None if spec.stamp is None else astuple(spec.stamp),
        spec.series,
        spec.resolution,
        dims,
        tuple((d, tuple(plan[d])) for d in dims),
        source_kind,
    )
    return as_dask(source, name, tuple(tuple(int(n) for n in plan[d]) for d in dims))


def as_dask(
    source: BlockSource, name: str, chunks: tuple[tuple[int, ...], ...], dtype: Any = None
) -> da.Array:
    """The dask array of ``source``'s blocks ``chunks``, named ``name``; of ``dtype``
    (default: the pixels')."""
    meta = np.empty((0,) * len(chunks), dtype=source.dtype if dtype is None else dtype)
    if math.prod(len(sizes) for sizes in chunks) <= SMALL_GRAPH:
        return _small_array(source, name, chunks, meta)
    array: da.Array = da.from_array(
        source,
        chunks=chunks,
        name=name,
        lock=False,
        asarray=False,
        fancy=True,
        meta=meta,
        inline_array=False,
    )
    return array


def _small_array(
    source: BlockSource, name: str, chunks: tuple[tuple[int, ...], ...], meta: NDArray[Any]
) -> da.Array:
    """The array ``da.from_array`` makes of ``source``, as a plain graph: one ``getter`` task
    per block on the ``original-`` key holding the source (so dask still fuses a later
    selection into the read). About 10x cheaper to build for a few blocks."""
    from dask.array.core import getter

    original = f"original-{name}"
    graph: dict[Any, Any] = {original: source}
    edges = [np.cumsum((0, *sizes)).tolist() for sizes in chunks]
    for index in itertools.product(*(range(len(sizes)) for sizes in chunks)):
        slices = tuple(slice(e[i], e[i + 1]) for e, i in zip(edges, index, strict=True))
        key = (name, *index)
        graph[key] = (getter, original, slices, False, False)
    return da.Array(graph, name, chunks, meta=meta)


def name_hash(*parts: object) -> str:
    """A dask name for plain values (str, int, tuples): the hash of their ``repr``, which is
    the same in every process; dask's ``tokenize`` took ~0.3 ms a series, walking the
    chunk tuples."""
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()


def coords(spec: ImageSpec) -> dict[str, Any]:
    """Coordinates in physical units (µm, s) where the file records them.

    ``T`` is the planes' DeltaT as Bio-Formats reports it (seconds from the acquisition start,
    so an ND2 may start at 4.2 s, not 0), else ``T`` x TimeIncrement from 0.
    """
    import xarray as xr

    out: dict[str, Any] = {}
    if spec.timestamps:
        out["T"] = xr.Variable("T", np.asarray(spec.timestamps, float), {"units": "s"})
    elif spec.time_increment:
        out["T"] = xr.Variable("T", np.arange(spec.size_t) * spec.time_increment, {"units": "s"})
    for dim, size, step in (
        ("Z", spec.size_z, spec.physical_size_z),
        ("Y", spec.size_y, spec.physical_size_y),
        ("X", spec.size_x, spec.physical_size_x),
    ):
        if step:
            out[dim] = xr.Variable(dim, np.arange(size) * step, {"units": "µm"})
    out["C"] = xr.Variable("C", np.asarray(spec.channel_names, dtype=object))
    return out


def attrs(spec: ImageSpec, ome_xml: str | None, choice: Choice | None = None) -> dict[str, Any]:
    """The DataArray's attrs: where it comes from (file, and pixel source), plus its OME-XML."""
    out: dict[str, Any] = {
        "path": spec.path,
        "series": spec.series,
        "series_name": spec.series_name,
        "series_count": spec.series_count,
        "resolution": spec.resolution,
        "format": spec.format,
        "pixel_type": spec.pixel_type,
        "dimension_order": spec.dimension_order,
        "pixels": "bioformats" if choice is None else choice.source,
        "pixels_reason": "no choice made" if choice is None else choice.reason,
    }
    if choice is not None and choice.damage.notes:
        out["damage"] = "; ".join(choice.damage.notes)
    for key in ("physical_size_x", "physical_size_y", "physical_size_z"):
        value = getattr(spec, key)
        if value is not None:
            out[key] = value
    # time, the same way for every file that records it: the step between timepoints (its
    # TimeIncrement, else its planes' DeltaT) and when the acquisition started
    if spec.frame_interval is not None:
        out["time_increment"] = spec.frame_interval
    if spec.acquisition_date:
        out["acquisition_date"] = spec.acquisition_date
    if ome_xml is not None:
        out["ome_xml"] = ome_xml
    return out


def labeled(
    spec: ImageSpec,
    dims: str,
    data: Any,
    ome_xml: str | None = None,
    choice: Choice | None = None,
) -> xr.DataArray:
    """``data`` (shaped as ``spec`` in the order ``dims``) as a labeled ``xarray.DataArray``.

    ``data`` is the dask array of :func:`to_dask` for :func:`bfdask.open`, or a lazily indexed
    array for the xarray engine: both get the same dims, coords, attrs and name.
    """
    import xarray as xr

    return xr.DataArray(
        data,
        dims=tuple(dims),
        coords=coords(spec),
        attrs=attrs(spec, ome_xml, choice),
        name=os.path.basename(spec.path),
    )


def open_spec(
    spec: ImageSpec,
    *,
    dims: str = "TCZYX",
    chunks: Mapping[str, Any] | str | None = None,
    ome_xml: str | None = None,
    pixels: str | None = None,
    choice: Choice | None = None,
    lazy: bool = False,
) -> xr.DataArray:
    """The labeled, lazy ``xarray.DataArray`` of one series whose metadata is already read.

    The one place a series is opened: :func:`bfdask.open`, the xarray engine, the DataTree,
    OME-Zarr conversion and :func:`bfdask.open_positions` all come here, each with the
    ``ImageSpec`` it read once. Here the dims are validated and the pixel source is chosen
    (a native plan verified against Bio-Formats on a few planes, which reads them both ways,
    or Bio-Formats; :func:`bfdask.pixels.choose`).

    Parameters
    ----------
    spec
        The series.
    dims, chunks
        As for :func:`bfdask.open`.
    ome_xml
        The series' OME-XML for ``attrs["ome_xml"]`` (None: left out).
    pixels
        As for :func:`bfdask.open`; ignored when ``choice`` is given.
    choice
        A pixel source already chosen for ``spec`` (to build the array again, e.g. with
        other chunks, without verifying again).
    lazy
        False: a dask array in bfdask's chunk plan. True: a lazily indexed array (no dask)
        for the xarray engine, with the plan in ``encoding["preferred_chunks"]``.
    """
    dims = normalize_dims(dims, spec)
    if choice is None:
        choice = pixels_mod.choose(spec, pixels_mod.resolve_mode(pixels))
    if not lazy:
        data = open_dask(spec, dims=dims, chunks=chunks, choice=choice)
        return labeled(spec, dims, data, ome_xml, choice)
    from xarray.core.indexing import LazilyIndexedArray

    from .lazy import BioformatsBackendArray, preferred_chunks

    source = block_source(spec, dims, choice)
    array = labeled(
        spec, dims, LazilyIndexedArray(BioformatsBackendArray(source)), ome_xml, choice
    )
    array.encoding["preferred_chunks"] = preferred_chunks(spec, dims)
    return array


def open_dask(
    spec: ImageSpec,
    *,
    dims: str = "TCZYX",
    chunks: Mapping[str, Any] | str | None = None,
    pixels: str | None = None,
    choice: Choice | None = None,
) -> da.Array:
    """:func:`open_spec` without the labels: the series' dask array alone (the pixel source
    chosen and verified the same way), for code that stacks many series and labels the
    result once (:func:`bfdask.open_positions`)."""
    dims = normalize_dims(dims, spec)
    if choice is None:
        choice = pixels_mod.choose(spec, pixels_mod.resolve_mode(pixels))
    return to_dask(spec, dims, chunks, choice)


def open_series(
    path: str | os.PathLike[str],
    series: int | str = 0,
    resolution: int = 0,
    *,
    ome: bool = True,
    pixels: str | None = None,
    **options: Any,
) -> xr.DataArray:
    """Implementation of :func:`bfdask.open` and the engine's ``open_dataset``: the series'
    metadata read once, then :func:`open_spec` (``options``: its ``dims``, ``chunks``,
    ``lazy``)."""
    mode = pixels_mod.resolve_mode(pixels)  # a bad value fails before any Java work
    spec = metadata.read_spec(path, series, resolution)
    ome_xml = metadata.series_ome_xml(spec.path, spec.series) if ome else None
    return open_spec(spec, ome_xml=ome_xml, pixels=mode, **options)
