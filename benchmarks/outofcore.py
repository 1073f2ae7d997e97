"""``python -m benchmarks outofcore``: ``bfdask profile --positions --line auto`` out of core.

(Also ``python -m benchmarks.outofcore``.)

Issue #18's target: on a LIF at least 1.5x the machine's RAM, page cache cold, the command
takes at most 1.15x the time to read the file once (``dd``, same run), and no process of it
peaks above 1 GiB of RSS.

The LIF is written by ``make_lif.py`` (``../shared/tools``): 8 positions (series
``Mark_and_Find_001/Pos001``..., which ``--positions``' default pattern groups into one
position each), Z 40, C 2, 1024 x 1024 uint16, 168 MB per timepoint and position; as many
timepoints as reach ``--gb`` (default 1.5x RAM, rounded up). make_lif's pixels are ramps in
which :func:`bfdask.line.find_line` finds no line (every position would fall back to its next
3 timepoints, then read whole planes for NaN statistics), so channel 0 of timepoint 0 of each
position gets a diagonal tube drawn in place, corner to corner: the line is found at T 0, as
in the user's file, and the tasks read every byte of every plane.

Before every timed run: ``sync``, ``3 > /proc/sys/vm/drop_caches`` where writable, and
``posix_fadvise(DONTNEED)`` on the file; ``fincore`` says how much of the file was still
cached. The runs, in rotation when ``--repeats`` > 1 (medians reported):

* ``dd if=LIF of=/dev/null bs=16M``: wall time and MB/s;
* ``python -m bfdask profile LIF --positions --line auto`` (the issue's command; its tables go
  to a file in a temporary folder; with ``--csv`` also ``--out TMP/stats.csv``, which writes
  the long table and a plot): threads in the CLI process (the default), on the first open of
  the file (an empty memo directory: Java starts, Bio-Formats reads the file) and on a file
  opened once before (untimed), whose answers are kept (:mod:`bfdask.answers`: no JVM);
* the latter with ``--workers 2`` (a LocalCluster of two worker processes), unless
  ``--no-cluster``.

Each bfdask run is one child process timed end to end (imports, JVM start, reference frames,
compute, tables, cluster shutdown; the plot with ``--csv``). Its progress bar
(``BFDASK_PROGRESS=yes``) splits the wall time into before, during and after the compute.
Every ~0.2 s a thread walks the process tree and keeps, per process, the larger of its RSS
and its kernel high-water mark (``VmHWM``, which also catches peaks between polls);
``wait4``'s ``ru_maxrss`` of the CLI (the largest RSS of it and of every descendant it
reaped) is kept as a check, and its ``ru_inblock`` gives the bytes the tree read from disk.

Writes the section "Out of core" of ``RESULTS.md`` and ``outofcore.json`` (every run, each
process' peak RSS). The file goes to
``--work`` and is deleted at the end unless ``--keep``; a kept file of the same size is reused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._util import MB, REPO, carry_section, child_env, publish

if TYPE_CHECKING:
    from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- outofcore:begin -->", "<!-- outofcore:end -->"
POSITIONS, SIZE_Z, SIZE_C, SIZE_Y, SIZE_X = 8, 40, 2, 1024, 1024
BYTES_PER_T = SIZE_Z * SIZE_C * SIZE_Y * SIZE_X * 2  # one timepoint of one position, uint16
SPARE_DISK = 5 * 2**30  # free space the file must leave on its disk
MIB = 2**20
POLL_S = 0.2
COMMAND = ("profile", "--positions", "--line", "auto")


# -- the file -------------------------------------------------------------------------------


def ram_bytes() -> int:
    """Total RAM of the machine."""
    import psutil

    return int(psutil.virtual_memory().total)


def timepoints_for(nbytes: float) -> int:
    """Timepoints per position for a file of at least ``nbytes``."""
    return max(1, math.ceil(nbytes / (POSITIONS * BYTES_PER_T)))


def lif_size(t: int) -> int:
    """Bytes of pixels of the LIF with ``t`` timepoints per position (headers aside)."""
    return POSITIONS * t * BYTES_PER_T


def check_disk(folder: Path, nbytes: int) -> None:
    """Refuse (SystemExit) a file that would leave less than :data:`SPARE_DISK` free."""
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free - nbytes < SPARE_DISK:
        raise SystemExit(
            f"outofcore: a {nbytes / 1e9:.1f} GB LIF in {folder} would leave "
            f"{(free - nbytes) / 2**30:.1f} GiB of {free / 2**30:.1f} GiB free (5 GiB wanted); "
            "free space, choose --work elsewhere or a smaller --gb"
        )


def tube_plane(margin: int = 12, sigma: float = 12.0) -> NDArray[np.uint16]:
    """A uint16 plane: a bright Gaussian tube on the diagonal, ``margin`` px from the corners,
    over a noisy background; the line found in it makes the tasks read every row and column."""
    rows, cols = np.mgrid[0:SIZE_Y, 0:SIZE_X].astype(np.float32)
    start = np.array([margin, margin], np.float32)
    step = np.array([SIZE_Y - 1 - 2 * margin, SIZE_X - 1 - 2 * margin], np.float32)
    length = float(np.hypot(*step))
    uy, ux = step / length
    along = (rows - start[0]) * uy + (cols - start[1]) * ux
    across = (rows - start[0]) * ux - (cols - start[1]) * uy
    inside = (along >= 0) & (along <= length)
    image = 200 + 3000 * np.exp(-(across**2) / (2 * sigma**2)) * inside
    image += np.random.default_rng(18).integers(0, 40, image.shape)
    plane: NDArray[np.uint16] = image.astype("<u2")
    return plane


def draw_tubes(path: Path, index: list[dict[str, Any]]) -> None:
    """Overwrite channel 0 of timepoint 0 of every position (all Z) with :func:`tube_plane`.

    ``index`` is make_lif's: each series' data offset; planes are in order c + C*(z + Z*t).
    """
    plane = tube_plane().tobytes()
    with open(path, "r+b") as f:
        for series in index:
            for z in range(SIZE_Z):
                offset = series["data_offset"] + series["plane_bytes"] * SIZE_C * z
                os.pwrite(f.fileno(), plane, offset)


def write_lif(path: Path, t: int) -> None:
    """The LIF of this benchmark with ``t`` timepoints per position, written whole to a
    ``.part`` file first (an existing ``path`` is always complete)."""
    from .native import _make_lif_module

    make_lif = _make_lif_module()
    spec = make_lif.Spec(
        POSITIONS, t, SIZE_Z, SIZE_C, SIZE_Y, SIZE_X, "uint16", "markfind", 0, None
    )
    part = path.with_suffix(".part")
    info = make_lif.write_lif(str(part), spec, project=path.stem, verbose=False)
    draw_tubes(part, info["series"])
    os.replace(part, path)


def prepare(work: Path, t: int) -> tuple[Path, float]:
    """The LIF in ``work`` (reused if a kept one exists) and the seconds spent writing it."""
    path = work / f"ooc-{POSITIONS}x{t}.lif"
    if path.exists() and path.stat().st_size > lif_size(t):
        print(f"reusing {path}", file=sys.stderr)
        return path, 0.0
    check_disk(work, lif_size(t))
    work.mkdir(parents=True, exist_ok=True)
    print(f"writing {path} ({lif_size(t) / 1e9:.1f} GB)...", file=sys.stderr)
    start = time.perf_counter()
    write_lif(path, t)
    return path, time.perf_counter() - start


# -- cold cache -----------------------------------------------------------------------------


def drop_cache(path: Path) -> str:
    """Evict ``path`` (and, where allowed, the whole page cache); how it was done."""
    os.sync()
    how = "drop_caches"
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        how = "fadvise"
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return how


def cached_fraction(path: Path) -> float | None:
    """The fraction of ``path`` in the page cache (``fincore``), None where unknown."""
    try:
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return int(out.stdout.split()[0]) / path.stat().st_size
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None


# -- memory of a process tree ---------------------------------------------------------------


def _high_water(pid: int) -> int:
    """The kernel's peak RSS (``VmHWM``) of ``pid`` in bytes, 0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class TreeWatch:
    """Polls the process tree of ``root`` in a thread: each process' peak RSS, and when
    ``marker`` first shows in the file ``log`` (the progress bar: the compute started)."""

    root: int
    log: Path
    marker: str = "Completed"
    peaks: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    marker_at: float | None = None
    _start: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeWatch:
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(POLL_S)

    def poll(self) -> None:
        """One look at every process of the tree and at the log."""
        import psutil

        try:
            root = psutil.Process(self.root)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                rss = max(proc.memory_info().rss, _high_water(proc.pid))
                self.names.setdefault(proc.pid, _label(proc, proc.pid == self.root))
            except psutil.Error:
                continue
            self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)
        if self.marker_at is None and self.marker in _read(self.log):
            self.marker_at = time.perf_counter() - self._start


