"""The ``bfdask`` command line: ``demo``, ``profile``, ``info``, ``convert``.

``bfdask demo`` writes a small time-lapse shaped like a stopped-and-restarted Mark-and-Find
experiment (an OME-TIFF of embryo-like tubes over several acquisition blocks, with a lesion
that deepens and recovers, and one failed acquisition), then runs the whole analysis on
threads (or a cluster: ``--workers``, ``--scheduler``): positions stitched across blocks,
profile statistics along each
tube, a table per position with the flagged timepoints, the long table and a plot.
``bfdask profile PATH --line ...`` does the same for any file Bio-Formats reads. Tables and
plots come from :mod:`bfdask.report`, as in a notebook.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commands import series_argument
from .positions import DEFAULT_PATTERN
from .stats import BUILTINS

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("bfdask")

#: the statistics ``--stats`` defaults to
STATS = "min,max,min_max_ratio,slope,missing"


def _parse_line(text: str) -> tuple[tuple[float, float], tuple[float, float]] | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(
            f"--line takes 'auto' or four numbers 'row0,col0,row1,col1' (pixels), not {text!r}"
        )
    return (values[0], values[1]), (values[2], values[3])


def _parse_stats(text: str) -> str:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BUILTINS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--stats takes names of {', '.join(BUILTINS)}, comma-separated, "
            f"not {unknown or text!r}"
        )
    return ",".join(names)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bfdask",
        description="Bio-Formats files as lazy dask/xarray arrays: line profiles on a cluster.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write a sample time-lapse and analyse it")
    demo.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="output directory (./demo-output)"
    )
    _add_cluster_options(demo)
    _add_profile(sub.add_parser("profile", help="profile statistics along a line, every series"))

    from . import convert, info

    info.add_arguments(sub.add_parser("info", help="what a file holds (no pixels read); the JVM"))
    convert.add_arguments(sub.add_parser("convert", help="write a file's series to OME-Zarr"))
    return parser


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """Where a command computes: a running cluster, or a local one of this size."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running dask scheduler (default: threads in this process)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="start a local cluster of this many worker processes (default: threads in this "
        "process, faster on one machine: no worker starts, no pixels or results sent between "
        "processes)",
    )
    parser.add_argument(
        "--memory-limit", default="2GiB", help="memory limit per local worker (2GiB)"
    )


def _add_profile(prof: argparse.ArgumentParser) -> None:
    """The options of ``bfdask profile``."""
    # optional for argparse only: see _reclaim_positionals
    prof.add_argument("path", type=Path, nargs="?", help="any file Bio-Formats reads")
    prof.add_argument(
        "--line",
        type=_parse_line,
        required=True,
        metavar="auto|ROW0,COL0,ROW1,COL1",
        help="the line: 'auto' (along the bright tube of each position) or (row, col) pixel "
        "coordinates of both ends",
    )
    prof.add_argument(
        "--positions",
        nargs="?",
        const=DEFAULT_PATTERN,
        metavar="PATTERN",
        help="stitch the series of each position along T (regex with a 'position' group "
        f"matched on series names; default {DEFAULT_PATTERN!r})",
    )
    prof.add_argument(
        "--stats",
        type=_parse_stats,
        metavar="NAMES",
        help="statistics, comma-separated, of: " + ",".join(BUILTINS) + f" (default {STATS})",
    )
    prof.add_argument(
        "--reference",
        default="0",
        metavar="T|each",
        help="with --line auto: timepoint of each position whose projection gives the line (0),"
        " or 'each' for a line per timepoint",
    )
    prof.add_argument(
        "--out", type=Path, help="write the long table to this CSV (and .parquet with pyarrow)"
    )
    prof.add_argument(
        "--series",
        type=series_argument,
        nargs="+",
        metavar="S",
        help="series indices or names (default: all)",
    )
    prof.add_argument(
        "--linewidth",
        type=int,
        default=None,
        help="line width in pixels (1; with --line auto: the tube's measured width)",
    )
    prof.add_argument(
        "--z", choices=["max", "mean", "sum"], default="max", help="Z projection (max)"
    )
    prof.add_argument("--plot", type=Path, help="write the plot to this PNG")
    _add_cluster_options(prof)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bfdask")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


#: the positionals of each command, in order
_POSITIONALS = {"convert": ("path", "out"), "profile": ("path",)}


