"""Open Bio-Formats readers, cached per thread, and :func:`read_block`.

Bio-Formats readers are not thread-safe, but both bridges release the GIL during Java calls, so
threads with a reader each read in parallel (a per-file lock would throw that away). Each
thread therefore keeps its own small LRU cache of open readers; the least recently used is
closed when the cache is full, a thread's readers are closed when the thread ends, and all are
closed at interpreter exit.

One Java reader per (thread, file) serves every series of that file: switching series is a
cheap ``setSeries`` call, whereas a reader per series would parse the file's header once per
series (seconds for a LIF with hundreds of positions). Readers live in the process's one handle
cache (:mod:`bfdask.handles`), bounded by the setting ``bfdask.reader.cache-size`` (env
``BFDASK_READER_CACHE_SIZE``).

Readers are ``loci.formats.ImageReader`` (Bio-Formats' own format detection, file grouping on;
python-bioformats' ``ImageReader`` picks TIFF for ``.ome.tif`` and turns grouping off), with no
original-metadata table (what exhausts the heap on a large LIF), an OME-XML store for physical
sizes and channel names, wrapped in a ``loci.formats.Memoizer`` so that reopening a file whose
header is slow to parse is fast on every worker.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from . import bridge, config, handles, jvm
from .errors import (
    BfdaskError,
    CorruptFileError,
    JavaMemoryError,
    SeriesIndexError,
)
from .files import FileStamp, check_unchanged, count_planes, file_stamp
from .files import planes_read as planes_read  # re-exported: tests and diagnostics use it here
from .javaerrors import JavaThrown, java_exception, translate_java_error
from .opening import check_path as check_path  # re-exported: callers check paths here
from .opening import set_id
from .order import plane_index

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .bridge import PlaneReader
    from .damage import Damage

#: Bio-Formats pixel type name -> numpy dtype (native byte order)
PIXEL_TYPES: dict[str, np.dtype[Any]] = {
    "int8": np.dtype("int8"),
    "uint8": np.dtype("uint8"),
    "int16": np.dtype("int16"),
    "uint16": np.dtype("uint16"),
    "int32": np.dtype("int32"),
    "uint32": np.dtype("uint32"),
    "float": np.dtype("float32"),
    "double": np.dtype("float64"),
    "bit": np.dtype("bool"),
}


# -- one open reader ------------------------------------------------------------------------

#: bytes at the end of each plane buffer marked before ``openBytes`` (see ``read_plane``)
MARKED_TAIL = 64
#: the two marks (Java bytes are signed: 0xA5 and 0x5A)
MARKS = (-91, 90)


class Reader:
    """An open ``loci.formats.ImageReader`` (possibly memoized) for one file, in one thread.

    Only this module and :mod:`bfdask.metadata` touch its Java object (``.java``).
    """

    def __init__(self, path: str) -> None:
        from . import dataset

        dataset.check_dataset_files(path)  # before setId opens the files the dataset names
        jvm.ensure()
        java = bridge.current()
        self.path = path
        self.stamp = file_stamp(path)
        self.series = -1
        self._layout: tuple[str, dict[str, int]] = ("XYZCT", {"Z": 1, "C": 1, "T": 1})
        self._buffer: Any = None
        self._buffer_size = 0
        self._format: str | None = None
        self._store: Any = None
        reader = java.new("loci/formats/ImageReader", "()V")
        java.call(reader, "setGroupFiles", "(Z)V", True)
        java.call(reader, "setOriginalMetadataPopulated", "(Z)V", False)
        store = java.new("loci/formats/ome/OMEXMLMetadataImpl", "()V")
        java.call(reader, "setMetadataStore", "(Lloci/formats/meta/MetadataStore;)V", store)
        directory = config.memo_dir()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            reader = java.new(
                "loci/formats/Memoizer",
                "(Lloci/formats/IFormatReader;JLjava/io/File;)V",
                reader,
                int(config.get("bfdask.reader.memo-min-ms") or 0),
                java.new("java/io/File", "(Ljava/lang/String;)V", str(directory)),
            )
        try:
            set_id(reader, path)
        except JavaThrown as exc:
            try:
                java.call(reader, "close", "()V")
            except java.java_exception:
                pass
            raise translate_java_error(exc, path, "opening") from None
        self.java = reader
        if not dataset.outside_allowed():  # setId may find files by other means (patterns...)
            try:
                dataset.check_used_files(path, self.used_files())
            except BaseException:
                self.close()
                raise
        self._read: PlaneReader | None = java.plane_reader(reader)
        self.series_count = int(java.call(reader, "getSeriesCount", "()I"))

    @property
    def layout(self) -> tuple[str, dict[str, int]]:
        """The current series' dimension order and ``Z``/``C`` (effective)/``T`` sizes, as
        Bio-Formats gave them when the series was set."""
        return self._layout

    @property
    def format(self) -> str:
        """Bio-Formats' name of the file's format (``getFormat``; asked once per reader)."""
        if self._format is None:
            self._format = str(self.call("getFormat", "()Ljava/lang/String;"))
        return self._format

    @property
    def store(self) -> Any:
        """The reader's OME metadata store (``getMetadataStore``; asked once per reader)."""
        if self._store is None:
            self._store = self.call("getMetadataStore", "()Lloci/formats/meta/MetadataStore;")
        return self._store

    # plain-value accessors (one JNI call each)
    def call(self, name: str, signature: str, *args: Any) -> Any:
        """Call a method of the Java reader by name (metadata; not for the per-plane path)."""
        return bridge.current().call(self.java, name, signature, *args)

    def used_files(self) -> list[str]:
        """Every file of the dataset, as Bio-Formats lists them (``getUsedFiles``)."""
        files = self.call("getUsedFiles", "()[Ljava/lang/String;")
        if files is None:
            return [self.path]
        return bridge.current().strings(files)

    def set_series(self, series: int, resolution: int = 0) -> None:
        """Select ``series`` (and ``resolution``), raising :class:`SeriesIndexError` if absent."""
        if series == self.series and resolution == 0:
            return
        if not 0 <= series < self.series_count:
            raise SeriesIndexError(
                f"{self.path!r} has {self.series_count} series (0..{self.series_count - 1}); "
                f"series {series} does not exist. bfdask.list_series(path) lists them."
            )
        self.call("setSeries", "(I)V", series)
        self.series = series
        self._layout = (
            str(self.call("getDimensionOrder", "()Ljava/lang/String;")),
            {
                "Z": int(self.call("getSizeZ", "()I")),
                "C": int(self.call("getEffectiveSizeC", "()I")),
                "T": int(self.call("getSizeT", "()I")),
            },
        )
        count = int(self.call("getResolutionCount", "()I"))
        if not 0 <= resolution < count:
            raise SeriesIndexError(
                f"Series {series} of {self.path!r} has {count} resolution level(s); "
                f"resolution {resolution} does not exist. Bio-Formats lists the levels of a "
                "pyramid as series of their own: open them with series=..."
            )
        if count > 1:
            self.call("setResolution", "(I)V", resolution)

    def close(self) -> None:
        """Close the Java reader (its file handles); safe to call twice.

        A thread that is ending has lost its Java environment before its last callbacks run:
        its readers are then handed to :func:`close_orphans`, which the next Java call of any
        thread runs (else their files would stay open until Java's garbage collector).
        """
        if self.java is None:
            return
        java, self.java = self.java, None
        self._read, self._store = None, None
        bridged = bridge.current()
        if not bridged.can_call():
            with _orphans_lock:
                _orphans.append(java)
            return
        try:
            bridged.call(java, "close", "()V")
        except bridged.java_exception:
            pass

    def _java_buffer(self, nbytes: int) -> Any:
        """A Java byte[] of exactly ``nbytes``, reused from the last call when it fits."""
        if self._buffer is None or nbytes != self._buffer_size:
            self._buffer, self._buffer_size = None, 0
            try:
                self._buffer = bridge.current().byte_array(nbytes)
            except MemoryError:
                heap = jvm.max_heap() or 0
                raise JavaMemoryError(
                    f"Java ran out of heap ({heap / 2**30:.2f} GiB) allocating a "
                    f"{nbytes / 2**20:.0f} MiB plane buffer for {self.path!r}. Read smaller "
                    "tiles (chunks={'Y': ..., 'X': ...}) or raise the heap before the JVM "
                    "starts: BFDASK_MAX_HEAP=8G or dask config 'bfdask.jvm.max-heap'."
                ) from None
            self._buffer_size = nbytes
        return self._buffer

    def read_plane(
        self,
        index: int,
        y: tuple[int, int],
        x: tuple[int, int],
        dtype: np.dtype[Any],
        little_endian: bool,
        samples: int,
        interleaved: bool,
        out: NDArray[Any] | None = None,
    ) -> NDArray[Any]:
        """Plane ``index`` (rows ``y``, columns ``x``) as a numpy array ``(Y, X[, S])``.

        One ``openBytes`` into a reused Java ``byte[]``, then the bridge's copy of it: into
        ``out`` (a C-contiguous ``(Y, X[, S])`` array of ``dtype``, e.g. a plane of a block)
        if given and the bytes need no rearranging (native byte order, samples interleaved),
        else into a new array, returned with byte order fixed in place and planar samples
        moved last as a view (and copied into ``out`` if given).

        Bio-Formats readers fill the buffer from the file and do not say when the file ended
        first (an MRC or raw file cut short): the rest of the buffer would keep the previous
        plane's bytes. So the buffer's tail is marked before each read; a tail still marked
        afterwards is read once more under another mark, and bytes that kept both marks were
        never written: :class:`CorruptFileError`, never another plane's pixels.
        """
        h, w = y[1] - y[0], x[1] - x[0]
        bpp = 1 if dtype == np.bool_ else dtype.itemsize
        nbytes = h * w * samples * bpp
        direct = (
            out is not None
            and dtype != np.bool_
            and (little_endian == (np.little_endian) or bpp == 1)
            and (samples == 1 or interleaved)
            and out.flags.c_contiguous
        )
        into = out.reshape(-1).view(np.uint8) if direct and out is not None else None
        raw = self._open_bytes_marked(index, nbytes, y, x, MARKS[0], into)
        if raw[-1] == MARKS[0] & 0xFF:  # the last byte may be unwritten: ask again
            tail = slice(max(0, nbytes - MARKED_TAIL), nbytes)
            first = raw[tail].copy()
            again = self._open_bytes_marked(index, nbytes, y, x, MARKS[1], into)
            unwritten = np.flatnonzero(first != again[tail])
            if unwritten.size:
                raise CorruptFileError(
                    f"Reading plane {index} of series {self.series} of {self.path!r} failed: "
                    f"Bio-Formats filled only part of it (at least its last "
                    f"{MARKED_TAIL - int(unwritten[0])} bytes are missing). The file is "
                    "probably truncated or damaged; check it opens in Fiji/showinf."
                )
        if direct and out is not None:
            return out
        plane: NDArray[Any]
        if dtype == np.bool_:
            plane = raw != 0
        else:
            plane = raw.view(dtype.newbyteorder("<" if little_endian else ">"))
            if not plane.dtype.isnative:
                plane = plane.byteswap(inplace=True).view(dtype)
        if samples == 1:
            plane = plane.reshape(h, w)
        elif interleaved:
            plane = plane.reshape(h, w, samples)
        else:
            plane = np.moveaxis(plane.reshape(samples, h, w), 0, -1)
        if out is not None:
            out[...] = plane
            return out
        return plane

    def _open_bytes_marked(
        self,
        index: int,
        nbytes: int,
        y: tuple[int, int],
        x: tuple[int, int],
        mark: int,
        into: NDArray[np.uint8] | None,
    ) -> NDArray[np.uint8]:
        """``openBytes`` after filling the buffer's last bytes with ``mark``; the bytes, copied
        into ``into`` if given, else into a new array."""
        if self._read is None:
            raise ValueError(f"The reader of {self.path!r} is closed.")
        buffer = self._java_buffer(nbytes)
        tail = max(0, nbytes - MARKED_TAIL)
        w, h = x[1] - x[0], y[1] - y[0]
        try:
            return self._read(buffer, index, x[0], y[0], w, h, mark, tail, into)
        except JavaThrown as exc:
            raise _plane_error(exc, self, index) from None

    def plane_index(self, z: int, c: int, t: int) -> int:
        """``getIndex(z, c, t)`` of the current series, computed as Bio-Formats does
        (:func:`bfdask.order.plane_index`; saves a JNI call per plane, ~15 µs, as much as
        reading a small plane)."""
        order, sizes = self._layout
        return plane_index(order, sizes, z, c, t)


