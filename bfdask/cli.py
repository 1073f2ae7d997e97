"""The ``bfdask`` command line: ``demo``, ``profile``, ``info``, ``convert``.

``bfdask demo`` writes a small multi-series time-lapse (an OME-TIFF of embryo-like tubes with a
lesion that deepens and recovers, and one failed acquisition), then runs the whole analysis on
a local cluster of worker processes: profile statistics along the tube for every series, a
table per series with the flagged timepoints, and a plot. ``bfdask profile PATH --line ...``
does the same for any file Bio-Formats reads.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

log = logging.getLogger("bfdask")


def _parse_line(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(
            f"--line takes four numbers 'row0,col0,row1,col1' (pixels), not {text!r}"
        )
    return (values[0], values[1]), (values[2], values[3])


def _parse_series(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bfdask",
        description="Bio-Formats files as lazy dask/xarray arrays: line profiles on a cluster.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_cluster_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--scheduler",
            metavar="ADDRESS",
            help="address of a running dask scheduler (default: start a local cluster)",
        )
        p.add_argument(
            "--workers", type=int, default=2, help="worker processes of the local cluster (2)"
        )
        p.add_argument(
            "--memory-limit", default="2GiB", help="memory limit per local worker (2GiB)"
        )

    demo = sub.add_parser("demo", help="write a sample time-lapse and analyse it")
    demo.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="output directory (./demo-output)"
    )
    add_cluster_options(demo)

    prof = sub.add_parser("profile", help="profile statistics along a line, every series")
    prof.add_argument("path", type=Path, help="any file Bio-Formats reads")
    prof.add_argument(
        "--line",
        type=_parse_line,
        required=True,
        metavar="ROW0,COL0,ROW1,COL1",
        help="the line, (row, col) pixel coordinates of both ends",
    )
    prof.add_argument(
        "--series",
        type=_parse_series,
        nargs="+",
        metavar="S",
        help="series indices or names (default: all)",
    )
    prof.add_argument("--linewidth", type=int, default=1, help="line width in pixels (1)")
    prof.add_argument(
        "--z", choices=["max", "mean", "sum"], default="max", help="Z projection (max)"
    )
    prof.add_argument("--plot", type=Path, help="write the plot to this PNG")
    add_cluster_options(prof)

    from . import convert, info

    info.add_arguments(sub.add_parser("info", help="what a file holds (no pixels read); the JVM"))
    convert.add_arguments(sub.add_parser("convert", help="write a file's series to OME-Zarr"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (tifffile style).

    Parameters
    ----------
    argv
        Arguments without the program name; default ``sys.argv[1:]``.
    """
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    from .errors import BfdaskError

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
    except (BfdaskError, OSError, ValueError) as exc:
        print(f"bfdask: error: {exc}", file=sys.stderr)
        return 1


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    if not verbose:
        import distributed  # noqa: F401 - configures its loggers on import; override after

        for name in ("distributed", "tornado", "asyncio", "bokeh"):
            logging.getLogger(name).setLevel(logging.ERROR)


# -- commands ---------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from .demo import Sample, write_sample

    sample = Sample()
    path = write_sample(args.out, sample)
    names = sample.series_names()
    print(
        f"wrote {path} ({len(names)} series, T={sample.size_t}, C={sample.size_c}, "
        f"Z={sample.size_z}, {sample.size_y}x{sample.size_x} px)"
    )
    print(
        f"injected failed acquisition: series {names[sample.bad_series]!r}, "
        f"T={sample.bad_timepoint}"
    )
    src, dst = sample.line
    return _analyse(
        path,
        src,
        dst,
        series=None,
        linewidth=sample.line_width,
        z="max",
        plot=args.out / "profile.png",
        args=args,
    )


def _profile(args: argparse.Namespace) -> int:
    src, dst = args.line
    return _analyse(
        args.path,
        src,
        dst,
        series=args.series,
        linewidth=args.linewidth,
        z=args.z,
        plot=args.plot,
        args=args,
    )