def _label(proc: Any, is_root: bool) -> str:
    """A short name of a process of the tree."""
    if is_root:
        return "CLI"
    cmd = " ".join(proc.cmdline())
    for word in ("spawn_main", "forkserver", "resource_tracker"):
        if word in cmd:
            return f"{proc.name()} ({word})"
    return str(proc.name())


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# -- the runs -------------------------------------------------------------------------------


def run_dd(path: Path) -> dict[str, Any]:
    """``dd`` of the whole file to /dev/null: wall seconds and MB/s."""
    start = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=16M", "status=none"], check=True)
    wall = time.perf_counter() - start
    return {"wall": wall, "mbps": path.stat().st_size / MB / wall}


def _env(memo: Path | None = None) -> dict[str, str]:
    """The children's environment: this checkout's bfdask first, progress bars on; ``memo``
    the memo directory (Bio-Formats' Memoizer and bfdask's kept answers) if given."""
    env = child_env(BFDASK_PROGRESS="yes")
    return env if memo is None else {**env, "BFDASK_MEMO_DIR": str(memo)}


def open_once(path: Path, memo: Path) -> None:
    """Open the positions of ``path`` once with the memo directory ``memo`` (untimed): what a
    user's earlier look at the file leaves there (the answers Bio-Formats gave)."""
    code = f"import bfdask; bfdask.open_positions({str(path)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(memo), cwd=REPO)


