"""xarray engine ``"bioformats"``: ``xr.open_dataset`` / ``xr.open_datatree`` on any file
Bio-Formats reads.

A thin adapter over bfdask's own pieces: :func:`bfdask.metadata.read_spec` for the metadata,
:func:`bfdask.chunks.plan` for the preferred chunks and :class:`bfdask.array.BlockSource` for
the pixels. The engine hands xarray a lazily indexed :class:`BioformatsBackendArray`; xarray
then either wraps it in dask with its ``chunks=`` argument (``chunks={}``: bfdask's own plan,
the same blocks :func:`bfdask.open` makes) or, with ``chunks=None``, reads on indexing exactly
the box asked for. Importing this module starts no JVM (xarray imports every installed engine
when it looks one up).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

if TYPE_CHECKING:
    import xarray as xr

    from .array import BlockSource
    from .metadata import ImageSpec

# Suffixes no other common engine claims; "bioformats" never guesses .tif/.nc/.zarr files.
_SUFFIXES = (
    ".lif", ".czi", ".nd2", ".lsm", ".oib", ".oif", ".ims", ".vsi", ".ics", ".ids", ".dv",
    ".r3d", ".stk", ".zvi", ".lei", ".mvd2", ".svs", ".ndpi", ".scn", ".fake", ".ome.tif",
    ".ome.tiff", ".companion.ome", ".mrc", ".map",
)  # fmt: skip

#: name of the one data variable of each Dataset the engine returns
VARIABLE = "image"


class BioformatsBackendArray(BackendArray):
    """One series as a lazily indexed array: indexing reads only the box it selects.

    Holds a :class:`bfdask.array.BlockSource` (path, series, shape, dtype: no Java object), so
    it pickles small and reads through the reader cache of whichever process indexes it.
    Supports outer (orthogonal) indexing: slices, integers and integer arrays per axis.
    """

    __slots__ = ("dtype", "shape", "source")

    def __init__(self, source: BlockSource) -> None:
        self.source = source
        self.shape = source.shape
        self.dtype = np.dtype(source.dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self.source.__getitem__
        )


def preferred_chunks(spec: ImageSpec, dims: str) -> dict[str, int | tuple[int, ...]]:
    """bfdask's chunk plan as xarray's ``preferred_chunks``, for the dims the plan splits.

    Dims the plan leaves whole are left out: xarray then keeps them whole for ``chunks={}``,
    and does not warn when a user splits them (any box of a Bio-Formats series reads
    equally well; a split only adds tasks).
    """
    from .chunks import plan

    chunks = plan(spec)
    out: dict[str, int | tuple[int, ...]] = {}
    for dim in dims:
        blocks = chunks[dim]
        if len(blocks) > 1 or dim == "T":
            regular = all(b == blocks[0] for b in blocks[:-1]) and blocks[-1] <= blocks[0]
            out[dim] = blocks[0] if regular else blocks
    return out


def lazy_dataarray(
    spec: ImageSpec,
    dims: str = "TCZYX",
    ome_xml: str | None = None,
    pixels: str | None = None,
) -> Any:
    """The labeled DataArray of ``spec`` over a lazily indexed (non-dask) array, with
    ``encoding["preferred_chunks"]`` for xarray's ``chunks=``; ``pixels`` as for
    :func:`bfdask.open`."""
    from . import pixels as pixels_mod
    from .array import block_source, labeled

    choice = pixels_mod.choose(spec, pixels)
    source = block_source(spec, dims, choice)
    data = indexing.LazilyIndexedArray(BioformatsBackendArray(source))
    array = labeled(spec, source.dims, data, ome_xml, choice)
    array.encoding["preferred_chunks"] = preferred_chunks(spec, source.dims)
    return array


class BioformatsBackendEntrypoint(BackendEntrypoint):
    """Open one series of a Bio-Formats file as a Dataset (``open_dataset``), or every series
    as a DataTree (``open_datatree``), lazily."""

    description = "Any Bio-Formats file (LIF, CZI, ND2, OME-TIFF...) through bfdask"
    url = "https://github.com/bfdask/bfdask"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "series",
        "resolution",
        "dims",
        "ome",
        "pixels",
    )
    supports_groups = True

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[Any],
        *,
        drop_variables: str | Iterable[str] | None = None,
        series: int | str = 0,
        resolution: int = 0,
        dims: str = "TCZYX",
        ome: bool = True,
        pixels: str | None = None,
    ) -> xr.Dataset:
        """One series as a Dataset with the variable ``image`` (dims, coords and attrs as
        :func:`bfdask.open`); ``series``, ``resolution``, ``dims``, ``ome``, ``pixels`` as
        there."""
        from . import metadata
        from . import pixels as pixels_mod
        from .tree import series_dataset

        pixels_mod.resolve_mode(pixels)  # a bad value fails before any Java work
        spec = metadata.read_spec(_path(filename_or_obj), series, resolution)
        ome_xml = metadata.series_ome_xml(spec.path, spec.series) if ome else None
        dataset = series_dataset(lazy_dataarray(spec, dims, ome_xml, pixels))
        return _drop(dataset, drop_variables)

    def open_datatree(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[Any],
        *,
        drop_variables: str | Iterable[str] | None = None,
        dims: str = "TCZYX",
        ome: bool = True,
        pixels: str | None = None,
    ) -> xr.DataTree:
        """Every series as a node of a DataTree (see :func:`bfdask.open_all`)."""
        from . import pixels as pixels_mod
        from .tree import build_tree

        pixels_mod.resolve_mode(pixels)
        tree = build_tree(
            _path(filename_or_obj),
            dims,
            ome,
            lambda spec, dims, ome_xml: lazy_dataarray(spec, dims, ome_xml, pixels),
        )
        if drop_variables:
            tree = tree.map_over_datasets(lambda ds: _drop(ds, drop_variables))
        return tree

    def open_groups_as_dict(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[Any],
        *,
        drop_variables: str | Iterable[str] | None = None,
        dims: str = "TCZYX",
        ome: bool = True,
        pixels: str | None = None,
    ) -> dict[str, xr.Dataset]:
        """The nodes of :meth:`open_datatree` by path (``"/"`` is the file's root)."""
        tree = self.open_datatree(
            filename_or_obj, drop_variables=drop_variables, dims=dims, ome=ome, pixels=pixels
        )
        return {node.path: node.to_dataset() for node in tree.subtree}

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """True for the suffixes of Bio-Formats' formats that no other common engine reads."""
        try:
            name = os.fspath(filename_or_obj).lower()
        except TypeError:
            return False
        return name.endswith(_SUFFIXES)


def _path(filename_or_obj: Any) -> str:
    try:
        return os.fspath(filename_or_obj)
    except TypeError:
        raise TypeError(
            "engine='bioformats' opens files by path (str or os.PathLike); Bio-Formats cannot "
            f"read from {type(filename_or_obj).__name__} objects."
        ) from None


def _drop(dataset: xr.Dataset, drop_variables: str | Iterable[str] | None) -> xr.Dataset:
    if not drop_variables:
        return dataset
    names = [drop_variables] if isinstance(drop_variables, str) else list(drop_variables)
    return dataset.drop_vars(names, errors="ignore")
