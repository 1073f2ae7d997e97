"""The per-thread reader cache: LRU bound, close on evict, reopen on change, Memoizer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import dask
import numpy as np
import pytest
import tifffile

import bfdask
from bfdask import config, readers


def test_cache_is_bounded_and_reuses_readers(fake):
    paths = [fake(f"f{i}", sizeX=16, sizeY=16) for i in range(4)]
    readers.close_all()
    with dask.config.set({"bfdask.reader.cache-size": 2}):
        for path in paths:
            bfdask.open(path).values
        assert readers.open_readers() == 2
        first = readers.get_reader(readers.check_path(paths[-1]))
        assert readers.get_reader(readers.check_path(paths[-1])) is first
    readers.close_all()
    assert readers.open_readers() == 0


def test_evicted_reader_is_closed(fake):
    a, b = fake("a", sizeX=16, sizeY=16), fake("b", sizeX=16, sizeY=16)
    readers.close_all()
    with dask.config.set({"bfdask.reader.cache-size": 1}):
        reader_a = readers.get_reader(readers.check_path(a))
        readers.get_reader(readers.check_path(b))
    assert reader_a.java is None  # closed when evicted


def test_file_rewritten_on_disk_is_reopened(tmp_path):
    path = tmp_path / "changing.ome.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8), "uint8"), ome=True, metadata={"axes": "ZYX"})
    assert int(bfdask.open(path).sum().compute()) == 0
    tifffile.imwrite(path, np.ones((2, 8, 8), "uint8"), ome=True, metadata={"axes": "ZYX"})
    os.utime(path, ns=(1, 10**18))  # make sure the mtime differs even on coarse clocks
    assert int(bfdask.open(path).sum().compute()) == 2 * 8 * 8


@pytest.mark.slow  # two fresh processes, each starting a JVM
def test_memoizer_writes_a_memo_and_reopens_from_it(tmp_path):
    data = tmp_path / "memo.ome.tif"
    tifffile.imwrite(data, np.arange(64, dtype="uint8").reshape(8, 8), ome=True)
    memo = tmp_path / "memo-dir"
    code = textwrap.dedent(
        f"""
        import bfdask
        print(int(bfdask.open({str(data)!r}).sum().compute()))
        """
    )
    env = {**os.environ, "BFDASK_MEMO_DIR": str(memo), "BFDASK_MEMO_MIN_MS": "0"}
    for _ in range(2):  # first run writes the memo, the second loads it
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(str(sum(range(64))))
    memos = list(memo.rglob("*.bfmemo"))
    assert len(memos) == 1 and memos[0].stat().st_size > 0


def test_memoization_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("BFDASK_MEMO_DIR", "")
    assert config.memo_dir() is None
    monkeypatch.setenv("BFDASK_MEMO_DIR", str(tmp_path / "m"))
    assert config.memo_dir() == tmp_path / "m"
