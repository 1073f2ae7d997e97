"""Shared fixtures: Bio-Formats fake files, the real-file corpus, expected fake pixels."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

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


def _open_files_under(folder: Path) -> list[str]:
    """Files below ``folder`` this process has open (Linux: /proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{folder}/"):
            found.append(target)
    return found


@pytest.fixture(autouse=True)
def no_file_left_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After each test, once bfdask's handle cache lets go of the test's own files (it keeps
    files open on purpose, per thread), no file the test made may still be open: a reader,
    TiffFile or descriptor held anywhere else is a leak."""
    yield
    from bfdask import handles, jvm

    base = tmp_path_factory.getbasetemp().resolve()
    if jvm.is_running():
        jvm.ensure()  # attach this thread: closing a Java reader is a Java call
    handles.close_all(under=str(base))
    if jvm.is_running():
        from bfdask import readers

        readers.close_orphans()  # readers of threads that ended during the test
    leaked = _open_files_under(base)
    assert not leaked, f"files left open after the test: {leaked}"


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
