"""Section 4: scale -- many series, heavy metadata, huge graphs, data larger than memory."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import numpy as np

from . import _tasks
from ._util import Section, Settings, Table, fake_path, run_python

_MEMO_PROBE = r"""
import json, os, sys, time
import bfdask, bfdask.jvm
from bfdask import readers
bfdask.jvm.ensure()
from bfdask import bridge
path = os.environ["BENCH_PATH"]
warm = os.environ.get("BENCH_WARM")
tw = time.perf_counter()
if warm:  # load Bio-Formats' reader classes on a small file first
    bfdask.open(warm)
t0 = time.perf_counter()
reader = readers.get_reader(readers.check_path(path), 0)
t1 = time.perf_counter()
data = bfdask.open(path)
t2 = time.perf_counter()
loaded = saved = None
try:
    loaded = bool(bridge.current().call(reader.java, "isLoadedFromMemo", "()Z"))
    saved = bool(bridge.current().call(reader.java, "isSavedToMemo", "()Z"))
except Exception:
    pass
print(json.dumps({"setid_s": t1 - t0, "open_s": t2 - t0, "series": reader.series_count,
                  "loaded": loaded, "saved": saved, "warm_s": t0 - tw}))
"""


def write_many_series(path: Any, n: int) -> None:
    """An OME-TIFF with ``n`` small series (4 Z planes of 64×64 each) -- heavy metadata."""
    import tifffile

    plane = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    tmp = path.with_suffix(".part")
    with tifffile.TiffWriter(tmp, ome=True) as tif:
        for i in range(n):
            tif.write(
                np.stack([plane + i + z for z in range(4)]),
                metadata={"axes": "ZYX", "Name": f"Pos{i:04d}"},
                photometric="minisblack",
            )
    os.replace(tmp, path)


def _open_times(s: Settings, folder: Any) -> Table:
    import bfdask
    from bfdask import readers

    rows = []
    old = os.environ.get("BFDASK_MEMO_DIR")
    os.environ["BFDASK_MEMO_DIR"] = ""  # time Bio-Formats' parsing, not the Memoizer
    try:
        for count in s.series_counts:
            opens, lists = [], []
            for rep in range(s.repeats):
                path = fake_path(
                    folder,
                    f"series{count}_r{rep}",
                    sizeX=512,
                    sizeY=512,
                    sizeZ=10,
                    sizeT=10,
                    sizeC=2,
                    pixelType="uint16",
                    series=count,
                )
                t0 = time.perf_counter()
                bfdask.open(path, series=count - 1)
                t1 = time.perf_counter()
                infos = bfdask.list_series(path)
                t2 = time.perf_counter()
                assert len(infos) == count
                opens.append(t1 - t0)
                lists.append(t2 - t1)
                readers.close_all()
            rows.append(
                [
                    count,
                    float(np.median(opens)) * 1000,
                    float(np.median(lists)) * 1000,
                    float(np.median(lists)) * 1000 / count,
                ]
            )
    finally:
        if old is None:
            os.environ.pop("BFDASK_MEMO_DIR", None)
        else:
            os.environ["BFDASK_MEMO_DIR"] = old
    return Table(
        "Open + metadata time of fake files by series count (JVM warm, Memoizer off)",
        [
            "series",
            "bfdask.open(last series) ms",
            "list_series ms (reader already open)",
            "list_series ms per series",
        ],
        rows,
        note=f"Median of {s.repeats} files each (a new file per run: no reader reuse).",
    )


def _memoizer(s: Settings, folder: Any) -> tuple[Table, dict[str, Any]]:
    import tifffile

    path = folder / f"heavy_{s.heavy_series}series.ome.tif"
    if not path.exists():
        write_many_series(path, s.heavy_series)
    small = folder / "small_warmup.ome.tif"
    if not small.exists():
        tifffile.imwrite(
            small, np.zeros((2, 32, 32), np.uint16), ome=True, metadata={"axes": "ZYX"}
        )
    memo = folder / "memo"
    reps = s.repeats
    rows = []
    out: dict[str, Any] = {}
    variants = [("warm", str(small))] if s.quick else [("cold", ""), ("warm", str(small))]
    for variant, warm in variants:
        env = {
            "BFDASK_MEMO_DIR": str(memo),
            "BFDASK_MEMO_MIN_MS": "0" if s.quick else "100",
            "BENCH_PATH": str(path),
            "BENCH_WARM": warm,
        }
        first, reopen = [], []
        for _ in range(reps):
            shutil.rmtree(memo, ignore_errors=True)
            first.append(run_python(_MEMO_PROBE, env))
        for _ in range(reps):
            reopen.append(run_python(_MEMO_PROBE, env))
        f_set = float(np.median([r["setid_s"] for r in first]))
        f_open = float(np.median([r["open_s"] for r in first]))
        r_set = float(np.median([r["setid_s"] for r in reopen]))
        r_open = float(np.median([r["open_s"] for r in reopen]))
        what = (
            "fresh process, Bio-Formats classes not yet loaded"
            if variant == "cold"
            else "fresh process, classes loaded by a 1-series OME-TIFF first"
        )
        rows += [
            [
                what,
                "first open (no memo file)",
                f_set * 1000,
                f_open * 1000,
                str(first[-1]["saved"]),
                str(first[-1]["loaded"]),
            ],
            [
                what,
                "reopen (memo file present)",
                r_set * 1000,
                r_open * 1000,
                str(reopen[-1]["saved"]),
                str(reopen[-1]["loaded"]),
            ],
            [what, "reopen ÷ first", r_set / f_set, r_open / f_open, "-", "-"],
        ]
        out[variant] = {
            "first_setid_s": f_set,
            "reopen_setid_s": r_set,
            "ratio": r_set / f_set,
            "first_open_s": f_open,
            "reopen_open_s": r_open,
            "loaded": reopen[-1]["loaded"],
            "series": first[0]["series"],
        }
    out.update(out["warm"])
    table = Table(
        f"Memoizer on a heavy-metadata OME-TIFF ({out['series']} series, "
        f"{path.stat().st_size / 1e6:.1f} MB, written by tifffile); every run a fresh process",
        [
            "process",
            "open",
            "reader open (setId) ms",
            "bfdask.open total ms",
            "saved to memo",
            "loaded from memo",
        ],
        rows,
        note=(
            f"Median of {reps} fresh processes each; JVM start-up excluded (started before "
            "timing). 'bfdask.open total' = setId + core metadata + the series' OME-XML."
        ),
    )
    return table, out


def _graph(s: Settings, folder: Any) -> tuple[Table, dict[str, Any]]:
    import bfdask

    T, Z, Y, X = s.big_fake
    path = fake_path(
        folder, "huge", sizeX=X, sizeY=Y, sizeZ=Z, sizeT=T, sizeC=1, pixelType="uint16"
    )
    nbytes = T * Z * Y * X * 2
    rows = []
    data: dict[str, Any] = {}
    for label, chunks in (("default", None), ('{"Z": 1}', {"Z": 1})):
        t0 = time.perf_counter()
        arr = bfdask.open(path, chunks=chunks)
        t1 = time.perf_counter()
        ntasks = arr.data.npartitions
        graph = dict(arr.data.__dask_graph__())
        t2 = time.perf_counter()
        proj = arr.max("Z")
        t3 = time.perf_counter()
        rows.append([label, ntasks, (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000])
        data[label] = rows[-1]
        del graph, proj, arr
    table = Table(
        f"Graph construction for a {nbytes / 1e9:.0f} GB fake file ({T} T × {Z} Z × {Y}×{X} "
        "uint16)",
        [
            "chunks",
            "tasks",
            "bfdask.open ms (metadata + graph)",
            "materialise graph ms",
            "`.max('Z')` graph ms",
        ],
        rows,
    )
    return table, data


def _profile_memory(s: Settings, folder: Any) -> tuple[Table, dict[str, Any], str]:
    import bfdask

    how = ""
    try:
        profile_fn = getattr(bfdask, "profile", None)  # public API, lazily imported
        use_profile = callable(profile_fn)
    except Exception as exc:  # not written yet, or broken
        use_profile = False
        how = f"`bfdask.profile` not available ({type(exc).__name__}); "
    plane = 1024 * 1024 * 2
    Z = 10
    rows = []
    data: dict[str, Any] = {"points": []}
    for factor in s.profile_factors:
        T = max(2, round(factor * s.worker_memory / (Z * plane)))
        path = fake_path(
            folder,
            f"profile_T{T}",
            sizeX=1024,
            sizeY=1024,
            sizeZ=Z,
            sizeC=1,
            sizeT=T,
            pixelType="uint16",
        )
        nbytes = T * Z * plane
        cluster, client = _tasks.start_cluster(2, memory_limit=s.worker_memory)
        try:
            pids = list(client.run(_tasks.worker_pid).values())
            import psutil

            baseline = max(psutil.Process(p).memory_info().rss for p in pids)
            arr = bfdask.open(path, ome=False)
            method = None
            t0 = time.perf_counter()
            with _tasks.RSSSampler(pids) as sampler:
                if use_profile:
                    try:
                        result = profile_fn(arr, (512, 100), (512, 900), linewidth=15)
                        if hasattr(result, "compute"):
                            result = client.compute(result, sync=True)
                        method = "bfdask.profile(data, src, dst, linewidth=15)"
                    except Exception as exc:
                        how = f"`bfdask.profile` failed ({type(exc).__name__}: {str(exc)[:80]}); "
                if method is None:
                    stats = arr.data.map_blocks(
                        _tasks.profile_block,
                        chunks=(
                            *tuple(
                                c if i < 2 else (1,) * len(c)
                                for i, c in enumerate(arr.data.chunks[:4])
                            ),
                            (3,),
                        ),
                        dtype=np.float64,
                    )
                    result = client.compute(stats, sync=True)
                    assert result.shape == (T, 1, 1, 1, 3)
                    method = "map_blocks stand-in (max over Z, middle-row profile min/max/mean)"
            elapsed = time.perf_counter() - t0
            peak = max(sampler.peak.values())
        finally:
            client.close()
            cluster.close()
        rows.append(
            [
                f"{nbytes / 2**30:.1f}",
                nbytes / s.worker_memory,
                T,
                elapsed,
                nbytes / 1e6 / elapsed,
                baseline / 2**20,
                peak / 2**20,
            ]
        )
        data["points"].append({"bytes": nbytes, "peak": peak, "baseline": baseline, "s": elapsed})
    peaks = [p["peak"] for p in data["points"]]
    growth = peaks[-1] / peaks[0]
    data["growth"] = growth
    data["method"] = method
    table = Table(
        "Profile statistics over fake datasets larger than a worker's memory (2 workers × 1 "
        "thread)",
        [
            "dataset GiB",
            "× worker memory limit",
            "T",
            "seconds",
            "MB/s",
            "worker RSS before MiB",
            "peak worker RSS MiB",
        ],
        rows,
        note=(
            f"{how}computed with: {method}. Worker memory limit "
            f"{s.worker_memory / 2**20:.0f} MiB; peak = the largest resident memory of either "
            "worker "
            "process, sampled every 50 ms by psutil during the computation "
            "(JVM included), a fresh cluster per size. Peak growth largest ÷ smallest = "
            f"{growth:.2f}×."
        ),
    )
    return table, data, method


def run(s: Settings) -> Section:
    folder = s.work / "scale"
    folder.mkdir(parents=True, exist_ok=True)
    t_open = _open_times(s, folder)
    t_memo, memo = _memoizer(s, folder)
    t_graph, graph = _graph(s, folder)
    t_prof, prof, method = _profile_memory(s, folder)
    return Section(
        "4. Scale",
        tables=[t_open, t_memo, t_graph, t_prof],
        data={"memo": memo, "graph": graph, "profile": prof, "profile_method": method},
    )