def _reclaim_positionals(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Take back the positionals that an option written before them swallowed.

    ``--series S...`` takes every word after it and ``--positions [PATTERN]`` the next one, so
    ``convert --series 1 in.lif out.zarr`` and ``profile --positions in.lif`` leave the
    positionals empty: they are the last words those options took. Anything still missing is
    the usual usage error.
    """
    names = _POSITIONALS.get(args.command, ())
    missing = [name for name in names if getattr(args, name) is None]
    if not missing:
        return
    series = list(getattr(args, "series", None) or [])
    if args.command == "profile" and args.positions not in (None, DEFAULT_PATTERN):
        if os.path.exists(args.positions) or not series:
            series.append(args.positions)  # `--positions in.lif`: the path, default pattern
            args.positions = DEFAULT_PATTERN
    if len(series) >= len(missing):
        taken, series = series[len(series) - len(missing) :], series[: len(series) - len(missing)]
        for name, value in zip(missing, taken, strict=True):
            setattr(args, name, Path(str(value)))
        if hasattr(args, "series"):
            args.series = series or None
        missing = []
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (tifffile style).

    Parameters
    ----------
    argv
        Arguments without the program name; default ``sys.argv[1:]``.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    _reclaim_positionals(parser, args)
    _configure_logging(args.verbose)
    from .errors import BfdaskError

    # Bio-Formats' own WARN lines ("SamplesPerPixel mismatch" on a companion OME-TIFF) say
    # nothing a user acts on: a terminal sees its errors only, -v shows them. Set in the
    # environment for the command's time, so that the workers of a local cluster start their
    # JVMs the same way; a BFDASK_LOG_LEVEL the user set wins.
    level_set = "BFDASK_LOG_LEVEL" not in os.environ
    if level_set:
        os.environ["BFDASK_LOG_LEVEL"] = "WARN" if args.verbose else "ERROR"
    try:
        if args.command == "info":
            from . import info

            return info.run(args)
        if args.command == "convert":
            from . import convert

            return convert.run(args)
        if args.command == "demo":
            return _demo(args)
        return _profile(args)
    except BrokenPipeError:  # e.g. `bfdask info --json f.lif | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 1
    except (BfdaskError, OSError, ValueError) as exc:
        print(f"bfdask: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if level_set:
            os.environ.pop("BFDASK_LOG_LEVEL", None)


def run() -> None:
    """The ``bfdask`` program: :func:`main`, then exit with its status.

    The process ends here, so the objects it made are frozen first (:func:`gc.freeze`): the
    interpreter's last garbage collection would otherwise walk every object of dask, xarray
    and pandas at exit (half a second here) to free memory the process is about to give back
    anyway. Everything the command wrote is closed by then. (Not in :func:`main`, which tests
    and scripts call in a process that goes on.)"""
    import gc

    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    sys.exit(status)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    if not verbose:
        import distributed  # noqa: F401 - configures its loggers on import; override after

        for name in ("distributed", "tornado", "asyncio", "bokeh"):
            logging.getLogger(name).setLevel(logging.ERROR)


# -- commands ---------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from .demo import PositionsSample, write_positions_sample

    sample = PositionsSample()
    path = write_positions_sample(args.out, sample)
    series = sample.series()
    blocks = ", ".join(f"{name!r} ({t} T)" for name, t, _ in sample.blocks)
    print(
        f"wrote {path}: {len(series)} series = {len(sample.positions)} positions x blocks "
        f"{blocks}, written out of order (first: {series[0][0]!r}); C={sample.size_c}, "
        f"Z={sample.size_z}, {sample.size_y}x{sample.size_x} px"
    )
    position, block, t = sample.bad
    print(
        f"injected failed acquisition: {block}/{position}_S001, timepoint {t} of the block "
        f"(T={sample.bad_index()} of {position} stitched)"
    )
    options = {"line": "auto", "reference": 0, "stats": STATS, "z": "sum"}
    plot = args.out / "profile.png"
    return _analyse(args, path, DEFAULT_PATTERN, options, out=args.out / "stats.csv", plot=plot)


def _profile(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"z": args.z, "linewidth": args.linewidth}
    if args.line == "auto":
        reference = "each" if args.reference == "each" else int(args.reference)
        options.update(line="auto", reference=reference)
    else:
        options.update(src=args.line[0], dst=args.line[1])
    if args.line == "auto" or args.positions or args.stats or args.out:
        options["stats"] = args.stats or STATS
    # else the plain profile: min/max/mean per series (and the profiles, for saturation)
    return _analyse(
        args, args.path, args.positions, options, out=args.out, plot=args.plot, series=args.series
    )


def _analyse(
    args: argparse.Namespace,
    path: Path,
    pattern: str | None,
    options: dict[str, Any],
    *,
    out: Path | None,
    plot: Path | None,
    series: list[int | str] | None = None,
) -> int:
    """:func:`bfdask.profile` of the positions of ``path`` stitched with ``pattern`` (or of
    each series) on threads or a cluster; per position a table on stdout, the long table in
    ``out`` and a plot (:mod:`bfdask.report`)."""
    import warnings

    from . import progress, report
    from ._profile import plan_profile, series_plans
    from .commands import client
    from .positions import open_positions

    cluster = {"workers": args.workers, "memory_limit": args.memory_limit}
    with client(args.scheduler, **cluster) as connected:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if pattern is not None:
                plans = {"": plan_profile(open_positions(path, pattern), **options)}
            else:
                plans = series_plans(path, series=series, **options)
        for warning in caught:
            if issubclass(warning.category, UserWarning):  # ours; not libraries' deprecations
                print(f"bfdask: warning: {warning.message}", file=sys.stderr)
        tables = [plan.table for plan in plans.values()]  # the Datasets are built from them
        if connected is None:  # threads in this process (the default)
            from .schedulers import compute

            with progress.local():
                computed = compute(*tables, scheduler="threads")
        else:
            futures = connected.compute(tables)
            progress.wait(futures)
            computed = connected.gather(futures)
    results = {key: plan.dataset(table) for (key, plan), table in zip(plans.items(), computed)}
    items = report.split(results)
    flagged = report.flag(items)
    stats = options["stats"].split(",") if "stats" in options else ["min", "max", "mean"]
    print(report.text(items, flagged, stats), end="")
    if out is not None:
        frame = report.table(items, flagged, stats)
        for written in report.save_table(frame, out):
            rows = f" ({len(frame)} rows)" if written == out else ""
            print(f"table written to {written.resolve()}{rows}")
    if plot is None and out is not None:
        plot = out.with_suffix(".png")
    if plot is not None:
        report.plot(items, flagged, stats, path=plot)
        print(f"plot written to {plot.resolve()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    run()
