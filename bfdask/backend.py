"""xarray engine ``"bioformats"``: ``xr.open_dataset`` / ``xr.open_datatree`` on any file
Bio-Formats reads.

A thin adapter over bfdask's own pieces: :func:`bfdask.metadata.read_spec` for the metadata,
:func:`bfdask.chunks.plan` for the preferred chunks and :class:`bfdask.array.BlockSource` for
the pixels. The engine hands xarray a lazily indexed array (:mod:`bfdask.lazy`); xarray
then either wraps it in dask with its ``chunks=`` argument (``chunks={}``: bfdask's own plan,
the same blocks :func:`bfdask.open` makes) or, with ``chunks=None``, reads on indexing exactly
the box asked for. Importing this module starts no JVM (xarray imports every installed engine
when it looks one up).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from xarray.backends import BackendEntrypoint

if TYPE_CHECKING:
    from collections.abc import Iterable

    import xarray as xr


# Suffixes no other common engine claims; "bioformats" never guesses .tif/.nc/.zarr files.
_SUFFIXES = (
    ".lif", ".czi", ".nd2", ".lsm", ".oib", ".oif", ".ims", ".vsi", ".ics", ".ids", ".dv",
    ".r3d", ".stk", ".zvi", ".lei", ".mvd2", ".svs", ".ndpi", ".scn", ".fake", ".ome.tif",
    ".ome.tiff", ".companion.ome", ".mrc", ".map",
)  # fmt: skip


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
        from . import ngff
        from .array import open_series
        from .tree import series_dataset

        if ngff.is_store(_path(filename_or_obj)):  # an OME-Zarr store: zarr reads it (dask)
            image = ngff.open_image(_path(filename_or_obj), series, resolution, dims=dims)
            return _drop(series_dataset(image), drop_variables)
        array = open_series(
            _path(filename_or_obj),
            series,
            resolution,
            dims=dims,
            ome=ome,
            pixels=pixels,
            lazy=True,
        )
        return _drop(series_dataset(array), drop_variables)

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
        from .tree import build_tree

        tree = build_tree(_path(filename_or_obj), dims=dims, ome=ome, pixels=pixels, lazy=True)
        if drop_variables:
            tree = tree.map_over_datasets(lambda ds: _drop(ds, drop_variables))
        return tree

    def open_groups_as_dict(  # type: ignore[override]
        self, filename_or_obj: str | os.PathLike[Any], **keywords: Any
    ) -> dict[str, xr.Dataset]:
        """The nodes of :meth:`open_datatree` (same keywords) by path (``"/"``: the root)."""
        tree = self.open_datatree(filename_or_obj, **keywords)
        return {node.path: node.to_dataset() for node in tree.subtree}

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """True for the suffixes of Bio-Formats' formats that no other common engine reads."""
        try:
            name: str = os.fspath(filename_or_obj).lower()
        except TypeError:
            return False
        return name.endswith(_SUFFIXES)


def _path(filename_or_obj: Any) -> str:
    try:
        path: str = os.fspath(filename_or_obj)
    except TypeError:
        raise TypeError(
            "engine='bioformats' opens files by path (str or os.PathLike); Bio-Formats cannot "
            f"read from {type(filename_or_obj).__name__} objects."
        ) from None
    return path


def _drop(dataset: xr.Dataset, drop_variables: str | Iterable[str] | None) -> xr.Dataset:
    if not drop_variables:
        return dataset
    names = [drop_variables] if isinstance(drop_variables, str) else list(drop_variables)
    dropped: xr.Dataset = dataset.drop_vars(names, errors="ignore")  # typed Any by xarray
    return dropped
