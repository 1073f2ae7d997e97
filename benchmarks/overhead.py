"""Section 3: the fixed cost of one chunk, measured on tiny (64×64) fake planes.

Every layer is timed on the same N one-plane blocks: Bio-Formats' ``openBytes`` alone, bfdask's
``read_block``, the task function ``BlockSource.__getitem__``, and the full dask path (threaded
scheduler, LocalCluster) against the same graph whose source returns an empty block (dask's
no-op task), so that the difference is what bfdask adds per task.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _tasks
from ._util import Section, Settings, Table, block_source, fake_path, measure, read_block_kwargs
from .throughput import bf_ceiling


class NoopSource:
    """A from_array source like bfdask's BlockSource whose blocks cost nothing to read."""

    def __init__(self, shape: tuple[int, ...], dtype: str) -> None:
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.ndim = len(shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        shape = tuple(len(range(*k.indices(n))) for k, n in zip(key, self.shape))
        return np.empty(shape, self.dtype)


def _noop_array(like: Any) -> Any:
    import dask.array as da

    return da.from_array(
        NoopSource(like.shape, like.dtype.name),
        chunks=like.chunks,
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.empty((0,) * like.ndim, like.dtype),
        inline_array=False,
    )


def _raw_noop_graph(n: int) -> tuple[dict, list]:
    dsk = {("noop", i): (_tasks.noop,) for i in range(n)}
    return dsk, list(dsk)


def run(s: Settings, clusters: dict[int, Any]) -> Section:
    import dask.threaded

    import bfdask
    from bfdask import readers

    folder = s.work / "overhead"
    folder.mkdir(parents=True, exist_ok=True)
    n = s.n_tasks
    path = str(
        fake_path(
            folder, "tiny", sizeX=64, sizeY=64, sizeZ=1, sizeC=1, sizeT=n, pixelType="uint16"
        )
    )
    data = bfdask.open(path, ome=False)
    arr = data.data
    assert arr.npartitions == n
    source = block_source(arr)
    kw = read_block_kwargs(source)
    reps = s.repeats
    rows: list[list[Any]] = []
    per: dict[str, float] = {}

    def add(name: str, how: str, fn: Any) -> None:
        fn()  # warm
        t = measure(fn, reps)
        per[name] = t.median / n * 1000
        rows.append([name, how, per[name], t.median])

    add(
        "Bio-Formats openBytes",
        "reused byte[], cached method id, no numpy",
        lambda: bf_ceiling(path),
    )
    add(
        "read_block",
        "bfdask.readers.read_block(...) per plane",
        lambda: [
            readers.read_block(
                source.path, 0, 0, (t, t + 1), (0, 1), (0, 1), (0, 64), (0, 64), **kw
            )
            for t in range(n)
        ],
    )
    add(
        "BlockSource.__getitem__",
        "bfdask's task function per plane",
        lambda: [source[slice(t, t + 1)] for t in range(n)],
    )
    add(
        "dask no-op task, threads=1",
        "raw graph of N no-op tasks, dask.threaded.get",
        lambda: dask.threaded.get(*_raw_noop_graph(n), num_workers=1),
    )
    noop = _noop_array(arr)

    def pair(a: tuple[str, str, Any], b: tuple[str, str, Any]) -> None:
        """Time a and b alternately (drift on a shared machine hits both alike)."""
        import time

        a[2]()
        b[2]()
        times: dict[str, list[float]] = {a[0]: [], b[0]: []}
        for _ in range(max(reps, 5) if not s.quick else reps):
            for name, _how, fn in (a, b):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        for name, how, _ in (a, b):
            med = float(np.median(times[name]))
            per[name] = med / n * 1000
            rows.append([name, how + " (alternated)", per[name], med])

    pair(
        (
            "dask no-op block, threads=1",
            "same from_array graph + count, source returns np.empty",
            lambda: _tasks.read_and_count(noop, scheduler="threads", num_workers=1),
        ),
        (
            "bfdask block, threads=1",
            "bfdask array, read-and-discard",
            lambda: _tasks.read_and_count(arr, scheduler="threads", num_workers=1),
        ),
    )
    for k in sorted(clusters):
        _, client = clusters[k]
        add(
            f"dask no-op task, LocalCluster {k}",
            "raw graph of N no-op tasks, client.get",
            lambda client=client: client.get(*_raw_noop_graph(n)),
        )
        pair(
            (
                f"dask no-op block, LocalCluster {k}",
                "same graph as bfdask's, source returns np.empty",
                lambda client=client: _tasks.read_and_count(noop, scheduler=client),
            ),
            (
                f"bfdask block, LocalCluster {k}",
                "bfdask array, read-and-discard",
                lambda client=client: _tasks.read_and_count(arr, scheduler=client),
            ),
        )
    own = per["BlockSource.__getitem__"] - per["Bio-Formats openBytes"]
    above_threads = per["bfdask block, threads=1"] - per["dask no-op block, threads=1"]
    dist = sorted(clusters)
    above_dist = {
        k: per[f"bfdask block, LocalCluster {k}"] - per[f"dask no-op block, LocalCluster {k}"]
        for k in dist
    }
    summary = [
        ["bfdask's own cost per task (task function − openBytes)", own, met(own <= 0.1)],
        [
            "bfdask block − dask no-op block, threads=1 (includes openBytes)",
            above_threads,
            met(above_threads <= 0.1),
        ],
    ] + [
        [
            f"bfdask block − dask no-op block, LocalCluster {k} (includes openBytes)",
            above_dist[k],
            met(above_dist[k] <= 0.1),
        ]
        for k in dist
    ]
    table = Table(
        f"Cost per task, {n} one-plane tasks of 64×64 uint16 (fake file)",
        ["what", "how", "ms per task", "median s for all"],
        rows,
        note=f"Median of {reps} runs after one warm-up; per task = total ÷ {n}.",
    )
    table2 = Table(
        "Above dask's no-op task (target ≤ 0.1 ms)",
        ["difference", "ms per task", "target"],
        summary,
    )
    return Section(
        "3. Fixed cost per chunk",
        tables=[table, table2],
        data={
            "per_task_ms": per,
            "own_ms": own,
            "above_threads_ms": above_threads,
            "above_dist_ms": above_dist,
        },
    )


def met(ok: bool) -> str:
    return "met" if ok else "not met"
