"""Section 2: throughput of bfdask against its anchors on one uncompressed OME-TIFF.

Anchors, fastest first: the raw limit (``os.preadv`` per plane, ``readinto`` of the whole
file), tifffile (whole file, per plane), Bio-Formats' ceiling (a tight bridge loop of
``openBytes(index, reused byte[])`` with no numpy conversion), and the seed's loop
(python-bioformats ``ImageReader.read(index=i, rescale=False)``). Then bfdask on the threaded
scheduler and on a LocalCluster, with default chunks and one plane per task. Also a
zlib-compressed OME-TIFF, a LIF, and a cold page cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _tasks
from ._util import (
    MB,
    Section,
    Settings,
    Table,
    Timing,
    block_source,
    drop_caches,
    measure,
    read_block_kwargs,
    tiff_planes,
    write_ome_tiff,
)

if TYPE_CHECKING:
    from collections.abc import Callable

# -- the ways of reading a file (each returns something and is timed whole) ------------------


def raw_preadv(path: str, planes: list[tuple[int, int]]) -> np.ndarray:
    out = np.empty((len(planes), planes[0][1]), np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        for i, (offset, nbytes) in enumerate(planes):
            os.preadv(fd, [out[i, :nbytes]], offset)
    finally:
        os.close(fd)
    return out


def raw_readinto(path: str) -> np.ndarray:
    out = np.empty(os.path.getsize(path), np.uint8)
    with open(path, "rb", buffering=0) as f:
        view = memoryview(out)
        done = 0
        while done < len(out):
            n = f.readinto(view[done:])
            if not n:
                break
            done += n
    return out


def tifffile_whole(path: str) -> np.ndarray:
    import tifffile

    return tifffile.imread(path)


def tifffile_planes(path: str) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        pages = tif.pages
        first = pages[0].asarray()
        out = np.empty((len(pages), *first.shape), first.dtype)
        out[0] = first
        for i in range(1, len(pages)):
            out[i] = pages[i].asarray()
    return out


def _plane_count_and_size(reader: Any) -> tuple[int, int, int, int]:
    n = int(reader.call("getImageCount", "()I"))
    w = int(reader.call("getSizeX", "()I"))
    h = int(reader.call("getSizeY", "()I"))
    from bfdask import bridge

    bpp = int(
        bridge.current().static_call(
            "loci/formats/FormatTools",
            "getBytesPerPixel",
            "(I)I",
            reader.call("getPixelType", "()I"),
        )
    )
    return n, w, h, bpp


def bf_ceiling(path: str, planes: range | None = None, to_numpy: bool = False) -> int:
    """Bio-Formats' ceiling: openBytes(index, reused byte[]) in a tight loop through the bridge
    in use; optionally with the bridge's copy into numpy (bfdask's plane reader, whose
    marking of the buffer's last 64 bytes costs microseconds), nothing else."""
    from bfdask import bridge, readers

    reader = readers.get_reader(readers.check_path(path), 0)  # starts bfdask's JVM first
    java = bridge.current()
    n, w, h, bpp = _plane_count_and_size(reader)
    nbytes = w * h * bpp
    buffer = java.byte_array(nbytes)
    read = java.plane_reader(reader.java)
    total = 0
    for i in planes if planes is not None else range(n):
        if to_numpy:
            total += read(buffer, i, 0, 0, w, h, 0, nbytes - 64).nbytes
        else:
            java.call_quietly(reader.java, "openBytes", "(I[BIIII)[B", i, buffer, 0, 0, w, h)
            total += nbytes
    return total


def in_threads(fn: Callable[[int, int], Any], n_items: int, n_threads: int) -> None:
    """Split range(n_items) into ``n_threads`` contiguous parts, one thread each (JVM-attached)."""
    import bfdask.jvm

    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            bfdask.jvm.ensure()
            lo, hi = n_items * k // n_threads, n_items * (k + 1) // n_threads
            fn(lo, hi)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def seed_loop(path: str) -> np.ndarray:
    """The seed's way: python-bioformats ImageReader.read(index=i, rescale=False) per plane."""
    import bioformats

    import bfdask.jvm

    bfdask.jvm.ensure()
    reader = bioformats.ImageReader(path)
    try:
        n = reader.rdr.getImageCount()
        first = reader.read(index=0, rescale=False)
        out = np.empty((n, *first.shape), first.dtype)
        out[0] = first
        for i in range(1, n):
            out[i] = reader.read(index=i, rescale=False)
    finally:
        reader.close()
    return out


