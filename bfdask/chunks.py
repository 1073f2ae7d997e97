"""Chunk plans: how a series is cut into dask blocks. Pure Python, no Java.

The default is one block per timepoint -- the whole (C, Z, Y, X) stack -- because a dask task
has a fixed cost (~1.7 ms on a distributed cluster, measured here) that many-plane blocks
amortise. A block larger than dask's ``array.chunk-size`` is split along Z, then into Y/X
tiles; a plane larger than Java's 2 GB array limit is always read in tiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dask.config
import dask.utils
import numpy as np
from dask.array.core import normalize_chunks

if TYPE_CHECKING:
    from .metadata import ImageSpec

JAVA_MAX_ARRAY = 2**31 - 16


def _budget(chunk_size: int | str | None) -> int:
    value = chunk_size if chunk_size is not None else dask.config.get("array.chunk-size")
    return int(dask.utils.parse_bytes(value)) if isinstance(value, str) else int(value)


def _even(size: int, step: int) -> tuple[int, ...]:
    step = max(1, min(step, size))
    full, rest = divmod(size, step)
    return (step,) * full + ((rest,) if rest else ())


def default_chunks(
    spec: ImageSpec, chunk_size: int | str | None = None
) -> dict[str, tuple[int, ...]]:
    """One block per timepoint, split along Z, then Y, then X, only to fit ``chunk_size``.

    Parameters
    ----------
    spec
        The series.
    chunk_size
        Byte budget of one block; default: dask config ``array.chunk-size``.
    """
    budget = _budget(chunk_size)
    pixel = spec.itemsize * spec.samples  # bytes of one pixel with all its samples
    sizes = spec.sizes
    chunks: dict[str, tuple[int, ...]] = {dim: (size,) for dim, size in sizes.items()}
    chunks["T"] = _even(spec.size_t, 1)
    plane = spec.size_y * spec.size_x * pixel
    stack = spec.size_c * plane
    if spec.size_z * stack > budget:
        chunks["Z"] = _even(spec.size_z, max(1, budget // max(1, stack)))
    # a tile must fit both the budget (all channels of it) and one Java byte[]
    tile_budget = min(max(1, budget // spec.size_c), JAVA_MAX_ARRAY)
    if plane > tile_budget:
        rows = tile_budget // (spec.size_x * pixel)
        if rows >= 1:
            chunks["Y"] = _even(spec.size_y, rows)
        else:
            chunks["Y"] = _even(spec.size_y, 1)
            chunks["X"] = _even(spec.size_x, max(1, tile_budget // pixel))
    return chunks


def _check_block_size(dim: str, value: Any) -> None:
    """A block size of 0 (or below -1) cannot tile an axis: a clear error, not dask's
    ``ZeroDivisionError``."""
    sizes = value if isinstance(value, tuple | list) else (value,)
    for size in sizes:
        if isinstance(size, int | np.integer) and not isinstance(size, bool):
            if size == 0 or size < -1:
                raise ValueError(
                    f"chunks={{{dim!r}: {value!r}}}: a block size must be a positive number of "
                    f"planes or pixels, -1 (the whole axis) or 'auto', not {size}."
                )


def plan(
    spec: ImageSpec,
    chunks: Mapping[str, Any] | str | None = None,
    chunk_size: int | str | None = None,
) -> dict[str, tuple[int, ...]]:
    """The chunks of every dimension of ``spec``, in canonical order TCZYX(S).

    Parameters
    ----------
    spec
        The series.
    chunks
        Optional overrides by dimension name (any case, as ``dims``), each as dask accepts for
        one axis: an int block size, a tuple of block sizes, ``-1`` (whole axis) or
        ``"auto"``. Unnamed dims keep the default plan (:func:`default_chunks`); ``"auto"``
        alone is that plan. ``S`` (RGB samples) cannot be split.
    chunk_size
        Byte budget used by the defaults (default: dask's ``array.chunk-size``).

    Raises
    ------
    ValueError
        For an unknown or repeated dimension name, a block size of 0, a split ``S`` or block
        sizes that do not add up.
    """
    result = default_chunks(spec, chunk_size)
    if chunks is None or (isinstance(chunks, str) and chunks.lower() == "auto"):
        return result  # "auto", as the xarray engine takes it: bfdask's default plan
    if not isinstance(chunks, Mapping):
        raise ValueError(
            f"chunks must be a dict by dimension name such as {{'T': 1, 'Z': 10}} (or "
            f"'auto'), not {chunks!r}"
        )
    sizes = spec.sizes
    by_dim: dict[str, Any] = {}
    for key, value in chunks.items():
        dim = key.upper() if isinstance(key, str) else key  # the case rule of `dims`
        if dim in by_dim:
            raise ValueError(f"chunks names dimension {dim!r} twice ({list(chunks)}).")
        by_dim[dim] = value
    unknown = set(by_dim) - set(sizes)
    if unknown:
        raise ValueError(
            f"chunks names unknown dimension(s) {sorted(map(str, unknown))}; this series has "
            f"dims {''.join(sizes)}."
        )
    for dim, value in by_dim.items():
        if value is None:
            continue
        _check_block_size(dim, value)
        normalized = normalize_chunks(
            (value,), shape=(sizes[dim],), limit=_budget(chunk_size), dtype=spec.dtype
        )[0]
        if dim == "S" and len(normalized) != 1:
            raise ValueError("The S (RGB samples) dimension cannot be split into chunks.")
        result[dim] = tuple(int(n) for n in normalized)
    # a Y/X tile larger than one Java array cannot be read: shrink it
    largest = max(result["Y"]) * max(result["X"]) * spec.samples * spec.itemsize
    if largest > JAVA_MAX_ARRAY:
        rows = max(1, JAVA_MAX_ARRAY // (max(result["X"]) * spec.samples * spec.itemsize))
        result["Y"] = _even(spec.size_y, min(rows, max(result["Y"])))
    return result
