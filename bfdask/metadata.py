"""What a series of a file is: :class:`ImageSpec`, read once from Bio-Formats.

This is the one boundary where Java metadata (core metadata and the OME store) becomes plain,
frozen Python values. An ``ImageSpec`` is small and picklable; the dask graph carries only the
few fields a task needs (see :mod:`bfdask.array`).
"""

from __future__ import annotations

import contextvars
import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from . import answers, bridge, jvm, readers, seriesnames, sizes
from .javaerrors import java_class_name
from .omexml import OmeXml as OmeXml  # re-exported: convert and tree cut series from it
from .seriesnames import series_labels as series_labels  # re-exported

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Hashable

    from .files import FileStamp

T = TypeVar("T")


@dataclass(frozen=True)
class ImageSpec:
    """One series (at one resolution) of a Bio-Formats file, as plain values.

    Sizes are exactly what Bio-Formats reports: ``size_c`` counts effective channels (what
    ``getEffectiveSizeC`` reports), and ``samples`` the samples per pixel of each channel
    (3 for RGB), which becomes an ``S`` dimension.
    """

    path: str
    series: int
    resolution: int
    series_count: int
    series_name: str
    format: str
    size_t: int
    size_c: int
    size_z: int
    size_y: int
    size_x: int
    samples: int
    dtype: str
    pixel_type: str
    dimension_order: str
    little_endian: bool
    interleaved: bool
    physical_size_x: float | None = None  # µm
    physical_size_y: float | None = None  # µm
    physical_size_z: float | None = None  # µm
    time_increment: float | None = None  # s
    channel_names: tuple[str, ...] = ()
    timestamps: tuple[float, ...] = field(default=(), repr=False)  # s, per T (DeltaT), if known
    #: the file's identity when this spec was read (None: not a file, e.g. a ``.fake`` spec);
    #: every block read checks it, so a file changed later raises instead of mixing versions
    stamp: FileStamp | None = None
    acquisition_date: str | None = None  # ISO 8601 (OME Image AcquisitionDate), if recorded

    @property
    def frame_interval(self) -> float | None:
        """Seconds between timepoints: the file's TimeIncrement, else the median step of its
        planes' DeltaT; None when the file records neither (or there is one timepoint)."""
        if self.time_increment:
            return self.time_increment
        if len(self.timestamps) < 2:
            return None
        steps = sorted(b - a for a, b in zip(self.timestamps, self.timestamps[1:]))
        middle = steps[len(steps) // 2]
        return middle if middle > 0 else None

    @property
    def sizes(self) -> dict[str, int]:
        """``{"T": ..., "C": ..., "Z": ..., "Y": ..., "X": ...}`` (+ ``"S"`` for RGB)."""
        sizes = {
            "T": self.size_t,
            "C": self.size_c,
            "Z": self.size_z,
            "Y": self.size_y,
            "X": self.size_x,
        }
        if self.samples > 1:
            sizes["S"] = self.samples
        return sizes

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape in canonical order TCZYX(S)."""
        return tuple(self.sizes.values())

    @property
    def itemsize(self) -> int:
        """Bytes per sample (1 for Bio-Formats' bit type, which Java hands over as bytes)."""
        import numpy as np

        return np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the series' pixels in bytes."""
        return math.prod(self.shape) * self.itemsize


# -- reading --------------------------------------------------------------------------------


def _length_um(value: Any) -> float | None:
    """An ``ome.units.quantity.Length`` in micrometres (None if unset)."""
    return _quantity(value, "Lome/units/unit/Unit;", "MICROMETER")


def _time_s(value: Any) -> float | None:
    """An ``ome.units.quantity.Time`` in seconds (None if unset)."""
    return _quantity(value, "Lome/units/unit/Unit;", "SECOND")


#: ome.units.UNITS constants by name (global references, valid in every thread)
_UNITS: dict[str, Any] = {}
#: Bio-Formats pixel type code -> its name (FormatTools.getPixelTypeString)
_PIXEL_TYPE_NAMES: dict[int, str] = {}


def _quantity(value: Any, unit_sig: str, unit_name: str) -> float | None:
    if value is None:
        return None
    java = bridge.current()
    unit = _UNITS.get(unit_name)
    if unit is None:  # a Java constant: looked up once per process, let go before Java stops
        unit = _UNITS[unit_name] = java.static_field("ome/units/UNITS", unit_name, unit_sig)
        jvm.at_shutdown(_UNITS.clear)
    try:
        number = java.call(value, "value", "(Lome/units/unit/Unit;)Ljava/lang/Number;", unit)
    except java.java_exception:  # unit not convertible (e.g. pixels, reference frame)
        return None
    if number is None:
        return None
    result = float(java.call(number, "doubleValue", "()D"))
    return result if math.isfinite(result) and result > 0 else None


def _store_get(store: Any, method: str, signature: str, *args: Any) -> Any:
    """Call an OME store getter; a missing or broken optional field gives None (with a warning
    only for unexpected failures)."""
    java = bridge.current()
    try:
        return java.call(store, method, signature, *args)
    except java.java_exception as exc:
        name = java_class_name(exc)
        if name not in ("java.lang.IndexOutOfBoundsException", "java.lang.NullPointerException"):
            warnings.warn(f"OME metadata {method}{args} unreadable: {exc}", stacklevel=3)
            problems = _unreadable.get()
            if problems is not None:
                problems.append(method)
        return None


def spec_from_reader(
    reader: readers.Reader, series: int, resolution: int = 0, *, timestamps: bool = True
) -> ImageSpec:
    """Build the :class:`ImageSpec` of ``series`` from an open reader (the Java boundary).

    ``timestamps=False`` skips the per-timepoint DeltaT lookups (for listings).
    """
    reader.set_series(series, resolution)
    call = reader.call
    pixel_type_code = int(call("getPixelType", "()I"))
    pixel_type = _PIXEL_TYPE_NAMES.get(pixel_type_code)
    if pixel_type is None:
        pixel_type = _PIXEL_TYPE_NAMES[pixel_type_code] = str(
            bridge.current().static_call(
                "loci/formats/FormatTools",
                "getPixelTypeString",
                "(I)Ljava/lang/String;",
                pixel_type_code,
            )
        )
    dtype = readers.PIXEL_TYPES[pixel_type]
    store = reader.store
    dimension_order, layout = reader.layout  # as set_series asked Bio-Formats
    size_c, size_t, size_z = layout["C"], layout["T"], layout["Z"]

    def length(method: str) -> float | None:
        return _length_um(_store_get(store, method, "(I)Lome/units/quantity/Length;", series))

    time_increment = _time_s(
        _store_get(store, "getPixelsTimeIncrement", "(I)Lome/units/quantity/Time;", series)
    )
    names = []
    for c in range(size_c):
        name = _store_get(store, "getChannelName", "(II)Ljava/lang/String;", series, c)
        names.append(str(name) if name else f"C{c}")
    series_name = _store_get(store, "getImageName", "(I)Ljava/lang/String;", series)
    acquired = _store_get(
        store, "getImageAcquisitionDate", "(I)Lome/xml/model/primitives/Timestamp;", series
    )
    spec = ImageSpec(
        path=reader.path,
        series=series,
        resolution=resolution,
        series_count=reader.series_count,
        series_name=str(series_name) if series_name else f"Series {series}",
        format=reader.format,
        size_t=size_t,
        size_c=size_c,
        size_z=size_z,
        size_y=int(call("getSizeY", "()I")),
        size_x=int(call("getSizeX", "()I")),
        samples=int(call("getRGBChannelCount", "()I")),
        dtype=dtype.name,
        pixel_type=pixel_type,
        dimension_order=dimension_order,
        little_endian=bool(call("isLittleEndian", "()Z")),
        interleaved=bool(call("isInterleaved", "()Z")),
        physical_size_x=length("getPixelsPhysicalSizeX"),
        physical_size_y=length("getPixelsPhysicalSizeY"),
        physical_size_z=length("getPixelsPhysicalSizeZ"),
        time_increment=time_increment,
        channel_names=tuple(names),
        timestamps=()
        if time_increment or not timestamps
        else _timestamps(reader, store, series, size_t),
        stamp=reader.stamp,
        acquisition_date=_text(acquired),
    )
    # sizes that cannot be in the file are refused before anything of their size is built
    sizes.check_claimed_sizes(spec, lambda: used_files(reader))
    return spec


def _text(java_object: Any) -> str | None:
    """``toString()`` of an optional Java object (None stays None)."""
    if java_object is None:
        return None
    return str(bridge.current().call(java_object, "toString", "()Ljava/lang/String;")) or None


def _timestamps(reader: readers.Reader, store: Any, series: int, size_t: int) -> tuple[float, ...]:
    """Per-timepoint DeltaT (s) of the plane at Z=0, C=0 of each T, if the file records them.

    Bio-Formats numbers OME planes like its own plane indices, so T lookups suffice (not one
    per plane: a 100 000-plane series must still open in well under a second).
    """
    count = _store_get(store, "getPlaneCount", "(I)I", series)
    if size_t < 2 or not count:
        return ()
    nonneg = "(II)Lome/xml/model/primitives/NonNegativeInteger;"
    out = []
    for t in range(size_t):
        plane = reader.plane_index(0, 0, t)
        if plane >= int(count):
            return ()
        the_t = _store_get(store, "getPlaneTheT", nonneg, series, plane)
        delta = _time_s(
            _store_get(store, "getPlaneDeltaT", "(II)Lome/units/quantity/Time;", series, plane)
        )
        if the_t is None or _int(the_t) != t or (delta is None and t > 0):
            return ()
        out.append(delta or 0.0)
    return tuple(out)


def _int(java_integer: Any) -> int:
    return int(str(bridge.current().call(java_integer, "toString", "()Ljava/lang/String;")))


def reader_class(reader: readers.Reader) -> str:
    """The Java class of the format reader Bio-Formats chose (e.g. ``loci.formats.in.LIFReader``),
    looking through the Memoizer and ImageReader wrappers."""
    java = bridge.current()
    obj = reader.java
    for _ in range(4):  # Memoizer -> ImageReader -> the format's reader
        klass = java.call(obj, "getClass", "()Ljava/lang/Class;")
        name = str(java.call(klass, "getName", "()Ljava/lang/String;"))
        if name not in ("loci.formats.Memoizer", "loci.formats.ImageReader"):
            return name
        obj = java.call(obj, "getReader", "()Lloci/formats/IFormatReader;")
    return name


def used_files(reader: readers.Reader) -> list[str]:
    """Every file of the dataset (a multi-file format lists its companions too)."""
    return reader.used_files()


def resolution_count(reader: readers.Reader, series: int) -> int:
    """Number of resolution levels of ``series`` (1 unless the reader is unflattened)."""
    reader.set_series(series)
    return int(reader.call("getResolutionCount", "()I"))


def series_names(reader: readers.Reader) -> list[str]:
    """Every series' name as :class:`ImageSpec` gives it (``"Series <i>"`` when unnamed)."""
    store = reader.store
    names = []
    for i in range(reader.series_count):
        name = _store_get(store, "getImageName", "(I)Ljava/lang/String;", i)
        names.append(str(name) if name else f"Series {i}")
    return names


def resolve_series(reader: readers.Reader, series: int | str) -> int:
    """An index for ``series``: an index (negative from the end), a series name that only one
    series has, or a label of :func:`series_labels` (also as a DataTree node name, ``/`` as
    ``:``).

    Raises
    ------
    SeriesIndexError
        No such series, or a name several series share (the message lists their labels).
    """
    names = functools.partial(series_names, reader)  # read only for a name
    return seriesnames.resolve(series, reader.path, reader.series_count, names)


# -- answers kept across processes (:mod:`bfdask.answers`) --------------------------------------

#: OME fields this context could not read (warned by :func:`_store_get`), while set: answers
#: read with such a warning are not kept, so that every later open warns again
_unreadable: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "bfdask_unreadable_ome", default=None
)


def _quietly(read: Callable[[], T]) -> tuple[T, bool]:
    """``read()``, and whether it read without an unreadable OME field (then it may be kept)."""
    problems: list[str] = []
    token = _unreadable.set(problems)
    try:
        value = read()
    finally:
        _unreadable.reset(token)
    return value, not problems


def _is_names(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(name, str) for name in value)


def _kept_names(path: str) -> list[str] | None:
    kept = answers.recall(path, ("names",), _is_names)
    return None if kept is None else list(kept)


def _kept_spec(path: str, series: int | str) -> ImageSpec | None:
    """The spec of ``series`` (resolution 0) kept for this version of ``path``; None when not
    kept."""
    names = _kept_names(path)
    if names is None:
        return None
    return _kept_spec_at(path, seriesnames.resolve(series, path, len(names), lambda: names))


def _kept_spec_at(path: str, index: int) -> ImageSpec | None:
    """The kept spec of series ``index`` (resolution 0), or None."""
    spec: ImageSpec | None = answers.recall(
        path, ("spec", index), lambda v: isinstance(v, ImageSpec) and v.series == index
    )
    return spec


def _keep(reader: readers.Reader, found: dict[Hashable, Any]) -> None:
    """Keep ``found`` (and the series names, once) for the version of the reader's file it
    was read from."""
    if _kept_names(reader.path) is None:
        names, clean = _quietly(lambda: tuple(series_names(reader)))
        if clean:
            found = {("names",): names, **found}
    answers.remember(reader.path, found, reader.stamp, used_files=lambda: used_files(reader))


def read_spec(
    path: str | os.PathLike[str], series: int | str = 0, resolution: int = 0
) -> ImageSpec:
    """Read the :class:`ImageSpec` of one series of ``path`` (no pixels are read).

    Raises
    ------
    FileNotFoundError, UnsupportedFormatError, CorruptFileError, SeriesIndexError
        As described in :mod:`bfdask.errors`.
    """
    checked = readers.check_path(path)
    if resolution == 0:
        kept = _kept_spec(checked, series)
        if kept is not None:
            return kept
    reader = readers.get_reader(checked, 0, 0)
    index = resolve_series(reader, series)
    spec, clean = _quietly(lambda: spec_from_reader(reader, index, resolution))
    if resolution == 0 and clean:
        _keep(reader, {("spec", index): spec})
    return spec


def series_ome_xml(path: str, series: int) -> str:
    """The OME-XML of one series: its Image (and the Instrument it refers to), no other series.

    Built from the reader's OME store, without original metadata.
    """
    return OmeXml(file_ome_xml(path)).subset([series])


def file_ome_xml(path: str | os.PathLike[str]) -> str:
    """The OME-XML of the whole file (every series), from the reader's OME store."""
    checked = readers.check_path(path)
    kept: str | None = answers.recall(checked, ("xml",), lambda v: isinstance(v, str))
    if kept is not None:
        return kept
    reader = readers.get_reader(checked, 0)
    xml = _dump(reader.store)
    _keep(reader, {("xml",): xml})
    return xml


def _dump(store: Any) -> str:
    return str(bridge.current().call(store, "dumpXML", "()Ljava/lang/String;"))


@dataclass(frozen=True)
class SeriesInfo:
    """One row of :func:`bfdask.list_series`."""

    index: int
    name: str
    shape: tuple[int, ...]
    dims: str
    dtype: str
    dimension_order: str


def read_specs(path: str | os.PathLike[str]) -> list[ImageSpec]:
    """The :class:`ImageSpec` of every series of ``path`` (resolution 0), from one reader."""
    checked = readers.check_path(path)
    names = _kept_names(checked)
    if names is not None:
        kept = [_kept_spec_at(checked, index) for index in range(len(names))]
        if all(spec is not None for spec in kept):
            return [spec for spec in kept if spec is not None]
    reader = readers.get_reader(checked, 0)
    found: dict[Hashable, Any] = {}
    specs = []
    for index in range(reader.series_count):
        spec, clean = _quietly(functools.partial(spec_from_reader, reader, index))
        specs.append(spec)
        if clean:
            found["spec", index] = spec
    _keep(reader, found)
    return specs


def list_series(path: str | os.PathLike[str]) -> list[SeriesInfo]:
    """Every series of ``path``: index, name, shape (TCZYX[S]), dtype. No pixels are read."""
    checked = readers.check_path(path)
    kept = answers.recall(
        checked,
        ("listing",),
        lambda v: isinstance(v, tuple) and all(isinstance(i, SeriesInfo) for i in v),
    )
    if kept is not None:
        return list(kept)
    reader = readers.get_reader(checked, 0)

    def listing() -> tuple[SeriesInfo, ...]:
        specs = (spec_from_reader(reader, i, timestamps=False) for i in range(reader.series_count))
        return tuple(
            SeriesInfo(
                index=spec.series,
                name=spec.series_name,
                shape=spec.shape,
                dims="".join(spec.sizes),
                dtype=spec.dtype,
                dimension_order=spec.dimension_order,
            )
            for spec in specs
        )

    out, clean = _quietly(listing)
    if clean:
        _keep(reader, {("listing",): out})
    return list(out)
