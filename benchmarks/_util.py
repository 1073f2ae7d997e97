"""Shared pieces of the benchmark suite: settings, timing, tables, machine facts, test files.

Nothing here imports Java; the sections call :mod:`bfdask` themselves.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MB = 1e6  # throughput is reported in MB/s with MB = 10**6 bytes
REPO = Path(__file__).resolve().parent.parent


# -- run settings ---------------------------------------------------------------------------


@dataclass
class Settings:
    """Sizes and repeat counts of one run; ``quick`` shrinks everything to seconds."""

    quick: bool
    out: Path
    work: Path
    repeats: int = 3
    # section 1: dimension order (per file)
    do_sizes: dict[str, int] = field(default_factory=dict)
    # section 2: the big OME-TIFF (T, Z, Y, X), uint16, C=1
    big_shape: tuple[int, int, int, int] = (100, 10, 1024, 1024)
    zlib_shape: tuple[int, int, int, int] = (16, 8, 1024, 1024)
    lif_shape: tuple[int, int, int, int] = (50, 10, 1024, 1024)  # T, Z, Y, X -> 1 GiB
    # section 3: tasks of 64x64 planes
    n_tasks: int = 500
    # section 4
    series_counts: tuple[int, ...] = (1, 100, 1000)
    heavy_series: int = 1000
    big_fake: tuple[int, int, int, int] = (500, 100, 2048, 2048)  # T, Z, Y, X: 400 GB
    worker_memory: int = 1536 * 2**20
    profile_factors: tuple[float, ...] = (1, 4, 10.5)
    profiler: bool = True
    cold_cache: bool = True
    # section 5: native pixel path, LIF and OME-TIFF (T, Z, Y, X) uint16 -> 2 GiB each
    native_shape: tuple[int, int, int, int] = (64, 16, 1024, 1024)
    native_verify_series: int = 200

    @classmethod
    def make(cls, quick: bool, out: Path, work: Path) -> Settings:
        if not quick:
            return cls(
                quick=False,
                out=out,
                work=work,
                do_sizes={"T": 10, "C": 2, "Z": 10, "Y": 512, "X": 512},
            )
        return cls(
            quick=True,
            out=out,
            work=work,
            repeats=1,
            do_sizes={"T": 4, "C": 2, "Z": 4, "Y": 64, "X": 64},
            big_shape=(8, 4, 256, 256),
            zlib_shape=(4, 4, 256, 256),
            lif_shape=(4, 4, 128, 128),
            n_tasks=50,
            series_counts=(1, 10, 100),
            heavy_series=50,
            worker_memory=1024 * 2**20,
            profile_factors=(0.05, 0.1),
            profiler=False,
            cold_cache=False,
            native_shape=(4, 4, 128, 128),
            native_verify_series=12,
        )


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs of one thing."""

    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def mbps(self, nbytes: int) -> float:
        return nbytes / MB / self.median


def measure(fn: Callable[[], Any], repeats: int, warmup: bool = False) -> Timing:
    """Run ``fn`` ``repeats`` times (after one untimed run if ``warmup``); drop each result."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        del result
    gc.collect()
    return Timing(times)


# -- tables ---------------------------------------------------------------------------------


@dataclass
class Table:
    """One Markdown table of RESULTS.md."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""

    def markdown(self) -> str:
        def cell(value: Any) -> str:
            if isinstance(value, float):
                if value == 0:
                    return "0"
                if abs(value) >= 100:
                    return f"{value:,.0f}"
                if abs(value) >= 10:
                    return f"{value:.1f}"
                if abs(value) >= 0.1:
                    return f"{value:.2f}"
                return f"{value:.3g}"
            text = str(value).replace("|", "\\|").replace("\n", " ")
            return text if text else "-"

        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(cell(v) for v in row) + " |")
        return "\n".join(lines) + "\n"


@dataclass
class Section:
    """A numbered part of the report: prose, tables, figures, and plain data for results.json."""

    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


# -- the machine ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, core count, memory, OS, Python and library versions."""
    import psutil

    info: dict[str, Any] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
        models = [
            ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")
        ]
        flags = [ln for ln in text.splitlines() if ln.startswith("flags")]
        info["cpu"] = models[0] if models else platform.processor()
        info["logical_cpus"] = len(models) or os.cpu_count()
        info["cpu_mhz"] = next(
            (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("cpu MHz")),
            "?",
        )
        info["hypervisor"] = bool(flags and " hypervisor" in flags[0])
    except OSError:
        info["cpu"] = platform.processor()
        info["logical_cpus"] = os.cpu_count()
    vm = psutil.virtual_memory()
    info["memory_gib"] = round(vm.total / 2**30, 1)
    info["memory_available_gib"] = round(vm.available / 2**30, 1)
    info["os"] = f"{platform.system()} {platform.release()}"
    info["python"] = platform.python_version()
    import dask
    import distributed
    import tifffile
    import xarray

    info["numpy"] = np.__version__
    info["dask"] = dask.__version__
    info["distributed"] = distributed.__version__
    info["xarray"] = xarray.__version__
    info["tifffile"] = tifffile.__version__
    try:
        info["disk"] = _disk_of("/tmp")
    except Exception:
        info["disk"] = "?"
    return info


def _disk_of(path: str) -> str:
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize / 2**30
    dev = subprocess.run(["df", "--output=source", path], capture_output=True, text=True).stdout
    return f"{dev.split()[-1]} ({free:.0f} GiB free)"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# -- test files -----------------------------------------------------------------------------


