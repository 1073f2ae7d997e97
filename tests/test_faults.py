"""The fault matrix of issue #5: a file changed under us, dying workers, concurrency, leaks.

Bad-input cases that need no cluster live in tests/test_errors.py; README "Reliability" maps
every case to its test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING

import dask
import numpy as np
import pytest
import tifffile
from dask.array.utils import assert_eq
from shared_data import DATA, MAKE_LIF

import bfdask

if TYPE_CHECKING:
    from pathlib import Path

MiB = 1 << 20


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


# -- truncated files ------------------------------------------------------------------------


def truncate_copy(source: Path, directory: Path) -> Path:
    if not source.exists():
        pytest.skip("shared data not present")
    raw = source.read_bytes()
    half = directory / f"half of {source.name}"
    half.write_bytes(raw[: len(raw) // 2])
    return half


def test_real_file_truncated_to_half_fails_on_the_missing_planes_only(tmp_path, fake):
    source = DATA / "tiff" / "stuck.tif"  # 3 planes, 2.4 MB
    half = truncate_copy(source, tmp_path)
    with pytest.warns(bfdask.TruncatedFileWarning, match=r"half of stuck\.tif.*plane 2 on"):
        data = bfdask.open(half, chunks={"T": 1})
    assert data.attrs["pixels"] == "native"  # the plan knows where each plane ends
    original = bfdask.open(source).values
    assert_eq(data[:2].data, original[:2])  # before the cut: intact
    with pytest.raises(
        bfdask.CorruptFileError, match=r"plane 2 of series 0 of .*half of stuck\.tif.*ends"
    ):
        data[2].values
    with pytest.raises(bfdask.CorruptFileError):
        data.max().compute()
    assert int(bfdask.open(fake("after", sizeX=64, sizeY=8)).max()) == 63  # JVM still fine


def test_single_plane_file_truncated_reads_its_rows_before_the_cut(tmp_path):
    source = DATA / "tiff" / "hela-cells.tif"  # one RGB plane; Bio-Formats pads it silently
    half = truncate_copy(source, tmp_path)
    with pytest.warns(bfdask.TruncatedFileWarning):
        data = bfdask.open(half)
    original = bfdask.open(source).values
    assert_eq(data.isel(Y=slice(0, 100)).data, original[..., :100, :, :])
    with pytest.raises(bfdask.CorruptFileError, match=r"plane 0 of series 0 of .*hela-cells"):
        data.values


def test_truncated_lif_fails_at_open_naming_the_file(tmp_path):
    make_lif = MAKE_LIF
    if not make_lif.exists():
        pytest.skip("make_lif.py not present")
    lif = tmp_path / "whole.lif"
    subprocess.run(
        [sys.executable, str(make_lif), str(lif), "--series", "2", "--t", "3", "--z", "4",
         "--c", "2", "--y", "32", "--x", "32", "--dtype", "uint16"],
        check=True, capture_output=True,
    )  # fmt: skip
    half = truncate_copy(lif, tmp_path)
    # Bio-Formats reads every memory block's header at open: a cut LIF fails there
    with pytest.raises(bfdask.UnsupportedFormatError, match=r"half of whole\.lif.*truncated"):
        bfdask.open(half)
    assert bfdask.open(lif, series=1).sizes["Z"] == 4


# -- concurrency and resources --------------------------------------------------------------


def test_eight_threads_on_overlapping_blocks_match_a_sequential_read(tmp_path):
    """Bio-Formats readers are not thread-safe: each thread must read through its own."""
    from bfdask import readers

    rng = np.random.default_rng(5)
    source = rng.integers(0, 60000, (8, 2, 6, 48, 40), dtype="uint16")
    path = tmp_path / "shared by threads.ome.tif"
    tifffile.imwrite(path, source, ome=True, metadata={"axes": "TCZYX"})
    sequential = bfdask.open(path).compute(scheduler="sync").values
    np.testing.assert_array_equal(sequential, source)

    source_of_blocks = bfdask.open(path, chunks={"T": 1, "Z": 2}).data
    barrier = threading.Barrier(8)
    readers_seen: dict[int, object] = {}  # the Java objects themselves: an id alone can be
    # reused once a thread has ended and its reader was closed
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            barrier.wait()
            for round_ in range(15):  # every thread reads every block, from a different start
                t = (k + round_) % 8
                got = source_of_blocks[t : t + 1, :, k % 5 : k % 5 + 2, 3:45].compute(
                    scheduler="sync"
                )
                np.testing.assert_array_equal(got, source[t : t + 1, :, k % 5 : k % 5 + 2, 3:45])
            checked = readers.check_path(path)
            readers_seen[k] = readers.get_reader(checked).java
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    assert len({id(java) for java in readers_seen.values()}) == 8  # one reader per thread
    # and all at once through dask's own thread pool
    with dask.config.set(scheduler="threads", num_workers=8):
        assert_eq(bfdask.open(path, chunks={"Z": 1}).data, source, scheduler="threads")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_more_files_than_the_cache_keeps_fds_and_readers_bounded(tmp_path):
    from bfdask import readers

    paths = []
    for k in range(40):
        path = tmp_path / f"many_{k:02d}.ome.tif"
        tifffile.imwrite(path, np.full((2, 16, 16), k, "uint8"), ome=True)
        paths.append(path)
    with dask.config.set({"bfdask.reader.cache-size": 4}):
        int(bfdask.open(paths[0]).sum().compute(scheduler="sync"))  # JVM, jars, classes loaded
        readers.close_all()
        before = open_fds()
        peak_fds = peak_readers = 0
        for k, path in enumerate(paths):
            assert int(bfdask.open(path).max().compute(scheduler="sync")) == k
            peak_fds = max(peak_fds, open_fds())
            peak_readers = max(peak_readers, readers.open_readers())
    assert peak_readers == 4
    assert peak_fds - before <= 4 + 2  # one per cached reader, plus slack for the runtime
    readers.close_all()
    assert readers.open_readers() == 0
    assert open_fds() <= before + 2


SOAK_READS = 20_000

SOAK = """
import gc, json, sys, dask, bfdask
from bfdask import readers

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))

