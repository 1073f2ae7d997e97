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

#: default positions pattern and statistics of the command line (no heavy imports here)
DEFAULT_PATTERN = r"(?P<position>Pos\d+)"
BUILTINS = ("min", "max", "mean", "min_max_ratio", "slope", "missing")
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
        type=_parse_series,
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
    except BrokenPipeError:  # e.g. `bfdask info --json f.lif | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 1
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
    return _analyse_positions(
        path,
        pattern=DEFAULT_PATTERN,
        line="auto",
        linewidth=None,
        stats=STATS,
        z="sum",
        reference="0",
        series=None,
        out=args.out / "stats.csv",
        plot=args.out / "profile.png",
        args=args,
    )


def _profile(args: argparse.Namespace) -> int:
    if args.line == "auto" or args.positions or args.stats or args.out:
        return _analyse_positions(
            args.path,
            pattern=args.positions,
            line=args.line,
            linewidth=args.linewidth,
            stats=args.stats or STATS,
            z=args.z,
            reference=args.reference,
            series=args.series,
            out=args.out,
            plot=args.plot,
            args=args,
        )
    src, dst = args.line
    return _analyse(
        args.path,
        src,
        dst,
        series=args.series,
        linewidth=1 if args.linewidth is None else args.linewidth,
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
        from . import progress

        futures = client.compute(list(lazy.values()))
        progress.wait(futures)
        results = dict(zip(lazy, client.gather(futures)))
    flagged = {name: bfdask.bad_timepoints(stats) for name, stats in results.items()}
    for name, stats in results.items():
        print(_table(name, stats, flagged[name]))
    if plot is not None:
        plot_stats(results, flagged, plot)
        print(f"plot written to {plot.resolve()}")
    return 0


def _analyse_positions(
    path: Path,
    *,
    pattern: str | None,
    line: Any,
    linewidth: int | None,
    stats: str,
    z: str,
    reference: str,
    series: list[int | str] | None,
    out: Path | None,
    plot: Path | None,
    args: argparse.Namespace,
) -> int:
    """Statistics per position (stitched) or per series, table, CSV and plot."""
    import warnings

    import bfdask

    from .positions import position_tables

    ref: int | str = "each" if reference == "each" else int(reference)
    if line == "auto":
        where: dict[str, Any] = {"line": "auto", "reference": ref}
    else:
        where = {"src": line[0], "dst": line[1]}
    options = {"stats": stats, "z": z, "linewidth": linewidth, **where}
    with _client(args) as client:
        from . import progress

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if pattern is not None:
                lazy = [bfdask.profile(bfdask.open_positions(path, pattern), **options)]
            else:
                infos = bfdask.list_series(path)
                wanted = series if series is not None else [i.index for i in infos]
                lazy = [
                    bfdask.profile(bfdask.open(path, series=s, ome=False), **options)
                    for s in wanted
                ]
        for warning in caught:
            if issubclass(warning.category, UserWarning):  # ours; not libraries' deprecations
                print(f"bfdask: warning: {warning.message}", file=sys.stderr)
        futures = client.compute(lazy)
        progress.wait(futures)
        computed = client.gather(futures)
    items: list[tuple[str, Any]] = []
    for result in computed:
        if "P" in result.dims:
            items.extend(position_tables(result))
        else:
            items.append((str(result.attrs.get("series_name", "")), result))
    flagged = {name: bfdask.bad_timepoints(ds) for name, ds in items}
    names = [n.strip() for n in stats.split(",") if n.strip()]
    for name, ds in items:
        print(_position_table(name, ds, names, flagged[name]))
    frame = long_table(items, flagged, names)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        print(f"table written to {out.resolve()} ({len(frame)} rows)")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pass
        else:
            frame.to_parquet(out.with_suffix(".parquet"), index=False)
            print(f"table written to {out.with_suffix('.parquet').resolve()}")
    if plot is None and out is not None:
        plot = out.with_suffix(".png")
    if plot is not None:
        plot_positions(items, flagged, names, plot)
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


def _times_s(ds: xr.Dataset) -> Any:
    """Seconds of each T: the stitched ``time`` coordinate, else ``T`` (s), else NaN."""
    import numpy as np

    if "time" in ds.coords and ds["time"].dims == ("T",):
        return np.asarray(ds["time"].values, dtype=float)
    if "T" in ds.coords and np.issubdtype(ds["T"].dtype, np.floating):
        return np.asarray(ds["T"].values, dtype=float)
    return np.full(ds.sizes.get("T", 1), np.nan)


def _blocks(ds: xr.Dataset) -> list[str]:
    if "block" in ds.coords and ds["block"].dims == ("T",):
        return [str(b) for b in ds["block"].values]
    return [str(ds.attrs.get("series_name", ""))] * ds.sizes.get("T", 1)


def long_table(
    items: Sequence[tuple[str, xr.Dataset]],
    flagged: dict[str, pd.DataFrame],
    stats: Sequence[str],
) -> pd.DataFrame:
    """One row per position × timepoint × channel: ``position``, ``channel``, ``time_s``,
    ``block``, one column per statistic, ``bad``, ``reason``.

    Parameters
    ----------
    items
        ``(position, computed Dataset with T[, C] dims)`` pairs (padding already dropped).
    flagged
        :func:`bfdask.bad_timepoints` of each position.
    stats
        The statistic columns, in order.
    """
    import pandas as pd

    rows = []
    for name, ds in items:
        reasons = dict(zip(flagged[name]["T"], flagged[name]["reason"]))
        times, blocks = _times_s(ds), _blocks(ds)
        t_index = [int(t) for t in ds["T"].values] if "T" in ds.coords else None
        channels = [str(c) for c in ds["C"].values] if "C" in ds.dims else [""]
        for i in range(ds.sizes.get("T", 1)):
            t_label = t_index[i] if t_index is not None and "time" in ds.coords else i
            for c, channel in enumerate(channels):
                pick: dict[str, int] = {"T": i}
                if "C" in ds.dims:
                    pick["C"] = c
                row: dict[str, Any] = {
                    "position": name,
                    "channel": channel,
                    "time_s": float(times[i]),
                    "block": blocks[i],
                }
                for stat in stats:
                    row[stat] = float(ds[stat].isel(pick).values.max())
                row["bad"] = t_label in reasons
                row["reason"] = reasons.get(t_label, "")
                rows.append(row)
    return pd.DataFrame(
        rows, columns=["position", "channel", "time_s", "block", *stats, "bad", "reason"]
    )


def _position_table(name: str, ds: xr.Dataset, stats: Sequence[str], flagged: pd.DataFrame) -> str:
    """The whole time course of one position: a row per timepoint and channel."""
    reasons = dict(zip(flagged["T"], flagged["reason"]))
    times, blocks = _times_s(ds), _blocks(ds)
    channels = [str(c) for c in ds["C"].values] if "C" in ds.dims else [""]
    t_index = [int(t) for t in ds["T"].values] if "time" in ds.coords else None
    head = f"{'T':>4} {'time (h)':>9} {'block':<20} {'channel':<8}" + "".join(
        f" {stat[:13]:>13}" for stat in stats
    )
    lines = [f"== {name} ==", head]
    for i in range(ds.sizes.get("T", 1)):
        t = t_index[i] if t_index is not None else i
        for c, channel in enumerate(channels):
            pick: dict[str, int] = {"T": i}
            if "C" in ds.dims:
                pick["C"] = c
            row = f"{t:>4} {times[i] / 3600:>9.2f} {blocks[i][:20]:<20} {channel[:8]:<8}"
            row += "".join(f" {float(ds[s].isel(pick).values.max()):>13.4g}" for s in stats)
            if t in reasons and c == 0:
                row += f"   <- {reasons[t]}"
            lines.append(row)
    if len(flagged):
        listed = ", ".join(f"T={t} ({r})" for t, r in zip(flagged["T"], flagged["reason"]))
        lines.append(f"flagged timepoints: {listed}")
    else:
        lines.append("flagged timepoints: none")
    return "\n".join(lines) + "\n"


def plot_positions(
    items: Sequence[tuple[str, xr.Dataset]],
    flagged: dict[str, pd.DataFrame],
    stats: Sequence[str],
    path: str | os.PathLike[str],
) -> None:
    """One panel per position: each statistic (scaled to its largest value) against time over
    all blocks, block boundaries dashed, flagged timepoints marked.

    Parameters
    ----------
    items
        ``(position, computed Dataset)`` pairs as for :func:`long_table`.
    flagged
        :func:`bfdask.bad_timepoints` of each position.
    stats
        The statistics to draw.
    path
        The PNG to write (its directory is created).
    """
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(items))
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False, sharex=True
    )
    for ax, (name, ds) in zip(axes.flat, items):
        hours = _times_s(ds) / 3600
        if not np.isfinite(hours).any():
            hours = np.arange(ds.sizes.get("T", 1), dtype=float)
        channel = {"C": 0} if "C" in ds.dims else {}
        for i, stat in enumerate(stats):
            values = np.asarray(ds[stat].isel(channel).values, dtype=float)
            top = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
            ax.plot(hours, values / (top or 1.0), ".-", color=f"C{i}", label=stat, ms=3)
        blocks = _blocks(ds)
        for i in range(1, len(blocks)):
            if blocks[i] != blocks[i - 1]:
                edge = (hours[i - 1] + hours[i]) / 2
                ax.axvline(edge, color="0.5", ls="--", lw=1)
                ax.annotate(
                    f" {blocks[i]}",
                    (edge, 0.02),
                    xycoords=("data", "axes fraction"),
                    fontsize=7,
                    color="0.4",
                    rotation=90,
                    va="bottom",
                )
        bad = flagged.get(name)
        t_index = [int(t) for t in ds["T"].values] if "time" in ds.coords else None
        if bad is not None:
            for t, reason in zip(bad["T"], bad["reason"]):
                i = t_index.index(t) if t_index is not None else t
                ax.axvline(hours[i], color="red", alpha=0.35, lw=6)
                ax.annotate(
                    f" T={t}: {reason}",
                    (hours[i], 0.97),
                    xycoords=("data", "axes fraction"),
                    color="red",
                    ha="left",
                    va="top",
                    fontsize=8,
                )
        channel_name = f" ({ds['C'].values[0]})" if "C" in ds.dims else ""
        ax.set_title(f"{name}{channel_name}", fontsize=9)
        ax.set_xlabel("time since first acquisition (h)")
        ax.set_ylabel("statistic / its largest value")
        ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(items) :]:
        ax.set_visible(False)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
