"""``python -m benchmarks vendors``: native CZI and ND2 pixels against the vendors' Python
readers and Bio-Formats (issue #17).

* **CZI**: two files of ``--megabytes`` MiB written by ``pylibCZIrw`` (uint16 planes of
  1024 x 1024, T x C x Z, one subblock per plane), uncompressed and zstd (hi/lo byte packing,
  level 1). Each is read whole on one core from the page cache (one warm-up pass first) by
  bfdask (``pixels="native"`` and ``"bioformats"``, single-threaded scheduler), ``pylibCZIrw``
  plane by plane and ``czifile`` subblock by subblock; every reader takes the max of each plane
  (the same reduction, so only the reading differs). Then the profile job (``bfdask.profile``,
  linewidth 9, Z max, threads) on the uncompressed file both ways.
* **ND2**: no writer exists, so the corpus ND2 files are read ``--nd2-repeats`` times each,
  whole series per task: bfdask native and Bio-Formats, and ``nd2``'s ``read_frame`` per frame.
  Per-plane cost = time ÷ planes.
* **Opening**: a CZI of 100 scenes (4 planes of 256 x 256 each) opened in a fresh process;
  verification (plan + comparing planes) against the time ``bfdask.open`` took.

Medians of ``--repeats`` passes. Writes the section "Native CZI and ND2" of ``RESULTS.md``
(``--no-write``: print only). Needs ``pylibCZIrw`` and ``czifile`` (``pip install
pylibczirw czifile``) besides the test extras.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._util import carry_section, publish, put_section, run_python

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- vendors:begin -->", "<!-- vendors:end -->"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ZSTD = "zstd1:ExplicitLevel=1;PreProcess=HiLoByteUnpack"


def write_czi(path: Path, megabytes: int, compression: str | None) -> tuple[int, int, int]:
    """A CZI of about ``megabytes`` MiB: (T, C, Z) planes of 1024 x 1024 uint16 (a smooth
    image plus noise, so zstd has something to do). Returns (T, C, Z)."""
    from pylibCZIrw import czi as pyczi

    planes = max(4, megabytes // 2)
    t, c = 4, 2
    z = max(1, planes // (t * c))
    rng = np.random.default_rng(17)
    yy, xx = np.mgrid[0:1024, 0:1024]
    base = (1000 + 800 * np.sin(yy / 97.0) * np.cos(xx / 131.0)).astype(np.uint16)
    with pyczi.create_czi(str(path), exist_ok=True, compression_options=compression) as doc:
        for ti in range(t):
            for zi in range(z):
                for ci in range(c):
                    noise = rng.integers(0, 64, base.shape, dtype=np.uint16)
                    plane = base + noise + np.uint16(100 * ci + 10 * zi + ti)
                    doc.write(data=plane[..., np.newaxis], plane={"T": ti, "C": ci, "Z": zi})
    return t, c, z


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Median seconds of ``repeats`` runs after one warm-up run (page cache, readers)."""
    run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), seconds


def plane_reads(path: Path | str, mode: str, whole: bool = False) -> tuple[Callable[[], int], int]:
    """What a task does, plane by plane over the whole series: bfdask's native or Bio-Formats
    ``read_block`` of one plane (file stamps checked, damage enforced), then its max; with
    ``whole``, one ``read_block`` of the whole series (a task's block of all planes). Also
    returns the number of planes."""
    import bfdask
    from bfdask import native, pixels, readers

    spec = bfdask.read_spec(str(path))
    recipe = pixels.choose(spec, mode).recipe
    planes = [
        ((t, t + 1), (c, c + 1), (z, z + 1))
        for t in range(spec.size_t)
        for c in range(spec.size_c)
        for z in range(spec.size_z)
    ]
    window = ((0, spec.size_y), (0, spec.size_x))
    if whole:
        planes = [((0, spec.size_t), (0, spec.size_c), (0, spec.size_z))]

    def run() -> int:
        best = 0
        for t, c, z in planes:
            if recipe is not None:
                block = native.read_block(recipe, t, c, z, *window)
            else:
                block = readers.read_block(
                    spec.path,
                    spec.series,
                    0,
                    t,
                    c,
                    z,
                    *window,
                    dtype=spec.dtype,
                    samples=spec.samples,
                    little_endian=spec.little_endian,
                    interleaved=spec.interleaved,
                    stamp=spec.stamp,
                )
            best = max(best, int(block.max()))
        return best

    return run, spec.size_t * spec.size_c * spec.size_z