def _bf_plane_count(path: str) -> int:
    from bfdask import readers

    return int(readers.get_reader(readers.check_path(path), 0).call("getImageCount", "()I"))


# -- the section ----------------------------------------------------------------------------


class Runner:
    """Times named methods on one file and keeps the MB/s of each (for ratios)."""

    def __init__(self, s: Settings, nbytes: int) -> None:
        self.s = s
        self.nbytes = nbytes
        self.rows: list[tuple[str, str, Timing]] = []

    def add(self, name: str, how: str, fn: Callable[[], Any], repeats: int | None = None) -> float:
        timing = measure(fn, repeats or self.s.repeats, warmup=self.s.quick)
        self.rows.append((name, how, timing))
        return timing.mbps(self.nbytes)

    def mbps(self, name: str) -> float:
        for n, _, t in self.rows:
            if n == name:
                return t.mbps(self.nbytes)
        raise KeyError(name)

    def table(self, title: str, note: str) -> Table:
        rows = []
        for name, how, t in self.rows:
            rows.append(
                [
                    name,
                    how,
                    t.mbps(self.nbytes),
                    t.median,
                    ", ".join(f"{x:.2f}" for x in t.seconds),
                ]
            )
        return Table(title, ["method", "how", "MB/s", "median s", "runs (s)"], rows, note)

    def ratio_table(self, title: str) -> Table:
        ids = [chr(ord("A") + i) if i < 26 else f"A{i - 26}" for i in range(len(self.rows))]
        speeds = [t.mbps(self.nbytes) for _, _, t in self.rows]
        rows = []
        for i, (name, _, _) in enumerate(self.rows):
            rows.append([ids[i], name] + [speeds[i] / speeds[j] for j in range(len(self.rows))])
        return Table(
            title,
            ["id", "method (row ÷ column)", *ids],
            rows,
            note="Each cell: the row's throughput divided by the column's (same run, same file).",
        )


def _open(path: str, chunks: dict[str, int] | None = None) -> Any:
    import bfdask

    return bfdask.open(path, chunks=chunks, ome=False).data