def java_heap_used():
    from bfdask import bridge
    java = bridge.current()
    runtime = java.static_call("java/lang/Runtime", "getRuntime", "()Ljava/lang/Runtime;")
    for _ in range(2):
        java.call(runtime, "gc", "()V")
    return java.call(runtime, "totalMemory", "()J") - java.call(runtime, "freeMemory", "()J")

path, reads = sys.argv[1], int(sys.argv[2])
data = bfdask.open(path, chunks={"T": 1, "Z": 1}, ome=False)  # 100 one-plane blocks per T
per_t = data.sizes["Z"]
with dask.config.set(scheduler="threads", num_workers=2):
    data[:10].sum().compute()  # warm up: JVM, classes, reader, thread pool
    gc.collect()
    rss0, heap0, planes0 = rss(), java_heap_used(), readers.planes_read()
    for k in range(reads // (20 * per_t)):
        t = (20 * k) % data.sizes["T"]
        data[t : t + 20].sum().compute()
    gc.collect()
    rss1, heap1, planes1 = rss(), java_heap_used(), readers.planes_read()
print(json.dumps({"reads": planes1 - planes0, "rss0": rss0, "rss1": rss1,
                  "heap0": heap0, "heap1": heap1, "readers": readers.open_readers()}))
"""


@pytest.mark.slow  # 12 s idle, up to a minute on a loaded machine; CI runs it
def test_soak_many_block_reads_leak_neither_memory_nor_readers(tmp_path, capsys):
    path = tmp_path / "soak&sizeX=64&sizeY=64&sizeZ=100&sizeT=200&pixelType=uint16.fake"
    path.touch()
    result = subprocess.run(
        [sys.executable, "-c", SOAK, str(path), str(SOAK_READS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    growth, heap_growth = out["rss1"] - out["rss0"], out["heap1"] - out["heap0"]
    with capsys.disabled():
        print(
            f"\nsoak: {out['reads']} block reads; RSS {out['rss0'] / MiB:.1f} -> "
            f"{out['rss1'] / MiB:.1f} MiB ({growth / MiB:+.1f} MiB); Java heap in use after GC "
            f"{out['heap0'] / MiB:.1f} -> {out['heap1'] / MiB:.1f} MiB"
        )
    assert out["reads"] == SOAK_READS
    assert growth < 50 * MiB
    assert heap_growth < 8 * MiB  # no Java objects kept alive by leaked references
    assert out["readers"] == 1


# -- the JVM --------------------------------------------------------------------------------


def test_a_second_start_with_another_heap_warns_and_changes_nothing(fake):
    from bfdask import jvm

    bfdask.open(fake("warm", sizeX=8, sizeY=8)).values  # the JVM runs
    heap = jvm.max_heap()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bfdask.start_jvm(heap)  # the same heap: nothing to say
        bfdask.start_jvm()
    with pytest.warns(RuntimeWarning, match=r"already runs with a .* GiB heap.*BFDASK_MAX_HEAP"):
        bfdask.start_jvm(heap + 256 * MiB)
    assert jvm.max_heap() == heap
    assert abs(bfdask.jvm_info()["max_heap"] - heap) < 0.05 * heap  # what Java itself reports


# -- faults on a cluster --------------------------------------------------------------------


def _cluster(**kwargs):
    distributed = pytest.importorskip("distributed")
    options = {
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
        "silence_logs": 50,
        **kwargs,
    }
    return distributed.LocalCluster(**options)


@pytest.mark.slow
@pytest.mark.cluster
def test_worker_killed_mid_compute_gives_the_undisturbed_result(tmp_path):
    import distributed

    path = tmp_path / "killed&sizeX=256&sizeY=256&sizeZ=8&sizeT=240&pixelType=uint16.fake"
    path.touch()
    data = bfdask.open(path, chunks={"T": 1}).astype("float64")
    reduction = data.sum(dim=("C", "Z", "Y", "X")) + data.isel(Z=0, C=0, Y=slice(0, 12)).max(
        dim=("Y", "X")
    )  # coded boxes of the top rows differ per T: a wrong or lost block shows
    expected = reduction.compute(scheduler="threads").values
    with _cluster(n_workers=2) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        victim_pid = next(iter(client.run(os.getpid).values()))
        future = client.compute(reduction)
        # wait until part of the work is done, then kill a worker process outright
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = sum(
                state == "memory"
                for state in client.run_on_scheduler(
                    lambda dask_scheduler: [ts.state for ts in dask_scheduler.tasks.values()]
                )
            )
            if done >= 20:
                break
            time.sleep(0.02)
        assert not future.done(), "the reduction finished before the kill: make it bigger"
        os.kill(victim_pid, signal.SIGKILL)
        result = future.result(timeout=240)
        assert victim_pid not in client.run(os.getpid).values()  # the nanny started a new one
    np.testing.assert_array_equal(result.values, expected)


@pytest.mark.slow
@pytest.mark.cluster
def test_java_out_of_heap_on_a_worker_leaves_it_usable(tmp_path):
    import distributed

    big = tmp_path / "big&sizeX=12000&sizeY=12000&pixelType=uint16.fake"  # 275 MiB plane
    small = tmp_path / "small&sizeX=64&sizeY=64&sizeT=4.fake"
    big.touch()
    small.touch()
    with _cluster(n_workers=1) as cluster, distributed.Client(cluster) as client:
        client.register_plugin(bfdask.JVMPlugin(max_heap="128M"))
        (pid,) = client.run(os.getpid).values()
        with pytest.raises(MemoryError, match=r"Java ran out of heap \(0\.12 GiB\)") as info:
            bfdask.open(big).sum().compute()
        assert isinstance(info.value, bfdask.JavaMemoryError)
        assert "BFDASK_MAX_HEAP" in str(info.value)
        # the same worker process, with the same JVM, completes the next tasks
        assert int(bfdask.open(small).max().compute()) > 0
        expected = bfdask.open(small).compute(scheduler="sync").values
        np.testing.assert_array_equal(bfdask.open(small).compute().values, expected)
        assert list(client.run(os.getpid).values()) == [pid]