def _analyse(
    path: Path,
    src: tuple[float, float],
    dst: tuple[float, float],
    *,
    series: list[int | str] | None,
    linewidth: int,
    z: str,
    plot: Path | None,
    args: argparse.Namespace,
) -> int:
    import bfdask

    lazy = bfdask.profile_series(
        path, src, dst, series=series, compute=False, linewidth=linewidth, z=z
    )
    with _client(args) as client:
        from distributed import progress

        futures = client.compute(list(lazy.values()))
        progress(futures)
        print()
        results = dict(zip(lazy, client.gather(futures)))
    flagged = {name: bfdask.bad_timepoints(stats) for name, stats in results.items()}
    for name, stats in results.items():
        print(_table(name, stats, flagged[name]))
    if plot is not None:
        plot_stats(results, flagged, plot)
        print(f"plot written to {plot.resolve()}")
    return 0


class _client:
    """A ``distributed.Client`` on ``--scheduler``, else on a new quiet LocalCluster."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        from distributed import Client, LocalCluster

        from .cluster import JVMPlugin

        if self.args.scheduler:
            self.client = Client(self.args.scheduler)
        else:
            self.cluster = LocalCluster(
                n_workers=self.args.workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=self.args.memory_limit,
                dashboard_address=":0",  # a free port: never "8787 in use" warnings
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        self.client.register_plugin(JVMPlugin())
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# -- output -----------------------------------------------------------------------------------


def _time_axis(stats: xr.Dataset) -> tuple[Any, str]:
    import numpy as np

    if "T" in stats.coords:
        seconds = np.asarray(stats["T"].values, dtype=float)
        if seconds.size and np.nanmax(seconds) >= 7200:
            return seconds / 3600, "time (h)"
        return seconds, "time (s)"
    return np.arange(stats.sizes.get("T", 1)), "timepoint"


def _table(name: str, stats: xr.Dataset, flagged: pd.DataFrame) -> str:
    """Per timepoint and channel: min, max, mean of the profile; flagged rows marked."""
    reasons = dict(zip(flagged["T"], flagged["reason"]))
    channels = [str(c) for c in stats["C"].values] if "C" in stats.dims else [""]
    times, label = _time_axis(stats)
    head = f"{'T':>4} {label:>10}"
    for c in channels:
        head += f" | {c[:10] + ' min':>14} {'max':>8} {'mean':>8}"
    lines = [f"== {name} ==", head]
    for t in range(stats.sizes.get("T", 1)):
        row = f"{t:>4} {times[t]:>10.4g}"
        for i in range(len(channels)):
            pick: dict[str, Any] = {"T": t}
            if "C" in stats.dims:
                pick["C"] = i
            values = [float(stats[v].isel(pick).max()) for v in ("min", "max", "mean")]
            row += f" | {values[0]:>14.1f} {values[1]:>8.1f} {values[2]:>8.1f}"
        if t in reasons:
            row += f"   <- {reasons[t]}"
        lines.append(row)
    if len(flagged):
        listed = ", ".join(f"T={t} ({r})" for t, r in zip(flagged["T"], flagged["reason"]))
        lines.append(f"flagged timepoints: {listed}")
    else:
        lines.append("flagged timepoints: none")
    return "\n".join(lines) + "\n"


def plot_stats(
    results: dict[str, xr.Dataset],
    flagged: dict[str, pd.DataFrame],
    path: str | os.PathLike[str],
) -> None:
    """Min and max of the profile against time, one panel per series; flagged timepoints marked.

    Parameters
    ----------
    results
        Computed statistics by series name (as :func:`bfdask.profile_series` returns them).
    flagged
        :func:`bfdask.bad_timepoints` of each series.
    path
        The PNG to write (its directory is created).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(results))
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, (name, stats) in zip(axes.flat, results.items()):
        times, time_label = _time_axis(stats)
        channels = list(stats["C"].values) if "C" in stats.dims else [None]
        for i, channel in enumerate(channels):
            pick = {"C": i} if channel is not None else {}
            for var, style in (("max", "-"), ("min", "--")):
                values = stats[var].isel(pick)
                extra = [d for d in values.dims if d != "T"]
                if extra:
                    values = values.max(extra)
                label = f"{channel or ''} {var}".strip()
                ax.plot(times, values, style, color=f"C{i}", label=label)
        bad = flagged.get(name)
        if bad is not None:
            for t, reason in zip(bad["T"], bad["reason"]):
                ax.axvline(times[t], color="red", alpha=0.4, lw=6)
                ax.annotate(
                    f" T={t}: {reason}",
                    (times[t], 0.97),
                    xycoords=("data", "axes fraction"),
                    color="red",
                    ha="left",
                    va="top",
                    fontsize=8,
                )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(time_label)
        ax.set_ylabel("intensity along the line")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(results) :]:
        ax.set_visible(False)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