def plane_pattern(y: int, x: int, seed: int = 0, noisy: bool = False) -> np.ndarray:
    """A uint16 plane: a gradient, plus noise in the low bits when ``noisy`` (compressible)."""
    yy, xx = np.mgrid[0:y, 0:x]
    plane = ((yy * 7 + xx * 3 + seed * 101) % 4096).astype(np.uint16)
    if noisy:
        plane += np.random.default_rng(seed).integers(0, 64, (y, x), dtype=np.uint16)
    return plane


def write_ome_tiff(
    path: Path,
    sizes: dict[str, int],
    axes: str,
    compression: str | None = None,
    noisy: bool = False,
) -> Path:
    """Write an OME-TIFF whose planes are stored in ``axes`` order (e.g. "TCZYX" = XYZCT).

    Planes are generated one at a time (memory ~ one plane); each plane differs by its index.
    """
    import tifffile

    shape = tuple(sizes[a] for a in axes)
    n_planes = int(np.prod(shape[:-2]))
    base = plane_pattern(sizes["Y"], sizes["X"], noisy=noisy)

    def planes() -> Iterator[np.ndarray]:
        for i in range(n_planes):
            yield base + np.uint16(i % 1000)

    tmp = path.with_suffix(".part")
    tifffile.imwrite(
        tmp,
        data=planes(),
        shape=shape,
        dtype="uint16",
        ome=True,
        metadata={"axes": axes},
        compression=compression,
        bigtiff=n_planes * base.nbytes > 2**31,
        photometric="minisblack",
    )
    os.replace(tmp, path)
    return path


def fake_path(directory: Path, name: str, **keys: Any) -> Path:
    """An empty ``.fake`` file; Bio-Formats generates its pixels from the keys in the name."""
    parts = [name] + [f"{k}={v}" for k, v in keys.items()]
    path = directory / ("&".join(parts) + ".fake")
    path.touch()
    return path


def tiff_planes(path: Path) -> list[tuple[int, int]]:
    """(offset, nbytes) of each plane of an uncompressed, single-strip-or-contiguous TIFF."""
    import tifffile

    out = []
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            offsets, counts = page.dataoffsets, page.databytecounts
            # tifffile writes contiguous strips: one read covers the plane
            out.append((int(offsets[0]), int(sum(counts))))
    return out


def drop_caches() -> str | None:
    """Drop the page cache (root only). Returns None on success, else the reason it failed."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a timed child process: this checkout's bfdask first, ``extra``
    added, and Python's byte-code cache allowed (a shell with ``PYTHONDONTWRITEBYTECODE``
    would make every child compile bfdask's modules again, ~0.1 s that no installed copy
    pays; the untimed first run writes the cache)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**env, **extra}


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 600
) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (a fresh JVM); it prints one JSON line last."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), full_env.get("PYTHONPATH", "")])
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed ({proc.returncode}): {proc.stderr[-2000:]}")
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(last)


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}×"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def block_source(data: Any) -> Any:
    """bfdask's task object (``BlockSource``) inside the graph of a bfdask DataArray/dask array."""
    from bfdask.array import BlockSource

    arr = getattr(data, "data", data)
    for value in dict(arr.__dask_graph__()).values():
        for obj in (value, getattr(value, "value", None)):
            if isinstance(obj, BlockSource):
                return obj
    raise LookupError("no BlockSource in this graph")


def read_block_kwargs(source: Any) -> dict[str, Any]:
    """Keyword arguments of ``bfdask.readers.read_block`` that the source carries (dtype, samples,
    and whatever else the current read_block signature takes: byte order, interleaving...)."""
    import dataclasses
    import inspect

    from bfdask import readers

    params = inspect.signature(readers.read_block).parameters
    fields = {f.name: getattr(source, f.name) for f in dataclasses.fields(source)}
    return {
        k: v
        for k, v in fields.items()
        if k in params and params[k].kind is inspect.Parameter.KEYWORD_ONLY
    }


def publish(
    results: dict[str, Any],
    section: Callable[[dict[str, Any]], str],
    out: Path,
    name: str,
    markers: tuple[str, str],
    *,
    write: bool,
) -> None:
    """Print the section ``section(results)``; with ``write``, put it into ``out/RESULTS.md``
    between ``markers`` and the results into ``out/<name>.json``."""
    text = section(results)
    print(text)
    if write:
        put_section(out / "RESULTS.md", *markers, text)
        (out / f"{name}.json").write_text(json.dumps(results, indent=1))


def put_section(path: Path, begin: str, end: str, text: str) -> None:
    """Put ``text`` (a section between the markers ``begin`` and ``end``) into the results
    file ``path`` in place of the previous one (else before ``## Plots``, else at the end)."""
    doc = path.read_text() if path.exists() else "# bfdask benchmark results\n"
    start, stop = doc.find(begin), doc.find(end)
    if 0 <= start < stop:
        doc = doc[:start] + text.rstrip("\n") + doc[stop + len(end) :]
    else:
        at = doc.find("\n## Plots")
        doc = (
            doc.rstrip("\n") + "\n\n" + text
            if at < 0
            else doc[: at + 1] + text + "\n" + doc[at + 1 :]
        )
    path.write_text(doc)


def carry_section(old: str, new: str, begin: str, end: str) -> str:
    """``new`` (a rewritten results file) with the section between ``begin`` and ``end`` of
    ``old`` carried over (a section measured by its own command)."""
    start, stop = old.find(begin), old.find(end)
    if not 0 <= start < stop or begin in new:
        return new
    text = old[start : stop + len(end)] + "\n"
    at = new.find("\n## Plots")
    return (
        new.rstrip("\n") + "\n\n" + text if at < 0 else new[: at + 1] + text + "\n" + new[at + 1 :]
    )
