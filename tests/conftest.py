"""Shared fixtures: Bio-Formats fake files, the real-file corpus, expected fake pixels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

#: Bio-Formats pixel type -> the numpy dtype bfdask must give (written out here, independently
#: of bfdask.readers.PIXEL_TYPES, so that the tests check it)
PIXEL_TYPE_DTYPES = {
    "int8": "int8",
    "uint8": "uint8",
    "int16": "int16",
    "uint16": "uint16",
    "int32": "int32",
    "uint32": "uint32",
    "float": "float32",
    "double": "float64",
    "bit": "bool",
}

#: Bio-Formats' fake reader encodes series, plane, z, c, t in 10-pixel boxes of the top rows
FAKE_BOX = 10


@pytest.fixture
def fake(tmp_path: Path) -> Callable[..., str]:
    """Make an empty ``.fake`` file whose name gives Bio-Formats the image to simulate."""

    def make(name: str = "img", **keys: object) -> str:
        parts = [name] + [
            f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in keys.items()
        ]
        path = tmp_path / ("&".join(parts) + ".fake")
        path.touch()
        return str(path)

    return make


def plane_index(order: str, sizes: dict[str, int], z: int, c: int, t: int) -> int:
    """Bio-Formats' getIndex for a dimension order such as 'XYZCT' (effective C)."""
    pos = {"Z": z, "C": c, "T": t}
    index, stride = 0, 1
    for dim in order[2:]:
        index += pos[dim] * stride
        stride *= sizes[dim]
    return index


def expected_fake_plane(
    dtype: str, h: int, w: int, *, series: int, no: int, z: int, channel: int, t: int
) -> np.ndarray:
    """The plane Bio-Formats' FakeReader generates (gradient in x, coded boxes on top)."""
    np_dtype = np.dtype("uint8") if dtype == "bool" else np.dtype(dtype)
    signed = np_dtype.kind == "i"
    low = -(2 ** (8 * np_dtype.itemsize - 1)) if signed else 0
    x = np.arange(w, dtype=np.int64)
    values = np.broadcast_to(low + x, (h, w)).copy()
    special = {0: series, 1: no, 2: z, 3: channel, 4: t}
    for box, value in special.items():
        cols = slice(box * FAKE_BOX, (box + 1) * FAKE_BOX)
        values[: min(h, FAKE_BOX), cols] = value
    if np_dtype.kind == "f":
        out = values.astype(np_dtype)
    else:
        out = (values % (1 << (8 * np_dtype.itemsize))).astype(np.uint64).astype(np_dtype)
    if dtype == "bool":
        return out != 0
    return out