def _plane_error(exc: BaseException, reader: Reader, index: int) -> BfdaskError:
    return translate_java_error(
        exc, reader.path, f"reading plane {index} of series {reader.series} of"
    )


# -- the per-thread cache -------------------------------------------------------------------

#: the key kind of Java readers in the handle cache (:mod:`bfdask.handles`)
KIND = "java"


def _close_thread_readers() -> None:
    handles.close_thread()  # every handle of the ending thread, while it is still attached


#: Java readers of threads that ended, waiting to be closed by an attached thread
_orphans: list[Any] = []
_orphans_lock = threading.Lock()


def close_orphans() -> None:
    """Close the readers of threads that ended (see :meth:`Reader.close`); the calling thread
    must be attached to the JVM."""
    with _orphans_lock:
        pending = _orphans[:]
        del _orphans[:]
    bridged = bridge.current()
    for java in pending:
        try:
            bridged.call(java, "close", "()V")
        except bridged.java_exception:
            pass


def close_all() -> None:
    """Close every Java reader this process has open, in every thread (at exit, or to free
    files). Call it only while no task is reading."""
    handles.close_all(KIND)
    close_orphans()


def open_readers() -> int:
    """Number of Java readers open in the calling thread."""
    return handles.count(KIND)


def get_reader(path: str, series: int = 0, resolution: int = 0) -> Reader:
    """The calling thread's reader for ``path`` set to ``series``, opening it if needed.

    ``path`` must already be checked and absolute (:func:`check_path`). Readers live in the
    process's one handle cache (:mod:`bfdask.handles`): per thread, least recently used closed.
    """
    jvm.ensure()
    if _orphans:
        close_orphans()
    key = (KIND, path)
    reader: Reader | None = handles.get(
        key, lambda r: r.java is not None and file_stamp(path) == r.stamp
    )
    if reader is None:
        jvm.at_thread_exit(_close_thread_readers)
        jvm.at_shutdown(close_all)
        reader = handles.put(key, Reader(path))
    reader.set_series(series, resolution)
    return reader