def czi_readers(path: Path, sizes: tuple[int, int, int]) -> dict[str, Callable[[], int]]:
    """Each reader of the whole file, returning the max over its planes."""
    import bfdask

    t, c, z = sizes

    def bfdask_read(mode: str) -> Callable[[], int]:
        data = bfdask.open(path, ome=False, pixels=mode)
        assert data.attrs["pixels"] == mode, data.attrs["pixels_reason"]
        return lambda: int(data.data.max().compute(scheduler="single-threaded"))

    def pylibczirw() -> int:
        from pylibCZIrw import czi as pyczi

        best = 0
        with pyczi.open_czi(str(path)) as doc:
            for ti in range(t):
                for ci in range(c):
                    for zi in range(z):
                        best = max(best, int(doc.read(plane={"T": ti, "C": ci, "Z": zi}).max()))
        return best

    def czifile_read() -> int:
        import czifile

        best = 0
        with czifile.CziFile(str(path)) as czi:
            for entry in czi.filtered_subblock_directory:
                best = max(best, int(entry.data_segment().data().max()))
        return best

    return {
        "bfdask native, plane by plane": plane_reads(path, "native")[0],
        "bfdask Bio-Formats, plane by plane": plane_reads(path, "bioformats")[0],
        "pylibCZIrw": pylibczirw,
        "czifile": czifile_read,
        "bfdask native, dask end to end": bfdask_read("native"),
        "bfdask Bio-Formats, dask end to end": bfdask_read("bioformats"),
    }


def profile_job(path: Path, repeats: int) -> dict[str, float]:
    """The profile job on ``path`` both ways (threads), median seconds."""
    import bfdask

    out = {}
    for mode in ("native", "bioformats"):

        def job(mode: str = mode) -> float:
            data = bfdask.open(path, ome=False, pixels=mode)
            line = ((128, 64), (896, 960))
            stats = bfdask.profile(data, *line, linewidth=9).compute(scheduler="threads")
            return float(stats["max"].max())

        out[mode] = timed(job, repeats)[0]
    return out


def _nd2_frames(file: Any) -> Callable[[], None]:
    """Read every frame of the open ``nd2.ND2File`` ``file``, each channel's max."""

    def run() -> None:
        for seq in range(file.attributes.sequenceCount):
            frame = np.asarray(file.read_frame(seq))
            for plane in frame.reshape(-1, *frame.shape[-2:]):
                plane.max()

    return run


def nd2_rows(repeats: int, loops: int = 50) -> list[dict[str, Any]]:
    """Per-plane seconds for each corpus ND2, plane by plane as a task reads: bfdask native,
    Bio-Formats, and nd2 (frame by frame, each channel)."""
    import nd2

    rows = []
    for name in sorted(glob.glob(str(DATA / "nd2" / "*.nd2"))):
        file = nd2.ND2File(name)  # opened once, as bfdask's tasks keep theirs open
        native, planes = plane_reads(name, "native", whole=True)
        bioformats, _ = plane_reads(name, "bioformats", whole=True)
        row: dict[str, Any] = {"file": Path(name).name, "planes": planes}
        for label, run in (
            ("native", native),
            ("bioformats", bioformats),
            ("nd2", _nd2_frames(file)),
        ):

            def many(run: Callable[[], Any] = run) -> None:
                for _ in range(loops):
                    run()

            row[label] = timed(many, repeats)[0] / (loops * planes)
        file.close()
        rows.append(row)
    return rows


_VERIFY_CHILD = r"""
import json, time
import bfdask
from bfdask import pixels
path = PATH
t0 = time.perf_counter()
data = bfdask.open(path, series=50, ome=False)                # fresh process: JVM, setId, plan
open_auto = time.perf_counter() - t0
spec = bfdask.read_spec(path, series=51)
t0 = time.perf_counter()
choice = pixels.choose(spec, "native")
verify = time.perf_counter() - t0
print(json.dumps({"open_auto": open_auto, "verify": verify, "pixels": data.attrs["pixels"]}))
"""


def verify_cost(folder: Path, repeats: int) -> dict[str, Any]:
    """Verification ÷ open time on a 100-scene CZI (median run by ratio)."""
    from pylibCZIrw import czi as pyczi

    path = folder / "scenes100.czi"
    plane = np.arange(256 * 256, dtype=np.uint16).reshape(256, 256, 1)
    with pyczi.create_czi(str(path), exist_ok=True) as doc:
        for scene in range(100):
            for zi in range(4):
                doc.write(data=plane + zi, plane={"Z": zi}, scene=scene, location=(scene * 300, 0))
    runs = [
        run_python(f"PATH = {str(path)!r}\n" + _VERIFY_CHILD, timeout=600) for _ in range(repeats)
    ]
    for r in runs:
        r["ratio"] = r["verify"] / r["open_auto"]
    return sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]


