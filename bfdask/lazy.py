"""One series as a lazily indexed array for xarray (no dask): what the engine hands xarray.

Indexing reads exactly the box it selects, through the same :class:`~bfdask.array.BlockSource`
as a dask task; ``preferred_chunks`` tells xarray's ``chunks=`` bfdask's own chunk plan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from .chunks import plan

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .array import BlockSource
    from .metadata import ImageSpec


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

    def __getitem__(self, key: indexing.ExplicitIndexer) -> NDArray[Any]:
        block: NDArray[Any] = indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self.source.__getitem__
        )
        return block


def preferred_chunks(spec: ImageSpec, dims: str) -> dict[str, int | tuple[int, ...]]:
    """bfdask's chunk plan as xarray's ``preferred_chunks``, for the dims the plan splits.

    Dims the plan leaves whole are left out: xarray then keeps them whole for ``chunks={}``,
    and does not warn when a user splits them (any box of a Bio-Formats series reads
    equally well; a split only adds tasks).
    """
    chunks = plan(spec)
    out: dict[str, int | tuple[int, ...]] = {}
    for dim in dims:
        blocks = chunks[dim]
        if len(blocks) > 1 or dim == "T":
            regular = all(b == blocks[0] for b in blocks[:-1]) and blocks[-1] <= blocks[0]
            out[dim] = blocks[0] if regular else blocks
    return out
