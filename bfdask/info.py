"""``bfdask info``: what a file holds, and which Java reads it, without reading pixels.

:func:`describe` opens the file once (a fresh reader, so its open time is measured honestly,
Memoizer included) and reads the core metadata and OME store of every series; no plane is
read, so it is as fast on a 400 GB file as on a small one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe ``path``: format, reader, files, open time and every series.

    Returns
    -------
    dict
        ``path``, ``format``, ``reader`` (Java class), ``bioformats_version``, ``files`` (every
        file of the dataset), ``file_size`` (bytes, all files), ``open_seconds``,
        ``series_count`` and ``series``: one dict per series with ``index``, ``name``,
        ``dims``, ``shape`` (by dim), ``dtype``, ``pixel_type``, ``dimension_order``,
        ``physical_size`` (µm by X/Y/Z, None if unknown), ``time_increment`` (s between
        timepoints: TimeIncrement, else the planes' DeltaT), ``acquisition_date`` (ISO 8601),
        ``channels``, ``resolutions``, ``nbytes``.

    Raises
    ------
    FileNotFoundError, UnsupportedFormatError, CorruptFileError
        As for :func:`bfdask.open`.
    """
    from . import jvm, metadata, readers

    checked = readers.check_path(path)
    jvm.ensure()  # JVM start-up is not the file's open time
    start = time.perf_counter()
    reader = readers.Reader(checked)
    open_seconds = time.perf_counter() - start
    try:
        files = metadata.used_files(reader)
        series = []
        for index in range(reader.series_count):
            spec = metadata.spec_from_reader(reader, index)
            series.append(
                {
                    "index": index,
                    "name": spec.series_name,
                    "dims": "".join(spec.sizes),
                    "shape": spec.sizes,
                    "dtype": spec.dtype,
                    "pixel_type": spec.pixel_type,
                    "dimension_order": spec.dimension_order,
                    "physical_size": {
                        "X": spec.physical_size_x,
                        "Y": spec.physical_size_y,
                        "Z": spec.physical_size_z,
                    },
                    "time_increment": spec.frame_interval,
                    "acquisition_date": spec.acquisition_date,
                    "channels": list(spec.channel_names),
                    "resolutions": metadata.resolution_count(reader, index),
                    "nbytes": spec.nbytes,
                }
            )
        reader.set_series(0)
        out = {
            "path": checked,
            "format": reader.format,
            "reader": metadata.reader_class(reader),
            "bioformats_version": jvm.info()["bioformats_version"],
            "files": files,
            "file_size": sum(_size(f) for f in files),
            "open_seconds": round(open_seconds, 4),
            "series_count": reader.series_count,
            "series": series,
        }
    finally:
        reader.close()
    return out


def add_pixel_sources(info: dict[str, Any]) -> None:
    """Add ``pixels`` (``"native"`` / ``"bioformats"``) and ``pixels_reason`` to each series
    of :func:`describe`'s result, as :func:`bfdask.open` would choose (reads a few planes)."""
    from . import pixels

    for series, source in zip(info["series"], pixels.describe(info["path"]), strict=True):
        series["pixels"] = source["pixels"]
        series["pixels_reason"] = source["reason"]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # fake files and other paths Bio-Formats resolves itself
        return 0


def java() -> dict[str, Any]:
    """This process's JVM (:func:`bfdask.jvm_info`), starting it if needed."""
    from .jvm import info

    return info()


# -- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bfdask info``."""
    parser.add_argument("path", type=Path, nargs="?", help="any file Bio-Formats reads")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--java", action="store_true", help="describe the JVM (version, libjvm, heap)"
    )
    parser.add_argument(
        "--pixels",
        action="store_true",
        help="also say which pixel source each series uses (native or Bio-Formats) and why; "
        "verifies a few planes per series, as bfdask.open does",
    )


def run(args: argparse.Namespace) -> int:
    """``bfdask info``: print the file's description and/or the JVM's."""
    if args.path is None and not args.java:
        raise ValueError("bfdask info needs a PATH, --java, or both.")
    out: dict[str, Any] = {}
    if args.path is not None:
        out["file"] = describe(args.path)
        if args.pixels:
            add_pixel_sources(out["file"])
    if args.java:
        out["java"] = java()
    if args.json:
        print(json.dumps(out if len(out) > 1 else next(iter(out.values())), indent=1))
        return 0
    if "file" in out:
        print(format_file(out["file"]))
    if "java" in out:
        print(format_java(out["java"]))
    return 0


def _fit(text: str, width: int) -> str:
    """``text`` in ``width`` characters: cut with an ellipsis, never silently."""
    return text if len(text) <= width else text[: width - 1] + "…"


def format_file(info: dict[str, Any]) -> str:
    """``describe``'s result as text: a header, the dataset's files, a table of series."""
    lines = [f"{info['path']}"]
    size = info["file_size"]
    for key, value in (
        ("format", info["format"]),
        ("reader", info["reader"]),
        ("bioformats_version", info["bioformats_version"]),
        ("files", len(info["files"])),
        ("file_size", f"{size} bytes ({size / 2**20:.1f} MiB)"),
        ("open_time", f"{info['open_seconds'] * 1000:.0f} ms"),
        ("series", info["series_count"]),
    ):
        lines.append(f"{key:>19}: {value}")
    if len(info["files"]) > 1:  # a multi-file dataset: every file it reads
        lines.append("")
        lines.extend(f"{'':>19}  {name}" for name in info["files"])
    lines.append("")
    lines.append(
        f"{'#':>4}  {'name':<32} {'shape':<30} {'dtype':<7} {'µm (X, Y, Z)':<22} "
        f"{'Δt (s)':>9} {'res':>3}  channels"
    )
    for s in info["series"]:
        shape = "x".join(str(n) for n in s["shape"].values()) + " " + s["dims"]
        size_um = ", ".join(
            "-" if s["physical_size"][d] is None else f"{s['physical_size'][d]:.4g}" for d in "XYZ"
        )
        step = "-" if s.get("time_increment") is None else f"{s['time_increment']:.4g}"
        channels = ", ".join(s["channels"])
        lines.append(
            f"{s['index']:>4}  {_fit(s['name'], 32):<32} {_fit(shape, 30):<30} {s['dtype']:<7} "
            f"{size_um:<22} {step:>9} {s['resolutions']:>3}  {_fit(channels, 60)}"
        )
    if any("pixels" in s for s in info["series"]):
        lines.append("")
        lines.append(f"{'#':>4}  {'pixels':<10} why")
        for s in info["series"]:
            lines.append(f"{s['index']:>4}  {s['pixels']:<10} {s['pixels_reason']}")
    return "\n".join(lines) + "\n"


def format_java(info: dict[str, Any]) -> str:
    """:func:`bfdask.jvm_info` as ``key: value`` lines (the heap also in GiB)."""
    lines = ["JVM"]
    for key, value in info.items():
        if key in ("max_heap", "max_heap_requested") and isinstance(value, int):
            value = f"{value} bytes ({value / 2**30:.2f} GiB)"
        lines.append(f"{key:>19}: {value}")
    return "\n".join(lines) + "\n"
