"""Z projections folded where the planes are read, as dask arrays (issue #18).

:func:`project_z` projects an array as :func:`bfdask.open` made it (its
:class:`~bfdask.array.BlockSource` found with :func:`source_of`) or as
:func:`bfdask.open_positions` joined it: each task reads its block's planes one at a time and
folds them in (:mod:`bfdask.projection`), so a ``(Z, Y, X)`` stack is never whole in memory.
Anything else -- a selection, arithmetic -- is not recognised (None), and the caller projects
the plain way. For the joined array, :func:`with_parts` keeps the series' arrays in its graph
under a key of their own, as ``from_array`` keeps a source; dask drops that key before
computing, so it never travels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dask.array as da
import numpy as np

from . import projection
from .array import BlockSource, as_dask, name_hash

if TYPE_CHECKING:
    import xarray as xr


def source_of(data: xr.DataArray | da.Array) -> BlockSource | None:
    """The :class:`BlockSource` behind ``data`` when ``data`` is the array ``bfdask.open``
    made (or its dask array), unchanged (no selection, no arithmetic); else None."""
    array = getattr(data, "data", data)
    if not isinstance(array, da.Array) or not array.name.startswith("bfdask-"):
        return None
    found = array.__dask_graph__().get(f"original-{array.name}")
    found = getattr(found, "value", found)  # dask may wrap plain values (DataNode)
    return found if isinstance(found, BlockSource) else None


def project_dask(
    array: da.Array,
    how: str,
    footprint: projection.Footprint | None = None,
    fit: tuple[int, int, int] | None = None,
) -> da.Array | None:
    """:func:`project_z` of the dask array of one series (axes as its source's ``dims``);
    ``fit``: the stack projected is ``(size, offset, pad)``, the series' planes from
    ``offset`` on and ``pad`` planes of zeros after them, ``size`` in all (default: its own)."""
    source = source_of(array)
    if source is None or how not in projection.HOWS or "Z" not in source.dims:
        return None
    axis = source.dims.index("Z")
    size, offset, pad = (source.shape[axis], 0, 0) if fit is None else fit
    if not (0 <= offset and 0 <= pad < size and offset + size - pad <= source.shape[axis]):
        return None
    projected = dataclasses.replace(
        source,
        dims=source.dims.replace("Z", ""),
        shape=source.shape[:axis] + source.shape[axis + 1 :],
        project=how,
        z_size=size,
        z_offset=offset,
        z_pad=pad,
        footprint=footprint,
    )
    chunks = array.chunks[:axis] + array.chunks[axis + 1 :]
    dtype = projection.result_dtype(np.dtype(source.dtype), how)
    kind = f"z{how}" if footprint is None else f"z{how}-footprint"
    name = f"bfdask-{kind}-{name_hash(array.name, footprint, fit)}"
    return as_dask(projected, name, chunks, dtype)


def project_z(
    data: xr.DataArray, how: str, footprint: projection.Footprint | None = None
) -> xr.DataArray | None:
    """``data`` projected over Z, each task folding its planes in as it reads them: the
    values and dtype of ``data.<how>("Z")``. None where ``data`` is neither the array
    ``bfdask.open`` made nor the one ``bfdask.open_positions`` joined, unchanged, or has no Z.

    With a ``footprint`` only its pixels are projected and the rest is zero: an intermediate
    for a step that reads nothing else (:func:`bfdask.profile`), never an array to hand out.
    """
    import xarray as xr

    if "Z" not in data.dims:
        return None
    array = project_dask(data.data, how, footprint) if isinstance(data.data, da.Array) else None
    if array is None:
        array = _project_parts(data, how, footprint)
    if array is None:
        return None
    coords = {name: c for name, c in data.coords.items() if "Z" not in c.dims}
    dims = [dim for dim in data.dims if dim != "Z"]
    return xr.DataArray(array, dims=dims, coords=coords, attrs=data.attrs, name=data.name)


# -- the arrays open_positions joins ---------------------------------------------------------


def z_fit(have: int, size_z: int, how: str) -> tuple[int, int]:
    """How a stack of ``have`` planes becomes ``size_z``: ``(offset, pad)``, its planes from
    ``offset`` on (``"crop"``: the central ones) then ``pad`` planes of zeros (``"pad"``)."""
    if have > size_z and how == "crop":
        return (have - size_z) // 2, 0
    return 0, max(0, size_z - have)


@dataclass(frozen=True)
class Parts:
    """How :func:`bfdask.open_positions` made its array: per position, the dask arrays of its
    series (``TCZYX``, as :func:`bfdask.array.open_dask` made them), each fitted to ``size_z``
    planes as ``z_mismatch`` says ("crop": its central planes; "pad": zeros after its own),
    joined along ``T``; the positions stacked along a new first axis."""

    positions: tuple[tuple[da.Array, ...], ...]
    size_z: int
    z_mismatch: str

    def fit(self, have: int) -> tuple[int, int, int]:
        """``(size, offset, pad)`` of a series of ``have`` planes, for :func:`project_dask`."""
        return (self.size_z, *z_fit(have, self.size_z, self.z_mismatch))


def with_parts(joined: da.Array, parts: Parts) -> da.Array:
    """``joined`` itself, its graph also holding ``parts`` (see :func:`parts_of`)."""
    from dask.highlevelgraph import HighLevelGraph

    key = f"bfdask-parts-{joined.name}"
    graph = HighLevelGraph.merge(
        joined.__dask_graph__(), HighLevelGraph.from_collections(key, {key: parts})
    )
    return da.Array(graph, joined.name, joined.chunks, meta=joined._meta)


def parts_of(array: da.Array) -> Parts | None:
    """The :class:`Parts` ``array`` was joined from when it is unchanged, else None."""
    found = array.__dask_graph__().get(f"bfdask-parts-{array.name}")
    found = getattr(found, "value", found)
    return found if isinstance(found, Parts) else None


def _project_parts(
    data: xr.DataArray, how: str, footprint: projection.Footprint | None
) -> da.Array | None:
    """The joined array of ``data`` with each series projected where it is read, joined the
    same way; None unless ``data`` is such an array (dims ``P, T, C, Z, Y, X``), unchanged."""
    parts = parts_of(data.data) if isinstance(data.data, da.Array) else None
    if parts is None or tuple(data.dims[:4]) != ("P", "T", "C", "Z"):
        return None
    stacked = []
    for series in parts.positions:
        projected = [
            project_dask(part, how, footprint, parts.fit(part.shape[2])) for part in series
        ]
        if any(item is None for item in projected):
            return None
        joined = [item for item in projected if item is not None]
        stacked.append(joined[0] if len(joined) == 1 else da.concatenate(joined, axis=0))
    result: da.Array = da.stack(stacked, axis=0)
    if result.shape != data.shape[:3] + data.shape[4:]:
        return None  # not joined as Parts says: project the plain way
    return result