def compute_seconds(log: str) -> float | None:
    """The elapsed time on the last progress bar in ``log`` (dask's or distributed's)."""
    bars = re.findall(r"100% Completed \|([^\r\n]*)", log)
    if not bars:
        return None
    units = {"hr": 3600, "h": 3600, "min": 60, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"([\d.]+)\s*(hr|min|ms|us|h|m|s)\b", bars[-1])
    return sum(float(value) * units[unit] for value, unit in parts) if parts else None


def run_bfdask(path: Path, workers: int | None, csv: bool, memo: Path | None) -> dict[str, Any]:
    """``python -m bfdask profile PATH --positions --line auto`` in a child process (with
    ``--workers``; with ``--out`` if ``csv``): wall time, its split, peak RSS and reads of
    every process of its tree. ``memo``: its memo directory (None: a new empty one, the first
    open of the file)."""
    with tempfile.TemporaryDirectory(prefix="bfdask-ooc-out-") as tmp:
        memo = Path(tmp) / "memo" if memo is None else memo
        log = Path(tmp) / "stderr.txt"
        argv = [sys.executable, "-m", "bfdask", COMMAND[0], str(path), *COMMAND[1:]]
        argv += ["--out", str(Path(tmp) / "stats.csv")] if csv else []
        argv += ["--workers", str(workers)] if workers else []
        with open(log, "w") as err, open(Path(tmp) / "stdout.txt", "w") as out:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=out, stderr=err, env=_env(memo), cwd=REPO)
            with TreeWatch(proc.pid, log) as watch:
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        text = _read(log)
    if proc.returncode != 0:
        raise RuntimeError(f"bfdask profile failed ({proc.returncode}): {text[-2000:]}")
    # wait4's usage covers the CLI and every descendant it reaped: ru_inblock is in 512 B
    row = _bfdask_row(wall, watch, usage.ru_maxrss * 1024, usage.ru_inblock * 512, text)
    row["mbps"] = path.stat().st_size / MB / wall
    return row


def _bfdask_row(
    wall: float, watch: TreeWatch, wait4_rss: int, disk_read: int, log: str
) -> dict[str, Any]:
    """The measured numbers of one bfdask run."""
    compute = compute_seconds(log)
    before = watch.marker_at
    after = None if before is None or compute is None else wall - before - compute
    cli = next((p for p, name in watch.names.items() if name == "CLI"), None)
    others = [rss for pid, rss in watch.peaks.items() if pid != cli]
    return {
        "wall": wall,
        "before_compute": before,
        "compute": compute,
        "after_compute": after,
        "rss_max_mib": max(watch.peaks.values(), default=0) / MIB,
        "rss_cli_mib": watch.peaks.get(cli, 0) / MIB if cli is not None else 0.0,
        "rss_others_max_mib": max(others, default=0) / MIB,
        "rss_wait4_mib": wait4_rss / MIB,
        "disk_read_gb": disk_read / 1e9,
        "processes": {f"{watch.names[p]} [{p}]": round(r / MIB) for p, r in watch.peaks.items()},
    }