def section(results: dict[str, Any]) -> str:
    """The RESULTS.md section, between its markers."""
    lines = [BEGIN, "## 8. Native CZI and ND2 (issue #17)", ""]
    lines.append(
        f"Generated by `python -m benchmarks vendors` on {results['date']} in "
        f"{results['minutes']:.1f} min (Python {results['python']}, pylibCZIrw "
        f"{results['versions']['pylibczirw']}, czifile {results['versions']['czifile']}, nd2 "
        f"{results['versions']['nd2']}). One core, page cache warm, medians of "
        f"{results['repeats']} passes after a warm-up; every reader takes each plane's max."
    )
    for kind, czi in results["czi"].items():
        gib = czi["bytes"] / 2**30
        lines += [
            "",
            f"**CZI, {kind}** ({gib:.2f} GiB of pixels, file {czi['file_bytes'] / 2**30:.2f} GiB, "
            f"T×C×Z {czi['sizes']}, 1024×1024 uint16, written by pylibCZIrw). 'plane by "
            "plane': what a task does, one plane per read_block; 'dask end to end': "
            "`bfdask.open(path).data.max()` on the single-threaded scheduler, default chunks:",
            "",
            "| reader | median s | GB/s of pixels | bfdask native ÷ it |",
            "| --- | --- | --- | --- |",
        ]
        native = czi["seconds"]["bfdask native, plane by plane"]
        for reader, seconds in czi["seconds"].items():
            if seconds is None:
                lines.append(f"| {reader} | cannot decode this compression | - | - |")
                continue
            lines.append(
                f"| {reader} | {seconds:.2f} | {czi['bytes'] / seconds / 1e9:.2f} | "
                f"{seconds / native:.2f}× |"
            )
    job = results["profile_job"]
    lines += [
        "",
        f"The profile job on the uncompressed CZI (bfdask.profile, linewidth 9, Z max, threads): "
        f"native {job['native']:.2f} s, Bio-Formats {job['bioformats']:.2f} s: "
        f"**{job['bioformats'] / job['native']:.1f}×**.",
        "",
        "**ND2** (corpus files; bfdask: one read_block of the whole series, as a task "
        "reading it as one block; nd2: read_frame frame by frame, each channel; per plane, 50 "
        "passes per run):",
        "",
        "| file | planes | native µs | Bio-Formats µs | nd2 µs | native ÷ nd2 speed | "
        "native ÷ Bio-Formats speed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["nd2"]:
        lines.append(
            f"| {row['file']} | {row['planes']} | {row['native'] * 1e6:.0f} | "
            f"{row['bioformats'] * 1e6:.0f} | {row['nd2'] * 1e6:.0f} | "
            f"{row['nd2'] / row['native']:.2f}× | {row['bioformats'] / row['native']:.1f}× |"
        )
    v = results["verify"]
    lines += ["", *targets(results), ""]
    lines += [
        f"**Opening** a 100-scene CZI (4 planes of 256×256 per scene), fresh process: "
        f"verification {v['verify'] * 1e3:.1f} ms of {v['open_auto'] * 1e3:.0f} ms = "
        f"**{100 * v['ratio']:.1f} %** (pixels {v['pixels']}).",
        END,
    ]
    return "\n".join(lines) + "\n"


def targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets against this run, as a table (met, or the bound that holds)."""
    rows = []
    for kind, czi in results["czi"].items():
        sec = czi["seconds"]
        native = sec["bfdask native, plane by plane"]
        vendor = min(t for r, t in sec.items() if r in ("pylibCZIrw", "czifile") and t)
        rows.append((f"CZI {kind}: native ÷ the faster vendor reader", vendor / native, 0.8))
        bf = sec["bfdask Bio-Formats, plane by plane"]
        rows.append((f"CZI {kind}: native ÷ Bio-Formats", bf / native, 5.0))
    job = results["profile_job"]
    rows.append(
        ("profile job on the CZI: Bio-Formats ÷ native", job["bioformats"] / job["native"], 3.0)
    )
    for row in results["nd2"]:
        rows.append(
            (f"ND2 {row['file']}: native ÷ nd2 per plane", row["nd2"] / row["native"], 0.8)
        )
        rows.append(
            (
                f"ND2 {row['file']}: native ÷ Bio-Formats per plane",
                row["bioformats"] / row["native"],
                5.0,
            )
        )
    v = results["verify"]
    out = ["| target | this run | wanted | met |", "| --- | --- | --- | --- |"]
    for name, value, wanted in rows:
        out.append(
            f"| {name} | {value:.2f}× | ≥ {wanted:g}× | {'yes' if value >= wanted else 'no'} |"
        )
    out.append(
        f"| verification ÷ open, 100-scene CZI | {100 * v['ratio']:.1f} % | ≤ 10 % | "
        f"{'yes' if v['ratio'] <= 0.1 else 'no'} |"
    )
    zstd = [name for name, value, wanted in rows if value < wanted and "zstd" in name]
    if zstd:
        out += [
            "",
            "The bound where a zstd CZI target is missed: the read is decode-bound. bfdask "
            "decompresses with imagecodecs' zstd into the plane, joins the hi/lo bytes in one "
            "numpy pass; pylibCZIrw (libCZI, C++) does both in native code. bfdask's speed "
            "against pylibCZIrw's varied from 0.56× to 1.08× between runs on this shared "
            "machine. Bio-Formats' Java zstd decodes at about 0.2 GB/s, bfdask at 0.75-1.0 GB/s.",
        ]
    missed = [name for name, value, wanted in rows if value < wanted and name.startswith("ND2")]
    if missed:
        out += [
            "",
            "The bound where an ND2 target is missed: the corpus' ND2 planes are tiny (64×64 to "
            "256×256, 8-128 KiB), so a plane costs a few µs of fixed work in every reader: "
            "nd2's `read_frame` is a memory-mapped view (no copy), bfdask's block read checks the "
            "file's stamp before and after, maps each plane and copies it into the block, and "
            "Bio-Formats' JNI call is a few tens of µs. For planes of real sizes (MBs) the "
            "copy dominates in all three (the CZI rows above: same reads, 1024×1024 planes).",
        ]
    return out


def keep_section(old: str, new: str) -> str:
    """``new`` (a rewritten RESULTS.md) with this section of ``old`` carried over."""
    return carry_section(old, new, BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks vendors", description=__doc__)
    ap.add_argument("--megabytes", type=int, default=1024, help="size of each CZI (MiB)")
    ap.add_argument("--repeats", type=int, default=3, help="passes per reader")
    ap.add_argument("--out", type=Path, default=HERE, help="folder of RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="print only; RESULTS.md untouched")
    ap.add_argument(
        "--rerender", action="store_true", help="rewrite the section from vendors.json (no run)"
    )
    args = ap.parse_args(argv)
    if args.rerender:
        text = section(json.loads((args.out / "vendors.json").read_text()))
        put_section(args.out / "RESULTS.md", BEGIN, END, text)
        print(text)
        return 0
    from importlib.metadata import version

    begin = time.time()
    results: dict[str, Any] = {"czi": {}, "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="bfdask-vendors-") as tmp:
        folder = Path(tmp)
        for kind, compression in (("uncompressed", None), ("zstd", ZSTD)):
            path = folder / f"{kind}.czi"
            sizes = write_czi(path, args.megabytes, compression)
            seconds: dict[str, float | None] = {}
            for reader, run in czi_readers(path, sizes).items():
                try:
                    seconds[reader] = timed(run, args.repeats)[0]
                except Exception as exc:  # czifile 2019 has no zstd1 (hi/lo packing)
                    print(f"{reader} cannot read {kind}: {exc!r}", file=sys.stderr)
                    seconds[reader] = None
            print(f"{kind}: {json.dumps(seconds)}", file=sys.stderr)
            results["czi"][kind] = {
                "seconds": seconds,
                "sizes": "×".join(map(str, sizes)),
                "bytes": int(np.prod(sizes)) * 1024 * 1024 * 2,
                "file_bytes": path.stat().st_size,
            }
            if compression is None:
                results["profile_job"] = profile_job(path, args.repeats)
            path.unlink()
        results["nd2"] = nd2_rows(args.repeats)
        results["verify"] = verify_cost(folder, args.repeats)
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["minutes"] = (time.time() - begin) / 60
    results["python"] = sys.version.split()[0]
    results["versions"] = {name: version(name) for name in ("pylibczirw", "czifile", "nd2")}
    publish(results, section, args.out, "vendors", (BEGIN, END), write=not args.no_write)
    return 0