def run(s: Settings, clusters: dict[int, Any]) -> Section:
    import bfdask

    folder = s.work / "throughput"
    folder.mkdir(parents=True, exist_ok=True)
    T, Z, Y, X = s.big_shape
    big = folder / f"big_{T}x{Z}x{Y}x{X}.ome.tif"
    t0 = time.perf_counter()
    if not big.exists():
        write_ome_tiff(big, {"T": T, "Z": Z, "Y": Y, "X": X}, "TZYX")
    write_s = time.perf_counter() - t0
    path = str(big)
    planes = tiff_planes(big)
    nbytes = T * Z * Y * X * 2
    n_planes = T * Z
    assert sum(nb for _, nb in planes) == nbytes
    sizes = {"T": T, "C": 1, "Z": Z, "Y": Y, "X": X}

    # warm the page cache (twice: the first pass may still be writing back)
    raw_readinto(path)
    raw_readinto(path)
    r = Runner(s, nbytes)
    r.add(
        "raw preadv per plane",
        "os.preadv of each plane into a fresh array",
        lambda: raw_preadv(path, planes),
    )
    reused = np.empty((len(planes), planes[0][1]), np.uint8)
    reused.fill(0)  # pre-fault every page

    def raw_preadv_reused() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            for i, (offset, nb) in enumerate(planes):
                os.preadv(fd, [reused[i, :nb]], offset)
        finally:
            os.close(fd)

    r.add(
        "raw preadv per plane, reused buffer",
        "as above into one pre-faulted array (no page faults)",
        raw_preadv_reused,
    )
    r.add(
        "raw readinto whole file",
        "one readinto of the whole file into a fresh array",
        lambda: raw_readinto(path),
    )
    r.add("tifffile whole file", "tifffile.imread(path)", lambda: tifffile_whole(path))
    r.add(
        "tifffile per plane",
        "TiffFile(path).pages[i].asarray() per plane",
        lambda: tifffile_planes(path),
    )
    r.add(
        "Bio-Formats ceiling",
        "openBytes(i, reused byte[]) via cached method id, no numpy",
        lambda: bf_ceiling(path),
    )
    r.add(
        "Bio-Formats + copy to numpy",
        "as above + get_byte_array_elements",
        lambda: bf_ceiling(path, to_numpy=True),
    )
    r.add(
        "Bio-Formats ceiling, 2 threads",
        "the ceiling loop in 2 threads, a reader each",
        lambda: in_threads(lambda lo, hi: bf_ceiling(path, range(lo, hi)), n_planes, 2),
    )
    r.add(
        "seed's loop",
        "bioformats.ImageReader(path).read(index=i, rescale=False) into an array",
        lambda: seed_loop(path),
    )
    expect = nbytes

    def counted(arr: Any, **kw: Any) -> None:
        got = _tasks.read_and_count(arr, **kw)
        assert got == expect, (got, expect)

    default = _open(path)
    one_plane = _open(path, {"Z": 1})
    n_default, n_one = default.npartitions, one_plane.npartitions
    for threads in (1, 2):
        r.add(
            f"bfdask threads={threads}, default chunks",
            f"threaded scheduler, {n_default} tasks, read-and-discard",
            lambda threads=threads: counted(default, scheduler="threads", num_workers=threads),
        )
        r.add(
            f"bfdask threads={threads}, one plane/task",
            f'{{"Z": 1}}: {n_one} tasks, read-and-discard',
            lambda threads=threads: counted(one_plane, scheduler="threads", num_workers=threads),
        )
    r.add(
        "bfdask threads=2, .values",
        "default chunks, computed into one numpy array",
        lambda: default.compute(scheduler="threads", num_workers=2),
    )
    for n in sorted(clusters):
        _, client = clusters[n]
        r.add(
            f"bfdask LocalCluster {n} worker(s), default chunks",
            f"{n}×1 thread processes, {n_default} tasks, read-and-discard",
            lambda client=client: counted(default, scheduler=client),
        )
        r.add(
            f"bfdask LocalCluster {n} worker(s), one plane/task",
            f"{n_one} tasks, read-and-discard",
            lambda client=client: counted(one_plane, scheduler=client),
        )

    # whole-file reduction: dask's default chunks vs one task per worker
    red_rows = []
    reduction_spread = "-"
    if 2 in clusters:
        _, client = clusters[2]
        workers = sorted(client.scheduler_info()["workers"])
        src = block_source(default)
        kw = read_block_kwargs(src)
        reduce_default = measure(lambda: client.compute(default.max(), sync=True), s.repeats)

        def one_task_per_worker() -> int:
            futures = [
                client.submit(
                    _tasks.read_range_max,
                    src.path,
                    T * k // 2,
                    T * (k + 1) // 2,
                    sizes,
                    kw,
                    workers=[w],
                    pure=False,
                )
                for k, w in enumerate(workers[:2])
            ]
            return max(client.gather(futures))

        reduce_one = measure(one_task_per_worker, s.repeats)
        red_rows = [
            [
                "dask `data.max()`, default chunks",
                n_default,
                reduce_default.mbps(nbytes),
                reduce_default.median,
                ", ".join(f"{x:.2f}" for x in reduce_default.seconds),
            ],
            [
                "one task per worker (same read_block calls, no dask scheduling)",
                2,
                reduce_one.mbps(nbytes),
                reduce_one.median,
                ", ".join(f"{x:.2f}" for x in reduce_one.seconds),
            ],
        ]
        allruns = reduce_default.seconds + reduce_one.seconds
        reduction_spread = (
            f"{max(allruns) / min(allruns):.2f}× (slowest ÷ fastest of all {len(allruns)} runs)"
        )
    reduction_ratio = (red_rows[0][2] / red_rows[1][2]) if red_rows else float("nan")
    reused = None  # free the 2 GiB buffer

    # the proposed allocator fix, applied to the running workers from outside bfdask
    mallopt_note = ""
    for n in sorted(clusters):
        _, client = clusters[n]
        before = client.run(_tasks.minor_faults)
        counted(default, scheduler=client)
        after = client.run(_tasks.minor_faults)
        faults_plain = sum(after.values()) - sum(before.values())
        client.run(_tasks.malloc_tuning)
        r.add(
            f"bfdask LocalCluster {n} worker(s), default chunks, + mallopt fix",
            "workers' glibc mmap/trim thresholds raised (see the fixes)",
            lambda client=client: counted(default, scheduler=client),
        )
        before = client.run(_tasks.minor_faults)
        counted(default, scheduler=client)
        after = client.run(_tasks.minor_faults)
        faults_fixed = sum(after.values()) - sum(before.values())
        mallopt_note += (
            f" {n} worker(s): {faults_plain:,} minor page faults per pass over the file "
            f"before, {faults_fixed:,} after."
        )

    main_table = r.table(
        f"Uncompressed OME-TIFF, {nbytes / 2**30:.2f} GiB ({n_planes} planes of {Y}×{X} "
        "uint16), warm page cache",
        f"Median of {s.repeats} runs; MB = 10^6 bytes. 'read-and-discard': every block is read "
        "into "
        "numpy by bfdask's task and replaced by its byte count (summed and checked), so no "
        "result array is built. LocalCluster workers are started by distributed's nanny with "
        "MALLOC_TRIM_THRESHOLD_=65536 (its default pre-spawn environment); '+ mallopt fix' rows "
        "re-run the same read after raising the workers' glibc thresholds." + mallopt_note,
    )
    ratio = r.ratio_table("Ratios between every pair of methods (same run)")

    # -- zlib OME-TIFF ----------------------------------------------------------------------
    zT, zZ, zY, zX = s.zlib_shape
    zpath = folder / f"zlib_{zT}x{zZ}x{zY}x{zX}.ome.tif"
    if not zpath.exists():
        write_ome_tiff(
            zpath, {"T": zT, "Z": zZ, "Y": zY, "X": zX}, "TZYX", compression="zlib", noisy=True
        )
    znbytes = zT * zZ * zY * zX * 2
    zsize = zpath.stat().st_size
    zp = str(zpath)
    raw_readinto(zp)
    rz = Runner(s, znbytes)
    rz.add(
        "tifffile whole file", "tifffile.imread (decodes in threads)", lambda: tifffile_whole(zp)
    )
    rz.add("tifffile per plane", "pages[i].asarray()", lambda: tifffile_planes(zp))
    rz.add("Bio-Formats ceiling", "openBytes loop", lambda: bf_ceiling(zp))
    rz.add("seed's loop", "python-bioformats read", lambda: seed_loop(zp))
    zdefault = _open(zp)
    for threads in (1, 2):
        rz.add(
            f"bfdask threads={threads}, default chunks",
            "read-and-discard",
            lambda threads=threads: _tasks.read_and_count(
                zdefault, scheduler="threads", num_workers=threads
            ),
        )
    ztable = rz.table(
        f"zlib OME-TIFF: {znbytes / MB:.0f} MB of pixels in {zsize / MB:.0f} MB "
        f"({znbytes / zsize:.1f}× compression), warm cache",
        "MB/s of decoded pixels.",
    )

    # -- LIF --------------------------------------------------------------------------------
    lT, lZ, lY, lX = s.lif_shape
    lpath = folder / f"made_{lT}x{lZ}x{lY}x{lX}.lif"
    index_json = lpath.with_suffix(".json")
    if not lpath.exists():
        subprocess.run(
            [
                sys.executable,
                "/work/shared/tools/make_lif.py",
                str(lpath),
                "--series",
                "1",
                "--t",
                str(lT),
                "--z",
                str(lZ),
                "--y",
                str(lY),
                "--x",
                str(lX),
                "--layout",
                "flat",
                "--index-json",
                str(index_json),
                "--quiet",
            ],
            check=True,
            capture_output=True,
        )
    import json

    meta = json.loads(index_json.read_text())["series"][0]
    lnbytes = int(meta["nbytes"])
    lplane = int(meta["plane_bytes"])
    loff = int(meta["data_offset"])
    lplanes = [(loff + i * lplane, lplane) for i in range(lnbytes // lplane)]
    lp = str(lpath)
    raw_readinto(lp)
    rl = Runner(s, lnbytes)
    rl.add("raw preadv per plane", "from make_lif's index", lambda: raw_preadv(lp, lplanes))
    rl.add("Bio-Formats ceiling", "openBytes loop", lambda: bf_ceiling(lp))
    rl.add("seed's loop", "python-bioformats read", lambda: seed_loop(lp))
    ldefault = _open(lp)
    for threads in (1, 2):
        rl.add(
            f"bfdask threads={threads}, default chunks",
            "read-and-discard",
            lambda threads=threads: _tasks.read_and_count(
                ldefault, scheduler="threads", num_workers=threads
            ),
        )
    real = "/work/shared/data/lif/xz-example.lif"
    real_rows = []
    if os.path.exists(real):
        rdata = bfdask.open(real, ome=False)
        rbytes = int(rdata.nbytes)
        rt = measure(
            lambda: rdata.data.compute(scheduler="threads", num_workers=1), max(3, s.repeats)
        )
        real_rows.append(
            [
                os.path.basename(real),
                f"{dict(rdata.sizes)}",
                rbytes / MB,
                rt.mbps(rbytes),
                rt.median * 1000,
            ]
        )
    ltable = rl.table(
        f"Leica LIF made by make_lif.py: {lnbytes / 2**30:.2f} GiB ({lT}×{lZ} planes of "
        f"{lY}×{lX} uint16), warm cache",
        "The largest real LIF in ../shared/data is only ~2 MB, so a synthetic LAS X-style LIF of "
        "realistic size is used; the real one is timed below for completeness.",
    )
    rtable = Table(
        "Real LIF from ../shared/data (series 0; small, so the time is mostly per-call cost)",
        ["file", "sizes", "MB", "MB/s", "ms per read"],
        real_rows or [["(missing)", "-", 0.0, 0.0, 0.0]],
    )

    # -- cold cache -------------------------------------------------------------------------
    cold_rows = []
    if s.cold_cache:
        cold: list[tuple[str, Callable[[], Any]]] = [
            ("raw readinto whole file", lambda: raw_readinto(path)),
            ("tifffile whole file", lambda: tifffile_whole(path)),
            ("Bio-Formats ceiling", lambda: bf_ceiling(path)),
            (
                "bfdask threads=2, default chunks",
                lambda: _tasks.read_and_count(default, scheduler="threads", num_workers=2),
            ),
        ]
        for name, fn in cold:
            reason = drop_caches()
            if reason is not None:
                cold_rows.append([name, "not run", f"cannot drop the page cache: {reason}", "-"])
                continue
            t = measure(fn, 1)
            warm = r.mbps(name)
            cold_rows.append([name, t.mbps(nbytes), warm, t.mbps(nbytes) / warm])
        raw_readinto(path)  # leave it warm
    else:
        cold_rows.append(["(skipped in --quick)", "-", "-", "-"])
    cold_table = Table(
        "Cold page cache (the big OME-TIFF after `echo 3 > /proc/sys/vm/drop_caches`), one run "
        "each",
        ["method", "cold MB/s", "warm MB/s", "cold ÷ warm"],
        cold_rows,
        note=(
            "The caches are dropped before each method (as root). This machine is a virtual "
            "machine: dropping the guest's page cache does not drop the host's, so a 'cold' "
            "read may be served from the host's memory; single-threaded `readinto` shows the "
            "cost of a guest-cold read, the others are within the run-to-run noise of their "
            "warm speed (cold ≥ warm is that noise): Bio-Formats and bfdask are CPU-bound well "
            "below what the disk path delivers."
        ),
    )

    data = {
        "main": {n: t.mbps(nbytes) for n, _, t in r.rows},
        "zlib": {n: t.mbps(znbytes) for n, _, t in rz.rows},
        "lif": {n: t.mbps(lnbytes) for n, _, t in rl.rows},
        "reduction": red_rows,
        "reduction_ratio": reduction_ratio,
        "reduction_spread": reduction_spread,
        "cold": cold_rows,
        "big_bytes": nbytes,
        "write_s": write_s,
        "big_path": path,
        "n_default": n_default,
        "n_one": n_one,
        "mallopt_note": mallopt_note,
    }
    red_table = Table(
        "Whole-file reduction on a 2-worker LocalCluster: dask tasks vs one task per worker",
        ["how", "tasks", "MB/s", "median s", "runs (s)"],
        red_rows or [["(no 2-worker cluster)", 0, 0.0, 0.0, "-"]],
        note=f"dask ÷ one-task-per-worker = {reduction_ratio:.2f}.",
    )
    return Section(
        "2. Throughput against the anchors",
        text=(
            f"The big file was written by tifffile in {write_s:.1f} s (0 s if it already "
            "existed). "
            "Java heap, readers and page cache were warm for every timed run except the "
            "cold-cache table."
        ),
        tables=[main_table, ratio, red_table, ztable, ltable, rtable, cold_table],
        data=data,
    )
