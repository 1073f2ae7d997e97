"""``python -m benchmarks userjob``: the user's job of issue #18, against their loop and the floor.

A LIF written by ``make_lif.py`` (default: 2 series, T 12, Z 40, C 2, 1024 x 1024 uint16,
4.0 GB; ``--t`` shrinks it), page cache warm. The job as the user wrote it: per series,
timepoint and channel, the Z sum (or max), then ``profile_line`` with linewidth 9, min and
max. Each is timed end to end in a process of its own (imports and JVM start included where
the run is "fresh"):

* the user's own loop: python-bioformats ``ImageReader.read`` per plane, numpy, scikit-image;
* ``bfdask.profile_series(..., z=...)`` in a fresh process: on the first open of the file (an
  empty memo directory: Java starts, Bio-Formats reads the file, the native plan is verified),
  and, with 1 and 2 threads, on a file opened before (the answers Bio-Formats gave kept,
  :mod:`bfdask.answers`: no JVM); then warm (the median of 5 more runs in that process).
  The fresh process is split into phases (imports, JVM start, setId, open, compute, exit);
* on ``LocalCluster(n_workers=2, threads_per_worker=1)``: first run (once the cluster is up)
  and warm;
* the compute floor: the same projections and profiles of the same pixels (the rows and
  columns the line can touch) already in memory, 2 threads (numpy and scikit-image only).
  bfdask now folds fewer: only the pixels the line's samples read (its footprint,
  :class:`bfdask.projection.Footprint`), gathered from each plane as it is read; the floor
  projects the whole box, as a user's numpy code would.

Medians of ``--repeats`` runs. Writes the section "The user's job" of ``RESULTS.md``. Needs
the javabridge environment (the user's loop uses python-bioformats). Out of core (a LIF larger
than RAM, cold cache) is section 10 (``outofcore.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._util import carry_section, child_env, publish, put_section

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- userjob:begin -->", "<!-- userjob:end -->"
LINE = ((128, 64), (896, 960))  # (y, x) ends, in a 1024 x 1024 plane

CHILD = r"""
import json, sys, time
start = time.perf_counter()
kind, path, how, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
LINE = ((128, 64), (896, 960))

def bfdask_job():
    import bfdask
    return bfdask.profile_series(path, *LINE, linewidth=9, z=how, stats=["min", "max"])

def user_loop():
    import javabridge, bioformats, numpy as np
    from skimage.measure import profile_line
    javabridge.start_vm(class_path=bioformats.JARS, max_heap_size="2G")
    try:
        out = []
        with bioformats.ImageReader(path) as reader:
            for series in range(reader.rdr.getSeriesCount()):
                reader.rdr.setSeries(series)
                sizes = [reader.rdr.getSizeT(), reader.rdr.getSizeC(), reader.rdr.getSizeZ()]
                for t in range(sizes[0]):
                    for c in range(sizes[1]):
                        stack = np.stack([reader.read(c=c, z=z, t=t, series=series, rescale=False)
                                          for z in range(sizes[2])])
                        projected = getattr(stack, how)(axis=0)
                        prof = profile_line(projected, *LINE, linewidth=9)
                        out.append((prof.min(), prof.max()))
        return out
    finally:
        javabridge.kill_vm()

