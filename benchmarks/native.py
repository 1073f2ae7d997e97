"""Section 5: the native pixel path (issue #9) against Bio-Formats, tifffile and raw ``preadv``.

Two files of the same size: a Leica LIF written by ``make_lif.py`` and an uncompressed
OME-TIFF written by tifffile. Each is read whole (read-and-discard) by raw ``preadv`` per
plane, tifffile per page (OME-TIFF), bfdask with ``pixels="native"`` and with
``pixels="bioformats"``, on the threaded scheduler with one thread and on a LocalCluster of two
single-threaded worker processes. Then the user's job (``bfdask.profile`` statistics along a
line, open to numbers) on the LIF both ways, and the cost of verifying a native plan against
the time ``bfdask.open`` takes on a 200-series LIF with real instrument metadata.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import _tasks
from ._util import Section, Settings, Table, measure, run_python, tiff_planes, write_ome_tiff
from .throughput import raw_preadv, raw_readinto, tifffile_planes

MAKE_LIF = Path("/work/shared/tools/make_lif.py")
REAL_LIF = Path("/work/shared/data/lif/xz-example.lif")  # a HardwareSetting to copy


def _make_lif_module() -> Any:
    here = Path(__file__).resolve().parents[2] / "shared" / "tools" / "make_lif.py"
    path = here if here.exists() else MAKE_LIF
    spec = importlib.util.spec_from_file_location("make_lif", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules.setdefault("make_lif", module)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _write_lif(path: Path, series: int, t: int, z: int, y: int, x: int, hardware: bool) -> None:
    if path.exists():
        return
    make_lif = _make_lif_module()
    hw = make_lif._hardware_from(str(REAL_LIF)) if hardware and REAL_LIF.exists() else None
    spec = make_lif.Spec(series, t, z, 1, y, x, "uint16", "markfind", 0, hw)
    tmp = path.with_suffix(".part")
    make_lif.write_lif(str(tmp), spec, project=path.stem, verbose=False)
    os.replace(tmp, path)


def _open(path: str, mode: str, chunks: dict[str, int] | None = None) -> Any:
    import bfdask

    data = bfdask.open(path, chunks=chunks, ome=False, pixels=mode)
    assert data.attrs["pixels"] == mode, data.attrs["pixels_reason"]
    return data


def _cluster(n: int) -> tuple[Any, Any]:
    """A LocalCluster of ``n`` single-threaded worker processes whose JVMs are not warmed."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    return cluster, Client(cluster)


def _speed_rows(
    s: Settings, nbytes: int, ways: list[tuple[str, str, Any]]
) -> tuple[list[list[Any]], dict[str, float]]:
    rows, speeds = [], {}
    for name, how, fn in ways:
        timing = measure(fn, s.repeats, warmup=True)
        speeds[name] = timing.mbps(nbytes)
        rows.append(
            [
                name,
                how,
                speeds[name],
                timing.median,
                ", ".join(f"{v:.2f}" for v in timing.seconds),
            ]
        )
    return rows, speeds