def plan(cluster: bool) -> list[tuple[str, int | None, bool]]:
    """(label, ``--workers``, file opened before) of each run; ``-1`` stands for ``dd``."""
    runs: list[tuple[str, int | None, bool]] = [
        ("dd bs=16M", -1, False),
        ("bfdask, threads, first open of the file", None, False),
        ("bfdask, threads, file opened before", None, True),
    ]
    return [*runs, ("bfdask, --workers 2, file opened before", 2, True)] if cluster else runs


def measure_all(
    path: Path, repeats: int, cluster: bool, csv: bool
) -> dict[str, list[dict[str, Any]]]:
    """Every run, ``repeats`` times in rotation, each from a cold cache. A "first open" run
    gets an empty memo directory (Java starts, Bio-Formats reads the file, the native plan is
    verified); a "file opened before" run one where the file was opened once (untimed), as in
    a user's second session: the answers are kept (:mod:`bfdask.answers`), no JVM starts."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in plan(cluster)}
    with tempfile.TemporaryDirectory(prefix="bfdask-ooc-memo-") as kept:
        open_once(path, Path(kept))
        for _ in range(repeats):
            for label, workers, before in plan(cluster):
                how = drop_cache(path)
                cached = cached_fraction(path)
                if workers == -1:
                    row = run_dd(path)
                else:
                    row = run_bfdask(path, workers, csv, Path(kept) if before else None)
                _note(runs, label, row, how, cached)
    return runs


def _note(
    runs: dict[str, list[dict[str, Any]]],
    label: str,
    row: dict[str, Any],
    how: str,
    cached: float | None,
) -> None:
    """Keep one run's numbers (and say them on stderr)."""
    row.update(cache=how, cached_before=cached)
    runs[label].append(row)
    brief = {k: v for k, v in row.items() if k != "processes"}
    print(f"{label}: {json.dumps(brief, default=str)}", file=sys.stderr)