# -- reading a block ------------------------------------------------------------------------


def read_block(
    path: str,
    series: int,
    resolution: int,
    t: tuple[int, int],
    c: tuple[int, int],
    z: tuple[int, int],
    y: tuple[int, int],
    x: tuple[int, int],
    *,
    dtype: str,
    samples: int = 1,
    little_endian: bool | None = None,
    interleaved: bool | None = None,
    stamp: FileStamp | None = None,
    damage: Damage | None = None,
) -> NDArray[Any]:
    """Read pixels ``[t0:t1, c0:c1, z0:z1, y0:y1, x0:x1]`` of one series as a numpy array.

    Parameters
    ----------
    path
        Absolute path of the file (as checked by :func:`check_path`).
    series, resolution
        Which image of the file.
    t, c, z, y, x
        Half-open ``(start, stop)`` ranges; ``c`` counts effective channels (RGB samples of
        one channel are the trailing ``S`` axis).
    dtype
        numpy dtype of the result (the series' pixel type).
    samples
        Samples per pixel (RGB: 3); when > 1 the result has a trailing ``S`` axis.
    little_endian, interleaved
        The series' byte order and sample layout, if known (from its ``ImageSpec``); asked
        from the reader otherwise (two more JNI calls).
    stamp
        The file's :class:`~bfdask.files.FileStamp` when its metadata was read
        (``ImageSpec.stamp``): checked before and after the read, so pixels of a file changed
        meanwhile never return.
    damage
        Damage found when the series was opened (:class:`~bfdask.damage.Damage`): its
        missing planes raise instead of being read, and where the series is cut short at an
        unknown plane, a plane Bio-Formats pads with zeros raises.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, C, Z, Y, X)`` or ``(T, C, Z, Y, X, S)``, native byte order.

    Raises
    ------
    CorruptFileError
        If Bio-Formats fails on a plane; the message names the file, series and plane.
    FileChangedError, FileNotFoundError
        If the file no longer has ``stamp`` (changed, replaced or deleted since it was opened).
    JavaMemoryError
        If the JVM runs out of heap.
    """
    check_unchanged(path, stamp)
    np_dtype = np.dtype(dtype)
    shape: tuple[int, ...] = (t[1] - t[0], c[1] - c[0], z[1] - z[0], y[1] - y[0], x[1] - x[0])
    if samples > 1:
        shape = (*shape, samples)
    if 0 in shape:  # an empty selection: nothing to read (and Java rejects a 0-byte plane)
        return np.empty(shape, dtype=np_dtype)
    reader = get_reader(path, series, resolution)
    failure: BfdaskError | None = None
    planes = [
        (reader.plane_index(zi, ci, ti), (ti - t[0], ci - c[0], zi - z[0]))
        for ti in range(*t)
        for ci in range(*c)
        for zi in range(*z)
    ]
    planes.sort()  # file order: sequential reads where the format allows
    if damage is not None:
        for index, _ in planes:
            damage.check_plane(index, path, series)
        damage.check_segments([index for index, _ in planes], (y, x))
    try:
        if little_endian is None:
            little_endian = bool(reader.call("isLittleEndian", "()Z"))
        if interleaved is None:
            interleaved = bool(reader.call("isInterleaved", "()Z"))
        layout = (np_dtype, little_endian, samples, interleaved)
        if len(planes) == 1 and not bridge.current().writes_into:
            # javabridge's new array is the block: no more copies
            out = reader.read_plane(planes[0][0], y, x, *layout).reshape(shape)
        else:
            out = np.empty(shape, dtype=np_dtype)
            for index, position in planes:  # JPype copies each plane straight into the block
                reader.read_plane(index, y, x, *layout, out=out[position])
        if damage is not None:
            for index, position in planes:
                damage.check_read(out[position], index, path, series)
        count_planes(len(planes))
    except BfdaskError:
        raise
    except (JavaThrown, java_exception()) as exc:
        failure = translate_java_error(exc, path, f"reading series {series} of")
    if failure is not None:  # raised outside the handler: no Java object in its context
        raise failure
    check_unchanged(path, stamp)  # changed while we read: these pixels may be mixed
    return out