def warm_runs(n=5):
    # the same process again: the median of n runs (one run is at the mercy of this VM)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        bfdask_job()
        times.append(time.perf_counter() - t0)
    seconds["warm"] = sorted(times)[n // 2]
    seconds["warm total"] = sum(times)

seconds = {}
if kind == "user":
    user_loop()
    seconds["first"] = time.perf_counter() - start
elif kind in ("threads", "first-open"):
    # the fresh process, phase by phase (the parent adds the exit: its wall minus "end")
    import dask, dask.array, xarray, bfdask
    from bfdask import jvm, metadata
    seconds["imports"] = time.perf_counter() - start
    with dask.config.set(scheduler="threads", num_workers=threads):
        t0 = time.perf_counter()
        if kind == "first-open":  # what Bio-Formats costs, split (the job would do the same)
            jvm.ensure()
            seconds["jvm start"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            metadata.list_series(path)
            seconds["Bio-Formats setId and metadata"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        results = bfdask.profile_series(path, *LINE, linewidth=9, z=how, stats=["min", "max"],
                                        compute=False)
        seconds["open, verify, graph"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        from bfdask.schedulers import compute  # what profile_series(compute=True) calls
        compute(results)
        seconds["compute"] = time.perf_counter() - t1
        seconds["first"] = time.perf_counter() - start
        seconds["jvm"] = float(jvm.is_running())
        warm_runs()
elif kind == "cluster":
    # the client's imports first (as the "imports" phase of the threads runs): the first run
    # then times what the cluster pays, not what any process pays to import dask.array
    import dask.array, xarray, bfdask, bfdask._profile, distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.register_plugin(bfdask.JVMPlugin(warm=False))
        t0 = time.perf_counter()
        bfdask_job()
        seconds["first"] = time.perf_counter() - t0
        warm_runs()
elif kind == "floor":
    import dask, numpy as np, bfdask
    from skimage.measure import profile_line
    stacks = []
    for series in range(len(bfdask.list_series(path))):
        data = bfdask.open(path, series=series, ome=False).values  # T, C, Z, Y, X
        stacks += [data[t, c] for t in range(data.shape[0]) for c in range(data.shape[1])]
    # the pixels bfdask reads: the rows and columns the line (and its width) can touch
    (y0, x0), (y1, x1) = LINE
    rows = slice(min(y0, y1) - 9, max(y0, y1) + 10)
    cols = slice(min(x0, x1) - 9, max(x0, x1) + 10)
    here = ((y0 - rows.start, x0 - cols.start), (y1 - rows.start, x1 - cols.start))
    stacks = [s[:, rows, cols].copy() for s in stacks]
    def one(stack):
        prof = profile_line(getattr(stack, how)(axis=0), *here, linewidth=9)
        return prof.min(), prof.max()
    import dask.threaded  # passed as a function: dask.compute then imports no distributed
    with dask.config.set(num_workers=threads):
        t0 = time.perf_counter()
        dask.compute(*[dask.delayed(one)(s) for s in stacks], scheduler=dask.threaded.get)
        seconds["first"] = time.perf_counter() - t0
seconds["end"] = time.time()
print(json.dumps(seconds), flush=True)
"""


def write_lif(path: Path, t: int) -> None:
    """The issue's LIF: 2 series, ``t`` timepoints, Z 40, C 2, 1024 x 1024 uint16."""
    from .native import _make_lif_module

    make_lif = _make_lif_module()
    spec = make_lif.Spec(2, t, 40, 2, 1024, 1024, "uint16", "markfind", 0, None)
    make_lif.write_lif(str(path), spec, project=path.stem, verbose=False)


def run(kind: str, path: Path, how: str, threads: int, memo: Path) -> dict[str, float]:
    """One child process; its wall time end to end as ``"wall"``, its exit (after its last
    statement) as ``"exit"``, plus what it measured.

    ``memo`` is the memo directory the child uses (Bio-Formats' Memoizer and bfdask's kept
    answers, :mod:`bfdask.answers`); a ``"first-open"`` child gets a new empty one instead.
    """
    with tempfile.TemporaryDirectory(prefix="bfdask-memo-") as empty:
        env = child_env(BFDASK_MEMO_DIR=empty if kind == "first-open" else str(memo))
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(path), how, str(threads)],
            capture_output=True, text=True, env=env, timeout=3600,
        )  # fmt: skip
        wall, ended = time.perf_counter() - start, time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed: {proc.stderr[-2000:]}")
    out: dict[str, float] = json.loads(
        [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    )
    out["wall"] = wall
    out["exit"] = ended - out.pop("end")
    return out


def measure_all(path: Path, repeats: int, memo: Path) -> dict[str, Any]:
    """Every run of the section, ``repeats`` times each in rotation; medians. ``memo``: the
    memo directory of the runs on a file opened before (warmed here by one untimed run)."""
    run("threads", path, "sum", 2, memo)  # the file opened once before, as a user's rerun
    plan = [
        ("user loop", "user", "sum", 1),
        ("bfdask, first open of the file, 2 threads", "first-open", "sum", 2),
        ("bfdask, 1 thread", "threads", "sum", 1),
        ("bfdask, 2 threads", "threads", "sum", 2),
        ("bfdask, 2 threads, Z max", "threads", "max", 2),
        ("bfdask, LocalCluster 2×1", "cluster", "sum", 2),
        ("compute floor, 2 threads", "floor", "sum", 2),
        ("compute floor, 2 threads, Z max", "floor", "max", 2),
    ]
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in plan}
    for _ in range(repeats):  # in rotation: a machine getting busier favours no run
        for label, kind, how, threads in plan:
            runs[label].append(run(kind, path, how, threads, memo))
            print(f"{label}: {runs[label][-1]}", file=sys.stderr)
    return {
        label: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for label, rows in runs.items()
    }


PHASES = (
    "imports",
    "jvm start",
    "Bio-Formats setId and metadata",
    "open, verify, graph",
    "compute",
    "exit",
)
FIRST_OPEN = "bfdask, first open of the file, 2 threads"


def _fresh(row: dict[str, Any]) -> float:
    """A fresh process's time for the job: its wall time without the warm runs it made after
    the first (interpreter start, imports, exit included)."""
    return float(row["wall"] - row.get("warm total", 0.0))


def _phases(m: dict[str, Any]) -> list[str]:
    """Where a fresh process's seconds go: first open of a file against a file opened before."""
    kept, first = m["bfdask, 2 threads"], m[FIRST_OPEN]
    lines = [
        "",
        'Where a fresh process\'s time goes (medians; "first open": an empty memo directory, '
        'so Java starts, Bio-Formats reads the file and the native plan is verified; "opened '
        'before": the answers Bio-Formats gave then are kept for this version of the file '
        "(`bfdask.answers`), so no JVM starts):",
        "",
        "| phase | first open s | opened before s |",
        "| --- | --- | --- |",
    ]
    for phase in PHASES:
        cells = [f"{row[phase]:.2f}" if phase in row else "-" for row in (first, kept)]
        lines.append(f"| {phase} | {cells[0]} | {cells[1]} |")
    lines.append(f"| **the fresh process** | {_fresh(first):.2f} | {_fresh(kept):.2f} |")
    lines.append(f"| JVM started | {'yes' if first['jvm'] else 'no'} | "
                 f"{'yes' if kept['jvm'] else 'no'} |")  # fmt: skip
    return lines


def section(results: dict[str, Any]) -> str:
    """The RESULTS.md section, between its markers."""
    m = results["runs"]
    user = m["user loop"]["wall"]
    fresh2 = _fresh(m["bfdask, 2 threads"])
    first2 = _fresh(m[FIRST_OPEN])
    floor = m["compute floor, 2 threads"]["first"]
    warm2 = m["bfdask, 2 threads"]["warm"]
    cluster = m["bfdask, LocalCluster 2×1"]
    lines = [
        BEGIN,
        "## 9. The user's job (issue #18)",
        "",
        f"Generated by `python -m benchmarks userjob` on {results['date']} in "
        f"{results['minutes']:.1f} min. A LIF of {results['gb']:.1f} GB (2 series, T "
        f"{results['t']}, Z 40, C 2, 1024×1024 uint16, make_lif.py), page cache warm; the job: "
        "per series, timepoint and channel the Z sum, profile_line with linewidth 9, min and "
        f"max. Each run in a fresh process; medians of {results['repeats']} runs in rotation. "
        "The bfdask runs other than the first open use a memo directory in which the file was "
        "opened once before (untimed), as a user's second session does. bfdask folds only "
        "the pixels the line's samples read (`bfdask.projection.Footprint`); the compute "
        "floor projects the box of rows and columns the line spans, as a user's numpy does.",
        "",
        "| run | first run s (fresh process: start, imports, job, exit) | warm s (median of "
        "5 more runs, same process) |",
        "| --- | --- | --- |",
    ]
    for label, row in m.items():
        # fresh-process runs: the wall time, imports and JVM start included; the cluster's
        # first run is timed once the cluster is up, the floor's with the pixels in memory
        fresh = label == "user loop" or label.startswith(("bfdask, 1", "bfdask, 2", FIRST_OPEN))
        first = _fresh(row) if fresh else row["first"]
        warm = f"{row['warm']:.2f}" if "warm" in row else "-"
        lines.append(f"| {label} | {first:.2f} | {warm} |")
    lines += _phases(m)
    rows = [
        ("fresh process, file opened before, 2 threads ÷ the user's loop (speed-up)",
         user / fresh2, "≥ 8×"),
        ("fresh process, first open of the file ÷ the user's loop (speed-up)",
         user / first2, "-"),
        ("fresh process, file opened before ÷ compute floor (time)", fresh2 / floor, "≤ 1.25×"),
        ("warm process, 2 threads ÷ compute floor (time)", warm2 / floor, "-"),
        ("warm LocalCluster 2×1 ÷ warm 2 threads (time)", cluster["warm"] / warm2, "≤ 1.2×"),
        ("first LocalCluster run ÷ warm (time)", cluster["first"] / cluster["warm"], "≤ 1.5×"),
    ]  # fmt: skip
    lines += ["", "| target | this run | wanted |", "| --- | --- | --- |"]
    lines += [f"| {name} | {value:.2f}× | {wanted} |" for name, value, wanted in rows]
    lines += ["", "Out of core (a LIF larger than RAM, cold cache): section 10.", END]
    return "\n".join(lines) + "\n"


def keep_section(old: str, new: str) -> str:
    """``new`` (a rewritten RESULTS.md) with this section of ``old`` carried over."""
    return carry_section(old, new, BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks userjob", description=__doc__)
    ap.add_argument("--t", type=int, default=12, help="timepoints per series (12: 4.0 GB)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each kind")
    ap.add_argument("--out", type=Path, default=HERE, help="folder of RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="print only; RESULTS.md untouched")
    ap.add_argument("--rerender", type=Path, help="rewrite the section from a userjob.json")
    args = ap.parse_args(argv)
    if args.rerender is not None:
        put_section(
            args.out / "RESULTS.md", BEGIN, END, section(json.loads(args.rerender.read_text()))
        )
        return 0
    begin = time.time()
    with tempfile.TemporaryDirectory(prefix="bfdask-userjob-") as tmp:
        path = Path(tmp) / "userjob.lif"
        write_lif(path, args.t)
        results: dict[str, Any] = {"t": args.t, "repeats": args.repeats}
        results["gb"] = path.stat().st_size / 1e9
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm cache
        results["runs"] = measure_all(path, args.repeats, Path(tmp) / "memo")
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["minutes"] = (time.time() - begin) / 60
    publish(results, section, args.out, "userjob", (BEGIN, END), write=not args.no_write)
    return 0
