"""The fault matrix of issue #5: a file changed under us, dying workers, concurrency, leaks.

Bad-input cases that need no cluster live in tests/test_errors.py; README "Reliability" maps
every case to its test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

import bfdask


def write_stack(path: Path, value: int, planes: int = 4) -> None:
    data = np.full((planes, 16, 16), value, "uint8")
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX"})


# -- the file changes between open and compute ----------------------------------------------


def test_file_replaced_after_open_raises_instead_of_mixing(tmp_path):
    path = tmp_path / "replaced.ome.tif"
    write_stack(path, 1)
    data = bfdask.open(path, chunks={"Z": 1})
    assert int(data[:, :, :2].sum().compute()) == 2 * 16 * 16  # half read before the change
    write_stack(path, 7)  # same shape, same size: only the content and mtime differ
    os.utime(path, ns=(1, 10**18))  # coarse clocks: make the mtime differ for sure
    with pytest.raises(bfdask.FileChangedError, match=r"replaced\.ome\.tif.*changed on disk"):
        data.compute()
    with pytest.raises(OSError):  # catchable as the builtin too
        data[:, :, 2:].compute()
    # Opened again, the new version reads whole and right.
    assert int(bfdask.open(path).sum().compute()) == 7 * 4 * 16 * 16


def test_file_grown_after_open_raises(tmp_path):
    path = tmp_path / "grown.ome.tif"
    write_stack(path, 1)
    data = bfdask.open(path)
    stat = path.stat()
    with open(path, "ab") as f:  # appended bytes, mtime restored: the size alone tells
        f.write(b"\0" * 10)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(bfdask.FileChangedError, match="size"):
        data.compute()


def test_file_deleted_after_open_raises_file_not_found(tmp_path):
    path = tmp_path / "deleted.ome.tif"
    write_stack(path, 1)
    data = bfdask.open(path)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"deleted\.ome\.tif.*deleted or moved"):
        data.compute()