def medians(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per run, the median of each number over the repeats."""
    out: dict[str, dict[str, Any]] = {}
    for label, rows in runs.items():
        keys = [k for k in rows[0] if any(isinstance(r.get(k), (int, float)) for r in rows)]
        row: dict[str, Any] = {}
        for key in keys:
            values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
            row[key] = statistics.median(values) if values else None
        out[label] = row
    return out


# -- the section ----------------------------------------------------------------------------


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _cache_text(results: dict[str, Any]) -> str:
    """How the cache was made cold, and how much of the file was still cached."""
    rows = [r for rows in results["runs"].values() for r in rows]
    hows = {r["cache"] for r in rows}
    cached = [r["cached_before"] for r in rows if r["cached_before"] is not None]
    if hows == {"drop_caches"}:
        text = "page cache dropped before every run (sync, `drop_caches` 3, fadvise DONTNEED)"
    else:
        text = "`drop_caches` not writable: the file evicted with fadvise DONTNEED only"
    if cached:
        text += f"; at most {max(cached):.1%} of the file cached at the start of a run"
    return text


def _intro(results: dict[str, Any]) -> str:
    """The paragraph under the title: file, cache, command, how things are measured."""
    out = " --out TMP/stats.csv" if results["csv"] else ""
    return (
        f"Generated by `python -m benchmarks outofcore` on {results['date']} in "
        f"{results['minutes']:.1f} min. A LIF of {results['gb']:.1f} GB, "
        f"{results['ram_ratio']:.2f}× this machine's RAM ({results['ram_gib']:.1f} GiB), on "
        f"{results['disk']}: {POSITIONS} positions (`Mark_and_Find_001/Pos001`...) × T "
        f"{results['t']}, Z {SIZE_Z}, C {SIZE_C}, {SIZE_Y}×{SIZE_X} uint16 (make_lif.py, with "
        "a diagonal tube drawn in channel 0 of T 0 of each position, so that the line is found "
        f"there and spans every row and column). Cache: {_cache_text(results)}. Command: "
        f"`bfdask profile LIF --positions --line auto{out}`, a fresh process per run (imports, "
        "JVM, reference frames, tables included); before/compute/after from its progress bar. "
        "Peak RSS: per process, the larger of its RSS and its `VmHWM`, polled every 0.2 s "
        "over the CLI's process tree; read from disk: `wait4`'s `ru_inblock` of the tree. "
        f"Medians of {results['repeats']} run(s) in rotation."
    )


def _run_rows(m: dict[str, dict[str, Any]]) -> list[str]:
    """The table of runs."""
    lines = [
        "| run | wall s | MB/s | before compute s | compute s | after s | read from disk GB "
        "| peak RSS, largest process MiB | peak RSS, CLI process MiB |",
        "|" + " --- |" * 9,
    ]
    for label, row in m.items():
        cells = [
            label,
            _num(row["wall"]),
            _num(row["mbps"], ".0f"),
            *(_num(row.get(k)) for k in ("before_compute", "compute", "after_compute")),
            _num(row.get("disk_read_gb")),
            *(_num(row.get(k), ".0f") for k in ("rss_max_mib", "rss_cli_mib")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _target_rows(results: dict[str, Any]) -> list[str]:
    """The table of targets."""
    m = results["medians"]
    dd = m["dd bs=16M"]["wall"]
    lines = ["| target | this run | wanted |", "| --- | --- | --- |"]
    for label, row in m.items():
        if label.startswith("bfdask"):
            lines.append(f"| {label}: wall ÷ dd | {row['wall'] / dd:.2f}× | ≤ 1.15× |")
            peak = row["rss_max_mib"]
            lines.append(f"| {label}: peak RSS, any process | {peak:.0f} MiB | ≤ 1024 MiB |")
    return [
        *lines,
        f"| file ÷ RAM | {results['ram_ratio']:.2f}× | ≥ 1.5× (or cache dropped) |",
        f"| page cache | {results['cache']} | dropped, else file ≥ 1.5× RAM |",
    ]


def section(results: dict[str, Any]) -> str:
    """The RESULTS.md section, between its markers."""
    lines = [BEGIN, "## 10. Out of core (issue #18)", "", _intro(results), ""]
    lines += [*_run_rows(results["medians"]), "", *_target_rows(results), END]
    return "\n".join(lines) + "\n"


def keep_section(old: str, new: str) -> str:
    """``new`` (a rewritten RESULTS.md) with this section of ``old`` carried over."""
    return carry_section(old, new, BEGIN, END)


# -- main -----------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks outofcore", description=__doc__)
    ap.add_argument(
        "--gb",
        type=float,
        default=None,
        help="file size in GB, at least (default 1.5x RAM; rounded up to whole timepoints, "
        f"{POSITIONS * BYTES_PER_T / 1e9:.2f} GB each)",
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/bfdask-ooc"), help="folder of the LIF")
    ap.add_argument("--keep", action="store_true", help="keep the LIF (reused next time)")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each kind (1)")
    ap.add_argument("--no-cluster", action="store_true", help="skip the --workers 2 run")
    ap.add_argument("--csv", action="store_true", help="bfdask profile --out (table and plot)")
    ap.add_argument("--out", type=Path, default=HERE, help="folder of RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="print only; RESULTS.md untouched")
    return ap.parse_args(argv)


def _bfdask_file() -> str:
    """Where the children import bfdask from (this checkout, through PYTHONPATH)."""
    code = "import bfdask; print(bfdask.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=REPO
    )
    return out.stdout.strip() or out.stderr.strip()[-300:]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Write (or reuse) the file, run everything, delete the file unless ``--keep``."""
    from ._util import _disk_of

    ram = ram_bytes()
    t = timepoints_for(args.gb * 1e9 if args.gb else 1.5 * ram)
    results: dict[str, Any] = {"t": t, "repeats": args.repeats, "csv": args.csv}
    results["bfdask"] = _bfdask_file()
    print(f"bfdask from {results['bfdask']}", file=sys.stderr)
    path, write_s = prepare(args.work, t)
    try:
        size = path.stat().st_size
        results.update(gb=size / 1e9, ram_gib=ram / 2**30, ram_ratio=size / ram)
        results.update(write_seconds=write_s, disk=_disk_of(str(args.work)))
        results["runs"] = measure_all(path, args.repeats, not args.no_cluster, args.csv)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                args.work.rmdir()  # if empty
    results["medians"] = medians(results["runs"])
    hows = {r["cache"] for rows in results["runs"].values() for r in rows}
    results["cache"] = "dropped" if hows == {"drop_caches"} else "fadvise only"
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    begin = time.time()
    results = measure(args)
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["minutes"] = (time.time() - begin) / 60
    publish(results, section, args.out, "outofcore", (BEGIN, END), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
