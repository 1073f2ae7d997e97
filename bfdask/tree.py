"""Every series of a file as one ``xarray.DataTree``: :func:`bfdask.open_all` and the engine's
``open_datatree``.

The root node holds the file's attrs (path, format, number of series); each series is a child
node named from its series name, holding the Dataset the engine's ``open_dataset`` gives for it
(variable ``image``, its coords and attrs). Both entry points build the tree here and differ
only in the array under each node: dask (``open_all``, chunked by :func:`bfdask.chunks.plan`)
or lazily indexed (the engine, chunked afterwards by xarray's ``chunks=`` from the same plan).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from . import metadata
from .array import open_spec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import xarray as xr

#: what replaces "/" in a series name to make a node name ("/" separates nodes in a tree path)
SLASH = ":"
#: name of the one data variable of each series' Dataset (engine and DataTree)
VARIABLE = "image"


def node_names(names: Sequence[str]) -> list[str]:
    """Valid, unique DataTree node names for series ``names`` (in the same order).

    The series' labels (:func:`bfdask.metadata.series_labels`: repeated names numbered
    ``" (1)"``, ``" (2)"``...) with ``/``, which separates nodes in a DataTree path, as ``:``
    (Leica Mark-and-Find series ``"Block 1/Pos001_S001"`` becomes node
    ``"Block 1:Pos001_S001"``); ``""``, ``.`` and ``..`` become ``"Series <index>"``. Each node
    keeps the original name in ``attrs["series_name"]``, and ``bfdask.open(path,
    series=node_name)`` opens it.
    """
    out: list[str] = []
    for index, label in enumerate(metadata.series_labels(names)):
        name = label.replace("/", SLASH).strip()
        if name in ("", ".", "..") or name in out:  # ("a/b" and "a:b" would collide)
            name = f"Series {index}"
        out.append(name)
    return out


def series_dataset(array: xr.DataArray) -> xr.Dataset:
    """A series' DataArray as a Dataset with the variable ``image``; the Dataset's attrs are
    the image's, without the (long) OME-XML."""
    dataset = array.to_dataset(name=VARIABLE)
    dataset.attrs = {k: v for k, v in array.attrs.items() if k != "ome_xml"}
    return dataset


def build_tree(
    path: str | os.PathLike[str],
    *,
    dims: str = "TCZYX",
    chunks: Mapping[str, Any] | str | None = None,
    ome: bool = True,
    pixels: str | None = None,
    lazy: bool = False,
) -> xr.DataTree:
    """The DataTree of every series of ``path``, each opened by :func:`bfdask.array.open_spec`
    (``lazy`` as there: dask for :func:`bfdask.open_all`, lazily indexed for the engine).

    Metadata is read once (one reader, one OME-XML dump for every series); opening a series
    also verifies its native plan on a few planes (:func:`bfdask.pixels.choose`).
    """
    import xarray as xr

    from .pixels import resolve_mode

    mode = resolve_mode(pixels)  # a bad value fails before any Java work
    specs = metadata.read_specs(path)
    document = metadata.OmeXml(metadata.file_ome_xml(path)) if ome else None
    children = {}
    for spec, name in zip(specs, node_names([s.series_name for s in specs]), strict=True):
        ome_xml = document.subset([spec.series]) if document is not None else None
        array = open_spec(spec, dims=dims, chunks=chunks, ome_xml=ome_xml, pixels=mode, lazy=lazy)
        children[name] = xr.DataTree(series_dataset(array))
    first = specs[0]
    root = xr.Dataset(
        attrs={"path": first.path, "format": first.format, "series_count": len(specs)}
    )
    return xr.DataTree(root, children=children, name=os.path.basename(first.path))