def _preadv_reused(path: str, planes: list[tuple[int, int]]) -> int:
    buffer = np.empty(max(n for _, n in planes), np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        return sum(os.preadv(fd, [buffer[:n]], offset) for offset, n in planes)
    finally:
        os.close(fd)


def _preadv_blocks(path: str, planes: list[tuple[int, int]], per_block: int) -> int:
    """What a (T) block read costs at least: a new array per block, one preadv per plane."""
    fd = os.open(path, os.O_RDONLY)
    total = 0
    try:
        for first in range(0, len(planes), per_block):
            group = planes[first : first + per_block]
            block = np.empty((len(group), max(n for _, n in group)), np.uint8)
            for row, (offset, n) in zip(block, group, strict=False):
                total += os.preadv(fd, [row[:n]], offset)
            del block
    finally:
        os.close(fd)
    return total


_VERIFY_CHILD = r"""
import json, time
import bfdask
from bfdask import lif, pixels
path, series = PATH, SERIES
t0 = time.perf_counter()
data = bfdask.open(path, series=series, ome=False)            # fresh process: JVM, setId, plan
open_auto = time.perf_counter() - t0
spec = bfdask.read_spec(path, series=series + 1)
t0 = time.perf_counter()
bfdask.open(path, series=series + 1, ome=False, pixels="bioformats")
open_bf_warm = time.perf_counter() - t0
lif.layout.cache_clear()                                       # count the header parse too
t0 = time.perf_counter()
choice = pixels.choose(spec, "native")
verify = time.perf_counter() - t0
t0 = time.perf_counter()
bfdask.open(path, series=series + 2, ome=False)
open_auto_warm = time.perf_counter() - t0
print(json.dumps({"open_auto": open_auto, "verify": verify, "open_bf_warm": open_bf_warm,
                  "open_auto_warm": open_auto_warm, "pixels": data.attrs["pixels"],
                  "planes": len(pixels.verify_planes(choice.recipe))}))
"""


def run(s: Settings) -> Section:
    import bfdask

    folder = s.work / "native"
    folder.mkdir(parents=True, exist_ok=True)
    T, Z, Y, X = s.native_shape
    nbytes = T * Z * Y * X * 2
    t0 = time.perf_counter()
    lif_path = folder / f"native_{T}x{Z}x{Y}x{X}.lif"
    _write_lif(lif_path, 1, T, Z, Y, X, hardware=False)
    tif_path = folder / f"native_{T}x{Z}x{Y}x{X}.ome.tif"
    if not tif_path.exists():
        write_ome_tiff(tif_path, {"T": T, "Z": Z, "Y": Y, "X": X}, "TZYX")
    write_s = time.perf_counter() - t0
    lp, tp = str(lif_path), str(tif_path)

    from bfdask import lif

    image = lif.layout(lp, None)[0]
    lif_planes = [(image.offset + i * Y * X * 2, Y * X * 2) for i in range(T * Z)]
    tif_planes = tiff_planes(tif_path)
    for p in (lp, tp):
        raw_readinto(p)  # warm the page cache
        raw_readinto(p)

    tables: list[Table] = []
    data: dict[str, Any] = {"bytes": nbytes, "write_s": write_s}
    cluster, client = _cluster(2)
    try:
        for label, path, planes in (("lif", lp, lif_planes), ("ome-tiff", tp, tif_planes)):
            native = _open(path, "native").data
            bf = _open(path, "bioformats").data
            ways: list[tuple[str, str, Any]] = [
                (
                    "raw preadv per plane, one reused buffer",
                    "the I/O bound (no new memory)",
                    lambda p=path, pl=planes: _preadv_reused(p, pl),
                ),
                (
                    "raw preadv per plane, a new array per T",
                    "the bound for fresh blocks (as dask needs)",
                    lambda p=path, pl=planes: _preadv_blocks(p, pl, Z),
                ),
                (
                    "raw preadv per plane",
                    "into one whole-file array",
                    lambda p=path, pl=planes: raw_preadv(p, pl),
                ),
            ]
            if label == "ome-tiff":
                ways.append(
                    ("tifffile per plane", "TiffPage.asarray", lambda p=path: tifffile_planes(p))
                )
            for mode, arr in (("native", native), ("Bio-Formats", bf)):
                ways.append(
                    (
                        f"bfdask {mode}, threads=1",
                        "default chunks, read-and-discard",
                        lambda a=arr: _tasks.read_and_count(a, scheduler="threads", num_workers=1),
                    )
                )
                ways.append(
                    (
                        f"bfdask {mode}, LocalCluster 2 workers",
                        "default chunks, read-and-discard",
                        lambda a=arr: _tasks.read_and_count(a, scheduler=client),
                    )
                )
            rows, speeds = _speed_rows(s, nbytes, ways)
            data[label] = speeds
            tables.append(
                Table(
                    f"{'LIF (make_lif.py)' if label == 'lif' else 'Uncompressed OME-TIFF'}: "
                    f"{nbytes / 2**30:.2f} GiB, {T}×{Z} planes of {Y}×{X} uint16, warm cache",
                    ["method", "how", "MB/s", "median s", "runs (s)"],
                    rows,
                )
            )
        jvms = client.run(bfdask.jvm.is_running)
        data["worker_jvms_after_native_and_bf"] = sum(map(bool, jvms.values()))
    finally:
        client.close()
        cluster.close()

    # -- the profile job end to end on the LIF ----------------------------------------------
    line = ((Y // 8, X // 16), (Y - Y // 8, X - X // 16))

    def job(mode: str) -> float:
        data_ = bfdask.open(lp, ome=False, pixels=mode)
        stats = bfdask.profile(data_, *line, linewidth=9).compute(scheduler="threads")
        return float(stats["max"].max())

    job_rows, job_s = [], {}
    for mode in ("native", "bioformats"):
        timing = measure(lambda m=mode: job(m), s.repeats, warmup=True)
        job_s[mode] = timing.median
        job_rows.append(
            [mode, timing.median, ", ".join(f"{v:.2f}" for v in timing.seconds), T * Z]
        )
    # the floor: the same statistics on pixels already in memory (k timepoints, scaled to T)
    k = min(T, 8)
    held = (
        bfdask.open(lp, ome=False, pixels="native").isel(T=slice(0, k)).load(scheduler="threads")
    )
    held = held.chunk({"T": 1})
    floor = measure(
        lambda: bfdask.profile(held, *line, linewidth=9).compute(scheduler="threads"),
        s.repeats,
        warmup=True,
    )
    job_s["in memory"] = floor.median * T / k
    job_rows.append(
        [
            f"pixels already in memory ({k} T, scaled ×{T / k:g})",
            job_s["in memory"],
            ", ".join(f"{v * T / k:.2f}" for v in floor.seconds),
            T * Z,
        ]
    )
    job_ratio = job_s["bioformats"] / job_s["native"]
    read_ratio = (job_s["bioformats"] - job_s["in memory"]) / max(
        job_s["native"] - job_s["in memory"], 1e-9
    )
    data["profile_job_s"] = job_s
    data["profile_job_ratio"] = job_ratio
    data["profile_read_ratio"] = read_ratio
    tables.append(
        Table(
            "The profile job on the LIF, open to numbers (bfdask.profile, linewidth 9, Z max, "
            "threaded scheduler)",
            ["pixels", "median s", "runs (s)", "planes"],
            job_rows,
            note=f"Bio-Formats ÷ native = {job_ratio:.1f}×. The last row is the computation "
            "alone (scikit-image's profile_line over the Z projections): what remains of the "
            "job once reading is free. Reading part (job − that floor), Bio-Formats ÷ native: "
            f"{read_ratio:.1f}×.",
        )
    )

    # -- verification cost on a 200-series LIF ------------------------------------------------
    n_series = s.native_verify_series
    many = folder / f"verify_{n_series}series.lif"
    _write_lif(many, n_series, 4, 5, 256, 256, hardware=True)
    child = f"PATH = {str(many)!r}\nSERIES = {n_series // 2}\n" + _VERIFY_CHILD
    runs = [run_python(child, timeout=600) for _ in range(s.repeats)]
    for r in runs:
        r["ratio"] = r["verify"] / r["open_auto"]
    best = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
    data["verify"] = best
    tables.append(
        Table(
            f"Verification cost on a {n_series}-series LIF (4×5 planes of 256×256 per series, "
            "a real LAS X HardwareSetting in each), fresh process per run",
            [
                "run",
                "bfdask.open (auto, fresh)",
                "verify (header + planes)",
                "verify ÷ open",
                "open, warm (auto / bioformats)",
                "planes compared",
            ],
            [
                [
                    i + 1,
                    f"{r['open_auto'] * 1e3:.0f} ms",
                    f"{r['verify'] * 1e3:.1f} ms",
                    f"{r['ratio'] * 100:.1f} %",
                    f"{r['open_auto_warm'] * 1e3:.0f} / {r['open_bf_warm'] * 1e3:.0f} ms",
                    r["planes"],
                ]
                for i, r in enumerate(runs)
            ],
            note="verify = building the plan (parsing the LIF header) and comparing the planes "
            "with Bio-Formats, timed alone after the first open in the same process.",
        )
    )
    return Section(
        "5. Native pixel path (LIF and OME-TIFF without Java)",
        text=(
            f"Files written in {write_s:.1f} s (0 s if they existed). Each bfdask row is one "
            "open with pixels='native' or pixels='bioformats' (sections 1–4 measure the "
            "Bio-Formats path: the harness sets BFDASK_PIXELS=bioformats for them). After the "
            "cluster rows, worker processes with a running JVM: "
            f"{data['worker_jvms_after_native_and_bf']} of 2 (the Bio-Formats rows start them)."
        ),
        tables=tables,
        data=data,
    )


def targets(sec: Section) -> list[list[Any]]:
    """The issue's four targets, for the summary table."""
    d = sec.data
    rows: list[list[Any]] = []
    tif = d["ome-tiff"]
    ratio = tif["bfdask native, threads=1"] / tif["tifffile per plane"]
    rows.append(
        [
            "native ÷ tifffile per core (OME-TIFF)",
            f"{ratio:.2f}",
            "≥ 0.5",
            "met" if ratio >= 0.5 else "NOT met",
            f"{tif['bfdask native, threads=1']:.0f} vs {tif['tifffile per plane']:.0f} MB/s; "
            f"Bio-Formats {tif['bfdask Bio-Formats, threads=1']:.0f} MB/s; 2 workers native "
            f"{tif['bfdask native, LocalCluster 2 workers']:.0f} MB/s",
        ]
    )
    lif = d["lif"]
    gbps = lif["bfdask native, threads=1"] / 1e3
    rows.append(
        [
            "native LIF read from page cache, GB/s (threads=1)",
            f"{gbps:.2f}",
            "≥ 5",
            "met" if gbps >= 5 else "NOT met",
            f"raw preadv into a reused buffer "
            f"{lif['raw preadv per plane, one reused buffer'] / 1e3:.1f} GB/s, into a new "
            f"array per T {lif['raw preadv per plane, a new array per T'] / 1e3:.1f} GB/s "
            "(the gap: page faults of fresh memory); Bio-Formats "
            f"{lif['bfdask Bio-Formats, threads=1'] / 1e3:.2f} GB/s; 2 workers native "
            f"{lif['bfdask native, LocalCluster 2 workers'] / 1e3:.2f} GB/s",
        ]
    )
    job = d["profile_job_ratio"]
    rows.append(
        [
            "profile job on the LIF, Bio-Formats ÷ native time",
            f"{job:.1f}",
            "≥ 5",
            "met" if job >= 5 else "NOT met",
            f"{d['profile_job_s']['bioformats']:.2f} vs {d['profile_job_s']['native']:.2f} s; "
            f"the computation alone (pixels in memory) takes "
            f"{d['profile_job_s']['in memory']:.2f} s, so the job cannot beat that; the "
            f"reading part alone: {d['profile_read_ratio']:.1f}×",
        ]
    )
    v = d["verify"]
    rows.append(
        [
            "verification ÷ open time (200-series LIF)",
            f"{v['ratio'] * 100:.1f} %",
            "≤ 10 %",
            "met" if v["ratio"] <= 0.10 else "NOT met",
            f"{v['verify'] * 1e3:.1f} ms of {v['open_auto'] * 1e3:.0f} ms (fresh process)",
        ]
    )
    return rows
