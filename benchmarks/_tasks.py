"""Small module-level functions that dask tasks run (importable on every worker)."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np


def block_nbytes(block: np.ndarray) -> np.ndarray:
    """Read-and-discard: a block becomes its byte count (shape (1, ...) for map_blocks)."""
    return np.full((1,) * block.ndim, block.nbytes, dtype=np.int64)


def block_max(block: np.ndarray) -> np.ndarray:
    return np.full((1,) * block.ndim, block.max() if block.size else 0, dtype=np.int64)


def read_and_count(array: Any, scheduler: Any = None, **kwargs: Any) -> int:
    """Compute ``array`` block by block, keeping only each block's byte count."""
    counts = array.map_blocks(block_nbytes, chunks=(1,) * array.ndim, dtype=np.int64)
    if scheduler is not None and hasattr(scheduler, "compute"):  # a distributed Client
        return int(scheduler.compute(counts.sum(), sync=True))
    return int(counts.sum().compute(scheduler=scheduler, **kwargs))


def read_range_max(path: str, t0: int, t1: int, sizes: dict[str, int], kw: dict[str, Any]) -> int:
    """One task that reads timepoints [t0, t1) block by block (as dask's tasks would) and
    returns their max: the 'one task per worker' baseline."""
    from bfdask import readers

    best = 0
    for t in range(t0, t1):
        block = readers.read_block(
            path,
            0,
            0,
            (t, t + 1),
            (0, sizes["C"]),
            (0, sizes["Z"]),
            (0, sizes["Y"]),
            (0, sizes["X"]),
            **kw,
        )
        best = max(best, int(block.max()))
        del block
    return best


def noop(*args: Any) -> int:
    return 0


def peak_rss() -> int:
    """Peak resident memory of this process so far (bytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def malloc_tuning(
    mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20
) -> dict[str, Any]:
    """The proposed fix, applied from outside bfdask: glibc's mallopt so that per-plane numpy
    buffers come from the heap instead of fresh mmap'd pages (distributed's nanny starts
    workers with MALLOC_TRIM_THRESHOLD_=65536, which also freezes the mmap threshold at 128 KiB,
    so every plane-sized allocation page-faults). Returns the minor-fault count so far."""
    import ctypes
    import resource

    libc = ctypes.CDLL("libc.so.6")
    ok = bool(libc.mallopt(-3, mmap_threshold)) and bool(libc.mallopt(-1, trim_threshold))
    return {
        "ok": ok,
        "env": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
        "minflt": resource.getrusage(resource.RUSAGE_SELF).ru_minflt,
    }


def minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class RSSSampler:
    """Samples the resident memory of some processes every ``interval`` s; keeps each peak."""

    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        import threading

        import psutil

        self.procs = [psutil.Process(p) for p in pids]
        self.peak = dict.fromkeys(pids, 0)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in self.procs:
                try:
                    rss = proc.memory_info().rss
                except Exception:
                    continue
                self.peak[proc.pid] = max(self.peak[proc.pid], rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def warm_jvm() -> str:
    import bfdask

    return bfdask.jvm_info()["java_version"]


def worker_pid() -> int:
    return os.getpid()


def profile_block(block: np.ndarray) -> np.ndarray:
    """Stand-in profile statistics of one (T, C, Z, Y, X) block: max projection over Z, then
    min / max / mean of the middle row's profile, per T and C -> shape (T, C, 1, 1, 3)."""
    proj = block.max(axis=2)  # (T, C, Y, X)
    row = proj[:, :, proj.shape[2] // 2, :].astype(np.float64)  # (T, C, X)
    out = np.stack([row.min(-1), row.max(-1), row.mean(-1)], axis=-1)  # (T, C, 3)
    return out[:, :, None, None, :]


def start_cluster(n_workers: int, memory_limit: Any = "auto", env: dict[str, str] | None = None):
    """A quiet LocalCluster of ``n_workers`` single-threaded worker processes, and its Client."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        memory_limit=memory_limit,
        silence_logs=logging.ERROR,
        env=env or {},
    )
    client = Client(cluster)
    client.run(warm_jvm)
    return cluster, client
